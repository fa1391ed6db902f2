//! GETs of the Engine API over the manager's socket, past bollard: the
//! answer's bytes (bounded), read by [`super::services`] where bollard's
//! types cannot hold what Docker stores, and the daemon's API version from
//! `/_ping`, as the docker CLI negotiates it.

use bollard::errors::Error as DockerError;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The most an answer may hold: a thousand services take ~3 MiB.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// An answer: its headers (for `/_ping`'s `Api-Version`) and body.
pub(super) struct Answer {
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// `GET uri` on the socket; a status other than 2xx is Docker's error.
pub(super) async fn get(socket: &str, uri: String) -> Result<Answer, DockerError> {
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
        let headers = response.headers().clone();
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
        Ok(Answer { headers, body })
    };
    let answer = answer.await;
    driver.abort();
    answer
}

/// The API version the daemon speaks, from `/_ping`'s `Api-Version` header
/// (what the docker CLI negotiates with; `/version` takes ten times longer).
pub(super) async fn api_version(socket: &str) -> Result<(usize, usize), DockerError> {
    let answer = get(socket, "/_ping".into()).await?;
    answer
        .headers
        .get("api-version")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_version)
        .ok_or(DockerError::APIVersionParseError {})
}

/// `1.41` as (1, 41).
fn parse_version(text: &str) -> Option<(usize, usize)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Docker's `{"message": ...}` of a failed call, or the body as text.
fn server_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

/// Text as one URL path segment or query value: anything but the characters
/// Docker's names and ids are made of is percent-encoded.
pub(super) fn escaped(text: &str) -> String {
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
    fn names_are_one_path_segment() {
        assert_eq!(escaped("web_app-1.x"), "web_app-1.x");
        assert_eq!(escaped("a/../b c"), "a%2F..%2Fb%20c");
    }

    #[test]
    fn api_versions_are_read_as_the_cli_reads_them() {
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert_eq!(parse_version(" 1.47\r"), Some((1, 47)));
        assert_eq!(parse_version("1"), None);
        assert_eq!(parse_version("one.two"), None);
    }
}
