//! A counting proxy for the Docker socket.
//!
//! The controller is pointed at the proxy's socket (`--docker-host`); the proxy
//! forwards every byte to the real daemon and records each HTTP request line.
//! This proves from the outside what the controller did: how many write calls
//! (POST/PUT/DELETE) a reconcile made, or that it never connected at all.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;

#[derive(Debug, Default)]
struct Stats {
    connections: usize,
    /// "METHOD /path" of every request, in order, with when it was seen.
    requests: Vec<(Instant, String)>,
}

/// A unix socket that forwards to the Docker daemon and counts what passes.
#[derive(Debug)]
pub struct DockerProxy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    stats: Arc<Mutex<Stats>>,
    stop: Option<oneshot::Sender<()>>,
}

impl DockerProxy {
    /// Forwards to `upstream` (a socket path), or with `None` accepts
    /// connections, counts them and closes them (for "no call may happen").
    pub fn start(upstream: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("cannot make a temp dir");
        let path = dir.path().join("docker.sock");
        let stats = Arc::new(Mutex::new(Stats::default()));
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cannot build a tokio runtime");
        let listener = {
            let _guard = runtime.enter();
            UnixListener::bind(&path)
                .unwrap_or_else(|e| panic!("cannot bind {}: {e}", path.display()))
        };
        let upstream = upstream.map(PathBuf::from);
        let thread_stats = Arc::clone(&stats);
        std::thread::spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    _ = stopped => {}
                    _ = accept_loop(listener, upstream, thread_stats) => {}
                }
            });
        });
        Self {
            _dir: dir,
            path,
            stats,
            stop: Some(stop),
        }
    }

    /// The value for `--docker-host`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn connections(&self) -> usize {
        self.stats().connections
    }

    pub fn requests(&self) -> Vec<String> {
        self.stats()
            .requests
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// When the first write request after `since` was seen.
    pub fn first_write_after(&self, since: Instant) -> Option<Instant> {
        self.stats()
            .requests
            .iter()
            .find(|(at, r)| *at >= since && !r.starts_with("GET ") && !r.starts_with("HEAD "))
            .map(|(at, _)| *at)
    }

    /// Requests that change something: everything but GET and HEAD.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| !r.starts_with("GET ") && !r.starts_with("HEAD "))
            .collect()
    }

    pub fn reset(&self) {
        let mut stats = self.stats();
        stats.connections = 0;
        stats.requests.clear();
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn accept_loop(listener: UnixListener, upstream: Option<PathBuf>, stats: Arc<Mutex<Stats>>) {
    while let Ok((client, _)) = listener.accept().await {
        if let Ok(mut s) = stats.lock() {
            s.connections += 1;
        }
        let Some(upstream) = upstream.clone() else {
            drop(client);
            continue;
        };
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            if let Ok(server) = UnixStream::connect(&upstream).await {
                relay(client, server, stats).await;
            }
        });
    }
}

async fn relay(client: UnixStream, server: UnixStream, stats: Arc<Mutex<Stats>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async move {
        let mut parser = RequestParser::default();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for request in parser.feed(&buffer[..n]) {
                if let Ok(mut s) = stats.lock() {
                    s.requests.push((Instant::now(), request));
                }
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// Finds request lines in an HTTP/1.1 client stream, skipping bodies by Content-Length.
#[derive(Debug, Default)]
struct RequestParser {
    pending: Vec<u8>,
    body_left: usize,
}

impl RequestParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut found = Vec::new();
        loop {
            if self.body_left > 0 {
                let skip = self.body_left.min(self.pending.len());
                self.pending.drain(..skip);
                self.body_left -= skip;
                if self.body_left > 0 {
                    break;
                }
            }
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                break;
            };
            let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            self.pending.drain(..end + 4);
            let mut lines = head.lines();
            let request_line = lines.next().unwrap_or_default();
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default();
            let target = parts.next().unwrap_or_default();
            found.push(format!("{method} {target}"));
            self.body_left = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse().ok())
                .unwrap_or(0);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::RequestParser;

    #[test]
    fn finds_requests_across_bodies_and_chunks() {
        let mut parser = RequestParser::default();
        let stream = b"GET /v1.41/info HTTP/1.1\r\nHost: d\r\n\r\nPOST /v1.41/services/create HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"a\":\"\r\n\r\n\"}DELETE /v1.41/services/x HTTP/1.1\r\n\r\n";
        let mut found = Vec::new();
        for chunk in stream.chunks(7) {
            found.extend(parser.feed(chunk));
        }
        assert_eq!(
            found,
            [
                "GET /v1.41/info",
                "POST /v1.41/services/create",
                "DELETE /v1.41/services/x"
            ]
        );
    }
}

/// A Docker socket that accepts every connection and never answers: a hung
/// daemon. Connections stay open until the value is dropped.
#[derive(Debug)]
pub struct HungDocker {
    dir: tempfile::TempDir,
}

impl HungDocker {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("cannot make a temp dir");
        let path = dir.path().join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("cannot bind {}: {e}", path.display()));
        std::thread::spawn(move || {
            let mut open = Vec::new();
            // Ends with the test process; each connection is held, never read.
            for stream in listener.incoming().flatten() {
                open.push(stream);
            }
        });
        Self { dir }
    }

    /// The value for `--docker-host`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }
}
