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
}

/// Why provisioning could not even start.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}")]
    Bootstrap(#[from] BootstrapError),
}

/// Connects to every board, learns its facts, plans its steps and (unless
/// `dry_run`) executes them; then opens a tunnel to a manager.
pub async fn provision(
    spec: &Spec,
    options: SshOptions,
    parallel: usize,
    dry_run: bool,
    progress: Progress,
) -> Result<Provisioned, ProvisionError> {
    let targets: Vec<_> = spec.nodes.values().map(target_for).collect();
    let connected = for_each(targets, parallel, move |target| async move {
        let session = Session::connect(&target, options).await?;
        let output = session.run("gather facts", facts::SCRIPT).await?;
        Ok::<_, NodeError>((
            target.node.clone(),
            Arc::new(session),
            Facts::parse(&output.stdout),
        ))
    })
    .await;
    let mut failures = Vec::new();
    let mut sessions: BTreeMap<String, Arc<Session>> = BTreeMap::new();
    let mut facts: BTreeMap<String, Facts> = BTreeMap::new();
    for result in connected {
        match result {
            Ok((node, session, node_facts)) => {
                say(
                    &progress,
                    &format!(
                        "node {node}: reachable ({}, {})",
                        node_facts.arch, node_facts.os
                    ),
                );
                sessions.insert(node.clone(), session);
                facts.insert(node, node_facts);
            }
            Err(error) => {
                say(&progress, &error.to_string());
                failures.push(error);
            }
        }
    }
    let plans = bootstrap::plan(spec, &facts)?;
    if dry_run {
        let tunnel = open_tunnel(spec, &sessions, &facts, &plans, true);
        return Ok(Provisioned {
            plans,
            failures,
            tunnel,
        });
    }

    // The board that initializes the swarm goes first, alone; everyone else joins after.
    let (init, rest): (Vec<NodePlan>, Vec<NodePlan>) = plans
        .iter()
        .cloned()
        .partition(|p| p.steps.iter().any(|s| matches!(s, Step::InitSwarm { .. })));
    let mut failed_nodes = Vec::new();
    for plan in &init {
        if let Some(session) = sessions.get(&plan.node) {
            let mut log = |line: String| say(&progress, &line);
            if let Err(error) = bootstrap::execute(plan, spec, session, None, &mut log).await {
                say(&progress, &error.to_string());
                failed_nodes.push(plan.node.clone());
                failures.push(error);
            }
        }
    }
    let anchor = anchor_session(spec, &sessions, &facts, &plans, &failed_nodes);
    let jobs: Vec<(NodePlan, Arc<Session>, Option<Arc<Session>>)> = rest
        .into_iter()
        .filter_map(|plan| {
            let session = sessions.get(&plan.node)?.clone();
            Some((plan, session, anchor.clone()))
        })
        .collect();
    let spec_for_jobs = Arc::new(spec.clone());
    let results = for_each(jobs, parallel, {
        let progress = Arc::clone(&progress);
        move |(plan, session, manager)| {
            let spec = Arc::clone(&spec_for_jobs);
            let progress = Arc::clone(&progress);
            async move {
                let mut log = |line: String| say(&progress, &line);
                let result =
                    bootstrap::execute(&plan, &spec, &session, manager.as_deref(), &mut log).await;
                if let Err(error) = &result {
                    say(&progress, &error.to_string());
                }
                result.err().map(|e| (plan.node.clone(), e))
            }
        }
    })
    .await;
    for (node, error) in results.into_iter().flatten() {
        failed_nodes.push(node);
        failures.push(error);
    }
    let tunnel = open_tunnel(spec, &sessions, &facts, &plans, false);
    if tunnel.is_none() {
        failures.push(NodeError::Ssh {
            node: "(cluster)".into(),
            reason: "no reachable manager is in a swarm, so the swarm itself cannot be planned yet"
                .into(),
        });
    }
    Ok(Provisioned {
        plans,
        failures,
        tunnel,
    })
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
    Tunnel::open(session, "/var/run/docker.sock").ok()
}
