//! Services read as Docker stores them, past bollard's generated types.
//!
//! Docker's API description lists fewer values than the daemon stores: a
//! rollback's `FailureAction` may be `rollback`, which `docker stack deploy`
//! sends (the daemon converts update and rollback configs with one function)
//! although the API lists only `pause` and `continue` for it. bollard's
//! typed answer refuses the whole list then, so one service outside the
//! cluster stopped every plan and reconcile ("unknown variant `rollback`").
//! Every read of services goes through here instead: the answer is read as
//! JSON, a value Docker treats exactly as one bollard knows is put in that
//! form, then typed.

use bollard::errors::Error as DockerError;
use bollard::models::Service;
use hyper::body::Bytes;
use serde_json::Value;

use super::raw::{self, escaped};
use super::{api, DockerCall, ServiceScope, Swarm, SwarmError};

impl Swarm {
    /// The swarm's services: all of them, or only those with a cluster's
    /// label (Docker filters them, so a swarm busy with other stacks costs
    /// the look nothing).
    pub(super) async fn list_services(
        &self,
        scope: ServiceScope,
    ) -> Result<Vec<Service>, SwarmError> {
        let body = self
            .get_json(&services_path(scope), DockerCall::ListServices)
            .await?;
        decode(&body).map_err(api(DockerCall::ListServices))
    }

    /// One service, by name or id.
    pub(super) async fn inspect_service(&self, name_or_id: &str) -> Result<Service, SwarmError> {
        let operation = DockerCall::InspectService;
        let path = format!("/services/{}", escaped(name_or_id));
        let body = self.get_json(&path, operation).await?;
        if let Ok(service) = serde_json::from_slice::<Service>(&body) {
            return Ok(service);
        }
        typed(json(&body).map_err(api(operation))?).map_err(api(operation))
    }

    /// A GET of the Engine API at the negotiated version: the JSON answer's
    /// bytes, bounded in size and in time like every other call.
    pub(super) async fn get_json(
        &self,
        path: &str,
        operation: DockerCall,
    ) -> Result<Bytes, SwarmError> {
        let version = self.docker.client_version();
        let uri = format!(
            "/v{}.{}{path}",
            version.major_version, version.minor_version
        );
        let call = raw::get(&self.socket, uri);
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(answer) => answer.map(|a| a.body).map_err(api(operation)),
            Err(_) => Err(SwarmError::Timeout { operation }),
        }
    }
}

/// `/services` with the filter of `scope`.
fn services_path(scope: ServiceScope) -> String {
    match scope {
        ServiceScope::All => "/services".to_string(),
        ServiceScope::Managed => {
            let filters = serde_json::json!({ "label": [crate::labels::CLUSTER] });
            format!("/services?filters={}", escaped(&filters.to_string()))
        }
    }
}

/// A services answer as bollard's types, once values Docker treats alike
/// are in the form bollard knows.
fn decode(body: &[u8]) -> Result<Vec<Service>, DockerError> {
    // Typed at once when bollard's types hold it (nearly always).
    if let Ok(services) = serde_json::from_slice::<Vec<Service>>(body) {
        return Ok(services);
    }
    let Value::Array(services) = json(body)? else {
        return Err(not_json("a list of services"));
    };
    services.into_iter().map(typed).collect()
}

/// The cluster-labelled services, asked for while the spec still loads (a
/// no-op `apply` spends most of its time waiting for this list and the
/// other half loading: at once, they cost the longer of the two). Used by
/// the first observation of the same socket (see [`Swarm::observe`]);
/// dropped, it stops.
#[derive(Debug)]
pub struct EarlyServices {
    socket: String,
    answer: tokio::task::JoinHandle<Result<Vec<Service>, DockerError>>,
}

impl EarlyServices {
    /// Starts the list on `host`'s socket (`None` for a host that is not
    /// one; the observation then asks as usual).
    pub fn start(host: &str, call_timeout: std::time::Duration) -> Option<Self> {
        let socket = super::socket_path(host).ok()?;
        let path = socket.clone();
        let answer = tokio::spawn(async move {
            let list = async {
                let (major, minor) = raw::api_version(&path).await?;
                let version = negotiated(major, minor);
                let uri = format!(
                    "/v{}.{}{}",
                    version.major_version,
                    version.minor_version,
                    services_path(ServiceScope::Managed)
                );
                let services = decode(&raw::get(&path, uri).await?.body)?;
                tracing::debug!(
                    services = services.len(),
                    "listed the managed services early"
                );
                Ok(services)
            };
            tokio::time::timeout(call_timeout, list)
                .await
                .map_err(|_| DockerError::RequestTimeoutError)?
        });
        Some(Self { socket, answer })
    }

    /// The list, when it was asked of `socket` and answered; `None` makes
    /// the caller ask itself (and meet the error, if there is one, there).
    pub(super) async fn take(mut self, socket: &str) -> Option<Vec<Service>> {
        if self.socket != socket {
            return None;
        }
        match (&mut self.answer).await {
            Ok(Ok(services)) => Some(services),
            Ok(Err(error)) => {
                tracing::debug!(%error, "the early services list failed; asking again");
                None
            }
            Err(_) => None,
        }
    }
}

impl Drop for EarlyServices {
    fn drop(&mut self) {
        self.answer.abort();
    }
}

/// The API version to speak to a daemon that speaks `major.minor`: its own,
/// or bollard's when the daemon is newer (as bollard negotiates).
pub(super) fn negotiated(major: usize, minor: usize) -> bollard::ClientVersion {
    let server = bollard::ClientVersion {
        major_version: major,
        minor_version: minor,
    };
    if server < *bollard::API_DEFAULT_VERSION {
        server
    } else {
        bollard::ClientVersion {
            major_version: bollard::API_DEFAULT_VERSION.major_version,
            minor_version: bollard::API_DEFAULT_VERSION.minor_version,
        }
    }
}

/// The answer as JSON, to put right what bollard's types cannot hold.
fn json(body: &[u8]) -> Result<Value, DockerError> {
    serde_json::from_slice::<Value>(body).map_err(|e| DockerError::JsonDataError {
        message: e.to_string(),
        column: e.column(),
    })
}

fn not_json(expected: &str) -> DockerError {
    DockerError::JsonDataError {
        message: format!("Docker's answer is not {expected}"),
        column: 0,
    }
}

/// A service's JSON as bollard's type, once values Docker treats alike are
/// in the form bollard knows.
fn typed(mut service: Value) -> Result<Service, DockerError> {
    for spec in ["Spec", "PreviousSpec"] {
        if let Some(rollback) = service.pointer_mut(&format!("/{spec}/RollbackConfig")) {
            rollback_that_pauses(rollback);
        }
    }
    serde_json::from_value(service).map_err(|e| DockerError::JsonDataError {
        message: e.to_string(),
        column: 0,
    })
}

/// A rollback's `FailureAction: rollback` is read as the `pause` swarmkit's
/// updater makes of it ("Never roll back a rollback": a failed rollback is
/// paused).
fn rollback_that_pauses(rollback: &mut Value) {
    if let Some(action) = rollback.get_mut("FailureAction") {
        if action.as_str() == Some("rollback") {
            *action = Value::String("pause".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollback_that_rolls_back_is_read_as_the_pause_docker_makes_of_it() {
        let service = serde_json::json!({
            "ID": "x",
            "Spec": {
                "Name": "outside",
                "RollbackConfig": { "Parallelism": 1, "FailureAction": "rollback" },
                "UpdateConfig": { "FailureAction": "rollback" }
            },
            "PreviousSpec": { "RollbackConfig": { "FailureAction": "rollback" } }
        });
        let service = typed(service).expect("typed");
        let spec = service.spec.expect("spec");
        assert_eq!(
            spec.rollback_config.and_then(|r| r.failure_action),
            Some(bollard::models::ServiceSpecRollbackConfigFailureActionEnum::PAUSE)
        );
        // An update's `rollback` is a value of its own, kept.
        assert_eq!(
            spec.update_config.and_then(|u| u.failure_action),
            Some(bollard::models::ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
        );
    }

    #[test]
    fn a_value_docker_never_stores_is_still_refused() {
        let service = serde_json::json!({
            "Spec": { "RollbackConfig": { "FailureAction": "explode" } }
        });
        assert!(typed(service).is_err());
    }
}
