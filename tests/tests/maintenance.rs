//! `reconciler upgrade` on boards that really reboot (`Boards::start_rebootable`:
//! `reboot` drops the SSH connection and Docker restarts the board with its
//! disk, a fresh `/run` and only sshd running), upgrading real packages
//! from the Debian mirror's security suite. The upgrade is killed while a
//! board reboots; run again, it resumes there and finishes: every board
//! upgraded and rebooted once, its node ready and active again, the
//! service running throughout on the other board.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use std::time::{Duration, Instant};

use reconciler_tests::boards::{Boards, Registry};
use reconciler_tests::controller::{Controller, SecretFrom};
use reconciler_tests::{reconciler_binary, require_swarm, wait_until, SpecDir};

/// This test's registry: its own port, so it runs beside the others.
const REGISTRY_PORT: u16 = 5083;

fn spec(boards: &Boards) -> SpecDir {
    let registry = format!("10.77.0.1:{REGISTRY_PORT}");
    let spec = SpecDir::new("maintenance");
    spec.write(
        "cluster.toml",
        &format!(
            r#"{head}
[maintenance]
# Debian's security updates do not ask for a reboot on a board without
# a kernel of its own; every board reboots here, as after a kernel update.
reboot = "always"
boot_timeout = "3m"

[node.rcm1]
address = "{a1}"
role = "manager"

[node.rcm2]
address = "{a2}"
role = "worker"

[service.web]
image = "{registry}/busybox:1"
command = ["sleep", "86400"]
"#,
            head = boards.spec_head("maint", &format!("--insecure-registry {registry} ")),
            a1 = boards.address(0),
            a2 = boards.address(1),
        ),
    );
    spec
}

fn label_of(boards: &Boards, node: &str) -> String {
    boards
        .exec(
            0,
            &format!("docker node inspect {node} --format '{{{{index .Spec.Labels \"io.reconciler.maintenance\"}}}}' 2>/dev/null"),
        )
        .stdout
        .trim()
        .to_string()
}

#[test]
fn a_killed_rolling_upgrade_resumes_and_every_board_comes_back_upgraded() {
    require_swarm();
    let boards = Boards::start_rebootable("rcm-", 111, 2);
    let _registry = Registry::with_busybox(REGISTRY_PORT);
    let spec = spec(&boards);
    let dir = spec.arg();
    let applied = reconciler_binary(
        &["apply", &dir, "--ssh", "--auto-approve", "--timeout", "3m"],
        &[],
    );
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);

    // Debian's security suite has newer packages than the board's image.
    for board in 0..2 {
        boards
            .exec(
                board,
                "echo 'deb http://deb.debian.org/debian-security bookworm-security main' >> /etc/apt/sources.list && apt-get update -qq && touch /run/booted-before",
            )
            .expect_code(0);
    }
    let pending = boards.exec(1, "apt-get -s upgrade 2>/dev/null | grep -c '^Inst '");
    let pending: u32 = pending.stdout.trim().parse().unwrap_or(0);
    assert!(pending > 0, "nothing to upgrade on the board");

    // The plan: the worker first, then the manager.
    let shown = reconciler_binary(&["upgrade", &dir], &[]);
    assert!(
        shown.stdout.contains(&format!(
            "1. node.rcm2 (worker): {pending} package(s) to upgrade"
        )) && shown.stdout.contains("2. node.rcm1 (manager)"),
        "{}\n{}",
        shown.stdout,
        shown.stderr
    );
    assert!(
        shown.stderr.contains("stdin is not a terminal"),
        "{}",
        shown.stderr
    );

    // Started, then killed while the worker reboots.
    let started = Instant::now();
    let mut first = std::process::Command::new(reconciler_tests::process::binary())
        .args(["upgrade", &dir, "--auto-approve"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("reconciler upgrade");
    wait_until(
        "the worker to be rebooting",
        Duration::from_secs(300),
        || {
            let label = label_of(&boards, "rcm2");
            if label.starts_with("reboot") {
                Ok(())
            } else {
                Err(format!("rcm2's mark: {label:?}"))
            }
        },
    );
    first.kill().expect("kill the upgrade");
    let _ = first.wait();
    // Where it stopped is on the node: drained, marked.
    let stopped = boards.exec(
        0,
        "docker node inspect rcm2 --format '{{.Spec.Availability}}'",
    );
    assert_eq!(stopped.stdout.trim(), "drain", "{stopped:?}");

    let resumed = reconciler_binary(&["upgrade", &dir, "--auto-approve"], &[]);
    let took = started.elapsed();
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    assert!(
        resumed
            .stdout
            .contains("node.rcm2 (worker): resuming at reboot"),
        "{}",
        resumed.stdout
    );
    println!("rolling upgrade of 2 boards ({pending} packages each, a reboot each, killed once): {took:.1?}");

    for (board, node) in [(0, "rcm1"), (1, "rcm2")] {
        let left = boards.exec(board, "apt-get -s upgrade 2>/dev/null | grep -c '^Inst '");
        assert_eq!(left.stdout.trim(), "0", "{node} not upgraded: {left:?}");
        let rebooted = boards.exec(
            board,
            "test -e /run/booted-before && echo same boot || echo rebooted",
        );
        assert_eq!(rebooted.stdout.trim(), "rebooted", "{node}");
        assert_eq!(label_of(&boards, node), "", "{node} still marked");
    }
    // A manager just back from its reboot reports the others `Unknown`
    // until they check in again.
    wait_until(
        "both nodes ready and active",
        Duration::from_secs(60),
        || {
            let nodes = boards.exec(
                0,
                "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}' | sort",
            );
            if nodes.stdout == "rcm1 Ready Active\nrcm2 Ready Active\n" {
                Ok(())
            } else {
                Err(format!("{nodes:?}"))
            }
        },
    );
    let web = boards.exec(
        0,
        "docker service ls --filter name=web --format '{{.Replicas}}'",
    );
    assert_eq!(web.stdout.trim(), "1/1", "{web:?}");
    // Nothing left to do.
    let again = reconciler_binary(&["upgrade", &dir, "--auto-approve"], &[]);
    assert!(
        again.stdout.contains("Nothing to upgrade"),
        "{}\n{}",
        again.stdout,
        again.stderr
    );
}

/// A one-board cluster whose board is `node`, with this `[maintenance]`.
fn one_board_spec(boards: &Boards, cluster: &str, node: &str, maintenance: &str) -> String {
    format!(
        r#"{head}
[maintenance]
{maintenance}

[node.{node}]
address = "{address}"
role = "manager"
"#,
        head = boards.spec_head(cluster, ""),
        address = boards.address(0),
    )
}

/// `reconciler run --dir DIR --ssh` with the boards' key, and `extra`.
fn run_with_ssh(boards: &Boards, dir: &str, extra: &[&str]) -> Controller {
    let identity = boards.identity().display().to_string();
    let known_hosts = boards.known_hosts().display().to_string();
    let mut args = vec![
        "--ssh",
        "--ssh-identity",
        &identity,
        "--known-hosts",
        &known_hosts,
    ];
    args.extend_from_slice(extra);
    Controller::start_with(&["--dir", dir], &args, SecretFrom::File, &[])
}

/// `reconciler run --ssh` with `[maintenance] window`: outside the window
/// the board only waits (the status says so); once the spec's window
/// holds the present, the controller drains, upgrades and reboots the
/// board by itself and gives it back. The one manager reboots under the
/// controller's own tunnel, with a lease ttl shorter than the reboot: the
/// lease lapses and is taken back.
#[test]
fn run_upgrades_a_board_in_its_window_and_only_then() {
    require_swarm();
    let boards = Boards::start_rebootable("rcu-", 115, 1);
    let spec = SpecDir::new("maintenance-run");
    let write = |window: &str| {
        let maintenance =
            format!("reboot = \"always\"\nboot_timeout = \"3m\"\nwindow = \"{window}\"");
        spec.write(
            "cluster.toml",
            &one_board_spec(&boards, "upkeep", "rcu1", &maintenance),
        );
    };
    // A window that opens two hours from now.
    let hour = (reconciler::timestamp::unix_now() / 3600 + 2) % 24;
    let later = format!("{hour:02}:00-{:02}:00", (hour + 1) % 24);
    write(&later);
    boards
        .exec(
            0,
            "echo 'deb http://deb.debian.org/debian-security bookworm-security main' >> /etc/apt/sources.list && touch /run/booted-before",
        )
        .expect_code(0);
    let dir = spec.arg();
    let controller = run_with_ssh(
        &boards,
        &dir,
        &[
            "--interval",
            "1h",
            "--facts-max-age",
            "5s",
            "--lease-ttl",
            "6s",
            "--apply-timeout",
            "5s",
        ],
    );
    let maintenance = |c: &Controller| c.status()["maintenance"].as_str().unwrap_or("").to_string();
    // The swarm formed, and the board waits for its window.
    let waiting = format!("1 board(s) to upgrade in the window {later} UTC");
    wait_until(
        "the board to wait for its window",
        Duration::from_secs(300),
        || {
            let said = maintenance(&controller);
            if said == waiting {
                Ok(())
            } else {
                Err(format!("{said:?}\n{}", controller.process.log()))
            }
        },
    );
    let pending = boards.exec(0, "apt-get -s upgrade 2>/dev/null | grep -c '^Inst '");
    let pending: u32 = pending.stdout.trim().parse().unwrap_or(0);
    assert!(pending > 0, "nothing to upgrade on the board");
    assert_eq!(label_of(&boards, "rcu1"), "");
    // The status page says it too.
    let page = reconciler_tests::http::get(controller.address, "/").expect("GET /");
    assert!(
        page.body.contains(&format!(
            "<span class=\"chip\" id=\"maintenance\">upgrades: {waiting}</span>"
        )),
        "{}",
        page.body
    );
    // `plan --ssh` says the same, and what will happen in the window.
    let planned = reconciler_binary(&["plan", &dir, "--ssh"], &[]);
    assert!(
        planned.stdout.contains(&format!("node.rcu1: {pending} package(s) can be upgraded: `reconciler run --ssh` takes it in the window {later} UTC"))
            || planned.stderr.contains(&format!("node.rcu1: {pending} package(s) can be upgraded: `reconciler run --ssh` takes it in the window {later} UTC")),
        "{}\n{}",
        planned.stdout,
        planned.stderr
    );

    // The window is now: the controller takes the board by itself.
    let started = Instant::now();
    write("00:00-24:00");
    wait_until("the board to be upgraded", Duration::from_secs(400), || {
        let said = maintenance(&controller);
        let log = controller.process.log();
        if said == "every board is up to date" && log.contains("rolling upgrade: rcu1 done") {
            Ok(())
        } else {
            Err(format!("{said:?}\n{log}"))
        }
    });
    println!(
        "run upgraded its one manager ({pending} packages, a reboot) in {:.1?}",
        started.elapsed()
    );
    let log = controller.process.log();
    for stage in [
        "node rcu1: draining",
        "node rcu1: upgrading",
        "node rcu1: rebooting",
        "node rcu1: back after its reboot",
        "node rcu1: done, active again",
    ] {
        assert!(log.contains(stage), "no {stage:?} in\n{log}");
    }
    let left = boards.exec(0, "apt-get -s upgrade 2>/dev/null | grep -c '^Inst '");
    assert_eq!(left.stdout.trim(), "0", "not upgraded: {left:?}");
    let rebooted = boards.exec(
        0,
        "test -e /run/booted-before && echo same boot || echo rebooted",
    );
    assert_eq!(rebooted.stdout.trim(), "rebooted");
    assert_eq!(label_of(&boards, "rcu1"), "");
    let node = boards.exec(
        0,
        "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}'",
    );
    assert_eq!(node.stdout, "rcu1 Ready Active\n", "{node:?}");
    // The lease lapsed while the one manager rebooted, and was taken back
    // (the board's return is written only under it).
    assert!(
        log.contains("could not renew the lease") && !log.contains("lost the lease"),
        "{log}"
    );
}

/// `run --ssh` looking after a board. `[maintenance] prune_images`: an
/// image no container uses is removed, one a stopped container uses is
/// kept. `drain_on`: a board whose `vcgencmd get_throttled` says
/// under-voltage now (the test bed's stand-in for Raspberry Pi OS's
/// vcgencmd, as the firmware reports it) is drained, its availability kept
/// on the node; once only "since boot" is left, it is given back.
#[test]
fn run_prunes_old_images_and_drains_an_under_voltage_board_until_it_recovers() {
    require_swarm();
    let boards = Boards::start("rcv-", 117, 1);
    let throttled = |value: &str| {
        boards
            .exec(
                0,
                &format!("printf '#!/bin/sh\\n[ \"$1\" = get_throttled ] && echo throttled={value}\\n' > /usr/local/bin/vcgencmd && chmod 755 /usr/local/bin/vcgencmd"),
            )
            .expect_code(0);
    };
    throttled("0x0");
    let spec = SpecDir::new("health-drain");
    spec.write(
        "cluster.toml",
        &one_board_spec(
            &boards,
            "health",
            "rcv1",
            "drain_on = [\"under-voltage\", \"disk-full\"]\nprune_images = \"1s\"",
        ),
    );
    let dir = spec.arg();
    let applied = reconciler_binary(&["apply", &dir, "--ssh", "--auto-approve"], &[]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    // Two images on the board: one a (stopped) container uses, one unused.
    boards
        .exec(
            0,
            "for name in junk kept; do tar c /etc/hostname 2>/dev/null | docker import - $name:1 >/dev/null || exit 1; done; docker create --name keeper kept:1 true >/dev/null && sleep 2",
        )
        .expect_code(0);
    let controller = run_with_ssh(
        &boards,
        &dir,
        &["--interval", "3s", "--facts-max-age", "2s"],
    );
    let node = |boards: &Boards| {
        let shown = boards.exec(
            0,
            "docker node inspect rcv1 --format '{{.Spec.Availability}} {{index .Spec.Labels \"io.reconciler.health-drain\"}}' 2>/dev/null",
        );
        shown.stdout.trim().to_string()
    };
    let wait_for = |what: &str, expected: &str| {
        wait_until(what, Duration::from_secs(240), || {
            let now = node(&boards);
            if now == expected {
                Ok(())
            } else {
                Err(format!("{now:?}\n{}", controller.process.log()))
            }
        });
    };
    wait_for("the swarm to form with rcv1 active", "active");
    wait_until(
        "the old image to be pruned",
        Duration::from_secs(60),
        || {
            let log = controller.process.log();
            if log.contains("node rcv1: pruned 1 old image(s) (junk:1)") {
                Ok(())
            } else {
                Err(log)
            }
        },
    );
    let images = boards.exec(
        0,
        "docker image ls --format '{{.Repository}}:{{.Tag}}' | sort",
    );
    assert_eq!(images.stdout, "kept:1\n", "{images:?}");

    throttled("0x50005");
    wait_for("rcv1 to be drained", "drain under-voltage active");
    let log = controller.process.log();
    assert!(
        log.contains("node rcv1 drained for its health: under-voltage now"),
        "{log}"
    );
    // The planner leaves it drained: later reconciles keep it so.
    controller.wait_for_reconciles(2);
    assert_eq!(node(&boards), "drain under-voltage active");

    // The supply recovered; the firmware still says it dipped since boot.
    throttled("0x50000");
    wait_for("rcv1 to be given back", "active");
    assert!(
        controller
            .process
            .log()
            .contains("node rcv1 is healthy again: active again"),
        "{}",
        controller.process.log()
    );
}
