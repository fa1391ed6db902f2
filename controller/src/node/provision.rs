//! `apply --ssh`: bring every board of the spec to a swarm member, then hand
//! back a tunnel to a manager's Docker API for the rest of the apply.
//!
//! Boards are reached in parallel (bounded). A board that is down or fails a
//! step is reported and skipped; the others go on, and the next run retries it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use reconciler_spec::{Role, Spec};

use super::bootstrap::{self, BootstrapError, NodePlan, Step};
use super::fanout::for_each;
use super::tunnel::Tunnel;
use super::{facts, target_for, Facts, NodeError, Session, SshOptions};
use crate::observed::BoardIdentity;
use crate::pipeline::BoardWork;

/// Shared progress output (stderr in the CLI).
pub type Progress = Arc<Mutex<dyn Write + Send>>;

fn say(progress: &Progress, line: &str) {
    if let Ok(mut out) = progress.lock() {
        let _ = writeln!(out, "{line}");
    }
}

/// What provisioning found and did.
#[derive(Debug)]
pub struct Provisioned {
    /// The steps each board needed (all executed unless this was a dry run).
    pub plans: Vec<NodePlan>,
    /// Boards that could not be reached or failed a step; the others went on.
    pub failures: Vec<NodeError>,
    /// A tunnel to a manager's Docker socket, when a manager is in a swarm.
    pub tunnel: Option<Tunnel>,
    /// Which swarm node each board that answered is, in its own words.
    pub identities: BTreeMap<String, BoardIdentity>,
}

/// Why provisioning could not even start, or left no swarm to work on.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The boards cannot be planned (an architecture mismatch, no manager).
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// After the board steps, no reachable manager is in a swarm.
    #[error("no reachable manager is in a swarm, so the swarm itself cannot be planned yet")]
    NoSwarm,
}

impl Provisioned {
    /// The tunnel to a manager, or [`ProvisionError::NoSwarm`] when there is none.
    pub fn take_tunnel(&mut self) -> Result<Tunnel, ProvisionError> {
        self.tunnel.take().ok_or(ProvisionError::NoSwarm)
    }
}

/// The boards that answered (their sessions and facts), and those that did not.
type Connected = (
    BTreeMap<String, Arc<Session>>,
    BTreeMap<String, Facts>,
    Vec<NodeError>,
);

/// Connects to every board at once (bounded) and learns its facts.
async fn connect_all(
    spec: &Spec,
    options: SshOptions,
    parallel: usize,
    progress: &Progress,
) -> Connected {
    let targets: Vec<_> = spec.nodes.values().map(target_for).collect();
    let connected = for_each(targets, parallel, move |target| async move {
        let session = Session::connect(&target, options).await?;
        let output = session.run_as_root("gather facts", facts::SCRIPT).await?;
        let facts = Facts::parse(&output.stdout).answering(&target.node)?;
        Ok::<_, NodeError>((target.node.clone(), Arc::new(session), facts))
    })
    .await;
    let mut failures = Vec::new();
    let mut sessions: BTreeMap<String, Arc<Session>> = BTreeMap::new();
    let mut facts: BTreeMap<String, Facts> = BTreeMap::new();
    for result in connected {
        match result {
            Ok((node, session, node_facts)) => {
                say(
                    progress,
                    &format!(
                        "node {node}: reachable ({}, {})",
                        node_facts.arch, node_facts.os
                    ),
                );
                sessions.insert(node.clone(), session);
                facts.insert(node, node_facts);
            }
            Err(error) => {
                say(progress, &error.to_string());
                failures.push(error);
            }
        }
    }
    (sessions, facts, failures)
}

/// Connects to every board, learns its facts, plans its steps and (with
/// [`BoardWork::Do`]) executes them; then opens a tunnel to a manager.
pub async fn provision(
    spec: &Spec,
    options: SshOptions,
    parallel: usize,
    work: BoardWork,
    progress: Progress,
) -> Result<Provisioned, ProvisionError> {
    let (sessions, facts, mut failures) = connect_all(spec, options, parallel, &progress).await;
    let plans = bootstrap::plan(spec, &facts)?;
    let mut identities = identities(spec, &facts);
    if work == BoardWork::PlanOnly {
        let tunnel = open_tunnel(spec, &sessions, &facts, &plans, true);
        return Ok(Provisioned {
            plans,
            failures,
            tunnel,
            identities,
        });
    }

    // Three phases: every board prepares itself at once (the slow part:
    // installing Docker); then the swarm is initialized; then the others join.
    let is_swarm = |s: &Step| matches!(s, Step::InitSwarm { .. } | Step::Join { .. });
    let only = |keep: &dyn Fn(&Step) -> bool| -> Vec<NodePlan> {
        plans
            .iter()
            .map(|p| NodePlan {
                node: p.node.clone(),
                steps: p.steps.iter().filter(|s| keep(s)).cloned().collect(),
            })
            .filter(|p| !p.steps.is_empty())
            .collect()
    };
    let prepare = only(&|s| !is_swarm(s));
    let init = only(&|s| matches!(s, Step::InitSwarm { .. }));
    let joins = only(&|s| matches!(s, Step::Join { .. }));
    let spec_arc = Arc::new(spec.clone());
    let mut failed_nodes: Vec<String> = Vec::new();
    let mut record = |results: Vec<PhaseResult>, failed_nodes: &mut Vec<String>| {
        for (node, result) in results {
            match result {
                Ok(Some(node_id)) => {
                    identities.insert(
                        node,
                        BoardIdentity {
                            node_id: Some(node_id),
                            joined_by_this_cluster: true,
                        },
                    );
                }
                Ok(None) => {}
                Err(error) => {
                    failed_nodes.push(node);
                    failures.push(error);
                }
            }
        }
    };
    let results = run_phase(
        prepare,
        &sessions,
        None,
        &spec_arc,
        parallel,
        &progress,
        &failed_nodes,
    )
    .await;
    record(results, &mut failed_nodes);
    let results = run_phase(
        init,
        &sessions,
        None,
        &spec_arc,
        1,
        &progress,
        &failed_nodes,
    )
    .await;
    record(results, &mut failed_nodes);
    let anchor = anchor_session(spec, &sessions, &facts, &plans, &failed_nodes);
    let results = run_phase(
        joins,
        &sessions,
        anchor,
        &spec_arc,
        parallel,
        &progress,
        &failed_nodes,
    )
    .await;
    record(results, &mut failed_nodes);
    let tunnel = open_tunnel(spec, &sessions, &facts, &plans, false);
    Ok(Provisioned {
        plans,
        failures,
        tunnel,
        identities,
    })
}

/// What each board said about its swarm membership, for the boards whose
/// Docker could say (a stopped Docker says nothing: such a board is matched
/// by its label, hostname or address instead).
fn identities(spec: &Spec, facts: &BTreeMap<String, Facts>) -> BTreeMap<String, BoardIdentity> {
    facts
        .iter()
        .filter_map(|(name, f)| {
            let node_id = f.swarm_membership().ok()?.map(str::to_string);
            let joined_by_this_cluster = node_id.is_some()
                && f.member_cluster.as_deref() == Some(spec.cluster.name.as_str())
                && f.member_node_id == node_id;
            Some((
                name.clone(),
                BoardIdentity {
                    node_id,
                    joined_by_this_cluster,
                },
            ))
        })
        .collect()
}

/// A board's result of one phase: the node ID it joined as, if it joined.
type PhaseResult = (String, Result<Option<String>, NodeError>);

/// Runs one phase's steps on every board of `plans` (skipping boards that
/// failed an earlier phase), at most `parallel` at once.
async fn run_phase(
    plans: Vec<NodePlan>,
    sessions: &BTreeMap<String, Arc<Session>>,
    manager: Option<Arc<Session>>,
    spec: &Arc<Spec>,
    parallel: usize,
    progress: &Progress,
    failed: &[String],
) -> Vec<PhaseResult> {
    let jobs: Vec<(NodePlan, Arc<Session>)> = plans
        .into_iter()
        .filter(|p| !failed.contains(&p.node))
        .filter_map(|p| Some((p.clone(), sessions.get(&p.node)?.clone())))
        .collect();
    let spec = Arc::clone(spec);
    let progress = Arc::clone(progress);
    for_each(jobs, parallel, move |(plan, session)| {
        let spec = Arc::clone(&spec);
        let progress = Arc::clone(&progress);
        let manager = manager.clone();
        async move {
            let mut log = |line: String| say(&progress, &line);
            let result =
                bootstrap::execute(&plan, &spec, &session, manager.as_deref(), &mut log).await;
            if let Err(error) = &result {
                say(&progress, &error.to_string());
            }
            (plan.node.clone(), result)
        }
    })
    .await
}

/// A reachable manager that is (or, after the plans ran, will be) in the swarm.
fn anchor_session(
    spec: &Spec,
    sessions: &BTreeMap<String, Arc<Session>>,
    facts: &BTreeMap<String, Facts>,
    plans: &[NodePlan],
    failed: &[String],
) -> Option<Arc<Session>> {
    let joins_now = |name: &str| {
        plans.iter().any(|p| {
            p.node == name
                && p.steps
                    .iter()
                    .any(|s| matches!(s, Step::InitSwarm { .. } | Step::Join { .. }))
        })
    };
    spec.nodes
        .values()
        .filter(|n| n.role == Role::Manager && !failed.contains(&n.name))
        .filter(|n| {
            facts
                .get(&n.name)
                .is_some_and(|f| f.swarm_state.as_deref() == Some("active"))
                || joins_now(&n.name)
        })
        .find_map(|n| sessions.get(&n.name).cloned())
}

fn open_tunnel(
    spec: &Spec,
    sessions: &BTreeMap<String, Arc<Session>>,
    facts: &BTreeMap<String, Facts>,
    plans: &[NodePlan],
    only_existing: bool,
) -> Option<Tunnel> {
    let plans: &[NodePlan] = if only_existing { &[] } else { plans };
    let session = anchor_session(spec, sessions, facts, plans, &[])?;
    Tunnel::open(session).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the power-cut test: a board whose Docker was stopped "said"
    /// it was in no swarm, so its node was taken for a departed board and
    /// planned for removal. Only a running Docker speaks for the board.
    #[test]
    fn only_a_running_docker_speaks_for_the_board() {
        let spec = match reconciler_spec::load_files(vec![(
            "s.toml".into(),
            "[cluster]\nname = \"b\"\n[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n"
                .into(),
        )]) {
            Ok(spec) => spec,
            Err(e) => panic!("{e}"),
        };
        let running = |state: &str| Facts {
            docker_installed: true,
            docker_running: true,
            swarm_state: Some(state.into()),
            swarm_node_id: Some("n1".into()),
            member_cluster: Some("b".into()),
            member_node_id: Some("n1".into()),
            ..Facts::default()
        };
        let identity = |facts: Facts| {
            identities(&spec, &BTreeMap::from([("pi1".to_string(), facts)]))
                .get("pi1")
                .cloned()
        };
        assert_eq!(
            identity(running("active")),
            Some(BoardIdentity {
                node_id: Some("n1".into()),
                joined_by_this_cluster: true
            })
        );
        let mut other_record = running("active");
        other_record.member_cluster = Some("kitchen".into());
        assert_eq!(
            identity(other_record).map(|i| i.joined_by_this_cluster),
            Some(false)
        );
        assert_eq!(
            identity(running("inactive")),
            Some(BoardIdentity::default())
        );
        for unknown in ["pending", "locked", "error"] {
            assert_eq!(identity(running(unknown)), None, "{unknown}");
        }
        let mut stopped = running("active");
        stopped.docker_running = false;
        assert_eq!(identity(stopped), None);
    }
}
