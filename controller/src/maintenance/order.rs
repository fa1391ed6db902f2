//! Which boards an upgrade takes, in what order, and whether it may: pure.
//!
//! A board whose upgrade was cut off (its node carries the maintenance
//! mark) comes first, then the workers, then the managers; workers go
//! `max_unavailable` at a time, managers one at a time and only while every
//! other manager is reachable (raft keeps its majority). A board with
//! nothing to upgrade and no reboot pending is left alone. A batch is
//! refused when a replicated service it runs has no other node to go to.

use std::collections::{BTreeMap, BTreeSet};

use reconciler_spec::{Availability, Role, ServiceMode, Spec};
use serde::Serialize;

use crate::observed::{Facts, NodeState, Observed, ObservedNode};

/// Where a board's upgrade stands, as its node's mark says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Drained; its tasks are leaving.
    Drain,
    /// Its packages are being upgraded.
    Upgrade,
    /// It was told to reboot.
    Reboot,
    /// It is coming back: Docker started, the node ready, then active.
    Return,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Drain => "drain",
            Stage::Upgrade => "upgrade",
            Stage::Reboot => "reboot",
            Stage::Return => "return",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "drain" => Stage::Drain,
            "upgrade" => Stage::Upgrade,
            "reboot" => Stage::Reboot,
            "return" => Stage::Return,
            _ => return None,
        })
    }
}

/// A node's maintenance mark: the stage and the availability to give back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub stage: Stage,
    pub before: Availability,
}

impl Mark {
    /// `"upgrade active"`, as the label holds it.
    pub fn label(self) -> String {
        format!("{} {}", self.stage.as_str(), self.before.as_str())
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (stage, before) = text.split_once(' ')?;
        Some(Self {
            stage: Stage::parse(stage)?,
            before: Availability::parse(before)?,
        })
    }
}

/// Why a board is taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Its upgrade was cut off at this stage.
    Resume(Stage),
    /// Packages can be upgraded.
    Updates(u64),
    /// A reboot waits (`/var/run/reboot-required`).
    RebootPending,
    /// Named on the command line (`--node`).
    Asked,
}

/// One board's turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Turn {
    /// The spec's name.
    pub node: String,
    pub node_id: String,
    pub role: Role,
    pub reason: Reason,
    /// Where to start: `None` from the beginning.
    pub resume: Option<Mark>,
}

/// The boards in the order they are taken.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Order {
    /// Taken one batch after the other; the boards of a batch together.
    pub batches: Vec<Vec<Turn>>,
    /// Nothing to upgrade and no reboot pending.
    pub up_to_date: Vec<String>,
}

/// A service's task on a node, as the swarm lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedTask {
    pub service: String,
    pub node_id: String,
}

/// Why an upgrade does not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// A board of the spec did not answer: its state is unknown.
    #[error("node {0} could not be reached (above): an upgrade goes board by board knowing every board; bring it back or leave it out with --node")]
    Unreached(String),
    /// A board of the spec is not in the swarm: it cannot be drained.
    #[error("node {0} is not in the swarm: `reconciler apply --ssh` joins it first")]
    NotInSwarm(String),
    /// Taking this manager down would leave raft without a majority.
    #[error("manager {manager} cannot be taken down: manager(s) {} are not reachable, and raft needs a majority up; bring them back first", .down.join(", "))]
    QuorumAtRisk { manager: String, down: Vec<String> },
    /// A replicated service runs only where this batch would drain.
    #[error("draining {} would leave service {service} nowhere to run (no other ready, active node its constraints allow); add a node it may run on, or relax its constraints", .nodes.join(", "))]
    NowhereToGo { nodes: Vec<String>, service: String },
}

/// The boards to upgrade (all of the spec's, or `only`), in order.
pub fn order(
    spec: &Spec,
    observed: &Observed,
    facts: &BTreeMap<String, Facts>,
    tasks: &[PlacedTask],
    only: &[String],
) -> Result<Order, OrderError> {
    let mut order = Order::default();
    let mut resumed = Vec::new();
    let mut workers = Vec::new();
    let mut managers = Vec::new();
    for node in spec.nodes.values() {
        if !only.is_empty() && !only.contains(&node.name) {
            continue;
        }
        let board = facts.get(&node.name);
        // The node the board's Docker says it is; else (Docker stopped, or
        // no answer: a board rebooting in a cut-off upgrade) the node this
        // cluster labelled as it.
        let live = board
            .and_then(Facts::swarm_node_id)
            .and_then(|id| observed.nodes.iter().find(|n| n.id == id))
            .or_else(|| {
                observed
                    .nodes
                    .iter()
                    .find(|n| n.labels.get(crate::labels::NODE) == Some(&node.name))
            });
        let resume = live
            .and_then(|n| n.labels.get(crate::labels::MAINTENANCE))
            .and_then(|mark| Mark::parse(mark));
        let (live, board) = match (live, board, resume) {
            (Some(live), _, Some(mark)) => {
                resumed.push(Turn {
                    node: node.name.clone(),
                    node_id: live.id.clone(),
                    role: live.role,
                    reason: Reason::Resume(mark.stage),
                    resume: Some(mark),
                });
                continue;
            }
            (_, None, _) => return Err(OrderError::Unreached(node.name.clone())),
            (None, Some(_), _) => return Err(OrderError::NotInSwarm(node.name.clone())),
            (Some(live), Some(board), None) => (live, board),
        };
        let reason = match board.upgradable_packages {
            Some(n) if n > 0 => Reason::Updates(n),
            _ if board.reboot_required => Reason::RebootPending,
            _ if !only.is_empty() => Reason::Asked,
            _ => {
                order.up_to_date.push(node.name.clone());
                continue;
            }
        };
        let turn = Turn {
            node: node.name.clone(),
            node_id: live.id.clone(),
            role: live.role,
            reason,
            resume: None,
        };
        match live.role {
            Role::Worker => workers.push(turn),
            Role::Manager => managers.push(turn),
        }
    }
    let width = usize::try_from(spec.maintenance.max_unavailable)
        .unwrap_or(1)
        .max(1);
    order.batches.extend(resumed.into_iter().map(|t| vec![t]));
    for chunk in workers.chunks(width) {
        order.batches.push(chunk.to_vec());
    }
    order.batches.extend(managers.into_iter().map(|t| vec![t]));
    // Judged as the swarm will be when each batch's turn comes: a node
    // under maintenance now is back by then, as it was.
    let mut expected = observed.clone();
    for n in &mut expected.nodes {
        if let Some(mark) = n
            .labels
            .get(crate::labels::MAINTENANCE)
            .and_then(|m| Mark::parse(m))
        {
            n.availability = mark.before;
            n.state = NodeState::Ready;
            n.manager_reachable = n.manager_reachable.map(|_| true);
        }
    }
    for batch in &order.batches {
        check_batch(batch, &expected, tasks)?;
    }
    Ok(order)
}

/// Whether `batch` may go down in the swarm as `observed` says it is: run
/// for every batch before anything starts, and again on the live swarm
/// right before its turn.
pub fn check_batch(
    batch: &[Turn],
    observed: &Observed,
    tasks: &[PlacedTask],
) -> Result<(), OrderError> {
    check_quorum(batch, observed)?;
    check_somewhere_to_go(batch, observed, tasks)
}

/// A manager goes down only while every other manager is reachable.
fn check_quorum(batch: &[Turn], observed: &Observed) -> Result<(), OrderError> {
    for turn in batch.iter().filter(|t| t.role == Role::Manager) {
        let down: Vec<String> = observed
            .nodes
            .iter()
            .filter(|n| n.role == Role::Manager && n.id != turn.node_id)
            .filter(|n| n.state != NodeState::Ready || n.manager_reachable == Some(false))
            .map(|n| n.hostname.clone())
            .collect();
        if !down.is_empty() {
            return Err(OrderError::QuorumAtRisk {
                manager: turn.node.clone(),
                down,
            });
        }
    }
    Ok(())
}

/// Every replicated service with a task on the batch's nodes has another
/// ready, active node outside the batch that its constraints allow.
pub fn check_somewhere_to_go(
    batch: &[Turn],
    observed: &Observed,
    tasks: &[PlacedTask],
) -> Result<(), OrderError> {
    let leaving: BTreeSet<&str> = batch.iter().map(|t| t.node_id.as_str()).collect();
    let services: BTreeSet<&str> = tasks
        .iter()
        .filter(|t| leaving.contains(t.node_id.as_str()))
        .map(|t| t.service.as_str())
        .collect();
    let others: Vec<&ObservedNode> = observed
        .nodes
        .iter()
        .filter(|n| !leaving.contains(n.id.as_str()))
        .filter(|n| n.state == NodeState::Ready && n.availability == Availability::Active)
        .collect();
    for name in services {
        let Some(service) = observed.services.get(name) else {
            continue;
        };
        // A global service's task is the node's own; a job's ends by itself.
        if !matches!(service.config.mode, ServiceMode::Replicated(_)) {
            continue;
        }
        let fits = others
            .iter()
            .any(|n| crate::preflight::node_allows(&service.config.constraints, n));
        if !fits {
            return Err(OrderError::NowhereToGo {
                nodes: batch.iter().map(|t| t.node.clone()).collect(),
                service: name.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
