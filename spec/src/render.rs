//! The fully expanded spec as TOML: what `reconciler render` prints.
//!
//! Releases and stacks appear as the services and networks they produced,
//! each with an `origin` saying where it came from. The output is itself a
//! valid spec that loads to the same services and networks, origin included.

use std::time::Duration;

use toml::{Table, Value};

use crate::model::*;
use crate::units::format_duration;

fn duration(d: Duration) -> Value {
    Value::String(format_duration(d))
}

fn size(bytes: u64) -> Value {
    for (unit, factor) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if bytes >= factor && bytes % factor == 0 {
            return Value::String(format!("{}{unit}", bytes / factor));
        }
    }
    Value::String(bytes.to_string())
}

fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

fn map(items: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Table(
        items
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn lower<T: serde::Serialize>(value: T) -> Value {
    Value::try_from(value).unwrap_or(Value::String(String::new()))
}

/// One `[kind.name]` table. A generated object keeps where it came from in
/// `origin`, so the output loads back with the same labels and spec hash.
fn section(kind: &str, name: &str, mut body: Table, origin: Option<&Group>) -> String {
    let origin = match origin {
        Some(Group::Release(release)) => Some(format!("release.{release}")),
        Some(Group::Stack(stack)) => Some(format!("stack.{stack}")),
        None => None,
    };
    if let Some(origin) = origin {
        body.insert("origin".into(), Value::String(origin));
    }
    let mut named = Table::new();
    named.insert(name.to_string(), Value::Table(body));
    let mut outer = Table::new();
    outer.insert(kind.to_string(), Value::Table(named));
    toml::to_string(&outer).unwrap_or_default()
}

fn policy(p: &UpdatePolicy) -> Value {
    let mut t = Table::new();
    if let Some(v) = p.parallelism {
        t.insert("parallelism".into(), int(v));
    }
    if let Some(v) = p.delay {
        t.insert("delay".into(), duration(v));
    }
    if let Some(v) = p.failure_action {
        t.insert("failure_action".into(), lower(v));
    }
    if let Some(v) = p.monitor {
        t.insert("monitor".into(), duration(v));
    }
    if let Some(v) = p.max_failure_ratio {
        t.insert("max_failure_ratio".into(), Value::Float(v));
    }
    if let Some(v) = p.order {
        t.insert("order".into(), lower(v));
    }
    Value::Table(t)
}

fn service(s: &Service) -> Table {
    // Taken apart without `..`: a new field does not compile until rendered here.
    let Service {
        // The table's name, and `origin` (written by `section`).
        name: _,
        group: _,
        image,
        mode,
        command,
        args,
        env,
        user,
        workdir,
        networks,
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
    } = s;
    let mut t = Table::new();
    t.insert("image".into(), Value::String(image.clone()));
    match *mode {
        ServiceMode::Replicated(n) => {
            t.insert("replicas".into(), int(n));
        }
        ServiceMode::Global => {
            t.insert("mode".into(), Value::String("global".into()));
        }
    }
    if let Some(c) = command {
        t.insert("command".into(), strings(c));
    }
    if let Some(a) = args {
        t.insert("args".into(), strings(a));
    }
    if !env.is_empty() {
        t.insert("env".into(), map(env));
    }
    if let Some(u) = user {
        t.insert("user".into(), Value::String(u.clone()));
    }
    if let Some(w) = workdir {
        t.insert("workdir".into(), Value::String(w.clone()));
    }
    if !networks.is_empty() {
        t.insert("networks".into(), strings(networks));
    }
    if !ports.is_empty() {
        let ports = ports.iter().map(|p| {
            let mut port = Table::new();
            port.insert("target".into(), int(u64::from(p.target)));
            if let Some(published) = p.published {
                port.insert("published".into(), int(u64::from(published)));
            }
            port.insert("protocol".into(), lower(p.protocol));
            port.insert("mode".into(), lower(p.mode));
            Value::Table(port)
        });
        t.insert("ports".into(), Value::Array(ports.collect()));
    }
    if !constraints.is_empty() {
        t.insert("constraints".into(), strings(constraints));
    }
    if !preferences.is_empty() {
        let spread: Vec<String> = preferences.iter().map(|p| format!("spread={p}")).collect();
        t.insert("preferences".into(), strings(&spread));
    }
    if !mounts.is_empty() {
        let mounts = mounts.iter().map(|m| {
            let mut mount = Table::new();
            mount.insert("type".into(), lower(m.kind));
            if let Some(source) = &m.source {
                mount.insert("source".into(), Value::String(source.clone()));
            }
            mount.insert("target".into(), Value::String(m.target.clone()));
            if m.readonly {
                mount.insert("readonly".into(), Value::Boolean(true));
            }
            Value::Table(mount)
        });
        t.insert("mounts".into(), Value::Array(mounts.collect()));
    }
    let r = resources;
    let mut resources = Table::new();
    if let Some(v) = r.limit_memory {
        resources.insert("limit_memory".into(), size(v));
    }
    if let Some(v) = r.reserve_memory {
        resources.insert("reserve_memory".into(), size(v));
    }
    // Display only: nano-CPUs back to CPUs.
    #[allow(clippy::cast_precision_loss)]
    let cpus = |nano: i64| Value::Float(nano as f64 / 1e9);
    if let Some(v) = r.limit_nano_cpus {
        resources.insert("limit_cpus".into(), cpus(v));
    }
    if let Some(v) = r.reserve_nano_cpus {
        resources.insert("reserve_cpus".into(), cpus(v));
    }
    if !resources.is_empty() {
        t.insert("resources".into(), Value::Table(resources));
    }
    if let Some(u) = update {
        t.insert("update".into(), policy(u));
    }
    if let Some(r) = rollback {
        t.insert("rollback".into(), policy(r));
    }
    if let Some(h) = healthcheck {
        let mut health = Table::new();
        health.insert("test".into(), strings(&h.test));
        for (key, value) in [
            ("interval", h.interval),
            ("timeout", h.timeout),
            ("start_period", h.start_period),
        ] {
            if let Some(d) = value {
                health.insert(key.into(), duration(d));
            }
        }
        if let Some(retries) = h.retries {
            health.insert("retries".into(), int(retries));
        }
        t.insert("healthcheck".into(), Value::Table(health));
    }
    if let Some(r) = restart {
        let mut restart = Table::new();
        if let Some(c) = r.condition {
            restart.insert("condition".into(), lower(c));
        }
        if let Some(d) = r.delay {
            restart.insert("delay".into(), duration(d));
        }
        if let Some(m) = r.max_attempts {
            restart.insert("max_attempts".into(), int(m));
        }
        if let Some(w) = r.window {
            restart.insert("window".into(), duration(w));
        }
        t.insert("restart".into(), Value::Table(restart));
    }
    if !after.is_empty() {
        t.insert("after".into(), strings(after));
    }
    if !labels.is_empty() {
        t.insert("labels".into(), map(labels));
    }
    if !container_labels.is_empty() {
        t.insert("container_labels".into(), map(container_labels));
    }
    t
}

/// The whole spec as one TOML document.
pub fn to_toml(spec: &Spec) -> String {
    let mut parts = Vec::new();
    let mut head = Table::new();
    head.insert(
        "cluster".into(),
        Value::Table(Table::from_iter([(
            "name".to_string(),
            Value::String(spec.cluster.name.clone()),
        )])),
    );
    let c = &spec.controller;
    let mut controller = Table::new();
    controller.insert("interval".into(), duration(c.interval));
    controller.insert("prune".into(), Value::Boolean(c.prune));
    controller.insert("mode".into(), lower(c.mode));
    controller.insert(
        "max_delete_fraction".into(),
        Value::Float(c.max_delete_fraction),
    );
    controller.insert("suspend".into(), Value::Boolean(c.suspend));
    head.insert("controller".into(), Value::Table(controller));
    head.insert("ssh".into(), lower(&spec.ssh));
    head.insert("bootstrap".into(), lower(&spec.bootstrap));
    parts.push(toml::to_string(&head).unwrap_or_default());
    for node in spec.nodes.values() {
        let mut t = Table::new();
        t.insert("address".into(), Value::String(node.address.clone()));
        t.insert("role".into(), lower(node.role));
        if !node.labels.is_empty() {
            t.insert("labels".into(), map(&node.labels));
        }
        if let Some(a) = node.availability {
            t.insert("availability".into(), lower(a));
        }
        if let Some(arch) = &node.arch {
            t.insert("arch".into(), Value::String(arch.clone()));
        }
        if node.ssh != spec.ssh {
            t.insert("ssh".into(), lower(&node.ssh));
        }
        if let Some(key) = &node.host_key {
            t.insert("host_key".into(), Value::String(key.clone()));
        }
        parts.push(section("node", &node.name, t, None));
    }
    for network in spec.networks.values() {
        let mut t = Table::new();
        t.insert("driver".into(), Value::String(network.driver.clone()));
        t.insert("attachable".into(), Value::Boolean(network.attachable));
        t.insert("internal".into(), Value::Boolean(network.internal));
        if !network.labels.is_empty() {
            t.insert("labels".into(), map(&network.labels));
        }
        parts.push(section("network", &network.name, t, network.group.as_ref()));
    }
    for s in spec.services.values() {
        parts.push(section("service", &s.name, service(s), s.group.as_ref()));
    }
    parts.join("\n")
}
