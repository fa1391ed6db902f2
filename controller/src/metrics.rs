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

fn unreachable_metric(name: &str, error: &prometheus::Error) -> ! {
    // Metric definitions are compile-time constants; a bad one is a programming
    // error that the unit test below catches.
    panic!("invalid metric definition {name}: {error}")
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let histogram = HistogramOpts::new(
            "reconciler_reconcile_duration_seconds",
            "Time taken by one reconcile.",
        )
        .buckets(vec![
            0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ]);
        let reconcile_duration = match Histogram::with_opts(histogram) {
            Ok(h) => register(r, h),
            Err(e) => unreachable_metric("reconciler_reconcile_duration_seconds", &e),
        };
        let last_success = match Gauge::new(
            "reconciler_last_success_timestamp_seconds",
            "Unix time of the last successful reconcile.",
        ) {
            Ok(g) => register(r, g),
            Err(e) => unreachable_metric("reconciler_last_success_timestamp_seconds", &e),
        };
        let spec_valid = match IntGauge::new(
            "reconciler_spec_valid",
            "1 if the spec at the latest fetched revision is valid, 0 if it was refused.",
        ) {
            Ok(g) => register(r, g),
            Err(e) => unreachable_metric("reconciler_spec_valid", &e),
        };
        let lease_held = match IntGauge::new(
            "reconciler_lease_held",
            "1 if this controller holds the cluster's one-writer lease.",
        ) {
            Ok(g) => register(r, g),
            Err(e) => unreachable_metric("reconciler_lease_held", &e),
        };
        let docker_writes = match IntCounter::new(
            "reconciler_docker_writes_total",
            "Docker API write calls made by reconciles (lease renewals excluded).",
        ) {
            Ok(c) => register(r, c),
            Err(e) => unreachable_metric("reconciler_docker_writes_total", &e),
        };
        Self {
            reconciles: counter_vec(
                r,
                "reconciler_reconciles_total",
                "Reconciles by result.",
                &["result"],
            ),
            reconcile_duration,
            last_success,
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
            spec_valid,
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
            lease_held,
            docker_writes,
            registry,
        }
    }

    /// The names of every metric, including label sets with no sample yet.
    pub fn render_names(&self) -> Vec<String> {
        use prometheus::core::Collector;
        let collectors: [&dyn Collector; 15] = [
            &self.reconciles,
            &self.reconcile_duration,
            &self.last_success,
            &self.revision_info,
            &self.source_fetches,
            &self.spec_valid,
            &self.drift,
            &self.actions,
            &self.webhooks,
            &self.docker_errors,
            &self.nodes,
            &self.replicas_desired,
            &self.replicas_running,
            &self.lease_held,
            &self.docker_writes,
        ];
        collectors
            .iter()
            .flat_map(|c| c.desc().into_iter().map(|d| d.fq_name.clone()))
            .collect()
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
    use super::Metrics;

    #[test]
    fn every_metric_is_defined_and_rendered() {
        let metrics = Metrics::new();
        metrics.reconciles.with_label_values(&["success"]).inc();
        metrics.spec_valid.set(1);
        let text = metrics.render();
        assert!(
            text.contains("reconciler_reconciles_total{result=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE reconciler_reconcile_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains("reconciler_spec_valid 1"), "{text}");
    }
}

#[cfg(test)]
mod dashboard_tests {
    /// Every `reconciler_*` name in the Grafana dashboard is one the controller exports.
    #[test]
    fn dashboard_uses_only_exported_metrics() {
        let dashboard = include_str!("../../dashboards/reconciler.json");
        let exported = super::Metrics::new().render_names();
        let mut used = 0;
        for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if let Some(name) = word.strip_prefix("reconciler_") {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                assert!(
                    exported.contains(&format!("reconciler_{base}")),
                    "the dashboard uses unknown metric reconciler_{name}"
                );
                used += 1;
            }
        }
        assert!(
            used >= 14,
            "the dashboard should chart every metric, found {used} uses"
        );
    }
}
