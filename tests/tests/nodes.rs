//! The node layer end to end: simulated bare boards (containers with sshd and
//! no Docker) become a swarm with one `apply --ssh`.

use reconciler_tests::boards::{Boards, Registry, REGISTRY};
use reconciler_tests::{reconciler, require_swarm, SpecDir};

fn spec_for(boards: &Boards) -> SpecDir {
    let spec = SpecDir::new("boards");
    spec.write(
        "cluster.toml",
        &format!(
            r#"[cluster]
name = "boards"

[ssh]
user = "root"
identity = "{identity}"
known_hosts = "{known}"

[bootstrap]
hostname = true
hosts_file = true
install_docker = "apt-get update -qq && apt-get install -y -qq docker.io iptables >/dev/null"
# The boards have no systemd (see TESTBED.md); real Pis keep the default.
start_docker = "nohup dockerd --insecure-registry {REGISTRY} >/var/log/dockerd.log 2>&1 </dev/null &"
"#,
            identity = boards.identity().display(),
            known = boards.known_hosts().display(),
        ),
    );
    spec.write(
        "nodes.toml",
        &format!(
            "[node.rcb1]\naddress = \"{}\"\nrole = \"manager\"\n\n[node.rcb2]\naddress = \"{}\"\nrole = \"worker\"\nlabels = {{ leds = \"true\" }}\n\n[node.rcb3]\naddress = \"{}\"\nrole = \"worker\"\nlabels = {{ leds = \"true\" }}\n",
            boards.address(0),
            boards.address(1),
            boards.address(2)
        ),
    );
    spec.write(
        "services.toml",
        &format!(
            "[service.blink]\nimage = \"{REGISTRY}/busybox:1\"\nmode = \"global\"\ncommand = [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\nconstraints = [\"node.labels.leds == true\"]\nports = [{{ target = 80, published = 8080, mode = \"host\" }}]\n"
        ),
    );
    spec
}

#[test]
fn three_bare_boards_become_a_swarm_and_stay_one() {
    require_swarm();
    let boards = Boards::start("rcb-", 21, 3);
    let _registry = Registry::start();
    let spec = spec_for(&boards);
    let dir = spec.arg();

    // rcb3 is down at first: it is reported by name, and the others converge without it.
    boards.exec(2, "pkill -x sshd");
    let partial = reconciler(&["apply", &dir, "--ssh", "--auto-approve", "--timeout", "3m"]);
    assert_eq!(
        partial.code, 1,
        "a board was down, so the apply must fail:\n{}\n{}",
        partial.stdout, partial.stderr
    );
    assert!(
        partial
            .stderr
            .contains("node rcb3: cannot connect to 10.77.0.23:22"),
        "{}",
        partial.stderr
    );
    assert!(
        partial.stdout.contains("# node.rcb2 will be bootstrapped"),
        "{}",
        partial.stdout
    );
    assert!(
        partial.stdout.contains("+ install Docker"),
        "{}",
        partial.stdout
    );
    let two = boards.exec(
        0,
        "docker node ls --format '{{.Hostname}} {{.Status}}' | sort",
    );
    assert_eq!(two.stdout, "rcb1 Ready\nrcb2 Ready\n", "{two:?}");

    // It comes back: the next apply brings it in, and only it.
    boards.exec(2, "/usr/sbin/sshd");
    let first = reconciler(&["apply", &dir, "--ssh", "--auto-approve", "--timeout", "3m"]);
    assert_eq!(
        first.code, 0,
        "apply failed:\n{}\n{}",
        first.stdout, first.stderr
    );
    assert!(
        first.stdout.contains("# node.rcb3 will be bootstrapped"),
        "{}",
        first.stdout
    );
    assert!(
        !first.stdout.contains("# node.rcb2 will be bootstrapped"),
        "rcb2 was already done: {}",
        first.stdout
    );

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
    let placed = wait_for_placement(&boards);
    assert_eq!(placed, "rcb2\nrcb3\n");
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
    let second = reconciler(&["apply", &dir, "--ssh", "--auto-approve"]);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(
        !second.stdout.contains("will be bootstrapped"),
        "{}",
        second.stdout
    );
    assert!(second.stdout.contains("No changes."), "{}", second.stdout);
    assert_eq!(
        boards.exec(0, versions).stdout,
        before,
        "a no-op apply wrote to the swarm"
    );

    // Promote a worker, then demote it again.
    let nodes_toml = std::fs::read_to_string(spec.path().join("nodes.toml")).unwrap_or_default();
    spec.write(
        "nodes.toml",
        &nodes_toml.replacen("role = \"worker\"", "role = \"manager\"", 1),
    );
    reconciler(&["apply", &dir, "--ssh", "--auto-approve"]).expect_code(0);
    let role = boards.exec(0, "docker node inspect rcb2 --format '{{.Spec.Role}}'");
    assert_eq!(role.stdout.trim(), "manager");
    spec.write("nodes.toml", &nodes_toml);
    reconciler(&["apply", &dir, "--ssh", "--auto-approve"]).expect_code(0);
    let role = boards.exec(0, "docker node inspect rcb2 --format '{{.Spec.Role}}'");
    assert_eq!(role.stdout.trim(), "worker");
    // (Refusing to demote the last manager is shown on the local swarm in tests/swarm.rs.)

    // rcb3 leaves the spec: drained, its tasks move, it leaves the swarm and disappears.
    spec.write(
        "services.toml",
        &format!("{}\n[service.spread]\nimage = \"{REGISTRY}/busybox:1\"\nreplicas = 2\ncommand = [\"sleep\", \"3600\"]\nconstraints = [\"node.role == worker\"]\n", std::fs::read_to_string(spec.path().join("services.toml")).unwrap_or_default()),
    );
    reconciler(&["apply", &dir, "--ssh", "--auto-approve"]).expect_code(0);
    let without_rcb3: String = nodes_toml
        .split("[node.rcb3]")
        .next()
        .unwrap_or_default()
        .to_string();
    spec.write("nodes.toml", &without_rcb3);
    let removal = reconciler(&["apply", &dir, "--ssh", "--auto-approve"]);
    assert_eq!(removal.code, 0, "{}\n{}", removal.stdout, removal.stderr);
    assert!(
        removal.stdout.contains("- node \"rcb3\""),
        "{}",
        removal.stdout
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
    reconciler_tests::wait_until(
        "spread's tasks to run on rcb2",
        std::time::Duration::from_secs(60),
        || {
            let placed = boards.exec(0, "docker service ps spread --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' | grep Running | cut -d' ' -f1 | sort");
            (placed.stdout == "rcb2\nrcb2\n")
                .then_some(())
                .ok_or(format!("{placed:?}"))
        },
    );

    // No join token anywhere in what the user saw.
    for kind in ["worker", "manager"] {
        let token = boards
            .exec(0, &format!("docker swarm join-token -q {kind}"))
            .stdout
            .trim()
            .to_string();
        assert!(token.starts_with("SWMTKN-"), "{token}");
        for text in [
            &partial.stdout,
            &partial.stderr,
            &first.stdout,
            &first.stderr,
            &second.stdout,
            &second.stderr,
        ] {
            assert!(
                !text.contains(&token),
                "a join token leaked into the output"
            );
        }
    }
}

fn wait_for_placement(boards: &Boards) -> String {
    reconciler_tests::wait_until(
        "blink to run on rcb2 and rcb3",
        std::time::Duration::from_secs(60),
        || {
            let placed = boards.exec(0, "docker service ps blink --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' | grep Running | cut -d' ' -f1 | sort");
            if placed.stdout == "rcb2\nrcb3\n" {
                Ok(placed.stdout)
            } else {
                Err(format!("{placed:?}"))
            }
        },
    )
}
