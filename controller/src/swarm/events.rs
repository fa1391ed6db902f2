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
}
