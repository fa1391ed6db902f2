//! One reconcile of `reconciler run`: fetch the desired state (unless only
//! Docker changed) → load and validate it (a bad revision is refused; the
//! last good one stays in force) → the boards (with `--ssh`) → observe →
//! plan → apply under the one-writer lease, or only report in observe mode,
//! while suspended, or without the lease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sandbox::SandboxError;
use reconciler_spec::{load_files_with, ControllerMode, Environment, LoadError, Spec};
use tokio::sync::watch;

use super::controller::{millis, RunOptions};
use super::report::LogProgress;
use super::writer::Writer;
use super::Outcome;
use crate::apply::{ApplyError, ApplyOptions};
use crate::failure::{Classify, ErrorClass};
use crate::http::Shared;
use crate::metrics::Completion;
use crate::node::fleet::Fleet;
use crate::node::provision::ProvisionError;
use crate::node::NodeError;
use crate::pipeline::{self, FirstLook, PlanningError};
use crate::plan::PlanError;
use crate::plan::{self, render, PlanOptions};
use crate::reconcile::{ReconcileResult, Trigger};
use crate::source::SourceError;
use crate::source::{Snapshot, Source};
use crate::status::{BoardProblem, ErrorStatus, ReconcileStatus, Status};
use crate::swarm::lease::LeaseKeeper;
use crate::swarm::{Swarm, SwarmError};

pub(super) struct Controller {
    pub(super) options: RunOptions,
    /// Shared with the blocking thread that fetches.
    pub(super) source: Arc<std::sync::Mutex<Source>>,
    /// The resync interval in milliseconds, read by the loop after each reconcile.
    pub(super) interval: Arc<AtomicU64>,
    pub(super) shared: Arc<Shared>,
    pub(super) snapshot: Option<Snapshot>,
    pub(super) loaded_revision: Option<String>,
    pub(super) spec: Option<Spec>,
    pub(super) good_revision: Option<String>,
    /// How the newest fetched revision was turned away (`invalid_spec` or
    /// `refused`), while the last good one stays in force: reconciles count
    /// under that result, never as `success`, until a good revision arrives.
    pub(super) newest_turned_away: Option<ReconcileResult>,
    pub(super) swarm: Option<Swarm>,
    /// With `--ssh`: the boards' sessions and facts, and the tunnel to a
    /// manager's Docker, kept between reconciles.
    pub(super) fleet: Fleet,
    /// Where Docker answers, for the event watcher to follow (the tunnel
    /// changes when its board does).
    pub(super) docker_host: watch::Sender<Option<String>>,
    /// The one-writer lease, as this controller holds it.
    pub(super) writer: Writer,
    /// Turns true on SIGTERM/SIGINT: a fetch in progress is abandoned.
    pub(super) shutdown: watch::Receiver<bool>,
    /// With `--ssh`: the steps boards need that this reconcile left undone.
    /// What the boards cannot be given, as last said in the log (said
    /// again only when it changes).
    pub(super) board_notes: Vec<String>,
    pub(super) board_needs: Vec<String>,
    /// The same steps in the plan's form, for the status.
    pub(super) board_plan: Option<String>,
    /// What looking after the boards (`[maintenance]`) remembers.
    pub(super) upkeep: super::upkeep::Memory,
}

/// `run`'s gate before the boards' steps: they are writes, so they are done
/// only when writes are allowed and under the one-writer lease.
struct LeaseGate<'a> {
    /// False in observe mode or while suspended: the boards are only looked at.
    writes: bool,
    cluster: &'a str,
    options: &'a RunOptions,
    revision: Option<&'a str>,
    /// The controller's Docker connection, reused (or made) for the lease.
    swarm: &'a mut Option<Swarm>,
    writer: &'a mut Writer,
    /// The lease's keeper when the gate took it (the caller stops it).
    keeper: Option<LeaseKeeper>,
    /// Another controller's name when it holds the lease.
    standby: Option<String>,
}

impl pipeline::Gate for LeaseGate<'_> {
    type Error = ReconcileError;

    async fn open(&mut self, looked: &pipeline::Reached) -> Result<bool, ReconcileError> {
        if !self.writes {
            return Ok(false);
        }
        let Some(host) = looked.docker_host.as_deref() else {
            // No swarm yet, so no lease to hold: forming it is safe anyway,
            // as every controller picks the same first manager and Docker
            // refuses a second init there.
            return Ok(true);
        };
        let swarm = connect(
            self.swarm,
            self.cluster,
            host,
            self.options.docker_timeout,
            self.revision,
        )
        .await?;
        match self.writer.take(&swarm).await? {
            Some(holder) => {
                self.standby = Some(holder);
                Ok(false)
            }
            None => {
                self.keeper = Some(self.writer.keep(swarm));
                Ok(true)
            }
        }
    }
}

/// How a reconcile ended, for metrics and status.
pub(super) enum Ended {
    Success,
    /// Another controller holds the lease (its holder id).
    Standby(String),
    /// No valid revision loaded yet.
    InvalidSpec,
    Failed(ReconcileError),
}

/// Why a reconcile did not finish, kept typed so it is classified once
/// ([`Classify`]) for the loop's retry policy, metrics and `/api/status`.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReconcileError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Docker(#[from] SwarmError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// Boards that could not be reached or failed a step (the others were done).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Boards(Vec<NodeError>),
    /// The blocking fetch task panicked.
    #[error("the source fetch task failed: {0}")]
    FetchTask(String),
    /// The fetch did not finish in time (a stalled remote), or the previous
    /// one still has not: the last snapshot stays in force.
    #[error("the source fetch did not finish within {0:?} (a stalled remote?); the last revision stays in force")]
    FetchTimeout(Duration),
    /// A board's turn in the rolling upgrade failed.
    #[error("rolling upgrade: {0}")]
    Maintenance(#[from] crate::maintenance::MaintenanceError),
    /// Shutdown was asked for while fetching.
    #[error("fetch abandoned: shutting down")]
    ShuttingDown,
}

impl Classify for ReconcileError {
    fn class(&self) -> ErrorClass {
        match self {
            ReconcileError::Source(e) => e.class(),
            ReconcileError::Docker(e) => e.class(),
            ReconcileError::Plan(e) => e.class(),
            ReconcileError::Apply(e) => e.class(),
            ReconcileError::Provision(e) => e.class(),
            ReconcileError::Maintenance(e) => e.class(),
            // One board needing a person makes the whole need one.
            ReconcileError::Boards(errors) => errors
                .iter()
                .map(Classify::class)
                .find(|c| *c != ErrorClass::Retryable)
                .unwrap_or(ErrorClass::Retryable),
            ReconcileError::FetchTask(_) => ErrorClass::Bug,
            ReconcileError::FetchTimeout(_) | ReconcileError::ShuttingDown => ErrorClass::Retryable,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Source(e) => e.reason(),
            ReconcileError::Docker(e) => e.reason(),
            ReconcileError::Plan(e) => e.reason(),
            ReconcileError::Apply(e) => e.reason(),
            ReconcileError::Provision(e) => e.reason(),
            ReconcileError::Maintenance(e) => e.reason(),
            ReconcileError::Boards(errors) => errors.first().map_or("boards", Classify::reason),
            ReconcileError::FetchTask(_) => "fetch_task",
            ReconcileError::FetchTimeout(_) => "fetch_timeout",
            ReconcileError::ShuttingDown => "shutting_down",
        }
    }
}

impl ReconcileError {
    /// Refused for safety (a plan the planner will not make, boards that
    /// cannot be planned) rather than failed on the way.
    fn refused(&self) -> bool {
        matches!(
            self,
            ReconcileError::Plan(_) | ReconcileError::Provision(ProvisionError::Bootstrap(_))
        )
    }
}

impl Controller {
    pub(super) fn update_interval(&self) {
        let interval = self
            .options
            .interval
            .or_else(|| self.spec.as_ref().map(|s| s.controller.interval))
            .unwrap_or(reconciler_spec::DEFAULT_INTERVAL);
        self.interval.store(millis(interval), Ordering::Relaxed);
    }

    pub(super) fn status(&self) -> std::sync::RwLockWriteGuard<'_, Status> {
        self.shared
            .status
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The result a reconcile counts under: a success with the newest
    /// revision turned away counts as that (the swarm matches the last good
    /// revision, not the newest).
    fn result_of(&self, ended: &Ended) -> ReconcileResult {
        match ended {
            Ended::Success => self.newest_turned_away.unwrap_or(ReconcileResult::Success),
            Ended::Standby(_) => ReconcileResult::Standby,
            Ended::InvalidSpec => ReconcileResult::InvalidSpec,
            Ended::Failed(error) if error.refused() => ReconcileResult::Refused,
            Ended::Failed(_) => ReconcileResult::Error,
        }
    }

    pub(super) async fn reconcile(&mut self, triggers: &[Trigger]) -> Outcome {
        let started = Instant::now();
        let started_at = crate::timestamp::unix_now();
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
        let result = self.result_of(&ended);
        // Retrying soon helps only a passing failure; one that needs a person
        // is looked at again at the resync interval or on the next trigger.
        let outcome = match &ended {
            Ended::Success | Ended::Standby(_) => Outcome::Success,
            Ended::InvalidSpec => Outcome::NeedsPerson,
            Ended::Failed(error) if error.class() == ErrorClass::NeedsPerson => {
                Outcome::NeedsPerson
            }
            Ended::Failed(_) => Outcome::Failure,
        };
        self.shared
            .metrics
            .reconciles
            .with_label_values(&[result.as_str()])
            .inc();
        if matches!(ended, Ended::Success | Ended::Standby(_)) {
            self.shared.metrics.last_success.set(started_at as f64);
        }
        match &ended {
            Ended::Failed(error) => {
                self.shared
                    .metrics
                    .reconcile_errors
                    .with_label_values(&[error.class().as_str(), error.reason()])
                    .inc();
                if error.class() == ErrorClass::Bug {
                    tracing::error!(result = result.as_str(), reason = error.reason(), %error, "reconcile failed: this is a bug in reconciler, please report it");
                } else {
                    tracing::warn!(result = result.as_str(), class = error.class().as_str(), reason = error.reason(), %error, "reconcile failed");
                }
            }
            Ended::Standby(holder) => {
                tracing::info!(holder = %holder, "standby: another controller holds the lease")
            }
            _ if writes > 0 => tracing::info!(
                result = result.as_str(),
                revision = self.good_revision.as_deref().unwrap_or(""),
                triggers = %triggers.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","),
                duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                writes,
                add = summary.add,
                change = summary.change,
                destroy = summary.destroy,
                "reconcile applied {} to add, {} to change, {} to destroy in {elapsed:.1?} ({writes} Docker writes)",
                summary.add,
                summary.change,
                summary.destroy,
            ),
            _ => tracing::debug!(result = result.as_str(), ?elapsed, "reconcile done"),
        }
        let mut status = self.status();
        match &ended {
            Ended::Success | Ended::Standby(_) => {
                status.last_success_at = Some(started_at);
                status.last_error = None;
            }
            Ended::Failed(error) => {
                status.last_error = Some(ErrorStatus {
                    message: error.to_string(),
                    class: error.class(),
                    reason: error.reason(),
                });
            }
            Ended::InvalidSpec => {}
        }
        status.record_reconcile(ReconcileStatus {
            result,
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
        let only_docker = triggers
            .iter()
            .all(|t| matches!(t, Trigger::DockerEvent | Trigger::EventsLost));
        if self.snapshot.is_none() || !only_docker {
            let fetched = self.fetch().await;
            let error_status = fetched.as_ref().err().map(|error| ErrorStatus {
                message: error.to_string(),
                class: error.class(),
                reason: error.reason(),
            });
            // The same failure again (a revoked token, a deleted branch) is
            // said once, not at every resync; it stays on the status page.
            let new_failure = error_status.as_ref().map(|e| &e.message)
                != self.status().source_error.as_ref().map(|e| &e.message);
            self.status().source_error = error_status;
            if let Err(error) = fetched {
                // Without a spec there is nothing to reconcile; with one, the
                // last good revision stays in force while the source is out
                // of reach (the failure stays on the status until a fetch works).
                if self.spec.is_none() {
                    return Ended::Failed(error);
                }
                if new_failure {
                    tracing::warn!(class = error.class().as_str(), reason = error.reason(), %error, "fetch failed; reconciling the last good revision");
                } else {
                    tracing::debug!(reason = error.reason(), "fetch failed again");
                }
            }
        }
        self.load();
        let Some(spec) = self.spec.clone() else {
            return Ended::InvalidSpec;
        };
        match self.step_with(&spec, summary, drift).await {
            Ok(ended) => ended,
            Err(error) => Ended::Failed(error),
        }
    }

    /// The boards (with `--ssh`): looked at, and their steps done when
    /// `writes` and the lease allow. What they still need goes to the status.
    /// Returns the lease's keeper when it was taken here, or the holder when
    /// another controller has it.
    async fn boards(
        &mut self,
        spec: &Spec,
        writes: bool,
    ) -> Result<(pipeline::Reached, Option<LeaseKeeper>, Option<String>), ReconcileError> {
        let progress: crate::node::provision::Progress =
            Arc::new(std::sync::Mutex::new(LogProgress {
                revision: self.good_revision.clone(),
            }));
        let mut gate = LeaseGate {
            writes,
            cluster: &spec.cluster.name,
            options: &self.options,
            revision: self.good_revision.as_deref(),
            swarm: &mut self.swarm,
            writer: &mut self.writer,
            keeper: None,
            standby: None,
        };
        let result = pipeline::boards(
            spec,
            &self.options.reach,
            &mut self.fleet,
            progress,
            &mut gate,
        )
        .await;
        let (keeper, standby) = (gate.keeper, gate.standby);
        let boards = match result {
            Ok(boards) => boards,
            Err(ReconcileError::Docker(error)) => return Err(self.docker_error(error)),
            Err(error) => return Err(error),
        };
        if let Some(holder) = &standby {
            tracing::info!(holder = %holder, "standby: the boards' steps are left to the lease holder");
        }
        self.record_board_needs(&boards);
        Ok((boards.now(), keeper, standby))
    }

    /// What the boards still need after their step (nothing once it was
    /// done: its failures are reported apart).
    fn record_board_needs(&mut self, boards: &pipeline::Boards) {
        let notes = boards
            .looked
            .boards
            .as_ref()
            .map(|b| b.notes.clone())
            .unwrap_or_default();
        for note in notes.iter().filter(|n| !self.board_notes.contains(n)) {
            tracing::warn!("{note}");
        }
        self.board_notes = notes;
        let needed = match (&boards.done, &boards.looked.boards) {
            (None, Some(looked)) => Some(looked),
            _ => None,
        };
        self.board_needs = needed
            .map(|looked| {
                looked
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
                    .collect()
            })
            .unwrap_or_default();
        self.board_plan = needed
            .filter(|looked| !looked.plans.is_empty())
            .map(|looked| render::boards_text(&looked.part()));
        let mut status = self.status();
        status.pending = self.board_needs.clone();
        status.pending_plan = self.board_plan.clone();
    }

    /// Where a manager answers after the boards' step, and the boards that failed.
    fn settle(
        &mut self,
        mut reached: pipeline::Reached,
    ) -> Result<(String, Vec<NodeError>, pipeline::Identities), ReconcileError> {
        let board_failures = reached
            .boards
            .as_mut()
            .map(|b| std::mem::take(&mut b.failures))
            .unwrap_or_default();
        let identities = reached.identities();
        self.status().board_problems = board_failures
            .iter()
            .map(|failure| BoardProblem {
                node: failure.node().to_string(),
                error: ErrorStatus {
                    message: failure.to_string(),
                    class: failure.class(),
                    reason: failure.reason(),
                },
            })
            .collect();
        let host = match reached.docker_host.clone() {
            Some(host) => host,
            None if !board_failures.is_empty() => {
                return Err(ReconcileError::Boards(board_failures))
            }
            None => return Err(ProvisionError::NoSwarm.into()),
        };
        self.docker_host.send_if_modified(|known| {
            let changed = known.as_deref() != Some(host.as_str());
            if changed {
                *known = Some(host.clone());
            }
            changed
        });
        Ok((host, board_failures, identities))
    }

    /// The plan, or why there is none; a plan refused for safety is still
    /// recorded as pending, so the page shows what was refused, never
    /// "nothing pending".
    fn planned(
        &mut self,
        planned: Result<(crate::observed::Observed, plan::Plan), PlanningError>,
        summary: &mut plan::Summary,
        drift: &mut usize,
    ) -> Result<(crate::observed::Observed, plan::Plan), ReconcileError> {
        match planned {
            Ok(planned) => Ok(planned),
            Err(PlanningError::Docker(error)) => {
                self.status().docker_reachable = false;
                Err(self.docker_error(error))
            }
            Err(PlanningError::Plan(error)) => Err(error.into()),
            Err(PlanningError::Refused { plan, source }) => {
                *summary = plan.summary();
                *drift = plan.actions.len();
                self.record_plan(&plan);
                Err(source.into())
            }
        }
    }

    /// One reconcile of a loaded spec: boards (with `--ssh`), observe, plan,
    /// then apply under the lease or only report.
    async fn step_with(
        &mut self,
        spec: &Spec,
        summary: &mut plan::Summary,
        drift: &mut usize,
    ) -> Result<Ended, ReconcileError> {
        let observe = self.options.observe || spec.controller.mode == ControllerMode::Observe;
        let suspended = self.options.suspend || spec.controller.suspend;
        let (reached, mut keeper, standby) = self.boards(spec, !(observe || suspended)).await?;
        let (host, board_failures, identities) = self.settle(reached)?;
        let swarm = self
            .connect(spec, &host)
            .await
            .map_err(|e| self.docker_error(e))?;
        let placement = swarm.placement().await.map_err(|e| self.docker_error(e));
        let plan_options = PlanOptions {
            manage_membership: self.options.reach.manages_boards(),
            allow_other_swarm: self.options.allow_other_swarm,
            ..PlanOptions::default()
        };
        // Every service: upkeep judges where every task may go.
        let planned =
            pipeline::observe_and_plan(&swarm, spec, &identities, plan_options, FirstLook::All)
                .await;
        let (observed, plan) = self.planned(planned, summary, drift)?;
        self.status().docker_reachable = true;
        self.fleet.forget_unready(&observed.ready_node_ids());
        self.record_cluster(spec, &placement?);
        *summary = plan.summary();
        *drift = plan.actions.len();
        self.record_plan(&plan);
        if keeper.is_none() && standby.is_none() {
            self.record_lease(&swarm).await;
        }
        {
            let mut status = self.status();
            status.mode = Some(if observe {
                ControllerMode::Observe
            } else {
                ControllerMode::Apply
            });
            status.suspended = suspended;
        }
        let boards_done = |failures: Vec<NodeError>| {
            if failures.is_empty() {
                Ok(Ended::Success)
            } else {
                Err(ReconcileError::Boards(failures))
            }
        };
        if let Some(holder) = standby {
            return Ok(Ended::Standby(holder));
        }
        if plan.is_empty() || observe || suspended {
            if let Some(keeper) = keeper.take() {
                self.writer.stop(keeper).await;
            }
            // Upgrades start from a swarm that matches the spec.
            if plan.is_empty() && !(observe || suspended) {
                self.upkeep(spec, &swarm, &observed).await?;
            }
            return boards_done(board_failures);
        }
        let keeper = match keeper.take() {
            Some(kept) => kept,
            None => match self
                .writer
                .take(&swarm)
                .await
                .map_err(|e| self.docker_error(e))?
            {
                None => self.writer.keep(swarm.clone()),
                Some(holder) => return Ok(Ended::Standby(holder)),
            },
        };
        let options = ApplyOptions {
            wait: true,
            wait_at_end: false,
            timeout: self.options.apply_timeout,
            lease: Some(keeper.guard()),
            ..ApplyOptions::default()
        };
        let mut log = LogProgress {
            revision: self.good_revision.clone(),
        };
        let result =
            pipeline::execute(&swarm, &plan, spec, &self.options.reach, options, &mut log).await;
        self.writer.stop(keeper).await;
        self.count_actions(&plan, result.as_ref().err());
        if let Err(ApplyError::Action { source, .. } | ApplyError::Guard { source }) = &result {
            self.shared
                .metrics
                .docker_errors
                .with_label_values(&[source.operation().as_str()])
                .inc();
        }
        result?;
        *drift = 0;
        self.record_applied(&swarm).await;
        boards_done(board_failures)
    }

    /// Fetches the source on a blocking thread; a failure keeps the last
    /// snapshot. The wait is bounded (`--fetch-timeout`) and ends at once on
    /// shutdown: a stalled remote can neither freeze the loop nor hold up
    /// SIGTERM. A fetch left running keeps the source locked; the next one
    /// then reports that instead of queueing behind it.
    async fn fetch(&mut self) -> Result<(), ReconcileError> {
        let source = Arc::clone(&self.source);
        let limit = self.options.fetch_timeout;
        let task = tokio::task::spawn_blocking(move || match source.try_lock() {
            Ok(mut source) => Some(source.snapshot()),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                Some(poisoned.into_inner().snapshot())
            }
            Err(std::sync::TryLockError::WouldBlock) => None,
        });
        let mut shutdown = self.shutdown.clone();
        let joined = tokio::select! {
            joined = tokio::time::timeout(limit, task) => joined,
            _ = shutdown.wait_for(|stop| *stop) => return Err(ReconcileError::ShuttingDown),
        };
        let result = match joined {
            Err(_) | Ok(Ok(None)) => Err(ReconcileError::FetchTimeout(limit)),
            Ok(Err(e)) => Err(ReconcileError::FetchTask(e.to_string())),
            Ok(Ok(Some(snapshot))) => snapshot.map_err(ReconcileError::from),
        };
        self.shared
            .metrics
            .source_fetches
            .with_label_values(&[Completion::of(&result).as_str()])
            .inc();
        let snapshot = result?;
        self.status().fetched_revision = Some(snapshot.revision.clone());
        self.snapshot = Some(snapshot);
        Ok(())
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
        match self.load_checked(&snapshot.files) {
            Ok(mut spec) => {
                for setting in self.options.ssh_paths.impose(&mut spec) {
                    tracing::warn!(%revision, "the spec's {setting} is not used: `run` reaches boards with its own --ssh-identity and --known-hosts");
                }
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
                self.newest_turned_away = None;
                self.update_interval();
            }
            Err(text) => {
                self.newest_turned_away = Some(match text {
                    Refused::Load(_) => ReconcileResult::InvalidSpec,
                    Refused::Stopped(_) | Refused::Policy(_) => ReconcileResult::Refused,
                });
                tracing::warn!(%revision, kept = ?self.good_revision, "refusing revision with an invalid spec:\n{text}");
                self.shared.metrics.spec_valid.set(0);
                let mut status = self.status();
                status.spec_valid = false;
                status.spec_error = Some(format!("revision {revision} refused:\n{text}"));
            }
        }
    }

    /// Loads a revision, in a child process under limits first
    /// ([`crate::sandbox`]): a revision that outgrows them is refused
    /// without ever being loaded here.
    fn load_checked(&self, files: &[(std::path::PathBuf, Vec<u8>)]) -> Result<Spec, Refused> {
        let environment = match &self.options.load.environment {
            Environment::Only(allowed) => allowed.clone(),
            Environment::Process => std::collections::BTreeMap::new(),
        };
        match crate::sandbox::check(files, &environment) {
            Ok(()) => {}
            Err(error @ SandboxError::Exceeded { .. }) => return Err(Refused::Stopped(error)),
            // Not the revision's doing (the binary replaced by an upgrade):
            // said, and loaded here as before.
            Err(error @ (SandboxError::Spawn(_) | SandboxError::NoChild(_))) => {
                tracing::warn!("{error}");
            }
        }
        let spec = load_files_with(files.to_vec(), &self.options.load).map_err(Refused::Load)?;
        let verdict =
            crate::policy::judge(&spec, self.options.policy.as_ref(), &self.options.protected);
        if !verdict.refusals.is_empty() {
            return Err(Refused::Policy(verdict.refusals));
        }
        for warning in verdict.warnings {
            tracing::warn!("{warning}");
        }
        Ok(spec)
    }

    /// The swarm client for this spec's cluster at `host`, connecting (again) when needed.
    async fn connect(&mut self, spec: &Spec, host: &str) -> Result<Swarm, SwarmError> {
        connect(
            &mut self.swarm,
            &spec.cluster.name,
            host,
            self.options.docker_timeout,
            self.good_revision.as_deref(),
        )
        .await
    }

    /// Counts a failed Docker call; a lost connection is reconnected next time.
    fn docker_error(&mut self, error: SwarmError) -> ReconcileError {
        self.shared
            .metrics
            .docker_errors
            .with_label_values(&[error.operation().as_str()])
            .inc();
        if matches!(error, SwarmError::Connect { .. }) {
            self.swarm = None;
            self.fleet.drop_tunnel();
            self.status().docker_reachable = false;
        }
        ReconcileError::Docker(error)
    }
}

/// The client in `kept` when it is for `cluster` at `host`, else a new one
/// (kept for the next call).
async fn connect(
    kept: &mut Option<Swarm>,
    cluster: &str,
    host: &str,
    timeout: Duration,
    revision: Option<&str>,
) -> Result<Swarm, SwarmError> {
    if let Some(swarm) = kept {
        if swarm.cluster() == cluster && swarm.host() == host {
            return Ok(swarm.clone());
        }
    }
    let mut swarm = Swarm::connect(host, cluster, timeout).await?;
    swarm.set_revision(revision.map(str::to_string));
    *kept = Some(swarm.clone());
    Ok(swarm)
}

/// Why a fetched revision is not put in force.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// Loading it outgrew the limits of the child that tried first.
    #[error(transparent)]
    Stopped(SandboxError),
    /// The loader refused it: every problem, with its place.
    #[error("{}", match .0 {
        LoadError::Invalid(diagnostics) => diagnostics.to_string(),
        other => other.to_string(),
    })]
    Load(LoadError),
    /// It asks for what the controller's `--policy` denies.
    #[error("it asks for what the controller's policy denies:\n  {}", .0.join("\n  "))]
    Policy(Vec<String>),
}
