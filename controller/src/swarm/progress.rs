//! How far a service is from running what was asked: tasks and update status.

use super::placement::{placed_task, PlacedTask, TaskCounts};
use serde::Serialize;

use super::{api, DockerCall, Swarm, SwarmError};
use crate::observed::UpdateState;

/// A service's tasks, counted.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceProgress {
    pub name: String,
    /// Tasks the scheduler wants running (for a global service: one per eligible node).
    pub desired: u64,
    pub running: u64,
    /// Where Docker's last rolling update stands, if one ran.
    pub update_state: Option<UpdateState>,
    pub update_message: Option<String>,
    /// When Docker's current update status began; tells a fresh status from one
    /// left over from an earlier update.
    pub update_started_at: Option<String>,
    /// The newest task error (e.g. "No such image", "no suitable node").
    pub last_error: Option<String>,
    /// How long the tasks must keep running before the service counts as
    /// converged: the service's update monitor period, 5 s when unset, as
    /// the docker CLI's progress monitor judges it ("Waiting 5 seconds to
    /// verify that tasks are stable"). A task that crashes at once is seen
    /// running for a moment; without this it read as converged.
    #[serde(skip)]
    pub monitor: std::time::Duration,
}

/// The docker CLI's monitor period when a service's update config sets none.
pub const DEFAULT_MONITOR: std::time::Duration = std::time::Duration::from_secs(5);

/// The monitor period of a service's update config (nanoseconds in the API).
fn monitor_of(service: &bollard::models::Service) -> std::time::Duration {
    service
        .spec
        .as_ref()
        .and_then(|s| s.update_config.as_ref())
        .and_then(|u| u.monitor)
        .filter(|ns| *ns > 0)
        .and_then(|ns| u64::try_from(ns).ok())
        .map_or(DEFAULT_MONITOR, std::time::Duration::from_nanos)
}

/// Where a service stands after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Convergence {
    Converged,
    InProgress,
    /// Swarm gave up: the update was rolled back or paused.
    Failed(String),
}

impl ServiceProgress {
    /// Judges progress. `stale_update` is the update start time seen before our
    /// write: an update status that old belongs to an earlier update and is ignored.
    pub fn convergence(&self, stale_update: Option<&str>) -> Convergence {
        let fresh = stale_update.is_none() || self.update_started_at.as_deref() != stale_update;
        match self.update_state.filter(|_| fresh) {
            Some(
                UpdateState::RollbackCompleted
                | UpdateState::RollbackPaused
                | UpdateState::RollbackStarted,
            ) => {
                return Convergence::Failed(format!(
                    "Swarm rolled the update back: {}",
                    self.update_message.as_deref().unwrap_or("no reason given")
                ))
            }
            Some(UpdateState::Paused) => {
                return Convergence::Failed(format!(
                    "Swarm paused the update: {}",
                    self.update_message.as_deref().unwrap_or("no reason given")
                ))
            }
            Some(UpdateState::Updating) => return Convergence::InProgress,
            Some(UpdateState::Completed) | None => {}
        }
        if self.running == self.desired {
            Convergence::Converged
        } else {
            Convergence::InProgress
        }
    }
}

/// How many tasks a global service wants: the nodes represented among its
/// up-to-date tasks, failed ones included, on nodes that are up (as the
/// docker CLI's progress monitor judges a global service). Counting only
/// tasks Swarm still wants running read a service whose every task failed
/// (a missing bind source on each board) as converged: between two restarts
/// no task is wanted, so 0 of 0 ran.
fn global_desired(
    up_to_date: &[PlacedTask],
    live_nodes: &std::collections::BTreeSet<String>,
) -> u64 {
    up_to_date
        .iter()
        .filter_map(|t| t.node_id.as_deref())
        .filter(|node| live_nodes.contains(*node))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64
}

/// The host-mode ports a service publishes, as (port, protocol).
fn host_ports(service: &bollard::models::Service) -> Vec<(i64, String)> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.endpoint_spec.as_ref())
        .and_then(|e| e.ports.as_ref())
        .into_iter()
        .flatten()
        .filter(|p| {
            p.publish_mode == Some(bollard::models::EndpointPortConfigPublishModeEnum::HOST)
        })
        .filter_map(|p| {
            let protocol = p
                .protocol
                .map_or_else(|| "tcp".to_string(), |p| p.to_string());
            Some((p.published_port?, protocol))
        })
        .collect()
}

impl Swarm {
    /// The other services that publish one of `name`'s host-mode ports, as
    /// "`holder` (8080/tcp)": who holds a port the scheduler says is in use.
    pub async fn host_port_holders(&self, name: &str) -> Result<Vec<String>, SwarmError> {
        let ours = self.inspect_service(name).await?;
        let wanted = host_ports(&ours);
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut holders = Vec::new();
        for service in self
            .list_services(crate::observed::ServiceScope::All)
            .await?
        {
            if service.id == ours.id {
                continue;
            }
            let holder = service
                .spec
                .as_ref()
                .and_then(|s| s.name.clone())
                .unwrap_or_default();
            for (port, protocol) in host_ports(&service) {
                if wanted.contains(&(port, protocol.clone())) {
                    holders.push(format!("`{holder}` ({port}/{protocol})"));
                }
            }
        }
        Ok(holders)
    }

    /// The IDs of nodes that are up and take tasks (ready, not drained).
    async fn live_nodes(&self) -> Result<std::collections::BTreeSet<String>, SwarmError> {
        let nodes = self
            .docker
            .list_nodes(None)
            .await
            .map_err(api(DockerCall::ListNodes))?;
        Ok(nodes
            .into_iter()
            .filter(|n| {
                n.status.as_ref().and_then(|s| s.state) == Some(bollard::models::NodeState::READY)
                    && n.spec.as_ref().and_then(|s| s.availability)
                        != Some(bollard::models::NodeSpecAvailabilityEnum::DRAIN)
            })
            .filter_map(|n| n.id)
            .collect())
    }

    /// Counts the tasks of a service (by name). `replicas` is the desired count
    /// for a replicated service, `None` for a global one.
    pub async fn service_progress(
        &self,
        name: &str,
        replicas: Option<u64>,
    ) -> Result<ServiceProgress, SwarmError> {
        let service = self.inspect_service(name).await?;
        // Only tasks of the service's current template, judged by the
        // manager itself (the `_up-to-date` filter the docker CLI's progress
        // monitor uses): right after an update Swarm may not have started
        // replacing tasks yet, and a task still running the old template
        // must not count as converged.
        let service_id = service.id.clone().unwrap_or_default();
        let current: Vec<PlacedTask> = self
            .tasks(&[("service", name), ("_up-to-date", "true")])
            .await?
            .into_iter()
            .filter_map(placed_task)
            .filter(|t| t.service_id == service_id)
            .collect();
        let counts = TaskCounts::of(&current);
        let desired = match replicas {
            Some(replicas) => replicas,
            None => {
                let live = self.live_nodes().await?;
                global_desired(&current, &live).max(counts.wanted)
            }
        };
        let update = service.update_status.clone();
        let monitor = monitor_of(&service);
        Ok(ServiceProgress {
            name: name.to_string(),
            desired,
            running: counts.running,
            update_state: super::convert::update_state(update.as_ref()),
            update_started_at: update.as_ref().and_then(|u| u.started_at.clone()),
            update_message: update.and_then(|u| u.message),
            last_error: counts.newest_error.map(str::to_string),
            monitor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::global_desired;
    use crate::observed::TaskState;
    use crate::swarm::placement::PlacedTask;

    /// Regression: a global service whose every task failed at once read as
    /// converged (0 of 0 wanted) and the apply reported success.
    #[test]
    fn regression_a_global_service_whose_tasks_all_failed_is_not_converged() {
        let failed = |node: &str| PlacedTask {
            service_id: "s".into(),
            node_id: Some(node.into()),
            slot: None,
            state: TaskState::Failed,
            desired_state: TaskState::Shutdown,
            error: Some("starting container failed".into()),
            since: String::new(),
        };
        let tasks = [failed("n1"), failed("n1"), failed("n2"), failed("gone")];
        let live = ["n1", "n2", "n3"].map(String::from).into_iter().collect();
        assert_eq!(global_desired(&tasks, &live), 2);
    }
}
