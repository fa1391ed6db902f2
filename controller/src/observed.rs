//! What the Swarm and the boards really are, in the controller's own terms.
//!
//! `swarm::observe` fills these from the Docker API, `node::facts` fills
//! [`Facts`] from each board over SSH; `plan` reads them. Service
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

/// Facts about one board, as it reports them over SSH (`node::facts`).
/// Pi-specific ones are reported when available.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub hostname: String,
    pub arch: String,
    pub os: String,
    pub docker_installed: bool,
    pub docker_running: bool,
    /// Docker runs but `docker info` did not answer within 10 s.
    pub docker_hung: bool,
    pub docker_version: Option<String>,
    /// `inactive`, `active`, `pending`, ... when Docker runs.
    pub swarm_state: Option<String>,
    pub swarm_node_id: Option<String>,
    pub model: Option<String>,
    pub throttled: Option<String>,
    pub temperature: Option<String>,
    /// sha256 of the managed block of /etc/hosts (of the empty string when absent).
    pub hosts_block: String,
    /// Members of the docker group.
    pub docker_group: Vec<String>,
    /// The cluster that initialized or joined this board, and as which swarm
    /// node (`/etc/reconciler/membership`, written right after the join).
    pub member_cluster: Option<String>,
    pub member_node_id: Option<String>,
    /// Docker keeps swarm state on disk (`/var/lib/docker/swarm`): when Docker
    /// is stopped, the board is probably still a swarm member and comes back
    /// as one once Docker starts.
    pub swarm_on_disk: bool,
    /// An installation was cut off (`/var/lib/dpkg/updates` is not empty):
    /// apt refuses to run until `dpkg --configure -a` finishes it.
    pub packages_interrupted: bool,
}

impl Facts {
    /// What the board's own Docker says about its swarm membership: the node
    /// ID (`None` outside a swarm), or `Err(())` when Docker cannot say (it
    /// is stopped, or the node is pending, locked or in error).
    #[allow(
        clippy::result_unit_err,
        reason = "no reason to give: the board simply cannot say"
    )]
    pub fn swarm_membership(&self) -> Result<Option<&str>, ()> {
        if !self.docker_running {
            return Err(());
        }
        match self.swarm_state.as_deref() {
            Some("active") => Ok(self.swarm_node_id.as_deref()),
            Some("inactive") => Ok(None),
            _ => Err(()),
        }
    }

    /// Whether the board's architecture satisfies the spec's `arch` (aliases accepted).
    pub fn arch_matches(&self, expected: &str) -> bool {
        let normalize = |a: &str| {
            match a {
                "aarch64" | "arm64" | "armv8" => "arm64",
                "armv7l" | "armv7" | "armhf" | "arm" => "armv7",
                "armv6l" | "armv6" => "armv6",
                "x86_64" | "amd64" => "amd64",
                other => other,
            }
            .to_string()
        };
        normalize(&self.arch) == normalize(expected)
    }
}
