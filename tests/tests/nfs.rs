//! Shared storage between boards over NFS, as the four-Pi build shares a
//! USB drive: one board exports a directory, the others mount it.

use reconciler_tests::boards::Boards;
use reconciler_tests::require_swarm;

#[test]
fn the_test_beds_nfs_carries_files_between_boards() {
    require_swarm();
    let boards = Boards::start_nfs("rcn-", 121, 2);
    let client = boards.address(1).to_string();
    boards
        .exec(
            0,
            &format!("mkdir -p /srv/share && echo hello > /srv/share/greeting && mkdir -p /etc/exports.d && echo '/srv/share {client}(rw,sync,no_subtree_check,no_root_squash)' > /etc/exports.d/t.exports && exportfs -ra && exportfs"),
        )
        .expect_code(0);
    let mounted = boards.exec(
        1,
        &format!("mkdir -p /mnt/share && mount -t nfs {}:/srv/share /mnt/share && cat /mnt/share/greeting && echo back > /mnt/share/reply && ls /mnt/share", boards.address(0)),
    );
    assert_eq!(
        mounted.code,
        0,
        "{mounted:?}\n{:?}",
        boards.exec(1, "cat /var/log/mount.nfs.log; ls -la /dev/fuse")
    );
    assert!(mounted.stdout.contains("hello"), "{mounted:?}");
    let reply = boards.exec(0, "cat /srv/share/reply");
    assert_eq!(reply.stdout.trim(), "back", "{reply:?}");
}
