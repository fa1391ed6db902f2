//! The SSH executor, on russh.
//!
//! Host keys are never trusted silently: a key must match the one pinned in
//! the spec (`host_key`) or an entry of the configured known_hosts file; an
//! unknown key is refused unless the caller explicitly allows recording
//! first-seen keys. Scripts go to `sh -s` on stdin, so nothing is quoted into
//! a command line, and the exit status is read until the channel closes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};
use russh::ChannelMsg;

use super::NodeError;

/// Where and as whom to connect, and which host key to expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node's name in the spec, used in every message.
    pub node: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key file (OpenSSH format).
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    /// A public key pinned in the spec (`ssh-ed25519 AAAA...`), checked instead of known_hosts.
    pub pinned_key: Option<String>,
}

impl Target {
    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Timeouts and host-key policy.
#[derive(Debug, Clone, Copy)]
pub struct SshOptions {
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub keepalive: Duration,
    /// Record the key of a host not yet in known_hosts (never a changed one).
    pub accept_new_host_keys: bool,
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(600),
            keepalive: Duration::from_secs(15),
            accept_new_host_keys: false,
        }
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub status: u32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// Why the host key check refused, kept so the error can say exactly what happened.
#[derive(Debug, Clone)]
enum KeyProblem {
    Unknown {
        fingerprint: String,
    },
    Changed {
        fingerprint: String,
        recorded: String,
    },
    BadPin(String),
    Io(String),
}

struct Verifier {
    target: Target,
    accept_new: bool,
    problem: Arc<Mutex<Option<KeyProblem>>>,
}

impl Verifier {
    fn record(&self, problem: KeyProblem) -> bool {
        if let Ok(mut slot) = self.problem.lock() {
            *slot = Some(problem);
        }
        false
    }

    /// The first key recorded for the host in known_hosts, of any algorithm.
    fn recorded_key(host: &str, port: u16, path: &std::path::Path) -> Option<(usize, PublicKey)> {
        russh::keys::known_hosts::known_host_keys_path(host, port, path)
            .ok()
            .and_then(|keys| keys.into_iter().next())
    }

    fn verify(&self, key: &PublicKey) -> bool {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if let Some(pinned) = &self.target.pinned_key {
            let encoded = pinned.split_whitespace().nth(1).unwrap_or(pinned);
            return match russh::keys::parse_public_key_base64(encoded) {
                Ok(expected) if expected == *key => true,
                Ok(_) => self.record(KeyProblem::Changed {
                    fingerprint,
                    recorded: "the key pinned in the spec".into(),
                }),
                Err(error) => self.record(KeyProblem::BadPin(error.to_string())),
            };
        }
        // A missing known_hosts file reads as "no key known" (russh), and
        // recording a first-seen key creates the file and its folder.
        let path = &self.target.known_hosts;
        let host = &self.target.host;
        let port = self.target.port;
        let verdict = russh::keys::check_known_hosts_path(host, port, key, path);
        // russh compares only keys of the same algorithm: a host known by
        // another kind of key is a changed key, never a first-seen one.
        if let (Ok(false), Some((line, recorded))) =
            (&verdict, Self::recorded_key(host, port, path))
        {
            return self.record(KeyProblem::Changed {
                fingerprint,
                recorded: format!(
                    "known_hosts line {line} of {} (a {} key)",
                    path.display(),
                    recorded.algorithm()
                ),
            });
        }
        match verdict {
            Ok(true) => true,
            Ok(false) if self.accept_new => {
                match russh::keys::known_hosts::learn_known_hosts_path(host, port, key, path) {
                    Ok(()) => {
                        tracing::warn!(node = %self.target.node, %fingerprint, path = %path.display(), "recorded a first-seen host key (--accept-new-host-keys)");
                        true
                    }
                    Err(error) => self.record(KeyProblem::Io(error.to_string())),
                }
            }
            Ok(false) => self.record(KeyProblem::Unknown { fingerprint }),
            Err(russh::keys::Error::KeyChanged { line }) => self.record(KeyProblem::Changed {
                fingerprint,
                recorded: format!("known_hosts line {line} of {}", path.display()),
            }),
            Err(error) => self.record(KeyProblem::Io(error.to_string())),
        }
    }
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => self.verify(key),
            russh::keys::PublicKeyOrCertificate::Certificate(_) => self.record(KeyProblem::Io(
                "host certificates are not supported; pin the host key instead".into(),
            )),
        })
    }
}

/// Why a connection was refused: the host key check's finding when it made
/// one, else the board did not answer properly.
fn refused(
    target: &Target,
    address: String,
    recorded: Option<KeyProblem>,
    error: &russh::Error,
) -> NodeError {
    let node = target.node.clone();
    match recorded {
        Some(KeyProblem::Unknown { fingerprint }) => NodeError::UnknownHostKey {
            node,
            address,
            fingerprint,
            known_hosts: target.known_hosts.display().to_string(),
        },
        Some(KeyProblem::Changed {
            fingerprint,
            recorded,
        }) => NodeError::HostKeyChanged {
            node,
            address,
            fingerprint,
            recorded,
        },
        Some(KeyProblem::BadPin(reason)) => NodeError::BadPinnedKey { node, reason },
        Some(KeyProblem::Io(reason)) => NodeError::Ssh { node, reason },
        None => NodeError::Unreachable {
            node,
            address,
            reason: match error {
                russh::Error::IO(io) => super::NoContact::from_io(io),
                russh::Error::Disconnect | russh::Error::HUP => super::NoContact::Dropped,
                other => super::NoContact::Other(other.to_string()),
            },
        },
    }
}

/// A TCP connection to the board's SSH port, trying each address the name
/// resolves to; the error says why none took it.
async fn tcp_connect(host: &str, port: u16) -> Result<tokio::net::TcpStream, super::NoContact> {
    let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| super::NoContact::UnknownName(e.to_string()))?
        .collect();
    let mut last = super::NoContact::UnknownName("no address".into());
    for address in addresses {
        match tokio::net::TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = super::NoContact::from_io(&error),
        }
    }
    Err(last)
}

/// Why a key file could not be read, shortly: a missing file is the
/// common case on a first run.
fn key_error(error: &russh::keys::Error) -> String {
    match error {
        russh::keys::Error::IO(io) if io.kind() == std::io::ErrorKind::NotFound => {
            "there is no such file".into()
        }
        other => other.to_string(),
    }
}

/// An authenticated SSH connection to one board.
pub struct Session {
    target: Target,
    handle: Handle<Verifier>,
    options: SshOptions,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects, verifies the host key, and authenticates with the identity file.
    pub async fn connect(target: &Target, options: SshOptions) -> Result<Self, NodeError> {
        // The identity file when it exists; otherwise the ssh-agent at
        // SSH_AUTH_SOCK (empty counts as unset, as in OpenSSH).
        let agent = std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty());
        let key = if target.identity.exists() || !agent {
            Some(
                russh::keys::load_secret_key(&target.identity, None).map_err(|e| {
                    NodeError::Identity {
                        node: target.node.clone(),
                        path: target.identity.display().to_string(),
                        user: target.user.clone(),
                        reason: key_error(&e),
                    }
                })?,
            )
        } else {
            None
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(options.keepalive * 4),
            keepalive_interval: Some(options.keepalive),
            keepalive_max: 3,
            ..client::Config::default()
        });
        let problem = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            target: target.clone(),
            accept_new: options.accept_new_host_keys,
            problem: Arc::clone(&problem),
        };
        let address = target.address();
        let unreachable = |reason| NodeError::Unreachable {
            node: target.node.clone(),
            address: address.clone(),
            reason,
        };
        let no_answer = || {
            unreachable(super::NoContact::NoAnswer {
                seconds: options.connect_timeout.as_secs(),
            })
        };
        let deadline = tokio::time::Instant::now() + options.connect_timeout;
        // The TCP connection first, on its own: its error says whether the
        // name, the route, the port or the board is wrong.
        let stream = tokio::time::timeout_at(deadline, tcp_connect(&target.host, target.port))
            .await
            .map_err(|_| no_answer())?
            .map_err(unreachable)?;
        let _ = stream.set_nodelay(true);
        let connecting = client::connect_stream(config, stream, verifier);
        let mut handle = match tokio::time::timeout_at(deadline, connecting).await {
            Err(_) => return Err(no_answer()),
            Ok(Ok(handle)) => handle,
            Ok(Err(error)) => {
                let recorded = problem.lock().ok().and_then(|p| p.clone());
                return Err(refused(target, address.clone(), recorded, &error));
            }
        };
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        let login_key = match key {
            Some(_) => super::LoginKey::File(target.identity.display().to_string()),
            None => super::LoginKey::Agent,
        };
        let success = match key {
            Some(key) => handle
                .authenticate_publickey(
                    &target.user,
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(|e| NodeError::Ssh {
                    node: target.node.clone(),
                    reason: e.to_string(),
                })?
                .success(),
            None => authenticate_with_agent(&mut handle, target, hash).await?,
        };
        if !success {
            return Err(NodeError::AuthRejected {
                node: target.node.clone(),
                address,
                user: target.user.clone(),
                key: login_key,
            });
        }
        Ok(Self {
            target: target.clone(),
            handle,
            options,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether the connection still answers: a keepalive request and its
    /// reply, which sshd handles itself (no process starts on the board),
    /// within the connect timeout.
    pub async fn answers(&self) -> bool {
        if self.handle.is_closed() {
            return false;
        }
        let replied = tokio::time::timeout(self.options.connect_timeout, self.handle.send_ping())
            .await
            .is_ok_and(|sent| sent.is_ok());
        // russh also ends the wait when the connection drops: then it is closed.
        replied && !self.handle.is_closed()
    }

    /// Runs `script` with `sh -s` (the script on stdin) and waits for its exit
    /// status, at most the command timeout. `what` names it in errors.
    pub async fn run(&self, what: &str, script: &str) -> Result<Output, NodeError> {
        self.run_command(what, "sh -s", script.as_bytes()).await
    }

    /// Runs `script` as root: as it is for `root`, else through `sudo -n`
    /// (Raspberry Pi OS logs in as `pi` with passwordless sudo). A sudo that
    /// asks for a password, or no sudo at all, is an error naming the board.
    pub async fn run_as_root(&self, what: &str, script: &str) -> Result<Output, NodeError> {
        if self.target.user == "root" {
            return self.run(what, script).await;
        }
        let output = self
            .run_command(what, "sudo -n sh -s", script.as_bytes())
            .await?;
        self.sudo_refused(output)
    }

    /// A failed command that sudo would not run without a person is a
    /// [`NodeError::Sudo`] naming the fix; any other output is the command's.
    fn sudo_refused(&self, output: Output) -> Result<Output, NodeError> {
        if output.success() || self.target.user == "root" {
            return Ok(output);
        }
        match sudo_problem(&output.stderr) {
            Some(problem) => Err(NodeError::Sudo {
                node: self.target.node.clone(),
                user: self.target.user.clone(),
                problem,
            }),
            None => Ok(output),
        }
    }

    /// Runs `script` as root with `input` on its stdin (binary data, such as
    /// a file to write): `sh -c SCRIPT`, through `sudo -n` unless root.
    pub async fn run_as_root_with_input(
        &self,
        what: &str,
        script: &str,
        input: &[u8],
    ) -> Result<Output, NodeError> {
        let command = self.as_root(&format!("sh -c {}", super::shell::quote(script)));
        let output = self.run_command(what, &command, input).await?;
        self.sudo_refused(output)
    }

    /// `GET path` of an HTTP server the board reaches at `host:port`,
    /// carried by this SSH connection (a direct-tcpip channel, as `ssh -L`):
    /// the status code and body. For a controller's `/readyz` on the board,
    /// whose port need not be reachable from here.
    pub async fn http_get(
        &self,
        host: &str,
        port: u16,
        path: &str,
    ) -> Result<(u16, String), NodeError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let failed = |reason: String| NodeError::Ssh {
            node: self.target.node.clone(),
            reason: format!("GET {path} on {host}:{port} through SSH: {reason}"),
        };
        let exchange = async {
            let channel = self
                .handle
                .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let mut stream = channel.into_stream();
            stream
                .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
                .await
                .map_err(|e| failed(e.to_string()))?;
            let mut raw = Vec::new();
            stream
                .take(1 << 20)
                .read_to_end(&mut raw)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| failed(format!("not an HTTP answer: {head:?}")))?;
            Ok((status, body.to_string()))
        };
        tokio::time::timeout(self.options.connect_timeout, exchange)
            .await
            .map_err(|_| failed("no answer in time".into()))?
    }

    /// A command that runs as root (`sudo -n` unless the user is root), for
    /// exec channels that are not scripts (the Docker tunnel's dial-stdio).
    pub fn as_root(&self, command: &str) -> String {
        if self.target.user == "root" {
            command.to_string()
        } else {
            format!("sudo -n {command}")
        }
    }

    async fn run_command(
        &self,
        what: &str,
        command: &str,
        input: &[u8],
    ) -> Result<Output, NodeError> {
        let node = self.target.node.clone();
        let ssh_error = |e: russh::Error| NodeError::Ssh {
            node: node.clone(),
            reason: e.to_string(),
        };
        let mut channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(ssh_error)?;
        channel.exec(true, command).await.map_err(ssh_error)?;
        channel
            .data_bytes(input.to_vec())
            .await
            .map_err(ssh_error)?;
        channel.eof().await.map_err(ssh_error)?;
        let collect = async {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let mut status = None;
            // The exit status may come before or after EOF: read until the channel closes.
            while let Some(message) = channel.wait().await {
                match message {
                    ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            (status, stdout, stderr)
        };
        let (status, stdout, stderr) = tokio::time::timeout(self.options.command_timeout, collect)
            .await
            .map_err(|_| NodeError::Timeout {
                node: self.target.node.clone(),
                what: what.to_string(),
                seconds: self.options.command_timeout.as_secs(),
            })?;
        let status = status.ok_or_else(|| NodeError::NoExitStatus {
            node: self.target.node.clone(),
            what: what.to_string(),
        })?;
        Ok(Output {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Starts `command` on the board and hands back its channel as a byte
    /// stream (for [`super::tunnel`]: `docker system dial-stdio`).
    pub async fn open_exec(
        &self,
        command: &str,
    ) -> Result<russh::Channel<russh::client::Msg>, NodeError> {
        let ssh_error = |e: russh::Error| NodeError::Ssh {
            node: self.target.node.clone(),
            reason: format!("cannot start `{command}` over SSH: {e}"),
        };
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(ssh_error)?;
        channel.exec(true, command).await.map_err(ssh_error)?;
        Ok(channel)
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "done", "en")
            .await;
    }
}

/// Tries the keys an ssh-agent holds (SSH_AUTH_SOCK), in order.
async fn authenticate_with_agent(
    handle: &mut Handle<Verifier>,
    target: &Target,
    hash: Option<HashAlg>,
) -> Result<bool, NodeError> {
    let agent_error = |reason: String| NodeError::Identity {
        node: target.node.clone(),
        path: "the ssh-agent (SSH_AUTH_SOCK)".into(),
        user: target.user.clone(),
        reason,
    };
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(|e| agent_error(e.to_string()))?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| agent_error(e.to_string()))?;
    if identities.is_empty() {
        return Err(agent_error("the agent holds no keys".into()));
    }
    for identity in identities {
        let key = identity.public_key().into_owned();
        match handle
            .authenticate_publickey_with(&target.user, key, hash, &mut agent)
            .await
        {
            Ok(result) if result.success() => return Ok(true),
            Ok(_) => continue,
            Err(error) => return Err(agent_error(error.to_string())),
        }
    }
    Ok(false)
}

/// The keys known_hosts at `path` records for `host` (port 22 as `host`,
/// others as `[host]:port`, hashed entries included), as OpenSSH reads the
/// file; none when it does not exist. An entry that cannot be read is an
/// error: a decision about trusting a board is not made on half a file.
pub fn recorded_host_keys(
    host: &str,
    port: u16,
    path: &std::path::Path,
) -> Result<Vec<PublicKey>, KnownHostsError> {
    Ok(
        russh::keys::known_hosts::known_host_keys_path(host, port, path)?
            .into_iter()
            .map(|(_, key)| key)
            .collect(),
    )
}

/// Appends `key` for `host` to known_hosts at `path` (created with its
/// folder when missing), in OpenSSH's format.
pub fn record_host_key(
    host: &str,
    port: u16,
    key: &PublicKey,
    path: &std::path::Path,
) -> Result<(), KnownHostsError> {
    Ok(russh::keys::known_hosts::learn_known_hosts_path(
        host, port, key, path,
    )?)
}

/// known_hosts could not be read or written (OpenSSH's format, as russh
/// reads it); the message says which line or which I/O error.
/// Boxed: russh's error is large, and this one rides inside every CLI error.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct KnownHostsError(Box<russh::keys::Error>);

impl From<russh::keys::Error> for KnownHostsError {
    fn from(error: russh::keys::Error) -> Self {
        Self(Box::new(error))
    }
}

/// What sudo said when it would not run a command without asking.
fn sudo_problem(stderr: &str) -> Option<SudoProblem> {
    let first = stderr.lines().next().unwrap_or_default();
    if first.starts_with("sudo:") && first.contains("password is required") {
        Some(SudoProblem::WantsPassword)
    } else if first.contains("sudo: not found") || first.contains("sudo: command not found") {
        Some(SudoProblem::Missing)
    } else if first.starts_with("sudo:") && first.contains("not in the sudoers") {
        Some(SudoProblem::NotAllowed)
    } else {
        None
    }
}

/// Why a board step could not become root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SudoProblem {
    /// `sudo -n` would have asked for a password.
    WantsPassword,
    /// The user may not use sudo at all.
    NotAllowed,
    /// There is no sudo on the board.
    Missing,
}

impl std::fmt::Display for SudoProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SudoProblem::WantsPassword => "sudo asks for a password",
            SudoProblem::NotAllowed => "the user is not allowed to use sudo",
            SudoProblem::Missing => "sudo is not installed",
        })
    }
}

/// Replaces every occurrence of the given secrets (join tokens, ...) before
/// text is logged, shown in a plan, or returned in an error.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[redacted]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{redact, sudo_problem, SudoProblem};

    #[test]
    fn sudo_refusals_are_told_apart_from_failing_scripts() {
        assert_eq!(
            sudo_problem("sudo: a password is required\n"),
            Some(SudoProblem::WantsPassword)
        );
        assert_eq!(
            sudo_problem("sh: 1: sudo: not found\n"),
            Some(SudoProblem::Missing)
        );
        assert_eq!(
            sudo_problem("nopass is not in the sudoers file.\nsudo: ... not in the sudoers\n"),
            None,
            "only sudo's own first line counts"
        );
        assert_eq!(
            sudo_problem("sudo: nopass is not in the sudoers file.\n"),
            Some(SudoProblem::NotAllowed)
        );
        assert_eq!(
            sudo_problem("E: Unable to locate package docker.io\n"),
            None
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let token = "SWMTKN-1-abcdef0123456789";
        assert_eq!(
            redact(&format!("join --token {token} 10.0.0.1"), &[token]),
            "join --token [redacted] 10.0.0.1"
        );
        assert_eq!(
            redact("short a", &["a"]),
            "short a",
            "too-short secrets would mangle text"
        );
    }
}
