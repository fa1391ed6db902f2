//! The vocabulary of one reconcile: what starts it ([`Trigger`]) and how it
//! ended ([`ReconcileResult`]). A leaf module, so the loop that runs
//! reconciles (`runtime`) and the surfaces that show them (`http`, `status`,
//! `metrics`, the page) share these types without depending on each other.

/// Why the loop should look again. Carries no instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The controller just started.
    Startup,
    /// The periodic resync (and git poll).
    Timer,
    /// A verified push webhook.
    Webhook,
    /// A file changed in the watched spec directory.
    FileChanged,
    /// A service or node event from Docker.
    DockerEvent,
    /// Docker's event stream broke (with `--ssh`, often the tunnel's board):
    /// a reconcile now reconnects rather than waiting for the resync timer.
    EventsLost,
    /// A batch of the rolling upgrade under `run` finished: the next one
    /// is looked at now rather than at the resync.
    Upkeep,
}

impl Trigger {
    /// The trigger's one spelling (logs, `/api/status`, the page).
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Timer => "timer",
            Trigger::Webhook => "webhook",
            Trigger::FileChanged => "file",
            Trigger::DockerEvent => "docker-event",
            Trigger::EventsLost => "events-lost",
            Trigger::Upkeep => "upkeep",
        }
    }
}

/// How one reconcile ended: the `result` of `reconciler_reconciles_total`,
/// of `/api/status` and of the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileResult {
    /// The swarm matches the spec (or the plan was applied, or only reported).
    Success,
    /// Something failed on the way (Docker, the source, a board, an apply).
    Error,
    /// The plan was refused for safety (mass delete, quorum, not ours, ...).
    Refused,
    /// No valid spec revision is loaded yet.
    InvalidSpec,
    /// Another controller holds the lease; this one only observed.
    Standby,
}

impl ReconcileResult {
    /// Every result, so each counter series exists from the start.
    pub const ALL: [ReconcileResult; 5] = [
        ReconcileResult::Success,
        ReconcileResult::Error,
        ReconcileResult::Refused,
        ReconcileResult::InvalidSpec,
        ReconcileResult::Standby,
    ];

    /// The result's one spelling (the metrics label, `/api/status`, the page).
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Error => "error",
            ReconcileResult::Refused => "refused",
            ReconcileResult::InvalidSpec => "invalid_spec",
            ReconcileResult::Standby => "standby",
        }
    }
}
