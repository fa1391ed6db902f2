//! Which swarm node each spec node is: one to one, strongest evidence first.
//!
//! A board's own word over SSH (the node ID its Docker reports) beats the node
//! label this cluster wrote on the node it joined, which beats the hostname,
//! which beats the address. A swarm node taken on stronger evidence is not
//! available to weaker evidence, so a re-flashed board's stale object or a
//! board that got another board's old DHCP address never stands in for it.
//! Where the evidence disagrees, planning stops and names both sides: a wrong
//! match is how the wrong board gets relabelled, demoted or removed.

use std::collections::BTreeMap;

use reconciler_spec::Spec;

use super::PlanError;
use crate::labels::{CLUSTER, NODE};
use crate::observed::{NodeState, Observed, ObservedNode};

/// Why a swarm node is taken to be a spec node, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Evidence {
    /// The board, reached over SSH, reports this node ID.
    Board,
    /// The node carries this cluster's label naming the spec node.
    Label,
    /// The node's hostname is the spec node's name.
    Hostname,
    /// The node's address is the spec node's address.
    Address,
}

impl Evidence {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Evidence::Board => "the board's own node ID",
            Evidence::Label => "its io.reconciler.node label",
            Evidence::Hostname => "hostname",
            Evidence::Address => "address",
        }
    }
}

/// The swarm node a spec node is, and why.
#[derive(Debug, Clone, Copy)]
pub(super) struct Match<'a> {
    pub live: &'a ObservedNode,
    pub evidence: Evidence,
}

/// A down node is an object whose board may be gone or be somebody else now.
pub(super) fn is_down(node: &ObservedNode) -> bool {
    node.state == NodeState::Down
}

/// How a swarm node is named in errors: enough to find it with `docker node ls`.
fn describe(node: &ObservedNode) -> String {
    format!(
        "{} (hostname {}, address {}, {})",
        node.id, node.hostname, node.address, node.state
    )
}

/// Matches every spec node to at most one swarm node and every swarm node to
/// at most one spec node. Spec nodes without a match are absent from the map.
pub(super) fn match_nodes<'a>(
    desired: &Spec,
    observed: &'a Observed,
) -> Result<BTreeMap<String, Match<'a>>, PlanError> {
    let mut matches: BTreeMap<String, Match<'a>> = BTreeMap::new();
    // Spec nodes whose board answered over SSH: its word is final, even when
    // it says "not in this swarm" (then any object with its name is stale).
    for node in desired.nodes.values() {
        let Some(board) = observed.boards.get(&node.name) else {
            continue;
        };
        let Some(live) = board
            .node_id
            .as_deref()
            .and_then(|id| observed.nodes.iter().find(|n| n.id == id))
        else {
            continue;
        };
        if let Some((other, _)) = matches.iter().find(|(_, m)| m.live.id == live.id) {
            return Err(PlanError::SharedSwarmNode {
                swarm_node: describe(live),
                first: other.clone(),
                first_evidence: Evidence::Board.as_str(),
                second: node.name.clone(),
                second_evidence: Evidence::Board.as_str(),
            });
        }
        matches.insert(
            node.name.clone(),
            Match {
                live,
                evidence: Evidence::Board,
            },
        );
    }
    let answered = |name: &str| observed.boards.contains_key(name);
    // Live nodes first on every kind of evidence, so a re-flashed board's new
    // object wins over the stale one that still carries its label; then the
    // down ones, for spec nodes whose board is off.
    for live_only in [true, false] {
        for evidence in [Evidence::Label, Evidence::Hostname, Evidence::Address] {
            for node in desired.nodes.values() {
                if matches.contains_key(&node.name) || answered(&node.name) {
                    continue;
                }
                if let Some(live) = find(desired, observed, &matches, node, evidence, live_only)? {
                    matches.insert(node.name.clone(), Match { live, evidence });
                }
            }
        }
    }
    Ok(matches)
}

/// The free swarm node `node` is on this evidence: the only live one, or
/// (`live_only` off) the most recently changed down one; the others are stale
/// objects of the same board. Two live ones, or an address that is already
/// another spec node, are errors.
fn find<'a>(
    desired: &Spec,
    observed: &'a Observed,
    matches: &BTreeMap<String, Match<'a>>,
    node: &reconciler_spec::Node,
    evidence: Evidence,
    live_only: bool,
) -> Result<Option<&'a ObservedNode>, PlanError> {
    if evidence == Evidence::Address
        && desired
            .nodes
            .values()
            .any(|other| other.name != node.name && other.address == node.address)
    {
        // Boards sharing an address (behind different SSH ports) are not
        // told apart by it.
        return Ok(None);
    }
    let fits = |n: &&ObservedNode| match evidence {
        Evidence::Label => {
            n.labels.get(NODE) == Some(&node.name)
                && n.labels.get(CLUSTER) == Some(&desired.cluster.name)
        }
        Evidence::Hostname => n.hostname == node.name,
        Evidence::Address | Evidence::Board => n.address == node.address,
    };
    let taken_by = |n: &ObservedNode| matches.iter().find(|(_, m)| m.live.id == n.id);
    let candidates: Vec<&ObservedNode> = observed.nodes.iter().filter(fits).collect();
    if evidence == Evidence::Address {
        if let Some((live, (other, how))) = candidates
            .iter()
            .find_map(|n| taken_by(n).map(|taken| (n, taken)))
        {
            return Err(PlanError::SharedSwarmNode {
                swarm_node: describe(live),
                first: other.clone(),
                first_evidence: how.evidence.as_str(),
                second: node.name.clone(),
                second_evidence: Evidence::Address.as_str(),
            });
        }
    }
    let free = candidates.into_iter().filter(|n| taken_by(n).is_none());
    let (alive, down): (Vec<&ObservedNode>, Vec<&ObservedNode>) = free.partition(|n| !is_down(n));
    match alive.as_slice() {
        [one] => Ok(Some(one)),
        [first, second, ..] => Err(PlanError::AmbiguousNode {
            node: node.name.clone(),
            evidence: evidence.as_str(),
            first: describe(first),
            second: describe(second),
        }),
        [] if live_only => Ok(None),
        [] => Ok(down.into_iter().max_by_key(|n| n.updated_at)),
    }
}
