//! `reconciler upgrade`: the boards' systems upgraded one board (or a few
//! workers) at a time, as `[maintenance]` says: drain → upgrade → reboot
//! when needed → wait for SSH and the node to be ready → give back the
//! availability it had → next.
//!
//! Where each board stands lives on its swarm node, in the maintenance
//! mark ([`crate::labels::MAINTENANCE`], `"<stage> <availability before>"`),
//! written before each stage starts; a reboot is told apart from a board
//! that never went down by a marker in the board's `/run`, which a reboot
//! clears. So an upgrade killed anywhere resumes correctly when run again,
//! from the node and the board, not from memory. It stops at the first
//! failure, saying where; that board stays drained and marked.

pub mod health_drain;
pub mod order;
pub mod prune;
pub mod rolling;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reconciler_spec::{Availability, RebootPolicy, Spec};

use crate::node::{NodeError, Session, SshOptions};
use crate::observed::{Facts, NodeState};
use crate::progress::{Event, SharedProgress};
use crate::swarm::{Swarm, SwarmError};
use order::{Mark, Stage, Turn};

/// Created before a reboot in the board's `/run` (a tmpfs): gone once it
/// has rebooted.
pub const REBOOT_MARKER: &str = "/run/reconciler-reboot-pending";
/// How long a lease that lapsed (the swarm out of reach while its only
/// manager rebooted) is waited for before the upgrade stops.
const LEASE_RECOVERY: Duration = Duration::from_secs(60);
/// How often a waiting upgrade looks again.
const POLL: Duration = Duration::from_secs(2);

/// Why an upgrade stopped.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The swarm could not be read or written.
    #[error(transparent)]
    Swarm(#[from] SwarmError),
    /// A board could not be reached or a command on it failed to run.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A drained board's tasks did not leave in time.
    #[error("node {node}: {left} task(s) still on it after {timeout:?} drained; it stays drained and marked, and `reconciler upgrade` goes on from here when run again")]
    DrainTimeout {
        node: String,
        left: usize,
        timeout: Duration,
    },
    /// The upgrade command failed on the board.
    #[error("node {node}: the upgrade failed: {stderr}; it stays drained and marked: fix it (`dpkg --configure -a`, disk space) and run `reconciler upgrade` again")]
    Upgrade { node: String, stderr: String },
    /// The board did not answer again after its reboot.
    #[error("node {node}: no answer over SSH {timeout:?} after the reboot; it stays drained and marked: see to the board, then run `reconciler upgrade` again")]
    Boot { node: String, timeout: Duration },
    /// Another controller took the cluster's one-writer lease.
    #[error("lost the one-writer lease (another controller may be writing): stopped before node {node}'s {stage} stage; it stays marked, and `reconciler upgrade` goes on from there when run again")]
    LeaseLost { node: String, stage: &'static str },
    /// A command was to run on a board not connected to (a bug: `maintain`
    /// connects first).
    #[error("node {node}: not connected")]
    NoSession { node: String },
    /// The batch may not go down in the swarm as it is now.
    #[error(transparent)]
    Refused(#[from] order::OrderError),
    /// The board answered but its swarm node did not become ready.
    #[error("node {node}: its swarm node is not ready {timeout:?} after it came back; it stays drained and marked (is Docker running on it?)")]
    NotReady { node: String, timeout: Duration },
}

/// The swarm's API, over a tunnel through a manager board's SSH session:
/// replaced when that manager reboots (a cluster with one manager has no
/// other way to its swarm).
#[derive(Debug)]
pub struct SwarmLink {
    swarm: std::sync::Mutex<Swarm>,
    /// The tunnel of a replacement connection, kept open while it is used.
    tunnel: std::sync::Mutex<Option<crate::node::tunnel::Tunnel>>,
    cluster: String,
    timeout: Duration,
}

impl SwarmLink {
    pub fn new(swarm: Swarm, cluster: &str, timeout: Duration) -> Self {
        Self {
            swarm: std::sync::Mutex::new(swarm),
            tunnel: std::sync::Mutex::new(None),
            cluster: cluster.to_string(),
            timeout,
        }
    }

    /// The connection in use now.
    pub fn get(&self) -> Swarm {
        match self.swarm.lock() {
            Ok(swarm) => swarm.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A new connection through `session`'s board (a manager just back).
    async fn reconnect_via(&self, session: Arc<Session>) -> Result<(), MaintenanceError> {
        let tunnel = crate::node::tunnel::Tunnel::open(session)?;
        let swarm = Swarm::connect(&tunnel.docker_host(), &self.cluster, self.timeout).await?;
        if let Ok(mut kept) = self.swarm.lock() {
            *kept = swarm;
        }
        if let Ok(mut kept) = self.tunnel.lock() {
            *kept = Some(tunnel);
        }
        Ok(())
    }
}

/// What one board's turn needs.
pub struct Board<'a> {
    pub spec: &'a Spec,
    pub link: &'a SwarmLink,
    pub turn: &'a Turn,
    /// The session the board was looked at over (replaced after a reboot);
    /// `None` for a board that did not answer (rebooting in a cut-off
    /// upgrade): it is waited for.
    pub session: Option<Arc<Session>>,
    /// How it is reached again after a reboot.
    pub target: crate::node::Target,
    pub ssh: SshOptions,
    /// The availability the node has now (given back at the end).
    pub availability: Availability,
    pub progress: SharedProgress,
    /// The one-writer lease: nothing is written once it is lost.
    pub lease: crate::swarm::lease::LeaseGuard,
}

impl std::fmt::Debug for Board<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("node", &self.turn.node)
            .finish_non_exhaustive()
    }
}

impl Board<'_> {
    fn say(&self, line: &str) {
        if let Ok(mut out) = self.progress.lock() {
            out.report(Event::Note(&format!("node {}: {line}", self.turn.node)));
        }
    }

    async fn mark(&self, stage: Stage, before: Availability) -> Result<(), MaintenanceError> {
        self.check_lease(stage).await?;
        let label = Mark { stage, before }.label();
        Ok(self
            .link
            .get()
            .mark_maintenance(&self.turn.node_id, Some(&label), Availability::Drain)
            .await?)
    }

    /// The lease, held now or taken back soon: it lapses while the only
    /// manager reboots, and its keeper takes it back once the swarm
    /// answers, unless another controller took it meanwhile.
    async fn check_lease(&self, stage: Stage) -> Result<(), MaintenanceError> {
        let started = Instant::now();
        while !self.lease.held() {
            if started.elapsed() > LEASE_RECOVERY {
                return Err(MaintenanceError::LeaseLost {
                    node: self.turn.node.clone(),
                    stage: stage.as_str(),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }

    /// Takes the board through every stage from where its mark says.
    pub async fn maintain(mut self) -> Result<(), MaintenanceError> {
        let maintenance = &self.spec.maintenance;
        if self.session.is_none() {
            self.say("not answering yet: waiting for it");
            self.session = Some(self.reconnect(maintenance.boot_timeout).await?);
        }
        let (mut stage, before) = match self.turn.resume {
            Some(mark) => {
                self.say(&format!("resuming at {}", mark.stage.as_str()));
                (mark.stage, mark.before)
            }
            None => (Stage::Drain, self.availability),
        };
        if stage == Stage::Drain {
            self.mark(Stage::Drain, before).await?;
            self.say("draining");
            self.wait_drained(maintenance.drain_timeout).await?;
            stage = Stage::Upgrade;
        }
        if stage == Stage::Upgrade {
            self.mark(Stage::Upgrade, before).await?;
            self.upgrade().await?;
            if self.needs_reboot().await? {
                // The marker first: a board found without it has rebooted.
                self.run("mark the reboot", &format!("touch {REBOOT_MARKER}\n"))
                    .await?;
                stage = Stage::Reboot;
            } else {
                self.mark(Stage::Return, before).await?;
                stage = Stage::Return;
            }
        }
        if stage == Stage::Reboot {
            self.mark(Stage::Reboot, before).await?;
            self.reboot(maintenance.boot_timeout).await?;
        }
        // Back (from a reboot, or an upgrade that needed none): Docker, the
        // swarm's view of the node, then its availability as it was.
        self.come_back(maintenance.boot_timeout).await?;
        self.check_lease(Stage::Return).await?;
        self.link
            .get()
            .mark_maintenance(&self.turn.node_id, None, before)
            .await?;
        self.say(&format!("done, {} again", before.as_str()));
        Ok(())
    }

    async fn run(&self, what: &str, script: &str) -> Result<crate::node::Output, MaintenanceError> {
        match &self.session {
            Some(session) => Ok(session.run_as_root(what, script).await?),
            None => Err(MaintenanceError::NoSession {
                node: self.turn.node.clone(),
            }),
        }
    }

    /// A new session, as soon as the board answers (within `timeout`).
    async fn reconnect(&self, timeout: Duration) -> Result<Arc<Session>, MaintenanceError> {
        let started = Instant::now();
        loop {
            if let Ok(session) = Session::connect(&self.target, self.ssh).await {
                return Ok(Arc::new(session));
            }
            if started.elapsed() > timeout {
                return Err(MaintenanceError::Boot {
                    node: self.turn.node.clone(),
                    timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_drained(&self, timeout: Duration) -> Result<(), MaintenanceError> {
        let started = Instant::now();
        loop {
            let left = self.link.get().tasks_on_node(&self.turn.node_id).await?;
            if left == 0 {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(MaintenanceError::DrainTimeout {
                    node: self.turn.node.clone(),
                    left,
                    timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn upgrade(&self) -> Result<(), MaintenanceError> {
        self.say("upgrading");
        // An upgrade cut off before (a killed upgrade, a power cut) is
        // finished first: apt refuses to run until it is.
        let script = format!(
            "set -e\nexport DEBIAN_FRONTEND=noninteractive\nif [ -n \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ]; then dpkg --configure -a; fi\n{}\n",
            self.spec.maintenance.upgrade
        );
        let output = self.run("upgrade", &script).await?;
        if !output.success() {
            let tail: Vec<&str> = output.stderr.lines().rev().take(5).collect();
            return Err(MaintenanceError::Upgrade {
                node: self.turn.node.clone(),
                stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            });
        }
        Ok(())
    }

    async fn needs_reboot(&self) -> Result<bool, MaintenanceError> {
        Ok(match self.spec.maintenance.reboot {
            RebootPolicy::Always => true,
            RebootPolicy::Never => false,
            RebootPolicy::WhenRequired => self
                .run(
                    "look for a pending reboot",
                    "if [ -e /var/run/reboot-required ]; then echo yes; else echo no; fi\n",
                )
                .await?
                .stdout
                .trim()
                .eq("yes"),
        })
    }

    /// Tells the board to reboot (unless it already did: no marker) and
    /// waits until it answers over SSH without the marker.
    async fn reboot(&mut self, timeout: Duration) -> Result<(), MaintenanceError> {
        let pending = format!("if [ -e {REBOOT_MARKER} ]; then echo pending; fi\n");
        let still_up = self
            .run("look for the reboot marker", &pending)
            .await
            .map(|o| o.stdout.trim() == "pending");
        if matches!(still_up, Ok(true)) {
            self.say("rebooting");
            // Detached, so the command returns before the connection drops.
            let _ = self
                .run(
                    "reboot",
                    "nohup sh -c 'sleep 1; reboot' >/dev/null 2>&1 </dev/null &\n",
                )
                .await;
        }
        let started = Instant::now();
        tokio::time::sleep(POLL).await;
        loop {
            if let Ok(session) = Session::connect(&self.target, self.ssh).await {
                if let Ok(output) = session
                    .run_as_root("look for the reboot marker", &pending)
                    .await
                {
                    if output.success() && output.stdout.trim().is_empty() {
                        self.session = Some(Arc::new(session));
                        self.say("back after its reboot");
                        return Ok(());
                    }
                }
            }
            if started.elapsed() > timeout {
                return Err(MaintenanceError::Boot {
                    node: self.turn.node.clone(),
                    timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Docker started if it is not (a board without systemd, or one whose
    /// unit failed), then the node ready in the swarm.
    async fn come_back(&self, timeout: Duration) -> Result<(), MaintenanceError> {
        let output = self.run("gather facts", crate::node::facts::SCRIPT).await?;
        let facts = Facts::parse(&output.stdout);
        if !facts.docker_running() {
            self.say("starting Docker");
            let plan = crate::plan::boards::NodePlan {
                node: self.turn.node.clone(),
                steps: vec![crate::plan::boards::Step::StartDocker],
            };
            if let Some(session) = &self.session {
                crate::node::bootstrap::execute(&plan, self.spec, session, None, &mut |_, _| {})
                    .await?;
            }
        }
        let started = Instant::now();
        loop {
            match self.link.get().node_state(&self.turn.node_id).await {
                Ok(NodeState::Ready) => return Ok(()),
                Ok(_) => {}
                // The swarm was reached through this manager, which rebooted:
                // through it again, once its Docker answers.
                Err(_) if self.turn.role == reconciler_spec::Role::Manager => {
                    if let Some(session) = &self.session {
                        if let Err(error) = self.link.reconnect_via(session.clone()).await {
                            tracing::debug!(%error, "the swarm is not back yet");
                        }
                    }
                }
                Err(error) if started.elapsed() > timeout => return Err(error.into()),
                Err(_) => {}
            }
            if started.elapsed() > timeout {
                return Err(MaintenanceError::NotReady {
                    node: self.turn.node.clone(),
                    timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl crate::failure::Classify for MaintenanceError {
    fn class(&self) -> crate::failure::ErrorClass {
        use crate::failure::ErrorClass;
        match self {
            MaintenanceError::Swarm(e) => e.class(),
            MaintenanceError::Node(e) => e.class(),
            // Tasks may still leave; the lease may come back.
            MaintenanceError::DrainTimeout { .. } | MaintenanceError::LeaseLost { .. } => {
                ErrorClass::Retryable
            }
            MaintenanceError::Upgrade { .. }
            | MaintenanceError::Boot { .. }
            | MaintenanceError::NotReady { .. }
            | MaintenanceError::Refused(_) => ErrorClass::NeedsPerson,
            MaintenanceError::NoSession { .. } => ErrorClass::Bug,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            MaintenanceError::Swarm(e) => e.reason(),
            MaintenanceError::Node(e) => e.reason(),
            MaintenanceError::DrainTimeout { .. } => "maintenance_drain_timeout",
            MaintenanceError::LeaseLost { .. } => "lease_lost",
            MaintenanceError::Upgrade { .. } => "maintenance_upgrade_failed",
            MaintenanceError::Boot { .. } => "maintenance_no_boot",
            MaintenanceError::NotReady { .. } => "maintenance_node_not_ready",
            MaintenanceError::Refused(_) => "maintenance_refused",
            MaintenanceError::NoSession { .. } => "maintenance_no_session",
        }
    }
}
