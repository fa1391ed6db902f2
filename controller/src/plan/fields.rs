//! Objects flattened into named fields, so desired and observed can be compared
//! and a plan can show `field: old -> new` without knowing each type's shape.

use std::collections::BTreeMap;

use reconciler_spec::units::format_duration;
use reconciler_spec::{
    Healthcheck, Mount, Network, Port, Resources, RestartPolicy, Service, ServiceMode, UpdatePolicy,
};
use serde::Serialize;

/// Which fields the controller owns outright, and which only when the spec sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Any difference is drift, including a field present only on the live object.
    Full,
    /// Compared only when the spec sets it: Docker fills these with defaults.
    DesiredOnly,
    /// Never compared: the live value cannot be read back. Docker 20.10 returns
    /// the healthcheck as `Healthcheck` while the API (and bollard) say
    /// `HealthCheck`, so it is lost on reading. Changes in the spec are still
    /// seen through the spec hash; drift of these fields is not.
    HashOnly,
}

/// One comparable field of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    value: String,
    sensitive: bool,
    scope: Scope,
}

impl Field {
    /// A field compared in full (see [`Scope::Full`]).
    fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::scoped(name, value, Scope::Full)
    }

    /// A field Docker fills with a default when the spec leaves it out
    /// (see [`Scope::DesiredOnly`]).
    fn desired_only(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::scoped(name, value, Scope::DesiredOnly)
    }

    /// A field that cannot be read back (see [`Scope::HashOnly`]).
    fn hash_only(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::scoped(name, value, Scope::HashOnly)
    }

    fn scoped(name: impl Into<String>, value: impl Into<String>, scope: Scope) -> Self {
        let name = name.into();
        let value = value.into();
        let sensitive = looks_sensitive(&name) || value_looks_sensitive(&value);
        Self {
            name,
            value,
            sensitive,
            scope,
        }
    }

    /// What may be shown to a person: sensitive values are masked.
    pub fn display(&self) -> String {
        if self.sensitive {
            "(sensitive)".into()
        } else {
            self.value.clone()
        }
    }

    /// How the field is compared: set where the field is made, next to how
    /// it reads.
    pub fn scope(&self) -> Scope {
        self.scope
    }
}

/// Words in a name that suggest its value is a secret.
const SENSITIVE_WORDS: [&str; 7] = [
    "PASS",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
];

/// Environment variables and labels whose names suggest a secret are never
/// shown in plans.
fn looks_sensitive(field: &str) -> bool {
    let Some(name) = ["env.", "labels.", "container_labels."]
        .iter()
        .find_map(|prefix| field.strip_prefix(prefix))
    else {
        return false;
    };
    let upper = name.to_ascii_uppercase();
    SENSITIVE_WORDS.iter().any(|word| upper.contains(word))
}

/// A value that carries a secret whatever its field: a URL with a password
/// (`postgres://app:hunter2@db/app`), or `NAME=value` / `--name=value` where
/// the name suggests a secret (in `args`, a healthcheck, ...).
fn value_looks_sensitive(value: &str) -> bool {
    let url_with_password = value.match_indices("://").any(|(at, _)| {
        let rest = &value[at + 3..];
        let authority = rest.split(['/', ' ', '"', ',']).next().unwrap_or_default();
        authority
            .split_once('@')
            .is_some_and(|(user_info, _)| user_info.contains(':'))
    });
    url_with_password
        || value.split(['"', ' ', ',', '[', ']']).any(|word| {
            word.split_once('=').is_some_and(|(name, secret)| {
                let upper = name.trim_start_matches('-').to_ascii_uppercase();
                !secret.is_empty() && SENSITIVE_WORDS.iter().any(|w| upper.contains(w))
            })
        })
}

/// A field whose value differs; `None` means absent on that side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The changes that turn `observed` into `desired`, in `desired`'s field order.
pub fn diff(observed: &[Field], desired: &[Field]) -> Vec<FieldChange> {
    let observed_by_name: BTreeMap<&str, &Field> =
        observed.iter().map(|f| (f.name.as_str(), f)).collect();
    let desired_names: BTreeMap<&str, &Field> =
        desired.iter().map(|f| (f.name.as_str(), f)).collect();
    let mut changes = Vec::new();
    for want in desired.iter().filter(|f| f.scope() != Scope::HashOnly) {
        match observed_by_name.get(want.name.as_str()) {
            Some(have) if have.value == want.value => {}
            have => changes.push(FieldChange {
                field: want.name.clone(),
                old: have.map(|f| f.display()),
                new: Some(want.display()),
            }),
        }
    }
    for have in observed {
        if have.scope() == Scope::Full && !desired_names.contains_key(have.name.as_str()) {
            changes.push(FieldChange {
                field: have.name.clone(),
                old: Some(have.display()),
                new: None,
            });
        }
    }
    changes
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn list<I: IntoIterator<Item = String>>(items: I) -> String {
    let items: Vec<String> = items.into_iter().map(|s| quoted(&s)).collect();
    format!("[{}]", items.join(", "))
}

fn sorted_list<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut items: Vec<String> = items.into_iter().collect();
    items.sort();
    list(items)
}

pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

fn format_cpus(nano: i64) -> String {
    #[allow(
        clippy::cast_precision_loss,
        reason = "display only; nano-CPUs fit an f64 well enough to print"
    )]
    let cpus = nano as f64 / 1e9;
    format!("{cpus}")
}

pub fn format_port(port: &Port) -> String {
    let Port {
        target,
        published,
        protocol,
        mode,
    } = *port;
    let protocol = protocol.as_str();
    let mode = mode.as_str();
    match published {
        Some(published) => format!("{published}:{target}/{protocol} ({mode})"),
        None => format!("{target}/{protocol} ({mode})"),
    }
}

fn format_mount(mount: &Mount) -> String {
    let Mount {
        kind,
        source,
        target,
        readonly,
        volume,
        tmpfs_size,
    } = mount;
    let reconciler_spec::VolumeOptions {
        driver,
        driver_options,
        labels,
        nocopy,
    } = volume;
    let kind = kind.as_str();
    let source = source.as_deref().unwrap_or("");
    let mode = if *readonly { " (ro)" } else { "" };
    let mut options = Vec::new();
    if driver.is_some() || !driver_options.is_empty() {
        let settings: Vec<String> = driver_options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        options.push(format!(
            "driver {} [{}]",
            driver.as_deref().unwrap_or("local"),
            settings.join(", ")
        ));
    }
    if !labels.is_empty() {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        options.push(format!("labels [{}]", labels.join(", ")));
    }
    if *nocopy {
        options.push("nocopy".into());
    }
    if let Some(bytes) = tmpfs_size {
        options.push(format!("size {bytes}"));
    }
    let options = if options.is_empty() {
        String::new()
    } else {
        format!(" ({})", options.join("; "))
    };
    format!("{kind} {source}:{target}{mode}{options}")
}

/// A config or secret in a container, as a plan shows it:
/// `name -> target (uid:gid 0444)`. The name carries the content's hash.
fn file_ref(file: &reconciler_spec::FileRef) -> String {
    let reconciler_spec::FileRef {
        source,
        target,
        uid,
        gid,
        mode,
    } = file;
    format!("{source} -> {target} ({uid}:{gid} {mode:04o})")
}

/// The container settings of a service that are set (unset ones are the
/// daemon's defaults and not compared).
#[allow(
    clippy::too_many_lines,
    reason = "a line or two per field of the service: the destructuring is the checklist"
)]
fn container_fields(service: &Service, fields: &mut Vec<Field>) {
    let Service {
        hostname,
        init,
        read_only,
        tty,
        stdin_open,
        stop_signal,
        stop_grace_period,
        groups,
        cap_add,
        cap_drop,
        sysctls,
        extra_hosts,
        dns,
        dns_search,
        ulimits,
        logging,
        endpoint_mode,
        max_replicas_per_node,
        // The rest: see `service_fields`.
        name: _,
        group: _,
        image: _,
        mode: _,
        command: _,
        args: _,
        env: _,
        unset_env: _,
        user: _,
        workdir: _,
        networks: _,
        configs: _,
        secrets: _,
        network_aliases: _,
        ports: _,
        constraints: _,
        preferences: _,
        mounts: _,
        resources: _,
        update: _,
        rollback: _,
        healthcheck: _,
        restart: _,
        after: _,
        labels: _,
        container_labels: _,
    } = service;
    if let Some(hostname) = hostname {
        fields.push(Field::new("hostname", quoted(hostname)));
    }
    if let Some(init) = init {
        fields.push(Field::new("init", init.to_string()));
    }
    // `false` is Docker's default and reads back as unset.
    if *read_only == Some(true) {
        fields.push(Field::new("read_only", "true"));
    }
    if *tty == Some(true) {
        fields.push(Field::new("tty", "true"));
    }
    if *stdin_open == Some(true) {
        fields.push(Field::new("stdin_open", "true"));
    }
    if let Some(signal) = stop_signal {
        fields.push(Field::new("stop_signal", quoted(signal)));
    }
    if let Some(period) = stop_grace_period {
        fields.push(Field::new(
            "stop_grace_period",
            quoted(&format_duration(*period)),
        ));
    }
    for (name, list) in [
        ("groups", groups),
        ("cap_add", cap_add),
        ("cap_drop", cap_drop),
        ("extra_hosts", extra_hosts),
        ("dns", dns),
        ("dns_search", dns_search),
    ] {
        if !list.is_empty() {
            fields.push(Field::new(name, self::list(list.iter().cloned())));
        }
    }
    for (key, value) in sysctls {
        fields.push(Field::new(format!("sysctls.{key}"), quoted(value)));
    }
    for (name, reconciler_spec::Ulimit { soft, hard }) in ulimits {
        fields.push(Field::new(
            format!("ulimits.{name}"),
            format!("{soft}:{hard}"),
        ));
    }
    if let Some(reconciler_spec::Logging { driver, options }) = logging {
        let options: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        fields.push(Field::new(
            "logging",
            format!("{} [{}]", quoted(driver), options.join(", ")),
        ));
    }
    // `vip` is Docker's default and reads back as unset.
    if *endpoint_mode == Some(reconciler_spec::EndpointMode::Dnsrr) {
        fields.push(Field::new("endpoint_mode", quoted("dnsrr")));
    }
    if let Some(max) = max_replicas_per_node {
        fields.push(Field::new("max_replicas_per_node", max.to_string()));
    }
}

/// `networks` (in any order) and each network's aliases (in order).
fn attachment_fields(
    networks: &[String],
    aliases: &BTreeMap<String, Vec<String>>,
    fields: &mut Vec<Field>,
) {
    if !networks.is_empty() {
        fields.push(Field::new(
            "networks",
            sorted_list(networks.iter().cloned()),
        ));
    }
    for (network, names) in aliases {
        fields.push(Field::new(
            format!("network_aliases.{network}"),
            list(names.iter().cloned()),
        ));
    }
}

/// The fields of a service that the controller manages, in display order.
/// The struct is taken apart without `..`: a new field of [`Service`] does
/// not compile until it is placed here (compared, hash-only or not a field).
#[allow(
    clippy::too_many_lines,
    reason = "a line or two per field of the service: the destructuring is the checklist"
)]
pub fn service_fields(service: &Service) -> Vec<Field> {
    let Service {
        // The object's key, and where it came from: its labels and hash carry these.
        name: _,
        group: _,
        image,
        mode,
        command,
        args,
        env,
        unset_env,
        user,
        workdir,
        // The container's settings: see `container_fields`.
        hostname: _,
        init: _,
        read_only: _,
        tty: _,
        stdin_open: _,
        stop_signal: _,
        stop_grace_period: _,
        groups: _,
        cap_add: _,
        cap_drop: _,
        sysctls: _,
        extra_hosts: _,
        dns: _,
        dns_search: _,
        ulimits: _,
        logging: _,
        endpoint_mode: _,
        max_replicas_per_node: _,
        networks,
        configs,
        secrets,
        network_aliases,
        ports,
        constraints,
        preferences,
        mounts,
        resources,
        update,
        rollback,
        healthcheck,
        restart,
        // Orders the work; not part of the Docker object.
        after: _,
        labels,
        container_labels,
    } = service;
    let mut fields = vec![Field::new("image", quoted(image))];
    match *mode {
        ServiceMode::Replicated(n) => {
            fields.push(Field::new("mode", "\"replicated\""));
            fields.push(Field::new("replicas", n.to_string()));
        }
        ServiceMode::Global => fields.push(Field::new("mode", "\"global\"")),
        ServiceMode::ReplicatedJob {
            max_concurrent,
            total_completions,
        } => {
            fields.push(Field::new("mode", "\"replicated-job\""));
            fields.push(Field::new("max_concurrent", max_concurrent.to_string()));
            fields.push(Field::new(
                "total_completions",
                total_completions.to_string(),
            ));
        }
        ServiceMode::GlobalJob => fields.push(Field::new("mode", "\"global-job\"")),
    }
    if let Some(command) = command {
        fields.push(Field::new("command", list(command.iter().cloned())));
    }
    if let Some(args) = args {
        fields.push(Field::new("args", list(args.iter().cloned())));
    }
    for (key, value) in env {
        fields.push(Field::new(format!("env.{key}"), quoted(value)));
    }
    if !unset_env.is_empty() {
        fields.push(Field::new("unset_env", list(unset_env.iter().cloned())));
    }
    if let Some(user) = user {
        fields.push(Field::new("user", quoted(user)));
    }
    if let Some(workdir) = workdir {
        fields.push(Field::new("workdir", quoted(workdir)));
    }
    container_fields(service, &mut fields);
    attachment_fields(networks, network_aliases, &mut fields);
    for (name, refs) in [("configs", configs), ("secrets", secrets)] {
        if !refs.is_empty() {
            fields.push(Field::new(name, sorted_list(refs.iter().map(file_ref))));
        }
    }
    if !ports.is_empty() {
        fields.push(Field::new(
            "ports",
            sorted_list(ports.iter().map(format_port)),
        ));
    }
    if !constraints.is_empty() {
        fields.push(Field::new(
            "constraints",
            sorted_list(constraints.iter().cloned()),
        ));
    }
    if !preferences.is_empty() {
        let spread = preferences.iter().map(|p| format!("spread={p}"));
        fields.push(Field::new("preferences", list(spread)));
    }
    if !mounts.is_empty() {
        fields.push(Field::new(
            "mounts",
            sorted_list(mounts.iter().map(format_mount)),
        ));
    }
    resource_fields(resources, &mut fields);
    if let Some(update) = update {
        policy_fields("update", update, &mut fields);
    }
    if let Some(rollback) = rollback {
        policy_fields("rollback", rollback, &mut fields);
    }
    if let Some(health) = healthcheck {
        healthcheck_fields(health, &mut fields);
    }
    if let Some(restart) = restart {
        restart_fields(restart, &mut fields);
    }
    for (key, value) in labels {
        fields.push(Field::new(format!("labels.{key}"), quoted(value)));
    }
    for (key, value) in container_labels {
        fields.push(Field::new(format!("container_labels.{key}"), quoted(value)));
    }
    fields
}

fn resource_fields(resources: &Resources, fields: &mut Vec<Field>) {
    let Resources {
        limit_memory,
        reserve_memory,
        limit_nano_cpus,
        reserve_nano_cpus,
        reserve_generic,
    } = resources;
    if let Some(bytes) = *limit_memory {
        fields.push(Field::new(
            "resources.limit_memory",
            quoted(&format_size(bytes)),
        ));
    }
    if let Some(bytes) = *reserve_memory {
        fields.push(Field::new(
            "resources.reserve_memory",
            quoted(&format_size(bytes)),
        ));
    }
    if let Some(nano) = *limit_nano_cpus {
        fields.push(Field::new("resources.limit_cpus", format_cpus(nano)));
    }
    if let Some(nano) = *reserve_nano_cpus {
        fields.push(Field::new("resources.reserve_cpus", format_cpus(nano)));
    }
    for (index, (kind, value)) in reserve_generic.iter().enumerate() {
        fields.push(Field::new(
            format!("resources.reserve_generic[{index}]"),
            format!("{{ kind = {}, value = {value} }}", quoted(kind)),
        ));
    }
}

fn policy_fields(prefix: &str, policy: &UpdatePolicy, fields: &mut Vec<Field>) {
    let UpdatePolicy {
        parallelism,
        delay,
        failure_action,
        monitor,
        max_failure_ratio,
        order,
    } = policy;
    if let Some(p) = parallelism {
        fields.push(Field::desired_only(
            format!("{prefix}.parallelism"),
            p.to_string(),
        ));
    }
    if let Some(d) = *delay {
        fields.push(Field::desired_only(
            format!("{prefix}.delay"),
            quoted(&format_duration(d)),
        ));
    }
    if let Some(a) = failure_action {
        fields.push(Field::desired_only(
            format!("{prefix}.failure_action"),
            quoted(a.as_str()),
        ));
    }
    if let Some(m) = *monitor {
        fields.push(Field::desired_only(
            format!("{prefix}.monitor"),
            quoted(&format_duration(m)),
        ));
    }
    if let Some(r) = max_failure_ratio {
        fields.push(Field::desired_only(
            format!("{prefix}.max_failure_ratio"),
            r.to_string(),
        ));
    }
    if let Some(o) = order {
        fields.push(Field::desired_only(
            format!("{prefix}.order"),
            quoted(o.as_str()),
        ));
    }
}

fn healthcheck_fields(health: &Healthcheck, fields: &mut Vec<Field>) {
    let Healthcheck {
        test,
        interval,
        timeout,
        retries,
        start_period,
    } = health;
    fields.push(Field::hash_only(
        "healthcheck.test",
        list(test.iter().cloned()),
    ));
    for (name, value) in [
        ("interval", *interval),
        ("timeout", *timeout),
        ("start_period", *start_period),
    ] {
        if let Some(d) = value {
            fields.push(Field::hash_only(
                format!("healthcheck.{name}"),
                quoted(&format_duration(d)),
            ));
        }
    }
    if let Some(r) = retries {
        fields.push(Field::hash_only("healthcheck.retries", r.to_string()));
    }
}

fn restart_fields(restart: &RestartPolicy, fields: &mut Vec<Field>) {
    let RestartPolicy {
        condition,
        delay,
        max_attempts,
        window,
    } = restart;
    if let Some(c) = condition {
        fields.push(Field::desired_only("restart.condition", quoted(c.as_str())));
    }
    if let Some(d) = *delay {
        fields.push(Field::desired_only(
            "restart.delay",
            quoted(&format_duration(d)),
        ));
    }
    if let Some(m) = max_attempts {
        fields.push(Field::desired_only("restart.max_attempts", m.to_string()));
    }
    if let Some(w) = *window {
        fields.push(Field::desired_only(
            "restart.window",
            quoted(&format_duration(w)),
        ));
    }
}

/// The fields of a network; networks cannot be changed in place, only replaced.
pub fn network_fields(network: &Network) -> Vec<Field> {
    let Network {
        name: _,
        // Never created or compared: joined as it is.
        external: _,
        group: _,
        driver,
        attachable,
        internal,
        labels,
        options,
        ipam,
    } = network;
    let mut fields = vec![
        Field::new("driver", quoted(driver)),
        Field::new("attachable", attachable.to_string()),
        Field::new("internal", internal.to_string()),
    ];
    for (key, value) in labels {
        fields.push(Field::new(format!("labels.{key}"), quoted(value)));
    }
    for (key, value) in options {
        fields.push(Field::new(format!("options.{key}"), quoted(value)));
    }
    if let Some(driver) = &ipam.driver {
        fields.push(Field::new("ipam.driver", quoted(driver)));
    }
    for (index, subnet) in ipam.subnets.iter().enumerate() {
        fields.push(Field::new(format!("ipam.subnets[{index}]"), quoted(subnet)));
    }
    fields
}

/// A live network as the spec would describe it: what Docker chose where
/// the spec leaves the choice to it (an IPAM driver and subnets when none
/// are set) is not a difference; options Docker adds itself are left out.
pub fn network_as_desired(live: &Network, desired: &Network) -> Network {
    let mut seen = live.clone();
    seen.options
        .retain(|key, _| !DOCKER_NETWORK_OPTIONS.contains(&key.as_str()));
    if desired.ipam.driver.is_none() {
        seen.ipam.driver = None;
    }
    if desired.ipam.subnets.is_empty() {
        seen.ipam.subnets.clear();
    }
    seen
}

/// Options Docker writes on every overlay network it creates.
const DOCKER_NETWORK_OPTIONS: [&str; 1] = ["com.docker.network.driver.overlay.vxlanid_list"];

/// A short, stable hash of the canonical desired form of an object (set
/// fields only, see `reconciler_spec::canonical`): what tells a changed spec
/// from drift, also for fields Docker does not echo back. `after` is left
/// out: it orders work, it is not part of the Docker object.
pub fn service_hash(service: &Service) -> String {
    crate::digest::sha256_prefix(&reconciler_spec::canonical::service(service), 8)
}

pub fn network_hash(network: &Network) -> String {
    crate::digest::sha256_prefix(&reconciler_spec::canonical::network(network), 8)
}

/// The canonical JSON of a service, for the regression test that pins
/// what a hash covers.
#[cfg(test)]
pub(crate) fn canonical_for_tests(service: &Service) -> serde_json::Value {
    serde_json::from_slice(&reconciler_spec::canonical::service(service)).unwrap_or_default()
}

#[cfg(test)]
mod masking_tests {
    use super::*;

    #[test]
    fn secrets_are_masked_by_name_and_by_value() {
        let shown = |name: &str, value: &str| Field::new(name, value).display();
        for (name, value) in [
            ("env.DB_PASS", "x"),
            ("env.MYSQL_ROOT_PASSWORD", "x"),
            ("env.GITHUB_TOKEN", "x"),
            ("env.SSH_PRIVATE", "x"),
            ("labels.traefik.http.middlewares.a.basicauth.users", "x"),
            ("container_labels.api-key", "x"),
            ("env.DATABASE_URL", "\"postgres://app:hunter2@db:5432/app\""),
            ("args", "[\"--db-password=hunter2\", \"-v\"]"),
            (
                "healthcheck.test",
                "[\"CMD\", \"curl\", \"https://u:p@localhost/\"]",
            ),
        ] {
            assert_eq!(shown(name, value), "(sensitive)", "{name} = {value}");
        }
        for (name, value) in [
            ("env.GREETING", "\"hello\""),
            ("env.DATABASE_URL", "\"postgres://db:5432/app\""),
            ("args", "[\"--port=80\", \"https://example.org/a@b\"]"),
            ("image", "\"local/app:1\""),
        ] {
            assert_eq!(shown(name, value), value, "{name} was masked");
        }
    }
}
