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
