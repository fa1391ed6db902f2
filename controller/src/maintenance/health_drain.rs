//! Draining a board for a critical condition (`[maintenance] drain_on`)
//! and giving it back once the condition clears: pure, decided from the
//! boards' facts and the swarm, done by `run --ssh` (`runtime/upkeep.rs`).
//!
//! The node carries [`crate::labels::HEALTH_DRAIN`] (`"<condition> <availability
//! before>"`) while drained, so the availability it had is restored even
//! after the controller restarted, and the planner leaves it alone. A board
//! is drained only if its replicated tasks have somewhere else to go, and
//! no more boards than `max_unavailable` are drained this way at once: a
//! cluster-wide cause (a bad power strip) must not empty the cluster.

use std::collections::BTreeMap;

use reconciler_spec::{Availability, DrainCondition, Spec};

use super::order::{check_somewhere_to_go, PlacedTask, Reason, Turn};
use crate::health::{ConditionKind, Severity};
use crate::observed::{Facts, Observed};

/// One thing to do about a board's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Drain the node for `condition`, remembering `before`.
    Drain {
        node: String,
        node_id: String,
        condition: DrainCondition,
        before: Availability,
        /// The condition in words, for the log.
        why: String,
    },
    /// The condition cleared (or `drain_on` no longer names it): give back `before`.
    Restore {
        node: String,
        node_id: String,
        before: Availability,
    },
    /// It would be drained, but may not be now.
    Held { node: String, why: String },
}

/// A node's health-drain mark as its label holds it.
pub fn mark(condition: DrainCondition, before: Availability) -> String {
    format!("{} {}", condition.as_str(), before.as_str())
}

fn parse_mark(text: &str) -> Option<(DrainCondition, Availability)> {
    let (condition, before) = text.split_once(' ')?;
    Some((
        DrainCondition::parse(condition)?,
        Availability::parse(before)?,
    ))
}

/// The critical condition of `drain_on` a board's facts show, if any.
fn critical(facts: &Facts, drain_on: &[DrainCondition]) -> Option<(DrainCondition, String)> {
    crate::health::conditions(facts)
        .into_iter()
        .filter(|c| c.severity == Severity::Critical)
        .find_map(|c| {
            let condition = match c.kind {
                ConditionKind::DiskFull => DrainCondition::DiskFull,
                ConditionKind::UnderVoltage => DrainCondition::UnderVoltage,
                _ => return None,
            };
            drain_on
                .contains(&condition)
                .then_some((condition, c.message))
        })
}

/// What to drain and give back. A board whose facts are missing (it did
/// not answer) is left as it is.
pub fn decide(
    spec: &Spec,
    observed: &Observed,
    facts: &BTreeMap<String, Facts>,
    tasks: &[PlacedTask],
) -> Vec<Action> {
    let drain_on = &spec.maintenance.drain_on;
    let mut actions = Vec::new();
    let mut drained = observed
        .nodes
        .iter()
        .filter(|n| n.labels.contains_key(crate::labels::HEALTH_DRAIN))
        .count();
    let limit = usize::try_from(spec.maintenance.max_unavailable).unwrap_or(1);
    // What the swarm will look like as this pass drains boards.
    let mut expected = observed.clone();
    for node in spec.nodes.values() {
        let Some(board) = facts.get(&node.name) else {
            continue;
        };
        let Some(live) = board
            .swarm_node_id()
            .and_then(|id| observed.nodes.iter().find(|n| n.id == id))
        else {
            continue;
        };
        let found = critical(board, drain_on);
        match live
            .labels
            .get(crate::labels::HEALTH_DRAIN)
            .map(|m| parse_mark(m))
        {
            Some(marked) => {
                if found.is_none() {
                    actions.push(Action::Restore {
                        node: node.name.clone(),
                        node_id: live.id.clone(),
                        // An unreadable mark gives back what the spec says.
                        before: marked.map_or_else(
                            || node.availability.unwrap_or(Availability::Active),
                            |(_, before)| before,
                        ),
                    });
                }
            }
            None => {
                let Some((condition, why)) = found else {
                    continue;
                };
                // Drained already (by a person, or an upgrade): nothing to take.
                if live.availability == Availability::Drain
                    || live.labels.contains_key(crate::labels::MAINTENANCE)
                {
                    continue;
                }
                if drained >= limit {
                    actions.push(Action::Held {
                        node: node.name.clone(),
                        why: format!("{} board(s) are drained for their health already (max_unavailable = {limit}): {why}", drained),
                    });
                    continue;
                }
                let turn = Turn {
                    node: node.name.clone(),
                    node_id: live.id.clone(),
                    role: live.role,
                    reason: Reason::Asked,
                    resume: None,
                };
                if let Err(refused) = check_somewhere_to_go(&[turn], &expected, tasks) {
                    actions.push(Action::Held {
                        node: node.name.clone(),
                        why: format!("{why}; not drained: {refused}"),
                    });
                    continue;
                }
                drained += 1;
                if let Some(n) = expected.nodes.iter_mut().find(|n| n.id == live.id) {
                    n.availability = Availability::Drain;
                }
                actions.push(Action::Drain {
                    node: node.name.clone(),
                    node_id: live.id.clone(),
                    condition,
                    before: live.availability,
                    why,
                });
            }
        }
    }
    actions
}

#[cfg(test)]
mod tests;
