//! The validated desired state the planner works on.
//!
//! Every value here has passed validation: names are well-formed, references
//! resolve, durations and sizes are parsed. Types derive `Serialize` so the
//! controller can print them and hash them canonically.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

/// A whole cluster: the merge of every `*.toml` file in a spec directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spec {
    pub cluster: Cluster,
    pub controller: ControllerSettings,
    pub ssh: SshSettings,
    pub bootstrap: Bootstrap,
    pub maintenance: Maintenance,
    pub nodes: BTreeMap<String, Node>,
    pub networks: BTreeMap<String, Network>,
    pub services: BTreeMap<String, Service>,
    pub configs: BTreeMap<String, Config>,
    pub secrets: BTreeMap<String, Secret>,
    pub releases: BTreeMap<String, Release>,
    pub stacks: BTreeMap<String, Stack>,
    /// Things worth knowing that do not stop the spec (compose keys Swarm ignores, ...).
    pub warnings: Vec<crate::Diagnostic>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// Written on every object the controller owns, so two clusters sharing
    /// one swarm never prune each other's objects.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ControllerMode {
    /// Correct drift.
    Apply,
    /// Only report drift.
    Observe,
}

impl ControllerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ControllerMode::Apply => "apply",
            ControllerMode::Observe => "observe",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControllerSettings {
    /// Resync period of `reconciler run`, even without triggers.
    pub interval: Duration,
    /// Remove managed objects that left the spec.
    pub prune: bool,
    pub mode: ControllerMode,
    /// A plan deleting a larger share of the managed services is refused.
    pub max_delete_fraction: f64,
    /// Stop writing, keep observing.
    pub suspend: bool,
    /// How long a node that left the spec (or a stale object of a re-flashed
    /// board) must have been down before its object is removed. A down board
    /// is never asked to leave over SSH: it may come back as somebody else.
    pub down_node_grace: Duration,
}

/// `down_node_grace` when the spec sets none.
pub const DEFAULT_DOWN_NODE_GRACE: Duration = Duration::from_secs(3600);

/// The resync interval of `[controller]` when the spec sets none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            prune: true,
            mode: ControllerMode::Apply,
            max_delete_fraction: 0.5,
            suspend: false,
            down_node_grace: DEFAULT_DOWN_NODE_GRACE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshSettings {
    pub user: String,
    pub port: u16,
    pub identity: String,
    pub known_hosts: String,
}

impl Default for SshSettings {
    fn default() -> Self {
        Self {
            user: "pi".into(),
            port: 22,
            identity: "~/.ssh/id_ed25519".into(),
            known_hosts: "~/.ssh/known_hosts".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bootstrap {
    pub hostname: bool,
    pub hosts_file: bool,
    pub install_docker: String,
    pub start_docker: String,
    pub docker_users: Vec<String>,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Self {
            hostname: true,
            hosts_file: true,
            install_docker: "apt-get update && apt-get install -y docker.io".into(),
            start_docker: "systemctl enable --now docker".into(),
            docker_users: Vec::new(),
        }
    }
}

/// `[maintenance]`: how `reconciler upgrade` upgrades the boards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    /// Run as root on each board in turn.
    pub upgrade: String,
    pub reboot: RebootPolicy,
    /// Workers drained at once; managers go one at a time.
    pub max_unavailable: u32,
    pub drain_timeout: Duration,
    pub boot_timeout: Duration,
    /// When `reconciler run --ssh` upgrades boards by itself; without one
    /// only `reconciler upgrade` does.
    pub window: Option<crate::Window>,
    /// Critical conditions that drain a board's node under `run --ssh`
    /// until they clear.
    pub drain_on: Vec<DrainCondition>,
    /// With a value, `run --ssh` removes images no container uses that
    /// were created longer ago than this from every board (hourly).
    pub prune_images: Option<Duration>,
}

/// A critical board condition `[maintenance] drain_on` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrainCondition {
    /// Less than 512 MiB free for Docker's data.
    DiskFull,
    /// Under-voltage now (`vcgencmd get_throttled` bit 0).
    UnderVoltage,
}

impl DrainCondition {
    pub const ALL: [DrainCondition; 2] = [DrainCondition::DiskFull, DrainCondition::UnderVoltage];

    /// As written in the spec and in the node's label.
    pub fn as_str(self) -> &'static str {
        match self {
            DrainCondition::DiskFull => "disk-full",
            DrainCondition::UnderVoltage => "under-voltage",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// When a board is rebooted after its upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebootPolicy {
    /// When the upgrade left `/var/run/reboot-required` (a new kernel, libc).
    WhenRequired,
    Always,
    Never,
}

impl Default for Maintenance {
    fn default() -> Self {
        Self {
            upgrade: "apt-get update -qq && apt-get -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dist-upgrade".into(),
            reboot: RebootPolicy::WhenRequired,
            max_unavailable: 1,
            drain_timeout: Duration::from_secs(300),
            boot_timeout: Duration::from_secs(600),
            window: None,
            drain_on: Vec::new(),
            prune_images: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    Active,
    Pause,
    Drain,
}

/// A board. In the swarm it is matched by hostname (the node's name) or address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    pub address: String,
    pub role: Role,
    pub labels: BTreeMap<String, String>,
    /// `None`: the controller leaves availability as it finds it.
    pub availability: Option<Availability>,
    /// Expected architecture, any name [`canonical_arch`] knows.
    pub arch: Option<String>,
    pub ssh: SshSettings,
    pub host_key: Option<String>,
    /// Claim a board that joined the swarm some other way (by hand, another
    /// tool): it gets the cluster label, so it is removed when it leaves the
    /// spec. Boards this cluster joined are claimed without it.
    pub adopt: bool,
    /// What the board carries besides Docker: `[board]` merged with the
    /// node's own `board`.
    pub board: BoardConfig,
}

/// A board's declared configuration. What the cluster put on a board is
/// recorded there, so it is taken away again only when the spec no longer
/// declares it, and only if the cluster put it there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BoardConfig {
    /// Debian packages installed (apt).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub packages: BTreeSet<String>,
    /// Debian packages removed (whoever installed them).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub absent_packages: BTreeSet<String>,
    /// Kernel parameters, kept in [`SYSCTL_FILE`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctl: BTreeMap<String, String>,
    /// Kernel modules, listed in [`MODULES_FILE`].
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub modules: BTreeSet<String>,
    /// Options the kernel command line (`cmdline.txt`) must have; a reboot
    /// applies them.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub cmdline: BTreeSet<String>,
    /// Lines the Raspberry Pi firmware's `config.txt` must have; a reboot
    /// applies them.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub config_txt: BTreeSet<String>,
    /// Docker's `daemon.json` (registry mirrors, log options, ...), as JSON
    /// text: written as [`DOCKER_DAEMON_FILE`]; Docker reads it when it
    /// starts, so a change asks for a reboot, which `reconciler upgrade`
    /// gives one board at a time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_daemon: Option<String>,
    /// Files by absolute path.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, BoardFile>,
    /// File systems mounted now and at every boot, by mount point: lines
    /// of /etc/fstab the cluster owns.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub mounts: BTreeMap<String, BoardMount>,
}

/// One file system a board mounts (an /etc/fstab line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardMount {
    /// `/dev/sda1`, `LABEL=usb`, `UUID=...`, `server:/path`.
    pub what: String,
    /// `auto`, `ext4`, `nfs`, ...
    pub fstype: String,
    pub options: String,
}

impl BoardConfig {
    /// The /etc/fstab lines of [`BoardConfig::mounts`].
    pub fn fstab_lines(&self) -> BTreeSet<String> {
        self.mounts
            .iter()
            .map(|(point, m)| format!("{} {point} {} {} 0 0", m.what, m.fstype, m.options))
            .collect()
    }
}

impl BoardConfig {
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
            && self.absent_packages.is_empty()
            && self.sysctl.is_empty()
            && self.modules.is_empty()
            && self.cmdline.is_empty()
            && self.config_txt.is_empty()
            && self.docker_daemon.is_none()
            && self.files.is_empty()
            && self.mounts.is_empty()
    }

    /// Every file the board carries: the declared ones, and the sysctl and
    /// module lists as the files that keep them across reboots, each with
    /// the command that applies it now.
    pub fn all_files(&self) -> BTreeMap<String, BoardFile> {
        let mut files = self.files.clone();
        if !self.sysctl.is_empty() {
            let text: String = self
                .sysctl
                .iter()
                .map(|(key, value)| format!("{key} = {value}\n"))
                .collect();
            files.insert(
                SYSCTL_FILE.to_string(),
                BoardFile::managed(text, format!("sysctl -p {SYSCTL_FILE} >/dev/null")),
            );
        }
        if !self.modules.is_empty() {
            let names: Vec<&str> = self.modules.iter().map(String::as_str).collect();
            files.insert(
                MODULES_FILE.to_string(),
                BoardFile::managed(
                    format!("{}\n", names.join("\n")),
                    format!("modprobe -a {}", names.join(" ")),
                ),
            );
        }
        if let Some(json) = &self.docker_daemon {
            files.insert(
                DOCKER_DAEMON_FILE.to_string(),
                BoardFile::managed(
                    json.clone(),
                    "touch /var/run/reboot-required && echo 'reconciler: docker daemon.json' >> /var/run/reboot-required.pkgs".to_string(),
                ),
            );
        }
        files
    }
}

/// Where Docker's settings are kept on a board.
pub const DOCKER_DAEMON_FILE: &str = "/etc/docker/daemon.json";

/// Where `sysctl` settings are kept on a board (read at every boot).
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/90-reconciler.conf";
/// Where `modules` are listed on a board (loaded at every boot).
pub const MODULES_FILE: &str = "/etc/modules-load.d/reconciler.conf";

/// One file a board carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardFile {
    pub content: BoardFileContent,
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// Run as root after the file was written or changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BoardFileContent {
    /// Shown in plans as a diff.
    Plain(Vec<u8>),
    /// A `[secret.NAME]`'s value: never shown, never read back.
    Secret { secret: String, value: SecretValue },
}

impl BoardFile {
    /// A root-owned 0644 text file the controller writes for a setting.
    pub(crate) fn managed(text: String, then: String) -> Self {
        Self {
            content: BoardFileContent::Plain(text.into_bytes()),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            then: Some(then),
        }
    }
}

impl BoardFileContent {
    pub fn bytes(&self) -> &[u8] {
        match self {
            BoardFileContent::Plain(bytes) => bytes,
            BoardFileContent::Secret { value, .. } => value.expose(),
        }
    }
}

/// Where an object came from when it was not written directly in the spec.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum Group {
    /// Rendered from a chart by `[release.NAME]`.
    Release(String),
    /// Translated from a compose file by `[stack.NAME]`.
    Stack(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub name: String,
    pub group: Option<Group>,
    pub driver: String,
    pub attachable: bool,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// Driver options (`encrypted` for an overlay whose traffic is IPsec'd).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Address pools; without them Docker picks a subnet (from 10.0.0.0/8,
    /// which may be the home LAN's).
    #[serde(skip_serializing_if = "Ipam::is_default")]
    pub ipam: Ipam,
    /// A network created outside the spec (a shared `traefik-public`), by its
    /// Swarm name: services join it; it is never created or removed.
    pub external: Option<String>,
}

/// A network's IP address management: the driver and its subnets. Either
/// left unset means "as Docker chooses".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ipam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<String>,
}

impl Ipam {
    pub fn is_default(&self) -> bool {
        self.driver.is_none() && self.subnets.is_empty()
    }
}

/// How many tasks a service runs, and whether they run to completion (jobs,
/// Docker API 1.41) or keep running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode", content = "replicas")]
pub enum ServiceMode {
    Replicated(u64),
    Global,
    /// `replicated-job`: `total_completions` tasks run to completion,
    /// `max_concurrent` at a time (the CLI sets both to `replicas`).
    ReplicatedJob {
        max_concurrent: u64,
        total_completions: u64,
    },
    /// `global-job`: one task to completion on every eligible node.
    GlobalJob,
}

impl ServiceMode {
    /// Whether tasks run to completion instead of running on.
    pub fn is_job(&self) -> bool {
        matches!(
            self,
            ServiceMode::ReplicatedJob { .. } | ServiceMode::GlobalJob
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub name: String,
    /// The release or stack this service came from, written as a label.
    pub group: Option<Group>,
    pub image: String,
    pub mode: ServiceMode,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    /// Variables removed from the containers' environment, the image's
    /// defaults included (`NAME` without `=` in Docker's list, as compose's
    /// bare `- NAME` sends it when `NAME` is not set where it deploys).
    pub unset_env: BTreeSet<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// The containers' hostname.
    pub hostname: Option<String>,
    /// Run an init process as PID 1 (`None`: the daemon's default).
    pub init: Option<bool>,
    /// Mount the root filesystem read-only (`None`: writable, not set).
    pub read_only: Option<bool>,
    /// Allocate a terminal / keep stdin open (`None`: no; `false` reads back as unset).
    pub tty: Option<bool>,
    pub stdin_open: Option<bool>,
    pub stop_signal: Option<String>,
    /// How long a container may take to stop before it is killed.
    pub stop_grace_period: Option<Duration>,
    /// Supplementary groups of the container's user, by name or number
    /// (`docker run --group-add`, compose's `group_add`): on a Pi, `video`
    /// or `gpio` give a container the hardware those groups own.
    pub groups: Vec<String>,
    /// Capabilities as Docker takes them: `CAP_NET_ADMIN` or `ALL`, sorted,
    /// without duplicates; one both added and dropped is only added.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    /// `host:ip` entries for the containers' /etc/hosts, in order.
    pub extra_hosts: Vec<String>,
    /// Nameservers and search domains of the containers' resolv.conf.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    /// Resource limits by name (`nofile`), each soft and hard.
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Where the containers' logs go (`None`: the daemon's default driver).
    pub logging: Option<Logging>,
    /// How other services reach this one: a virtual IP (`None`, Docker's
    /// default) or DNS round robin (`dnsrr`, for clients that balance themselves).
    pub endpoint_mode: Option<EndpointMode>,
    /// At most this many tasks on one node.
    pub max_replicas_per_node: Option<u64>,
    pub networks: Vec<String>,
    /// `[config.*]` entries the containers see as files.
    pub configs: Vec<FileRef>,
    /// `[secret.*]` entries the containers see as files (under /run/secrets).
    pub secrets: Vec<FileRef>,
    /// Extra DNS names on some of `networks` (each key is one of them), in
    /// order: `docker stack deploy` gives every service its short name.
    pub network_aliases: BTreeMap<String, Vec<String>>,
    pub ports: Vec<Port>,
    pub constraints: Vec<String>,
    /// Spread preferences, each the label path after `spread=`.
    pub preferences: Vec<String>,
    pub mounts: Vec<Mount>,
    pub resources: Resources,
    pub update: Option<UpdatePolicy>,
    pub rollback: Option<UpdatePolicy>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<RestartPolicy>,
    /// Services that must be converged before this one is created or updated.
    pub after: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub container_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    Ingress,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Port {
    pub target: u16,
    pub published: Option<u16>,
    pub protocol: Protocol,
    pub mode: PublishMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Mount {
    pub kind: MountKind,
    pub source: Option<String>,
    pub target: String,
    pub readonly: bool,
    /// How a volume mount creates its volume where it does not exist yet.
    /// Left out of the spec hash when empty, as before the field existed.
    #[serde(skip_serializing_if = "VolumeOptions::is_empty")]
    pub volume: VolumeOptions,
    /// A tmpfs mount's size in bytes (`None`: Docker's default, unlimited).
    /// Left out of the spec hash when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_size: Option<u64>,
}

/// A volume mount's options (empty for other mounts).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct VolumeOptions {
    /// The volume driver (`local` when unset) and its options.
    pub driver: Option<String>,
    pub driver_options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
}

impl VolumeOptions {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resources {
    pub limit_memory: Option<u64>,
    pub reserve_memory: Option<u64>,
    /// CPUs in nano-CPUs, as Docker counts them.
    pub limit_nano_cpus: Option<i64>,
    pub reserve_nano_cpus: Option<i64>,
    /// Discrete generic resources to reserve, `(kind, count)`, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reserve_generic: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    Pause,
    Continue,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    StopFirst,
    StartFirst,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdatePolicy {
    pub parallelism: Option<u64>,
    pub delay: Option<Duration>,
    pub failure_action: Option<FailureAction>,
    pub monitor: Option<Duration>,
    pub max_failure_ratio: Option<f64>,
    pub order: Option<UpdateOrder>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u64>,
    pub start_period: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    None,
    OnFailure,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartPolicy {
    pub condition: Option<RestartCondition>,
    pub delay: Option<Duration>,
    pub max_attempts: Option<u64>,
    pub window: Option<Duration>,
}

/// A chart instance; its services and networks are in [`Spec::services`] and [`Spec::networks`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub name: String,
    pub chart: String,
    pub values: toml::Table,
}

/// A compose stack; its services and networks are in [`Spec::services`] and [`Spec::networks`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stack {
    pub name: String,
    pub compose: String,
    pub env_file: Option<String>,
}

/// One spelling per value, as the spec writes it (and plans, status and
/// metrics show it).
macro_rules! spelled {
    ($type:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// The value `as_str` spells `text`, if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

spelled!(Role { Manager => "manager", Worker => "worker" });
spelled!(Availability { Active => "active", Pause => "pause", Drain => "drain" });
spelled!(Protocol { Tcp => "tcp", Udp => "udp", Sctp => "sctp" });
spelled!(PublishMode { Ingress => "ingress", Host => "host" });
spelled!(MountKind { Bind => "bind", Volume => "volume", Tmpfs => "tmpfs" });
spelled!(FailureAction { Pause => "pause", Continue => "continue", Rollback => "rollback" });
spelled!(UpdateOrder { StopFirst => "stop-first", StartFirst => "start-first" });
spelled!(RestartCondition { None => "none", OnFailure => "on-failure", Any => "any" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logging {
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    Vip,
    Dnsrr,
}

impl EndpointMode {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointMode::Vip => "vip",
            EndpointMode::Dnsrr => "dnsrr",
        }
    }
}

/// `[config.NAME]`: text the containers of the services that name it see as
/// a file. Swarm configs cannot change: each content is its own version
/// (see `versioned_name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub name: String,
    pub group: Option<Group>,
    pub data: ConfigData,
    pub labels: BTreeMap<String, String>,
    /// The Swarm name the spec fixed (`name`, compose's `name:`), used
    /// verbatim instead of `NAME-<hash>`: a new content then needs a new name.
    pub fixed_name: Option<String>,
    /// Swarm renders the content as a template of this driver (`golang`)
    /// for each task; part of what makes a version.
    pub template_driver: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigData {
    /// The text itself (from a `file` of the spec or inline `content`).
    Content(String),
    /// A config created outside the spec, used under its Swarm name.
    External { name: String },
}

/// `[secret.NAME]`: like a config, but its value is never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secret {
    pub name: String,
    pub group: Option<Group>,
    pub data: SecretData,
    pub labels: BTreeMap<String, String>,
    /// As [`Config::fixed_name`].
    pub fixed_name: Option<String>,
    /// As [`Config::template_driver`].
    pub template_driver: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretData {
    /// Read from a file of the spec (its path relative to the spec root),
    /// decrypted on load when `encryption` says how.
    File {
        path: String,
        encryption: Option<crate::sealed::Encryption>,
        value: SecretValue,
    },
    /// A secret created outside the spec, used under its Swarm name (the
    /// entry's name unless `name` says otherwise).
    External { name: String },
}

/// A secret's value. Neither `Debug` nor `Serialize` show it, so it cannot
/// reach a log, a plan or a status document by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    /// The value itself: only for writing it to Docker and hashing it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue({} bytes)", self.0.len())
    }
}

impl Serialize for SecretValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("(sensitive)")
    }
}

/// A config or secret as a file in a service's containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// The `[config.*]` or `[secret.*]` entry.
    pub source: String,
    /// The file: absolute, or relative to `/` (configs) or `/run/secrets` (secrets).
    pub target: String,
    pub uid: String,
    pub gid: String,
    /// Permission bits, e.g. `0o444`.
    pub mode: u32,
}

/// A network every Docker engine has by itself (`host`, `bridge`, `none`,
/// `default`, `container:<id>`): not user-defined, in the docker CLI's words
/// (`IsUserDefined`). Never looked up, and takes no aliases.
pub fn is_predefined_network(name: &str) -> bool {
    matches!(name, "host" | "bridge" | "none" | "default") || name.starts_with("container:")
}

/// Architecture names a board or Docker reports, each with its aliases.
pub const KNOWN_ARCHES: [&str; 11] = [
    "aarch64", "arm64", "armv8", "armv7l", "armv7", "armhf", "arm", "armv6l", "armv6", "x86_64",
    "amd64",
];

/// One name per architecture (`aarch64` and `arm64` are one); `None` for a
/// name no board reports.
pub fn canonical_arch(name: &str) -> Option<&'static str> {
    Some(match name {
        "aarch64" | "arm64" | "armv8" => "arm64",
        "armv7l" | "armv7" | "armhf" | "arm" => "armv7",
        "armv6l" | "armv6" => "armv6",
        "x86_64" | "amd64" => "amd64",
        _ => return None,
    })
}
