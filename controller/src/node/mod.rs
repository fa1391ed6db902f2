//! The only code that talks SSH: reaching boards, learning their facts, and
//! bootstrapping them into the swarm and taking them out of it.
//!
//! [`ssh`] is the executor (russh): key authentication, host keys verified
//! against known_hosts or a key pinned in the spec, timeouts, keepalives,
//! scripts on stdin, exit status read until the channel closes, output with
//! secrets redacted. [`facts`] turns one script's output into [`Facts`].
//! [`fanout`] runs work on many boards at once with a bound; [`fleet`] keeps
//! sessions, facts and the Docker tunnel between reconciles.

pub mod bootstrap;
pub mod config;
pub mod facts;
pub mod fanout;
pub mod fleet;
pub mod provision;
pub mod shell;
pub mod ssh;
pub mod tunnel;

pub use ssh::{Output, Session, SshOptions, Target};

use crate::failure::{Classify, ErrorClass};
use crate::observed::Facts;

/// Why work on a board failed. Every message names the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No SSH conversation started: the name, the route, the port or the
    /// board itself, each with what to check.
    #[error("node {node}: cannot connect to {address}: {reason}")]
    Unreachable {
        node: String,
        address: String,
        reason: NoContact,
    },
    /// The board's host key is not in known_hosts and no key is pinned.
    #[error("node {node}: unknown host key {fingerprint} at {address}; refusing to connect. Verify it, then add it to {known_hosts} (ssh-keyscan), pin it with `host_key` in the spec, or run once with --accept-new-host-keys")]
    UnknownHostKey {
        node: String,
        address: String,
        fingerprint: String,
        known_hosts: String,
    },
    /// The board presents a different key than the one recorded or pinned.
    #[error("node {node}: host key changed ({fingerprint} at {address}, {recorded}); refusing to connect. If the board was re-flashed, remove the old entry; otherwise someone may be in the middle")]
    HostKeyChanged {
        node: String,
        address: String,
        fingerprint: String,
        /// Where the expected key came from: "known_hosts line N of PATH" or "the key pinned in the spec".
        recorded: String,
    },
    /// The key in the spec's `host_key` cannot be parsed.
    #[error("node {node}: the pinned host_key is not a valid public key: {reason}")]
    BadPinnedKey { node: String, reason: String },
    /// The identity file is missing or unreadable.
    #[error(
        "node {node}: cannot load the SSH key {path}: {reason}. {}",
        key_advice(path, user)
    )]
    Identity {
        node: String,
        path: String,
        /// The `[ssh] user`, for the `ssh-copy-id` line.
        user: String,
        reason: String,
    },
    /// The board refused the key (or every key the ssh-agent offered).
    #[error("node {node}: {address} refused the login as `{user}` with {key}. If `{user}` is not the board's user, set `user` under [ssh] in the spec (Raspberry Pi OS has had no `pi` user since 2022: it is the one chosen when the card was flashed); if it is, put the key on the board: `{}`", key.copy_command(user, address.rsplit_once(':').map_or(address.as_str(), |(host, _)| host)))]
    AuthRejected {
        node: String,
        address: String,
        user: String,
        key: LoginKey,
    },
    /// A command ran past its deadline; the channel was closed.
    #[error("node {node}: `{what}` did not finish within {seconds}s")]
    Timeout {
        node: String,
        what: String,
        seconds: u64,
    },
    /// The channel closed without an exit status (the connection dropped).
    #[error("node {node}: `{what}` ended without an exit status (connection lost?)")]
    NoExitStatus { node: String, what: String },
    /// A board step needs root and the SSH user cannot become root without a person.
    #[error("node {node}: board steps run as root through `sudo -n`, but for {user} {problem}; allow it without a password, as Raspberry Pi OS does for `pi`: on the board run `echo '{user} ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/010_{user}-nopasswd`, or log in as root")]
    Sudo {
        node: String,
        user: String,
        problem: ssh::SudoProblem,
    },
    /// A command ran and exited with an error (its stderr, secrets redacted).
    #[error("node {node}: {what} failed: {stderr}")]
    Failed {
        node: String,
        what: String,
        stderr: String,
    },
    /// The board at a departing node's address is not that swarm node (a
    /// re-flashed board, a reused DHCP address): it is not told to leave.
    #[error("node {node}: the board at {address} is {found}, not swarm node {expected}; it was not told to leave")]
    NotThatNode {
        node: String,
        address: String,
        expected: String,
        /// "swarm node ID" or "not in a swarm".
        found: String,
    },
    /// Docker on the board runs but does not answer: nothing is done on the
    /// board until it does (a hung daemon once stalled every reconcile).
    #[error("node {node}: Docker does not answer (`docker info` took over 10 s); nothing was done on the board. Restart Docker there (`sudo systemctl restart docker`) or restart the board")]
    DockerHung { node: String },
    /// Any other SSH protocol failure.
    #[error("node {node}: SSH error: {reason}")]
    Ssh { node: String, reason: String },
}

/// What to run when the SSH key cannot be read: make one, then put it on
/// the boards. (An agent's problem is not a file to create.)
fn key_advice(path: &str, user: &str) -> String {
    if path.starts_with('/') || path.starts_with('~') || path.starts_with('.') {
        format!("Make a key with `ssh-keygen -t ed25519 -f {path}`, then put it on each board: `ssh-copy-id -i {path}.pub {user}@ADDRESS`; or set `identity` under [ssh] to the key you log in with")
    } else {
        format!("Add a key to the agent (`ssh-add`), or set `identity` under [ssh] to the key you log in with as `{user}`")
    }
}

/// What the login offered the board: one key file, or the keys an
/// ssh-agent holds (no identity file exists and SSH_AUTH_SOCK is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginKey {
    File(String),
    Agent,
}

impl LoginKey {
    /// The `ssh-copy-id` line that puts this key on the board; without
    /// `-i` it copies the agent's keys, as OpenSSH documents.
    fn copy_command(&self, user: &str, host: &str) -> String {
        match self {
            LoginKey::File(path) => format!("ssh-copy-id -i {path}.pub {user}@{host}"),
            LoginKey::Agent => format!("ssh-copy-id {user}@{host}"),
        }
    }
}

impl std::fmt::Display for LoginKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginKey::File(path) => write!(f, "the key {path}"),
            LoginKey::Agent => f.write_str("the keys of the ssh-agent (SSH_AUTH_SOCK)"),
        }
    }
}

/// Why no SSH conversation started with a board, in words a person can act
/// on: each says what to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoContact {
    /// The board's name does not resolve to an address.
    UnknownName(String),
    /// This machine has no route to the address.
    NoRoute,
    /// The address answered, but nothing listens on the SSH port.
    Refused,
    /// Nothing answered within the connect timeout.
    NoAnswer { seconds: u64 },
    /// A connection opened, then closed before SSH spoke.
    Dropped,
    /// Anything else, as the system said it.
    Other(String),
}

impl NoContact {
    /// Classifies a failed TCP connect by the system's error.
    pub fn from_io(error: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        match error.kind() {
            ErrorKind::ConnectionRefused => NoContact::Refused,
            ErrorKind::NetworkUnreachable
            | ErrorKind::HostUnreachable
            | ErrorKind::AddrNotAvailable => NoContact::NoRoute,
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::UnexpectedEof
            | ErrorKind::BrokenPipe => NoContact::Dropped,
            ErrorKind::TimedOut => NoContact::NoAnswer { seconds: 0 },
            _ => NoContact::Other(error.to_string()),
        }
    }
}

impl std::fmt::Display for NoContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoContact::UnknownName(reason) => write!(f, "the name does not resolve ({reason}); check `address` in the spec, or use the board's IP address (a `.local` name needs mDNS on this machine: avahi-daemon and libnss-mdns)"),
            NoContact::NoRoute => f.write_str("no route to this address; check `address` in the spec and that this machine is on the boards' network"),
            NoContact::Refused => f.write_str("connection refused: something answers at this address but no SSH server listens on the port. Turn SSH on (Raspberry Pi Imager: \"Enable SSH\" when flashing; on the board `sudo systemctl enable --now ssh`), or correct `port` in the spec"),
            NoContact::NoAnswer { seconds: 0 } => f.write_str("no answer (timed out): is the board powered, done booting and at this address? (`ping` it)"),
            NoContact::NoAnswer { seconds } => write!(f, "no answer within {seconds}s: is the board powered, done booting and at this address? (`ping` it)"),
            NoContact::Dropped => f.write_str("the connection closed before SSH answered: something else listens on this port, or sshd turned the connection away (fail2ban, MaxStartups)"),
            NoContact::Other(reason) => f.write_str(reason),
        }
    }
}

impl NodeError {
    /// The board and what went wrong apart, so one problem shared by many
    /// boards (a missing key, SSH off everywhere) is said once with their
    /// names: `("pi1", "cannot load the SSH key ...")`, and for a board
    /// not reached `("pi1 (10.0.0.1:22)", "cannot connect: ...")`.
    pub fn board_and_problem(&self) -> (String, String) {
        if let NodeError::Unreachable {
            node,
            address,
            reason,
        } = self
        {
            return (
                format!("{node} ({address})"),
                format!("cannot connect: {reason}"),
            );
        }
        let text = self.to_string();
        let prefix = format!("node {}: ", self.node());
        let problem = text
            .strip_prefix(&prefix)
            .map_or(text.clone(), str::to_string);
        (self.node().to_string(), problem)
    }

    /// The connection itself failed mid-command (not the command): worth
    /// one new connection before the board counts as failed.
    pub fn connection_lost(&self) -> bool {
        matches!(self, NodeError::Ssh { .. } | NodeError::NoExitStatus { .. })
    }

    /// The spec's name of the board.
    pub fn node(&self) -> &str {
        match self {
            NodeError::Unreachable { node, .. }
            | NodeError::UnknownHostKey { node, .. }
            | NodeError::HostKeyChanged { node, .. }
            | NodeError::BadPinnedKey { node, .. }
            | NodeError::Identity { node, .. }
            | NodeError::AuthRejected { node, .. }
            | NodeError::Timeout { node, .. }
            | NodeError::NoExitStatus { node, .. }
            | NodeError::Sudo { node, .. }
            | NodeError::Failed { node, .. }
            | NodeError::NotThatNode { node, .. }
            | NodeError::DockerHung { node }
            | NodeError::Ssh { node, .. } => node,
        }
    }

    /// A low-cardinality name for metrics and summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeError::Unreachable { .. } => "unreachable",
            NodeError::UnknownHostKey { .. }
            | NodeError::HostKeyChanged { .. }
            | NodeError::BadPinnedKey { .. } => "host_key",
            NodeError::Identity { .. }
            | NodeError::AuthRejected { .. }
            | NodeError::Sudo { .. } => "auth",
            NodeError::NotThatNode { .. } => "identity",
            NodeError::DockerHung { .. } => "docker_hung",
            NodeError::Timeout { .. }
            | NodeError::NoExitStatus { .. }
            | NodeError::Failed { .. } => "command",
            NodeError::Ssh { .. } => "ssh",
        }
    }
}

/// Expands a leading `~/` with `$HOME`, as users write paths in `[ssh]`.
pub fn expand_home(path: &str) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => std::path::PathBuf::from(path),
    }
}

/// How to reach a spec node over SSH.
pub fn target_for(node: &reconciler_spec::Node) -> Target {
    Target {
        node: node.name.clone(),
        host: node.address.clone(),
        port: node.ssh.port,
        user: node.ssh.user.clone(),
        identity: expand_home(&node.ssh.identity),
        known_hosts: expand_home(&node.ssh.known_hosts),
        pinned_key: node.host_key.clone(),
    }
}

/// Facts of many boards at once (at most `parallel` connections), with a
/// progress line per board on `progress`. One failure never stops the others.
pub async fn gather_facts(
    targets: Vec<Target>,
    options: SshOptions,
    parallel: usize,
    progress: std::sync::Arc<std::sync::Mutex<dyn std::io::Write + Send>>,
) -> Vec<(String, Result<Facts, NodeError>)> {
    fanout::for_each(targets, parallel, move |target| {
        let progress = std::sync::Arc::clone(&progress);
        async move {
            let started = std::time::Instant::now();
            let result = async {
                let session = Session::connect(&target, options).await?;
                let output = session.run_as_root("gather facts", facts::SCRIPT).await?;
                session.close().await;
                Facts::parse(&output.stdout).answering(&target.node)
            }
            .await;
            if let Ok(mut out) = progress.lock() {
                let _ = match &result {
                    Ok(_) => writeln!(
                        out,
                        "node {}: facts gathered in {:.1?}",
                        target.node,
                        started.elapsed()
                    ),
                    Err(error) => writeln!(out, "{error}"),
                };
            }
            (target.node, result)
        }
    })
    .await
}

/// Exit status of [`LEAVE_SCRIPT`] when the board is another node.
const NOT_THAT_NODE: u32 = 3;

/// Leaves the swarm only if the board's Docker is swarm node `$1`; otherwise
/// prints the node ID it is (empty outside a swarm) and exits [`NOT_THAT_NODE`].
const LEAVE_SCRIPT: &str = r#"id=$(docker info --format '{{.Swarm.NodeID}}' 2>/dev/null)
if [ "$id" != "$1" ]; then echo "$id"; exit 3; fi
docker swarm leave
"#;

/// The board a node removal reaches: its name, its swarm address, and the
/// swarm node ID it must confirm it is before it is told to leave.
#[derive(Debug, Clone, Copy)]
pub struct LeavingBoard<'a> {
    /// The node's name (in the spec or the swarm), for messages.
    pub node: &'a str,
    /// Where the swarm last saw it.
    pub address: &'a str,
    /// The swarm node being removed.
    pub node_id: &'a str,
}

/// Makes boards leave the swarm over SSH (for node removals), reaching each
/// at its swarm address with the spec's `[ssh]` defaults, once it confirms
/// that it is the node being removed. A key the spec pins for that address
/// is checked; a key never seen before is never accepted (the board being
/// removed was met before: a new key at its address is another machine).
#[derive(Debug, Clone)]
pub struct Leaver {
    ssh: reconciler_spec::SshSettings,
    options: SshOptions,
    /// `host_key`s the spec pins, by node address.
    pinned: std::collections::BTreeMap<String, String>,
}

impl Leaver {
    /// A leaver with the spec's `[ssh]` defaults.
    pub fn new(ssh: &reconciler_spec::SshSettings, options: SshOptions) -> Self {
        Leaver {
            ssh: ssh.clone(),
            options: SshOptions {
                accept_new_host_keys: false,
                ..options
            },
            pinned: std::collections::BTreeMap::new(),
        }
    }

    /// Checks the `host_key` a node of the spec pins for its address.
    #[must_use]
    pub fn pinning(
        mut self,
        nodes: &std::collections::BTreeMap<String, reconciler_spec::Node>,
    ) -> Self {
        self.pinned = nodes
            .values()
            .filter_map(|n| Some((n.address.clone(), n.host_key.clone()?)))
            .collect();
        self
    }

    /// How `board` is reached.
    fn target(&self, board: LeavingBoard<'_>) -> Target {
        let ssh = &self.ssh;
        Target {
            node: board.node.to_string(),
            host: board.address.to_string(),
            port: ssh.port,
            user: ssh.user.clone(),
            identity: expand_home(&ssh.identity),
            known_hosts: expand_home(&ssh.known_hosts),
            pinned_key: self.pinned.get(board.address).cloned(),
        }
    }

    /// Tells the board to leave, only if it is `board.node_id`.
    pub async fn leave(&self, board: LeavingBoard<'_>) -> Result<(), NodeError> {
        let target = self.target(board);
        let node_id = board.node_id.to_string();
        // Swarm node IDs are lower-case letters and digits; anything else
        // never reaches a shell.
        if node_id.is_empty() || !node_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(NodeError::NotThatNode {
                node: target.node.clone(),
                address: target.host.clone(),
                expected: node_id,
                found: "not checked (the node ID is malformed)".into(),
            });
        }
        let session = Session::connect(&target, self.options).await?;
        let script = format!("set -- {node_id}\n{LEAVE_SCRIPT}");
        let output = session.run_as_root("leave the swarm", &script).await?;
        session.close().await;
        if output.status == NOT_THAT_NODE {
            let found = output.stdout.trim();
            return Err(NodeError::NotThatNode {
                node: target.node.clone(),
                address: target.host.clone(),
                expected: node_id,
                found: if found.is_empty() {
                    "not in a swarm".into()
                } else {
                    format!("swarm node {found}")
                },
            });
        }
        if output.success() {
            Ok(())
        } else {
            Err(NodeError::Failed {
                node: target.node.clone(),
                what: "leave the swarm".into(),
                stderr: output.stderr.trim().to_string(),
            })
        }
    }
}

impl Classify for NodeError {
    fn class(&self) -> ErrorClass {
        match self {
            NodeError::Unreachable { .. }
            | NodeError::Timeout { .. }
            | NodeError::NoExitStatus { .. }
            | NodeError::Failed { .. }
            | NodeError::DockerHung { .. }
            | NodeError::Ssh { .. } => ErrorClass::Retryable,
            NodeError::UnknownHostKey { .. }
            | NodeError::HostKeyChanged { .. }
            | NodeError::BadPinnedKey { .. }
            | NodeError::Identity { .. }
            | NodeError::AuthRejected { .. }
            | NodeError::Sudo { .. }
            | NodeError::NotThatNode { .. } => ErrorClass::NeedsPerson,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            NodeError::Unreachable { .. } => "board_unreachable",
            NodeError::UnknownHostKey { .. }
            | NodeError::HostKeyChanged { .. }
            | NodeError::BadPinnedKey { .. } => "host_key",
            NodeError::Identity { .. } | NodeError::AuthRejected { .. } => "ssh_auth",
            NodeError::Sudo { .. } => "sudo",
            NodeError::NotThatNode { .. } => "not_that_node",
            NodeError::DockerHung { .. } => "docker_hung",
            NodeError::Timeout { .. }
            | NodeError::NoExitStatus { .. }
            | NodeError::Failed { .. } => "board_command",
            NodeError::Ssh { .. } => "ssh",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn failure(error: &NodeError) -> crate::plan::render::BoardFailure {
        let (board, problem) = error.board_and_problem();
        crate::plan::render::BoardFailure {
            board,
            problem,
            text: error.to_string(),
        }
    }

    /// Issue 23: one missing key on four boards was printed four times
    /// (and again on stderr); boards refusing SSH are one line naming them.
    #[test]
    fn a_problem_many_boards_share_is_said_once_with_their_names() {
        let missing = |node: &str| NodeError::Identity {
            node: node.into(),
            path: "/home/me/.ssh/id_ed25519".into(),
            user: "anna".into(),
            reason: "there is no such file".into(),
        };
        let refused = |node: &str, address: &str| NodeError::Unreachable {
            node: node.into(),
            address: address.into(),
            reason: NoContact::Refused,
        };
        let failures: Vec<_> = [
            missing("pi1"),
            missing("pi2"),
            refused("pi3", "10.0.0.3:22"),
            refused("pi4", "10.0.0.4:22"),
            NodeError::AuthRejected {
                node: "pi5".into(),
                address: "10.0.0.5:22".into(),
                user: "pi".into(),
                key: LoginKey::File("/k".into()),
            },
        ]
        .iter()
        .map(failure)
        .collect();
        let lines = crate::plan::render::grouped_failures(&failures);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("nodes pi1, pi2: cannot load the SSH key /home/me/.ssh/id_ed25519: there is no such file. Make a key with `ssh-keygen -t ed25519 -f /home/me/.ssh/id_ed25519`, then put it on each board: `ssh-copy-id -i /home/me/.ssh/id_ed25519.pub anna@ADDRESS`"), "{}", lines[0]);
        assert!(
            lines[1].starts_with(
                "nodes pi3 (10.0.0.3:22), pi4 (10.0.0.4:22): cannot connect: connection refused"
            ),
            "{}",
            lines[1]
        );
        assert!(lines[2].contains("set `user` under [ssh]"), "{}", lines[2]);
        assert!(
            lines[2].contains("`ssh-copy-id -i /k.pub pi@10.0.0.5`"),
            "{}",
            lines[2]
        );
    }

    /// The system's reason for a failed connect becomes what to check.
    #[test]
    fn a_failed_connect_says_what_to_check() {
        use std::io::{Error, ErrorKind};
        let says = |kind| NoContact::from_io(&Error::from(kind)).to_string();
        assert!(says(ErrorKind::ConnectionRefused).contains("no SSH server listens"));
        assert!(says(ErrorKind::HostUnreachable).contains("check `address`"));
        assert!(says(ErrorKind::NetworkUnreachable).contains("check `address`"));
        assert!(says(ErrorKind::TimedOut).contains("is the board powered"));
        assert!(says(ErrorKind::ConnectionReset).contains("closed before SSH answered"));
    }

    /// Regression (issue 22): the leaver ignored a pinned `host_key` and,
    /// with --accept-new-host-keys, would take any key at the address of
    /// the board it tells to leave.
    #[test]
    fn regression_the_leaver_checks_a_pinned_key_and_never_accepts_a_new_one() {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::write(
            dir.path().join("spec.toml"),
            format!("[cluster]\nname = \"home\"\n[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\nhost_key = \"{KEY}\"\n[node.pi2]\naddress = \"10.0.0.2\"\nrole = \"worker\"\n"),
        )
        .expect("written");
        let spec = reconciler_spec::load_dir(dir.path()).expect("valid spec");
        let leaver = Leaver::new(
            &spec.ssh,
            SshOptions {
                accept_new_host_keys: true,
                ..SshOptions::default()
            },
        )
        .pinning(&spec.nodes);
        assert!(!leaver.options.accept_new_host_keys);
        let board = |address| LeavingBoard {
            node: "old",
            address,
            node_id: "abc",
        };
        assert_eq!(
            leaver.target(board("10.0.0.1")).pinned_key.as_deref(),
            Some(KEY)
        );
        assert_eq!(leaver.target(board("10.0.0.9")).pinned_key, None);
    }
}
