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
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{api, DockerCall, Swarm, SwarmError};

/// The most a services answer may hold: a thousand services take ~3 MiB.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

impl Swarm {
    /// Every service of the swarm.
    pub(super) async fn list_services(&self) -> Result<Vec<Service>, SwarmError> {
        let operation = DockerCall::ListServices;
        let body = self.get_json("/services", operation).await?;
        // Typed at once when bollard's types hold it (nearly always).
        if let Ok(services) = serde_json::from_slice::<Vec<Service>>(&body) {
            return Ok(services);
        }
        let Value::Array(services) = json(&body).map_err(api(operation))? else {
            return Err(api(operation)(not_json("a list of services")));
        };
        services
            .into_iter()
            .map(|service| typed(service).map_err(api(operation)))
            .collect()
    }

    /// One service, by name or id.
    pub(super) async fn inspect_service(&self, name_or_id: &str) -> Result<Service, SwarmError> {
        let operation = DockerCall::InspectService;
        let path = format!("/services/{}", path_segment(name_or_id));
        let body = self.get_json(&path, operation).await?;
        if let Ok(service) = serde_json::from_slice::<Service>(&body) {
            return Ok(service);
        }
        typed(json(&body).map_err(api(operation))?).map_err(api(operation))
    }

    /// A GET of the Engine API at the negotiated version: the JSON answer's
    /// bytes, bounded in size and in time like every other call.
    async fn get_json(&self, path: &str, operation: DockerCall) -> Result<Bytes, SwarmError> {
        let version = self.docker.client_version();
        let uri = format!(
            "/v{}.{}{path}",
            version.major_version, version.minor_version
        );
        let call = get(&self.socket, uri);
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(answer) => answer.map_err(api(operation)),
            Err(_) => Err(SwarmError::Timeout { operation }),
        }
    }
}

async fn get(socket: &str, uri: String) -> Result<Bytes, DockerError> {
    let stream = tokio::net::UnixStream::connect(socket).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get(uri)
        .header(hyper::header::HOST, "docker")
        .body(Empty::<Bytes>::new())?;
    let answer = async {
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| std::io::Error::other(format!("reading Docker's answer: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(DockerError::DockerResponseServerError {
                status_code: status.as_u16(),
                message: server_message(&body),
            });
        }
        Ok(body)
    };
    let answer = answer.await;
    driver.abort();
    answer
}

/// The answer as JSON, to put right what bollard's types cannot hold.
fn json(body: &[u8]) -> Result<Value, DockerError> {
    serde_json::from_slice::<Value>(body).map_err(|e| DockerError::JsonDataError {
        message: e.to_string(),
        column: e.column(),
    })
}

/// Docker's `{"message": ...}` of a failed call, or the body as text.
fn server_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
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

/// A name or id as one path segment: anything but the characters Docker's
/// names and ids are made of is percent-encoded.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(path_segment("web_app-1.x"), "web_app-1.x");
        assert_eq!(path_segment("a/../b c"), "a%2F..%2Fb%20c");
    }
}
