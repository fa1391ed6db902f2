//! The file format users write, as serde types.
//!
//! These mirror the TOML exactly (strict: unknown keys are errors) and keep
//! spans on values that later checks point at. The planner never sees them:
//! `lower` converts them into [`crate::model`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[cluster]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterFile {
    pub name: Spanned<String>,
}

/// `[controller]`: how `reconciler run` and `apply` behave for this cluster.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControllerFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<ControllerModeFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_delete_fraction: Option<Spanned<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_node_grace: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ControllerModeFile {
    Apply,
    Observe,
}

/// `[ssh]` defaults, and the per-node `ssh = {...}` override.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SshFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
}

/// `[bootstrap]`: what a bare board gets before it joins.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BootstrapFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts_file: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_docker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_docker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_users: Option<Vec<Spanned<String>>>,
}

/// `[node.NAME]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeFile {
    pub address: Spanned<String>,
    pub role: RoleFile,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<Spanned<String>, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
    /// This board's own configuration, over `[board]`'s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board: Option<BoardSection>,
}

/// `[maintenance]`: how `reconciler upgrade` keeps the boards' systems up
/// to date, one board (or a few workers) at a time.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaintenanceFile {
    /// The root command that upgrades a board's packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reboot: Option<RebootFile>,
    /// Workers drained at once (managers: always one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<Spanned<u32>>,
    /// How long a drained board's tasks may take to leave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<Spanned<String>>,
    /// How long a rebooting board may take to answer again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_timeout: Option<Spanned<String>>,
    /// When `reconciler run --ssh` upgrades boards by itself (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Spanned<String>>,
    /// Unused images older than this are removed from the boards by `run --ssh`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune_images: Option<Spanned<String>>,
    /// Critical board conditions that drain the board's node under `run --ssh`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drain_on: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RebootFile {
    WhenRequired,
    Always,
    Never,
}

/// `[board]` (every board) and `[node.NAME.board]` (one): what a board
/// carries besides Docker.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BoardSection {
    /// Debian packages installed (apt).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Spanned<String>>,
    /// Debian packages removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent_packages: Vec<Spanned<String>>,
    /// Kernel parameters, set now and at every boot.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctl: BTreeMap<Spanned<String>, Spanned<SysctlValueFile>>,
    /// Kernel modules, loaded now and at every boot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<Spanned<String>>,
    /// Options the kernel command line (`cmdline.txt`) must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmdline: Vec<Spanned<String>>,
    /// Lines `config.txt` must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_txt: Vec<Spanned<String>>,
    /// Docker's `daemon.json`, as a table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_daemon: Option<Spanned<toml::Table>>,
    /// Files by absolute path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub file: BTreeMap<Spanned<String>, BoardFileEntry>,
    /// File systems mounted now and at every boot, by mount point.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mount: BTreeMap<Spanned<String>, BoardMountEntry>,
}

/// `[board.mount."/mnt/usb"]`: an /etc/fstab line the cluster owns.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BoardMountEntry {
    /// What is mounted: `/dev/sda1`, `LABEL=usb`, `server:/path`.
    pub what: Spanned<String>,
    /// The file system type (`auto` when left out).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub fstype: Option<Spanned<String>>,
    /// Mount options (`defaults,nofail` when left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Spanned<String>>,
}

/// A sysctl value: `1` or `"1"`, `"4096 87380 6291456"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum SysctlValueFile {
    Number(i64),
    Text(String),
}

/// `[board.file."/etc/motd"]`: one of `content`, `source` (a file of the
/// spec) or `secret` (a `[secret.NAME]` with a file).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BoardFileEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<Spanned<String>>,
    /// Octal, like `"0644"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Spanned<String>>,
    /// `user` or `user:group`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Spanned<String>>,
    /// A root command run after the file changed (`systemctl restart x`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RoleFile {
    Manager,
    Worker,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AvailabilityFile {
    Active,
    Pause,
    Drain,
}

/// `[share.NAME]`: a directory one board serves over NFS, mounted by
/// others.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareFile {
    /// The node that exports it.
    pub server: Spanned<String>,
    /// The directory on the server.
    pub path: Spanned<String>,
    /// Where the clients mount it (the same path when left out).
    pub mount: Option<Spanned<String>>,
    /// The nodes that mount it (every other node when left out).
    pub clients: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub read_only: bool,
    /// Clients' root maps to nobody on the share (off by default: Swarm
    /// tasks mostly run as root).
    #[serde(default)]
    pub root_squash: bool,
}

/// `[network.NAME]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<Spanned<String>, String>,
    /// Driver options (compose `driver_opts`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<Spanned<String>, String>,
    /// IPAM subnets in CIDR form (compose `ipam.config[].subnet`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<Spanned<String>>,
    /// IPAM driver (compose `ipam.driver`); Docker's `default` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipam_driver: Option<Spanned<String>>,
    /// A network created outside the spec; `name` is its Swarm name when it
    /// differs from the entry's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Spanned<String>>,
    /// Where a rendered network came from (`"release.NAME"` or `"stack.NAME"`);
    /// written by `reconciler render` so its output loads back unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Spanned<String>>,
}

/// `[service.NAME]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceFile {
    pub image: Spanned<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Spanned<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Spanned<ServiceModeFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<Spanned<String>, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset_env: Vec<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin_open: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<Spanned<String>, String>,
    /// `"host:ip"` entries for the containers' /etc/hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<Spanned<String>, UlimitFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_mode: Option<EndpointModeFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_replicas_per_node: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<Spanned<FileRefFile>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Spanned<FileRefFile>>,
    /// Extra DNS names of the service on some of its networks (network →
    /// names): how a stack's services find each other by short name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub network_aliases: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Spanned<PortFile>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Spanned<MountFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<UpdateFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Spanned<HealthcheckFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<Spanned<String>, String>,
    /// Labels on the service's containers (compose's service-level `labels`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub container_labels: BTreeMap<Spanned<String>, String>,
    /// Where a rendered service came from; see [`NetworkFile::origin`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ServiceModeFile {
    Replicated,
    Global,
    /// Tasks that run to completion: `replicas` of them, as many at once.
    ReplicatedJob,
    /// One task to completion on every eligible node.
    GlobalJob,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PortFile {
    pub target: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<PublishModeFile>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProtocolFile {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PublishModeFile {
    Ingress,
    Host,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MountFile {
    #[serde(rename = "type")]
    pub kind: MountKindFile,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    /// Volumes only: the driver that creates the volume on a node where it
    /// does not exist yet (`local` with NFS options for a shared drive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_options: BTreeMap<String, String>,
    /// Volumes only: labels of a volume the mount creates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_labels: BTreeMap<String, String>,
    /// Volumes only: do not copy the image's files into a new volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nocopy: Option<bool>,
    /// Tmpfs only: its size (`"64M"`, or bytes); unlimited when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MountKindFile {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourcesFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_memory: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserve_memory: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_cpus: Option<Spanned<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserve_cpus: Option<Spanned<f64>>,
    /// Generic resources a node must advertise (`dockerd --node-generic-resource`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserve_generic: Vec<Spanned<GenericResourceFile>>,
}

/// `{ kind = "gpu", value = 2 }`: a count of a node's discrete resource.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenericResourceFile {
    pub kind: String,
    pub value: i64,
}

/// `update = {...}` and `rollback = {...}` share one shape, as in Docker.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<Spanned<FailureActionFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_failure_ratio: Option<Spanned<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<UpdateOrderFile>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FailureActionFile {
    Pause,
    Continue,
    Rollback,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum UpdateOrderFile {
    StopFirst,
    StartFirst,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthcheckFile {
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestartFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<RestartConditionFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RestartConditionFile {
    None,
    OnFailure,
    Any,
}

/// `[release.NAME]`: a chart instance, rendered into services and networks.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseFile {
    pub chart: Spanned<String>,
    /// Keys are spanned so a value the chart does not take is reported where it is written.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<Spanned<String>, toml::Value>,
}

/// A ulimit: one number (soft and hard alike) or both.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum UlimitFile {
    Single(i64),
    Pair { soft: i64, hard: i64 },
}

/// `logging = { driver = "json-file", options = { max-size = "10m" } }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoggingFile {
    pub driver: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EndpointModeFile {
    Vip,
    Dnsrr,
}

/// `[config.NAME]`: a file of the spec (`file`) or inline text (`content`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// The Swarm config's name, when it differs from the entry's: the
    /// external one's, or one fixed for this content (no `-<hash>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Spanned<String>>,
    /// `"golang"`: Swarm renders the content as a Go template for each task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<Spanned<String>, String>,
    /// Where a rendered config came from; see [`NetworkFile::origin`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Spanned<String>>,
}

/// `[secret.NAME]`: a file of the spec (`file`), or `external = true`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// The Swarm secret's name, when it differs from the entry's: the
    /// external one's, or one fixed for this content (no `-<hash>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Spanned<String>>,
    /// As [`ConfigFile::template_driver`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<Spanned<String>>,
    /// With `file`: how the file is encrypted (decrypted in memory on load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Spanned<crate::sealed::Encryption>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<Spanned<String>, String>,
    /// Where a rendered secret came from; see [`NetworkFile::origin`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Spanned<String>>,
}

/// A config or secret as a file in a service's containers.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRefFile {
    pub source: Spanned<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// `[stack.NAME]`: a compose v3 file, deployed as `docker stack deploy` would.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StackFile {
    pub compose: Spanned<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_file: Option<Spanned<String>>,
}
