//! Docker's event stream, as "something changed, look again" signals.
//!
//! The stream is lossy (a small buffer on the daemon side), so events only
//! trigger a reconcile; the periodic resync is what guarantees convergence.

use std::collections::HashMap;

use bollard::query_parameters::EventsOptions;
use futures_util::{Stream, StreamExt};

use super::{api, DockerCall, Swarm, SwarmError};

impl Swarm {
    /// Service and node events; each item is the event's object type.
    pub fn events(&self) -> impl Stream<Item = Result<String, SwarmError>> + use<> {
        let filters = HashMap::from([(
            "type".to_string(),
            vec!["service".to_string(), "node".to_string()],
        )]);
        self.docker
            .events(Some(EventsOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .map(|event| {
                event
                    .map(|e| e.typ.map(|t| t.to_string()).unwrap_or_default())
                    .map_err(api(DockerCall::Events))
            })
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
