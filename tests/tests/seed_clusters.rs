//! The example clusters (the hand-built Pi clusters of the seed posts),
//! brought up for real: each example's rendered spec, on simulated bare
//! boards that log in as `pi`, in one `apply --ssh`; placement checked
//! against the example's own labels and constraints, and a second apply is a
//! no-op.
//!
//! What is changed, and why: node addresses become the boards' (at most four
//! boards per example; the first managers, then workers, by name), `arch`
//! pins go (the boards are x86_64; the arch check has its own tests), `[ssh]`
//! and the install/start commands are the test bed's (no systemd, Debian's
//! docker.io), and every image is the local registry's busybox (no internet),
//! so `command`, `args` and `healthcheck` written for the real images go too.
//! Everything else — names, roles, labels, networks, constraints, charts'
//! output, replicas, ports, mounts, resources — is the example's.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use std::collections::BTreeMap;

use reconciler_tests::boards::{Boards, Registry, REGISTRY};
use reconciler_tests::{reconciler_binary, repo_path, require_swarm, SpecDir};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A spec node as far as placement is concerned.
#[derive(Debug, Clone)]
struct Placed {
    role: String,
    labels: BTreeMap<String, String>,
}

/// The example rendered (charts expanded) and pointed at `boards`; the nodes
/// kept, by name.
fn adapt(example: &str, boards: &Boards, count: usize) -> (String, BTreeMap<String, Placed>) {
    let dir = repo_path(&format!("examples/{example}"))
        .display()
        .to_string();
    let rendered = reconciler_binary(&["render", &dir], &[]).expect_code(0);
    let mut spec: toml::Table = rendered
        .stdout
        .parse()
        .unwrap_or_else(|e| panic!("render output of {example}: {e}"));
    spec.insert(
        "ssh".into(),
        toml::Value::Table(toml::toml! {
            user = "pi"
        }),
    );
    if let Some(ssh) = spec.get_mut("ssh").and_then(toml::Value::as_table_mut) {
        ssh.insert(
            "identity".into(),
            boards.identity().display().to_string().into(),
        );
        ssh.insert(
            "known_hosts".into(),
            boards.known_hosts().display().to_string().into(),
        );
    }
    if let Some(bootstrap) = spec
        .get_mut("bootstrap")
        .and_then(toml::Value::as_table_mut)
    {
        bootstrap.insert(
            "install_docker".into(),
            "apt-get update -qq && apt-get install -y -qq docker.io iptables >/dev/null".into(),
        );
        bootstrap.insert(
            "start_docker".into(),
            format!("nohup dockerd --insecure-registry {REGISTRY} >/var/log/dockerd.log 2>&1 </dev/null &").into(),
        );
    }
    let nodes = spec
        .get_mut("node")
        .and_then(toml::Value::as_table_mut)
        .unwrap_or_else(|| panic!("{example} has no nodes"));
    let mut names: Vec<(bool, String)> = nodes
        .iter()
        .map(|(name, node)| {
            (
                node.get("role").and_then(toml::Value::as_str) != Some("manager"),
                name.clone(),
            )
        })
        .collect();
    names.sort();
    let kept: Vec<String> = names
        .into_iter()
        .take(count)
        .map(|(_, name)| name)
        .collect();
    nodes.retain(|name, _| kept.iter().any(|k| k == name));
    let mut placed = BTreeMap::new();
    for (index, name) in kept.iter().enumerate() {
        let Some(node) = nodes.get_mut(name).and_then(toml::Value::as_table_mut) else {
            continue;
        };
        node.insert("address".into(), boards.address(index).into());
        node.remove("arch");
        node.remove("ssh");
        node.remove("host_key");
        placed.insert(
            name.clone(),
            Placed {
                role: node
                    .get("role")
                    .and_then(toml::Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                labels: node
                    .get("labels")
                    .and_then(toml::Value::as_table)
                    .map(|labels| {
                        labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
        );
    }
    if let Some(services) = spec.get_mut("service").and_then(toml::Value::as_table_mut) {
        for (_, service) in services.iter_mut() {
            let Some(service) = service.as_table_mut() else {
                continue;
            };
            service.insert("image".into(), format!("{REGISTRY}/busybox:1").into());
            service.remove("command");
            service.remove("args");
            service.remove("healthcheck");
        }
    }
    (
        toml::to_string(&spec).unwrap_or_else(|e| panic!("{e}")),
        placed,
    )
}

/// Whether a node satisfies one of the example's placement constraints.
fn satisfies(node: &str, placed: &Placed, constraint: &str) -> bool {
    let (key, value, equal) = if let Some((k, v)) = constraint.split_once("!=") {
        (k.trim(), v.trim(), false)
    } else if let Some((k, v)) = constraint.split_once("==") {
        (k.trim(), v.trim(), true)
    } else {
        panic!("constraint {constraint:?} has no operator");
    };
    let actual = match key {
        "node.role" => placed.role.clone(),
        "node.hostname" => node.to_string(),
        label if label.starts_with("node.labels.") => placed
            .labels
            .get(&label["node.labels.".len()..])
            .cloned()
            .unwrap_or_default(),
        other => panic!("this test does not read constraint key {other:?}"),
    };
    (actual == value) == equal
}

/// `device`: a device node the example's services bind (iot-cluster's
/// Blinkt! needs the Pi's `/dev/gpiomem`). The first apply runs without it
/// and must fail naming the service, as `docker service ps` would show; the
/// device is then made (what the Pi's hardware provides) and the next apply
/// brings everything up.
fn bring_up(example: &str, first_address: u8, device: Option<&str>) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    require_swarm();
    let boards = Boards::start(&format!("rcx{first_address}-"), first_address, 4);
    let _registry = Registry::start();
    let (body, placed) = adapt(example, &boards, 4);
    let count = placed.len();
    let spec = SpecDir::new(example);
    spec.write("cluster.toml", &body);
    let dir = spec.arg();
    if let Some(device) = device {
        let missing = reconciler_binary(
            &["apply", &dir, "--ssh", "--auto-approve", "--timeout", "30s"],
            &[],
        );
        assert_ne!(
            missing.code, 0,
            "{example}: converged without {device}:\n{}",
            missing.stdout
        );
        assert!(
            missing.stderr.contains("bind source path does not exist"),
            "{example}: {}\n{}",
            missing.stdout,
            missing.stderr
        );
        for index in 0..count {
            boards
                .exec(index, &format!("touch {device}"))
                .expect_code(0);
        }
    }
    let first = reconciler_binary(
        &["apply", &dir, "--ssh", "--auto-approve", "--timeout", "3m"],
        &[],
    );
    assert_eq!(
        first.code, 0,
        "{example}: the first apply failed:\n{}\n{}\n--- spec\n{body}",
        first.stdout, first.stderr
    );

    // Every board is a node, with its role and the example's labels.
    let listed = boards.exec(
        0,
        "docker node ls --format '{{.Hostname}} {{.Status}}' | sort",
    );
    let expected: String = placed
        .keys()
        .map(|name| format!("{name} Ready\n"))
        .collect();
    assert_eq!(listed.stdout, expected, "{example}: {listed:?}");

    // Every running task sits on a node its constraints allow; a global
    // service runs once on each such node.
    let services: toml::Table = body.parse().unwrap_or_default();
    let services = services
        .get("service")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    assert!(!services.is_empty(), "{example} has no services");
    for (name, service) in &services {
        let constraints: Vec<String> = service
            .get("constraints")
            .and_then(toml::Value::as_array)
            .map(|c| {
                c.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let allowed: Vec<&String> = placed
            .iter()
            .filter(|(node, p)| constraints.iter().all(|c| satisfies(node, p, c)))
            .map(|(node, _)| node)
            .collect();
        let global = service.get("mode").and_then(toml::Value::as_str) == Some("global");
        let replicas = service
            .get("replicas")
            .and_then(toml::Value::as_integer)
            .unwrap_or(1);
        let mut want: Vec<String> = allowed.iter().map(|a| (*a).clone()).collect();
        want.sort_unstable();
        // (After the device appeared, Swarm's restart delay passes first.)
        reconciler_tests::wait_until(
            &format!("{example}: {name} to run where its constraints allow"),
            std::time::Duration::from_secs(90),
            || {
                let tasks = boards.exec(
                    0,
                    &format!("docker service ps {name} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}'"),
                );
                let mut running: Vec<String> = tasks
                    .stdout
                    .lines()
                    .filter(|line| line.contains("Running"))
                    .filter_map(|line| line.split_whitespace().next().map(str::to_string))
                    .collect();
                running.sort_unstable();
                if let Some(outside) = running.iter().find(|node| !want.contains(node)) {
                    panic!("{example}: {name} runs on {outside}, outside {constraints:?}");
                }
                let placed = if global {
                    running == want
                } else {
                    i64::try_from(running.len()).ok() == Some(replicas)
                };
                placed.then_some(()).ok_or(format!("{tasks:?}"))
            },
        );
    }

    let again = reconciler_binary(&["apply", &dir, "--ssh", "--auto-approve"], &[]).expect_code(0);
    assert!(
        again.stdout.contains("No changes."),
        "{example}: the second apply was not a no-op:\n{}",
        again.stdout
    );
}

#[test]
fn iot_cluster_comes_up_on_bare_boards() {
    bring_up("iot-cluster", 51, Some("/dev/gpiomem"));
}

#[test]
fn four_pi_comes_up_on_bare_boards() {
    bring_up("four-pi", 61, None);
}

#[test]
fn mixed_arch_comes_up_on_bare_boards() {
    bring_up("mixed-arch", 71, None);
}

#[test]
fn cluster_lab_comes_up_on_bare_boards() {
    bring_up("cluster-lab", 81, None);
}

#[test]
fn pi_hole_comes_up_on_bare_boards() {
    bring_up("pi-hole", 45, None);
}

/// `hundred-pis` planned against a hundred boards: the example as it is,
/// its addresses moved to the rack's (10.42.R.S → 10.78.R.S) and `[ssh]`
/// pointed at the test keys. Every board is a bare Debian answering as `pi`
/// with sudo; `plan --ssh` asks each one and plans exactly its steps: the
/// first manager forms the swarm, every other board joins it in its role.
/// Planning changes nothing on any board.
#[test]
fn hundred_pis_is_planned_against_a_hundred_boards() {
    let example = repo_path("examples/hundred-pis");
    let read = |name: &str| {
        std::fs::read_to_string(example.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let nodes_toml = read("nodes.toml").replace("\"10.42.", "\"10.78.");
    let nodes: toml::Table = nodes_toml.parse().expect("nodes.toml");
    let nodes = nodes["node"].as_table().expect("[node.*]").clone();
    assert_eq!(nodes.len(), 100);
    let addresses: Vec<String> = nodes
        .values()
        .map(|n| n["address"].as_str().expect("address").to_string())
        .collect();
    let rack = reconciler_tests::rack::Rack::start("rc-rack-hundred", &addresses);
    let spec = SpecDir::new("hundred-pis");
    let cluster = read("cluster.toml").replace(
        "known_hosts = \"/etc/reconciler/known_hosts\"",
        &format!(
            "known_hosts = \"{}\"\nidentity = \"{}\"",
            rack.known_hosts().display(),
            rack.identity().display()
        ),
    );
    assert!(cluster.contains(&rack.identity().display().to_string()));
    spec.write("cluster.toml", &cluster)
        .write("nodes.toml", &nodes_toml)
        .write("services.toml", &read("services.toml"));
    let dir = spec.arg();

    let started = std::time::Instant::now();
    let planned = reconciler_binary(
        &["plan", &dir, "--ssh", "--json", "--detailed-exitcode"],
        &[],
    );
    println!(
        "hundred-pis planned against 100 boards in {:.1?}",
        started.elapsed()
    );
    assert_eq!(planned.code, 2, "{}\n{}", planned.stdout, planned.stderr);
    let document: serde_json::Value =
        serde_json::from_str(&planned.stdout).unwrap_or_else(|e| panic!("{e}: {}", planned.stdout));
    assert_eq!(document["swarm_planned"], false, "{document:#}");
    assert_eq!(
        document["boards"]["unreachable"],
        serde_json::json!([]),
        "{document:#}"
    );
    let first_manager = "pi001";
    let planned_steps: BTreeMap<String, Vec<String>> = document["boards"]["bootstrap"]
        .as_array()
        .expect("boards.bootstrap")
        .iter()
        .map(|b| {
            let steps = b["steps"].as_array().expect("steps");
            (
                b["node"].as_str().expect("node").to_string(),
                steps
                    .iter()
                    .map(|s| s.as_str().expect("step").to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(planned_steps.len(), 100);
    for (name, node) in &nodes {
        let role = node["role"].as_str().expect("role");
        let swarm = if name == first_manager {
            format!("initialize the swarm (advertise {})", addresses[0])
        } else {
            format!("join the swarm as {role} via {}", addresses[0])
        };
        assert_eq!(
            planned_steps.get(name),
            Some(&vec![
                format!("set hostname to \"{name}\""),
                "write the managed block of /etc/hosts".to_string(),
                "install Docker".to_string(),
                "start Docker".to_string(),
                "add pi to the docker group".to_string(),
                swarm,
            ]),
            "{name}"
        );
    }
    // Only looked at: the rack is as it was.
    assert_eq!(rack.exec("hostname").stdout.trim(), "rack");
    let docker = rack.exec("command -v docker");
    assert!(docker.code != 0 && docker.stdout.is_empty(), "{docker:?}");
    assert_eq!(
        rack.exec("grep -c reconciler /etc/hosts").stdout.trim(),
        "0"
    );
}
