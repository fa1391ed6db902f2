//! What `/api/status` shows: the controller's view of the cluster, for people
//! and scripts. Never holds secrets (env values, tokens, webhook secret).

use serde::Serialize;

use crate::plan::Summary;

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
    /// `apply` or `observe`.
    pub mode: String,
    pub suspended: bool,
    /// `held`, `held by <holder>` or `unknown`.
    pub lease: String,
    pub docker_reachable: bool,
    pub last_reconcile: Option<ReconcileStatus>,
    pub last_success_at: Option<u64>,
    pub last_error: Option<String>,
    /// Changes the last plan wanted (the only output in observe mode).
    pub pending: Vec<String>,
    pub nodes: Vec<NodeStatus>,
    pub services: Vec<ServiceStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconcileStatus {
    /// success, error, refused, invalid_spec, standby.
    pub result: String,
    /// What started it: startup, timer, webhook, file, docker-event.
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
