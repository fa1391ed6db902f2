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
    /// Swarm configs and secrets by their Swarm name (one per version).
    pub configs: BTreeMap<String, ObservedData>,
    pub secrets: BTreeMap<String, ObservedData>,
    /// What the spec's boards said about themselves over SSH (only with
    /// `--ssh`), by spec node name: the strongest evidence of which swarm node
    /// a board is.
    pub boards: BTreeMap<String, BoardIdentity>,
    /// The controller's clock when the snapshot was taken (`None` in tests
    /// that do not care): how long a down node has been down.
    pub observed_at: Option<std::time::SystemTime>,
    /// The `max_delete_fraction` of the last applied revision (recorded on
    /// the Swarm object): the guard uses the stricter of it and the spec's.
    pub applied_max_delete_fraction: Option<f64>,
}

/// Which swarm node a board is, in its own words (`docker info` over SSH).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BoardIdentity {
    /// The swarm node ID the board's Docker reports; `None` outside a swarm.
    pub node_id: Option<String>,
    /// The board records that this cluster initialized or joined it as
    /// `node_id` (`/etc/reconciler/membership`): the cluster may claim it.
    pub joined_by_this_cluster: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObservedNode {
    pub id: String,
    /// Swarm's object version, needed to write the node.
    pub version: u64,
    pub hostname: String,
    pub address: String,
    /// The machine as Docker reports it (`x86_64`, `aarch64`, `armv7l`).
    pub architecture: String,
    /// The node's Docker version.
    pub engine_version: String,
    pub role: Role,
    pub availability: Availability,
    pub labels: BTreeMap<String, String>,
    /// `ready`, `down`, `disconnected` or `unknown`.
    pub state: String,
    /// For managers: whether the raft member is reachable.
    pub manager_reachable: Option<bool>,
    pub leader: bool,
    /// When Swarm last changed the node object (a status change counts): how
    /// long a down node has been down, at least.
    pub updated_at: Option<std::time::SystemTime>,
}

impl Observed {
    /// The IDs of the nodes Swarm reports `ready`: a board whose node is not
    /// among them is asked for its facts again.
    pub fn ready_node_ids(&self) -> std::collections::BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| n.state == "ready")
            .map(|n| n.id.clone())
            .collect()
    }
}

/// A Swarm config or secret: who owns it. Its content is never read back
/// (Docker does not return a secret's), its name carries its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedData {
    pub id: String,
    pub owner: Owner,
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
