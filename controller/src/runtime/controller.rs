//! `reconciler run`: wires the source, the swarm, the loop, HTTP and
//! metrics; one reconcile is `step.rs`, what it reports `report.rs`, the
//! triggers from outside `watchers.rs`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reconciler_spec::LoadOptions;
use tokio::sync::{mpsc, watch};

use super::step::Controller;
use super::watchers::{watch_directory, watch_docker_events};
use super::writer::Writer;
use super::{run_loop, Backoff};
use crate::http::{self, Shared};
use crate::node::fleet::Fleet;
use crate::pipeline::Reach;
use crate::reconcile::Trigger;
use crate::source::Source;
use crate::status::Status;

/// Everything `reconciler run` is told on its command line.
#[derive(Debug)]
pub struct RunOptions {
    /// A manager's socket, or the boards over SSH (which bootstraps, joins and
    /// removes them on every reconcile, reaching a manager through SSH).
    pub reach: Reach,
    pub listen: SocketAddr,
    /// Shared secret for `/hooks/git`; `None` refuses every hook.
    pub webhook_secret: Option<crate::source::webhook::WebhookSecret>,
    /// Overrides `[controller] mode`.
    pub observe: bool,
    /// Overrides `[controller] suspend`.
    pub suspend: bool,
    /// Overrides `[controller] interval`.
    pub interval: Option<Duration>,
    /// This controller's name in the lease.
    pub holder: String,
    pub lease_ttl: Duration,
    /// How long to wait for a service another one comes `after`.
    pub apply_timeout: Duration,
    /// With `--ssh`: how long a board's cached facts are used.
    pub facts_max_age: Duration,
    /// The longest a fetch of the source may take.
    pub fetch_timeout: Duration,
    /// The longest one Docker API call may go unanswered.
    pub docker_timeout: Duration,
    /// Reconcile a swarm none of the spec's nodes is in (`--allow-other-swarm`).
    pub allow_other_swarm: bool,
    /// What loading each revision may use: the age identities that decrypt
    /// its secrets, and only the environment variables `--allow-env` names.
    pub load: LoadOptions,
    /// Names the page, `/api/*` and `/metrics` answer to besides IP
    /// addresses, `localhost` and one-label names (`--allow-host`).
    pub allow_hosts: Vec<String>,
    /// The SSH files every board is reached with, whatever the spec says.
    pub ssh_paths: SshPaths,
    /// The owner's limits on what a revision may ask of the boards
    /// (`--policy`); without one nothing is refused, the powers are warned about.
    pub policy: Option<crate::policy::Policy>,
    /// The controller's own files a service must not mount (its SSH key,
    /// known_hosts, cache), besides [`crate::policy::CONTROLLER_FOLDERS`].
    pub protected: Vec<std::path::PathBuf>,
    /// What the page and `/api/*` ask for (`--page-token-file`).
    pub page_token: Option<crate::http::PageToken>,
}

/// Why the controller could not start; once running, errors are reported and retried.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The HTTP address is taken or not ours.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// `--webhook-secret-file` cannot be read.
    #[error("cannot read the webhook secret from {path}: {source}")]
    Secret {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The webhook secret is empty or only whitespace: an empty token would
    /// then authenticate any hook.
    #[error("the webhook secret from {from} is empty; write one (e.g. `openssl rand -hex 32`) or give none to refuse every hook")]
    EmptySecret { from: String },
    /// `--page-token-file` cannot be read.
    #[error("cannot read the page token from {path}: {source}")]
    PageTokenFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The page token is too short or holds a character it cannot travel with.
    #[error("{path}: {source}")]
    PageToken {
        path: std::path::PathBuf,
        #[source]
        source: crate::http::PageTokenError,
    },
}

/// The page token from `--page-token-file` (a trailing newline is not part of it).
pub fn page_token(
    file: Option<&std::path::Path>,
) -> Result<Option<crate::http::PageToken>, RunError> {
    let Some(path) = file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|source| RunError::PageTokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    crate::http::PageToken::new(&text)
        .map(Some)
        .map_err(|source| RunError::PageToken {
            path: path.to_path_buf(),
            source,
        })
}

/// The webhook secret: from `file` when given, else `RECONCILER_WEBHOOK_SECRET`;
/// `None` refuses every hook. Surrounding whitespace (a trailing newline) is not part of it.
pub fn webhook_secret(
    file: Option<&std::path::Path>,
) -> Result<Option<crate::source::webhook::WebhookSecret>, RunError> {
    let (secret, from) = match file {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|source| RunError::Secret {
                path: path.to_path_buf(),
                source,
            })?,
            path.display().to_string(),
        ),
        None => match std::env::var("RECONCILER_WEBHOOK_SECRET") {
            Ok(secret) => (secret, "$RECONCILER_WEBHOOK_SECRET".to_string()),
            Err(_) => return Ok(None),
        },
    };
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(RunError::EmptySecret { from });
    }
    Ok(Some(crate::source::webhook::WebhookSecret::new(
        secret.as_bytes().to_vec(),
    )))
}

/// This controller's name in the lease when none is given: hostname and process id.
pub fn default_holder() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    // Only the characters a holder id may carry, and short enough to be one.
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    format!("{host}-{}", std::process::id())
}

/// The files `run` reaches boards with: the controller's own, never the
/// repository's (a push must not choose a file the controller reads as a
/// key, or one it writes host keys into).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPaths {
    pub identity: String,
    pub known_hosts: String,
}

impl SshPaths {
    /// Puts the controller's files in every SSH setting of `spec`; returns
    /// the ones the spec named otherwise (`[ssh] identity = ...`), to warn.
    pub fn impose(&self, spec: &mut reconciler_spec::Spec) -> Vec<String> {
        let mut ignored = Vec::new();
        // What a setting says unless written: the default for `[ssh]`, and
        // `[ssh]`'s own for a node (which inherits it).
        let defaults = reconciler_spec::SshSettings::default();
        let inherited = spec.ssh.clone();
        let mut set = |ssh: &mut reconciler_spec::SshSettings,
                       unwritten: &reconciler_spec::SshSettings,
                       whose: &str| {
            for (field, value, ours, unset) in [
                (
                    "identity",
                    &mut ssh.identity,
                    &self.identity,
                    &unwritten.identity,
                ),
                (
                    "known_hosts",
                    &mut ssh.known_hosts,
                    &self.known_hosts,
                    &unwritten.known_hosts,
                ),
            ] {
                if value != ours && value != unset {
                    ignored.push(format!("{whose} {field} = {value:?}"));
                }
                value.clone_from(ours);
            }
        };
        set(&mut spec.ssh, &defaults, "[ssh]");
        for node in spec.nodes.values_mut() {
            let whose = format!("node {}: ssh", node.name);
            set(&mut node.ssh, &inherited, &whose);
        }
        ignored
    }
}

/// Raises the soft limit on open files to the hard one (at most 65 536):
/// systemd starts services with a soft limit of 1 024, which HTTP clients,
/// SSH sessions to a hundred boards and Docker calls can use up together.
fn raise_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.map_or(65_536, |hard| hard.min(65_536));
    if limit.current.is_some_and(|soft| soft >= wanted) {
        return;
    }
    let raised = Rlimit {
        current: Some(wanted),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::debug!(files = wanted, "raised the open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
}

/// Runs until `shutdown` turns true, then releases the lease and returns.
pub async fn run(
    source: Source,
    options: RunOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<(), RunError> {
    raise_file_limit();
    let (triggers, receiver) = mpsc::unbounded_channel();
    let mut shared = Shared::new(
        Status {
            source: source.describe(),
            holder: options.holder.clone(),
            ..Status::default()
        },
        triggers.clone(),
        options.webhook_secret.clone(),
    );
    shared.allowed_hosts.clone_from(&options.allow_hosts);
    shared.page_token.clone_from(&options.page_token);
    let shared = Arc::new(shared);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| RunError::Listen {
            address: options.listen,
            source,
        })?;
    // With port 0 the system picks one: say which, so scripts and tests can find it.
    let bound = listener.local_addr().unwrap_or(options.listen);
    tracing::info!(source = %source.describe(), "reconciler run: listening on {bound}");
    tokio::spawn(http::serve(listener, Arc::clone(&shared), shutdown.clone()));
    // With --ssh, Docker is reached through the fleet's tunnel, known after
    // the first reconcile; the watcher follows it when it moves.
    let first_host = match &options.reach {
        Reach::Socket(host) => Some(host.clone()),
        Reach::Boards(_) => None,
    };
    let (docker_host_sender, docker_host) = watch::channel(first_host);
    tokio::spawn(super::viewer::keep_picture_live(
        docker_host.clone(),
        options.docker_timeout,
        Arc::clone(&shared),
        shutdown.clone(),
    ));
    tokio::spawn(watch_docker_events(
        docker_host,
        options.docker_timeout,
        triggers.clone(),
        Arc::clone(&shared),
        shutdown.clone(),
    ));
    let facts_max_age = options.facts_max_age;
    let _watcher = match &source {
        Source::Dir(dir) => watch_directory(dir.path(), triggers.clone()),
        Source::Git(_) => None,
    };
    let _ = triggers.send(Trigger::Startup);

    let interval = Arc::new(AtomicU64::new(millis(
        options
            .interval
            .unwrap_or(reconciler_spec::DEFAULT_INTERVAL),
    )));
    let source = Arc::new(std::sync::Mutex::new(source));
    let writer = Writer::new(
        options.holder.clone(),
        options.lease_ttl,
        Arc::clone(&shared),
    );
    let controller = Arc::new(tokio::sync::Mutex::new(Controller {
        options,
        source,
        interval: Arc::clone(&interval),
        shared: Arc::clone(&shared),
        snapshot: None,
        loaded_revision: None,
        spec: None,
        good_revision: None,
        newest_turned_away: None,
        swarm: None,
        fleet: Fleet::new(facts_max_age).counting_updates(),
        docker_host: docker_host_sender,
        writer,
        board_needs: Vec::new(),
        board_notes: Vec::new(),
        board_plan: None,
        upkeep: super::upkeep::Memory::default(),
        shutdown: shutdown.clone(),
    }));
    let loop_controller = Arc::clone(&controller);
    run_loop(
        receiver,
        shutdown,
        move || Duration::from_millis(interval.load(Ordering::Relaxed)),
        Backoff::new(super::RETRY_FIRST, super::RETRY_MAX),
        move |batch| {
            let controller = Arc::clone(&loop_controller);
            async move { controller.lock().await.reconcile(&batch).await }
        },
    )
    .await;

    let controller = controller.lock().await;
    if let Some(swarm) = &controller.swarm {
        if let Err(error) = controller.writer.release(swarm).await {
            tracing::warn!(%error, "could not release the lease; it expires by itself");
        }
    }
    tracing::info!("reconciler run: stopped");
    Ok(())
}

pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::SshPaths;

    /// Under `run` a push chose which file the root controller read as a key
    /// and which one it wrote host keys into (issue 22); the controller's own
    /// files are used instead, and a spec that names others is told.
    #[test]
    fn regression_a_pushed_spec_cannot_choose_the_files_run_reads_and_writes() {
        let mut spec = reconciler_spec::load_files(vec![(
            "spec.toml".into(),
            "[cluster]\nname = \"c\"\n[ssh]\nknown_hosts = \"/etc/cron.d/evil\"\n[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\nssh = { identity = \"/etc/reconciler/age-identity\" }\n[node.pi2]\naddress = \"10.0.0.2\"\nrole = \"worker\"\n"
                .to_string(),
        )])
        .expect("the spec loads");
        let ours = SshPaths {
            identity: "/etc/reconciler/ssh/id_ed25519".into(),
            known_hosts: "/etc/reconciler/ssh/known_hosts".into(),
        };
        let ignored = ours.impose(&mut spec);
        for ssh in std::iter::once(&spec.ssh).chain(spec.nodes.values().map(|n| &n.ssh)) {
            assert_eq!(ssh.identity, ours.identity);
            assert_eq!(ssh.known_hosts, ours.known_hosts);
        }
        let said = ignored.join("\n");
        assert!(
            said.contains("[ssh] known_hosts = \"/etc/cron.d/evil\""),
            "{said}"
        );
        assert!(said.contains("node pi1: ssh identity"), "{said}");
        assert_eq!(
            ignored.len(),
            2,
            "inherited values are not told again: {said}"
        );
    }
}
