//! Where each field of a translated service came from in the compose file.
//!
//! A translated entry goes to the loader as the file format's own values
//! (no TOML text in between), each with a source of its own
//! ([`crate::source::SourceFile::generated`]) whose spans stand for places
//! in the compose file: span `k..k+1` is the `k`-th compose key the entry's
//! fields came from, anything else the entry itself. So a problem the
//! loader finds after translation (a bad duration, a reserved label) points
//! at the key the user wrote.
//!
//! [`service`] names the compose key of every field of [`ServiceFile`] by
//! taking it apart whole: a field added to the format does not compile
//! until it says where it comes from.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use crate::diagnostic::Position;
use crate::file::{
    FailureActionFile, FileRefFile, GenericResourceFile, HealthcheckFile, MountFile, PortFile,
    ResourcesFile, RestartFile, ServiceFile, ServiceModeFile, UlimitFile, UpdateFile,
};

/// The spans of one translated entry: each compose key gets one.
pub(crate) struct Origins<'a> {
    locate: &'a dyn Fn(&[&str]) -> Position,
    at: Vec<(Range<usize>, Position)>,
}

impl<'a> Origins<'a> {
    /// `locate` gives the place of a key path inside the entry.
    pub(crate) fn new(locate: &'a dyn Fn(&[&str]) -> Position) -> Self {
        Self {
            locate,
            at: Vec::new(),
        }
    }

    /// `value` with its spans standing for the key at `path` inside the
    /// entry; an empty value is left alone (no key to look up).
    fn place<T: Respan>(&mut self, value: T, path: &[&str]) -> T {
        if value.holds_nothing() {
            return value;
        }
        let start = self.at.len() + 1;
        self.at.push((start..start + 1, (self.locate)(path)));
        value.respanned(&(start..start + 1))
    }

    /// The spans and their places, then everything else at `entry`.
    pub(crate) fn finish(mut self, entry: Position) -> Vec<(Range<usize>, Position)> {
        self.at.push((0..usize::MAX, entry));
        self.at
    }
}

/// A translated value with every span inside it set to one.
pub(crate) trait Respan: Sized {
    fn respanned(self, span: &Range<usize>) -> Self;

    /// Nothing set (`None`, empty): there is no span to place.
    fn holds_nothing(&self) -> bool {
        false
    }
}

impl<T: Respan> Respan for Spanned<T> {
    fn respanned(self, span: &Range<usize>) -> Self {
        Spanned::new(span.clone(), self.into_inner().respanned(span))
    }
}

impl<T: Respan> Respan for Option<T> {
    fn respanned(self, span: &Range<usize>) -> Self {
        self.map(|value| value.respanned(span))
    }

    fn holds_nothing(&self) -> bool {
        self.is_none()
    }
}

impl<T: Respan> Respan for Vec<T> {
    fn respanned(self, span: &Range<usize>) -> Self {
        self.into_iter()
            .map(|value| value.respanned(span))
            .collect()
    }

    fn holds_nothing(&self) -> bool {
        self.is_empty()
    }
}

impl<K: Respan + Ord, V: Respan> Respan for BTreeMap<K, V> {
    fn respanned(self, span: &Range<usize>) -> Self {
        self.into_iter()
            .map(|(k, v)| (k.respanned(span), v.respanned(span)))
            .collect()
    }

    fn holds_nothing(&self) -> bool {
        self.is_empty()
    }
}

/// Values with no span inside.
macro_rules! no_spans_inside {
    ($($t:ty),* $(,)?) => {
        $(impl Respan for $t {
            fn respanned(self, _: &Range<usize>) -> Self {
                self
            }
        })*
    };
}

no_spans_inside!(
    String,
    u64,
    f64,
    ServiceModeFile,
    FailureActionFile,
    GenericResourceFile,
    PortFile,
    MountFile,
    UlimitFile,
);

impl Respan for FileRefFile {
    fn respanned(self, span: &Range<usize>) -> Self {
        let Self {
            source,
            target,
            uid,
            gid,
            mode,
        } = self;
        Self {
            source: source.respanned(span),
            target,
            uid,
            gid,
            mode,
        }
    }
}

impl Respan for ResourcesFile {
    fn respanned(self, span: &Range<usize>) -> Self {
        let Self {
            limit_memory,
            reserve_memory,
            limit_cpus,
            reserve_cpus,
            reserve_generic,
        } = self;
        Self {
            limit_memory: limit_memory.respanned(span),
            reserve_memory: reserve_memory.respanned(span),
            limit_cpus: limit_cpus.respanned(span),
            reserve_cpus: reserve_cpus.respanned(span),
            reserve_generic: reserve_generic.respanned(span),
        }
    }
}

impl Respan for UpdateFile {
    fn respanned(self, span: &Range<usize>) -> Self {
        let Self {
            parallelism,
            delay,
            failure_action,
            monitor,
            max_failure_ratio,
            order,
        } = self;
        Self {
            parallelism,
            delay: delay.respanned(span),
            failure_action: failure_action.respanned(span),
            monitor: monitor.respanned(span),
            max_failure_ratio: max_failure_ratio.respanned(span),
            order,
        }
    }
}

impl Respan for HealthcheckFile {
    fn respanned(self, span: &Range<usize>) -> Self {
        let Self {
            test,
            interval,
            timeout,
            retries,
            start_period,
        } = self;
        Self {
            test,
            interval: interval.respanned(span),
            timeout: timeout.respanned(span),
            retries,
            start_period: start_period.respanned(span),
        }
    }
}

impl Respan for RestartFile {
    fn respanned(self, span: &Range<usize>) -> Self {
        let Self {
            condition,
            delay,
            max_attempts,
            window,
        } = self;
        Self {
            condition,
            delay: delay.respanned(span),
            max_attempts,
            window: window.respanned(span),
        }
    }
}

/// A translated service whose every field points at the compose key it
/// came from (`update` at `deploy.update_config`).
pub(crate) fn service(service: ServiceFile, origins: &mut Origins<'_>) -> ServiceFile {
    let ServiceFile {
        image,
        replicas,
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
        resources,
        update,
        rollback,
        healthcheck,
        restart,
        after,
        labels,
        container_labels,
        origin,
    } = service;
    ServiceFile {
        image: origins.place(image, &["image"]),
        replicas: origins.place(replicas, &["deploy", "replicas"]),
        mode: origins.place(mode, &["deploy", "mode"]),
        command,
        args,
        env: origins.place(env, &["environment"]),
        unset_env: origins.place(unset_env, &["environment"]),
        user,
        workdir,
        hostname: origins.place(hostname, &["hostname"]),
        init,
        read_only,
        tty,
        stdin_open,
        stop_signal,
        stop_grace_period: origins.place(stop_grace_period, &["stop_grace_period"]),
        groups: origins.place(groups, &["group_add"]),
        cap_add: origins.place(cap_add, &["cap_add"]),
        cap_drop: origins.place(cap_drop, &["cap_drop"]),
        sysctls: origins.place(sysctls, &["sysctls"]),
        extra_hosts: origins.place(extra_hosts, &["extra_hosts"]),
        dns: origins.place(dns, &["dns"]),
        dns_search: origins.place(dns_search, &["dns_search"]),
        ulimits: origins.place(ulimits, &["ulimits"]),
        logging,
        endpoint_mode,
        max_replicas_per_node,
        networks: origins.place(networks, &["networks"]),
        configs: origins.place(configs, &["configs"]),
        secrets: origins.place(secrets, &["secrets"]),
        network_aliases: origins.place(network_aliases, &["networks"]),
        ports: origins.place(ports, &["ports"]),
        constraints: origins.place(constraints, &["deploy", "placement", "constraints"]),
        preferences: origins.place(preferences, &["deploy", "placement", "preferences"]),
        mounts: origins.place(mounts, &["volumes"]),
        resources: origins.place(resources, &["deploy", "resources"]),
        update: origins.place(update, &["deploy", "update_config"]),
        rollback: origins.place(rollback, &["deploy", "rollback_config"]),
        healthcheck: origins.place(healthcheck, &["healthcheck"]),
        restart: origins.place(restart, &["deploy", "restart_policy"]),
        after: origins.place(after, &["depends_on"]),
        labels: origins.place(labels, &["deploy", "labels"]),
        container_labels: origins.place(container_labels, &["labels"]),
        origin,
    }
}
