//! What the Swarm and the boards really are, in the controller's own terms.
//!
//! `swarm::observe` fills these from the Docker API, `node::facts` fills
//! [`Facts`] from each board over SSH; `plan` reads them. Service
//! and network bodies reuse the spec model's types so that desired and observed
//! are compared field by field with one code path.

use std::collections::{BTreeMap, BTreeSet};

use reconciler_spec::{Availability, Network, Role, Service};
use serde::Serialize;

/// Declares an enum of Docker's own words: `as_str` (and `Display`, and
/// serde) give Docker's spelling, so text, JSON, metrics labels and the page
/// agree with `docker` itself. `swarm` converts Docker's answers into these
/// once, where they are read; nothing else matches Docker's text.
macro_rules! docker_words {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident => $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            /// Docker's own word for it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

docker_words! {
    /// A swarm node's state as the manager sees it (`docker node ls` STATUS).
    NodeState {
        /// The manager has not heard enough to say.
        Unknown => "unknown",
        /// The node stopped answering the managers' heartbeats.
        Down => "down",
        /// The node answers and takes tasks.
        Ready => "ready",
        /// The node's agent lost its session with the managers.
        Disconnected => "disconnected",
    }
}

docker_words! {
    /// Where a service's rolling update stands (`UpdateStatus.State`).
    UpdateState {
        /// Tasks are being replaced.
        Updating => "updating",
        /// Swarm paused the update (a task failed with `failure_action = "pause"`).
        Paused => "paused",
        /// Every task runs the new template.
        Completed => "completed",
        /// Swarm started rolling the update back.
        RollbackStarted => "rollback_started",
        /// Swarm paused the rollback.
        RollbackPaused => "rollback_paused",
        /// Swarm rolled the update back: the old template runs.
        RollbackCompleted => "rollback_completed",
    }
}

docker_words! {
    /// A task's state (`docker service ps` CURRENT STATE), in Swarm's order
    /// from created to gone.
    TaskState {
        /// Just created.
        New => "new",
        /// Resources (addresses) allocated.
        Allocated => "allocated",
        /// Waiting for a node that fits.
        Pending => "pending",
        /// Given to a node.
        Assigned => "assigned",
        /// The node took it.
        Accepted => "accepted",
        /// The node prepares it (pulls the image).
        Preparing => "preparing",
        /// Prepared, not started yet.
        Ready => "ready",
        /// Started; with a healthcheck, until it is healthy.
        Starting => "starting",
        /// Running (and healthy, with a healthcheck).
        Running => "running",
        /// Exited with status 0.
        Complete => "complete",
        /// Stopped on purpose.
        Shutdown => "shutdown",
        /// Exited with an error, or was unhealthy.
        Failed => "failed",
        /// The node could not run it (no such image, an invalid mount).
        Rejected => "rejected",
        /// Being removed.
        Remove => "remove",
        /// Its node went away while it ran.
        Orphaned => "orphaned",
    }
}

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

/// Which of the swarm's services an observation lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceScope {
    /// Every service: what judging other services needs (a port they hold,
    /// a config they name, a board's tasks with nowhere else to go).
    #[default]
    All,
    /// Only those with a cluster's label (this cluster's among them): enough
    /// to find a spec already applied (`pipeline::observe_and_plan` looks
    /// at the rest whenever the plan is not empty), at a fraction of the
    /// cost in a swarm busy with other stacks.
    Managed,
}

/// A snapshot of the swarm taken at the start of a reconcile.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    pub nodes: Vec<ObservedNode>,
    pub networks: BTreeMap<String, ObservedNetwork>,
    pub services: BTreeMap<String, ObservedService>,
    /// Whose services `services` holds.
    pub service_scope: ServiceScope,
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
    pub state: NodeState,
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
            .filter(|n| n.state == NodeState::Ready)
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
    /// The digest of the content it was created with (`io.reconciler.spec-hash`,
    /// the same digest as in a version's name), when this cluster made it.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObservedNetwork {
    pub id: String,
    pub owner: Owner,
    pub spec_hash: Option<String>,
    pub config: Network,
    /// No service uses it and tasks of removed services still reference
    /// it: Swarm removes a network whose removal it accepted only once
    /// those tasks are gone (swarmkit's `PendingDelete`, which the API does
    /// not show), so until then it is leaving, not something to delete.
    pub leaving: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObservedService {
    pub id: String,
    pub version: u64,
    pub owner: Owner,
    pub spec_hash: Option<String>,
    /// Where Docker's last rolling update stands; `None` when none ran.
    pub update_state: Option<UpdateState>,
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
    /// Docker on the board: absent, stopped, hung, or running with its own
    /// view of its swarm membership.
    pub docker: BoardDocker,
    pub model: Option<String>,
    pub throttled: Option<String>,
    pub temperature: Option<String>,
    /// sha256 of the managed block of /etc/hosts (of the empty string when absent).
    pub hosts_block: String,
    /// Members of the docker group.
    pub docker_group: Vec<String>,
    /// The board's login names (`getent passwd`); `None` when it could not say.
    pub users: Option<Vec<String>>,
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
    /// The architecture Docker itself was built for (`arm` on a 64-bit
    /// kernel with a 32-bit userland: it pulls `linux/arm/v7` images).
    pub docker_arch: Option<String>,
    /// Whether memory limits are enforced: Docker's `MemoryLimit`, or the
    /// kernel's memory cgroup without a running Docker (off on Raspberry Pi
    /// OS unless `cgroup_enable=memory` is on the kernel command line).
    pub memory_cgroup: Option<bool>,
    /// The board's clock, seconds since the epoch, when the facts were read.
    pub clock: Option<i64>,
    /// Whether the kernel has VXLAN (loaded, built in or as a module):
    /// overlay networks need it.
    pub vxlan: Option<bool>,
    pub iptables: Option<IptablesBackend>,
    /// Free space where Docker keeps its data (the raft log on a manager).
    pub disk: Option<DiskSpace>,
    /// `/proc/meminfo`'s total and available memory.
    pub memory: Option<MemorySize>,
    /// The 1-minute load average as `/proc/loadavg` writes it.
    pub load1: Option<String>,
    /// Seconds since the board booted (`/proc/uptime`, whole seconds).
    pub uptime_seconds: Option<u64>,
    /// `/var/run/reboot-required` exists: an upgrade waits for a reboot.
    pub reboot_required: bool,
    /// Packages apt would upgrade (from the lists it has; nothing is fetched).
    pub upgradable_packages: Option<u64>,
    /// The declared board configuration's side of the board
    /// (`node::config`): empty when the spec declares none and the cluster
    /// put nothing there.
    pub config: BoardState,
}

/// What a board has of its declared configuration, and what the cluster
/// put there before (its record on the board, `/etc/reconciler/owned`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BoardState {
    /// Installed or not, for every package declared or recorded.
    pub packages: BTreeMap<String, bool>,
    /// Every file declared or recorded, as it is on the board.
    pub files: BTreeMap<String, BoardFileState>,
    /// The packages the cluster installed.
    pub owned_packages: BTreeSet<String>,
    /// The files the cluster wrote, and whether one was there before.
    pub owned_files: BTreeMap<String, FileOrigin>,
    /// The board's text of declared files that differ, for the plan's diff
    /// (never for a file that holds a secret; at most 64 KiB).
    #[serde(skip)]
    pub contents: BTreeMap<String, Vec<u8>>,
    /// The firmware's boot files, when something is declared in them or the
    /// cluster put something there: `cmdline.txt` and `config.txt`.
    pub boot: BTreeMap<BootFile, BootFileText>,
    /// Kernel options, config.txt and fstab lines the cluster added.
    pub owned_boot: BTreeMap<BootFile, BTreeSet<String>>,
    /// Declared mount points not mounted now.
    pub unmounted: BTreeSet<String>,
}

/// A file read at boot where the board's settings are lines or options
/// among its own: the Raspberry Pi firmware's, and /etc/fstab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BootFile {
    /// The kernel's command line: one line of options.
    Cmdline,
    /// The firmware's settings: one per line.
    ConfigTxt,
    /// The file systems mounted at boot: one per line (`[board.mount]`,
    /// `[share]`); mounted at once too, so no reboot is needed.
    Fstab,
}

impl BootFile {
    /// As the board's record and the look script name it.
    pub fn as_str(self) -> &'static str {
        match self {
            BootFile::Cmdline => "cmdline",
            BootFile::ConfigTxt => "config_txt",
            BootFile::Fstab => "fstab",
        }
    }

    pub const ALL: [BootFile; 3] = [BootFile::Cmdline, BootFile::ConfigTxt, BootFile::Fstab];

    /// Where the board may have it, first found first.
    pub fn candidates(self) -> &'static [&'static str] {
        match self {
            BootFile::Cmdline => &["/boot/firmware/cmdline.txt", "/boot/cmdline.txt"],
            BootFile::ConfigTxt => &["/boot/firmware/config.txt", "/boot/config.txt"],
            BootFile::Fstab => &["/etc/fstab"],
        }
    }

    /// The file's name on the boot partition.
    pub fn file_name(self) -> &'static str {
        match self {
            BootFile::Cmdline => "cmdline.txt",
            BootFile::ConfigTxt => "config.txt",
            BootFile::Fstab => "fstab",
        }
    }
}

/// A boot file where the board has it, and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootFileText {
    pub path: String,
    #[serde(skip)]
    pub text: String,
}

/// One file on a board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardFileState {
    Missing,
    /// Something that is not a file (a directory): never replaced.
    NotAFile,
    File {
        mode: u32,
        owner: String,
        group: String,
        /// sha256 of the content, hex.
        digest: String,
    },
}

/// How a file the cluster wrote came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOrigin {
    /// There was none: removing it from the spec deletes it.
    Created,
    /// It replaced the board's own, kept aside: removing it from the spec
    /// puts that one back.
    Replaced,
}

/// The iptables back-end a board's `iptables` command writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IptablesBackend {
    NfTables,
    Legacy,
}

impl IptablesBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NfTables => "nf_tables",
            Self::Legacy => "legacy",
        }
    }
}

/// A board's memory: available (what a new process can get) and total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemorySize {
    pub available_bytes: u64,
    pub total_bytes: u64,
}

/// Free and total space of the file system Docker keeps its data on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskSpace {
    pub available_bytes: u64,
    pub total_bytes: u64,
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
        match &self.docker {
            BoardDocker::Running {
                swarm: LocalSwarm::Active { node_id },
                ..
            } => Ok(node_id.as_deref()),
            BoardDocker::Running {
                swarm: LocalSwarm::Inactive,
                ..
            } => Ok(None),
            _ => Err(()),
        }
    }

    /// Whether Docker is installed (running or not).
    pub fn docker_installed(&self) -> bool {
        self.docker != BoardDocker::Absent
    }

    /// Whether Docker runs and answers.
    pub fn docker_running(&self) -> bool {
        matches!(self.docker, BoardDocker::Running { .. })
    }

    /// The board's own view of its swarm membership, when Docker answers.
    pub fn local_swarm(&self) -> Option<&LocalSwarm> {
        match &self.docker {
            BoardDocker::Running { swarm, .. } => Some(swarm),
            _ => None,
        }
    }

    /// The swarm node ID the board's Docker reports, when it is in a swarm.
    pub fn swarm_node_id(&self) -> Option<&str> {
        match self.local_swarm()? {
            LocalSwarm::Active { node_id } => node_id.as_deref(),
            _ => None,
        }
    }

    /// Whether the board's architecture satisfies the spec's `arch` (aliases accepted).
    pub fn arch_matches(&self, expected: &str) -> bool {
        let normalize = |a: &str| reconciler_spec::canonical_arch(a).unwrap_or(a).to_string();
        normalize(&self.arch) == normalize(expected)
    }
}

/// Docker on a board, read once from its facts (`node::facts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum BoardDocker {
    /// Not installed.
    #[default]
    Absent,
    /// Installed, not running.
    Stopped,
    /// Running, but `docker info` did not answer within 10 s: no work is
    /// done on the board until it does.
    Hung,
    /// Running and answering.
    Running {
        /// The engine's version (`docker version`).
        version: Option<String>,
        /// Its own view of its swarm membership.
        swarm: LocalSwarm,
    },
}

/// A board's own view of its swarm membership (`docker info`'s
/// `Swarm.LocalNodeState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LocalSwarm {
    /// In no swarm.
    Inactive,
    /// A member, as this node.
    Active {
        /// The swarm node ID (empty output reads as `None`).
        node_id: Option<String>,
    },
    /// Joining, or unable to reach its managers.
    Pending,
    /// In error.
    Error,
    /// Locked (autolock): a person must unlock it.
    Locked,
    /// A state this version does not know, as Docker printed it (empty when
    /// it printed nothing).
    Other {
        /// Docker's word.
        word: String,
    },
}

impl LocalSwarm {
    /// From Docker's word for it and the node ID it printed.
    pub fn from_docker(state: &str, node_id: Option<String>) -> Self {
        match state {
            "inactive" => LocalSwarm::Inactive,
            "active" => LocalSwarm::Active { node_id },
            "pending" => LocalSwarm::Pending,
            "error" => LocalSwarm::Error,
            "locked" => LocalSwarm::Locked,
            other => LocalSwarm::Other {
                word: other.to_string(),
            },
        }
    }

    /// Docker's word for it.
    pub fn as_str(&self) -> &str {
        match self {
            LocalSwarm::Inactive => "inactive",
            LocalSwarm::Active { .. } => "active",
            LocalSwarm::Pending => "pending",
            LocalSwarm::Error => "error",
            LocalSwarm::Locked => "locked",
            LocalSwarm::Other { word } => word,
        }
    }
}

/// A service of the cluster whose tasks do not all run: written as the
/// spec says, yet not running as it says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unconverged {
    pub service: String,
    pub running: u64,
    pub desired: u64,
    /// The newest task error, when there is one.
    pub error: Option<String>,
}
