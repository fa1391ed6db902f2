//! The fully expanded spec as TOML: what `reconciler render` prints.
//!
//! Releases and stacks appear as the services and networks they produced,
//! each with an `origin` saying where it came from. The output is itself a
//! valid spec that loads to the same services and networks, origin included.
//!
//! The model is turned back into the file format's own types (the inverse of
//! `lower`) and serialized by serde: the keys are the file format's, never
//! spelled here, and every model struct is taken apart without `..`, so a new
//! field does not compile until it is rendered.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use toml::Spanned;

use crate::file::*;
use crate::model::*;
use crate::units::format_duration;

/// A value as the file format holds it; rendered text has no source spans.
fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

fn duration(d: Duration) -> Spanned<String> {
    spanned(format_duration(d))
}

/// A size in the largest unit that divides it: `64M`, `1G`, `1536M`, `1000`.
fn size(bytes: u64) -> Spanned<String> {
    for (unit, factor) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return spanned(format!("{}{unit}", bytes / factor));
        }
    }
    spanned(bytes.to_string())
}

#[allow(
    clippy::cast_precision_loss,
    reason = "display only: nano-CPUs back to CPUs"
)]
fn cpus(nano: i64) -> Spanned<f64> {
    spanned(nano as f64 / 1e9)
}

fn keyed(items: &BTreeMap<String, String>) -> BTreeMap<Spanned<String>, String> {
    items
        .iter()
        .map(|(k, v)| (spanned(k.clone()), v.clone()))
        .collect()
}

fn names(items: &[String]) -> Vec<Spanned<String>> {
    items.iter().cloned().map(spanned).collect()
}

fn origin(group: Option<&Group>) -> Option<Spanned<String>> {
    group.map(|group| {
        spanned(match group {
            Group::Release(release) => format!("release.{release}"),
            Group::Stack(stack) => format!("stack.{stack}"),
        })
    })
}

/// One `[kind.name]` table.
fn section<T: Serialize>(kind: &str, name: &str, body: T) -> String {
    let table = BTreeMap::from([(kind, BTreeMap::from([(name, body)]))]);
    toml::to_string(&table).unwrap_or_default()
}

fn policy(policy: &UpdatePolicy) -> UpdateFile {
    let UpdatePolicy {
        parallelism,
        delay,
        failure_action,
        monitor,
        max_failure_ratio,
        order,
    } = policy;
    UpdateFile {
        parallelism: *parallelism,
        delay: delay.map(duration),
        failure_action: failure_action.map(|a| {
            spanned(match a {
                FailureAction::Pause => FailureActionFile::Pause,
                FailureAction::Continue => FailureActionFile::Continue,
                FailureAction::Rollback => FailureActionFile::Rollback,
            })
        }),
        monitor: monitor.map(duration),
        max_failure_ratio: max_failure_ratio.map(spanned),
        order: order.map(|o| match o {
            UpdateOrder::StopFirst => UpdateOrderFile::StopFirst,
            UpdateOrder::StartFirst => UpdateOrderFile::StartFirst,
        }),
    }
}

fn port(port: &Port) -> PortFile {
    let Port {
        target,
        published,
        protocol,
        mode,
    } = port;
    PortFile {
        target: *target,
        published: *published,
        protocol: Some(match protocol {
            Protocol::Tcp => ProtocolFile::Tcp,
            Protocol::Udp => ProtocolFile::Udp,
            Protocol::Sctp => ProtocolFile::Sctp,
        }),
        mode: Some(match mode {
            PublishMode::Ingress => PublishModeFile::Ingress,
            PublishMode::Host => PublishModeFile::Host,
        }),
    }
}

fn mount(mount: &Mount) -> MountFile {
    let Mount {
        kind,
        source,
        target,
        readonly,
        volume,
        tmpfs_size,
    } = mount;
    let VolumeOptions {
        driver,
        driver_options,
        labels,
        nocopy,
    } = volume;
    MountFile {
        kind: match kind {
            MountKind::Bind => MountKindFile::Bind,
            MountKind::Volume => MountKindFile::Volume,
            MountKind::Tmpfs => MountKindFile::Tmpfs,
        },
        source: source.clone(),
        target: target.clone(),
        readonly: readonly.then_some(true),
        driver: driver.clone(),
        driver_options: driver_options.clone(),
        volume_labels: labels.clone(),
        nocopy: nocopy.then_some(true),
        size: tmpfs_size.map(|bytes| bytes.to_string()),
    }
}

fn resources(resources: &Resources) -> Option<ResourcesFile> {
    let Resources {
        limit_memory,
        reserve_memory,
        limit_nano_cpus,
        reserve_nano_cpus,
        reserve_generic,
    } = resources;
    let file = ResourcesFile {
        limit_memory: limit_memory.map(size),
        reserve_memory: reserve_memory.map(size),
        limit_cpus: limit_nano_cpus.map(cpus),
        reserve_cpus: reserve_nano_cpus.map(cpus),
        reserve_generic: reserve_generic
            .iter()
            .map(|(kind, value)| {
                spanned(GenericResourceFile {
                    kind: kind.clone(),
                    value: *value,
                })
            })
            .collect(),
    };
    let set = !file.reserve_generic.is_empty()
        || file.limit_memory.is_some()
        || file.reserve_memory.is_some()
        || file.limit_cpus.is_some()
        || file.reserve_cpus.is_some();
    set.then_some(file)
}

fn healthcheck(health: &Healthcheck) -> HealthcheckFile {
    let Healthcheck {
        test,
        interval,
        timeout,
        retries,
        start_period,
    } = health;
    HealthcheckFile {
        test: test.clone(),
        interval: interval.map(duration),
        timeout: timeout.map(duration),
        retries: *retries,
        start_period: start_period.map(duration),
    }
}

fn restart(restart: &RestartPolicy) -> RestartFile {
    let RestartPolicy {
        condition,
        delay,
        max_attempts,
        window,
    } = restart;
    RestartFile {
        condition: condition.map(|c| match c {
            RestartCondition::None => RestartConditionFile::None,
            RestartCondition::OnFailure => RestartConditionFile::OnFailure,
            RestartCondition::Any => RestartConditionFile::Any,
        }),
        delay: delay.map(duration),
        max_attempts: *max_attempts,
        window: window.map(duration),
    }
}

/// A service as the file format writes it. Taken apart without `..`: a new
/// field of [`Service`] does not compile until it is rendered here.
#[allow(
    clippy::too_many_lines,
    reason = "a line or two per field of the service: the destructuring is the checklist"
)]
fn service(s: &Service) -> ServiceFile {
    let Service {
        // The table's name.
        name: _,
        group,
        image,
        mode,
        command,
        args,
        env,
        unset_env,
        user,
        workdir,
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
        networks,
        configs,
        secrets,
        network_aliases,
        ports,
        constraints,
        preferences,
        mounts,
        resources: service_resources,
        update,
        rollback,
        healthcheck: service_healthcheck,
        restart: service_restart,
        after,
        labels,
        container_labels,
    } = s;
    let (replicas, mode) = match *mode {
        ServiceMode::Replicated(n) => (Some(spanned(n)), None),
        ServiceMode::Global => (None, Some(spanned(ServiceModeFile::Global))),
        // The file format has one count for both, as compose has.
        ServiceMode::ReplicatedJob {
            max_concurrent,
            total_completions: _,
        } => (
            Some(spanned(max_concurrent)),
            Some(spanned(ServiceModeFile::ReplicatedJob)),
        ),
        ServiceMode::GlobalJob => (None, Some(spanned(ServiceModeFile::GlobalJob))),
    };
    ServiceFile {
        image: spanned(image.clone()),
        replicas,
        mode,
        command: command.clone(),
        args: args.clone(),
        env: keyed(env),
        unset_env: unset_env.iter().cloned().map(spanned).collect(),
        user: user.clone(),
        workdir: workdir.clone(),
        hostname: hostname.clone().map(spanned),
        init: *init,
        read_only: *read_only,
        tty: *tty,
        stdin_open: *stdin_open,
        stop_signal: stop_signal.clone(),
        stop_grace_period: stop_grace_period.map(duration),
        groups: names(groups),
        cap_add: names(cap_add),
        cap_drop: names(cap_drop),
        sysctls: keyed(sysctls),
        extra_hosts: names(extra_hosts),
        dns: names(dns),
        dns_search: names(dns_search),
        ulimits: ulimits
            .iter()
            .map(|(name, u)| {
                let limit = if u.soft == u.hard {
                    UlimitFile::Single(u.soft)
                } else {
                    UlimitFile::Pair {
                        soft: u.soft,
                        hard: u.hard,
                    }
                };
                (spanned(name.clone()), limit)
            })
            .collect(),
        logging: logging.as_ref().map(|l| LoggingFile {
            driver: l.driver.clone(),
            options: l.options.clone(),
        }),
        endpoint_mode: endpoint_mode.map(|m| match m {
            EndpointMode::Vip => EndpointModeFile::Vip,
            EndpointMode::Dnsrr => EndpointModeFile::Dnsrr,
        }),
        max_replicas_per_node: *max_replicas_per_node,
        networks: names(networks),
        configs: configs.iter().map(file_ref).collect(),
        secrets: secrets.iter().map(file_ref).collect(),
        network_aliases: network_aliases
            .iter()
            .map(|(network, aliases)| (spanned(network.clone()), names(aliases)))
            .collect(),
        ports: ports.iter().map(|p| spanned(port(p))).collect(),
        constraints: names(constraints),
        preferences: preferences
            .iter()
            .map(|p| spanned(format!("spread={p}")))
            .collect(),
        mounts: mounts.iter().map(|m| spanned(mount(m))).collect(),
        resources: resources(service_resources),
        update: update.as_ref().map(policy),
        rollback: rollback.as_ref().map(policy),
        healthcheck: service_healthcheck
            .as_ref()
            .map(|h| spanned(healthcheck(h))),
        restart: service_restart.as_ref().map(restart),
        after: names(after),
        labels: keyed(labels),
        container_labels: keyed(container_labels),
        origin: origin(group.as_ref()),
    }
}

fn network(network: &Network) -> NetworkFile {
    let Network {
        name: _,
        group,
        driver,
        attachable,
        internal,
        labels,
        options,
        ipam,
        external,
    } = network;
    NetworkFile {
        driver: Some(spanned(driver.clone())),
        attachable: Some(*attachable),
        internal: Some(*internal),
        labels: keyed(labels),
        options: keyed(options),
        subnets: ipam.subnets.iter().cloned().map(spanned).collect(),
        ipam_driver: ipam.driver.clone().map(spanned),
        external: external.as_ref().map(|_| true),
        name: external.clone().map(spanned),
        origin: origin(group.as_ref()),
    }
}

/// A config with its text inline, so the rendered spec stands on its own.
fn config(config: &Config) -> ConfigFile {
    let Config {
        name: _,
        group,
        data,
        labels,
        fixed_name,
        template_driver,
    } = config;
    let (content, external, swarm_name) = match data {
        ConfigData::Content(text) => (
            Some(spanned(text.clone())),
            None,
            fixed_name.clone().map(spanned),
        ),
        ConfigData::External { name } => (None, Some(true), Some(spanned(name.clone()))),
    };
    ConfigFile {
        file: None,
        content,
        external,
        name: swarm_name,
        template_driver: template_driver.clone().map(spanned),
        labels: keyed(labels),
        origin: origin(group.as_ref()),
    }
}

/// A secret by its file, never its value.
fn secret(secret: &Secret) -> SecretFile {
    let Secret {
        name: _,
        group,
        data,
        labels,
        fixed_name,
        template_driver,
    } = secret;
    let (file, encryption, external, swarm_name) = match data {
        SecretData::File {
            path,
            encryption,
            value: _,
        } => (
            Some(spanned(path.clone())),
            encryption.map(spanned),
            None,
            fixed_name.clone().map(spanned),
        ),
        SecretData::External { name } => (None, None, Some(true), Some(spanned(name.clone()))),
    };
    SecretFile {
        file,
        encryption,
        external,
        name: swarm_name,
        template_driver: template_driver.clone().map(spanned),
        labels: keyed(labels),
        origin: origin(group.as_ref()),
    }
}

fn file_ref(file: &FileRef) -> Spanned<FileRefFile> {
    let FileRef {
        source,
        target,
        uid,
        gid,
        mode,
    } = file;
    spanned(FileRefFile {
        source: spanned(source.clone()),
        target: Some(target.clone()),
        uid: Some(uid.clone()),
        gid: Some(gid.clone()),
        mode: Some(*mode),
    })
}

fn ssh(ssh: &SshSettings) -> SshFile {
    let SshSettings {
        user,
        port,
        identity,
        known_hosts,
    } = ssh;
    SshFile {
        user: Some(spanned(user.clone())),
        port: Some(*port),
        identity: Some(identity.clone()),
        known_hosts: Some(known_hosts.clone()),
    }
}

/// A node; its `ssh` only where it differs from the spec's `[ssh]`.
fn node(node: &Node, defaults: &SshSettings) -> NodeFile {
    let Node {
        name: _,
        address,
        role,
        labels,
        availability,
        arch,
        ssh: node_ssh,
        host_key,
        adopt,
        board,
    } = node;
    NodeFile {
        address: spanned(address.clone()),
        role: match role {
            Role::Manager => RoleFile::Manager,
            Role::Worker => RoleFile::Worker,
        },
        labels: keyed(labels),
        availability: availability.map(|a| match a {
            Availability::Active => AvailabilityFile::Active,
            Availability::Pause => AvailabilityFile::Pause,
            Availability::Drain => AvailabilityFile::Drain,
        }),
        arch: arch.clone().map(spanned),
        ssh: (node_ssh != defaults).then(|| ssh(node_ssh)),
        host_key: host_key.clone().map(spanned),
        adopt: adopt.then_some(true),
        board: (!board.is_empty()).then(|| board_section(board)),
    }
}

/// A node's merged board configuration, written out on the node (the
/// `[board]` it came from is folded in). A secret's file names its secret.
fn board_section(board: &BoardConfig) -> BoardSection {
    let BoardConfig {
        packages,
        absent_packages,
        sysctl,
        modules,
        cmdline,
        config_txt,
        docker_daemon,
        files,
        mounts,
    } = board;
    let list = |items: &std::collections::BTreeSet<String>| -> Vec<Spanned<String>> {
        items.iter().cloned().map(spanned).collect()
    };
    BoardSection {
        mount: mounts
            .iter()
            .map(|(point, m)| {
                (
                    spanned(point.clone()),
                    crate::file::BoardMountEntry {
                        what: spanned(m.what.clone()),
                        fstype: Some(spanned(m.fstype.clone())),
                        options: Some(spanned(m.options.clone())),
                    },
                )
            })
            .collect(),
        packages: list(packages),
        absent_packages: list(absent_packages),
        sysctl: sysctl
            .iter()
            .map(|(k, v)| {
                (
                    spanned(k.clone()),
                    spanned(SysctlValueFile::Text(v.clone())),
                )
            })
            .collect(),
        modules: list(modules),
        cmdline: list(cmdline),
        config_txt: list(config_txt),
        docker_daemon: docker_daemon
            .as_deref()
            .and_then(|json| serde_json::from_str::<toml::Table>(json).ok())
            .map(spanned),
        file: files
            .iter()
            .map(|(path, file)| {
                let BoardFile {
                    content,
                    mode,
                    owner,
                    group,
                    then,
                } = file;
                let (text, secret) = match content {
                    BoardFileContent::Plain(bytes) => (
                        Some(spanned(String::from_utf8_lossy(bytes).into_owned())),
                        None,
                    ),
                    BoardFileContent::Secret { secret, .. } => {
                        (None, Some(spanned(secret.clone())))
                    }
                };
                let entry = BoardFileEntry {
                    content: text,
                    source: None,
                    secret,
                    mode: Some(spanned(format!("{mode:04o}"))),
                    owner: Some(spanned(format!("{owner}:{group}"))),
                    then: then.clone().map(spanned),
                };
                (spanned(path.clone()), entry)
            })
            .collect(),
    }
}

/// The cluster-wide sections, every setting written out (defaults included).
#[derive(Serialize)]
struct Head {
    cluster: ClusterFile,
    controller: ControllerFile,
    ssh: SshFile,
    bootstrap: BootstrapFile,
    maintenance: MaintenanceFile,
}

fn head(spec: &Spec) -> Head {
    let ControllerSettings {
        interval,
        prune,
        mode,
        max_delete_fraction,
        suspend,
        down_node_grace,
    } = &spec.controller;
    let Bootstrap {
        hostname,
        hosts_file,
        install_docker,
        start_docker,
        docker_users,
    } = &spec.bootstrap;
    Head {
        cluster: ClusterFile {
            name: spanned(spec.cluster.name.clone()),
        },
        controller: ControllerFile {
            interval: Some(duration(*interval)),
            prune: Some(*prune),
            mode: Some(match mode {
                ControllerMode::Apply => ControllerModeFile::Apply,
                ControllerMode::Observe => ControllerModeFile::Observe,
            }),
            max_delete_fraction: Some(spanned(*max_delete_fraction)),
            suspend: Some(*suspend),
            down_node_grace: Some(duration(*down_node_grace)),
        },
        ssh: ssh(&spec.ssh),
        bootstrap: BootstrapFile {
            hostname: Some(*hostname),
            hosts_file: Some(*hosts_file),
            install_docker: Some(install_docker.clone()),
            start_docker: Some(start_docker.clone()),
            docker_users: Some(docker_users.iter().cloned().map(spanned).collect()),
        },
        maintenance: maintenance(&spec.maintenance),
    }
}

fn maintenance(maintenance: &Maintenance) -> MaintenanceFile {
    let Maintenance {
        upgrade,
        reboot,
        max_unavailable,
        drain_timeout,
        boot_timeout,
        window,
        drain_on,
        prune_images,
    } = maintenance;
    MaintenanceFile {
        upgrade: Some(upgrade.clone()),
        reboot: Some(match reboot {
            RebootPolicy::WhenRequired => RebootFile::WhenRequired,
            RebootPolicy::Always => RebootFile::Always,
            RebootPolicy::Never => RebootFile::Never,
        }),
        max_unavailable: Some(spanned(*max_unavailable)),
        drain_timeout: Some(duration(*drain_timeout)),
        boot_timeout: Some(duration(*boot_timeout)),
        window: window.map(|w| spanned(w.to_string())),
        prune_images: prune_images.map(duration),
        drain_on: drain_on
            .iter()
            .map(|c| spanned(c.as_str().to_string()))
            .collect(),
    }
}

/// The whole spec as one TOML document.
pub fn to_toml(spec: &Spec) -> String {
    let mut parts = vec![toml::to_string(&head(spec)).unwrap_or_default()];
    for n in spec.nodes.values() {
        parts.push(section("node", &n.name, node(n, &spec.ssh)));
    }
    for n in spec.networks.values() {
        parts.push(section("network", &n.name, network(n)));
    }
    for c in spec.configs.values() {
        parts.push(section("config", &c.name, config(c)));
    }
    for s in spec.secrets.values() {
        parts.push(section("secret", &s.name, secret(s)));
    }
    for s in spec.services.values() {
        parts.push(section("service", &s.name, service(s)));
    }
    parts.join("\n")
}
