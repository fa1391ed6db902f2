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
    /// Removed with the tunnel.
    _dir: tempfile::TempDir,
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
        let dir = private_folder().map_err(io)?;
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).map_err(io)?;
        let dial = session.as_root("docker system dial-stdio");
        let task = tokio::spawn(async move {
            while let Ok((mut local, _)) = listener.accept().await {
                let session = Arc::clone(&session);
                let dial = dial.clone();
                tokio::spawn(async move {
                    match open_channel(&session, &dial).await {
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
        Ok(Self {
            _dir: dir,
            socket,
            task,
        })
    }

    /// The value for `--docker-host`-style connections: `unix://...`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

/// Waits between tries to open a channel: sshd refuses one past its
/// `MaxSessions` (10 by default), and clients that just closed theirs free
/// them within moments.
const CHANNEL_RETRIES: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(100),
    std::time::Duration::from_millis(300),
    std::time::Duration::from_millis(900),
];

/// An exec channel running `dial`, tried again a few times before the
/// connection is given up.
async fn open_channel(
    session: &Session,
    dial: &str,
) -> Result<russh::Channel<russh::client::Msg>, NodeError> {
    let mut waits = CHANNEL_RETRIES.iter();
    loop {
        match session.open_exec(dial).await {
            Ok(channel) => return Ok(channel),
            Err(error) => match waits.next() {
                Some(wait) => {
                    tracing::debug!(%error, "Docker tunnel: no channel yet; trying again");
                    tokio::time::sleep(*wait).await;
                }
                None => return Err(error),
            },
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A new folder for the socket that only this user can enter, under a
/// name nobody can guess: whoever reaches the socket commands the swarm as
/// root. (A name made of the process id and the clock could be made first
/// by another local user, and the folder was made with the umask's mode.)
fn private_folder() -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt as _;
    tempfile::Builder::new()
        .prefix("reconciler-tunnel-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
}

#[cfg(test)]
mod tests {
    /// Regression (issue 22): the tunnel's folder had a predictable name
    /// and the umask's mode.
    #[test]
    fn regression_the_tunnel_folder_is_private_and_unpredictable() {
        use std::os::unix::fs::PermissionsExt as _;
        let first = super::private_folder().expect("folder");
        let second = super::private_folder().expect("folder");
        assert_ne!(first.path(), second.path());
        let mode = std::fs::metadata(first.path())
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        let path = first.path().to_path_buf();
        drop(first);
        assert!(!path.exists(), "the folder outlived the tunnel");
    }
}
