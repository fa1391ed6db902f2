//! What `/api/status` shows: the controller's view of the cluster, for people
//! and scripts. Never holds secrets (env values, tokens, webhook secret).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use reconciler_spec::{Availability, Role};

use crate::observed::{NodeState, Owner, TaskState, UpdateState};
use crate::plan::Summary;
use crate::reconcile::ReconcileResult;
use crate::swarm::placement::{PlacedTask, Placement};

/// Who holds the one-writer lease, as this controller last saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Not read yet (no reconcile has reached the swarm).
    #[default]
    Unknown,
    /// Nobody: no controller has needed to write lately.
    Free,
    /// This controller.
    Held,
    /// Another controller, by its holder id.
    HeldBy(String),
}

impl std::fmt::Display for LeaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseStatus::Unknown => f.write_str("unknown"),
            LeaseStatus::Free => f.write_str("free"),
            LeaseStatus::Held => f.write_str("held"),
            LeaseStatus::HeldBy(holder) => write!(f, "held by {holder}"),
        }
    }
}

/// In JSON as in text: `"held"`, `"held by <holder>"`, `"free"`, `"unknown"`.
impl Serialize for LeaseStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// The source, credentials redacted.
    pub source: String,
    /// The revision whose spec is being reconciled (the last good one).
    pub revision: Option<String>,
    /// The newest revision fetched, which may have been refused.
    pub fetched_revision: Option<String>,
    pub spec_valid: bool,
    /// Why the newest revision was refused, with file:line:col of each problem.
    pub spec_error: Option<String>,
    /// `apply` or `observe`; absent until the first plan.
    pub mode: Option<reconciler_spec::ControllerMode>,
    pub suspended: bool,
    pub lease: LeaseStatus,
    /// This controller's name in the lease (`--holder`).
    pub holder: String,
    pub docker_reachable: bool,
    pub last_reconcile: Option<ReconcileStatus>,
    pub last_success_at: Option<u64>,
    /// The last failure, until a reconcile succeeds.
    pub last_error: Option<ErrorStatus>,
    /// Why the last fetch of the source failed, until a fetch succeeds: the
    /// last good revision is still reconciled meanwhile, so a successful
    /// reconcile must not hide that the source is out of reach.
    pub source_error: Option<ErrorStatus>,
    /// With `--ssh`: the boards the last reconcile could not reach or that
    /// failed a step, each with its reason (the others went on).
    pub board_problems: Vec<BoardProblem>,
    /// Changes the last plan wanted (the only output in observe mode), one
    /// line each.
    pub pending: Vec<String>,
    /// The same changes in full, exactly as `reconciler plan` prints them
    /// (`+` create, `~` update with `old -> new`, `-` destroy); `None` when
    /// nothing is pending.
    pub pending_plan: Option<String>,
    /// With `--ssh` and `[maintenance]`: what the rolling upgrade is doing
    /// or waiting for (`2 board(s) to upgrade in the window ...`).
    pub maintenance: Option<String>,
    /// The last reconciles, newest first (at most [`HISTORY`]).
    pub history: Vec<ReconcileStatus>,
    /// The swarm's nodes with the tasks placed on them.
    pub nodes: Vec<NodeStatus>,
    /// The services this cluster manages (and any the spec names).
    pub services: Vec<ServiceStatus>,
    /// Tasks the scheduler has not placed on any node (no node fits, or not yet).
    pub unplaced: Vec<TaskStatus>,
    /// When the nodes, services and tasks above were read from Docker
    /// (unix seconds): the page shows their age and marks them stale.
    pub picture_at: Option<u64>,
}

/// How many reconciles the status remembers.
pub const HISTORY: usize = 20;

impl Status {
    /// Records a finished reconcile as the last one and first in the history.
    pub fn record_reconcile(&mut self, reconcile: ReconcileStatus) {
        self.history.insert(0, reconcile.clone());
        self.history.truncate(HISTORY);
        self.last_reconcile = Some(reconcile);
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconcileStatus {
    pub result: ReconcileResult,
    /// What started it: startup, timer, webhook, file, docker-event, events-lost, upkeep.
    pub triggers: Vec<String>,
    pub started_at: u64,
    pub duration_ms: u64,
    pub plan: Summary,
    pub drift: usize,
    pub writes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// The swarm node ID.
    pub id: String,
    pub hostname: String,
    pub role: Role,
    /// The raft leader among the managers.
    pub leader: bool,
    pub availability: Availability,
    pub state: NodeState,
    /// As Docker reports it: `x86_64`, `aarch64`, `armv7l`.
    pub architecture: String,
    pub engine_version: String,
    /// User labels (the reconciler's own are left out).
    pub labels: BTreeMap<String, String>,
    /// What the board says about itself over SSH (only with `--ssh`).
    pub board: Option<BoardStatus>,
    /// The tasks the scheduler wants running here, by service and slot.
    pub tasks: Vec<TaskStatus>,
}

/// A board's own facts, as the last look over SSH found them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BoardStatus {
    /// The spec's name for the board.
    pub node: String,
    /// `/proc/device-tree/model`, e.g. `Raspberry Pi 4 Model B Rev 1.4`.
    pub model: Option<String>,
    pub os: String,
    /// `vcgencmd measure_temp` or the first thermal zone, e.g. `48.3'C`.
    pub temperature: Option<String>,
    /// `vcgencmd get_throttled`: `0x0` is healthy; other bits mean
    /// under-voltage or heat throttling now or since boot.
    pub throttled: Option<String>,
    /// The same in words (`under-voltage now`, ...); empty when healthy.
    pub throttling: Vec<&'static str>,
    /// What the facts measure (memory, disk, load, last boot, ...).
    pub health: crate::health::Measurements,
    /// What a person should act on, most severe first.
    pub conditions: Vec<crate::health::Condition>,
}

/// A board that could not be reached or failed a step.
#[derive(Debug, Clone, Serialize)]
pub struct BoardProblem {
    /// The spec's name of the board.
    pub node: String,
    pub error: ErrorStatus,
}

/// One task, as the page colours it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    pub service: String,
    /// The replica number; `None` for a global service's task.
    pub slot: Option<u64>,
    /// Docker's task state: `running`, `starting`, `pending`, `failed`, ...
    pub state: TaskState,
    pub health: TaskHealth,
    pub error: Option<String>,
}

/// A task's state in four colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskHealth {
    Running,
    /// On its way: new, pending, assigned, preparing, starting.
    Starting,
    /// Failed, rejected or orphaned.
    Failing,
    /// Complete, shut down or removed.
    Stopped,
}

impl TaskHealth {
    /// The colour of a task in `state`.
    pub fn of(state: TaskState) -> Self {
        use TaskState as S;
        match state {
            S::Running => TaskHealth::Running,
            S::Failed | S::Rejected | S::Orphaned => TaskHealth::Failing,
            S::Complete | S::Shutdown | S::Remove => TaskHealth::Stopped,
            S::New
            | S::Allocated
            | S::Pending
            | S::Assigned
            | S::Accepted
            | S::Preparing
            | S::Ready
            | S::Starting => TaskHealth::Starting,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskHealth::Running => "running",
            TaskHealth::Starting => "starting",
            TaskHealth::Failing => "failing",
            TaskHealth::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `None` for a global service.
    pub desired: Option<u64>,
    pub running: u64,
    /// Tasks Swarm wants running now: for a global service, one per
    /// eligible node (what `docker service ls` counts as its desired).
    pub wanted: u64,
    pub in_spec: bool,
    /// Where Docker's last rolling update stands, if one ran.
    pub update_state: Option<UpdateState>,
    /// The newest task error while the service is short of tasks.
    pub error: Option<String>,
    /// The image as written in the spec (without the digest Docker pinned).
    pub image: String,
    /// Published ports; the page links ingress ones on its own host (every
    /// node answers those), host-mode ones only where a task runs.
    pub ports: Vec<PublishedPort>,
    /// The stack or release it came from.
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedPort {
    pub published: u16,
    pub protocol: String,
    /// Published in host mode: only on the nodes running a task.
    pub host_mode: bool,
}

/// What the picture needs besides the swarm: which services the spec names,
/// and the boards' facts by swarm node ID.
#[derive(Debug, Clone, Default)]
pub struct PictureContext {
    /// The spec's cluster name: whose objects are "ours".
    pub cluster: String,
    pub spec_services: BTreeSet<String>,
    pub boards: BTreeMap<String, BoardStatus>,
}

impl Status {
    /// Draws the cluster from `placement`: every node with the tasks placed
    /// on it, and the services this cluster manages (or the spec names).
    pub fn set_picture(&mut self, placement: &Placement, context: &PictureContext) {
        self.picture_at = Some(crate::timestamp::unix_now());
        let shown: BTreeMap<&str, &str> = placement
            .services
            .iter()
            .filter(|(name, s)| {
                s.owner == Owner::ThisCluster || context.spec_services.contains(*name)
            })
            .map(|(name, s)| (s.id.as_str(), name.as_str()))
            .collect();
        let task_status = |task: &PlacedTask| {
            Some(TaskStatus {
                service: shown.get(task.service_id.as_str())?.to_string(),
                slot: task.slot,
                state: task.state,
                health: TaskHealth::of(task.state),
                error: task.error.clone(),
            })
        };
        let mut placed: BTreeMap<&str, Vec<TaskStatus>> = BTreeMap::new();
        let mut unplaced = Vec::new();
        for task in placement.tasks.iter().filter(|t| t.wanted()) {
            let Some(status) = task_status(task) else {
                continue;
            };
            match task.node_id.as_deref() {
                Some(node) => placed.entry(node).or_default().push(status),
                None => unplaced.push(status),
            }
        }
        let order =
            |a: &TaskStatus, b: &TaskStatus| (&a.service, a.slot).cmp(&(&b.service, b.slot));
        self.nodes = placement
            .nodes
            .iter()
            .map(|n| {
                let mut tasks = placed.remove(n.id.as_str()).unwrap_or_default();
                tasks.sort_by(order);
                NodeStatus {
                    id: n.id.clone(),
                    hostname: n.hostname.clone(),
                    role: n.role,
                    leader: n.leader,
                    availability: n.availability,
                    state: n.state,
                    architecture: n.architecture.clone(),
                    engine_version: n.engine_version.clone(),
                    labels: n
                        .labels
                        .iter()
                        .filter(|(k, _)| !crate::labels::is_reserved(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    board: context.boards.get(&n.id).cloned(),
                    tasks,
                }
            })
            .collect();
        // Tasks on a node Swarm no longer lists are as good as unplaced.
        unplaced.extend(placed.into_values().flatten());
        unplaced.sort_by(order);
        self.unplaced = unplaced;
        let counts = placement.counts();
        self.services = shown
            .values()
            .filter_map(|name| {
                let service = placement.services.get(*name)?;
                let count = counts.get(service.id.as_str()).copied().unwrap_or_default();
                // Short of tasks: fewer running than asked, or one wanted that does not run.
                let short = service.replicas.is_some_and(|n| count.running < n)
                    || count.running < count.wanted;
                Some(ServiceStatus {
                    name: name.to_string(),
                    desired: service.replicas,
                    running: count.running,
                    wanted: count.wanted,
                    in_spec: context.spec_services.contains(*name),
                    update_state: service.update_state,
                    error: short
                        .then_some(count.newest_error)
                        .flatten()
                        .map(str::to_string),
                    image: service.image.clone(),
                    ports: service
                        .ports
                        .iter()
                        .map(|(published, protocol, host_mode)| PublishedPort {
                            published: *published,
                            protocol: protocol.clone(),
                            host_mode: *host_mode,
                        })
                        .collect(),
                    group: service.group.clone(),
                })
            })
            .collect();
        self.services.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// A failure as people and scripts see it: the message, and what it needs.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorStatus {
    pub message: String,
    /// `retryable` (retried with backoff), `needs_person` (waits for a
    /// change), or `bug`.
    pub class: crate::failure::ErrorClass,
    /// A short fixed name, as in `reconciler_reconcile_errors_total`.
    pub reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::ObservedNode;
    use crate::swarm::placement::PlacedService;

    fn node(id: &str) -> ObservedNode {
        ObservedNode {
            id: id.into(),
            version: 1,
            hostname: format!("host-{id}"),
            address: String::new(),
            architecture: "aarch64".into(),
            engine_version: "28.2.2".into(),
            role: Role::Worker,
            availability: Availability::Active,
            labels: BTreeMap::new(),
            state: NodeState::Ready,
            manager_reachable: None,
            leader: false,
            updated_at: None,
        }
    }

    fn task(service: &str, node: Option<&str>, slot: u64, state: TaskState) -> PlacedTask {
        PlacedTask {
            service_id: service.into(),
            node_id: node.map(str::to_string),
            slot: Some(slot),
            state,
            desired_state: TaskState::Running,
            error: None,
            since: format!("2026-11-24T10:00:0{slot}Z"),
        }
    }

    #[test]
    fn tasks_are_placed_on_their_nodes_and_a_short_service_shows_its_newest_error() {
        let service = |id: &str, owner: Owner| PlacedService {
            id: id.into(),
            owner,
            replicas: Some(3),
            update_state: None,
            image: "app:1".into(),
            ports: vec![(8080, "tcp".into(), false)],
            group: Some("stack shop".into()),
        };
        let mut old_failure = task("w", Some("n1"), 1, TaskState::Failed);
        old_failure.desired_state = TaskState::Shutdown;
        old_failure.error = Some("older error".into());
        let mut rejected = task("w", None, 3, TaskState::Pending);
        rejected.error = Some("no suitable node".into());
        let placement = Placement {
            nodes: vec![node("n1"), node("n2")],
            services: BTreeMap::from([
                ("web".to_string(), service("w", Owner::ThisCluster)),
                ("theirs".to_string(), service("t", Owner::Unmanaged)),
            ]),
            tasks: vec![
                task("w", Some("n2"), 2, TaskState::Running),
                task("w", Some("n1"), 1, TaskState::Running),
                old_failure,
                rejected,
                task("t", Some("n1"), 1, TaskState::Running),
            ],
        };
        let mut status = Status::default();
        status.set_picture(&placement, &PictureContext::default());
        let names = |tasks: &[TaskStatus]| -> Vec<String> {
            tasks
                .iter()
                .map(|t| format!("{}.{} {}", t.service, t.slot.unwrap_or(0), t.state))
                .collect()
        };
        assert_eq!(names(&status.nodes[0].tasks), ["web.1 running"]);
        assert_eq!(names(&status.nodes[1].tasks), ["web.2 running"]);
        assert_eq!(names(&status.unplaced), ["web.3 pending"]);
        let [web] = status.services.as_slice() else {
            panic!(
                "only the cluster's own service is shown: {:?}",
                status.services
            );
        };
        assert_eq!((web.running, web.wanted, web.desired), (2, 3, Some(3)));
        assert_eq!(web.error.as_deref(), Some("no suitable node"));
    }
}
