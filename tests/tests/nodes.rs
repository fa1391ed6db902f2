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
fn three_bare_boards_become_a_swarm_in_one_apply_and_a_second_apply_changes_nothing() {
    require_swarm();
    let boards = Boards::start("rcb-", 21, 3);
    let _registry = Registry::start();
    let spec = spec_for(&boards);
    let dir = spec.arg();

    let first = reconciler(&["apply", &dir, "--ssh", "--auto-approve", "--timeout", "3m"]);
    assert_eq!(
        first.code, 0,
        "first apply failed:\n{}\n{}",
        first.stdout, first.stderr
    );
    assert!(
        first.stdout.contains("# node.rcb2 will be bootstrapped")
            && first.stdout.contains("+ install Docker"),
        "{}",
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
    let placed = boards.exec(
        0,
        "docker service ps blink --filter desired-state=running --format '{{.Node}}' | sort",
    );
    assert_eq!(placed.stdout, "rcb2\nrcb3\n", "{placed:?}");
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

    let second = reconciler(&["apply", &dir, "--ssh", "--auto-approve"]);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(
        !second.stdout.contains("will be bootstrapped"),
        "{}",
        second.stdout
    );
    assert!(second.stdout.contains("No changes."), "{}", second.stdout);

    // No join token anywhere in what the user saw.
    for kind in ["worker", "manager"] {
        let token = boards
            .exec(0, &format!("docker swarm join-token -q {kind}"))
            .stdout
            .trim()
            .to_string();
        assert!(token.starts_with("SWMTKN-"), "{token}");
        for text in [&first.stdout, &first.stderr, &second.stdout, &second.stderr] {
            assert!(
                !text.contains(&token),
                "a join token leaked into the output"
            );
        }
    }
}
