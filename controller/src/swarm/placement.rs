//! Which task runs on which node: the picture the status page draws, read
//! in three list calls (nodes, services, tasks) and no writes. Cheap enough
//! to take every few seconds while someone looks at the page.

use std::collections::{BTreeMap, HashMap};

use bollard::models::ServiceSpecMode;

use super::convert::owner_of;
use super::observe::observed_node;
use super::{api, DockerCall, Swarm, SwarmError};
use crate::observed::{ObservedNode, Owner, TaskState, Unconverged, UpdateState};

/// Nodes, services and tasks at one moment.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub nodes: Vec<ObservedNode>,
    /// By service name.
    pub services: BTreeMap<String, PlacedService>,
    /// Every task Swarm still keeps, of every service (history included).
    pub tasks: Vec<PlacedTask>,
}

/// A service as the picture needs it: not its whole spec.
#[derive(Debug, Clone)]
pub struct PlacedService {
    pub id: String,
    pub owner: Owner,
    /// `None` for a global service.
    pub replicas: Option<u64>,
    /// Where Docker's last rolling update stands, if one ran.
    pub update_state: Option<UpdateState>,
    /// The image as written (a digest Docker pinned is left out).
    pub image: String,
    /// Published ports: `(published, protocol, host mode)`.
    pub ports: Vec<(u16, String, bool)>,
    /// The stack or release it came from (`release web`, `stack monitoring`).
    pub group: Option<String>,
}

/// One task: where it is, what it does, what it should do.
#[derive(Debug, Clone)]
pub struct PlacedTask {
    pub service_id: String,
    /// `None` until the scheduler assigns it (or when no node fits).
    pub node_id: Option<String>,
    /// The replica number; `None` for a global service's tasks.
    pub slot: Option<u64>,
    pub state: TaskState,
    /// What Swarm wants of it (`running`, or `shutdown` once replaced).
    pub desired_state: TaskState,
    /// Docker's error for a failed or rejected task ("No such image", "no suitable node").
    pub error: Option<String>,
    /// When the state was last set (Docker's RFC 3339 text; sorts by time).
    pub since: String,
}

impl PlacedTask {
    /// A task the scheduler wants running: the ones the picture places.
    pub fn wanted(&self) -> bool {
        self.desired_state == TaskState::Running
    }

    pub fn running(&self) -> bool {
        self.state == TaskState::Running
    }
}

/// One service's tasks, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts<'a> {
    /// Tasks the scheduler wants running.
    pub wanted: u64,
    /// Of those, the ones running.
    pub running: u64,
    /// The newest task error of the service (history included).
    pub newest_error: Option<&'a str>,
    newest_error_at: &'a str,
}

impl<'a> TaskCounts<'a> {
    /// The one rule for "running" and "newest error", used by the page and
    /// by `apply`'s wait alike: a task counts when Swarm wants it running,
    /// and runs when its state is `running`; the newest error is the latest
    /// of any task's.
    pub fn add(&mut self, task: &'a PlacedTask) {
        if task.wanted() {
            self.wanted += 1;
            self.running += u64::from(task.running());
        }
        if let Some(error) = task.error.as_deref() {
            if self.newest_error.is_none() || task.since.as_str() > self.newest_error_at {
                self.newest_error = Some(error);
                self.newest_error_at = task.since.as_str();
            }
        }
    }

    /// `tasks` counted by [`TaskCounts::add`].
    pub fn of(tasks: impl IntoIterator<Item = &'a PlacedTask>) -> Self {
        let mut counts = TaskCounts::default();
        for task in tasks {
            counts.add(task);
        }
        counts
    }
}

impl Placement {
    /// Of this cluster's running services named in `wanted` (name, and the
    /// replicas it should run, `None` for a global one), those that run
    /// fewer tasks than they should, by the same rule the page and
    /// `apply`'s wait count with ([`TaskCounts`]).
    pub fn unconverged<'n>(
        &self,
        wanted: impl IntoIterator<Item = (&'n str, Option<u64>)>,
    ) -> Vec<Unconverged> {
        let counts = self.counts();
        wanted
            .into_iter()
            .filter_map(|(name, replicas)| {
                let service = self.services.get(name)?;
                if service.owner != Owner::ThisCluster {
                    return None;
                }
                let count = counts.get(service.id.as_str()).copied().unwrap_or_default();
                let desired = replicas.unwrap_or(count.wanted);
                (count.running < desired).then(|| Unconverged {
                    service: name.to_string(),
                    running: count.running,
                    desired,
                    error: count.newest_error.map(str::to_string),
                })
            })
            .collect()
    }

    /// Every service's tasks counted, by service ID, in one pass over the
    /// tasks (the picture is drawn every 2 s while someone looks).
    pub fn counts(&self) -> HashMap<&str, TaskCounts<'_>> {
        let mut counts: HashMap<&str, TaskCounts<'_>> = HashMap::new();
        for task in &self.tasks {
            counts
                .entry(task.service_id.as_str())
                .or_default()
                .add(task);
        }
        counts
    }
}

/// A task in our terms; `None` for one without a service. Its error is
/// Docker's (`No such image`, `no suitable node`), or for a failed or
/// rejected task without one, its status message (`task: non-zero exit (3)`).
pub(super) fn placed_task(task: bollard::models::Task) -> Option<PlacedTask> {
    let status = task.status.unwrap_or_default();
    let state = super::convert::task_state(status.state);
    let failed = matches!(state, TaskState::Failed | TaskState::Rejected);
    let error = status
        .err
        .filter(|e| !e.is_empty())
        .or_else(|| status.message.filter(|m| failed && !m.is_empty()));
    Some(PlacedTask {
        service_id: task.service_id?,
        node_id: task.node_id.filter(|id| !id.is_empty()),
        slot: task.slot.and_then(|s| u64::try_from(s).ok()),
        state,
        desired_state: super::convert::task_state(task.desired_state),
        error,
        since: status
            .timestamp
            .as_ref()
            .map(|t| format!("{t:?}"))
            .unwrap_or_default(),
    })
}

impl Swarm {
    /// Reads nodes, services and tasks; ownership is judged by this client's cluster.
    pub async fn placement(&self) -> Result<Placement, SwarmError> {
        let nodes = self
            .docker
            .list_nodes(None)
            .await
            .map_err(api(DockerCall::ListNodes))?;
        let services = self
            .list_services(crate::observed::ServiceScope::All)
            .await?;
        let tasks = self.tasks(&[]).await?;
        let services = services
            .into_iter()
            .filter_map(|service| {
                let spec = service.spec?;
                let replicas = match spec.mode {
                    Some(ServiceSpecMode {
                        global: Some(_), ..
                    }) => None,
                    Some(ServiceSpecMode {
                        replicated: Some(r),
                        ..
                    }) => Some(r.replicas.map_or(1, |n| u64::try_from(n).unwrap_or(0))),
                    _ => Some(1),
                };
                let labels = spec.labels.clone().unwrap_or_default();
                let image = spec
                    .task_template
                    .as_ref()
                    .and_then(|t| t.container_spec.as_ref())
                    .and_then(|c| c.image.as_deref())
                    .map(|image| image.split_once('@').map_or(image, |(name, _)| name))
                    .unwrap_or_default()
                    .to_string();
                let ports = spec
                    .endpoint_spec
                    .as_ref()
                    .and_then(|e| e.ports.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let published = u16::try_from(p.published_port?).ok()?;
                        let protocol = p
                            .protocol
                            .map_or_else(|| "tcp".to_string(), |p| p.to_string());
                        let host = p.publish_mode
                            == Some(bollard::models::EndpointPortConfigPublishModeEnum::HOST);
                        Some((published, protocol, host))
                    })
                    .collect();
                let group = crate::labels::group_of(&labels).map(|g| match g {
                    reconciler_spec::Group::Release(name) => format!("release {name}"),
                    reconciler_spec::Group::Stack(name) => format!("stack {name}"),
                });
                let placed = PlacedService {
                    id: service.id?,
                    owner: owner_of(&labels, self.cluster()),
                    replicas,
                    update_state: super::convert::update_state(service.update_status.as_ref()),
                    image,
                    ports,
                    group,
                };
                Some((spec.name?, placed))
            })
            .collect();
        let tasks = tasks.into_iter().filter_map(placed_task).collect();
        Ok(Placement {
            nodes: nodes.iter().map(observed_node).collect(),
            services,
            tasks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker_task(state: bollard::models::TaskState, err: &str, message: &str) -> PlacedTask {
        let task = bollard::models::Task {
            service_id: Some("svc".into()),
            desired_state: Some(bollard::models::TaskState::RUNNING),
            status: Some(bollard::models::TaskStatus {
                state: Some(state),
                err: Some(err.into()),
                message: Some(message.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        placed_task(task).unwrap()
    }

    /// The page and `apply` used two rules: `apply` took a failed task's
    /// status message as its error, the page only Docker's `err`, so the
    /// page showed no reason where `apply` did. One rule now.
    #[test]
    fn regression_a_failed_task_without_err_shows_its_message_everywhere() {
        use bollard::models::TaskState as Docker;
        let exited = docker_task(Docker::FAILED, "", "task: non-zero exit (3)");
        assert_eq!(exited.error.as_deref(), Some("task: non-zero exit (3)"));
        let rejected = docker_task(Docker::REJECTED, "No such image: x", "preparing");
        assert_eq!(rejected.error.as_deref(), Some("No such image: x"));
        // A running task's message ("started") is no error.
        let running = docker_task(Docker::RUNNING, "", "started");
        assert_eq!(running.error, None);
        let counts = TaskCounts::of([&exited, &running]);
        assert_eq!((counts.wanted, counts.running), (2, 1));
        assert_eq!(counts.newest_error, Some("task: non-zero exit (3)"));
    }
}
