//! `--ssh`: bring every board of the spec to a swarm member, then hand back
//! a manager's Docker API (through the [`Fleet`]'s tunnel) for the rest.
//!
//! Boards are reached in parallel (bounded). A board that is down or fails a
//! step is reported and skipped; the others go on, and the next run retries it.

use crate::failure::{Classify, ErrorClass};
use std::collections::BTreeMap;
use std::sync::Arc;

use reconciler_spec::{Role, Spec};

use super::bootstrap;
use super::fanout::for_each;
use super::fleet::{Fleet, Looked};
use super::{NodeError, Session, SshOptions};
use crate::observed::{BoardIdentity, Facts, LocalSwarm};
use crate::plan::boards::{self, BootstrapError, NodePlan, Step};
use crate::progress::Event;

/// Shared progress output (stderr in the CLI, the log in the controller).
pub type Progress = crate::progress::SharedProgress;

fn say(progress: &Progress, line: &str) {
    report(progress, Event::Note(line));
}

fn report(progress: &Progress, event: Event<'_>) {
    if let Ok(mut out) = progress.lock() {
        out.report(event);
    }
}

/// What provisioning found and did.
#[derive(Debug)]
pub struct Provisioned {
    /// The steps each board needed (all executed unless this was a dry run).
    pub plans: Vec<NodePlan>,
    /// Boards that could not be reached or failed a step; the others went on.
    pub failures: Vec<NodeError>,
    /// What the boards cannot be given (`boards::notes`).
    pub notes: Vec<String>,
    /// A manager's Docker API through the fleet's tunnel, when a manager is
    /// in a swarm; valid while the [`Fleet`] lives.
    pub docker_host: Option<String>,
    /// Which swarm node each board that answered is, in its own words.
    pub identities: BTreeMap<String, BoardIdentity>,
    /// The boards that answered when they were looked at.
    pub answered: std::collections::BTreeSet<String>,
    /// What each board that answered said about itself (for pre-flight).
    pub facts: BTreeMap<String, Facts>,
}

/// Whether the boards' missing steps are only planned or also done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardWork {
    /// Learn what each board needs; change nothing.
    PlanOnly,
    /// Do it: install, start, init, join.
    Do,
}

impl Provisioned {
    /// The boards' part of the plan (`plan --ssh`), for `plan::render`.
    pub fn part(&self) -> crate::plan::render::BoardsPart<'_> {
        crate::plan::render::BoardsPart {
            plans: &self.plans,
            failures: self
                .failures
                .iter()
                .map(|f| {
                    let (board, problem) = f.board_and_problem();
                    crate::plan::render::BoardFailure {
                        board,
                        problem,
                        text: f.to_string(),
                    }
                })
                .collect(),
            notes: &self.notes,
        }
    }
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

/// Looks at every board (kept sessions and fresh facts from `fleet`) and
/// plans their steps, from facts learned in this pass only: a cached fact
/// must never decide a step (least of all `swarm init`).
async fn look_and_plan(
    spec: &Spec,
    fleet: &mut Fleet,
    options: SshOptions,
    parallel: usize,
    progress: &Progress,
) -> Result<(Looked, Vec<NodePlan>), ProvisionError> {
    let mut looked = fleet.look(spec, options, parallel).await;
    let mut plans = boards::plan(spec, &looked.facts)?;
    let cached: Vec<String> = plans
        .iter()
        .map(|p| p.node.clone())
        .filter(|node| !looked.learned_now.contains(node))
        .collect();
    if !cached.is_empty() {
        fleet.relearn(spec, &mut looked, &cached, parallel).await;
        plans = boards::plan(spec, &looked.facts)?;
    }
    for node in &looked.learned_now {
        if let Some(f) = looked.facts.get(node) {
            say(
                progress,
                &format!("node {node}: reachable ({}, {})", f.arch, f.os),
            );
        }
    }
    Ok((looked, plans))
}

/// Looks at every board (kept sessions and fresh facts from `fleet`, new
/// ones otherwise), plans their steps from facts learned in this pass, and
/// (with [`BoardWork::Do`]) executes them; then reaches a manager's Docker
/// through the fleet's tunnel.
pub async fn provision(
    spec: &Spec,
    fleet: &mut Fleet,
    options: SshOptions,
    parallel: usize,
    work: BoardWork,
    progress: Progress,
) -> Result<Provisioned, ProvisionError> {
    let (looked, plans) = look_and_plan(spec, fleet, options, parallel, &progress).await?;
    let notes = boards::notes(spec, &looked.facts);
    let Looked {
        sessions,
        facts,
        mut failures,
        ..
    } = looked;
    let mut identities = identities(spec, &facts);
    let answered = facts.keys().cloned().collect();
    if work == BoardWork::PlanOnly {
        let docker_host = fleet.docker_host(&anchors(spec, &facts, &[], &[]));
        return Ok(Provisioned {
            plans,
            failures,
            notes,
            docker_host,
            identities,
            answered,
            facts,
        });
    }

    // Three phases: every board prepares itself at once (the slow part:
    // installing Docker); then the swarm is initialized; then the others join.
    let is_swarm = |s: &Step| matches!(s, Step::InitSwarm { .. } | Step::Join { .. });
    let prepare = phase(&plans, &|s| !is_swarm(s));
    let init = phase(&plans, &|s| matches!(s, Step::InitSwarm { .. }));
    let joins = phase(&plans, &|s| matches!(s, Step::Join { .. }));
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
    let anchor = anchors(spec, &facts, &plans, &failed_nodes)
        .first()
        .and_then(|name| sessions.get(name).cloned());
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
    // The boards changed (or failed half-way): their facts are learned again next time.
    for plan in &plans {
        fleet.forget_facts(&plan.node);
    }
    let docker_host = fleet.docker_host(&anchors(spec, &facts, &plans, &failed_nodes));
    Ok(Provisioned {
        plans,
        failures,
        notes,
        docker_host,
        identities,
        answered,
        facts,
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

/// The steps of `plans` that `keep` selects, boards without any left out.
fn phase(plans: &[NodePlan], keep: &dyn Fn(&Step) -> bool) -> Vec<NodePlan> {
    plans
        .iter()
        .map(|p| NodePlan {
            node: p.node.clone(),
            steps: p.steps.iter().filter(|s| keep(s)).cloned().collect(),
        })
        .filter(|p| !p.steps.is_empty())
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
            let node = plan.node.clone();
            let total = plan.steps.len();
            let mut log = |done: usize, step: &str| {
                report(
                    &progress,
                    Event::BoardStep {
                        node: &node,
                        done,
                        total,
                        step,
                    },
                );
            };
            let result =
                bootstrap::execute(&plan, &spec, &session, manager.as_deref(), &mut log).await;
            if let Err(error) = &result {
                say(&progress, &error.to_string());
            }
            report(
                &progress,
                Event::BoardDone {
                    node: &plan.node,
                    ok: result.is_ok(),
                },
            );
            (plan.node.clone(), result)
        }
    })
    .await
}

/// The managers that are (or, after `plans` ran, will be) in the swarm, in
/// spec order: the boards a tunnel to Docker and the joins go through.
fn anchors(
    spec: &Spec,
    facts: &BTreeMap<String, Facts>,
    plans: &[NodePlan],
    failed: &[String],
) -> Vec<String> {
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
                .is_some_and(|f| matches!(f.local_swarm(), Some(LocalSwarm::Active { .. })))
                || joins_now(&n.name)
        })
        .map(|n| n.name.clone())
        .collect()
}

impl Classify for ProvisionError {
    fn class(&self) -> ErrorClass {
        match self {
            ProvisionError::Bootstrap(
                BootstrapError::ArchMismatch { .. } | BootstrapError::InAnotherSwarm { .. },
            ) => ErrorClass::NeedsPerson,
            // A manager that is down or rebooting comes back by itself.
            ProvisionError::Bootstrap(
                BootstrapError::NoManager | BootstrapError::ManagersUnreached { .. },
            )
            | ProvisionError::NoSwarm => ErrorClass::Retryable,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ProvisionError::Bootstrap(BootstrapError::ArchMismatch { .. }) => "arch_mismatch",
            ProvisionError::Bootstrap(BootstrapError::NoManager) => "no_manager",
            ProvisionError::Bootstrap(BootstrapError::ManagersUnreached { .. }) => {
                "managers_unreached"
            }
            ProvisionError::Bootstrap(BootstrapError::InAnotherSwarm { .. }) => "in_another_swarm",
            ProvisionError::NoSwarm => "no_swarm",
        }
    }
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
            "[cluster]\nname = \"b\"\n[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n",
        )]) {
            Ok(spec) => spec,
            Err(e) => panic!("{e}"),
        };
        let running = |state: &str| Facts {
            docker: crate::observed::BoardDocker::Running {
                version: None,
                swarm: LocalSwarm::from_docker(state, Some("n1".into())),
            },
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
        stopped.docker = crate::observed::BoardDocker::Stopped;
        assert_eq!(identity(stopped), None);
    }
}
