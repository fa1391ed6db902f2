//! Node roles, availability and labels for boards already in the swarm.
//!
//! Promotions come before demotions, and no plan may demote the last manager or
//! leave fewer reachable managers than a raft majority. Only label keys the
//! controller set itself (recorded in a node label) are ever removed.

use std::collections::BTreeMap;

use reconciler_spec::{Availability, Role, Spec};
use serde::Serialize;

use super::fields::FieldChange;
use super::matching::{is_down, match_nodes, Match};
use super::{Departure, PlanError};
use crate::labels::{CLUSTER, NODE, NODE_LABEL_KEYS};
use crate::observed::{NodeState, Observed, ObservedNode};

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

pub(super) fn plan_nodes(
    desired: &Spec,
    observed: &Observed,
    options: super::PlanOptions,
    warnings: &mut Vec<String>,
) -> Result<(Vec<NodeUpdate>, Vec<super::Action>), PlanError> {
    let matches = match_nodes(desired, observed)?;
    if matches.is_empty() && !desired.nodes.is_empty() {
        if !options.allow_other_swarm {
            return Err(PlanError::OtherSwarm {
                spec_nodes: desired.nodes.len(),
                swarm: describe_swarm(observed),
            });
        }
        warnings.push(format!(
            "none of the spec's {} node(s) is in this swarm ({}); planned anyway (--allow-other-swarm): the nodes' roles, availability and labels are left alone",
            desired.nodes.len(),
            describe_swarm(observed)
        ));
        return Ok((Vec::new(), Vec::new()));
    }
    let mut updates = Vec::new();
    let mut absent = Vec::new();
    for node in desired.nodes.values() {
        let Some(matched) = matches.get(&node.name) else {
            match missing_warning(node, observed) {
                Some(warning) => warnings.push(warning),
                None => absent.push(node),
            }
            continue;
        };
        if let Some(update) = node_update(desired, node, matched, observed, warnings)? {
            updates.push(update);
        }
    }
    match absent.as_slice() {
        [] => {}
        [node] => warnings.push(format!(
            "node `{}` ({}) is not in the swarm; `apply --ssh` bootstraps and joins it",
            node.name, node.address
        )),
        many => warnings.push(format!(
            "{} nodes are not in the swarm ({}); `apply --ssh` bootstraps and joins them",
            many.len(),
            many.iter()
                .map(|n| format!("`{}`", n.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    let departures = if options.manage_membership && desired.controller.prune {
        departures(desired, observed, &matches, &mut updates, warnings)
    } else {
        Vec::new()
    };
    let removals: Vec<&ObservedNode> = departures.iter().map(|(n, _)| *n).collect();
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
    let removals = departures
        .into_iter()
        .map(|(n, departure)| super::Action::RemoveNode {
            name: spec_name_of(n),
            id: n.id.clone(),
            address: n.address.clone(),
            manager: n.role == Role::Manager,
            departure,
        })
        .collect();
    Ok((updates, removals))
}

/// Why a spec node has no swarm node when its board said it is in another
/// swarm; `None` when it is simply not in one (said once for all such nodes).
fn missing_warning(node: &reconciler_spec::Node, observed: &Observed) -> Option<String> {
    let id = observed.boards.get(&node.name)?.node_id.as_deref()?;
    Some(format!(
        "node `{}` ({}) reports swarm node ID {id}, which this swarm does not have: the board is in another swarm; make it leave (`docker swarm leave` on it) and the next apply --ssh joins it here",
        node.name, node.address
    ))
}

/// The swarm that was reached, by its nodes, for a person to recognise it.
fn describe_swarm(observed: &Observed) -> String {
    const SHOWN: usize = 5;
    let mut names: Vec<String> = observed
        .nodes
        .iter()
        .take(SHOWN)
        .map(|n| format!("{} ({})", n.hostname, n.address))
        .collect();
    if observed.nodes.len() > SHOWN {
        names.push(format!("and {} more", observed.nodes.len() - SHOWN));
    }
    format!(
        "a swarm of {} node(s): {}",
        observed.nodes.len(),
        names.join(", ")
    )
}

/// The node's name in the spec as recorded on it, else its hostname.
fn spec_name_of(node: &ObservedNode) -> String {
    node.labels
        .get(NODE)
        .cloned()
        .unwrap_or_else(|| node.hostname.clone())
}

/// What to write on a matched node: role, availability, the user's labels and,
/// when the cluster may claim it, the cluster's own two labels.
fn node_update(
    desired: &Spec,
    node: &reconciler_spec::Node,
    matched: &Match<'_>,
    observed: &Observed,
    warnings: &mut Vec<String>,
) -> Result<Option<NodeUpdate>, PlanError> {
    let live = matched.live;
    let cluster = &desired.cluster.name;
    let owned = match live.labels.get(CLUSTER) {
        Some(other) if other != cluster => {
            return Err(PlanError::NodeOfOtherCluster {
                node: node.name.clone(),
                cluster: other.clone(),
            })
        }
        Some(_) => true,
        None => false,
    };
    // Claimed, not assumed: only a board this cluster joined (it says so
    // itself, for this very node ID) or one the user adopts explicitly.
    let joined_here = observed.boards.get(&node.name).is_some_and(|b| {
        b.joined_by_this_cluster && b.node_id.as_deref() == Some(live.id.as_str())
    });
    let claimed = owned || joined_here || node.adopt;
    if !claimed {
        warnings.push(format!(
            "node `{}` joined the swarm without this cluster, so it is managed but never removed by it; set `adopt = true` on it to claim it",
            node.name
        ));
    }
    let mut changes = Vec::new();
    if live.role != node.role {
        changes.push(FieldChange {
            field: "role".into(),
            old: Some(role_text(live.role)),
            new: Some(role_text(node.role)),
        });
    }
    // A board under `reconciler upgrade`, or drained for a critical
    // condition, is drained on purpose: left alone until it is given back.
    let availability = if live.labels.contains_key(crate::labels::MAINTENANCE) {
        warnings.push(format!(
            "node `{}` is under maintenance (`reconciler upgrade`): its availability is left as it is until the upgrade finishes",
            node.name
        ));
        live.availability
    } else if let Some(mark) = live.labels.get(crate::labels::HEALTH_DRAIN) {
        let condition = mark.split(' ').next().unwrap_or_default();
        warnings.push(format!(
            "node `{}` is drained for {condition} (`[maintenance] drain_on`): its availability is left as it is until the condition clears",
            node.name
        ));
        live.availability
    } else {
        node.availability.unwrap_or(live.availability)
    };
    if live.availability != availability {
        changes.push(FieldChange {
            field: "availability".into(),
            old: Some(availability_text(live.availability)),
            new: Some(availability_text(availability)),
        });
    }
    let mut labels = desired_labels(&live.labels, &node.labels);
    if claimed {
        // Marks the board as this cluster's, so it is removed (with --ssh)
        // once it leaves the spec, and records which spec node it is.
        for (key, value) in [(CLUSTER, cluster), (NODE, &node.name)] {
            if live.labels.get(key) != Some(value) {
                labels.insert(key.into(), value.clone());
                changes.push(FieldChange {
                    field: format!("labels.{key}"),
                    old: live.labels.get(key).map(|v| format!("{v:?}")),
                    new: Some(format!("{value:?}")),
                });
            }
        }
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
    if changes.is_empty() {
        return Ok(None);
    }
    Ok(Some(NodeUpdate {
        name: node.name.clone(),
        id: live.id.clone(),
        version: live.version,
        role: node.role,
        availability,
        labels,
        changes,
        before: (live.role, live.availability, live.labels.clone()),
    }))
}

/// This cluster's nodes that no spec node is: boards that left the spec, and
/// stale objects of boards that re-joined. A live one leaves over SSH (after
/// confirming it is that node); a down one is never contacted: it is drained,
/// and its object removed once it has been down for `down_node_grace`.
fn departures<'a>(
    desired: &Spec,
    observed: &'a Observed,
    matches: &BTreeMap<String, Match<'a>>,
    updates: &mut Vec<NodeUpdate>,
    warnings: &mut Vec<String>,
) -> Vec<(&'a ObservedNode, Departure)> {
    let grace = desired.controller.down_node_grace;
    let mut departures = Vec::new();
    for node in &observed.nodes {
        if node.labels.get(CLUSTER) != Some(&desired.cluster.name)
            || matches.values().any(|m| m.live.id == node.id)
        {
            continue;
        }
        if !is_down(node) {
            departures.push((node, Departure::Leave));
            continue;
        }
        let down_for = observed
            .observed_at
            .zip(node.updated_at)
            .and_then(|(now, since)| now.duration_since(since).ok());
        if down_for.is_some_and(|d| d >= grace) {
            departures.push((node, Departure::Forget));
            continue;
        }
        warnings.push(format!(
            "node `{}` ({}) is down and not in the spec: it is drained and never contacted; its object is removed once it has been down for {}",
            spec_name_of(node),
            node.id,
            reconciler_spec::units::format_duration(grace)
        ));
        if node.availability != Availability::Drain {
            updates.push(NodeUpdate {
                name: spec_name_of(node),
                id: node.id.clone(),
                version: node.version,
                role: node.role,
                availability: Availability::Drain,
                labels: node.labels.clone(),
                changes: vec![FieldChange {
                    field: "availability".into(),
                    old: Some(availability_text(node.availability)),
                    new: Some(availability_text(Availability::Drain)),
                }],
                before: (node.role, node.availability, node.labels.clone()),
            });
        }
    }
    departures
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
            Role::Worker => n.state == NodeState::Ready,
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
