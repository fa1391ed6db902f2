//! What a failure needs before trying again can succeed, decided once, on
//! each error type (as kube-runtime's `error_policy` does), never by reading
//! error text.
//!
//! The long-running loop retries [`ErrorClass::Retryable`] failures with
//! backoff, waits for a person (a new revision, or the resync interval) on
//! [`ErrorClass::NeedsPerson`], and reports [`ErrorClass::Bug`] loudly. The
//! class and a low-cardinality reason label `reconciler_reconcile_errors_total`
//! and appear in `/api/status`.

use serde::Serialize;

/// What it takes for the next attempt to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// A passing condition (Docker or a board unreachable, a write race, a
    /// service still starting): trying again soon may succeed.
    Retryable,
    /// Only a change by a person helps (the spec, a host key, a refused
    /// plan); retrying at once would repeat the same failure.
    NeedsPerson,
    /// Reconciler itself is wrong (it cannot read what Docker sent); report it.
    Bug,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 3] = [
        ErrorClass::Retryable,
        ErrorClass::NeedsPerson,
        ErrorClass::Bug,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::NeedsPerson => "needs_person",
            ErrorClass::Bug => "bug",
        }
    }
}

/// An error that knows what it needs.
pub trait Classify {
    fn class(&self) -> ErrorClass;
    /// A short, fixed name of the failure (`docker_unreachable`, `mass_delete`,
    /// ...) for metrics labels: never built from error text.
    fn reason(&self) -> &'static str;
}

impl Classify for crate::swarm::SwarmError {
    fn class(&self) -> ErrorClass {
        use crate::swarm::SwarmError;
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
        use crate::swarm::SwarmError;
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

impl Classify for crate::plan::PlanError {
    /// Every refused plan waits for a person: that is why it was refused.
    fn class(&self) -> ErrorClass {
        ErrorClass::NeedsPerson
    }

    fn reason(&self) -> &'static str {
        use crate::plan::PlanError;
        match self {
            PlanError::NotOurs { .. } => "not_ours",
            PlanError::MassDelete { .. } => "mass_delete",
            PlanError::NetworkChanged { .. } => "network_changed",
            PlanError::LastManager { .. } => "last_manager",
            PlanError::Quorum { .. } => "quorum",
            PlanError::AmbiguousNode { .. } => "ambiguous_node",
            PlanError::SharedSwarmNode { .. } => "shared_swarm_node",
            PlanError::NodeOfOtherCluster { .. } => "node_of_other_cluster",
            PlanError::MissingExternalSecret { .. } => "missing_external_secret",
            PlanError::MissingExternalConfig { .. } => "missing_external_config",
            PlanError::MissingExternalNetwork { .. } => "missing_external_network",
        }
    }
}

impl Classify for crate::apply::ApplyError {
    fn class(&self) -> ErrorClass {
        use crate::apply::ApplyError;
        match self {
            ApplyError::Action { source, .. } => source.class(),
            // Swarm rolled the update back: the same spec would roll back again.
            ApplyError::Failed { .. } => ErrorClass::NeedsPerson,
            ApplyError::Timeout { .. } | ApplyError::Node { .. } | ApplyError::LeaseLost { .. } => {
                ErrorClass::Retryable
            }
            ApplyError::NotLeft { source, .. } => source.class(),
        }
    }

    fn reason(&self) -> &'static str {
        use crate::apply::ApplyError;
        match self {
            ApplyError::Action { source, .. } => source.reason(),
            ApplyError::Failed { .. } => "rolled_back",
            ApplyError::Timeout { .. } => "not_converged",
            ApplyError::Node { .. } => "node_removal",
            ApplyError::LeaseLost { .. } => "lease_lost",
            ApplyError::NotLeft { source, .. } => source.reason(),
        }
    }
}

impl Classify for crate::source::SourceError {
    fn class(&self) -> ErrorClass {
        use crate::source::SourceError;
        match self {
            SourceError::Git { .. } | SourceError::Cache { .. } => ErrorClass::Retryable,
            SourceError::MissingPath { .. } => ErrorClass::NeedsPerson,
            SourceError::Dir(error) => error.class(),
        }
    }

    fn reason(&self) -> &'static str {
        use crate::source::SourceError;
        match self {
            SourceError::Git { .. } => "git",
            SourceError::Cache { .. } => "git_cache",
            SourceError::MissingPath { .. } => "missing_path",
            SourceError::Dir(error) => error.reason(),
        }
    }
}

impl Classify for reconciler_spec::LoadError {
    fn class(&self) -> ErrorClass {
        use reconciler_spec::LoadError;
        match self {
            LoadError::Io { .. } => ErrorClass::Retryable,
            LoadError::NoFiles(_) | LoadError::Invalid(_) | LoadError::Refused { .. } => {
                ErrorClass::NeedsPerson
            }
        }
    }

    fn reason(&self) -> &'static str {
        use reconciler_spec::LoadError;
        match self {
            LoadError::Io { .. } => "spec_unreadable",
            LoadError::NoFiles(_) => "no_spec_files",
            LoadError::Invalid(_) => "invalid_spec",
            LoadError::Refused { .. } => "spec_file_refused",
        }
    }
}

impl Classify for crate::node::NodeError {
    fn class(&self) -> ErrorClass {
        use crate::node::NodeError;
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
        use crate::node::NodeError;
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

impl Classify for crate::node::provision::ProvisionError {
    fn class(&self) -> ErrorClass {
        use crate::node::provision::ProvisionError;
        use crate::plan::boards::BootstrapError;
        match self {
            ProvisionError::Bootstrap(
                BootstrapError::ArchMismatch { .. } | BootstrapError::InAnotherSwarm { .. },
            ) => ErrorClass::NeedsPerson,
            // A manager that is down or rebooting comes back by itself.
            ProvisionError::Bootstrap(
                BootstrapError::NoManager | BootstrapError::ManagersUnreached { .. },
            )
            | ProvisionError::NoSwarm => ErrorClass::Retryable,
        }
    }

    fn reason(&self) -> &'static str {
        use crate::node::provision::ProvisionError;
        use crate::plan::boards::BootstrapError;
        match self {
            ProvisionError::Bootstrap(BootstrapError::ArchMismatch { .. }) => "arch_mismatch",
            ProvisionError::Bootstrap(BootstrapError::NoManager) => "no_manager",
            ProvisionError::Bootstrap(BootstrapError::ManagersUnreached { .. }) => {
                "managers_unreached"
            }
            ProvisionError::Bootstrap(BootstrapError::InAnotherSwarm { .. }) => "in_another_swarm",
            ProvisionError::NoSwarm => "no_swarm",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanError;
    use crate::swarm::SwarmError;

    fn refused(status_code: u16) -> SwarmError {
        SwarmError::Api {
            operation: crate::swarm::DockerCall::CreateService,
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
        let error = crate::swarm::api(crate::swarm::DockerCall::ListNodes)(
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

    #[test]
    fn a_refused_plan_waits_for_a_person() {
        let error = PlanError::MassDelete {
            kind: crate::plan::ObjectKind::Service,
            deletes: 3,
            total: 4,
            fraction: 0.5,
            from_last_applied: false,
        };
        assert_eq!(error.class(), ErrorClass::NeedsPerson);
        assert_eq!(error.reason(), "mass_delete");
    }
}
