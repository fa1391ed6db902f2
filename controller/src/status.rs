//! What `/api/status` shows: the controller's view of the cluster, for people
//! and scripts. Never holds secrets (env values, tokens, webhook secret).

use serde::Serialize;

use crate::plan::Summary;
use crate::runtime::ReconcileResult;

/// Who holds the one-writer lease, as this controller last saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Not asked yet (nothing has needed writing).
    #[default]
    Unknown,
    /// This controller.
    Held,
    /// Another controller, by its holder id.
    HeldBy(String),
}

impl std::fmt::Display for LeaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseStatus::Unknown => f.write_str("unknown"),
            LeaseStatus::Held => f.write_str("held"),
            LeaseStatus::HeldBy(holder) => write!(f, "held by {holder}"),
        }
    }
}

/// In JSON as in text: `"held"`, `"held by <holder>"`, `"unknown"`.
impl Serialize for LeaseStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// The source, credentials redacted.
    pub source: String,
    /// The revision whose spec is being reconciled (the last good one).
    pub revision: Option<String>,
    /// The newest revision fetched, which may have been refused.
    pub fetched_revision: Option<String>,
    pub spec_valid: bool,
    /// Why the newest revision was refused, with file:line:col of each problem.
    pub spec_error: Option<String>,
    /// `apply` or `observe`; absent until the first plan.
    pub mode: Option<reconciler_spec::ControllerMode>,
    pub suspended: bool,
    pub lease: LeaseStatus,
    pub docker_reachable: bool,
    pub last_reconcile: Option<ReconcileStatus>,
    pub last_success_at: Option<u64>,
    /// The last failure, until a reconcile succeeds.
    pub last_error: Option<ErrorStatus>,
    /// Why the last fetch of the source failed, until a fetch succeeds: the
    /// last good revision is still reconciled meanwhile, so a successful
    /// reconcile must not hide that the source is out of reach.
    pub source_error: Option<ErrorStatus>,
    /// Changes the last plan wanted (the only output in observe mode).
    pub pending: Vec<String>,
    pub nodes: Vec<NodeStatus>,
    pub services: Vec<ServiceStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconcileStatus {
    pub result: ReconcileResult,
    /// What started it: startup, timer, webhook, file, docker-event, events-lost.
    pub triggers: Vec<String>,
    pub started_at: u64,
    pub duration_ms: u64,
    pub plan: Summary,
    pub drift: usize,
    pub writes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub hostname: String,
    pub role: String,
    pub availability: String,
    pub state: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `None` for a global service.
    pub desired: Option<u64>,
    pub running: u64,
    pub in_spec: bool,
}

/// A failure as people and scripts see it: the message, and what it needs.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorStatus {
    pub message: String,
    /// `retryable` (retried with backoff), `needs_person` (waits for a
    /// change), or `bug`.
    pub class: crate::failure::ErrorClass,
    /// A short fixed name, as in `reconciler_reconcile_errors_total`.
    pub reason: &'static str,
}
