//! Shared storage between boards over NFS, as the four-Pi build shares a
//! USB drive: `[share.NAME]` makes one board export a directory and the
//! others mount it, now and at every boot (an /etc/fstab line the cluster
//! owns).
//!
//! This machine's kernel has neither an NFS server nor an NFS client, so
//! the boards (`Boards::start_nfs`) serve with NFS-Ganesha and mount with
//! libnfs through FUSE, both in user space, behind the commands Raspberry
//! Pi OS's nfs-kernel-server and nfs-common give (`exportfs -ra`, `mount`
//! of an fstab line of type nfs): the files travel over NFSv4 between the
//! boards, and what reconciler runs on them is what it runs on a Pi.

use reconciler_tests::boards::Boards;
use reconciler_tests::{reconciler_binary, require_swarm, SpecDir};

fn spec(boards: &Boards, share: &str) -> SpecDir {
    let spec = SpecDir::new("nfs");
    spec.write(
        "cluster.toml",
        &format!(
            r#"{head}
[node.rcn1]
address = "{a1}"
role = "manager"

[node.rcn2]
address = "{a2}"
role = "worker"
{share}"#,
            head = boards.spec_head("nfs", ""),
            a1 = boards.address(0),
            a2 = boards.address(1),
        ),
    );
    spec
}

const SHARE: &str = r#"
[share.media]
server = "rcn1"
path = "/srv/media"
mount = "/mnt/media"
"#;

#[test]
fn a_share_is_served_by_one_board_mounted_by_the_other_and_taken_away() {
    require_swarm();
    let boards = Boards::start_nfs("rcn-", 121, 2);
    let shared = spec(&boards, SHARE);
    let dir = shared.arg();

    let planned = reconciler_binary(&["plan", &dir, "--ssh"], &[]);
    let shown = format!("{}{}", planned.stdout, planned.stderr);
    assert!(
        shown.contains("/etc/exports.d/reconciler-media.exports")
            && shown.contains(&format!("fstab: add {}:/srv/media /mnt/media nfs rw,_netdev,nofail 0 0 (mounted now and at every boot)", boards.address(0))),
        "{shown}"
    );

    let applied = reconciler_binary(&["apply", &dir, "--ssh", "--auto-approve"], &[]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    // Mounted on the client, over NFS, and files go both ways.
    let mounted = boards.exec(
        1,
        "mountpoint -q /mnt/media && echo from-client > /mnt/media/a && cat /mnt/media/a",
    );
    assert_eq!(
        mounted.stdout.trim(),
        "from-client",
        "{mounted:?}\n{:?}",
        boards.exec(1, "cat /var/log/mount.nfs.log; cat /etc/fstab")
    );
    let on_server = boards.exec(0, "cat /srv/media/a && echo from-server > /srv/media/b");
    assert_eq!(on_server.stdout.trim(), "from-client", "{on_server:?}");
    let back = boards.exec(1, "cat /mnt/media/b");
    assert_eq!(back.stdout.trim(), "from-server", "{back:?}");
    // Only the client the share names may mount it: the server's own
    // address is not in its exports line.
    let exports = boards.exec(0, "cat /etc/exports.d/reconciler-media.exports");
    assert_eq!(
        exports.stdout,
        format!(
            "/srv/media {}(rw,sync,no_subtree_check,no_root_squash)\n",
            boards.address(1)
        ),
    );

    // Nothing left to do; unmounted by hand, it is mounted again.
    let again = reconciler_binary(&["plan", &dir, "--ssh", "--detailed-exitcode"], &[]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    boards.exec(1, "umount /mnt/media").expect_code(0);
    let remount = reconciler_binary(&["apply", &dir, "--ssh", "--auto-approve"], &[]);
    assert!(
        remount.stdout.contains("mount /mnt/media"),
        "{}\n{}",
        remount.stdout,
        remount.stderr
    );
    boards.exec(1, "mountpoint -q /mnt/media").expect_code(0);

    // The share leaves the spec: unmounted, its fstab line and exports file gone.
    let without = spec(&boards, "");
    let removed = reconciler_binary(&["apply", &without.arg(), "--ssh", "--auto-approve"], &[]);
    assert_eq!(removed.code, 0, "{}\n{}", removed.stdout, removed.stderr);
    let unmounted = boards.exec(1, "mountpoint -q /mnt/media || echo not mounted");
    assert_eq!(unmounted.stdout.trim(), "not mounted", "{unmounted:?}");
    let fstab = boards.exec(1, "grep -c /mnt/media /etc/fstab");
    assert_eq!(fstab.stdout.trim(), "0", "{fstab:?}");
    boards
        .exec(0, "test -e /etc/exports.d/reconciler-media.exports")
        .expect_code(1);
    // The server's data stays where it was.
    boards.exec(0, "test -s /srv/media/a").expect_code(0);
}
