//! A manager's Docker API over SSH: a local unix socket whose every connection
//! is carried to the board's Docker by `docker system dial-stdio` (what the
//! docker CLI's own `ssh://` hosts use) on an exec channel of the SSH session,
//! run as root (`sudo -n` for `pi`), so neither a Docker TCP port nor docker
//! group membership is ever needed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use super::{NodeError, Session};

/// A forwarded socket; closed and removed when dropped.
#[derive(Debug)]
pub struct Tunnel {
    dir: PathBuf,
    socket: PathBuf,
    task: JoinHandle<()>,
}

impl Tunnel {
    /// Opens a local socket whose connections reach the board's Docker.
    pub fn open(session: Arc<Session>) -> Result<Self, NodeError> {
        let node = session.target().node.clone();
        let io = |e: std::io::Error| NodeError::Ssh {
            node: node.clone(),
            reason: format!("cannot open the local end of the Docker tunnel: {e}"),
        };
        let unique = format!(
            "reconciler-tunnel-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let dir = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&dir).map_err(io)?;
        let socket = dir.join("docker.sock");
        let listener = UnixListener::bind(&socket).map_err(io)?;
        let dial = session.as_root("docker system dial-stdio");
        let task = tokio::spawn(async move {
            while let Ok((mut local, _)) = listener.accept().await {
                let session = Arc::clone(&session);
                let dial = dial.clone();
                tokio::spawn(async move {
                    match session.open_exec(&dial).await {
                        Ok(channel) => {
                            let mut stream = channel.into_stream();
                            let _ = tokio::io::copy_bidirectional(&mut local, &mut stream).await;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "Docker tunnel: cannot open a channel")
                        }
                    }
                });
            }
        });
        Ok(Self { dir, socket, task })
    }

    /// The value for `--docker-host`-style connections: `unix://...`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
