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
    /// TCP connect or the SSH handshake did not finish in time, or was refused.
    #[error("node {node}: cannot connect to {address}: {reason}")]
    Unreachable {
        node: String,
        address: String,
        reason: String,
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
    #[error("node {node}: cannot load the SSH key {path}: {reason}")]
    Identity {
        node: String,
        path: String,
        reason: String,
    },
    /// The board refused the key.
    #[error("node {node}: authentication as {user} with {path} was refused")]
    AuthRejected {
        node: String,
        user: String,
        path: String,
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

impl NodeError {
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
