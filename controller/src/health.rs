//! A board's health as data: what its facts measure (temperature, memory,
//! disk, load, last boot, pending reboot, packages with updates) and the
//! conditions a person acts on, each with a severity. Pure: facts in,
//! values out; the metrics, the status document and the page show them.

use serde::Serialize;

use crate::observed::Facts;

/// Free space under which a board's disk is full: Docker stops pulling,
/// and a manager's raft log cannot be written (the pre-flight's blocker).
pub const DISK_FULL_BYTES: u64 = 512 * 1024 * 1024;
/// Free space under which it is low (the pre-flight's warning).
pub const DISK_LOW_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// A Pi's SoC throttles at 80–85 °C.
pub const HOT_CELSIUS: f64 = 80.0;
/// Available memory under this share of the total is low.
pub const MEMORY_LOW_FRACTION: f64 = 0.1;

/// How much a condition matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing (a reboot pending, updates available).
    Info,
    /// Will become a problem (a disk filling up, heat).
    Warning,
    /// Is one now (a full disk, under-voltage): tasks fail or the board
    /// misbehaves.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One thing about a board a person acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConditionKind {
    DiskFull,
    DiskLow,
    UnderVoltage,
    Throttled,
    Hot,
    MemoryLow,
    RebootRequired,
    UpdatesAvailable,
}

impl ConditionKind {
    pub const ALL: [ConditionKind; 8] = [
        ConditionKind::DiskFull,
        ConditionKind::DiskLow,
        ConditionKind::UnderVoltage,
        ConditionKind::Throttled,
        ConditionKind::Hot,
        ConditionKind::MemoryLow,
        ConditionKind::RebootRequired,
        ConditionKind::UpdatesAvailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionKind::DiskFull => "disk-full",
            ConditionKind::DiskLow => "disk-low",
            ConditionKind::UnderVoltage => "under-voltage",
            ConditionKind::Throttled => "throttled",
            ConditionKind::Hot => "hot",
            ConditionKind::MemoryLow => "memory-low",
            ConditionKind::RebootRequired => "reboot-required",
            ConditionKind::UpdatesAvailable => "updates-available",
        }
    }
}

/// A condition with its severity and a sentence saying what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    pub kind: ConditionKind,
    pub severity: Severity,
    pub message: String,
}

/// What a board's facts measure, in base units (Prometheus's conventions).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measurements {
    pub temperature_celsius: Option<f64>,
    pub disk_free_bytes: Option<u64>,
    pub disk_size_bytes: Option<u64>,
    pub memory_available_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    /// The 1-minute load average.
    pub load1: Option<f64>,
    /// Unix time of the last boot: the board's clock less its uptime.
    pub boot_time_seconds: Option<f64>,
    pub reboot_required: bool,
    pub upgradable_packages: Option<u64>,
}

impl Measurements {
    pub fn of(facts: &Facts) -> Self {
        Self {
            temperature_celsius: facts.temperature.as_deref().and_then(celsius),
            disk_free_bytes: facts.disk.map(|d| d.available_bytes),
            disk_size_bytes: facts.disk.map(|d| d.total_bytes),
            memory_available_bytes: facts.memory.map(|m| m.available_bytes),
            memory_total_bytes: facts.memory.map(|m| m.total_bytes),
            load1: facts
                .load1
                .as_deref()
                .and_then(|l| l.parse().ok())
                .filter(|l: &f64| l.is_finite()),
            #[allow(
                clippy::cast_precision_loss,
                reason = "a Unix time fits an f64 exactly"
            )]
            boot_time_seconds: facts
                .clock
                .zip(facts.uptime_seconds)
                .map(|(clock, uptime)| (clock - i64::try_from(uptime).unwrap_or(i64::MAX)) as f64),
            reboot_required: facts.reboot_required,
            upgradable_packages: facts.upgradable_packages,
        }
    }
}

/// `vcgencmd measure_temp`'s `48.3'C`, or the thermal zone's `48.3'C`.
pub fn celsius(text: &str) -> Option<f64> {
    text.trim()
        .trim_end_matches("'C")
        .trim_end_matches("°C")
        .parse()
        .ok()
        .filter(|t: &f64| t.is_finite())
}

/// `vcgencmd get_throttled`'s bits in words, as the Raspberry Pi
/// documentation names them: the low bits are now, the high ones since boot.
/// Bits it does not name are left out; text that is no number gives none.
pub fn throttling_in_words(value: &str) -> Vec<&'static str> {
    const BITS: [(u32, &str); 8] = [
        (0, "under-voltage now"),
        (1, "ARM frequency capped now"),
        (2, "throttled now"),
        (3, "soft temperature limit now"),
        (16, "under-voltage since boot"),
        (17, "ARM frequency capped since boot"),
        (18, "throttled since boot"),
        (19, "soft temperature limit since boot"),
    ];
    let digits = value
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X");
    let Ok(bits) = u32::from_str_radix(digits, 16) else {
        return Vec::new();
    };
    BITS.iter()
        .filter(|(bit, _)| bits & (1 << bit) != 0)
        .map(|(_, words)| *words)
        .collect()
}

/// The conditions a board's facts show, most severe first.
pub fn conditions(facts: &Facts) -> Vec<Condition> {
    let m = Measurements::of(facts);
    let mut found = Vec::new();
    let mut add = |kind, severity, message: String| {
        found.push(Condition {
            kind,
            severity,
            message,
        });
    };
    if let Some(free) = m.disk_free_bytes {
        let mib = free / (1024 * 1024);
        if free < DISK_FULL_BYTES {
            add(ConditionKind::DiskFull, Severity::Critical, format!("{mib} MiB free where Docker keeps its data: images cannot be pulled and a manager's raft log cannot grow; `docker system prune` or a larger card"));
        } else if free < DISK_LOW_BYTES {
            add(ConditionKind::DiskLow, Severity::Warning, format!("{mib} MiB free where Docker keeps its data; old images pile up on boards: `docker image prune -a`"));
        }
    }
    let throttling = facts
        .throttled
        .as_deref()
        .map(throttling_in_words)
        .unwrap_or_default();
    if throttling.contains(&"under-voltage now") {
        add(ConditionKind::UnderVoltage, Severity::Critical, "under-voltage now: the power supply or cable cannot keep up (a Pi 4 wants 5.1 V 3 A); SD cards corrupt this way".into());
    } else if throttling.contains(&"under-voltage since boot") {
        add(ConditionKind::UnderVoltage, Severity::Warning, "under-voltage since boot: the power supply or cable dipped; check it before it corrupts the card".into());
    }
    if throttling.contains(&"throttled now") || throttling.contains(&"ARM frequency capped now") {
        add(
            ConditionKind::Throttled,
            Severity::Warning,
            "throttled now: the CPU runs slower to stay cool or powered".into(),
        );
    }
    if let Some(t) = m.temperature_celsius.filter(|t| *t >= HOT_CELSIUS) {
        add(
            ConditionKind::Hot,
            Severity::Warning,
            format!("{t:.1} °C: the SoC throttles at 80–85 °C; a heatsink or a fan"),
        );
    }
    if let (Some(available), Some(total)) = (m.memory_available_bytes, m.memory_total_bytes) {
        #[allow(
            clippy::cast_precision_loss,
            reason = "a share of memory, not an amount"
        )]
        let share = available as f64 / total.max(1) as f64;
        if share < MEMORY_LOW_FRACTION {
            add(ConditionKind::MemoryLow, Severity::Warning, format!("{} MiB of {} MiB available: services may be killed for memory; limits on the greedy ones", available / (1024 * 1024), total / (1024 * 1024)));
        }
    }
    if m.reboot_required {
        add(ConditionKind::RebootRequired, Severity::Info, "a reboot is pending (/var/run/reboot-required): an upgraded kernel or library waits for it".into());
    }
    if let Some(count) = m.upgradable_packages.filter(|n| *n > 0) {
        add(
            ConditionKind::UpdatesAvailable,
            Severity::Info,
            format!("{count} package(s) can be upgraded"),
        );
    }
    found.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(&b.kind)));
    found
}

#[cfg(test)]
mod tests;
