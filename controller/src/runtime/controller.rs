//! `reconciler run`: wires the source, the swarm, the loop, HTTP and metrics.
//!
//! One reconcile = fetch the desired state (unless only Docker changed) →
//! load and validate it (a bad revision is refused; the last good one stays in
//! force) → observe → plan → apply, or only report in observe mode, while
//! suspended, or without the one-writer lease.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use reconciler_spec::{load_files, ControllerMode, LoadError, Spec};
use tokio::sync::{mpsc, watch};

use super::{run_loop, Backoff, Outcome, Trigger};
use crate::apply::{apply, ApplyError, ApplyOptions};
use crate::http::{self, Shared};
use crate::metrics::Metrics;
use crate::plan::{self, render, ObjectKind, Plan, PlanOptions};
use crate::source::{Snapshot, Source};
use crate::status::{NodeStatus, ReconcileStatus, ServiceStatus, Status};
use crate::swarm::lease::LeaseState;
use crate::swarm::{Swarm, SwarmError};

/// Everything `reconciler run` is told on its command line.
#[derive(Debug)]
pub struct RunOptions {
    pub docker_host: String,
    pub listen: SocketAddr,
    /// Shared secret for `/hooks/git`; `None` refuses every hook.
    pub webhook_secret: Option<Vec<u8>>,
    /// Overrides `[controller] mode`.
    pub observe: bool,
    /// Overrides `[controller] suspend`.
    pub suspend: bool,
    /// Overrides `[controller] interval`.
    pub interval: Option<Duration>,
    /// This controller's name in the lease.
    pub holder: String,
    pub lease_ttl: Duration,
    /// How long to wait for a service another one comes `after`.
    pub apply_timeout: Duration,
    /// Drive the boards over SSH too (bootstrap, join, leave) and reach a
    /// manager through SSH instead of `docker_host`.
    pub ssh: Option<SshRun>,
}

/// How `run --ssh` reaches the boards.
#[derive(Debug, Clone, Copy)]
pub struct SshRun {
    pub options: crate::node::SshOptions,
    pub parallel: usize,
}

/// Why the controller could not start; once running, errors are reported and retried.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs until `shutdown` turns true, then releases the lease and returns.
pub async fn run(
    source: Source,
    options: RunOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let (triggers, receiver) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        metrics: Metrics::new(),
        status: RwLock::new(Status {
            source: source.describe(),
            lease: "unknown".into(),
            ..Status::default()
        }),
        triggers: triggers.clone(),
        webhook_secret: options.webhook_secret.clone(),
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| RunError::Listen {
            address: options.listen,
            source,
        })?;
    // With port 0 the system picks one: say which, so scripts and tests can find it.
    let bound = listener.local_addr().unwrap_or(options.listen);
    tracing::info!(source = %source.describe(), "reconciler run: listening on {bound}");
    tokio::spawn(http::serve(listener, Arc::clone(&shared), shutdown.clone()));
    if options.ssh.is_none() {
        // With --ssh the manager is reached anew each reconcile; the resync timer stands in for events.
        tokio::spawn(watch_docker_events(
            options.docker_host.clone(),
            triggers.clone(),
            Arc::clone(&shared),
            shutdown.clone(),
        ));
    }
    let _watcher = match &source {
        Source::Dir(dir) => watch_directory(dir.path(), triggers.clone()),
        Source::Git(_) => None,
    };
    let _ = triggers.send(Trigger::Startup);

    let interval = Arc::new(AtomicU64::new(options.interval.map_or(30_000, millis)));
    let source = Arc::new(std::sync::Mutex::new(source));
    let controller = Arc::new(tokio::sync::Mutex::new(Controller {
        options,
        source,
        interval: Arc::clone(&interval),
        shared: Arc::clone(&shared),
        snapshot: None,
        loaded_revision: None,
        spec: None,
        good_revision: None,
        swarm: None,
        tunnel: None,
    }));
    let loop_controller = Arc::clone(&controller);
    run_loop(
        receiver,
        shutdown,
        move || Duration::from_millis(interval.load(Ordering::Relaxed)),
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        move |batch| {
            let controller = Arc::clone(&loop_controller);
            async move { controller.lock().await.reconcile(&batch).await }
        },
    )
    .await;

    let controller = controller.lock().await;
    if let Some(swarm) = &controller.swarm {
        if let Err(error) = swarm.release_lease(&controller.options.holder).await {
            tracing::warn!(%error, "could not release the lease; it expires by itself");
        }
    }
    tracing::info!("reconciler run: stopped");
    Ok(())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

struct Controller {
    options: RunOptions,
    /// Shared with the blocking thread that fetches.
    source: Arc<std::sync::Mutex<Source>>,
    /// The resync interval in milliseconds, read by the loop after each reconcile.
    interval: Arc<AtomicU64>,
    shared: Arc<Shared>,
    snapshot: Option<Snapshot>,
    loaded_revision: Option<String>,
    spec: Option<Spec>,
    good_revision: Option<String>,
    swarm: Option<Swarm>,
    /// With `--ssh`: the forwarded socket of a manager the swarm client uses.
    tunnel: Option<crate::node::tunnel::Tunnel>,
}

/// How a reconcile ended, for metrics and status.
enum Ended {
    Success,
    Standby(String),
    Refused(String),
    InvalidSpec,
    Error(String),
}

impl Controller {
    fn update_interval(&self) {
        let interval = self
            .options
            .interval
            .or_else(|| self.spec.as_ref().map(|s| s.controller.interval))
            .unwrap_or(Duration::from_secs(30));
        self.interval.store(millis(interval), Ordering::Relaxed);
    }

    fn status(&self) -> std::sync::RwLockWriteGuard<'_, Status> {
        self.shared
            .status
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn reconcile(&mut self, triggers: &[Trigger]) -> Outcome {
        let started = Instant::now();
        let started_at = now_unix();
        let mut summary = plan::Summary::default();
        let mut drift = 0;
        let writes_before = self.swarm.as_ref().map_or(0, Swarm::write_count);
        let ended = self.step(triggers, &mut summary, &mut drift).await;
        let writes = self
            .swarm
            .as_ref()
            .map_or(0, Swarm::write_count)
            .saturating_sub(writes_before);
        self.shared.metrics.docker_writes.inc_by(writes);
        let elapsed = started.elapsed();
        self.shared
            .metrics
            .reconcile_duration
            .observe(elapsed.as_secs_f64());
        let (result, outcome, error) = match &ended {
            Ended::Success => ("success", Outcome::Success, None),
            Ended::Standby(_) => ("standby", Outcome::Success, None),
            Ended::Refused(reason) => ("refused", Outcome::Failure, Some(reason.clone())),
            Ended::InvalidSpec => ("invalid_spec", Outcome::Failure, None),
            Ended::Error(reason) => ("error", Outcome::Failure, Some(reason.clone())),
        };
        self.shared
            .metrics
            .reconciles
            .with_label_values(&[result])
            .inc();
        if matches!(ended, Ended::Success | Ended::Standby(_)) {
            self.shared.metrics.last_success.set(started_at as f64);
        }
        match &ended {
            Ended::Error(reason) | Ended::Refused(reason) => {
                tracing::warn!(result, error = %reason, "reconcile failed")
            }
            Ended::Standby(holder) => {
                tracing::info!(holder = %holder, "standby: another controller holds the lease")
            }
            _ => tracing::debug!(result, ?elapsed, "reconcile done"),
        }
        let mut status = self.status();
        if matches!(ended, Ended::Success | Ended::Standby(_)) {
            status.last_success_at = Some(started_at);
            status.last_error = None;
        } else if let Some(error) = error {
            status.last_error = Some(error);
        }
        status.last_reconcile = Some(ReconcileStatus {
            result: result.to_string(),
            triggers: triggers.iter().map(|t| t.as_str().to_string()).collect(),
            started_at,
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            plan: summary,
            drift,
            writes,
        });
        outcome
    }

    async fn step(
        &mut self,
        triggers: &[Trigger],
        summary: &mut plan::Summary,
        drift: &mut usize,
    ) -> Ended {
        let only_docker = triggers.iter().all(|t| *t == Trigger::DockerEvent);
        if self.snapshot.is_none() || !only_docker {
            if let Err(reason) = self.fetch().await {
                if self.spec.is_none() {
                    return Ended::Error(reason);
                }
                // Keep reconciling the last good revision while the source is unreachable.
                self.status().last_error = Some(reason);
            }
        }
        self.load();
        let Some(spec) = self.spec.clone() else {
            return Ended::InvalidSpec;
        };
        let mut board_failures = Vec::new();
        if let Some(ssh) = self.options.ssh {
            let observe = self.options.observe || spec.controller.mode == ControllerMode::Observe;
            let dry_run = observe || self.options.suspend || spec.controller.suspend;
            let progress: crate::node::provision::Progress =
                Arc::new(std::sync::Mutex::new(LogProgress));
            match crate::node::provision::provision(
                &spec,
                ssh.options,
                ssh.parallel,
                dry_run,
                progress,
            )
            .await
            {
                Ok(done) => {
                    board_failures = done.failures.iter().map(ToString::to_string).collect();
                    if !done.plans.is_empty() {
                        self.status().pending = done
                            .plans
                            .iter()
                            .map(|p| {
                                format!(
                                    "node.{} needs: {}",
                                    p.node,
                                    p.steps
                                        .iter()
                                        .map(|s| s.describe())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            })
                            .collect();
                    }
                    match done.tunnel {
                        Some(tunnel) => {
                            // A new tunnel each reconcile: the client follows it.
                            self.swarm = None;
                            self.tunnel = Some(tunnel);
                        }
                        None => return Ended::Error(board_failures.join("; ")),
                    }
                }
                Err(error) => return Ended::Refused(error.to_string()),
            }
        }
        let swarm = match self.connect(&spec).await {
            Ok(swarm) => swarm,
            Err(error) => return Ended::Error(self.docker_error(&error)),
        };
        let observed = match swarm.observe().await {
            Ok(observed) => observed,
            Err(error) => {
                self.status().docker_reachable = false;
                return Ended::Error(self.docker_error(&error));
            }
        };
        self.status().docker_reachable = true;
        let running = match swarm.running_tasks().await {
            Ok(running) => running,
            Err(error) => return Ended::Error(self.docker_error(&error)),
        };
        self.record_cluster(&spec, &observed, &running);
        let plan_options = PlanOptions {
            manage_membership: self.options.ssh.is_some(),
            ..PlanOptions::default()
        };
        let plan = match plan::plan(&spec, &observed, plan_options) {
            Ok(plan) => plan,
            Err(error) => return Ended::Refused(error.to_string()),
        };
        *summary = plan.summary();
        *drift = plan.actions.len();
        self.record_plan(&plan);
        let observe = self.options.observe || spec.controller.mode == ControllerMode::Observe;
        let suspended = self.options.suspend || spec.controller.suspend;
        {
            let mut status = self.status();
            status.mode = if observe { "observe" } else { "apply" }.into();
            status.suspended = suspended;
        }
        if plan.is_empty() || observe || suspended {
            return if board_failures.is_empty() {
                Ended::Success
            } else {
                Ended::Error(board_failures.join("; "))
            };
        }
        match swarm
            .acquire_lease(&self.options.holder, self.options.lease_ttl)
            .await
        {
            Ok(LeaseState::Held { .. }) => {
                self.shared.metrics.lease_held.set(1);
                self.status().lease = "held".into();
            }
            Ok(LeaseState::HeldBy { holder, .. }) => {
                self.shared.metrics.lease_held.set(0);
                self.status().lease = format!("held by {holder}");
                return Ended::Standby(holder);
            }
            Err(error) => return Ended::Error(self.docker_error(&error)),
        }
        let options = ApplyOptions {
            wait: true,
            wait_at_end: false,
            timeout: self.options.apply_timeout,
            ..ApplyOptions::default()
        };
        let mut log = LogProgress;
        let leaver = self
            .options
            .ssh
            .map(|ssh| crate::node::leaver(&spec.ssh, ssh.options));
        let result = apply(&swarm, &plan, options, leaver.as_deref(), &mut log).await;
        self.count_actions(&plan, result.as_ref().err());
        match result {
            Ok(_) if !board_failures.is_empty() => Ended::Error(board_failures.join("; ")),
            Ok(_) => {
                *drift = 0;
                // Everything pending was just applied.
                self.status().pending.clear();
                Ended::Success
            }
            Err(error) => {
                if let ApplyError::Action { source, .. } = &error {
                    self.shared
                        .metrics
                        .docker_errors
                        .with_label_values(&[source.operation().as_str()])
                        .inc();
                }
                Ended::Error(error.to_string())
            }
        }
    }

    /// Fetches the source on a blocking thread; a failure keeps the last snapshot.
    async fn fetch(&mut self) -> Result<(), String> {
        let source = Arc::clone(&self.source);
        let joined = tokio::task::spawn_blocking(move || match source.lock() {
            Ok(mut source) => source.snapshot(),
            Err(poisoned) => poisoned.into_inner().snapshot(),
        })
        .await;
        let result = match joined {
            Ok(result) => result,
            Err(error) => return Err(format!("source fetch task failed: {error}")),
        };
        match result {
            Ok(snapshot) => {
                self.shared
                    .metrics
                    .source_fetches
                    .with_label_values(&["success"])
                    .inc();
                self.status().fetched_revision = Some(snapshot.revision.clone());
                self.snapshot = Some(snapshot);
                Ok(())
            }
            Err(error) => {
                self.shared
                    .metrics
                    .source_fetches
                    .with_label_values(&["error"])
                    .inc();
                Err(error.to_string())
            }
        }
    }

    /// Parses a newly fetched revision. A refused revision leaves the last good
    /// spec in force; the same bad revision is not parsed again.
    fn load(&mut self) {
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        if self.loaded_revision.as_deref() == Some(snapshot.revision.as_str()) {
            return;
        }
        let revision = snapshot.revision.clone();
        self.loaded_revision = Some(revision.clone());
        match load_files(snapshot.files.clone()) {
            Ok(spec) => {
                tracing::info!(%revision, "spec loaded");
                self.shared.metrics.spec_valid.set(1);
                self.shared.metrics.revision_info.reset();
                self.shared
                    .metrics
                    .revision_info
                    .with_label_values(&[revision.as_str()])
                    .set(1);
                if let Some(swarm) = self.swarm.as_mut() {
                    swarm.set_revision(Some(revision.clone()));
                }
                let mut status = self.status();
                status.spec_valid = true;
                status.spec_error = None;
                status.revision = Some(revision.clone());
                drop(status);
                self.spec = Some(spec);
                self.good_revision = Some(revision);
                self.update_interval();
            }
            Err(error) => {
                let text = match &error {
                    LoadError::Invalid(diagnostics) => diagnostics.to_string(),
                    other => other.to_string(),
                };
                tracing::warn!(%revision, kept = ?self.good_revision, "refusing revision with an invalid spec:\n{text}");
                self.shared.metrics.spec_valid.set(0);
                let mut status = self.status();
                status.spec_valid = false;
                status.spec_error = Some(format!("revision {revision} refused:\n{text}"));
            }
        }
    }

    /// The swarm client for this spec's cluster, connecting (again) when needed.
    async fn connect(&mut self, spec: &Spec) -> Result<Swarm, SwarmError> {
        if let Some(swarm) = &self.swarm {
            if swarm.cluster() == spec.cluster.name {
                return Ok(swarm.clone());
            }
        }
        let host = self.tunnel.as_ref().map_or_else(
            || self.options.docker_host.clone(),
            crate::node::tunnel::Tunnel::docker_host,
        );
        let mut swarm = Swarm::connect(&host, &spec.cluster.name).await?;
        swarm.set_revision(self.good_revision.clone());
        self.swarm = Some(swarm.clone());
        Ok(swarm)
    }

    fn docker_error(&mut self, error: &SwarmError) -> String {
        self.shared
            .metrics
            .docker_errors
            .with_label_values(&[error.operation().as_str()])
            .inc();
        if matches!(error, SwarmError::Connect { .. }) {
            self.swarm = None;
            self.status().docker_reachable = false;
        }
        error.to_string()
    }

    fn record_cluster(
        &self,
        spec: &Spec,
        observed: &crate::observed::Observed,
        running: &std::collections::HashMap<String, u64>,
    ) {
        let metrics = &self.shared.metrics;
        metrics.nodes.reset();
        for node in &observed.nodes {
            let role = format!("{:?}", node.role).to_lowercase();
            metrics
                .nodes
                .with_label_values(&[role.as_str(), node.state.as_str()])
                .inc();
        }
        metrics.replicas_desired.reset();
        metrics.replicas_running.reset();
        let mut services = Vec::new();
        for (name, service) in &observed.services {
            if service.owner != crate::observed::Owner::ThisCluster
                && !spec.services.contains_key(name)
            {
                continue;
            }
            let desired = match service.config.mode {
                reconciler_spec::ServiceMode::Replicated(n) => Some(n),
                reconciler_spec::ServiceMode::Global => None,
            };
            let running = running.get(name).copied().unwrap_or(0);
            let desired_gauge = desired.unwrap_or(running);
            metrics
                .replicas_desired
                .with_label_values(&[name.as_str()])
                .set(i64::try_from(desired_gauge).unwrap_or(i64::MAX));
            metrics
                .replicas_running
                .with_label_values(&[name.as_str()])
                .set(i64::try_from(running).unwrap_or(i64::MAX));
            services.push(ServiceStatus {
                name: name.clone(),
                desired,
                running,
                in_spec: spec.services.contains_key(name),
            });
        }
        let nodes = observed
            .nodes
            .iter()
            .map(|n| NodeStatus {
                hostname: n.hostname.clone(),
                role: format!("{:?}", n.role).to_lowercase(),
                availability: format!("{:?}", n.availability).to_lowercase(),
                state: n.state.clone(),
                labels: n
                    .labels
                    .iter()
                    .filter(|(k, _)| !crate::labels::is_reserved(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect();
        let mut status = self.status();
        status.nodes = nodes;
        status.services = services;
    }

    fn record_plan(&self, plan: &Plan) {
        let metrics = &self.shared.metrics;
        for kind in ObjectKind::ALL {
            let count = plan.actions.iter().filter(|a| a.kind() == kind).count();
            metrics
                .drift
                .with_label_values(&[kind.as_str()])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.status().pending = plan.actions.iter().map(render::describe).collect();
    }

    fn count_actions(&self, plan: &Plan, error: Option<&ApplyError>) {
        let failed_at = match error {
            Some(ApplyError::Action { kind, name, .. }) => plan
                .actions
                .iter()
                .position(|a| a.kind().as_str() == *kind && a.name() == name),
            _ => None,
        };
        let done = failed_at.unwrap_or(plan.actions.len());
        for (index, action) in plan
            .actions
            .iter()
            .enumerate()
            .take(done + usize::from(failed_at.is_some()))
        {
            let result = if Some(index) == failed_at {
                "error"
            } else {
                "success"
            };
            self.shared
                .metrics
                .actions
                .with_label_values(&[action.kind().as_str(), action.operation().as_str(), result])
                .inc();
        }
    }
}

/// Apply progress goes to the log in the long-running controller.
struct LogProgress;

impl std::io::Write for LogProgress {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let line = text.trim_end();
        if !line.is_empty() {
            tracing::info!("{line}");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Docker events become triggers; the stream reconnects after errors.
async fn watch_docker_events(
    host: String,
    triggers: mpsc::UnboundedSender<Trigger>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match Swarm::connect(&host, "").await {
            Ok(swarm) => {
                let mut events = Box::pin(swarm.events());
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        event = events.next() => match event {
                            Some(Ok(kind)) => {
                                tracing::debug!(%kind, "docker event");
                                if triggers.send(Trigger::DockerEvent).is_err() {
                                    return;
                                }
                            }
                            Some(Err(error)) => {
                                shared.metrics.docker_errors.with_label_values(&[error.operation().as_str()]).inc();
                                break;
                            }
                            None => break,
                        }
                    }
                }
            }
            Err(error) => {
                shared
                    .metrics
                    .docker_errors
                    .with_label_values(&[error.operation().as_str()])
                    .inc();
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// How long a spec directory must be quiet before a change triggers a
/// reconcile, so an editor saving several files is seen as one change.
const FILE_SETTLE: Duration = Duration::from_millis(300);

/// Watches a spec directory with notify, debounced by [`FILE_SETTLE`].
fn watch_directory(
    path: &std::path::Path,
    triggers: mpsc::UnboundedSender<Trigger>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let (raw, mut raw_events) = mpsc::unbounded_channel::<()>();
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !event.kind.is_access() {
                let _ = raw.send(());
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the spec directory; relying on the resync timer");
            return None;
        }
    };
    if let Err(error) = watcher.watch(path, notify::RecursiveMode::Recursive) {
        tracing::warn!(%error, path = %path.display(), "cannot watch the spec directory; relying on the resync timer");
        return None;
    }
    tokio::spawn(async move {
        while raw_events.recv().await.is_some() {
            loop {
                match tokio::time::timeout(FILE_SETTLE, raw_events.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_quiet) => break,
                }
            }
            if triggers.send(Trigger::FileChanged).is_err() {
                return;
            }
        }
    });
    Some(watcher)
}
