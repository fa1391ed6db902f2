//! The only code that talks to the Docker Engine API.
//!
//! [`Swarm`] wraps a bollard client bound to one manager. It reads the swarm
//! into [`crate::observed`] types ([`observe`]), translates the spec model to
//! Docker's service and network specs ([`convert`]), executes plan actions
//! ([`execute`]) and reports task progress ([`progress`]). Every write call
//! goes through [`Swarm::count_write`], so tests and benchmarks can prove a
//! no-op reconcile writes nothing.

mod convert;
mod events;
mod execute;
mod guard;
pub mod lease;
mod observe;
pub mod placement;
pub mod progress;
mod raw;
mod registry;
mod services;
pub use services::EarlyServices;
pub mod task_failure;

use crate::failure::{Classify, ErrorClass};
use crate::observed::ServiceScope;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bollard::Docker;

/// The default Docker socket, as the Docker CLI uses it.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How long one Docker API call may take, unless `--docker-timeout` says
/// otherwise: long enough for a slow SD card, short enough that a hung
/// daemon is noticed and the call counts as failed (then retried).
pub const DEFAULT_DOCKER_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// How often a write (a service, a node, the lease) is tried again when
/// another writer got in between ("update out of sequence").
const WRITE_ATTEMPTS: usize = 5;

/// One kind of Docker API call: the low-cardinality name of a failed call in
/// errors and in the `operation` label of `reconciler_docker_api_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DockerCall {
    Connect,
    Info,
    ListNodes,
    ListNetworks,
    ListServices,
    ListTasks,
    InspectSwarm,
    UpdateSwarm,
    InspectService,
    CreateService,
    UpdateService,
    DeleteService,
    CreateNetwork,
    RemoveNetwork,
    InspectNode,
    UpdateNode,
    DeleteNode,
    ListConfigs,
    CreateConfig,
    DeleteConfig,
    ListSecrets,
    CreateSecret,
    DeleteSecret,
    Events,
}

impl DockerCall {
    /// Every call, so metrics can report each one from the start (at zero).
    pub const ALL: [DockerCall; 24] = [
        DockerCall::Connect,
        DockerCall::Info,
        DockerCall::ListNodes,
        DockerCall::ListNetworks,
        DockerCall::ListServices,
        DockerCall::ListTasks,
        DockerCall::InspectSwarm,
        DockerCall::UpdateSwarm,
        DockerCall::InspectService,
        DockerCall::CreateService,
        DockerCall::UpdateService,
        DockerCall::DeleteService,
        DockerCall::CreateNetwork,
        DockerCall::RemoveNetwork,
        DockerCall::InspectNode,
        DockerCall::UpdateNode,
        DockerCall::DeleteNode,
        DockerCall::ListConfigs,
        DockerCall::CreateConfig,
        DockerCall::DeleteConfig,
        DockerCall::ListSecrets,
        DockerCall::CreateSecret,
        DockerCall::DeleteSecret,
        DockerCall::Events,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DockerCall::Connect => "connect",
            DockerCall::Info => "info",
            DockerCall::ListNodes => "list_nodes",
            DockerCall::ListNetworks => "list_networks",
            DockerCall::ListServices => "list_services",
            DockerCall::ListTasks => "list_tasks",
            DockerCall::InspectSwarm => "inspect_swarm",
            DockerCall::UpdateSwarm => "update_swarm",
            DockerCall::InspectService => "inspect_service",
            DockerCall::CreateService => "create_service",
            DockerCall::UpdateService => "update_service",
            DockerCall::DeleteService => "delete_service",
            DockerCall::CreateNetwork => "create_network",
            DockerCall::RemoveNetwork => "remove_network",
            DockerCall::InspectNode => "inspect_node",
            DockerCall::UpdateNode => "update_node",
            DockerCall::DeleteNode => "delete_node",
            DockerCall::ListConfigs => "list_configs",
            DockerCall::CreateConfig => "create_config",
            DockerCall::DeleteConfig => "delete_config",
            DockerCall::ListSecrets => "list_secrets",
            DockerCall::CreateSecret => "create_secret",
            DockerCall::DeleteSecret => "delete_secret",
            DockerCall::Events => "events",
        }
    }
}

impl std::fmt::Display for DockerCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call to the swarm failed.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// The daemon did not answer at all.
    #[error("cannot reach the Docker daemon at {host}: {source}. Is dockerd running, and may this user use its socket? (set --docker-host or DOCKER_HOST for another socket)")]
    Connect {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Only `unix://` sockets are supported; TCP ports are never needed.
    /// `--docker-host` is not a unix socket (no Docker TCP port is ever used).
    #[error(
        "unsupported Docker host `{0}`: use a unix socket path like unix:///var/run/docker.sock"
    )]
    UnsupportedHost(String),
    /// The daemon answers but is not a swarm manager.
    #[error("the Docker daemon at {host} is not a swarm manager (swarm state: {state}); run `docker swarm init`, or point --docker-host at a manager")]
    NotManager { host: String, state: String },
    /// A Docker API call failed.
    #[error("Docker API call `{operation}` failed: {source}")]
    Api {
        operation: DockerCall,
        #[source]
        source: bollard::errors::Error,
    },
    /// The managers have lost quorum (after a power cut, most of them down):
    /// nothing can be read or written until enough of them are back.
    #[error("the swarm has no leader: fewer than half of its managers are up, so Docker answers nothing (`{operation}`: {source}). Power the managers back on and check their network; the swarm recovers by itself once a majority is back. Only if most managers are lost for good, run `docker swarm init --force-new-cluster --advertise-addr ADDRESS` by hand on one surviving manager. Reconciler never initializes a new swarm in this state")]
    NoLeader {
        operation: DockerCall,
        #[source]
        source: bollard::errors::Error,
    },
    /// A call got no answer in time: the daemon is hung or very slow.
    #[error("Docker did not answer `{operation}` within --docker-timeout: the daemon may be hung (restart dockerd) or very slow (raise --docker-timeout)")]
    Timeout { operation: DockerCall },
    /// A service update kept losing the race against other writers.
    #[error("`{0}` kept changing while being updated (update out of sequence); the next reconcile tries again")]
    OutOfSequence(String),
    /// A node removal was executed without the SSH access it needs (`apply --ssh`).
    #[error("removing node `{0}` needs SSH to the board; run with --ssh")]
    NeedsSsh(String),
    /// A version index from Docker does not fit the API's i32/i64 parameter.
    #[error("object version {0} of `{1}` is too large for the Docker API")]
    VersionOverflow(u64, String),
}

impl SwarmError {
    /// A low-cardinality name of the failed operation, for logs and metrics.
    pub fn operation(&self) -> DockerCall {
        match self {
            SwarmError::Connect { .. } | SwarmError::UnsupportedHost(_) => DockerCall::Connect,
            SwarmError::NotManager { .. } => DockerCall::Info,
            SwarmError::Api { operation, .. }
            | SwarmError::NoLeader { operation, .. }
            | SwarmError::Timeout { operation } => *operation,
            SwarmError::OutOfSequence(_) | SwarmError::VersionOverflow(..) => {
                DockerCall::UpdateService
            }
            SwarmError::NeedsSsh(_) => DockerCall::DeleteNode,
        }
    }
}

/// Docker's answer to a write with a stale version index: someone else wrote
/// the object since it was read; read it again and retry.
pub(crate) fn is_out_of_sequence(error: &bollard::errors::Error) -> bool {
    matches!(error, bollard::errors::Error::DockerResponseServerError { message, .. } if message.contains("out of sequence"))
}

/// Docker's answers when the managers have no quorum: the daemon's own
/// message (moby `errNoQuorum`) and swarmkit's raft error it may pass on.
pub(crate) fn is_no_leader(error: &bollard::errors::Error) -> bool {
    matches!(error, bollard::errors::Error::DockerResponseServerError { message, .. }
        if message.contains("does not have a leader") || message.contains("no elected cluster leader"))
}

/// The error of a daemon that could not be reached at `host`.
fn unreachable(host: &str) -> impl Fn(bollard::errors::Error) -> SwarmError + '_ {
    move |source| SwarmError::Connect {
        host: host.to_string(),
        source,
    }
}

pub(crate) fn api(operation: DockerCall) -> impl FnOnce(bollard::errors::Error) -> SwarmError {
    move |source| {
        if matches!(source, bollard::errors::Error::RequestTimeoutError) {
            SwarmError::Timeout { operation }
        } else if is_no_leader(&source) {
            SwarmError::NoLeader { operation, source }
        } else {
            SwarmError::Api { operation, source }
        }
    }
}

/// A connection to one swarm manager, on behalf of one cluster spec.
#[derive(Debug, Clone)]
pub struct Swarm {
    docker: Docker,
    host: String,
    /// The manager's socket and the bound of one call, for the reads bollard's
    /// types cannot hold ([`services`]).
    socket: String,
    call_timeout: std::time::Duration,
    cluster: String,
    revision: Option<String>,
    writes: Arc<AtomicU64>,
}

impl Swarm {
    /// Connects to `host` (a `unix://` URL or a socket path), negotiates the API
    /// version (Debian ships API 1.41) and checks the daemon is a swarm manager.
    /// Every call made through the client then fails after `call_timeout`
    /// without an answer (a stream, once answered, may run longer).
    ///
    /// Every call goes over bollard's one pooled connection: through `--ssh`
    /// each new connection is an SSH channel, and a board's sshd opens only
    /// so many at once (`MaxSessions`). A socket on this machine may use
    /// [`Swarm::connect_local`] instead.
    pub async fn connect(
        host: &str,
        cluster: &str,
        call_timeout: std::time::Duration,
    ) -> Result<Self, SwarmError> {
        let path = socket_path(host)?;
        let docker = Docker::connect_with_unix(
            &path,
            call_timeout.as_secs().max(1),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(unreachable(host))?
        .negotiate_version()
        .await
        .map_err(|source| match source {
            bollard::errors::Error::RequestTimeoutError => SwarmError::Timeout {
                operation: DockerCall::Connect,
            },
            source => unreachable(host)(source),
        })?;
        Self::manager(docker, host, path, cluster, call_timeout).await
    }

    /// [`Swarm::connect`] for a socket on this machine, where a connection
    /// costs nothing: the version comes from `/_ping`'s header on a
    /// connection of its own, as the docker CLI negotiates it (bollard's
    /// negotiation reads `/version`, ten times slower).
    pub async fn connect_local(
        host: &str,
        cluster: &str,
        call_timeout: std::time::Duration,
    ) -> Result<Self, SwarmError> {
        let path = socket_path(host)?;
        let (major, minor) = match tokio::time::timeout(call_timeout, raw::api_version(&path)).await
        {
            Ok(version) => version.map_err(unreachable(host))?,
            Err(_) => {
                return Err(SwarmError::Timeout {
                    operation: DockerCall::Connect,
                })
            }
        };
        let version = services::negotiated(major, minor);
        let docker = Docker::connect_with_unix(&path, call_timeout.as_secs().max(1), &version)
            .map_err(unreachable(host))?;
        Self::manager(docker, host, path, cluster, call_timeout).await
    }

    /// The client, once the daemon answers for the swarm. Only a manager
    /// does (`/swarm`, cheap); `info` (slower) says what the daemon is
    /// instead, for the error.
    async fn manager(
        docker: Docker,
        host: &str,
        socket: String,
        cluster: &str,
        call_timeout: std::time::Duration,
    ) -> Result<Self, SwarmError> {
        tracing::debug!(host, api_version = %docker.client_version(), "connected to Docker");
        if docker.inspect_swarm().await.is_err() {
            let info = docker.info().await.map_err(api(DockerCall::Info))?;
            let swarm = info.swarm.unwrap_or_default();
            if swarm.control_available != Some(true) {
                let state = swarm
                    .local_node_state
                    .map_or_else(|| "unknown".to_string(), |s| s.to_string());
                return Err(SwarmError::NotManager {
                    host: host.to_string(),
                    state,
                });
            }
        }
        Ok(Self {
            docker,
            host: host.to_string(),
            socket,
            call_timeout,
            cluster: cluster.to_string(),
            revision: None,
            writes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Records the source revision (git commit) on objects written from now on.
    pub fn set_revision(&mut self, revision: Option<String>) {
        self.revision = revision;
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The cluster name this client judges ownership by.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Write calls made through this client so far, lease renewals excluded.
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn count_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
}

impl Swarm {
    /// The Swarm object's spec and the version to write it back at (the
    /// lease and the applied guard live in its labels).
    pub(super) async fn swarm_spec(&self) -> Result<(bollard::models::SwarmSpec, i64), SwarmError> {
        let swarm = self
            .docker
            .inspect_swarm()
            .await
            .map_err(api(DockerCall::InspectSwarm))?;
        let index = swarm.version.and_then(|v| v.index).unwrap_or(0);
        let version =
            i64::try_from(index).map_err(|_| SwarmError::VersionOverflow(index, "swarm".into()))?;
        Ok((swarm.spec.unwrap_or_default(), version))
    }

    /// Writes the Swarm object's spec back with the version it was read at:
    /// bookkeeping (lease, guard), counted apart from reconcile writes.
    pub(super) async fn write_swarm_spec(
        &self,
        spec: bollard::models::SwarmSpec,
        version: i64,
    ) -> Result<(), bollard::errors::Error> {
        let options = bollard::query_parameters::UpdateSwarmOptions {
            version,
            ..Default::default()
        };
        self.docker.update_swarm(spec, options).await
    }
}

impl Swarm {
    /// Tasks matching Docker's task filters, e.g. `[("node", id), ("desired-state", "running")]`.
    pub(crate) async fn tasks(
        &self,
        filters: &[(&str, &str)],
    ) -> Result<Vec<bollard::models::Task>, SwarmError> {
        let filters = filters
            .iter()
            .map(|(key, value)| (key.to_string(), vec![value.to_string()]))
            .collect();
        let options = bollard::query_parameters::ListTasksOptions {
            filters: Some(filters),
        };
        self.docker
            .list_tasks(Some(options))
            .await
            .map_err(api(DockerCall::ListTasks))
    }
}

fn socket_path(host: &str) -> Result<String, SwarmError> {
    if let Some(path) = host.strip_prefix("unix://") {
        Ok(path.to_string())
    } else if host.starts_with('/') {
        Ok(host.to_string())
    } else {
        Err(SwarmError::UnsupportedHost(host.to_string()))
    }
}

/// What a failed Docker call needs before trying again can help.
impl Classify for SwarmError {
    fn class(&self) -> ErrorClass {
        match self {
            SwarmError::Connect { .. }
            | SwarmError::Timeout { .. }
            | SwarmError::OutOfSequence(_)
            | SwarmError::NoLeader { .. } => ErrorClass::Retryable,
            SwarmError::UnsupportedHost(_)
            | SwarmError::NotManager { .. }
            | SwarmError::NeedsSsh(_) => ErrorClass::NeedsPerson,
            SwarmError::VersionOverflow(..) => ErrorClass::Bug,
            SwarmError::Api { source, .. } => api_class(source),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            SwarmError::Connect { .. } => "docker_unreachable",
            SwarmError::Timeout { .. } => "docker_timeout",
            SwarmError::UnsupportedHost(_) => "docker_host",
            SwarmError::NotManager { .. } => "not_a_manager",
            SwarmError::OutOfSequence(_) => "write_race",
            SwarmError::NoLeader { .. } => "no_leader",
            SwarmError::NeedsSsh(_) => "needs_ssh",
            SwarmError::VersionOverflow(..) => "version_overflow",
            SwarmError::Api { source, .. } => match api_class(source) {
                ErrorClass::Retryable => "docker_api",
                ErrorClass::NeedsPerson => "docker_refused",
                ErrorClass::Bug => "docker_unreadable",
            },
        }
    }
}

/// Docker refusing a request (4xx but "not found") needs a change; the
/// daemon failing (5xx) or the connection dropping may pass; a reply the
/// client cannot read is ours to fix.
fn api_class(error: &bollard::errors::Error) -> ErrorClass {
    use bollard::errors::Error;
    match error {
        Error::DockerResponseServerError { status_code, .. } => match status_code {
            404 | 409 | 500.. => ErrorClass::Retryable,
            _ => ErrorClass::NeedsPerson,
        },
        Error::JsonDataError { .. } | Error::JsonSerdeError { .. } => ErrorClass::Bug,
        _ => ErrorClass::Retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status_code: u16) -> SwarmError {
        SwarmError::Api {
            operation: super::DockerCall::CreateService,
            source: bollard::errors::Error::DockerResponseServerError {
                status_code,
                message: "x".into(),
            },
        }
    }

    #[test]
    fn docker_refusals_need_a_person_and_failures_are_retried() {
        assert_eq!(refused(400).class(), ErrorClass::NeedsPerson);
        assert_eq!(refused(400).reason(), "docker_refused");
        assert_eq!(refused(404).class(), ErrorClass::Retryable);
        assert_eq!(refused(409).class(), ErrorClass::Retryable);
        assert_eq!(refused(503).class(), ErrorClass::Retryable);
        assert_eq!(refused(503).reason(), "docker_api");
        assert_eq!(
            SwarmError::OutOfSequence("web".into()).class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            SwarmError::VersionOverflow(u64::MAX, "web".into()).class(),
            ErrorClass::Bug
        );
    }

    /// The body is verbatim what Docker 20.10 answered `GET /nodes` on a
    /// manager that had lost its majority (seen in tests/nodes.rs's boards).
    #[test]
    fn a_swarm_without_a_leader_is_named_as_such_and_retried() {
        let error = super::api(super::DockerCall::ListNodes)(
            bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message: "rpc error: code = Unknown desc = The swarm does not have a leader. \
                          It's possible that too few managers are online. Make sure more than \
                          half of the managers are online."
                    .into(),
            },
        );
        assert!(matches!(error, SwarmError::NoLeader { .. }), "{error:?}");
        assert_eq!(error.reason(), "no_leader");
        assert_eq!(error.class(), ErrorClass::Retryable);
        let message = error.to_string();
        assert!(message.contains("--force-new-cluster"), "{message}");
        assert!(
            message.contains("never initializes a new swarm"),
            "{message}"
        );
    }
}
