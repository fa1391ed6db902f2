//! The file format users write, as serde types.
//!
//! These mirror the TOML exactly (strict: unknown keys are errors) and keep
//! spans on values that later checks point at. The planner never sees them:
//! `lower` converts them into [`crate::model`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// `[cluster]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub name: Spanned<String>,
}

/// `[controller]`: how `reconciler run` and `apply` behave for this cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerFile {
    pub interval: Option<Spanned<String>>,
    pub prune: Option<bool>,
    pub mode: Option<ControllerModeFile>,
    pub max_delete_fraction: Option<Spanned<f64>>,
    pub suspend: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControllerModeFile {
    Apply,
    Observe,
}

/// `[ssh]` defaults, and the per-node `ssh = {...}` override.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshFile {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<String>,
    pub known_hosts: Option<String>,
}

/// `[bootstrap]`: what a bare board gets before it joins.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapFile {
    pub hostname: Option<bool>,
    pub hosts_file: Option<bool>,
    pub install_docker: Option<String>,
    pub start_docker: Option<String>,
    pub docker_users: Option<Vec<String>>,
}

/// `[node.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub address: Spanned<String>,
    pub role: RoleFile,
    #[serde(default)]
    pub labels: BTreeMap<Spanned<String>, String>,
    pub availability: Option<AvailabilityFile>,
    pub arch: Option<String>,
    pub ssh: Option<SshFile>,
    pub host_key: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleFile {
    Manager,
    Worker,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AvailabilityFile {
    Active,
    Pause,
    Drain,
}

/// `[network.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    pub driver: Option<Spanned<String>>,
    pub attachable: Option<bool>,
    pub internal: Option<bool>,
    #[serde(default)]
    pub labels: BTreeMap<Spanned<String>, String>,
    /// Where a rendered network came from (`"release.NAME"` or `"stack.NAME"`);
    /// written by `reconciler render` so its output loads back unchanged.
    pub origin: Option<Spanned<String>>,
}

/// `[service.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    pub image: Spanned<String>,
    pub replicas: Option<Spanned<u64>>,
    pub mode: Option<Spanned<ServiceModeFile>>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<Spanned<String>, String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    #[serde(default)]
    pub networks: Vec<Spanned<String>>,
    #[serde(default)]
    pub ports: Vec<Spanned<PortFile>>,
    #[serde(default)]
    pub constraints: Vec<Spanned<String>>,
    #[serde(default)]
    pub preferences: Vec<Spanned<String>>,
    #[serde(default)]
    pub mounts: Vec<Spanned<MountFile>>,
    pub resources: Option<ResourcesFile>,
    pub update: Option<UpdateFile>,
    pub rollback: Option<UpdateFile>,
    pub healthcheck: Option<Spanned<HealthcheckFile>>,
    pub restart: Option<RestartFile>,
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    #[serde(default)]
    pub labels: BTreeMap<Spanned<String>, String>,
    /// Labels on the service's containers (compose's service-level `labels`).
    #[serde(default)]
    pub container_labels: BTreeMap<Spanned<String>, String>,
    /// Where a rendered service came from; see [`NetworkFile::origin`].
    pub origin: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceModeFile {
    Replicated,
    Global,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortFile {
    pub target: u16,
    pub published: Option<u16>,
    pub protocol: Option<ProtocolFile>,
    pub mode: Option<PublishModeFile>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolFile {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishModeFile {
    Ingress,
    Host,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountFile {
    #[serde(rename = "type")]
    pub kind: MountKindFile,
    pub source: Option<String>,
    pub target: String,
    pub readonly: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKindFile {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesFile {
    pub limit_memory: Option<Spanned<String>>,
    pub reserve_memory: Option<Spanned<String>>,
    pub limit_cpus: Option<Spanned<f64>>,
    pub reserve_cpus: Option<Spanned<f64>>,
}

/// `update = {...}` and `rollback = {...}` share one shape, as in Docker.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFile {
    pub parallelism: Option<u64>,
    pub delay: Option<Spanned<String>>,
    pub failure_action: Option<Spanned<FailureActionFile>>,
    pub monitor: Option<Spanned<String>>,
    pub max_failure_ratio: Option<Spanned<f64>>,
    pub order: Option<UpdateOrderFile>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureActionFile {
    Pause,
    Continue,
    Rollback,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrderFile {
    StopFirst,
    StartFirst,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckFile {
    pub test: Vec<String>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub retries: Option<u64>,
    pub start_period: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartFile {
    pub condition: Option<RestartConditionFile>,
    pub delay: Option<Spanned<String>>,
    pub max_attempts: Option<u64>,
    pub window: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartConditionFile {
    None,
    OnFailure,
    Any,
}

/// `[release.NAME]`: a chart instance, rendered into services and networks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseFile {
    pub chart: Spanned<String>,
    /// Keys are spanned so a value the chart does not take is reported where it is written.
    #[serde(default)]
    pub values: BTreeMap<Spanned<String>, toml::Value>,
}

/// `[stack.NAME]`: a compose v3 file, deployed as `docker stack deploy` would.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    pub compose: Spanned<String>,
    pub env_file: Option<Spanned<String>>,
}
