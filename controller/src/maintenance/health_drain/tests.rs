use std::collections::BTreeMap;

use reconciler_spec::{load_files, Availability, Spec};

use super::*;
use crate::maintenance::order::tests::{facts, observed_as};

fn spec(maintenance: &str) -> Spec {
    let text = format!(
        "[cluster]\nname = \"lab\"\n[maintenance]\n{maintenance}\n[node.m1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n[node.w1]\naddress = \"10.0.0.11\"\nrole = \"worker\"\n[node.w2]\naddress = \"10.0.0.12\"\nrole = \"worker\"\n[service.web]\nimage = \"nginx:1\"\nconstraints = [\"node.role == worker\"]\n"
    );
    match load_files(vec![("spec.toml".into(), text)]) {
        Ok(spec) => spec,
        Err(error) => panic!("test spec is invalid: {error}"),
    }
}

/// A board whose `get_throttled` says `throttled`.
fn board(name: &str, throttled: &str) -> Facts {
    Facts {
        throttled: Some(throttled.into()),
        ..facts(name, 0)
    }
}

struct World {
    spec: Spec,
    observed: Observed,
    facts: BTreeMap<String, Facts>,
    tasks: Vec<PlacedTask>,
}

fn world(maintenance: &str) -> World {
    let spec = spec(maintenance);
    let observed = observed_as(&spec);
    let facts = spec
        .nodes
        .keys()
        .map(|name| (name.clone(), board(name, "0x0")))
        .collect();
    World {
        spec,
        observed,
        facts,
        tasks: vec![PlacedTask {
            service: "web".into(),
            node_id: "id-w1".into(),
        }],
    }
}

impl World {
    fn decide(&self) -> Vec<Action> {
        decide(&self.spec, &self.observed, &self.facts, &self.tasks)
    }

    fn mark(&mut self, name: &str, label: &str, availability: Availability) {
        if let Some(n) = self.observed.nodes.iter_mut().find(|n| n.hostname == name) {
            n.labels
                .insert(crate::labels::HEALTH_DRAIN.into(), label.into());
            n.availability = availability;
        }
    }
}

#[test]
fn under_voltage_now_drains_the_board_and_since_boot_does_not() {
    let mut w = world("drain_on = [\"under-voltage\"]");
    w.facts.insert("w1".into(), board("w1", "0x50005"));
    let actions = w.decide();
    assert!(
        matches!(&actions[..], [Action::Drain { node, condition: DrainCondition::UnderVoltage, before: Availability::Active, .. }] if node == "w1"),
        "{actions:?}"
    );
    w.facts.insert("w1".into(), board("w1", "0x50000"));
    assert_eq!(w.decide(), Vec::new());
}

#[test]
fn nothing_is_drained_for_a_condition_drain_on_does_not_name() {
    let mut w = world("");
    w.facts.insert("w1".into(), board("w1", "0x1"));
    assert_eq!(w.decide(), Vec::new());
}

#[test]
fn a_board_is_given_back_what_it_had_once_the_condition_clears() {
    let mut w = world("drain_on = [\"under-voltage\"]");
    w.mark("w2", "under-voltage pause", Availability::Drain);
    assert_eq!(
        w.decide(),
        vec![Action::Restore {
            node: "w2".into(),
            node_id: "id-w2".into(),
            before: Availability::Pause
        }]
    );
    // Still under-voltage: it stays drained, nothing to do.
    w.facts.insert("w2".into(), board("w2", "0x1"));
    assert_eq!(w.decide(), Vec::new());
    // drain_on emptied: given back although the condition holds.
    w.spec.maintenance.drain_on.clear();
    assert_eq!(w.decide().len(), 1);
}

#[test]
fn a_board_whose_tasks_have_nowhere_to_go_is_held_not_drained() {
    let mut w = world("drain_on = [\"under-voltage\"]");
    // w2 is paused by a person: web (workers only) could go nowhere but w1.
    if let Some(n) = w.observed.nodes.iter_mut().find(|n| n.hostname == "w2") {
        n.availability = Availability::Pause;
    }
    w.facts.insert("w1".into(), board("w1", "0x1"));
    let actions = w.decide();
    assert!(
        matches!(&actions[..], [Action::Held { node, why }] if node == "w1" && why.contains("web")),
        "{actions:?}"
    );
}

#[test]
fn no_more_than_max_unavailable_boards_are_drained_for_their_health() {
    // A bad power strip: every board under-voltage at once.
    let mut w = world("drain_on = [\"under-voltage\"]");
    for name in ["m1", "w1", "w2"] {
        w.facts.insert(name.into(), board(name, "0x1"));
    }
    let actions = w.decide();
    let drained = actions
        .iter()
        .filter(|a| matches!(a, Action::Drain { .. }))
        .count();
    let held = actions
        .iter()
        .filter(|a| matches!(a, Action::Held { .. }))
        .count();
    assert_eq!((drained, held), (1, 2), "{actions:?}");
}

#[test]
fn marks_read_back_as_written() {
    for condition in DrainCondition::ALL {
        for before in [Availability::Active, Availability::Pause] {
            assert_eq!(
                parse_mark(&mark(condition, before)),
                Some((condition, before))
            );
        }
    }
    assert_eq!(parse_mark("disk-full"), None);
}
