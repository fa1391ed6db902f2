//! Prometheus metrics of the long-running controller, prefix `reconciler_`.
//!
//! Labels are low-cardinality by construction: results, kinds, operations and
//! node states are small fixed sets; service names are bounded by the spec.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// Every metric the controller exports, registered in one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `result`: success, error, refused, invalid_spec, standby.
    pub reconciles: IntCounterVec,
    pub reconcile_duration: Histogram,
    pub last_success: Gauge,
    /// One series, `revision` = the revision being reconciled.
    pub revision_info: IntGaugeVec,
    /// `result`: success, error.
    pub source_fetches: IntCounterVec,
    pub spec_valid: IntGauge,
    /// `kind`: node, network, service — objects that differ from the spec.
    pub drift: IntGaugeVec,
    /// `kind`, `operation`, `result`.
    pub actions: IntCounterVec,
    /// `result`: accepted, ignored, unauthorized.
    pub webhooks: IntCounterVec,
    /// `operation`: the Docker API call that failed.
    pub docker_errors: IntCounterVec,
    /// `class` (retryable, needs_person, bug) and `reason` of failed reconciles.
    pub reconcile_errors: IntCounterVec,
    /// `role`, `state`.
    pub nodes: IntGaugeVec,
    /// `service`.
    pub replicas_desired: IntGaugeVec,
    pub replicas_running: IntGaugeVec,
    pub lease_held: IntGauge,
    pub docker_writes: IntCounter,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    // Names are static and unique, so registration cannot fail; if it ever
    // did, the metric would simply be missing from the output.
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    match IntCounterVec::new(Opts::new(name, help), labels) {
        Ok(m) => register(registry, m),
        Err(e) => unreachable_metric(name, &e),
    }
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    match IntGaugeVec::new(Opts::new(name, help), labels) {
        Ok(m) => register(registry, m),
        Err(e) => unreachable_metric(name, &e),
    }
}

/// A metric without labels, registered.
fn single<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<T>,
) -> T {
    match metric {
        Ok(m) => register(registry, m),
        Err(e) => unreachable_metric("a single metric", &e),
    }
}

fn unreachable_metric(name: &str, error: &prometheus::Error) -> ! {
    // Metric definitions are compile-time constants; a bad one is a programming
    // error that the unit test below catches.
    panic!("invalid metric definition {name}: {error}")
}

/// How a fetch of the source or one plan action ended: the `result` of
/// `reconciler_source_fetches_total` and `reconciler_actions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// It worked.
    Success,
    /// It failed (the error is in the log and `/api/status`).
    Error,
}

impl Completion {
    /// Both, so each series exists from the start.
    pub const ALL: [Completion; 2] = [Completion::Success, Completion::Error];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Completion::Success => "success",
            Completion::Error => "error",
        }
    }

    /// `Success` for `Ok`, `Error` for `Err`.
    pub fn of<T, E>(result: &Result<T, E>) -> Self {
        if result.is_ok() {
            Completion::Success
        } else {
            Completion::Error
        }
    }
}

/// What became of a webhook request: the `result` of
/// `reconciler_webhook_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookResult {
    /// A signed push: a fetch was triggered.
    Accepted,
    /// Signed, but not a push event.
    Ignored,
    /// Unsigned, or the signature or token did not match.
    Unauthorized,
    /// A signed push whose very body was accepted before: a replay (or the
    /// forge's redelivery), which triggers nothing.
    Replayed,
}

impl WebhookResult {
    /// Every result, so each series exists from the start.
    pub const ALL: [WebhookResult; 4] = [
        WebhookResult::Accepted,
        WebhookResult::Ignored,
        WebhookResult::Unauthorized,
        WebhookResult::Replayed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookResult::Accepted => "accepted",
            WebhookResult::Ignored => "ignored",
            WebhookResult::Unauthorized => "unauthorized",
            WebhookResult::Replayed => "replayed",
        }
    }
}

impl Metrics {
    /// Every metric, with every known label set already at zero: a series
    /// exists from the first scrape, so `rate()` and alerts see its first
    /// increase and a dashboard never shows "no data" for a quiet counter.
    pub fn new() -> Self {
        let metrics = Self::unlabelled();
        for result in crate::reconcile::ReconcileResult::ALL {
            metrics.reconciles.with_label_values(&[result.as_str()]);
        }
        for result in Completion::ALL {
            metrics.source_fetches.with_label_values(&[result.as_str()]);
        }
        for result in WebhookResult::ALL {
            metrics.webhooks.with_label_values(&[result.as_str()]);
        }
        for kind in crate::plan::ObjectKind::ALL {
            metrics.drift.with_label_values(&[kind.as_str()]);
            for operation in crate::plan::Operation::ALL {
                for result in Completion::ALL {
                    metrics.actions.with_label_values(&[
                        kind.as_str(),
                        operation.as_str(),
                        result.as_str(),
                    ]);
                }
            }
        }
        for call in crate::swarm::DockerCall::ALL {
            metrics.docker_errors.with_label_values(&[call.as_str()]);
        }
        metrics
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one field per metric: the whole set of names and helps reads in one place"
    )]
    fn unlabelled() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let histogram = HistogramOpts::new(
            "reconciler_reconcile_duration_seconds",
            "Time taken by one reconcile.",
        )
        .buckets(vec![
            0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ]);
        let reconcile_duration = single(r, Histogram::with_opts(histogram));
        Self {
            reconciles: counter_vec(
                r,
                "reconciler_reconciles_total",
                "Reconciles by result.",
                &["result"],
            ),
            reconcile_duration,
            last_success: single(
                r,
                Gauge::new(
                    "reconciler_last_success_timestamp_seconds",
                    "Unix time of the last successful reconcile.",
                ),
            ),
            revision_info: gauge_vec(
                r,
                "reconciler_source_revision_info",
                "The source revision being reconciled (value 1).",
                &["revision"],
            ),
            source_fetches: counter_vec(
                r,
                "reconciler_source_fetches_total",
                "Fetches of the desired state by result.",
                &["result"],
            ),
            spec_valid: single(
                r,
                IntGauge::new(
                    "reconciler_spec_valid",
                    "1 if the spec at the latest fetched revision is valid, 0 if it was refused.",
                ),
            ),
            drift: gauge_vec(
                r,
                "reconciler_drift_objects",
                "Objects whose live state differs from the spec, by kind.",
                &["kind"],
            ),
            actions: counter_vec(
                r,
                "reconciler_actions_total",
                "Plan actions executed, by kind, operation and result.",
                &["kind", "operation", "result"],
            ),
            webhooks: counter_vec(
                r,
                "reconciler_webhook_requests_total",
                "Webhook requests by result.",
                &["result"],
            ),
            docker_errors: counter_vec(
                r,
                "reconciler_docker_api_errors_total",
                "Failed Docker API calls by operation.",
                &["operation"],
            ),
            reconcile_errors: counter_vec(
                r,
                "reconciler_reconcile_errors_total",
                "Failed reconciles by what they need (class) and why (reason).",
                &["class", "reason"],
            ),
            nodes: gauge_vec(
                r,
                "reconciler_nodes",
                "Swarm nodes by role and state.",
                &["role", "state"],
            ),
            replicas_desired: gauge_vec(
                r,
                "reconciler_service_replicas_desired",
                "Desired tasks of each managed service.",
                &["service"],
            ),
            replicas_running: gauge_vec(
                r,
                "reconciler_service_replicas_running",
                "Running tasks of each managed service.",
                &["service"],
            ),
            lease_held: single(
                r,
                IntGauge::new(
                    "reconciler_lease_held",
                    "1 if this controller holds the cluster's one-writer lease.",
                ),
            ),
            docker_writes: single(
                r,
                IntCounter::new(
                    "reconciler_docker_writes_total",
                    "Docker API write calls made by reconciles (lease renewals excluded).",
                ),
            ),
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if encoder
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::Metrics;

    /// The metric families a controller exports once it has seen its
    /// cluster (the series labelled by revision, node or service exist only
    /// then), read from the text exposition itself (what Prometheus
    /// scrapes), not from the definitions.
    fn exported() -> BTreeSet<String> {
        let metrics = Metrics::new();
        metrics.revision_info.with_label_values(&["abc123"]).set(1);
        metrics
            .nodes
            .with_label_values(&["manager", "ready"])
            .set(1);
        metrics.replicas_desired.with_label_values(&["web"]).set(2);
        metrics.replicas_running.with_label_values(&["web"]).set(2);
        metrics
            .reconcile_errors
            .with_label_values(&["retryable", "docker_unreachable"])
            .inc();
        metrics
            .render()
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }

    /// The README's metrics table, by name (`reconciles_total` → `reconciler_reconciles_total`).
    fn documented() -> BTreeSet<String> {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("Metrics (all prefixed `reconciler_`):")
            .nth(1)
            .unwrap_or_default();
        table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .filter_map(|l| l.split('|').nth(1))
            .flat_map(|cell| {
                cell.split(',')
                    .map(|name| format!("reconciler_{}", name.trim().trim_matches('`')))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn every_documented_metric_is_exported() {
        let documented = documented();
        assert_eq!(documented.len(), 16, "{documented:?}");
        assert_eq!(exported(), documented);
    }

    #[test]
    fn counters_start_with_every_label_set_at_zero() {
        let text = Metrics::new().render();
        for sample in [
            "reconciler_reconciles_total{result=\"standby\"} 0",
            "reconciler_reconciles_total{result=\"invalid_spec\"} 0",
            "reconciler_webhook_requests_total{result=\"unauthorized\"} 0",
            "reconciler_source_fetches_total{result=\"error\"} 0",
            "reconciler_actions_total{kind=\"service\",operation=\"remove\",result=\"error\"} 0",
            "reconciler_docker_api_errors_total{operation=\"update_swarm\"} 0",
            "reconciler_drift_objects{kind=\"network\"} 0",
            "reconciler_lease_held 0",
            "reconciler_docker_writes_total 0",
        ] {
            assert!(text.contains(sample), "{sample} missing from:\n{text}");
        }
    }

    /// Every `reconciler_*` name in the Grafana dashboard is one the controller
    /// exports, and every exported metric is on the dashboard.
    #[test]
    fn the_dashboard_charts_exactly_the_exported_metrics() {
        let dashboard = include_str!("../../dashboards/reconciler.json");
        let exported = exported();
        let mut used = BTreeSet::new();
        for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if let Some(name) = word.strip_prefix("reconciler_") {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                let full = format!("reconciler_{base}");
                assert!(
                    exported.contains(&full),
                    "the dashboard uses unknown metric reconciler_{name}"
                );
                used.insert(full);
            }
        }
        assert_eq!(used, exported, "metrics missing from the dashboard");
    }
}
