//! How far a service is from running what was asked: tasks and update status.

use bollard::models::{TaskSpec, TaskState};
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

/// Whether a task runs what the service's current template asks for, judged
/// on what the controller writes into a task (the daemon fills other
/// defaults into the service's template only, so whole specs never compare
/// equal). A change that does not touch tasks (replicas, service labels,
/// ports) keeps the running ones current.
fn same_work(task: Option<&TaskSpec>, template: Option<&TaskSpec>) -> bool {
    let (Some(task), Some(template)) = (task, template) else {
        return true;
    };
    let container = |spec: &TaskSpec| {
        spec.container_spec.as_ref().map(|c| {
            (
                c.image.clone(),
                c.command.clone().unwrap_or_default(),
                c.args.clone().unwrap_or_default(),
                c.env.clone().unwrap_or_default(),
                c.user.clone().unwrap_or_default(),
                c.dir.clone().unwrap_or_default(),
                c.labels.clone().unwrap_or_default(),
                c.mounts.clone().unwrap_or_default(),
            )
        })
    };
    let constraints = |spec: &TaskSpec| {
        spec.placement
            .as_ref()
            .and_then(|p| p.constraints.clone())
            .unwrap_or_default()
    };
    let networks = |spec: &TaskSpec| {
        spec.networks
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.target)
            .collect::<Vec<_>>()
    };
    container(task) == container(template)
        && task.resources == template.resources
        && constraints(task) == constraints(template)
        && networks(task) == networks(template)
}

/// How many tasks a global service wants: the nodes represented among its
/// tasks of the current template, failed ones included, on nodes that are up
/// (as the docker CLI judges a global service). Counting only tasks Swarm
/// still wants running read a service whose every task failed (a missing
/// bind source on each board) as converged: between two restarts no task
/// is wanted, so 0 of 0 ran.
fn global_desired(
    tasks: &[&bollard::models::Task],
    template: Option<&TaskSpec>,
    live_nodes: &std::collections::BTreeSet<String>,
) -> u64 {
    tasks
        .iter()
        .filter(|t| same_work(t.spec.as_ref(), template))
        .filter_map(|t| t.node_id.as_deref())
        .filter(|node| live_nodes.contains(*node))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64
}

impl Swarm {
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
        let service = self
            .docker
            .inspect_service(name, None)
            .await
            .map_err(api(DockerCall::InspectService))?;
        let tasks = self.tasks(&[("service", name)]).await?;
        let service_id = service.id.clone().unwrap_or_default();
        let current: Vec<_> = tasks
            .iter()
            .filter(|t| t.service_id.as_deref() == Some(service_id.as_str()))
            .collect();
        let wanted: Vec<_> = current
            .iter()
            .filter(|t| t.desired_state == Some(TaskState::RUNNING))
            .collect();
        // Right after an update Swarm may not have started replacing tasks
        // yet (its update status still old): a task still running the old
        // template must not count as converged.
        let template = service.spec.as_ref().and_then(|s| s.task_template.as_ref());
        let running = wanted
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
            .filter(|t| same_work(t.spec.as_ref(), template))
            .count() as u64;
        let desired = match replicas {
            Some(replicas) => replicas,
            None => {
                let live = self.live_nodes().await?;
                global_desired(&current, template, &live).max(wanted.len() as u64)
            }
        };
        let mut newest_error: Option<(String, String)> = None;
        for task in &current {
            let Some(status) = &task.status else { continue };
            let failed = matches!(status.state, Some(TaskState::FAILED | TaskState::REJECTED));
            let error = status.err.clone().filter(|e| !e.is_empty());
            if let Some(error) =
                error.or_else(|| failed.then(|| status.message.clone().unwrap_or_default()))
            {
                let when = status
                    .timestamp
                    .as_ref()
                    .map(|t| format!("{t:?}"))
                    .unwrap_or_default();
                if newest_error.as_ref().is_none_or(|(w, _)| when > *w) {
                    newest_error = Some((when, error));
                }
            }
        }
        let update = service.update_status.clone();
        Ok(ServiceProgress {
            name: name.to_string(),
            desired,
            running,
            update_state: super::convert::update_state(update.as_ref()),
            update_started_at: update.as_ref().and_then(|u| u.started_at.clone()),
            update_message: update.and_then(|u| u.message),
            last_error: newest_error.map(|(_, e)| e),
        })
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement};

    use super::{global_desired, same_work};

    fn spec(args: &[&str], grace: Option<i64>) -> TaskSpec {
        TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some("local/busybox:1".into()),
                args: Some(args.iter().map(|a| a.to_string()).collect()),
                stop_grace_period: grace,
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(vec!["node.role==manager".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Regression: a global service whose every task failed at once read as
    /// converged (0 of 0 wanted) and the apply reported success.
    #[test]
    fn regression_a_global_service_whose_tasks_all_failed_is_not_converged() {
        let template = spec(&["sleep", "3600"], None);
        let failed = |node: &str| bollard::models::Task {
            node_id: Some(node.into()),
            spec: Some(spec(&["sleep", "3600"], None)),
            desired_state: Some(bollard::models::TaskState::SHUTDOWN),
            ..Default::default()
        };
        let old = bollard::models::Task {
            node_id: Some("n3".into()),
            spec: Some(spec(&["old"], None)),
            ..Default::default()
        };
        let tasks = [
            failed("n1"),
            failed("n1"),
            failed("n2"),
            failed("gone"),
            old,
        ];
        let refs: Vec<&bollard::models::Task> = tasks.iter().collect();
        let live = ["n1", "n2", "n3"].map(String::from).into_iter().collect();
        assert_eq!(global_desired(&refs, Some(&template), &live), 2);
    }

    /// Regression: right after an update the old task still ran and Swarm had
    /// not yet marked the update as started, so the apply reported a service
    /// converged that then rolled back.
    #[test]
    fn a_task_of_the_old_template_is_not_current() {
        // The daemon fills defaults into the service's template, not the task's.
        let template = spec(&["sleep", "3600"], Some(10_000_000_000));
        assert!(same_work(
            Some(&spec(&["sleep", "3600"], None)),
            Some(&template)
        ));
        assert!(!same_work(
            Some(&spec(&["sh", "-c", "exit 3"], None)),
            Some(&template)
        ));
    }
}
