//! Docker's event stream, as "something changed, look again" signals.
//!
//! The stream is lossy (a small buffer on the daemon side), so events only
//! trigger a reconcile; the periodic resync is what guarantees convergence.

use std::collections::HashMap;

use bollard::query_parameters::EventsOptions;
use futures_util::{Stream, StreamExt};

use super::{api, DockerCall, Swarm, SwarmError};

/// One event: its object type, and when it happened by the daemon's clock
/// (unix seconds), where a broken stream resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: String,
    pub time: Option<i64>,
}

impl Swarm {
    /// Service and node events from now on, or replayed from `since` (unix
    /// seconds by the daemon's clock) when a stream is resumed, so what
    /// happened while it was down is not lost.
    pub fn events(
        &self,
        since: Option<i64>,
    ) -> impl Stream<Item = Result<Event, SwarmError>> + use<> {
        let filters = HashMap::from([(
            "type".to_string(),
            vec!["service".to_string(), "node".to_string()],
        )]);
        self.docker
            .events(Some(EventsOptions {
                filters: Some(filters),
                since: since.map(|s| s.to_string()),
                ..Default::default()
            }))
            .map(|event| {
                event
                    .map(|e| Event {
                        kind: e.typ.map(|t| t.to_string()).unwrap_or_default(),
                        time: e.time,
                    })
                    .map_err(api(DockerCall::Events))
            })
    }

    /// The daemon's clock (unix seconds): where an event stream that breaks
    /// before its first event resumes. Board clocks may be far off (a Pi
    /// has no battery clock), so never this process's clock.
    pub async fn daemon_time(&self) -> Result<Option<i64>, SwarmError> {
        let info = self.docker.info().await.map_err(api(DockerCall::Info))?;
        Ok(info
            .system_time
            .as_deref()
            .and_then(crate::timestamp::parse_rfc3339)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok()))
    }

    /// Running tasks per service name, for status and the replicas metrics.
    pub async fn running_tasks(&self) -> Result<HashMap<String, u64>, SwarmError> {
        let tasks = self.tasks(&[("desired-state", "running")]).await?;
        let services = self
            .docker
            .list_services(None)
            .await
            .map_err(api(DockerCall::ListServices))?;
        let names: HashMap<String, String> = services
            .into_iter()
            .filter_map(|s| Some((s.id?, s.spec?.name?)))
            .collect();
        let mut running = HashMap::new();
        for task in tasks {
            let is_running = task.status.as_ref().and_then(|s| s.state)
                == Some(bollard::models::TaskState::RUNNING);
            if let Some(name) = task.service_id.as_ref().and_then(|id| names.get(id)) {
                *running.entry(name.clone()).or_insert(0) += u64::from(is_running);
            }
        }
        Ok(running)
    }
}
