//! Translation between the spec model and Docker's API types.
//!
//! Writing: the spec model becomes a `ServiceSpec`, overlaid on the live one
//! for updates so fields the controller does not manage are kept. Reading:
//! only the managed fields are taken back, in the model's normal form, so
//! daemon-filled defaults never show up as drift.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, GenericResourcesInner,
    GenericResourcesInnerDiscreteResourceSpec, HealthConfig, Limit, Mount as DockerMount,
    MountTmpfsOptions, MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig,
    NetworkAttachmentConfig, ResourceObject, ResourcesUlimits, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecModeReplicatedJob, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpecContainerSpec, TaskSpecContainerSpecConfigs,
    TaskSpecContainerSpecDnsConfig, TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1,
    TaskSpecContainerSpecSecrets, TaskSpecLogDriver, TaskSpecPlacement,
    TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use reconciler_spec::{
    EndpointMode, FailureAction, FileRef, Healthcheck, Logging, Mount, MountKind, Port, Protocol,
    PublishMode, Resources, RestartCondition, RestartPolicy, Service, ServiceMode, Ulimit,
    UpdateOrder, UpdatePolicy, VolumeOptions,
};

use crate::labels;
use crate::observed::{NodeState, Owner, TaskState, UpdateState};

pub(super) fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn duration_from(nanos: Option<i64>) -> Option<Duration> {
    nanos
        .and_then(|n| u64::try_from(n).ok())
        .map(Duration::from_nanos)
}

fn count_from(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

/// The labels on every object we own.
/// A service's configs as Docker takes them: by ID and name, with the file.
fn config_refs(configs: &[FileRef], ids: &DataIds) -> Vec<TaskSpecContainerSpecConfigs> {
    configs
        .iter()
        .map(|reference| {
            let FileRef {
                source,
                target,
                uid,
                gid,
                mode,
            } = reference;
            TaskSpecContainerSpecConfigs {
                file: Some(TaskSpecContainerSpecFile1 {
                    name: Some(target.clone()),
                    uid: Some(uid.clone()),
                    gid: Some(gid.clone()),
                    mode: Some(*mode),
                }),
                config_id: ids.configs.get(source).cloned(),
                config_name: Some(source.clone()),
                // A config mounted as a credential spec or runtime: not ours.
                runtime: None,
            }
        })
        .collect()
}

/// A service's secrets as Docker takes them: by ID and name, with the file.
fn secret_refs(secrets: &[FileRef], ids: &DataIds) -> Vec<TaskSpecContainerSpecSecrets> {
    secrets
        .iter()
        .map(|reference| {
            let FileRef {
                source,
                target,
                uid,
                gid,
                mode,
            } = reference;
            TaskSpecContainerSpecSecrets {
                file: Some(TaskSpecContainerSpecFile {
                    name: Some(target.clone()),
                    uid: Some(uid.clone()),
                    gid: Some(gid.clone()),
                    mode: Some(*mode),
                }),
                secret_id: ids.secrets.get(source).cloned(),
                secret_name: Some(source.clone()),
            }
        })
        .collect()
}

/// A container's configs and secrets read back, by Swarm name.
fn data_refs_from(container: &TaskSpecContainerSpec) -> (Vec<FileRef>, Vec<FileRef>) {
    let file_ref = |name: Option<String>,
                    target: Option<String>,
                    uid: Option<String>,
                    gid: Option<String>,
                    mode: Option<u32>| {
        Some(FileRef {
            source: name?,
            target: target.unwrap_or_default(),
            uid: uid.unwrap_or_default(),
            gid: gid.unwrap_or_default(),
            mode: mode.unwrap_or(0),
        })
    };
    let configs = container
        .configs
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| {
            let file = c.file.unwrap_or_default();
            file_ref(c.config_name, file.name, file.uid, file.gid, file.mode)
        })
        .collect();
    let secrets = container
        .secrets
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| {
            let file = c.file.unwrap_or_default();
            file_ref(c.secret_name, file.name, file.uid, file.gid, file.mode)
        })
        .collect();
    (configs, secrets)
}

/// The Docker IDs of configs and secrets by Swarm name: a service names
/// each by ID and name.
#[derive(Debug, Default)]
pub(super) struct DataIds {
    pub configs: HashMap<String, String>,
    pub secrets: HashMap<String, String>,
}

pub(super) fn ownership_labels(
    cluster: &str,
    hash: &str,
    revision: Option<&str>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
        (labels::CLUSTER.to_string(), cluster.to_string()),
        (labels::SPEC_HASH.to_string(), hash.to_string()),
    ]);
    if let Some(revision) = revision {
        out.insert(labels::REVISION.to_string(), revision.to_string());
    }
    out
}

pub(super) fn owner_of(labels: &HashMap<String, String>, cluster: &str) -> Owner {
    match (labels.get(labels::MANAGED_BY), labels.get(labels::CLUSTER)) {
        (Some(by), Some(name)) if by == labels::MANAGED_BY_VALUE && name == cluster => {
            Owner::ThisCluster
        }
        (Some(by), Some(name)) if by == labels::MANAGED_BY_VALUE => {
            Owner::OtherCluster(name.clone())
        }
        _ => Owner::Unmanaged,
    }
}

/// The user's labels: everything but the controller's own.
pub(super) fn user_labels(labels: &HashMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| !labels::is_reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Builds the service spec to send. `base` is the live spec for updates: the
/// managed fields are replaced, everything else Docker stored is kept.
#[allow(
    clippy::too_many_lines,
    reason = "a line or two per field of the service: the destructuring is the checklist"
)]
pub(super) fn service_spec(
    service: &Service,
    ownership: BTreeMap<String, String>,
    base: Option<ServiceSpec>,
    ids: &DataIds,
) -> ServiceSpec {
    // Taken apart without `..`: a new field of `Service` does not compile
    // until it is written here (and read back in `service_from_spec`).
    let Service {
        name,
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
        healthcheck,
        restart,
        // Orders the work; not part of the Docker object.
        after: _,
        labels: service_labels,
        container_labels,
    } = service;
    let mut spec = base.unwrap_or_default();
    spec.name = Some(name.clone());
    let mut all_labels: HashMap<String, String> = service_labels.clone().into_iter().collect();
    all_labels.extend(ownership);
    all_labels.extend(labels::group_label(group.as_ref()));
    spec.labels = Some(all_labels);
    spec.mode = Some(match *mode {
        ServiceMode::Replicated(n) => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(count(n)),
            }),
            ..Default::default()
        },
        ServiceMode::Global => ServiceSpecMode {
            global: Some(HashMap::new()),
            ..Default::default()
        },
        ServiceMode::ReplicatedJob {
            max_concurrent,
            total_completions,
        } => ServiceSpecMode {
            replicated_job: Some(ServiceSpecModeReplicatedJob {
                max_concurrent: Some(count(max_concurrent)),
                total_completions: Some(count(total_completions)),
            }),
            ..Default::default()
        },
        ServiceMode::GlobalJob => ServiceSpecMode {
            global_job: Some(HashMap::new()),
            ..Default::default()
        },
    });
    spec.update_config = update.as_ref().map(update_config);
    spec.rollback_config = rollback.as_ref().map(rollback_config);
    spec.endpoint_spec = Some(EndpointSpec {
        // Written either way, so a mode set by hand never survives an update.
        mode: Some(match endpoint_mode {
            Some(EndpointMode::Dnsrr) => EndpointSpecModeEnum::DNSRR,
            Some(EndpointMode::Vip) | None => EndpointSpecModeEnum::VIP,
        }),
        ports: Some(ports.iter().map(port_config).collect()),
    });

    let mut task = spec.task_template.unwrap_or_default();
    let mut container = task.container_spec.unwrap_or_default();
    container.image = Some(image.clone());
    container.labels = Some(container_labels.clone().into_iter().collect());
    container.command = command.clone();
    container.args = args.clone();
    // A name without `=` unsets it (the image's default too), as Docker reads the list.
    container.env = Some(
        env.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(unset_env.iter().cloned())
            .collect(),
    );
    container.user = user.clone();
    container.dir = workdir.clone();
    container.hostname = hostname.clone();
    container.init = *init;
    container.read_only = *read_only;
    container.tty = *tty;
    container.open_stdin = *stdin_open;
    container.stop_signal = stop_signal.clone();
    container.stop_grace_period = stop_grace_period.map(nanos);
    container.groups = Some(groups.clone());
    container.capability_add = Some(cap_add.clone());
    container.capability_drop = Some(cap_drop.clone());
    container.sysctls = Some(sysctls.clone().into_iter().collect());
    // Swarm keeps /etc/hosts lines ("IP HOST"); the spec writes compose's `host:ip`.
    container.hosts = Some(
        extra_hosts
            .iter()
            .filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}")))
            .collect(),
    );
    container.ulimits = Some(
        ulimits
            .iter()
            .map(|(name, Ulimit { soft, hard })| ResourcesUlimits {
                name: Some(name.clone()),
                soft: Some(*soft),
                hard: Some(*hard),
            })
            .collect(),
    );
    task.log_driver = logging
        .as_ref()
        .map(|Logging { driver, options }| TaskSpecLogDriver {
            name: Some(driver.clone()),
            options: Some(options.clone().into_iter().collect()),
        });
    container.dns_config =
        (!dns.is_empty() || !dns_search.is_empty()).then(|| TaskSpecContainerSpecDnsConfig {
            nameservers: Some(dns.clone()),
            search: Some(dns_search.clone()),
            options: None,
        });
    container.mounts = Some(mounts.iter().map(docker_mount).collect());
    container.health_check = healthcheck.as_ref().map(health_config);
    container.configs = Some(config_refs(configs, ids));
    container.secrets = Some(secret_refs(secrets, ids));
    task.container_spec = Some(container);
    task.networks = Some(
        networks
            .iter()
            .map(|n| NetworkAttachmentConfig {
                target: Some(n.clone()),
                aliases: network_aliases.get(n).cloned(),
                ..Default::default()
            })
            .collect(),
    );
    let placement = task.placement.unwrap_or_default();
    task.placement = Some(TaskSpecPlacement {
        constraints: Some(constraints.clone()),
        preferences: Some(
            preferences
                .iter()
                .map(|p| TaskSpecPlacementPreferences {
                    spread: Some(TaskSpecPlacementSpread {
                        spread_descriptor: Some(p.clone()),
                    }),
                })
                .collect(),
        ),
        max_replicas: max_replicas_per_node.and_then(|n| i64::try_from(n).ok()),
        ..placement
    });
    task.resources = Some(resources(service_resources));
    task.restart_policy = restart.as_ref().map(restart_policy);
    spec.task_template = Some(task);
    spec
}

fn port_config(port: &Port) -> EndpointPortConfig {
    let Port {
        target,
        published,
        protocol,
        mode,
    } = *port;
    EndpointPortConfig {
        name: None,
        target_port: Some(i64::from(target)),
        published_port: published.map(i64::from),
        protocol: Some(match protocol {
            Protocol::Tcp => EndpointPortConfigProtocolEnum::TCP,
            Protocol::Udp => EndpointPortConfigProtocolEnum::UDP,
            Protocol::Sctp => EndpointPortConfigProtocolEnum::SCTP,
        }),
        publish_mode: Some(match mode {
            PublishMode::Ingress => EndpointPortConfigPublishModeEnum::INGRESS,
            PublishMode::Host => EndpointPortConfigPublishModeEnum::HOST,
        }),
    }
}

fn docker_mount(mount: &Mount) -> DockerMount {
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
    DockerMount {
        target: Some(target.clone()),
        source: source.clone(),
        typ: Some(match kind {
            MountKind::Bind => MountType::BIND,
            MountKind::Volume => MountType::VOLUME,
            MountKind::Tmpfs => MountType::TMPFS,
        }),
        read_only: Some(*readonly),
        volume_options: (*kind == MountKind::Volume && !volume.is_empty()).then(|| {
            MountVolumeOptions {
                no_copy: nocopy.then_some(true),
                labels: (!labels.is_empty()).then(|| labels.clone().into_iter().collect()),
                driver_config: (driver.is_some() || !driver_options.is_empty()).then(|| {
                    MountVolumeOptionsDriverConfig {
                        name: driver.clone(),
                        options: Some(driver_options.clone().into_iter().collect()),
                    }
                }),
                ..Default::default()
            }
        }),
        tmpfs_options: tmpfs_size.map(|bytes| MountTmpfsOptions {
            size_bytes: Some(i64::try_from(bytes).unwrap_or(i64::MAX)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn resources(resources: &Resources) -> TaskSpecResources {
    let Resources {
        limit_memory,
        reserve_memory,
        limit_nano_cpus,
        reserve_nano_cpus,
        reserve_generic,
    } = resources;
    TaskSpecResources {
        limits: Some(Limit {
            nano_cpus: *limit_nano_cpus,
            memory_bytes: limit_memory.map(count),
            ..Default::default()
        }),
        reservations: Some(ResourceObject {
            nano_cpus: *reserve_nano_cpus,
            memory_bytes: reserve_memory.map(count),
            generic_resources: (!reserve_generic.is_empty()).then(|| {
                reserve_generic
                    .iter()
                    .map(|(kind, value)| GenericResourcesInner {
                        discrete_resource_spec: Some(GenericResourcesInnerDiscreteResourceSpec {
                            kind: Some(kind.clone()),
                            value: Some(*value),
                        }),
                        named_resource_spec: None,
                    })
                    .collect()
            }),
        }),
        ..Default::default()
    }
}

fn update_config(policy: &UpdatePolicy) -> ServiceSpecUpdateConfig {
    let UpdatePolicy {
        parallelism,
        delay,
        failure_action,
        monitor,
        max_failure_ratio,
        order,
    } = *policy;
    ServiceSpecUpdateConfig {
        parallelism: parallelism.map(count),
        delay: delay.map(nanos),
        failure_action: failure_action.map(|a| match a {
            FailureAction::Pause => ServiceSpecUpdateConfigFailureActionEnum::PAUSE,
            FailureAction::Continue => ServiceSpecUpdateConfigFailureActionEnum::CONTINUE,
            FailureAction::Rollback => ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK,
        }),
        monitor: monitor.map(nanos),
        max_failure_ratio,
        order: order.map(|o| match o {
            UpdateOrder::StopFirst => ServiceSpecUpdateConfigOrderEnum::STOP_FIRST,
            UpdateOrder::StartFirst => ServiceSpecUpdateConfigOrderEnum::START_FIRST,
        }),
    }
}

fn rollback_config(policy: &UpdatePolicy) -> ServiceSpecRollbackConfig {
    let UpdatePolicy {
        parallelism,
        delay,
        failure_action,
        monitor,
        max_failure_ratio,
        order,
    } = *policy;
    ServiceSpecRollbackConfig {
        parallelism: parallelism.map(count),
        delay: delay.map(nanos),
        failure_action: failure_action.map(|a| match a {
            FailureAction::Pause => ServiceSpecRollbackConfigFailureActionEnum::PAUSE,
            FailureAction::Continue | FailureAction::Rollback => {
                ServiceSpecRollbackConfigFailureActionEnum::CONTINUE
            }
        }),
        monitor: monitor.map(nanos),
        max_failure_ratio,
        order: order.map(|o| match o {
            UpdateOrder::StopFirst => ServiceSpecRollbackConfigOrderEnum::STOP_FIRST,
            UpdateOrder::StartFirst => ServiceSpecRollbackConfigOrderEnum::START_FIRST,
        }),
    }
}

fn health_config(health: &Healthcheck) -> HealthConfig {
    let Healthcheck {
        test,
        interval,
        timeout,
        retries,
        start_period,
    } = health;
    HealthConfig {
        test: Some(test.clone()),
        interval: interval.map(nanos),
        timeout: timeout.map(nanos),
        retries: retries.map(count),
        start_period: start_period.map(nanos),
        // API 1.44 (`start-interval`): newer than Debian's Docker.
        start_interval: None,
    }
}

fn restart_policy(restart: &RestartPolicy) -> TaskSpecRestartPolicy {
    let RestartPolicy {
        condition,
        delay,
        max_attempts,
        window,
    } = *restart;
    TaskSpecRestartPolicy {
        condition: condition.map(|c| match c {
            RestartCondition::None => TaskSpecRestartPolicyConditionEnum::NONE,
            RestartCondition::OnFailure => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
            RestartCondition::Any => TaskSpecRestartPolicyConditionEnum::ANY,
        }),
        delay: delay.map(nanos),
        max_attempts: max_attempts.map(count),
        window: window.map(nanos),
    }
}

/// A node's state in our terms.
pub(super) fn node_state(state: Option<bollard::models::NodeState>) -> NodeState {
    use bollard::models::NodeState as Docker;
    match state {
        Some(Docker::READY) => NodeState::Ready,
        Some(Docker::DOWN) => NodeState::Down,
        Some(Docker::DISCONNECTED) => NodeState::Disconnected,
        Some(Docker::UNKNOWN) | None => NodeState::Unknown,
    }
}

/// A service's update state in our terms; `None` when no update ran.
pub(super) fn update_state(
    status: Option<&bollard::models::ServiceUpdateStatus>,
) -> Option<UpdateState> {
    use bollard::models::ServiceUpdateStatusStateEnum as Docker;
    Some(match status?.state? {
        Docker::EMPTY => return None,
        Docker::UPDATING => UpdateState::Updating,
        Docker::PAUSED => UpdateState::Paused,
        Docker::COMPLETED => UpdateState::Completed,
        Docker::ROLLBACK_STARTED => UpdateState::RollbackStarted,
        Docker::ROLLBACK_PAUSED => UpdateState::RollbackPaused,
        Docker::ROLLBACK_COMPLETED => UpdateState::RollbackCompleted,
    })
}

/// A task's state in our terms (a task without one is `new`).
pub(super) fn task_state(state: Option<bollard::models::TaskState>) -> TaskState {
    use bollard::models::TaskState as Docker;
    match state {
        None | Some(Docker::NEW) => TaskState::New,
        Some(Docker::ALLOCATED) => TaskState::Allocated,
        Some(Docker::PENDING) => TaskState::Pending,
        Some(Docker::ASSIGNED) => TaskState::Assigned,
        Some(Docker::ACCEPTED) => TaskState::Accepted,
        Some(Docker::PREPARING) => TaskState::Preparing,
        Some(Docker::READY) => TaskState::Ready,
        Some(Docker::STARTING) => TaskState::Starting,
        Some(Docker::RUNNING) => TaskState::Running,
        Some(Docker::COMPLETE) => TaskState::Complete,
        Some(Docker::SHUTDOWN) => TaskState::Shutdown,
        Some(Docker::FAILED) => TaskState::Failed,
        Some(Docker::REJECTED) => TaskState::Rejected,
        Some(Docker::REMOVE) => TaskState::Remove,
        Some(Docker::ORPHANED) => TaskState::Orphaned,
    }
}

/// Reads the managed fields of a live service spec back into the model.
/// `network_names` maps the network IDs Docker stores back to names.
#[allow(
    clippy::too_many_lines,
    reason = "a line or two per field of the service: the destructuring is the checklist"
)]
pub(super) fn service_from_spec(
    name: &str,
    spec: &ServiceSpec,
    network_names: &HashMap<String, String>,
) -> Service {
    // Borrowed, not cloned: a thousand services' specs are most of what a
    // no-op observes.
    let no_task = bollard::models::TaskSpec::default();
    let task = spec.task_template.as_ref().unwrap_or(&no_task);
    let no_container = bollard::models::TaskSpecContainerSpec::default();
    let container = task.container_spec.as_ref().unwrap_or(&no_container);
    let image = container.image.clone().unwrap_or_default();
    let mode = match &spec.mode {
        Some(ServiceSpecMode {
            global: Some(_), ..
        }) => ServiceMode::Global,
        Some(ServiceSpecMode {
            replicated: Some(replicated),
            ..
        }) => ServiceMode::Replicated(count_from(replicated.replicas).unwrap_or(0)),
        Some(ServiceSpecMode {
            global_job: Some(_),
            ..
        }) => ServiceMode::GlobalJob,
        Some(ServiceSpecMode {
            replicated_job: Some(job),
            ..
        }) => {
            // Docker's defaults: one at a time, as many as run at once.
            let max_concurrent = count_from(job.max_concurrent).unwrap_or(1);
            ServiceMode::ReplicatedJob {
                max_concurrent,
                total_completions: count_from(job.total_completions).unwrap_or(max_concurrent),
            }
        }
        _ => ServiceMode::Replicated(1),
    };
    let listed: &[String] = container.env.as_deref().unwrap_or_default();
    let env = listed
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let unset_env = listed
        .iter()
        .filter(|kv| !kv.contains('='))
        .cloned()
        .collect();
    let attachments: Vec<(String, Vec<String>)> = task
        .networks
        .clone()
        .or_else(|| spec.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| {
            let target = n.target?;
            let name = network_names.get(&target).cloned().unwrap_or(target);
            Some((name, n.aliases.unwrap_or_default()))
        })
        .collect();
    let (configs, secrets) = data_refs_from(container);
    let network_aliases = attachments
        .iter()
        .filter(|(_, aliases)| !aliases.is_empty())
        .cloned()
        .collect();
    let networks = attachments.into_iter().map(|(name, _)| name).collect();
    let ports = spec
        .endpoint_spec
        .as_ref()
        .and_then(|e| e.ports.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(port_from)
        .collect();
    let placement = task.placement.clone().unwrap_or_default();
    let preferences = placement
        .preferences
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.spread.and_then(|s| s.spread_descriptor))
        .collect();
    Service {
        name: name.to_string(),
        group: spec.labels.as_ref().and_then(labels::group_of),
        image,
        mode,
        command: container.command.clone().filter(|c| !c.is_empty()),
        args: container.args.clone().filter(|a| !a.is_empty()),
        env,
        unset_env,
        user: container.user.clone().filter(|u| !u.is_empty()),
        workdir: container.dir.clone().filter(|d| !d.is_empty()),
        hostname: container.hostname.clone().filter(|h| !h.is_empty()),
        init: container.init,
        read_only: container.read_only.filter(|r| *r),
        tty: container.tty.filter(|t| *t),
        stdin_open: container.open_stdin.filter(|o| *o),
        stop_signal: container.stop_signal.clone().filter(|s| !s.is_empty()),
        stop_grace_period: container
            .stop_grace_period
            .and_then(|n| u64::try_from(n).ok())
            .map(Duration::from_nanos),
        groups: container.groups.clone().unwrap_or_default(),
        cap_add: container.capability_add.clone().unwrap_or_default(),
        cap_drop: container.capability_drop.clone().unwrap_or_default(),
        sysctls: container
            .sysctls
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        extra_hosts: container
            .hosts
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|line| {
                line.split_once(' ')
                    .map(|(ip, host)| format!("{host}:{ip}"))
            })
            .collect(),
        dns: container
            .dns_config
            .as_ref()
            .and_then(|d| d.nameservers.clone())
            .unwrap_or_default(),
        dns_search: container
            .dns_config
            .as_ref()
            .and_then(|d| d.search.clone())
            .unwrap_or_default(),
        ulimits: container
            .ulimits
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|u| {
                Some((
                    u.name?,
                    reconciler_spec::Ulimit {
                        soft: u.soft.unwrap_or(0),
                        hard: u.hard.unwrap_or(0),
                    },
                ))
            })
            .collect(),
        logging: task.log_driver.clone().map(|l| reconciler_spec::Logging {
            driver: l.name.unwrap_or_default(),
            options: l.options.unwrap_or_default().into_iter().collect(),
        }),
        // `vip` is Docker's default and reads back as unset.
        endpoint_mode: spec
            .endpoint_spec
            .as_ref()
            .and_then(|e| e.mode)
            .and_then(|m| (m == EndpointSpecModeEnum::DNSRR).then_some(EndpointMode::Dnsrr)),
        max_replicas_per_node: task
            .placement
            .as_ref()
            .and_then(|p| p.max_replicas)
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n > 0),
        networks,
        configs,
        secrets,
        network_aliases,
        ports,
        constraints: placement.constraints.unwrap_or_default(),
        preferences,
        mounts: container
            .mounts
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(mount_from)
            .collect(),
        resources: resources_from(task.resources.as_ref()),
        update: spec.update_config.as_ref().map(update_from),
        rollback: spec.rollback_config.as_ref().map(rollback_from),
        healthcheck: container.health_check.as_ref().map(healthcheck_from),
        restart: task.restart_policy.as_ref().map(restart_from),
        after: Vec::new(),
        labels: user_labels(&spec.labels.clone().unwrap_or_default()),
        container_labels: container
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}

fn update_from(u: &ServiceSpecUpdateConfig) -> UpdatePolicy {
    UpdatePolicy {
        parallelism: count_from(u.parallelism),
        delay: duration_from(u.delay),
        failure_action: u.failure_action.and_then(|a| match a {
            ServiceSpecUpdateConfigFailureActionEnum::PAUSE => Some(FailureAction::Pause),
            ServiceSpecUpdateConfigFailureActionEnum::CONTINUE => Some(FailureAction::Continue),
            ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK => Some(FailureAction::Rollback),
            ServiceSpecUpdateConfigFailureActionEnum::EMPTY => None,
        }),
        monitor: duration_from(u.monitor),
        max_failure_ratio: u.max_failure_ratio,
        order: u.order.and_then(|o| match o {
            ServiceSpecUpdateConfigOrderEnum::STOP_FIRST => Some(UpdateOrder::StopFirst),
            ServiceSpecUpdateConfigOrderEnum::START_FIRST => Some(UpdateOrder::StartFirst),
            ServiceSpecUpdateConfigOrderEnum::EMPTY => None,
        }),
    }
}

fn rollback_from(r: &ServiceSpecRollbackConfig) -> UpdatePolicy {
    UpdatePolicy {
        parallelism: count_from(r.parallelism),
        delay: duration_from(r.delay),
        failure_action: r.failure_action.and_then(|a| match a {
            ServiceSpecRollbackConfigFailureActionEnum::PAUSE => Some(FailureAction::Pause),
            ServiceSpecRollbackConfigFailureActionEnum::CONTINUE => Some(FailureAction::Continue),
            ServiceSpecRollbackConfigFailureActionEnum::EMPTY => None,
        }),
        monitor: duration_from(r.monitor),
        max_failure_ratio: r.max_failure_ratio,
        order: r.order.and_then(|o| match o {
            ServiceSpecRollbackConfigOrderEnum::STOP_FIRST => Some(UpdateOrder::StopFirst),
            ServiceSpecRollbackConfigOrderEnum::START_FIRST => Some(UpdateOrder::StartFirst),
            ServiceSpecRollbackConfigOrderEnum::EMPTY => None,
        }),
    }
}

fn healthcheck_from(h: &HealthConfig) -> Healthcheck {
    Healthcheck {
        test: h.test.clone().unwrap_or_default(),
        interval: duration_from(h.interval),
        timeout: duration_from(h.timeout),
        retries: count_from(h.retries),
        start_period: duration_from(h.start_period),
    }
}

fn restart_from(r: &TaskSpecRestartPolicy) -> RestartPolicy {
    RestartPolicy {
        condition: r.condition.and_then(|c| match c {
            TaskSpecRestartPolicyConditionEnum::NONE => Some(RestartCondition::None),
            TaskSpecRestartPolicyConditionEnum::ON_FAILURE => Some(RestartCondition::OnFailure),
            TaskSpecRestartPolicyConditionEnum::ANY => Some(RestartCondition::Any),
            TaskSpecRestartPolicyConditionEnum::EMPTY => None,
        }),
        delay: duration_from(r.delay),
        max_attempts: count_from(r.max_attempts),
        window: duration_from(r.window),
    }
}

fn port_from(port: &EndpointPortConfig) -> Option<Port> {
    Some(Port {
        target: u16::try_from(port.target_port?).ok()?,
        published: port
            .published_port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0),
        protocol: match port.protocol {
            Some(EndpointPortConfigProtocolEnum::UDP) => Protocol::Udp,
            Some(EndpointPortConfigProtocolEnum::SCTP) => Protocol::Sctp,
            _ => Protocol::Tcp,
        },
        mode: match port.publish_mode {
            Some(EndpointPortConfigPublishModeEnum::HOST) => PublishMode::Host,
            _ => PublishMode::Ingress,
        },
    })
}

fn mount_from(mount: &DockerMount) -> Option<Mount> {
    Some(Mount {
        kind: match mount.typ? {
            MountType::BIND => MountKind::Bind,
            MountType::VOLUME => MountKind::Volume,
            MountType::TMPFS => MountKind::Tmpfs,
            _ => return None,
        },
        source: mount.source.clone().filter(|s| !s.is_empty()),
        target: mount.target.clone()?,
        readonly: mount.read_only.unwrap_or(false),
        tmpfs_size: mount
            .tmpfs_options
            .as_ref()
            .and_then(|t| t.size_bytes)
            .and_then(|bytes| u64::try_from(bytes).ok())
            .filter(|bytes| *bytes > 0),
        volume: mount
            .volume_options
            .as_ref()
            .map(|options| {
                let driver = options.driver_config.clone().unwrap_or_default();
                VolumeOptions {
                    driver: driver.name.filter(|n| !n.is_empty()),
                    driver_options: driver.options.unwrap_or_default().into_iter().collect(),
                    labels: options
                        .labels
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    nocopy: options.no_copy.unwrap_or(false),
                }
            })
            .unwrap_or_default(),
    })
}

fn resources_from(resources: Option<&TaskSpecResources>) -> Resources {
    let limits = resources.and_then(|r| r.limits.clone()).unwrap_or_default();
    let reservations = resources
        .and_then(|r| r.reservations.clone())
        .unwrap_or_default();
    let positive = |v: Option<i64>| v.filter(|n| *n > 0);
    Resources {
        limit_memory: count_from(positive(limits.memory_bytes)),
        reserve_memory: count_from(positive(reservations.memory_bytes)),
        limit_nano_cpus: positive(limits.nano_cpus),
        reserve_nano_cpus: positive(reservations.nano_cpus),
        reserve_generic: reservations
            .generic_resources
            .iter()
            .flatten()
            .filter_map(|r| {
                let spec = r.discrete_resource_spec.as_ref()?;
                // Docker leaves a value of 0 out.
                Some((spec.kind.clone()?, spec.value.unwrap_or(0)))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{Limit, ResourceObject, TaskSpecResources};

    use super::{owner_of, resources_from};
    use crate::labels;
    use crate::observed::Owner;

    /// Only our `managed-by` value makes an object a Reconciler's; the
    /// cluster label alone (another tool may use the same key) does not.
    #[test]
    fn ownership_needs_our_managed_by_value_and_then_the_cluster_name() {
        let labeled = |by: &str, cluster: &str| {
            HashMap::from([
                (labels::MANAGED_BY.to_string(), by.to_string()),
                (labels::CLUSTER.to_string(), cluster.to_string()),
            ])
        };
        assert_eq!(
            owner_of(&labeled(labels::MANAGED_BY_VALUE, "lab"), "lab"),
            Owner::ThisCluster
        );
        assert_eq!(
            owner_of(&labeled(labels::MANAGED_BY_VALUE, "home"), "lab"),
            Owner::OtherCluster("home".into())
        );
        assert_eq!(owner_of(&labeled("helm", "home"), "lab"), Owner::Unmanaged);
        assert_eq!(owner_of(&HashMap::new(), "lab"), Owner::Unmanaged);
    }

    /// Docker writes 0 for a limit that was cleared: read back as unset.
    #[test]
    fn zero_resources_read_back_as_unset() {
        let zero = TaskSpecResources {
            limits: Some(Limit {
                memory_bytes: Some(0),
                nano_cpus: Some(0),
                ..Default::default()
            }),
            reservations: Some(ResourceObject {
                memory_bytes: Some(0),
                nano_cpus: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        let read = resources_from(Some(&zero));
        assert_eq!(read.limit_memory, None);
        assert_eq!(read.limit_nano_cpus, None);
        assert_eq!(read.reserve_memory, None);
        assert_eq!(read.reserve_nano_cpus, Some(1));
    }
}
