//! Executing a plan against the swarm and waiting until services converge.
//!
//! Actions run in plan order. A service with `after` dependencies that this
//! apply touched waits until they converge; at the end every written service
//! must converge, or the apply fails with the reason Swarm gives (a rollback,
//! a task error such as "No such image").

use crate::failure::{Classify, ErrorClass};
use crate::observed::NodeState;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reconciler_spec::ServiceMode;

use crate::node::{Leaver, LeavingBoard, NodeError};
use crate::plan::{Action, Departure, ObjectKind, Plan};
use crate::progress::{Event, Progress};
use crate::swarm::lease::LeaseGuard;
use crate::swarm::progress::Convergence;
use crate::swarm::task_failure::TaskFailure;
use crate::swarm::{Swarm, SwarmError};

/// How long the manager may take to see a board that left the swarm as
/// down; after that its node object is removed by force.
const LEFT_NODE_SEEN_DOWN: Duration = Duration::from_secs(60);

/// How `apply` waits for services.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Wait for a service's `after` dependencies to converge before writing it.
    pub wait: bool,
    /// Also wait, at the end, for every written service to converge. The
    /// long-running controller leaves this to later reconciles.
    pub wait_at_end: bool,
    /// Give up waiting for one service after this long.
    pub timeout: Duration,
    /// Pause between two looks at a service's tasks.
    pub poll: Duration,
    /// How long a task error that waiting cannot change (no such image, a
    /// missing bind source, no node that fits, a port held) must stay the
    /// newest before the wait gives up on the service: Swarm retries a
    /// task after its restart delay (5 s by default), so a little more
    /// than one retry.
    pub settle: Duration,
    /// `run`'s one-writer lease: checked before each action; the apply stops
    /// when it is lost. `None` for `apply` from the command line.
    pub lease: Option<LeaseGuard>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            wait: true,
            wait_at_end: true,
            timeout: Duration::from_secs(300),
            poll: Duration::from_millis(500),
            settle: Duration::from_secs(8),
            lease: None,
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    pub actions_done: usize,
    /// Docker write calls made (retries included).
    pub writes: u64,
}

/// Why an apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A Docker call of one action failed; earlier actions stay applied.
    #[error("{} `{name}`: {source}", kind.as_str())]
    Action {
        /// The kind of object written.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// Docker's error.
        #[source]
        source: SwarmError,
    },
    /// The plan was applied but the revision's `max_delete_fraction` could
    /// not be recorded on the Swarm object (the next plan judges deletes by
    /// the last one recorded).
    #[error("recording max_delete_fraction on the Swarm object: {source}")]
    Guard {
        /// Docker's error.
        #[source]
        source: SwarmError,
    },
    /// Swarm rolled back or paused the service's update.
    #[error("service `{service}` failed to converge: {reason}")]
    Failed { service: String, reason: String },
    /// A board could not be taken out of the swarm.
    #[error("node `{node}`: {reason}")]
    Node { node: String, reason: String },
    /// A live board did not leave the swarm (unreachable, or it is another
    /// node now). It stays drained; it is never removed by force.
    #[error("node `{node}` did not leave the swarm and stays drained: {source}. Make the board leave by hand (`docker swarm leave` on it); once it is off, its object is removed after down_node_grace")]
    NotLeft {
        node: String,
        #[source]
        source: Box<NodeError>,
    },
    /// `run` lost the one-writer lease: nothing more is written.
    #[error("lost the one-writer lease (another controller may be writing): stopped at {at}; earlier actions stay applied")]
    LeaseLost { at: String },
    /// The tasks cannot start, and waiting will not change that.
    #[error("service `{service}` cannot start its tasks: {error}{}; {hint}", if holders.is_empty() { String::new() } else { format!(" (held by {})", holders.join(", ")) })]
    Lasting {
        service: String,
        error: String,
        holders: Vec<String>,
        hint: &'static str,
    },
    /// The tasks did not all start in time.
    #[error("service `{service}` did not converge within {timeout:?}: {running}/{desired} tasks running{}", last_error.as_ref().map(|e| format!("; last task error: {e}")).unwrap_or_default())]
    Timeout {
        service: String,
        timeout: Duration,
        running: u64,
        desired: u64,
        last_error: Option<String>,
    },
}

/// Executes `plan` and (unless told not to) waits for the services it wrote.
/// `leaver` is needed only for node removals (`apply --ssh`).
pub async fn apply(
    swarm: &Swarm,
    plan: &Plan,
    options: ApplyOptions,
    leaver: Option<&Leaver>,
    progress: &mut dyn Progress,
) -> Result<ApplyReport, ApplyError> {
    let writes_before = swarm.write_count();
    let mut touched: Vec<Touched> = Vec::new();
    let mut converged: BTreeSet<String> = BTreeSet::new();
    let mut report = ApplyReport::default();
    let mut next = 0;
    while let Some(action) = plan.actions.get(next) {
        let batch = independent_creates(&plan.actions[next..]);
        if batch.len() > 1 {
            next += batch.len();
            report.actions_done +=
                create_at_once(swarm, batch, &options, progress, &mut touched).await?;
            continue;
        }
        next += 1;
        if options.lease.as_ref().is_some_and(|lease| !lease.held()) {
            return Err(ApplyError::LeaseLost {
                at: format!("`{}`", crate::plan::render::describe(action)),
            });
        }
        if options.wait {
            wait_for_after(swarm, action, &touched, &mut converged, &options, progress).await?;
        }
        let kind = action.kind();
        let stale_update = match action {
            Action::UpdateService { service, .. } if options.wait => {
                swarm
                    .service_progress(&service.name, None)
                    .await
                    .map_err(|source| ApplyError::Action {
                        kind,
                        name: service.name.clone(),
                        source,
                    })?
                    .update_started_at
            }
            _ => None,
        };
        progress.report(Event::Write {
            kind,
            name: action.name(),
            operation: action.operation(),
        });
        if let Action::RemoveNode {
            name,
            id,
            address,
            manager,
            departure,
        } = action
        {
            let node = Departing {
                name,
                id,
                address,
                manager: *manager,
            };
            match departure {
                Departure::Leave => leave(swarm, &node, leaver, &options, progress).await?,
                Departure::Forget => forget(swarm, &node, progress).await?,
            }
            report.actions_done += 1;
            continue;
        }
        swarm
            .execute(action)
            .await
            .map_err(|source| ApplyError::Action {
                kind,
                name: action.name().to_string(),
                source,
            })?;
        report.actions_done += 1;
        if let Action::CreateService { service, .. } | Action::UpdateService { service, .. } =
            action
        {
            touched.push(Touched {
                name: service.name.clone(),
                mode: service.mode,
                stale_update,
            });
        }
    }
    if options.wait && options.wait_at_end {
        let rest: Vec<&Touched> = touched
            .iter()
            .filter(|t| !converged.contains(&t.name))
            .collect();
        wait_all(swarm, &rest, &options, progress).await?;
    }
    report.writes = swarm.write_count() - writes_before;
    Ok(report)
}

/// How many service creates are in flight at once: the daemon takes them
/// concurrently (a thousand new services are written in a fraction of the
/// time one at a time takes), and a few at a time keep a Pi manager
/// answering everyone else.
const CREATES_AT_ONCE: usize = 8;

/// The run of actions from the first that are creates of services waiting
/// for none (`after` empty): they may be written in any order.
fn independent_creates(actions: &[Action]) -> &[Action] {
    let run = actions
        .iter()
        .take_while(
            |a| matches!(a, Action::CreateService { service, .. } if service.after.is_empty()),
        )
        .count();
    &actions[..run]
}

/// Creates `batch` ([`independent_creates`]) [`CREATES_AT_ONCE`] at a time.
/// After a failure (or the lease lost) nothing more is started; those in
/// flight finish, what was created is recorded, and the first error (in
/// plan order) is returned. Returns how many were created.
async fn create_at_once(
    swarm: &Swarm,
    batch: &[Action],
    options: &ApplyOptions,
    progress: &mut dyn Progress,
    touched: &mut Vec<Touched>,
) -> Result<usize, ApplyError> {
    use futures_util::StreamExt;
    let stop = std::cell::Cell::new(false);
    let progress = std::cell::RefCell::new(progress);
    let results: Vec<(usize, Option<Result<(), ApplyError>>)> =
        futures_util::stream::iter(batch.iter().enumerate())
            .map(|(index, action)| {
                let (stop, progress) = (&stop, &progress);
                async move {
                    if stop.get() {
                        return (index, None);
                    }
                    if options.lease.as_ref().is_some_and(|lease| !lease.held()) {
                        stop.set(true);
                        let at = format!("`{}`", crate::plan::render::describe(action));
                        return (index, Some(Err(ApplyError::LeaseLost { at })));
                    }
                    progress.borrow_mut().report(Event::Write {
                        kind: action.kind(),
                        name: action.name(),
                        operation: action.operation(),
                    });
                    let done = swarm
                        .execute(action)
                        .await
                        .map_err(|source| ApplyError::Action {
                            kind: action.kind(),
                            name: action.name().to_string(),
                            source,
                        });
                    stop.set(stop.get() || done.is_err());
                    (index, Some(done))
                }
            })
            .buffer_unordered(CREATES_AT_ONCE)
            .collect()
            .await;
    let mut results = results;
    results.sort_by_key(|(index, _)| *index);
    let mut created = 0;
    let mut failure = None;
    for (index, result) in results {
        match result {
            Some(Ok(())) => {
                if let Some(Action::CreateService { service, .. }) = batch.get(index) {
                    touched.push(Touched {
                        name: service.name.clone(),
                        mode: service.mode,
                        stale_update: None,
                    });
                }
                created += 1;
            }
            Some(Err(error)) => {
                failure.get_or_insert(error);
            }
            None => {}
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(created),
    }
}

/// Waits until the services `action`'s service comes `after` that this
/// apply wrote have converged (each once).
async fn wait_for_after(
    swarm: &Swarm,
    action: &Action,
    touched: &[Touched],
    converged: &mut BTreeSet<String>,
    options: &ApplyOptions,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    if let Action::CreateService { service, .. } | Action::UpdateService { service, .. } = action {
        for dependency in &service.after {
            if let Some(t) = touched.iter().find(|t| &t.name == dependency) {
                if converged.insert(t.name.clone()) {
                    wait_converged(swarm, t, options, progress).await?;
                }
            }
        }
    }
    Ok(())
}

/// A service this apply wrote, and what its update status said before.
#[derive(Debug)]
struct Touched {
    name: String,
    mode: ServiceMode,
    stale_update: Option<String>,
}

/// Polls a service until its tasks run (and keep running for the monitor
/// period), Swarm reports failure, or the timeout.
async fn wait_converged(
    swarm: &Swarm,
    touched: &Touched,
    options: &ApplyOptions,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    wait_all(swarm, &[touched], options, progress).await
}

/// Waits for several services at once, so the monitor periods overlap
/// rather than add up: the first error stops the wait.
async fn wait_all(
    swarm: &Swarm,
    touched: &[&Touched],
    options: &ApplyOptions,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    let mut pending: Vec<Wait> = touched.iter().copied().filter_map(Wait::of).collect();
    while !pending.is_empty() {
        let mut still = Vec::with_capacity(pending.len());
        for mut wait in pending {
            if !wait.look(swarm, options, progress).await? {
                still.push(wait);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(options.poll).await;
        }
    }
    Ok(())
}

/// One service being waited for: what was seen of it so far.
struct Wait<'a> {
    touched: &'a Touched,
    /// The replica count for a replicated service, `None` for a global one.
    replicas: Option<u64>,
    started: Instant,
    last_count: Option<(u64, u64)>,
    /// Since when the newest task error has been one waiting cannot change.
    lasting_since: Option<(String, Instant)>,
    /// Since when every wanted task has been running.
    converged_since: Option<Instant>,
}

impl<'a> Wait<'a> {
    /// `None` for a job: its tasks run to completion in their own time (a
    /// backup, a migration): written is done; nothing may come `after` one.
    fn of(touched: &'a Touched) -> Option<Self> {
        let replicas = match touched.mode {
            ServiceMode::Replicated(n) => Some(n),
            ServiceMode::Global => None,
            ServiceMode::ReplicatedJob { .. } | ServiceMode::GlobalJob => return None,
        };
        Some(Self {
            touched,
            replicas,
            started: Instant::now(),
            last_count: None,
            lasting_since: None,
            converged_since: None,
        })
    }

    /// One look at the service: `Ok(true)` once it has converged and kept
    /// its tasks running for the monitor period.
    async fn look(
        &mut self,
        swarm: &Swarm,
        options: &ApplyOptions,
        progress: &mut dyn Progress,
    ) -> Result<bool, ApplyError> {
        let name = self.touched.name.as_str();
        let status = swarm
            .service_progress(name, self.replicas)
            .await
            .map_err(|source| ApplyError::Action {
                kind: ObjectKind::Service,
                name: name.to_string(),
                source,
            })?;
        let count = (status.running, status.desired);
        if self.last_count != Some(count) {
            progress.report(Event::Tasks {
                service: name,
                running: status.running,
                desired: status.desired,
            });
            self.last_count = Some(count);
        }
        let convergence = status.convergence(self.touched.stale_update.as_deref());
        let lasting = status
            .last_error
            .as_deref()
            .filter(|_| convergence == Convergence::InProgress)
            .filter(|e| TaskFailure::of(e).is_lasting());
        self.lasting_since = match (lasting, self.lasting_since.take()) {
            (Some(error), Some((seen, at))) if seen == error => Some((seen, at)),
            (Some(error), _) => Some((error.to_string(), Instant::now())),
            (None, _) => None,
        };
        if let Some((error, at)) = &self.lasting_since {
            if at.elapsed() >= options.settle {
                return Err(lasting_failure(swarm, name, error).await);
            }
        }
        match convergence {
            Convergence::Converged => {
                let since = match self.converged_since {
                    Some(since) => since,
                    None => {
                        progress.report(Event::Note(&format!(
                            "service.{name}: waiting {}s to verify that its tasks stay up",
                            status.monitor.as_secs_f64().ceil()
                        )));
                        *self.converged_since.insert(Instant::now())
                    }
                };
                Ok(since.elapsed() >= status.monitor)
            }
            Convergence::Failed(reason) => Err(ApplyError::Failed {
                service: name.to_string(),
                reason,
            }),
            Convergence::InProgress => {
                self.converged_since = None;
                if self.started.elapsed() >= options.timeout {
                    return Err(ApplyError::Timeout {
                        service: name.to_string(),
                        timeout: options.timeout,
                        running: status.running,
                        desired: status.desired,
                        last_error: status.last_error,
                    });
                }
                if options.lease.as_ref().is_some_and(|l| !l.held()) {
                    return Err(ApplyError::LeaseLost {
                        at: format!("the wait for service.{name}"),
                    });
                }
                Ok(false)
            }
        }
    }
}

/// The error for a service whose tasks cannot start; for a held port, with
/// the services that hold it.
async fn lasting_failure(swarm: &Swarm, service: &str, error: &str) -> ApplyError {
    let failure = TaskFailure::of(error);
    let holders = if failure == TaskFailure::HostPortInUse {
        swarm.host_port_holders(service).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    ApplyError::Lasting {
        service: service.to_string(),
        error: error.to_string(),
        holders,
        hint: failure.hint(),
    }
}

/// A node on its way out of the swarm.
struct Departing<'a> {
    name: &'a str,
    id: &'a str,
    address: &'a str,
    manager: bool,
}

impl Departing<'_> {
    fn docker_error(&self, source: SwarmError) -> ApplyError {
        ApplyError::Action {
            kind: ObjectKind::Node,
            name: self.name.to_string(),
            source,
        }
    }
}

/// A live board: drain, wait for the tasks to move, demote a manager, leave
/// over SSH once the board confirms it is this node, remove the object. If
/// the board cannot confirm (unreachable, or it is another node now), the
/// apply stops with the reason: a live node is never removed by force.
async fn leave(
    swarm: &Swarm,
    node: &Departing<'_>,
    leaver: Option<&Leaver>,
    options: &ApplyOptions,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    let name = node.name;
    let docker = |source: SwarmError| node.docker_error(source);
    let leaver = leaver.ok_or_else(|| docker(SwarmError::NeedsSsh(name.to_string())))?;
    swarm.drain(node.id).await.map_err(docker)?;
    let started = Instant::now();
    loop {
        let left = swarm.tasks_on_node(node.id).await.map_err(docker)?;
        if left == 0 {
            break;
        }
        if started.elapsed() >= options.timeout {
            return Err(ApplyError::Node {
                node: name.to_string(),
                reason: format!(
                    "{left} task(s) still on it after draining for {:?}",
                    options.timeout
                ),
            });
        }
        progress.report(Event::Note(&format!(
            "node.{name}: draining, {left} task(s) left"
        )));
        tokio::time::sleep(options.poll).await;
    }
    if node.manager {
        progress.report(Event::Note(&format!("node.{name}: demoting")));
        swarm.demote(node.id).await.map_err(docker)?;
    }
    progress.report(Event::Note(&format!("node.{name}: leaving the swarm")));
    leaver
        .leave(LeavingBoard {
            node: name,
            address: node.address,
            node_id: node.id,
        })
        .await
        .map_err(|source| ApplyError::NotLeft {
            node: name.to_string(),
            source: Box::new(source),
        })?;
    // The manager sees a node down a moment after it left.
    let deadline = Instant::now() + LEFT_NODE_SEEN_DOWN;
    while swarm.node_state(node.id).await.map_err(docker)? != NodeState::Down
        && Instant::now() < deadline
    {
        tokio::time::sleep(options.poll).await;
    }
    swarm.remove_node(node.id).await.map_err(docker)
}

/// A node down for longer than the grace: drain and demote it so Swarm stops
/// counting on it, then remove the object. The board is never contacted.
async fn forget(
    swarm: &Swarm,
    node: &Departing<'_>,
    progress: &mut dyn Progress,
) -> Result<(), ApplyError> {
    let name = node.name;
    let docker = |source: SwarmError| node.docker_error(source);
    progress.report(Event::Note(&format!(
        "node.{name}: down past the grace; removing its object without contacting the board"
    )));
    swarm.drain(node.id).await.map_err(docker)?;
    if node.manager {
        progress.report(Event::Note(&format!("node.{name}: demoting")));
        swarm.demote(node.id).await.map_err(docker)?;
    }
    swarm.remove_node(node.id).await.map_err(docker)
}

impl Classify for ApplyError {
    fn class(&self) -> ErrorClass {
        match self {
            ApplyError::Action { source, .. } | ApplyError::Guard { source } => source.class(),
            // Swarm rolled the update back: the same spec would roll back again.
            ApplyError::Failed { .. } => ErrorClass::NeedsPerson,
            // Lasting for this spec, yet a person may fix the board or the
            // registry rather than the spec: the controller tries again.
            ApplyError::Timeout { .. }
            | ApplyError::Lasting { .. }
            | ApplyError::Node { .. }
            | ApplyError::LeaseLost { .. } => ErrorClass::Retryable,
            ApplyError::NotLeft { source, .. } => source.class(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApplyError::Action { source, .. } | ApplyError::Guard { source } => source.reason(),
            ApplyError::Failed { .. } => "rolled_back",
            ApplyError::Timeout { .. } => "not_converged",
            ApplyError::Lasting { .. } => "cannot_start",
            ApplyError::Node { .. } => "node_removal",
            ApplyError::LeaseLost { .. } => "lease_lost",
            ApplyError::NotLeft { source, .. } => source.reason(),
        }
    }
}
