use std::collections::BTreeMap;

use reconciler_spec::{load_files, Availability, Role, Spec};

use super::*;
use crate::observed::{BoardDocker, LocalSwarm, ObservedService, Owner};

fn spec(body: &str) -> Spec {
    let text = format!(
        "[cluster]\nname = \"lab\"\n[node.m1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n[node.m2]\naddress = \"10.0.0.2\"\nrole = \"manager\"\n[node.m3]\naddress = \"10.0.0.3\"\nrole = \"manager\"\n[node.w1]\naddress = \"10.0.0.11\"\nrole = \"worker\"\n[node.w2]\naddress = \"10.0.0.12\"\nrole = \"worker\"\n[node.w3]\naddress = \"10.0.0.13\"\nrole = \"worker\"\n{body}"
    );
    match load_files(vec![("spec.toml".into(), text)]) {
        Ok(spec) => spec,
        Err(error) => panic!("test spec is invalid: {error}"),
    }
}

/// A ready, active node of the spec's, as the swarm lists it.
pub(crate) fn node(name: &str, role: Role) -> ObservedNode {
    ObservedNode {
        id: format!("id-{name}"),
        version: 1,
        hostname: name.into(),
        address: String::new(),
        architecture: "aarch64".into(),
        engine_version: "28.2.2".into(),
        role,
        availability: Availability::Active,
        labels: BTreeMap::from([("zone".to_string(), format!("z-{name}"))]),
        state: NodeState::Ready,
        manager_reachable: (role == Role::Manager).then_some(true),
        leader: false,
        updated_at: None,
    }
}

/// A board in the swarm as node `id-NAME`, with `upgradable` packages.
pub(crate) fn facts(name: &str, upgradable: u64) -> Facts {
    Facts {
        docker: BoardDocker::Running {
            version: None,
            swarm: LocalSwarm::from_docker("active", Some(format!("id-{name}"))),
        },
        upgradable_packages: Some(upgradable),
        ..Facts::default()
    }
}

struct World {
    spec: Spec,
    observed: Observed,
    facts: BTreeMap<String, Facts>,
    tasks: Vec<PlacedTask>,
}

/// The swarm as `spec` would make it: its nodes ready and active, its
/// services created.
pub(crate) fn observed_as(spec: &Spec) -> Observed {
    let mut observed = Observed::default();
    for n in spec.nodes.values() {
        observed.nodes.push(node(&n.name, n.role));
    }
    for (name, service) in &spec.services {
        observed.services.insert(
            name.clone(),
            ObservedService {
                id: format!("svc-{name}"),
                version: 1,
                owner: Owner::ThisCluster,
                spec_hash: None,
                update_state: None,
                config: service.clone(),
            },
        );
    }
    observed
}

fn world(body: &str) -> World {
    let spec = spec(body);
    let observed = observed_as(&spec);
    let facts_by_node = spec
        .nodes
        .keys()
        .map(|name| (name.clone(), facts(name, 3)))
        .collect();
    World {
        spec,
        observed,
        facts: facts_by_node,
        tasks: Vec::new(),
    }
}

fn names(order: &Order) -> Vec<Vec<String>> {
    order
        .batches
        .iter()
        .map(|b| b.iter().map(|t| t.node.clone()).collect())
        .collect()
}

fn run(w: &World, only: &[String]) -> Result<Order, OrderError> {
    order(&w.spec, &w.observed, &w.facts, &w.tasks, only)
}

#[test]
fn workers_first_in_batches_then_managers_one_at_a_time() {
    let mut w = world("[maintenance]\nmax_unavailable = 2\n");
    w.facts.insert("w3".into(), facts("w3", 0));
    let order = run(&w, &[]).expect("an order");
    assert_eq!(
        names(&order),
        vec![
            vec!["w1".to_string(), "w2".to_string()],
            vec!["m1".to_string()],
            vec!["m2".to_string()],
            vec!["m3".to_string()],
        ]
    );
    assert_eq!(order.up_to_date, vec!["w3".to_string()]);
    assert_eq!(order.batches[0][0].reason, Reason::Updates(3));
}

#[test]
fn a_cut_off_upgrade_is_resumed_first_from_its_stage() {
    let mut w = world("");
    let m2 = w
        .observed
        .nodes
        .iter_mut()
        .find(|n| n.hostname == "m2")
        .expect("m2");
    m2.availability = Availability::Drain;
    m2.labels.insert(
        crate::labels::MAINTENANCE.to_string(),
        "reboot pause".to_string(),
    );
    let order = run(&w, &[]).expect("an order");
    assert_eq!(order.batches[0][0].node, "m2");
    assert_eq!(
        order.batches[0][0].resume,
        Some(Mark {
            stage: Stage::Reboot,
            before: Availability::Pause
        })
    );
    assert_eq!(order.batches[0][0].reason, Reason::Resume(Stage::Reboot));
    assert_eq!(
        Mark::parse(
            &Mark {
                stage: Stage::Return,
                before: Availability::Active
            }
            .label()
        ),
        Some(Mark {
            stage: Stage::Return,
            before: Availability::Active
        })
    );
    assert_eq!(Mark::parse("reboot"), None);
}

#[test]
fn a_manager_waits_while_another_is_unreachable() {
    let mut w = world("");
    w.observed
        .nodes
        .iter_mut()
        .find(|n| n.hostname == "m3")
        .expect("m3")
        .manager_reachable = Some(false);
    let only = ["m1".to_string()];
    assert_eq!(
        run(&w, &only),
        Err(OrderError::QuorumAtRisk {
            manager: "m1".into(),
            down: vec!["m3".into()]
        })
    );
    // Workers do not touch raft.
    assert!(run(&w, &["w1".to_string()]).is_ok());
}

#[test]
fn a_batch_is_refused_when_a_service_has_nowhere_else_to_go() {
    let mut w = world(
        "[service.db]\nimage = \"postgres:16\"\nconstraints = [\"node.labels.zone == z-w1\"]\n[service.web]\nimage = \"nginx\"\n[service.agent]\nimage = \"agent\"\nmode = \"global\"\n",
    );
    for (service, node) in [("db", "w1"), ("web", "w1"), ("agent", "w1")] {
        w.tasks.push(PlacedTask {
            service: service.into(),
            node_id: format!("id-{node}"),
        });
    }
    assert_eq!(
        run(&w, &["w1".to_string()]),
        Err(OrderError::NowhereToGo {
            nodes: vec!["w1".into()],
            service: "db".into()
        })
    );
    // Without the pinned database, web moves and the global agent stays its node's.
    w.tasks.retain(|t| t.service != "db");
    assert!(run(&w, &["w1".to_string()]).is_ok());
}

#[test]
fn an_unreached_or_unjoined_board_stops_the_upgrade() {
    let mut w = world("");
    w.facts.remove("w2");
    assert_eq!(run(&w, &[]), Err(OrderError::Unreached("w2".into())));
    let mut w = world("");
    w.observed.nodes.retain(|n| n.hostname != "w2");
    assert_eq!(run(&w, &[]), Err(OrderError::NotInSwarm("w2".into())));
}

/// Killed while a board rebooted: it does not answer (or its Docker is not
/// back), but its node, labelled as it and marked, says where it stands.
#[test]
fn a_board_rebooting_in_a_cut_off_upgrade_is_waited_for() {
    let mut w = world("");
    w.facts.remove("w2");
    let w2 = w
        .observed
        .nodes
        .iter_mut()
        .find(|n| n.hostname == "w2")
        .expect("w2");
    w2.labels
        .insert(crate::labels::NODE.to_string(), "w2".to_string());
    w2.labels.insert(
        crate::labels::MAINTENANCE.to_string(),
        "reboot active".to_string(),
    );
    let order = run(&w, &[]).expect("an order");
    assert_eq!(order.batches[0][0].node, "w2");
    assert_eq!(order.batches[0][0].reason, Reason::Resume(Stage::Reboot));
}
