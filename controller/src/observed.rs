//! What the Swarm really is, in the controller's own terms.
//!
//! `swarm::observe` fills these from the Docker API; `plan` reads them. Service
//! and network bodies reuse the spec model's types so that desired and observed
//! are compared field by field with one code path.

use std::collections::BTreeMap;

use reconciler_spec::{Availability, Network, Role, Service};
use serde::Serialize;

/// Who owns an object, according to its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "cluster")]
pub enum Owner {
    /// Carries our `managed-by` label and this cluster's name: ours to change.
    ThisCluster,
    /// Managed by a Reconciler for another cluster name: never touched.
    OtherCluster(String),
    /// Created by someone else (CLI, stack deploy, ...): never touched.
    Unmanaged,
}

/// A snapshot of the swarm taken at the start of a reconcile.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    pub nodes: Vec<ObservedNode>,
    pub networks: BTreeMap<String, ObservedNetwork>,
    pub services: BTreeMap<String, ObservedService>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObservedNode {
    pub id: String,
    /// Swarm's object version, needed to write the node.
    pub version: u64,
    pub hostname: String,
    pub address: String,
    pub role: Role,
    pub availability: Availability,
    pub labels: BTreeMap<String, String>,
    /// `ready`, `down`, `disconnected` or `unknown`.
    pub state: String,
    /// For managers: whether the raft member is reachable.
    pub manager_reachable: Option<bool>,
    pub leader: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObservedNetwork {
    pub id: String,
    pub owner: Owner,
    pub spec_hash: Option<String>,
    pub config: Network,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObservedService {
    pub id: String,
    pub version: u64,
    pub owner: Owner,
    pub spec_hash: Option<String>,
    /// Docker's update status (`updating`, `completed`, `rollback_completed`, ...).
    pub update_state: Option<String>,
    /// The managed fields as read back; `after` is always empty (it lives only in the spec).
    pub config: Service,
}
