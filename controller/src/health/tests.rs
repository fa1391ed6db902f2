use super::*;
use crate::observed::{DiskSpace, MemorySize};

fn healthy() -> Facts {
    Facts {
        temperature: Some("48.3'C".into()),
        throttled: Some("0x0".into()),
        disk: Some(DiskSpace {
            available_bytes: 10 << 30,
            total_bytes: 30 << 30,
        }),
        memory: Some(MemorySize {
            available_bytes: 3 << 30,
            total_bytes: 4 << 30,
        }),
        load1: Some("0.52".into()),
        clock: Some(1_800_000_000),
        uptime_seconds: Some(3600),
        upgradable_packages: Some(0),
        ..Facts::default()
    }
}

#[test]
fn a_healthy_board_is_measured_and_has_no_condition() {
    let m = Measurements::of(&healthy());
    assert_eq!(m.temperature_celsius, Some(48.3));
    assert_eq!(m.disk_free_bytes, Some(10 << 30));
    assert_eq!(m.memory_total_bytes, Some(4 << 30));
    assert_eq!(m.load1, Some(0.52));
    assert_eq!(m.boot_time_seconds, Some(1_799_996_400.0));
    assert!(conditions(&healthy()).is_empty());
}

#[test]
fn conditions_come_most_severe_first() {
    let mut facts = healthy();
    facts.throttled = Some("0x50005".into());
    facts.temperature = Some("82.0'C".into());
    facts.disk = Some(DiskSpace {
        available_bytes: 100 << 20,
        total_bytes: 30 << 30,
    });
    facts.memory = Some(MemorySize {
        available_bytes: 100 << 20,
        total_bytes: 4 << 30,
    });
    facts.reboot_required = true;
    facts.upgradable_packages = Some(12);
    let found: Vec<(ConditionKind, Severity)> = conditions(&facts)
        .iter()
        .map(|c| (c.kind, c.severity))
        .collect();
    assert_eq!(
        found,
        vec![
            (ConditionKind::DiskFull, Severity::Critical),
            (ConditionKind::UnderVoltage, Severity::Critical),
            (ConditionKind::Throttled, Severity::Warning),
            (ConditionKind::Hot, Severity::Warning),
            (ConditionKind::MemoryLow, Severity::Warning),
            (ConditionKind::RebootRequired, Severity::Info),
            (ConditionKind::UpdatesAvailable, Severity::Info),
        ]
    );
    facts.throttled = Some("0x50000".into());
    facts.disk = Some(DiskSpace {
        available_bytes: 1 << 30,
        total_bytes: 30 << 30,
    });
    let found: Vec<(ConditionKind, Severity)> = conditions(&facts)
        .iter()
        .map(|c| (c.kind, c.severity))
        .collect();
    assert!(found.contains(&(ConditionKind::UnderVoltage, Severity::Warning)));
    assert!(found.contains(&(ConditionKind::DiskLow, Severity::Warning)));
}

#[test]
fn temperatures_as_boards_write_them() {
    assert_eq!(celsius("48.3'C"), Some(48.3));
    assert_eq!(celsius("51.0°C"), Some(51.0));
    assert_eq!(celsius("hot"), None);
    assert_eq!(celsius("NaN'C"), None);
}

/// Raspberry Pi's documented bits: 0x50005 is under-voltage and
/// throttling, now and since boot.
#[test]
fn throttling_is_said_in_words() {
    assert_eq!(
        throttling_in_words("0x50005"),
        [
            "under-voltage now",
            "throttled now",
            "under-voltage since boot",
            "throttled since boot"
        ]
    );
    assert!(throttling_in_words("0x0").is_empty());
    assert_eq!(
        throttling_in_words("0x80000"),
        ["soft temperature limit since boot"]
    );
    assert!(throttling_in_words("garbage").is_empty());
}
