//! The pure checks, each on the smallest input that makes it fire (and
//! one that does not). The real-world versions are in
//! `tests/tests/preflight.rs`.

use std::collections::BTreeMap;

use reconciler_spec::{load_files, Availability, Role, Spec};

use super::*;
use crate::observed::{BoardDocker, DiskSpace, LocalSwarm, ObservedNode, ObservedService};
use crate::plan::PlanOptions;

fn spec(body: &str) -> Spec {
    let text = format!("[cluster]\nname = \"lab\"\n{body}");
    match load_files(vec![("spec.toml".into(), text)]) {
        Ok(spec) => spec,
        Err(error) => panic!("test spec is invalid: {error}"),
    }
}

fn node(id: &str, arch: &str, engine: &str) -> ObservedNode {
    ObservedNode {
        id: id.into(),
        version: 1,
        hostname: id.into(),
        address: "10.0.0.1".into(),
        architecture: arch.into(),
        engine_version: engine.into(),
        role: Role::Manager,
        availability: Availability::Active,
        labels: BTreeMap::from([("disk".to_string(), "ssd".to_string())]),
        state: NodeState::Ready,
        manager_reachable: Some(true),
        leader: true,
        updated_at: None,
    }
}

fn board(node_id: &str) -> Facts {
    Facts {
        hostname: node_id.into(),
        arch: "aarch64".into(),
        docker: BoardDocker::Running {
            version: Some("20.10.24".into()),
            swarm: LocalSwarm::Active {
                node_id: Some(node_id.into()),
            },
        },
        ..Facts::default()
    }
}

struct World {
    spec: Spec,
    observed: Observed,
    facts: BTreeMap<String, Facts>,
    images: BTreeMap<String, ImageLookup>,
}

impl World {
    fn new(body: &str, nodes: Vec<ObservedNode>) -> Self {
        Self {
            spec: spec(body),
            observed: Observed {
                nodes,
                ..Observed::default()
            },
            facts: BTreeMap::new(),
            images: BTreeMap::new(),
        }
    }

    fn findings(&self) -> Vec<Finding> {
        let plan = crate::plan::plan(
            &self.spec,
            &self.observed,
            PlanOptions {
                allow_other_swarm: true,
                ..PlanOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("plan: {e}"));
        check(&Inputs {
            spec: &self.spec,
            observed: &self.observed,
            plan: &plan,
            facts: &self.facts,
            images: &self.images,
        })
    }

    fn checks(&self) -> Vec<(Check, Severity)> {
        self.findings()
            .into_iter()
            .map(|f| (f.check, f.severity))
            .collect()
    }
}

fn platforms(list: &[&str]) -> ImageLookup {
    ImageLookup::Platforms {
        platforms: list
            .iter()
            .map(|p| {
                let mut parts = p.split('/');
                Platform {
                    os: parts.next().unwrap_or_default().into(),
                    architecture: parts.next().unwrap_or_default().into(),
                    variant: parts.next().map(str::to_string),
                }
            })
            .collect(),
    }
}

fn platform(text: &str) -> Platform {
    match platforms(&[text]) {
        ImageLookup::Platforms { mut platforms } => platforms.remove(0),
        _ => unreachable!("platforms() builds Platforms"),
    }
}

/// containerd's matcher: arm64 runs 32-bit arm, arm/v7 runs v6 but not
/// the reverse, amd64 runs 386.
#[test]
fn an_image_runs_where_containerd_would_pull_it() {
    let yes = [
        ("linux/arm64", "linux/arm64"),
        ("linux/arm/v7", "linux/arm64"),
        ("linux/arm/v6", "linux/arm/v7"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/386", "linux/amd64"),
        ("linux/amd64", "linux/amd64"),
    ];
    for (image, node) in yes {
        assert!(
            runs_on(&platform(image), &platform(node)),
            "{image} on {node}"
        );
    }
    let no = [
        ("linux/arm/v7", "linux/arm/v6"),
        ("linux/arm64", "linux/arm/v7"),
        ("linux/amd64", "linux/arm64"),
        ("windows/amd64", "linux/amd64"),
    ];
    for (image, node) in no {
        assert!(
            !runs_on(&platform(image), &platform(node)),
            "{image} on {node}"
        );
    }
}

/// A 64-bit Pi kernel with 32-bit Raspberry Pi OS: `uname -m` says
/// aarch64 but Docker is built for arm and pulls linux/arm/v7.
#[test]
fn a_32_bit_docker_on_a_64_bit_kernel_pulls_arm_v7() {
    let mut world = World::new(
        "[service.web]\nimage = \"app:1\"\n",
        vec![node("n1", "aarch64", "20.10.24")],
    );
    world
        .images
        .insert("app:1".into(), platforms(&["linux/arm64"]));
    assert_eq!(world.checks(), vec![]);
    let mut facts = board("n1");
    facts.docker_arch = Some("arm".into());
    world.facts.insert("pi1".into(), facts);
    let findings = world.findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].check, Check::Platform);
    assert!(
        findings[0].message.contains("`pi1` (linux/arm/v7)"),
        "{}",
        findings[0].message
    );
}

#[test]
fn constraints_narrow_the_nodes_an_image_must_run_on() {
    let nodes = vec![
        node("amd", "x86_64", "20.10.24"),
        node("zero", "armv6l", "20.10.24"),
    ];
    let mut world = World::new(
        "[service.web]\nimage = \"app:1\"\nconstraints = [\"node.platform.arch != armv6l\"]\n",
        nodes.clone(),
    );
    world
        .images
        .insert("app:1".into(), platforms(&["linux/amd64", "linux/arm/v7"]));
    assert_eq!(world.checks(), vec![]);
    let mut world = World::new("[service.web]\nimage = \"app:1\"\n", nodes);
    world
        .images
        .insert("app:1".into(), platforms(&["linux/amd64", "linux/arm/v7"]));
    let findings = world.findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].message.contains("some nodes"));
    assert!(findings[0].message.contains("`zero` (linux/arm/v6)"));
}

/// swarmkit: values compare case-insensitively, a missing label only
/// satisfies `!=`, a label's key keeps its case.
#[test]
fn constraints_hold_as_swarmkit_judges_them() {
    let n = node("n1", "aarch64", "20.10.24");
    let candidate = Candidate {
        name: "n1".into(),
        node_id: Some("n1"),
        hostname: "n1",
        role: Role::Worker,
        labels: n.labels.clone(),
        arch: "aarch64",
        facts: None,
    };
    for (constraint, holds) in [
        ("node.labels.disk == SSD", true),
        ("node.labels.disk != ssd", false),
        ("node.labels.Disk == ssd", false),
        ("node.labels.gpu != yes", true),
        ("node.labels.gpu == yes", false),
        ("node.role == worker", true),
        ("node.role==manager", false),
        ("node.platform.arch == aarch64", true),
        ("node.hostname != n1", false),
        ("engine.labels.x == y", true),
    ] {
        assert_eq!(
            constraint_holds(constraint, &candidate),
            holds,
            "{constraint}"
        );
    }
}

#[test]
fn a_missing_image_is_a_blocker_and_an_unchecked_one_is_not() {
    let mut world = World::new(
        "[service.a]\nimage = \"gone:1\"\n[service.b]\nimage = \"offline:1\"\n",
        vec![node("n1", "x86_64", "20.10.24")],
    );
    world.images.insert(
        "gone:1".into(),
        ImageLookup::Missing {
            error: "manifest unknown".into(),
        },
    );
    world.images.insert(
        "offline:1".into(),
        ImageLookup::Unchecked {
            error: "no such host".into(),
        },
    );
    assert_eq!(world.checks(), vec![(Check::Image, Severity::Blocker)]);
}

#[test]
fn a_port_held_outside_the_spec_is_a_blocker_naming_the_holder() {
    let mut world = World::new(
        "[service.web]\nimage = \"app:1\"\nports = [{ target = 80, published = 8080 }]\n",
        vec![node("n1", "x86_64", "20.10.24")],
    );
    let mut holder =
        spec("[service.other]\nimage = \"x:1\"\nports = [{ target = 8080, published = 8080 }]\n")
            .services
            .remove("other")
            .unwrap_or_else(|| unreachable!("declared above"));
    holder.name = "by-hand".into();
    world.observed.services.insert(
        "by-hand".into(),
        ObservedService {
            id: "h".into(),
            version: 1,
            owner: Owner::Unmanaged,
            spec_hash: None,
            update_state: None,
            config: holder,
        },
    );
    let findings = world.findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].check, Check::Port);
    assert!(findings[0]
        .message
        .contains("8080/tcp is held by service `by-hand`"));
}

#[test]
fn memory_limits_where_memory_cgroups_are_off_are_a_blocker() {
    let body = "[service.db]\nimage = \"db:1\"\nresources = { limit_memory = \"256M\" }\n";
    let mut world = World::new(body, vec![node("n1", "aarch64", "20.10.24")]);
    let mut facts = board("n1");
    facts.memory_cgroup = Some(true);
    world.facts.insert("pi1".into(), facts.clone());
    assert_eq!(world.checks(), vec![]);
    facts.memory_cgroup = Some(false);
    world.facts.insert("pi1".into(), facts);
    assert_eq!(
        world.checks(),
        vec![(Check::MemoryCgroup, Severity::Blocker)]
    );
}

#[test]
fn overlay_networks_on_a_kernel_without_vxlan_are_a_blocker() {
    let body = "[network.back]\n[service.api]\nimage = \"api:1\"\nnetworks = [\"back\"]\n[service.solo]\nimage = \"s:1\"\n";
    let mut world = World::new(body, vec![node("n1", "aarch64", "20.10.24")]);
    let mut facts = board("n1");
    facts.vxlan = Some(false);
    world.facts.insert("pi1".into(), facts);
    let findings = world.findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].check, Check::Vxlan);
    assert_eq!(findings[0].subject, "service.api");
}

#[test]
fn board_checks_mixed_iptables_skewed_clock_and_full_disk() {
    let body = "[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n[node.pi2]\naddress = \"10.0.0.2\"\nrole = \"worker\"\n";
    let mut world = World::new(body, vec![]);
    let mut pi1 = board("n1");
    pi1.iptables = Some(IptablesBackend::NfTables);
    pi1.clock = Some(1_000_000);
    pi1.disk = Some(DiskSpace {
        available_bytes: 100 << 30,
        total_bytes: 200 << 30,
    });
    let mut pi2 = board("n2");
    pi2.iptables = Some(IptablesBackend::NfTables);
    pi2.clock = Some(1_000_000 + CLOCK_SKEW_LIMIT_SECONDS);
    world.facts.insert("pi1".into(), pi1.clone());
    world.facts.insert("pi2".into(), pi2.clone());
    assert_eq!(world.checks(), vec![]);
    pi2.iptables = Some(IptablesBackend::Legacy);
    pi2.clock = Some(1_000_000 - 3600);
    pi2.disk = Some(DiskSpace {
        available_bytes: 100 << 20,
        total_bytes: 16 << 30,
    });
    world.facts.insert("pi2".into(), pi2);
    assert_eq!(
        world.checks(),
        vec![
            (Check::Disk, Severity::Blocker),
            (Check::Iptables, Severity::Warning),
            (Check::Clock, Severity::Warning),
        ]
    );
    let clock = world
        .findings()
        .into_iter()
        .find(|f| f.check == Check::Clock)
        .map(|f| f.message)
        .unwrap_or_default();
    assert!(
        clock.contains("3600s behind the manager `pi1`'s"),
        "{clock}"
    );
}

#[test]
fn an_even_number_of_managers_or_more_than_seven_is_a_warning() {
    let managers = |n: usize| {
        (1..=n)
            .map(|i| format!("[node.m{i}]\naddress = \"10.0.0.{i}\"\nrole = \"manager\"\n"))
            .collect::<String>()
    };
    for (count, warned) in [
        (1, false),
        (2, true),
        (3, false),
        (4, true),
        (7, false),
        (9, true),
    ] {
        let world = World::new(&managers(count), vec![]);
        let found = world
            .checks()
            .contains(&(Check::Managers, Severity::Warning));
        assert_eq!(found, warned, "{count} managers");
    }
}

/// Encrypted overlays between 29.0–29.2.0 and older engines pass no
/// traffic: a blocker only with an encrypted network in the spec.
#[test]
fn mixed_engine_versions_warn_and_block_encrypted_overlays_across_29_early() {
    let nodes = vec![
        node("a", "x86_64", "29.1.3"),
        node("b", "aarch64", "28.5.1"),
    ];
    let plain = World::new("[network.back]\n", nodes.clone());
    assert_eq!(
        plain.checks(),
        vec![(Check::EngineVersion, Severity::Warning)]
    );
    let encrypted = World::new("[network.back]\noptions = { encrypted = \"\" }\n", nodes);
    assert_eq!(
        encrypted.checks(),
        vec![(Check::EngineVersion, Severity::Blocker)]
    );
    let fixed = World::new(
        "[network.back]\noptions = { encrypted = \"\" }\n",
        vec![
            node("a", "x86_64", "29.2.1"),
            node("b", "aarch64", "28.5.1"),
        ],
    );
    assert_eq!(
        fixed.checks(),
        vec![(Check::EngineVersion, Severity::Warning)]
    );
}

#[test]
fn an_armv6_board_without_docker_is_told_where_docker_comes_from() {
    let mut world = World::new(
        "[node.zero]\naddress = \"10.0.0.9\"\nrole = \"manager\"\n",
        vec![],
    );
    world.facts.insert(
        "zero".into(),
        Facts {
            arch: "armv6l".into(),
            ..Facts::default()
        },
    );
    assert_eq!(world.checks(), vec![(Check::DockerArch, Severity::Warning)]);
}

#[test]
fn every_check_has_a_name_that_parses_back() {
    for check in Check::ALL {
        assert_eq!(Check::parse(check.as_str()), Some(check));
    }
    assert_eq!(Check::parse("nope"), None);
}

#[test]
fn only_blockers_not_allowed_block() {
    let finding = |check, severity| Finding {
        check,
        severity,
        subject: "cluster".into(),
        message: String::new(),
        hint: String::new(),
    };
    let findings = [
        finding(Check::Image, Severity::Blocker),
        finding(Check::Port, Severity::Blocker),
        finding(Check::Managers, Severity::Warning),
    ];
    assert_eq!(blocking(&findings, &[]).len(), 2);
    assert_eq!(blocking(&findings, &[Check::Image]).len(), 1);
    assert_eq!(blocking(&findings, &[Check::Image, Check::Port]).len(), 0);
}
