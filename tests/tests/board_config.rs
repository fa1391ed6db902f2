//! Declared board configuration (`[board]`) on the test bed's `pi` boards:
//! real apt from the Debian mirror, real files, sysctls in each board's own
//! network namespace. `plan --ssh` shows each change (a file's diff, never
//! a secret); `apply --ssh` makes it once; what the spec drops leaves only
//! if the cluster put it there (a board's own file comes back, a package it
//! had stays); a removal that would take another package is refused.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use reconciler_tests::boards::Boards;
use reconciler_tests::{reconciler_binary, require_swarm, Output, SpecDir};

const SECRET: &str = "s3cr3t-token-value";

fn spec_text(boards: &Boards, board: &str) -> String {
    format!(
        r#"{head}
[secret.token]
file = "token.txt"

[node.rcc1]
address = "{a1}"
role = "manager"

[node.rcc2]
address = "{a2}"
role = "worker"

{board}"#,
        head = boards.spec_head("boardcfg", ""),
        a1 = boards.address(0),
        a2 = boards.address(1),
    )
}

const DECLARED: &str = r#"[board]
packages = ["tree", "jq"]
sysctl = { "net.ipv4.conf.all.log_martians" = 1 }
cmdline = ["cgroup_enable=memory", "cgroup_memory=1"]
docker_daemon = { "log-level" = "warn" }

[board.file."/etc/motd"]
content = "A board of the boardcfg cluster.\nAsk Anna before changing it.\n"

[board.file."/etc/boardcfg/app.conf"]
content = "port = 8080\n"
mode = "0640"
owner = "pi:pi"
then = "echo restarted >> /var/log/app-restarts"

[node.rcc1.board.file."/etc/boardcfg/token"]
secret = "token"
"#;

fn plan(dir: &str) -> Output {
    reconciler_binary(&["plan", dir, "--ssh"], &[])
}

fn apply(dir: &str) -> Output {
    let out = reconciler_binary(
        &["apply", dir, "--ssh", "--auto-approve", "--timeout", "3m"],
        &[],
    );
    assert_eq!(out.code, 0, "apply:\n{}\n{}", out.stdout, out.stderr);
    out
}

fn contains_all(out: &Output, lines: &[&str]) {
    for line in lines {
        assert!(
            out.stdout.contains(line),
            "missing `{line}` in:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn boards_carry_their_declared_packages_and_files_and_give_back_what_the_spec_drops() {
    require_swarm();
    let boards = Boards::start("rcc-", 101, 2);
    // What the boards had before the spec said anything: a motd of rcc1's
    // own, jq installed by hand on rcc2; and /proc/sys writable, as on a
    // Pi (a container's is read-only; net.* is the board's own namespace).
    boards
        .exec(0, "printf 'Debian GNU/Linux, as it came.\\n' > /etc/motd")
        .expect_code(0);
    boards
        .exec(
            1,
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null",
        )
        .expect_code(0);
    for board in 0..2 {
        boards
            .exec(board, "mount -o remount,rw /proc/sys")
            .expect_code(0);
    }
    // rcc1 is a Raspberry Pi OS board: its boot partition, with the memory
    // cgroup half asked for already (its own `cgroup_memory=1`).
    boards
        .exec(
            0,
            "mkdir -p /boot/firmware && echo 'console=tty1 root=PARTUUID=4e639091-02 rootwait cgroup_memory=1' > /boot/firmware/cmdline.txt",
        )
        .expect_code(0);
    let spec = SpecDir::new("boardcfg");
    spec.write("token.txt", SECRET);
    spec.write("cluster.toml", &spec_text(&boards, DECLARED));
    let dir = spec.arg();

    // plan --ssh says what each board gets, with the motd's diff and no secret.
    let planned = plan(&dir);
    assert_eq!(planned.code, 0, "{}\n{}", planned.stdout, planned.stderr);
    contains_all(
        &planned,
        &[
            "+ install package(s) jq, tree",
            "+ install package(s) tree",
            "+ update /etc/motd: content",
            "          - Debian GNU/Linux, as it came.",
            "          + A board of the boardcfg cluster.",
            "+ create /etc/boardcfg/app.conf (0640 pi:pi)",
            "+ create /etc/boardcfg/token (0600 root:root)",
            "+ create /etc/sysctl.d/90-reconciler.conf (0644 root:root)",
            "+ create /etc/docker/daemon.json (0644 root:root)",
            "+ cmdline.txt: add cgroup_enable=memory (applied at the next reboot: `reconciler upgrade` takes the board)",
            "Note: node.rcc2: the board has no cmdline.txt in /boot/firmware or /boot",
        ],
    );
    assert!(
        planned
            .stderr
            .contains("push access: [board] on 2 boards writes /etc/motd as root"),
        "{}",
        planned.stderr
    );
    assert!(!planned.stdout.contains(SECRET) && !planned.stderr.contains(SECRET));

    let first = apply(&dir);
    assert!(!first.stdout.contains(SECRET) && !first.stderr.contains(SECRET));
    for (board, packages) in [(0, "jq tree"), (1, "jq tree")] {
        let installed = boards.exec(
            board,
            &format!("dpkg-query -W -f='${{Package}} ' {packages}; echo"),
        );
        assert_eq!(installed.stdout.trim(), packages, "{installed:?}");
    }
    let rcc1 = boards.exec(
        0,
        "cat /etc/motd; stat -c '%a %U:%G' /etc/boardcfg/app.conf /etc/boardcfg/token; cat /etc/boardcfg/token; echo; \
         wc -l < /var/log/app-restarts; cat /proc/sys/net/ipv4/conf/all/log_martians; cat /etc/reconciler/owned",
    );
    assert_eq!(
        rcc1.stdout,
        format!(
            "A board of the boardcfg cluster.\nAsk Anna before changing it.\n640 pi:pi\n600 root:root\n{SECRET}\n1\n1\n\
             package\tjq\npackage\ttree\nfile\t/etc/boardcfg/app.conf\tcreated\nfile\t/etc/boardcfg/token\tcreated\nfile\t/etc/docker/daemon.json\tcreated\n\
             file\t/etc/motd\treplaced\nfile\t/etc/sysctl.d/90-reconciler.conf\tcreated\ncmdline\tcgroup_enable=memory\n"
        ),
        "{rcc1:?}"
    );
    let boot = boards.exec(
        0,
        "cat /boot/firmware/cmdline.txt; cat /var/run/reboot-required.pkgs; grep ^cmdline /etc/reconciler/owned",
    );
    assert_eq!(
        boot.stdout,
        "console=tty1 root=PARTUUID=4e639091-02 rootwait cgroup_memory=1 cgroup_enable=memory\nreconciler: docker daemon.json\nreconciler: cmdline.txt\ncmdline\tcgroup_enable=memory\n",
        "{boot:?}"
    );
    // rcc2 had jq before: only tree is the cluster's.
    let owned = boards.exec(1, "grep ^package /etc/reconciler/owned");
    assert_eq!(owned.stdout, "package\ttree\n", "{owned:?}");

    // Nothing left to do; `then` is not run again; the reboot the boot
    // settings and daemon.json need is pointed out.
    let again = plan(&dir);
    assert!(
        again.stdout.contains("Note: node.rcc1: a reboot is pending (/var/run/reboot-required); `reconciler upgrade` reboots"),
        "{}",
        again.stdout
    );
    assert!(!again.stdout.contains("~ node"), "{}", again.stdout);
    apply(&dir);
    let restarts = boards.exec(0, "wc -l < /var/log/app-restarts");
    assert_eq!(restarts.stdout.trim(), "1");

    // A hand edit is drift: shown as a diff, put right, `then` run.
    boards
        .exec(
            0,
            "echo 'port = 9090' > /etc/boardcfg/app.conf && chmod 644 /etc/boardcfg/app.conf",
        )
        .expect_code(0);
    let drift = plan(&dir);
    contains_all(
        &drift,
        &[
            "# node.rcc1 will be configured",
            "+ update /etc/boardcfg/app.conf: content, mode 0644 → 0640",
            "          - port = 9090",
            "          + port = 8080",
        ],
    );
    apply(&dir);
    let fixed = boards.exec(
        0,
        "cat /etc/boardcfg/app.conf; wc -l < /var/log/app-restarts",
    );
    assert_eq!(fixed.stdout, "port = 8080\n2\n");

    // A removal apt would widen (libonig5 takes jq with it) is refused.
    spec.write(
        "cluster.toml",
        &spec_text(
            &boards,
            &format!("{DECLARED}\n[node.rcc2.board]\nabsent_packages = [\"libonig5\"]\n"),
        ),
    );
    let widened = reconciler_binary(
        &["apply", &dir, "--ssh", "--auto-approve", "--timeout", "3m"],
        &[],
    );
    assert_ne!(widened.code, 0, "{}", widened.stdout);
    assert!(
        widened
            .stderr
            .contains("removing them would also remove: jq"),
        "{}\n{}",
        widened.stdout,
        widened.stderr
    );
    let still = boards.exec(1, "dpkg-query -W -f='${Package}' jq");
    assert_eq!(still.stdout, "jq", "{still:?}");

    // The spec drops it all: the cluster's packages and files go, rcc1's
    // own motd comes back, rcc2 keeps the jq it had.
    spec.write("cluster.toml", &spec_text(&boards, ""));
    let dropped = plan(&dir);
    contains_all(
        &dropped,
        &[
            "+ remove package(s) jq, tree",
            "+ remove package(s) tree",
            "+ put the board's own /etc/motd back (the cluster had replaced it)",
            "+ remove /etc/boardcfg/app.conf (the cluster created it)",
            "+ cmdline.txt: take out cgroup_enable=memory",
            "+ remove /etc/docker/daemon.json (the cluster created it)",
        ],
    );
    apply(&dir);
    let boot = boards.exec(0, "cat /boot/firmware/cmdline.txt");
    assert_eq!(
        boot.stdout, "console=tty1 root=PARTUUID=4e639091-02 rootwait cgroup_memory=1\n",
        "the board's own cgroup_memory=1 stays"
    );
    let rcc1 = boards.exec(
        0,
        "cat /etc/motd; ls /etc/boardcfg; dpkg-query -W -f='${Status}\\n' tree jq 2>&1 | grep -c ' installed$'; cat /etc/reconciler/owned",
    );
    assert_eq!(
        rcc1.stdout, "Debian GNU/Linux, as it came.\n0\n",
        "{rcc1:?}"
    );
    let rcc2 = boards.exec(
        1,
        "dpkg-query -W -f='${Package} ${Status}\\n' jq tree 2>/dev/null | grep ' installed$' | cut -d' ' -f1",
    );
    assert_eq!(rcc2.stdout, "jq\n", "{rcc2:?}");
}
