//! Node roles, availability and labels for boards already in the swarm.
//!
//! Promotions come before demotions, and no plan may demote the last manager or
//! leave fewer reachable managers than a raft majority. Only label keys the
//! controller set itself (recorded in a node label) are ever removed.

use std::collections::BTreeMap;

use reconciler_spec::{Availability, Role, Spec};
use serde::Serialize;

use super::fields::FieldChange;
use super::PlanError;
use crate::labels::{CLUSTER, NODE_LABEL_KEYS};
use crate::observed::{Observed, ObservedNode};

/// A node's new spec, written in one call with its version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeUpdate {
    /// The node's name in the spec.
    pub name: String,
    pub id: String,
    pub version: u64,
    pub role: Role,
    pub availability: Availability,
    /// The complete label set to write (others' labels included, unchanged).
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
    pub changes: Vec<FieldChange>,
    /// The node's spec as observed when planning: if Docker bumps the version
    /// without touching these (a status change), the write is retried.
    #[serde(skip)]
    pub before: (Role, Availability, BTreeMap<String, String>),
}

fn role_text(role: Role) -> String {
    role.as_str().to_string()
}

fn availability_text(availability: Availability) -> String {
    availability.as_str().to_string()
}

/// Finds the swarm node for a spec node: by hostname (the node's name), else by address.
fn matching<'a>(observed: &'a Observed, name: &str, address: &str) -> Option<&'a ObservedNode> {
    observed
        .nodes
        .iter()
        .find(|n| n.hostname == name)
        .or_else(|| observed.nodes.iter().find(|n| n.address == address))
}

pub(super) fn plan_nodes(
    desired: &Spec,
    observed: &Observed,
    options: super::PlanOptions,
    warnings: &mut Vec<String>,
) -> Result<(Vec<NodeUpdate>, Vec<super::Action>), PlanError> {
    let mut updates = Vec::new();
    for node in desired.nodes.values() {
        let Some(live) = matching(observed, &node.name, &node.address) else {
            warnings.push(format!(
                "node `{}` ({}) is not in the swarm; `apply --ssh` bootstraps and joins it",
                node.name, node.address
            ));
            continue;
        };
        let mut changes = Vec::new();
        if live.role != node.role {
            changes.push(FieldChange {
                field: "role".into(),
                old: Some(role_text(live.role)),
                new: Some(role_text(node.role)),
            });
        }
        let availability = node.availability.unwrap_or(live.availability);
        if live.availability != availability {
            changes.push(FieldChange {
                field: "availability".into(),
                old: Some(availability_text(live.availability)),
                new: Some(availability_text(availability)),
            });
        }
        let mut labels = desired_labels(&live.labels, &node.labels);
        // Marks the board as a member of this cluster, so it is removed (with
        // --ssh) once it leaves the spec, and never a board someone else added.
        if live.labels.get(CLUSTER) != Some(&desired.cluster.name) {
            labels.insert(CLUSTER.into(), desired.cluster.name.clone());
            changes.push(FieldChange {
                field: format!("labels.{CLUSTER}"),
                old: live.labels.get(CLUSTER).map(|v| format!("{v:?}")),
                new: Some(format!("{:?}", desired.cluster.name)),
            });
        }
        for (key, value) in &node.labels {
            if live.labels.get(key) != Some(value) {
                changes.push(FieldChange {
                    field: format!("labels.{key}"),
                    old: live.labels.get(key).map(|v| format!("{v:?}")),
                    new: Some(format!("{value:?}")),
                });
            }
        }
        for key in live.labels.keys() {
            if !labels.contains_key(key) && !crate::labels::is_reserved(key) {
                changes.push(FieldChange {
                    field: format!("labels.{key}"),
                    old: live.labels.get(key).map(|v| format!("{v:?}")),
                    new: None,
                });
            }
        }
        if !changes.is_empty() {
            updates.push(NodeUpdate {
                name: node.name.clone(),
                id: live.id.clone(),
                version: live.version,
                role: node.role,
                availability,
                labels,
                changes,
                before: (live.role, live.availability, live.labels.clone()),
            });
        }
    }
    let removals: Vec<&ObservedNode> = if options.manage_membership && desired.controller.prune {
        observed
            .nodes
            .iter()
            .filter(|n| n.labels.get(CLUSTER) == Some(&desired.cluster.name))
            .filter(|n| {
                !desired
                    .nodes
                    .values()
                    .any(|s| matching(observed, &s.name, &s.address).is_some_and(|m| m.id == n.id))
            })
            .collect()
    } else {
        Vec::new()
    };
    check_managers(observed, &updates, &removals)?;
    // Promote first and demote last, so the manager set never shrinks before it grows.
    updates.sort_by_key(|u| {
        let live_role = observed.nodes.iter().find(|n| n.id == u.id).map(|n| n.role);
        match (live_role, u.role) {
            (Some(Role::Worker), Role::Manager) => 0,
            (Some(Role::Manager), Role::Worker) => 2,
            _ => 1,
        }
    });
    let removals = removals
        .into_iter()
        .map(|n| super::Action::RemoveNode {
            name: n.hostname.clone(),
            id: n.id.clone(),
            address: n.address.clone(),
            manager: n.role == Role::Manager,
        })
        .collect();
    Ok((updates, removals))
}

/// The label set to write: the user's desired labels, our earlier ones removed
/// when they left the spec, everybody else's left alone.
fn desired_labels(
    live: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let ours: Vec<&str> = live
        .get(NODE_LABEL_KEYS)
        .map(|keys| keys.split(',').filter(|k| !k.is_empty()).collect())
        .unwrap_or_default();
    let mut labels = live.clone();
    for key in ours {
        if !wanted.contains_key(key) {
            labels.remove(key);
        }
    }
    labels.extend(wanted.iter().map(|(k, v)| (k.clone(), v.clone())));
    if wanted.is_empty() {
        labels.remove(NODE_LABEL_KEYS);
    } else {
        let keys: Vec<&str> = wanted.keys().map(String::as_str).collect();
        labels.insert(NODE_LABEL_KEYS.into(), keys.join(","));
    }
    labels
}

fn check_managers(
    observed: &Observed,
    updates: &[NodeUpdate],
    removals: &[&ObservedNode],
) -> Result<(), PlanError> {
    let role_changes = updates.iter().any(|u| {
        observed
            .nodes
            .iter()
            .any(|n| n.id == u.id && n.role != u.role)
    });
    let removes_manager = removals.iter().any(|n| n.role == Role::Manager);
    if !role_changes && !removes_manager {
        return Ok(());
    }
    let removed = |node: &ObservedNode| removals.iter().any(|r| r.id == node.id);
    let role_after = |node: &ObservedNode| {
        updates
            .iter()
            .find(|u| u.id == node.id)
            .map_or(node.role, |u| u.role)
    };
    let managers: Vec<&ObservedNode> = observed
        .nodes
        .iter()
        .filter(|n| role_after(n) == Role::Manager && !removed(n))
        .collect();
    if managers.is_empty() {
        let demoted = updates
            .iter()
            .find(|u| u.role == Role::Worker)
            .map(|u| u.name.clone())
            .or_else(|| {
                removals
                    .iter()
                    .find(|n| n.role == Role::Manager)
                    .map(|n| n.hostname.clone())
            })
            .unwrap_or_default();
        return Err(PlanError::LastManager { node: demoted });
    }
    let reachable = managers
        .iter()
        .filter(|n| match n.role {
            Role::Manager => n.manager_reachable == Some(true),
            Role::Worker => n.state == "ready",
        })
        .count();
    let quorum = managers.len() / 2 + 1;
    if reachable < quorum {
        return Err(PlanError::Quorum {
            managers: managers.len(),
            reachable,
            quorum,
        });
    }
    Ok(())
}
