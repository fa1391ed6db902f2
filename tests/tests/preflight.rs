//! Pre-flight against the real thing: a registry holding a multi-platform
//! image index made with the docker CLI (`docker manifest create/push`), a
//! port held by a service made by hand, and boards whose facts differ the
//! way a real Pi's do (memory cgroup off, no VXLAN, the other iptables
//! back-end, a small disk). Each finding is named by `plan`, and `apply`
//! refuses it until `--allow-preflight` names it.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use reconciler_tests::boards::{Boards, Registry, BARE_IMAGE, TRIXIE_IMAGE};
use reconciler_tests::*;
use serde_json::Value;

/// Loopback only: the local daemon trusts it over plain HTTP.
const PORT: u16 = 5078;

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

fn local() -> String {
    format!("unix://{DOCKER_SOCKET}")
}

/// `repo:tag` in the test registry.
fn at(name: &str) -> String {
    format!("127.0.0.1:{PORT}/pf/{name}")
}

/// Pushes `image` to the registry as `name` and returns the reference.
fn push(image: &str, name: &str) -> String {
    let reference = at(name);
    docker(&["tag", image, &reference]);
    docker(&["push", "-q", &reference]);
    reference
}

/// An image index of `(image, os/arch[/variant])` entries, pushed as `name`.
fn index(name: &str, entries: &[(&str, &str)]) -> String {
    let reference = at(name);
    // A list left in the CLI's local store by an earlier run would be amended.
    docker_unchecked(&["manifest", "rm", &reference]);
    let mut create = vec!["manifest", "create", "--insecure", &reference];
    create.extend(entries.iter().map(|(image, _)| *image));
    docker(&create);
    for (image, platform) in entries {
        let mut parts = platform.split('/');
        let os = parts.next().unwrap_or("linux");
        let arch = parts.next().unwrap_or("amd64");
        let mut annotate = vec![
            "manifest", "annotate", "--os", os, "--arch", arch, &reference, image,
        ];
        let variant = parts.next();
        if let Some(variant) = variant {
            annotate.extend(["--variant", variant]);
        }
        docker(&annotate);
    }
    docker(&["manifest", "push", "--insecure", "--purge", &reference]);
    reference
}

fn findings(json: &str) -> Vec<(String, String, String)> {
    let document: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("plan --json is not JSON ({e}):\n{json}"));
    document["preflight"]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap_or_default().to_string(),
                f["severity"].as_str().unwrap_or_default().to_string(),
                f["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Images the registry does not have or has for no platform of this
/// swarm, and a port a hand-made service holds: named by `plan`, refused
/// by `apply` with nothing written, and once fixed the apply goes through.
#[test]
fn images_platforms_and_held_ports_are_found_before_anything_is_written() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-pf", "pf-");
    let _registry = Registry::on_loopback(PORT);
    let amd64 = push(IMAGE, "app:amd64");
    let other = push(IMAGE_V2, "app:other");
    let arm_only = index(
        "arm-only:1",
        &[(&other, "linux/arm64"), (&amd64, "linux/arm/v7")],
    );
    let multi = index(
        "multi:1",
        &[(&amd64, "linux/amd64"), (&other, "linux/arm64")],
    );
    docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        "pf-byhand",
        "--publish",
        "mode=host,published=18091,target=80",
        IMAGE,
        "sleep",
        "3600",
    ]);

    let spec = SpecDir::new("t-pf");
    let missing = at("nope:1");
    spec.write(
        "s.toml",
        &format!(
            "[service.pf-arm]\nimage = \"{arm_only}\"\ncommand = [\"sleep\", \"3600\"]\n\
             [service.pf-missing]\nimage = \"{missing}\"\n\
             [service.pf-web]\nimage = \"{multi}\"\ncommand = [\"sleep\", \"3600\"]\nports = [{{ target = 80, published = 18091, mode = \"host\" }}]\n"
        ),
    );
    let plan = reconciler(&["plan", &spec.arg(), "--docker-host", &local()]).expect_code(1);
    assert!(plan.stdout.contains("Pre-flight:"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains(&format!(
            "service.pf-missing [image] image `{missing}` does not exist"
        )),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("service.pf-arm [platform]")
            && plan
                .stdout
                .contains("(linux/amd64); it is built for linux/arm/v7, linux/arm64"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(
            "service.pf-web [port] published port 18091/tcp is held by service `pf-byhand`"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stderr
            .contains("pre-flight found 3 blocker(s) (image, platform, port)")
            && plan
                .stderr
                .contains("--allow-preflight image,platform,port"),
        "{}",
        plan.stderr
    );
    let json =
        reconciler(&["plan", &spec.arg(), "--json", "--docker-host", &local()]).expect_code(1);
    assert_eq!(
        findings(&json.stdout),
        [
            ("image", "blocker", "service.pf-missing"),
            ("platform", "blocker", "service.pf-arm"),
            ("port", "blocker", "service.pf-web"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );

    // apply shows the same, then refuses: nothing is written.
    let apply = reconciler(&[
        "apply",
        &spec.arg(),
        "--auto-approve",
        "--docker-host",
        &local(),
    ])
    .expect_code(1);
    assert!(
        apply.stdout.contains("[platform]") && apply.stderr.contains("pre-flight found 3"),
        "{}\n{}",
        apply.stdout,
        apply.stderr
    );
    for service in ["pf-arm", "pf-missing", "pf-web"] {
        assert_ne!(
            docker_unchecked(&["service", "inspect", service]).code,
            0,
            "{service} was created although pre-flight refused"
        );
    }

    // Allowing one check by name is not allowing the others.
    let partly = reconciler(&[
        "apply",
        &spec.arg(),
        "--auto-approve",
        "--allow-preflight",
        "port",
        "--docker-host",
        &local(),
    ])
    .expect_code(1);
    assert!(
        partly
            .stderr
            .contains("pre-flight found 2 blocker(s) (image, platform)"),
        "{}",
        partly.stderr
    );

    // Fixed: the holder is gone, the services that cannot run are out.
    docker(&["service", "rm", "pf-byhand"]);
    // Its container holds the port until it has stopped (`sleep` waits out
    // the 10 s grace period), as does any left by an earlier run.
    wait_until(
        "the port's holder to stop",
        std::time::Duration::from_secs(60),
        || {
            let holders = docker(&["ps", "-q", "--filter", "publish=18091"]);
            holders.trim().is_empty().then_some(()).ok_or(holders)
        },
    );
    spec.write(
        "s.toml",
        &format!(
            "[service.pf-web]\nimage = \"{multi}\"\ncommand = [\"sleep\", \"3600\"]\nports = [{{ target = 80, published = 18091, mode = \"host\" }}]\n"
        ),
    );
    // Swarm's scheduler frees the port a moment after the container is
    // gone (when the agent reports the task down): the service is written
    // now and Swarm places its task then.
    let applied = reconciler(&[
        "apply",
        &spec.arg(),
        "--auto-approve",
        "--no-wait",
        "--docker-host",
        &local(),
    ])
    .expect_code(0);
    assert!(
        !applied.stdout.contains("Pre-flight:"),
        "{}",
        applied.stdout
    );
    wait_until(
        "pf-web to run from the multi-platform image",
        std::time::Duration::from_secs(90),
        || match running_tasks("pf-web") {
            1 => Ok(()),
            n => Err(format!("{n} running")),
        },
    );
}

/// Two managers is a warning named by `plan`, not a refusal.
#[test]
fn an_even_number_of_managers_is_named() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-pfm", "pfm-");
    let spec = SpecDir::new("t-pfm");
    spec.write(
        "s.toml",
        &format!("[node.m1]\naddress = \"10.77.0.201\"\nrole = \"manager\"\n[node.m2]\naddress = \"10.77.0.202\"\nrole = \"manager\"\n[service.pfm-web]\nimage = \"{IMAGE}\"\n"),
    );
    let plan = reconciler(&[
        "plan",
        &spec.arg(),
        "--allow-other-swarm",
        "--docker-host",
        &local(),
    ])
    .expect_code(0);
    assert!(
        plan.stdout.contains(
            "! cluster [managers] 2 managers: an even number tolerates no more failures than 1"
        ),
        "{}",
        plan.stdout
    );
}

/// Boards that differ the way real Pis do: `rcp2` has no memory cgroup
/// (Docker started without one, as with Raspberry Pi OS's default
/// cmdline), a kernel without VXLAN (no module to load), iptables on the
/// legacy back-end while `rcp1` uses nf_tables, a 1 GiB disk for
/// Docker's data, and a clock an hour ahead; and it runs Debian 13, whose
/// Docker (26.1) is not the manager's (Debian 12's 20.10). `rcp3`, a
/// board without Docker whose kernel says `armv6l` (a Pi Zero's `uname -m`;
/// a container shares the host's kernel, so the board's `uname` says so),
/// joins the spec for the last plan.
#[test]
fn board_facts_that_break_a_swarm_are_found_before_anything_is_written() {
    require_swarm();
    let boards = Boards::start_images("rcp-", 35, &[BARE_IMAGE, TRIXIE_IMAGE, BARE_IMAGE]);
    // A small disk for Docker's data, and no VXLAN in this kernel's view.
    boards
        .exec(
            1,
            "mount -t tmpfs -o size=1g,exec tmpfs /var/lib/docker && mount -t tmpfs none /sys/module",
        )
        .expect_code(0);
    // A registry the boards reach, empty: the first apply's image is a typo.
    let _registry = Registry::for_boards(5079);
    let spec = SpecDir::new("preflight");
    spec.write(
        "boards.toml",
        &format!(
            r#"[ssh]
user = "pi"
identity = "{identity}"
known_hosts = "{known}"

[bootstrap]
install_docker = "apt-get update -qq && apt-get install -y -qq docker.io iptables >/dev/null"
# The boards have no systemd (see TESTBED.md); real Pis keep the default.
start_docker = "nohup dockerd --insecure-registry 10.77.0.1:5079 >/var/log/dockerd.log 2>&1 </dev/null &"

[node.rcp1]
address = "{a1}"
role = "manager"

[node.rcp2]
address = "{a2}"
role = "worker"
"#,
            identity = boards.identity().display(),
            known = boards.known_hosts().display(),
            a1 = boards.address(0),
            a2 = boards.address(1),
        ),
    );
    spec.write(
        "services.toml",
        "[service.pf-typo]\nimage = \"10.77.0.1:5079/pf/nope:1\"\n",
    );
    // The first apply: no swarm yet when the plan is shown, so pre-flight
    // runs once the boards have formed it, before any service is written.
    let first =
        reconciler_binary(&["apply", &spec.arg(), "--ssh", "--auto-approve"], &[]).expect_code(1);
    assert!(
        first.stdout.contains("Swarm changes after bootstrapping")
            && first.stdout.contains(
                "service.pf-typo [image] image `10.77.0.1:5079/pf/nope:1` does not exist"
            )
            && first
                .stderr
                .contains("pre-flight found 1 blocker(s) (image)"),
        "{}\n{}",
        first.stdout,
        first.stderr
    );
    let nodes = boards.exec(0, "docker node ls --format '{{.Hostname}}' | wc -l");
    assert_eq!(
        nodes.stdout.trim(),
        "2",
        "the boards formed the swarm: {nodes:?}"
    );
    let services = boards.exec(0, "docker service ls --format '{{.Name}}'");
    assert_eq!(services.stdout.trim(), "", "written despite the refusal");
    std::fs::remove_file(spec.path().join("services.toml")).expect("remove services.toml");
    reconciler_binary(&["apply", &spec.arg(), "--ssh", "--auto-approve"], &[]).expect_code(0);

    // rcp2's Docker restarts without the memory cgroup and on legacy iptables.
    boards
        .exec(
            1,
            "update-alternatives --quiet --set iptables /usr/sbin/iptables-legacy; \
             pkill -x dockerd; for i in $(seq 1 30); do pgrep -x dockerd >/dev/null || break; sleep 1; done; \
             pkill -x containerd; rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid; \
             umount /sys/fs/cgroup/memory; \
             nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null & \
             for i in $(seq 1 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done; tail -20 /var/log/dockerd.log; exit 1",
        )
        .expect_code(0);
    let memory = boards.exec(1, "docker info --format '{{.MemoryLimit}}'");
    assert_eq!(memory.stdout.trim(), "false", "{memory:?}");
    // A Pi without its network time: an hour ahead. A container cannot set
    // its own clock (it is the host's), so the board's `date` says so.
    boards
        .exec(
            1,
            "printf '#!/bin/sh\nif [ \"$1\" = +%%s ]; then echo $(( $(/usr/bin/date +%%s) + 3600 )); else exec /usr/bin/date \"$@\"; fi\n' > /usr/local/bin/date && chmod 755 /usr/local/bin/date && su - pi -c 'date +%s'",
        )
        .expect_code(0);

    spec.write(
        "services.toml",
        "[network.back]\n[service.pf-db]\nimage = \"10.77.0.1:5078/busybox:1\"\ncommand = [\"sleep\", \"3600\"]\nnetworks = [\"back\"]\nresources = { limit_memory = \"64M\" }\n",
    );
    let plan = reconciler_binary(&["plan", &spec.arg(), "--ssh"], &[]).expect_code(1);
    for expected in [
        "service.pf-db [memory-cgroup] sets a memory limit or reservation, but memory cgroups are off on `rcp2`",
        "service.pf-db [vxlan] attaches to an overlay network, but the kernel of `rcp2` has no VXLAN",
        "cluster [iptables] the boards' iptables use different back-ends (nf_tables on rcp1; legacy on rcp2)",
        "node.rcp2 [disk] only ",
        "node.rcp2 [clock] its clock is 36",
        "s ahead of the manager `rcp1`'s",
        "cluster [engine-version] the nodes run different Docker versions (20.10.24",
        "26.1.5",
    ] {
        assert!(
            plan.stdout.contains(expected),
            "missing `{expected}` in:\n{}\n{}",
            plan.stdout,
            plan.stderr
        );
    }
    assert!(!plan.stdout.contains("node.rcp1 [disk]"), "{}", plan.stdout);
    assert!(
        plan.stderr
            .contains("pre-flight found 2 blocker(s) (memory-cgroup, vxlan)"),
        "{}",
        plan.stderr
    );

    let refused =
        reconciler_binary(&["apply", &spec.arg(), "--ssh", "--auto-approve"], &[]).expect_code(1);
    assert!(
        refused.stderr.contains("pre-flight found 2 blocker(s)"),
        "{}",
        refused.stderr
    );
    let services = boards.exec(0, "docker service ls --format '{{.Name}}'");
    assert_eq!(services.stdout.trim(), "", "written despite the refusal");

    // Told to, apply goes on.
    reconciler_binary(
        &[
            "apply",
            &spec.arg(),
            "--ssh",
            "--auto-approve",
            "--no-wait",
            "--allow-preflight",
            "memory-cgroup,vxlan",
        ],
        &[],
    )
    .expect_code(0);
    let services = boards.exec(0, "docker service ls --format '{{.Name}}'");
    assert_eq!(services.stdout.trim(), "pf-db");

    // A Pi Zero joins the spec: Docker 29's own packages no longer install there.
    boards
        .exec(
            2,
            "printf '#!/bin/sh\nif [ \"$1\" = -m ]; then echo armv6l; else exec /usr/bin/uname \"$@\"; fi\n' > /usr/local/bin/uname && chmod 755 /usr/local/bin/uname && su - pi -c 'uname -m'",
        )
        .expect_code(0);
    let boards_toml =
        std::fs::read_to_string(spec.path().join("boards.toml")).expect("boards.toml");
    spec.write(
        "boards.toml",
        &format!(
            "{boards_toml}\n[node.rcp3]\naddress = \"{}\"\nrole = \"worker\"\n",
            boards.address(2)
        ),
    );
    let plan = reconciler_binary(&["plan", &spec.arg(), "--ssh", "--json"], &[]);
    let found = findings(&plan.stdout);
    assert!(
        found.contains(&(
            "docker-arch".to_string(),
            "warning".to_string(),
            "node.rcp3".to_string()
        )),
        "{found:?}\n{}\n{}",
        plan.stdout,
        plan.stderr
    );
    let plan = reconciler_binary(&["plan", &spec.arg(), "--ssh"], &[]);
    assert!(
        plan.stdout
            .contains("node.rcp3 [docker-arch] an ARMv6 board (Pi Zero / Pi 1) without Docker"),
        "{}\n{}",
        plan.stdout,
        plan.stderr
    );
}
