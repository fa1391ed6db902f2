//! Prometheus metrics of the long-running controller, prefix `reconciler_`.
//!
//! Labels are low-cardinality by construction: results, kinds, operations and
//! node states are small fixed sets; service names are bounded by the spec.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
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
    /// Each board's health, with `run --ssh`.
    pub boards: BoardMetrics,
}

/// Board health by `node` (the spec's name), from the facts last learned
/// over SSH (`health.rs`): what node-exporter would say, for boards that
/// run none, and the conditions to alert on.
#[derive(Debug, Clone)]
pub struct BoardMetrics {
    temperature: GaugeVec,
    throttled: IntGaugeVec,
    disk_free: GaugeVec,
    disk_size: GaugeVec,
    memory_available: GaugeVec,
    memory_total: GaugeVec,
    load1: GaugeVec,
    boot_time: GaugeVec,
    reboot_required: IntGaugeVec,
    upgradable: IntGaugeVec,
    /// `node`, `condition`, `severity`: 1 while the condition holds.
    conditions: IntGaugeVec,
}

fn float_gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    match GaugeVec::new(Opts::new(name, help), labels) {
        Ok(m) => register(registry, m),
        Err(e) => unreachable_metric(name, &e),
    }
}

impl BoardMetrics {
    fn new(r: &Registry) -> Self {
        let node = &["node"];
        Self {
            temperature: float_gauge_vec(r, "reconciler_board_temperature_celsius", "The board's SoC temperature.", node),
            throttled: gauge_vec(r, "reconciler_board_throttled_bits", "vcgencmd get_throttled as a number: bits 0-3 now, 16-19 since boot (under-voltage, frequency capped, throttled, soft temperature limit).", node),
            disk_free: float_gauge_vec(r, "reconciler_board_disk_free_bytes", "Free space where Docker keeps its data.", node),
            disk_size: float_gauge_vec(r, "reconciler_board_disk_size_bytes", "Size of the file system Docker keeps its data on.", node),
            memory_available: float_gauge_vec(r, "reconciler_board_memory_available_bytes", "MemAvailable of /proc/meminfo.", node),
            memory_total: float_gauge_vec(r, "reconciler_board_memory_total_bytes", "MemTotal of /proc/meminfo.", node),
            load1: float_gauge_vec(r, "reconciler_board_load1", "The 1-minute load average.", node),
            boot_time: float_gauge_vec(r, "reconciler_board_boot_time_seconds", "Unix time of the board's last boot.", node),
            reboot_required: gauge_vec(r, "reconciler_board_reboot_required", "1 if /var/run/reboot-required exists.", node),
            upgradable: gauge_vec(r, "reconciler_board_upgradable_packages", "Packages apt would upgrade from the lists it has.", node),
            conditions: gauge_vec(r, "reconciler_board_condition", "1 while a board condition holds (disk-full, under-voltage, hot, ...), by severity.", &["node", "condition", "severity"]),
        }
    }

    /// Sets every board's series from its facts; boards no longer known
    /// (left the spec, never reached) lose theirs.
    pub fn record<'a>(&self, boards: impl Iterator<Item = (&'a str, &'a crate::observed::Facts)>) {
        let floats = [
            &self.temperature,
            &self.disk_free,
            &self.disk_size,
            &self.memory_available,
            &self.memory_total,
            &self.load1,
            &self.boot_time,
        ];
        for vec in floats {
            vec.reset();
        }
        for vec in [
            &self.throttled,
            &self.reboot_required,
            &self.upgradable,
            &self.conditions,
        ] {
            vec.reset();
        }
        #[allow(
            clippy::cast_precision_loss,
            reason = "byte counts as Prometheus floats"
        )]
        let bytes = |b: u64| b as f64;
        for (node, facts) in boards {
            let m = crate::health::Measurements::of(facts);
            let set = |vec: &GaugeVec, value: Option<f64>| {
                if let Some(value) = value {
                    vec.with_label_values(&[node]).set(value);
                }
            };
            set(&self.temperature, m.temperature_celsius);
            set(&self.disk_free, m.disk_free_bytes.map(bytes));
            set(&self.disk_size, m.disk_size_bytes.map(bytes));
            set(&self.memory_available, m.memory_available_bytes.map(bytes));
            set(&self.memory_total, m.memory_total_bytes.map(bytes));
            set(&self.load1, m.load1);
            set(&self.boot_time, m.boot_time_seconds);
            if let Some(bits) = facts
                .throttled
                .as_deref()
                .and_then(|t| i64::from_str_radix(t.trim().trim_start_matches("0x"), 16).ok())
            {
                self.throttled.with_label_values(&[node]).set(bits);
            }
            self.reboot_required
                .with_label_values(&[node])
                .set(i64::from(m.reboot_required));
            if let Some(count) = m.upgradable_packages {
                self.upgradable
                    .with_label_values(&[node])
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            for condition in crate::health::conditions(facts) {
                self.conditions
                    .with_label_values(&[
                        node,
                        condition.kind.as_str(),
                        condition.severity.as_str(),
                    ])
                    .set(1);
            }
        }
    }
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
            boards: BoardMetrics::new(r),
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
        let board = board_facts();
        metrics.boards.record(std::iter::once(("pi1", &board)));
        metrics
            .render()
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }

    /// A board with every measurement and a condition.
    fn board_facts() -> crate::observed::Facts {
        crate::observed::Facts {
            temperature: Some("81.5'C".into()),
            throttled: Some("0x50005".into()),
            disk: Some(crate::observed::DiskSpace {
                available_bytes: 1 << 30,
                total_bytes: 30 << 30,
            }),
            memory: Some(crate::observed::MemorySize {
                available_bytes: 3 << 30,
                total_bytes: 4 << 30,
            }),
            load1: Some("0.25".into()),
            clock: Some(1_800_000_000),
            uptime_seconds: Some(100),
            reboot_required: true,
            upgradable_packages: Some(3),
            ..crate::observed::Facts::default()
        }
    }

    #[test]
    fn a_boards_health_is_exported_by_node_and_forgotten_with_it() {
        let metrics = Metrics::new();
        let board = board_facts();
        metrics.boards.record(std::iter::once(("pi1", &board)));
        let text = metrics.render();
        for sample in [
            "reconciler_board_temperature_celsius{node=\"pi1\"} 81.5",
            "reconciler_board_throttled_bits{node=\"pi1\"} 327685",
            "reconciler_board_memory_total_bytes{node=\"pi1\"} 4294967296",
            "reconciler_board_boot_time_seconds{node=\"pi1\"} 1799999900",
            "reconciler_board_reboot_required{node=\"pi1\"} 1",
            "reconciler_board_upgradable_packages{node=\"pi1\"} 3",
            "reconciler_board_condition{condition=\"under-voltage\",node=\"pi1\",severity=\"critical\"} 1",
            "reconciler_board_condition{condition=\"disk-low\",node=\"pi1\",severity=\"warning\"} 1",
        ] {
            assert!(text.contains(sample), "{sample} missing from:\n{text}");
        }
        metrics.boards.record(std::iter::empty());
        assert!(!metrics.render().contains("node=\"pi1\""));
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
        assert_eq!(documented.len(), 27, "{documented:?}");
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
