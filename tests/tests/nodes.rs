//! The node layer end to end: simulated bare boards (containers with sshd and
//! no Docker) become a swarm with one `apply --ssh`.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use reconciler_tests::boards::{Boards, Registry, REGISTRY};
use reconciler_tests::{reconciler_binary, require_swarm, Output, SpecDir};

/// Every `reconciler` run of a test, through the real binary with debug
/// logging, so the final check can look for join tokens in all of it.
#[derive(Default)]
struct Runs(std::cell::RefCell<Vec<Output>>);

impl Runs {
    fn run(&self, args: &[&str]) -> Output {
        let output = reconciler_binary(args, &[("RECONCILER_LOG", "debug")]);
        self.0.borrow_mut().push(output.clone());
        output
    }

    /// Fails if any stdout or stderr so far holds `secret`.
    fn assert_never_printed(&self, secret: &str, what: &str) {
        for (index, output) in self.0.borrow().iter().enumerate() {
            assert!(
                !output.stdout.contains(secret) && !output.stderr.contains(secret),
                "{what} leaked into run {index}"
            );
        }
    }
}

fn spec_for(boards: &Boards) -> SpecDir {
    spec_named(boards, &["rcb1", "rcb2", "rcb3"])
}

fn spec_named(boards: &Boards, names: &[&str]) -> SpecDir {
    let spec = SpecDir::new("boards");
    spec.write(
        "cluster.toml",
        &format!(
            r#"[cluster]
name = "boards"

[ssh]
user = "pi"
identity = "{identity}"
known_hosts = "{known}"

[bootstrap]
hostname = true
hosts_file = true
# `ghost` is no user of the boards: a note, never a step (issue 22).
docker_users = ["pi", "ghost"]
install_docker = "apt-get update -qq && apt-get install -y -qq docker.io iptables >/dev/null"
# The boards have no systemd (see TESTBED.md); real Pis keep the default.
start_docker = "nohup dockerd --insecure-registry {REGISTRY} >/var/log/dockerd.log 2>&1 </dev/null &"
"#,
            identity = boards.identity().display(),
            known = boards.known_hosts().display(),
        ),
    );
    let mut nodes = String::new();
    for (index, name) in names.iter().enumerate() {
        let (role, labels) = if index == 0 {
            ("manager", "")
        } else {
            ("worker", "labels = { leds = \"true\" }\n")
        };
        nodes.push_str(&format!(
            "[node.{name}]\naddress = \"{}\"\nrole = \"{role}\"\n{labels}\n",
            boards.address(index)
        ));
    }
    spec.write("nodes.toml", &nodes);
    spec.write(
        "services.toml",
        &format!(
            "[service.blink]\nimage = \"{REGISTRY}/busybox:1\"\nmode = \"global\"\ncommand = [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\nconstraints = [\"node.labels.leds == true\"]\nports = [{{ target = 80, published = 8080, mode = \"host\" }}]\n"
        ),
    );
    spec
}

/// The tests share the registry port and the boards' network: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn three_bare_boards_become_a_swarm_and_stay_one() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    require_swarm();
    let boards = Boards::start("rcb-", 21, 3);
    let _registry = Registry::start();
    let spec = spec_for(&boards);
    let dir = spec.arg();
    let runs = Runs::default();

    // rcb3 lost power in the middle of an earlier apt-get: dpkg's journal
    // is left behind and apt itself refuses to run until it is finished.
    let cut_off = boards.exec(2, "touch /var/lib/dpkg/updates/0001 && apt-get check 2>&1");
    assert!(
        cut_off.code != 0 && cut_off.stdout.contains("dpkg was interrupted"),
        "{cut_off:?}"
    );

    // plan --ssh --json says what each bare board needs before anything happens.
    let planned = runs.run(&["plan", &dir, "--ssh", "--json"]).expect_code(0);
    let planned: serde_json::Value =
        serde_json::from_str(&planned.stdout).unwrap_or_else(|e| panic!("{e}: {}", planned.stdout));
    assert_eq!(planned["swarm_planned"], false, "{planned:#}");
    assert_eq!(
        planned["boards"]["bootstrap"].as_array().map(Vec::len),
        Some(3),
        "{planned:#}"
    );
    assert_eq!(planned["boards"]["bootstrap"][0]["node"], "rcb1");
    assert!(
        planned["boards"]["bootstrap"][0]["steps"]
            .to_string()
            .contains("initialize the swarm"),
        "{planned:#}"
    );

    // One apply: Docker installed and started on all three, the swarm formed, labels set, the service placed.
    let started = std::time::Instant::now();
    let first = runs.run(&["apply", &dir, "--ssh", "--auto-approve", "--timeout", "3m"]);
    let bootstrap_time = started.elapsed();
    assert_eq!(
        first.code, 0,
        "first apply failed:\n{}\n{}",
        first.stdout, first.stderr
    );
    for board in ["rcb1", "rcb2", "rcb3"] {
        assert!(
            first
                .stdout
                .contains(&format!("# node.{board} will be bootstrapped")),
            "{}",
            first.stdout
        );
    }
    assert!(
        first.stdout.contains("+ install Docker"),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("+ finish the interrupted package installation (dpkg --configure -a)"),
        "{}",
        first.stdout
    );
    boards.exec(2, "apt-get check").expect_code(0);
    println!("bootstrap of 3 bare boards (one apply, including the service): {bootstrap_time:.1?}");

    // Checked through the manager itself, not through the code under test.
    let nodes = boards.exec(
        0,
        "docker node ls --format '{{.Hostname}} {{.Status}}' | sort",
    );
    assert_eq!(
        nodes.stdout, "rcb1 Ready\nrcb2 Ready\nrcb3 Ready\n",
        "{nodes:?}"
    );
    let label = boards.exec(
        0,
        "docker node inspect rcb2 --format '{{index .Spec.Labels \"leds\"}}'",
    );
    assert_eq!(label.stdout.trim(), "true");
    assert_eq!(wait_for_placement(&boards, "blink"), "rcb2\nrcb3\n");
    let hosts = boards.exec(2, "grep -A3 '^# BEGIN reconciler' /etc/hosts");
    assert!(
        hosts
            .stdout
            .contains(&format!("{} rcb1", boards.address(0))),
        "{hosts:?}"
    );
    for index in [1, 2] {
        let page = std::process::Command::new("busybox")
            .args([
                "wget",
                "-qO-",
                &format!("http://{}:8080/", boards.address(index)),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        assert!(
            page.contains("hello from reconciler"),
            "board {index} did not serve: {page:?}"
        );
    }

    // A second apply is a no-op: nothing to bootstrap, no swarm object written.
    let versions = "docker service inspect blink --format '{{.Version.Index}}'; docker node ls -q | xargs docker node inspect --format '{{.Version.Index}}'";
    let before = boards.exec(0, versions).stdout;
    let second = runs.run(&["apply", &dir, "--ssh", "--auto-approve"]);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(
        !second.stdout.contains("will be bootstrapped"),
        "{}",
        second.stdout
    );
    assert!(second.stdout.contains("No changes."), "{}", second.stdout);
    // Regression (issue 22): a docker_users entry no board has was a root
    // step on every board on every reconcile; now a note, and `pi` is in
    // the docker group after the first apply.
    assert!(
        second
            .stdout
            .contains("Note: node.rcb1: user \"ghost\" does not exist on this board"),
        "{}",
        second.stdout
    );
    let group = boards.exec(1, "getent group docker");
    assert!(group.stdout.trim_end().ends_with(":pi"), "{group:?}");
    assert_eq!(
        boards.exec(0, versions).stdout,
        before,
        "a no-op apply wrote to the swarm"
    );

    // A power cut takes the only manager's Docker away. Its board still holds
    // the swarm on disk, so the plan starts Docker there and never proposes a
    // new swarm (a second swarm would split the cluster); the same swarm
    // comes back with every board still in it.
    let cluster_id = |index: usize| {
        boards
            .exec(index, "docker info --format '{{.Swarm.Cluster.ID}}'")
            .stdout
            .trim()
            .to_string()
    };
    let node_id = |index: usize| {
        boards
            .exec(index, "docker info --format '{{.Swarm.NodeID}}'")
            .stdout
            .trim()
            .to_string()
    };
    let swarm_before = cluster_id(0);
    let node_ids_before: Vec<String> = (0..3).map(node_id).collect();
    boards
        .exec(
            0,
            // Everything dies at once and /run is cleared, as on a real board
            // (no init reaps here, so the pid files would look alive).
            "pkill -9 -x dockerd; pkill -9 -x containerd; pkill -9 -x containerd-shim; \
             rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid; \
             for i in $(seq 1 60); do docker info >/dev/null 2>&1 || exit 0; sleep 1; done; exit 1",
        )
        .expect_code(0);
    let powered_off = runs.run(&["plan", &dir, "--ssh"]);
    assert!(
        powered_off.stdout.contains("+ start Docker")
            && !powered_off.stdout.contains("initialize the swarm"),
        "{}\n{}",
        powered_off.stdout,
        powered_off.stderr
    );
    let repaired = runs.run(&["apply", &dir, "--ssh", "--auto-approve"]);
    assert!(
        repaired.stdout.contains("+ start Docker")
            && !repaired.stdout.contains("initialize the swarm"),
        "{}\n{}",
        repaired.stdout,
        repaired.stderr
    );
    let recovered = boards.exec(
        0,
        "for i in $(seq 1 60); do docker node ls >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1",
    );
    assert_eq!(
        recovered.code,
        0,
        "the swarm did not come back:\n{}\n{}\n{:?}",
        repaired.stdout,
        repaired.stderr,
        boards.exec(
            0,
            "docker info 2>&1 | grep -iA4 swarm; ps aux; tail -n 30 /var/log/dockerd.log"
        )
    );
    assert_eq!(cluster_id(0), swarm_before);
    let node_ids_after: Vec<String> = (0..3).map(node_id).collect();
    assert_eq!(node_ids_after, node_ids_before, "a board left its swarm");
    runs.run(&["apply", &dir, "--ssh", "--auto-approve"])
        .expect_code(0);

    // A Docker that hangs (frozen here) costs one bounded look, and the board
    // is named with what to do; the others are planned as usual.
    boards.exec(2, "pkill -STOP -x dockerd").expect_code(0);
    let frozen = runs.run(&["plan", &dir, "--ssh"]);
    boards.exec(2, "pkill -CONT -x dockerd").expect_code(0);
    assert!(
        frozen
            .stdout
            .contains("node rcb3: Docker does not answer (`docker info` took over 10 s)"),
        "{}\n{}",
        frozen.stdout,
        frozen.stderr
    );
    assert!(
        !frozen.stdout.contains("+ start Docker"),
        "{}",
        frozen.stdout
    );
    assert!(
        frozen
            .stdout
            .contains("Boards: 1 not checked (above); the next apply tries again."),
        "{}",
        frozen.stdout
    );

    // The manager's sshd is down when an apply starts: the board is named,
    // no other board is given a swarm of its own, and once sshd is back
    // nothing is left to do.
    boards.exec(0, "pkill -x sshd").expect_code(0);
    let no_manager = runs.run(&["apply", &dir, "--ssh", "--auto-approve"]);
    boards.exec(0, "/usr/sbin/sshd").expect_code(0);
    assert_ne!(no_manager.code, 0, "{}", no_manager.stdout);
    assert!(
        format!("{}{}", no_manager.stdout, no_manager.stderr).contains("node rcb1: cannot connect"),
        "{}\n{}",
        no_manager.stdout,
        no_manager.stderr
    );
    assert!(
        !no_manager.stdout.contains("initialize the swarm"),
        "{}",
        no_manager.stdout
    );
    let back = runs
        .run(&["apply", &dir, "--ssh", "--auto-approve"])
        .expect_code(0);
    assert!(back.stdout.contains("No changes."), "{}", back.stdout);

    // Promote a worker, then demote it again.
    let nodes_toml = std::fs::read_to_string(spec.path().join("nodes.toml")).unwrap_or_default();
    spec.write(
        "nodes.toml",
        &nodes_toml.replacen("role = \"worker\"", "role = \"manager\"", 1),
    );
    runs.run(&["apply", &dir, "--ssh", "--auto-approve"])
        .expect_code(0);
    let role = boards.exec(0, "docker node inspect rcb2 --format '{{.Spec.Role}}'");
    assert_eq!(role.stdout.trim(), "manager");

    spec.write("nodes.toml", &nodes_toml);
    runs.run(&["apply", &dir, "--ssh", "--auto-approve"])
        .expect_code(0);
    let role = boards.exec(0, "docker node inspect rcb2 --format '{{.Spec.Role}}'");
    assert_eq!(role.stdout.trim(), "worker");
    // (Refusing to demote the last manager is shown on the local swarm in tests/swarm.rs.)

    // rcb3 becomes a manager, then leaves the spec: drained (its tasks
    // move), demoted, it leaves the swarm over SSH and its node disappears.
    let services = std::fs::read_to_string(spec.path().join("services.toml")).unwrap_or_default();
    spec.write(
        "services.toml",
        &format!("{services}\n[service.spread]\nimage = \"{REGISTRY}/busybox:1\"\nreplicas = 2\ncommand = [\"sleep\", \"3600\"]\nconstraints = [\"node.labels.leds == true\"]\n"),
    );
    let rcb3_manager = nodes_toml.replace(
        &format!(
            "[node.rcb3]\naddress = \"{}\"\nrole = \"worker\"",
            boards.address(2)
        ),
        &format!(
            "[node.rcb3]\naddress = \"{}\"\nrole = \"manager\"",
            boards.address(2)
        ),
    );
    assert_ne!(rcb3_manager, nodes_toml);
    spec.write("nodes.toml", &rcb3_manager);
    runs.run(&["apply", &dir, "--ssh", "--auto-approve"])
        .expect_code(0);
    let role = boards.exec(0, "docker node inspect rcb3 --format '{{.Spec.Role}}'");
    assert_eq!(role.stdout.trim(), "manager");
    let without_rcb3: String = nodes_toml
        .split("[node.rcb3]")
        .next()
        .unwrap_or_default()
        .to_string();
    spec.write("nodes.toml", &without_rcb3);
    let removal = runs.run(&["apply", &dir, "--ssh", "--auto-approve"]);
    assert_eq!(removal.code, 0, "{}\n{}", removal.stdout, removal.stderr);
    assert!(
        removal.stdout.contains("- node \"rcb3\""),
        "{}",
        removal.stdout
    );
    let steps: Vec<&str> = removal
        .stderr
        .lines()
        .filter(|l| l.starts_with("node.rcb3: ") && !l.contains("task(s) left"))
        .collect();
    assert_eq!(
        steps,
        [
            "node.rcb3: removing",
            "node.rcb3: demoting",
            "node.rcb3: leaving the swarm"
        ],
        "{}",
        removal.stderr
    );
    let nodes = boards.exec(0, "docker node ls --format '{{.Hostname}}' | sort");
    assert_eq!(nodes.stdout, "rcb1\nrcb2\n", "{nodes:?}");
    assert_eq!(
        boards
            .exec(2, "docker info --format '{{.Swarm.LocalNodeState}}'")
            .stdout
            .trim(),
        "inactive"
    );
    assert_eq!(wait_for_placement(&boards, "spread"), "rcb2\nrcb2\n");

    // rcb3 comes back into the spec while it is down, together with a new
    // label for rcb2: rcb3 is reported by name and the rest is done anyway;
    // once rcb3 answers again, the next apply brings it in.
    let with_shelf = nodes_toml.replacen(
        "labels = { leds = \"true\" }",
        "labels = { leds = \"true\", shelf = \"b\" }",
        1,
    );
    assert_ne!(with_shelf, nodes_toml);
    spec.write("nodes.toml", &with_shelf);
    boards.exec(2, "pkill -x sshd");
    let planned = runs.run(&["plan", &dir, "--ssh", "--json"]).expect_code(0);
    let planned: serde_json::Value =
        serde_json::from_str(&planned.stdout).unwrap_or_else(|e| panic!("{e}: {}", planned.stdout));
    let unreachable = planned["boards"]["unreachable"].to_string();
    assert!(
        unreachable.contains("node rcb3: cannot connect to 10.77.0.23:22"),
        "{planned:#}"
    );
    assert_eq!(
        planned["boards"]["unreachable"].as_array().map(Vec::len),
        Some(1)
    );
    let down = runs.run(&["apply", &dir, "--ssh", "--auto-approve"]);
    assert_eq!(
        down.code, 1,
        "a board was down, so the apply must fail:\n{}\n{}",
        down.stdout, down.stderr
    );
    // Named once: in the plan's warnings, not again on stderr.
    assert_eq!(
        format!("{}{}", down.stdout, down.stderr)
            .matches("node rcb3: cannot connect to 10.77.0.23:22")
            .count(),
        1,
        "{}\n{}",
        down.stdout,
        down.stderr
    );
    let shelf = boards.exec(
        0,
        "docker node inspect rcb2 --format '{{index .Spec.Labels \"shelf\"}}'",
    );
    assert_eq!(
        shelf.stdout.trim(),
        "b",
        "the reachable boards' changes were not made"
    );
    spec.write("nodes.toml", &nodes_toml);
    boards.exec(2, "/usr/sbin/sshd");
    let back = runs.run(&["apply", &dir, "--ssh", "--auto-approve"]);
    assert_eq!(back.code, 0, "{}\n{}", back.stdout, back.stderr);
    assert!(
        back.stdout
            .contains("+ join the swarm as worker via 10.77.0.21"),
        "{}",
        back.stdout
    );
    let nodes = boards.exec(
        0,
        "docker node ls --filter role=worker --format '{{.Hostname}} {{.Status}}' | sort",
    );
    assert!(nodes.stdout.contains("rcb3 Ready"), "{nodes:?}");

    // Every board this cluster joined records it on itself and carries the
    // cluster's two labels (read with docker and cat, not with our code).
    let node_id = |index: usize| {
        boards
            .exec(index, "docker info --format '{{.Swarm.NodeID}}'")
            .stdout
            .trim()
            .to_string()
    };
    for (index, name) in ["rcb1", "rcb2", "rcb3"].into_iter().enumerate() {
        let labels = boards.exec(
            0,
            &format!("docker node inspect {name} --format '{{{{index .Spec.Labels \"io.reconciler.cluster\"}}}} {{{{index .Spec.Labels \"io.reconciler.node\"}}}}'"),
        );
        assert_eq!(labels.stdout.trim(), format!("boards {name}"), "{labels:?}");
        let record = boards.exec(index, "cat /etc/reconciler/membership");
        assert_eq!(
            record.stdout,
            format!("cluster=boards\nnode_id={}\n", node_id(index)),
            "{record:?}"
        );
    }

    // Regression (issue 10): removal sent `docker swarm leave` to whatever
    // board answered at a node's last address. The leaver now asks the board
    // which node it is first: told to remove a node ID it is not, rcb2 stays.
    let ssh = reconciler_spec::SshSettings {
        user: "pi".into(),
        port: 22,
        identity: boards.identity().display().to_string(),
        known_hosts: boards.known_hosts().display().to_string(),
    };
    let leaver = reconciler::node::Leaver::new(&ssh, reconciler::node::SshOptions::default());
    let refused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| {
            rt.block_on(leaver.leave(reconciler::node::LeavingBoard {
                node: "rcb-gone",
                address: boards.address(1),
                node_id: "0123456789abcdefghijklmno",
            }))
        });
    let message = match refused {
        Ok(Err(error)) => error.to_string(),
        other => panic!("the wrong node was told to leave: {other:?}"),
    };
    assert_eq!(
        message,
        format!(
            "node rcb-gone: the board at {} is swarm node {}, not swarm node 0123456789abcdefghijklmno; it was not told to leave",
            boards.address(1),
            node_id(1)
        )
    );
    assert_eq!(
        boards
            .exec(1, "docker info --format '{{.Swarm.LocalNodeState}}'")
            .stdout
            .trim(),
        "active"
    );

    // Regression (issue 10): a re-flashed board that re-joined under its old
    // name made the stale object's "leave" go to the fresh board, in a loop.
    // rcb3 is re-flashed (it forgets the swarm and our record) while its old
    // object stays behind, down. The next apply joins it afresh and, with a
    // zero grace, removes the stale object without contacting anyone: no
    // other board leaves.
    let old_rcb3 = node_id(2);
    let kept = [node_id(0), node_id(1)];
    boards.exec(
        2,
        "docker swarm leave --force >/dev/null; rm -rf /etc/reconciler",
    );
    boards.new_host_key(2);
    let until_down = format!(
        "for i in $(seq 1 60); do [ \"$(docker node inspect {old_rcb3} --format '{{{{.Status.State}}}}')\" = down ] && exit 0; sleep 1; done; exit 1"
    );
    boards.exec(0, &until_down).expect_code(0);
    let cluster_toml =
        std::fs::read_to_string(spec.path().join("cluster.toml")).unwrap_or_default();
    spec.write(
        "cluster.toml",
        &format!("{cluster_toml}\n[controller]\ndown_node_grace = \"0s\"\n"),
    );
    // Its new card has a new host key: refused by name, nothing runs there
    // until a person trusts the new key.
    let refused = runs.run(&["apply", &dir, "--ssh", "--auto-approve"]);
    assert!(
        refused.stderr.contains("node rcb3: host key changed")
            || refused.stdout.contains("node rcb3: host key changed"),
        "{}\n{}",
        refused.stdout,
        refused.stderr
    );
    assert_eq!(
        boards
            .exec(2, "docker info --format '{{.Swarm.LocalNodeState}}'")
            .stdout
            .trim(),
        "inactive",
        "something ran on the board with the unknown key"
    );
    boards.trust_host_key(2);
    let reflashed = runs.run(&["apply", &dir, "--ssh", "--auto-approve"]);
    assert_eq!(
        reflashed.code, 0,
        "{}\n{}",
        reflashed.stdout, reflashed.stderr
    );
    assert!(
        reflashed.stdout.contains(
            "down past down_node_grace: its object is removed, the board is not contacted"
        ),
        "{}",
        reflashed.stdout
    );
    assert!(
        !reflashed.stderr.contains("leaving the swarm"),
        "{}",
        reflashed.stderr
    );
    let nodes = boards.exec(
        0,
        "docker node ls --format '{{.ID}} {{.Hostname}} {{.Status}}' | sort -k2",
    );
    let new_rcb3 = node_id(2);
    assert_ne!(new_rcb3, old_rcb3);
    assert_eq!(
        nodes.stdout,
        format!(
            "{} rcb1 Ready\n{} rcb2 Ready\n{new_rcb3} rcb3 Ready\n",
            kept[0], kept[1]
        ),
        "{nodes:?}"
    );
    let after = runs
        .run(&["apply", &dir, "--ssh", "--auto-approve"])
        .expect_code(0);
    assert!(after.stdout.contains("No changes."), "{}", after.stdout);

    // No join token anywhere in what any run printed, debug logs included.
    for kind in ["worker", "manager"] {
        let token = boards
            .exec(0, &format!("docker swarm join-token -q {kind}"))
            .stdout
            .trim()
            .to_string();
        assert!(token.starts_with("SWMTKN-"), "{token}");
        runs.assert_never_printed(&token, &format!("the {kind} join token"));
    }
    runs.assert_never_printed("SWMTKN-", "a join token");
    assert!(
        first.stderr.contains("DEBUG"),
        "debug logging was not on: {}",
        first.stderr
    );
}

fn wait_for_placement(boards: &Boards, service: &str) -> String {
    reconciler_tests::wait_until(
        &format!("{service} to be placed"),
        std::time::Duration::from_secs(60),
        || {
            let placed = boards.exec(
            0,
            &format!("docker service ps {service} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}' | grep Running | cut -d' ' -f1 | sort"),
        );
            // Both services run two tasks: blink on rcb2 and rcb3, spread on the workers.
            if placed.stdout.lines().count() == 2 {
                Ok(placed.stdout)
            } else {
                Err(format!("{placed:?}"))
            }
        },
    )
}

/// `reconciler run --ssh` keeps the boards in the swarm without any apply:
/// two bare boards are bootstrapped, joined and given their service by the loop.
#[test]
fn the_controller_brings_bare_boards_in_by_itself() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    require_swarm();
    let boards = Boards::start("rcr-", 31, 2);
    let _registry = Registry::start();
    // rcr1 reports heat and throttling the way Raspberry Pi OS's vcgencmd does.
    boards
        .exec(
            0,
            "printf '%s\\n' '#!/bin/sh' 'case \"$1\" in' \"measure_temp) echo \\\"temp=48.3'C\\\" ;;\" 'get_throttled) echo throttled=0x50005 ;;' 'esac' > /usr/local/bin/vcgencmd && chmod 755 /usr/local/bin/vcgencmd && vcgencmd measure_temp",
        )
        .expect_code(0);
    // rcr2 has an upgrade waiting for a reboot, as Debian's packages say it.
    boards
        .exec(1, "touch /var/run/reboot-required")
        .expect_code(0);
    let spec = spec_named(&boards, &["rcr1", "rcr2"]);
    let dir = spec.arg();
    // An hour between resyncs: what follows is driven by Docker's events
    // (through the tunnel) and by retries, not by the timer.
    // `run` reaches boards with its own key and known_hosts, never the spec's.
    let identity = boards.identity().display().to_string();
    let known_hosts = boards.known_hosts().display().to_string();
    let controller = reconciler_tests::controller::Controller::start_with(
        &["--dir", &dir],
        &[
            "--ssh",
            "--interval",
            "1h",
            "--facts-max-age",
            "1h",
            "--ssh-identity",
            &identity,
            "--known-hosts",
            &known_hosts,
        ],
        reconciler_tests::controller::SecretFrom::File,
        &[("RECONCILER_LOG", "debug")],
    );
    reconciler_tests::wait_until(
        "the boards to form a swarm running blink",
        std::time::Duration::from_secs(240),
        || {
            let placed = boards.exec(0, "docker service ps blink --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' 2>/dev/null | grep Running | cut -d' ' -f1");
            if placed.stdout.trim() == "rcr2" {
                Ok(())
            } else {
                Err(format!(
                    "{placed:?}\n--- controller log\n{}",
                    controller.process.log()
                ))
            }
        },
    );
    let nodes = boards.exec(
        0,
        "docker node ls --format '{{.Hostname}} {{.Status}}' | sort",
    );
    assert_eq!(nodes.stdout, "rcr1 Ready\nrcr2 Ready\n", "{nodes:?}");
    wait_for_clean_reconcile(&controller);
    // The status draws each swarm node with its board's own facts and the
    // tasks placed on it; the page shows them.
    reconciler_tests::wait_until(
        "the status to show the boards' facts and blink on rcr2",
        std::time::Duration::from_secs(30),
        || {
            let status = controller.status();
            let node = |host: &str| {
                status["nodes"]
                    .as_array()
                    .and_then(|nodes| nodes.iter().find(|n| n["hostname"] == host))
                    .cloned()
                    .unwrap_or_default()
            };
            let (rcr1, rcr2) = (node("rcr1"), node("rcr2"));
            let ok = rcr1["board"]["node"] == "rcr1"
                && rcr1["board"]["temperature"] == "48.3'C"
                && rcr1["board"]["throttled"] == "0x50005"
                && rcr1["board"]["throttling"][0] == "under-voltage now"
                && rcr2["board"]["node"] == "rcr2"
                && rcr2["board"]["os"]
                    .as_str()
                    .is_some_and(|os| !os.is_empty())
                && rcr2["tasks"].to_string().contains("\"service\":\"blink\"")
                && rcr2["tasks"].to_string().contains("\"health\":\"running\"");
            ok.then_some(()).ok_or(format!("{status:#}"))
        },
    );
    // Board health as data: the status's conditions and measurements, and
    // the metrics per board.
    let status = controller.status();
    let rcr2 = status["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["hostname"] == "rcr2"))
        .cloned()
        .unwrap_or_default();
    assert!(
        rcr2["board"]["conditions"]
            .to_string()
            .contains("\"kind\":\"reboot-required\""),
        "{rcr2:#}"
    );
    assert!(
        rcr2["board"]["health"]["memory_total_bytes"]
            .as_u64()
            .is_some_and(|m| m > 0)
            && rcr2["board"]["health"]["boot_time_seconds"].is_number(),
        "{rcr2:#}"
    );
    let metrics =
        reconciler_tests::http::get(controller.address, "/metrics").expect("GET /metrics");
    for sample in [
        "reconciler_board_temperature_celsius{node=\"rcr1\"} 48.3",
        "reconciler_board_throttled_bits{node=\"rcr1\"} 327685",
        "reconciler_board_condition{condition=\"under-voltage\",node=\"rcr1\",severity=\"critical\"} 1",
        "reconciler_board_reboot_required{node=\"rcr2\"} 1",
        "reconciler_board_reboot_required{node=\"rcr1\"} 0",
        "reconciler_board_condition{condition=\"reboot-required\",node=\"rcr2\",severity=\"info\"} 1",
        "reconciler_board_memory_total_bytes{node=\"rcr2\"} ",
        "reconciler_board_disk_free_bytes{node=\"rcr1\"} ",
        "reconciler_board_upgradable_packages{node=\"rcr2\"} ",
        "reconciler_board_boot_time_seconds{node=\"rcr1\"} ",
    ] {
        assert!(
            metrics.body.contains(sample),
            "{sample} not in /metrics:\n{}",
            metrics.body
        );
    }
    let page = reconciler_tests::http::get(controller.address, "/").expect("GET /");
    for part in [
        "data-condition=\"reboot-required\"",
        "board <b>rcr1</b>",
        "temperature 48.3&#x27;C", // the apostrophe escaped
        // vcgencmd's bits in words, the raw value kept in the title.
        "<span class=\"bad\" title=\"vcgencmd get_throttled = 0x50005\">under-voltage now, throttled now, under-voltage since boot, throttled since boot</span>",
        "data-service=\"blink\" data-state=\"running\"",
        // A global service counts the tasks Swarm wants, as `docker service ls` does.
        "<td class=\"ok\">1 / 1 (global)</td>",
    ] {
        assert!(
            page.body.contains(part),
            "{part} not on the page:\n{}",
            page.body
        );
    }
    // The same in a real browser: a column per board; the screenshot is kept.
    let mut browser = reconciler_tests::browser::Browser::start();
    browser.navigate(&format!("http://{}/", controller.address));
    let columns = browser.evaluate(
        "[...document.querySelectorAll('section.node[data-node-id]')].map(n => n.dataset.node).sort().join(' ')",
    );
    assert_eq!(columns, "rcr1 rcr2");
    browser.screenshot(&reconciler_tests::browser::artifact_path(
        "status-page-boards.png",
    ));
    drop(browser);
    // Between reconciles the boards' SSH sessions stay open and Docker's
    // events come through the tunnel: a service removed by hand is back
    // within seconds (the next resync is an hour away), over the same
    // connections, and no board is asked for its facts again.
    let peers = [ssh_peers(&boards, 0), ssh_peers(&boards, 1)];
    assert!(!peers[0].is_empty() && !peers[1].is_empty(), "{peers:?}");
    let log = || controller.process.log();
    let learned = facts_learned(&log());
    boards.exec(0, "docker service rm blink").expect_code(0);
    wait_for_blink_on(
        &boards,
        "rcr2",
        "blink back, by an event through the tunnel",
        &log,
    );
    wait_for_clean_reconcile(&controller);
    assert_eq!(
        [ssh_peers(&boards, 0), ssh_peers(&boards, 1)],
        peers,
        "a reconcile opened new SSH connections"
    );
    assert_eq!(
        facts_learned(&log()),
        learned,
        "facts were learned again though nothing changed on the boards"
    );
    let last = controller.status()["last_reconcile"]["triggers"].to_string();
    assert!(last.contains("docker-event"), "{last}");
    // Progress reaches the log a line at a time, not a word at a time.
    assert!(
        log().contains("INFO reconciler::runtime::report: service.blink: creating"),
        "{}",
        log()
    );

    // A connection that breaks is replaced: the manager's sessions are cut
    // (the tunnel and the event stream with them); the controller notices
    // the lost stream, reconnects, learns that board's facts again, and
    // events flow through the new tunnel.
    boards.exec(0, "pkill -f 'sshd: p[i]'").expect_code(0);
    reconciler_tests::wait_until(
        "rcr1 reached over a new connection",
        std::time::Duration::from_secs(60),
        || {
            let now = ssh_peers(&boards, 0);
            (facts_learned(&log()).0 > learned.0 && !now.is_empty() && now != peers[0])
                .then_some(())
                .ok_or(format!("{now}\n--- controller log\n{}", log()))
        },
    );
    boards.exec(0, "docker service rm blink").expect_code(0);
    wait_for_blink_on(&boards, "rcr2", "blink back, through the new tunnel", &log);
    wait_for_clean_reconcile(&controller);

    // No join token in anything the controller shows: its debug log, its
    // status, its metrics, its page.
    let mut shown = vec![("the log", controller.process.log())];
    for path in ["/api/status", "/metrics", "/"] {
        let response = reconciler_tests::http::get(controller.address, path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(response.status, 200, "{path}");
        shown.push((path, response.body));
    }
    for (what, text) in &shown {
        assert!(!text.contains("SWMTKN-"), "a join token reached {what}");
    }
    assert!(shown[0].1.contains("DEBUG"), "debug logging was not on");

    // A standby never works on the boards. The holder dies (its lease stays
    // on the swarm), a board then needs a step, and a second controller only
    // reports it while the lease is another's; once the lease has stayed
    // unchanged for its ttl by the standby's own clock, it takes it and does
    // the step.
    let mut controller = controller;
    let holder = controller.status()["lease"].clone();
    assert_eq!(holder, "held", "{holder}");
    controller.process.kill();
    boards
        .exec(
            1,
            // (/etc/hosts is a bind mount here: rewritten in place, not renamed.)
            "sed '/^# BEGIN reconciler/,/^# END reconciler/d' /etc/hosts > /tmp/hosts && cat /tmp/hosts > /etc/hosts",
        )
        .expect_code(0);
    let standby = reconciler_tests::controller::Controller::start_with(
        &["--dir", &dir],
        &[
            "--ssh",
            "--interval",
            "2s",
            "--holder-id",
            "standby-1",
            "--facts-max-age",
            "3s",
            "--ssh-identity",
            &identity,
            "--known-hosts",
            &known_hosts,
        ],
        reconciler_tests::controller::SecretFrom::File,
        &[],
    );
    reconciler_tests::wait_until(
        "the standby to report the board's step as the lease holder's",
        std::time::Duration::from_secs(60),
        || {
            let status = standby.status();
            let pending = status["pending"].to_string();
            (status["last_reconcile"]["result"] == "standby"
                && pending.contains("node.rcr2 needs: write the managed block of /etc/hosts"))
            .then_some(())
            .ok_or(format!("{status:#}"))
        },
    );
    let hosts = boards.exec(1, "grep -c '^# BEGIN reconciler' /etc/hosts");
    assert_eq!(hosts.stdout.trim(), "0", "the standby wrote /etc/hosts");
    reconciler_tests::wait_until(
        "the standby to take the lease and write /etc/hosts",
        std::time::Duration::from_secs(120),
        || {
            let hosts = boards.exec(1, "grep -c '^# BEGIN reconciler' /etc/hosts");
            (hosts.stdout.trim() == "1" && standby.status()["lease"] == "held")
                .then_some(())
                .ok_or(format!("{hosts:?}\n{:#}", standby.status()))
        },
    );
    let label = boards.exec(
        0,
        "docker info --format '{{index .Swarm.Cluster.Spec.Labels \"io.reconciler.lease.boards\"}}'",
    );
    assert!(label.stdout.starts_with("standby-1 "), "{label:?}");
    // With --facts-max-age 3s the standby asked rcr1 again every few
    // seconds though nothing changed there (and rcr2, which had a step to
    // plan, on every pass).
    let asked = standby
        .process
        .log()
        .matches("node rcr1: reachable")
        .count();
    assert!(asked >= 3, "rcr1's facts were learned {asked} times");

    // A board that stops answering is named on the status and the page
    // with its reason, until it answers again.
    boards.exec(1, "pkill -x sshd").expect_code(0);
    reconciler_tests::wait_until(
        "the controller to name rcr2 as unreachable",
        std::time::Duration::from_secs(60),
        || {
            let status = standby.status();
            let problem = &status["board_problems"][0];
            (problem["node"] == "rcr2" && problem["error"]["reason"] == "board_unreachable")
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
    let page = reconciler_tests::http::get(standby.address, "/").expect("GET /");
    assert!(
        page.body
            .contains("<li data-node=\"rcr2\" data-reason=\"board_unreachable\"><b>rcr2</b>"),
        "{}",
        page.body
    );
    boards.exec(1, "/usr/sbin/sshd").expect_code(0);
    reconciler_tests::wait_until(
        "rcr2's problem to clear once it answers",
        std::time::Duration::from_secs(60),
        || {
            let status = standby.status();
            (status["board_problems"] == serde_json::json!([]))
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
}

/// The SSH connections a board has open: its peers' address:port, sorted.
fn ssh_peers(boards: &Boards, index: usize) -> String {
    boards
        .exec(
            index,
            "ss -Htn state established '( sport = :22 )' | awk '{print $4}' | sort",
        )
        .stdout
}

/// How many times each board's facts were learned (rcr1, rcr2), by the log.
fn facts_learned(log: &str) -> (usize, usize) {
    (
        log.matches("node rcr1: reachable").count(),
        log.matches("node rcr2: reachable").count(),
    )
}

fn wait_for_blink_on(boards: &Boards, node: &str, what: &str, log: &dyn Fn() -> String) {
    reconciler_tests::wait_until(what, std::time::Duration::from_secs(90), || {
        let placed = boards.exec(0, "docker service ps blink --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' 2>/dev/null | grep Running | cut -d' ' -f1");
        if placed.stdout.trim() == node {
            Ok(())
        } else {
            Err(format!("{placed:?}\n--- controller log\n{}", log()))
        }
    });
}

fn wait_for_clean_reconcile(controller: &reconciler_tests::controller::Controller) {
    reconciler_tests::wait_until(
        "a clean reconcile",
        std::time::Duration::from_secs(60),
        || {
            let status = controller.status();
            (status["last_reconcile"]["result"] == "success"
                && status["last_reconcile"]["plan"]["add"] == 0)
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
}

/// A board whose sudo asks for a password (a user not set up like Raspberry
/// Pi OS's `pi`): every board step is refused with the board's name and the
/// line that fixes it, and nothing runs on it.
#[test]
fn a_board_whose_sudo_wants_a_password_is_named_with_the_fix() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    require_swarm();
    let boards = Boards::start("rcs-", 41, 1);
    let spec = SpecDir::new("sudo");
    spec.write(
        "cluster.toml",
        &format!(
            "[cluster]\nname = \"sudo\"\n[ssh]\nuser = \"nopass\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\n[node.rcs1]\naddress = \"{}\"\nrole = \"manager\"\n",
            boards.identity().display(),
            boards.known_hosts().display(),
            boards.address(0)
        ),
    );
    let dir = spec.arg();
    let facts = reconciler_binary(&["facts", &dir, "--json"], &[]);
    assert_eq!(facts.code, 1, "{}\n{}", facts.stdout, facts.stderr);
    let facts: serde_json::Value =
        serde_json::from_str(&facts.stdout).unwrap_or_else(|e| panic!("{e}: {}", facts.stdout));
    assert_eq!(facts["rcs1"]["kind"], "auth", "{facts:#}");
    assert_eq!(
        facts["rcs1"]["error"],
        "node rcs1: board steps run as root through `sudo -n`, but for nopass sudo asks for a password; allow it without a password, as Raspberry Pi OS does for `pi`: on the board run `echo 'nopass ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/010_nopass-nopasswd`, or log in as root"
    );
    let applied = reconciler_binary(&["apply", &dir, "--ssh", "--auto-approve"], &[]);
    assert_eq!(applied.code, 1, "{}\n{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stderr
            .contains("node rcs1: board steps run as root through `sudo -n`"),
        "{}",
        applied.stderr
    );
    // Nothing was done: no hostname, no hosts block, no Docker.
    assert_eq!(boards.exec(0, "cat /etc/hostname").stdout.trim(), "bare-1");
    assert_eq!(
        boards
            .exec(0, "grep -c reconciler /etc/hosts")
            .stdout
            .trim(),
        "0"
    );
    assert_ne!(boards.exec(0, "command -v docker").code, 0);
}
