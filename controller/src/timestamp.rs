//! Docker's timestamps (RFC 3339, UTC) as [`SystemTime`], without a date crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in whole seconds since the epoch (0 for a clock set before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Parses `2026-11-24T04:01:13.123456789Z` (Docker writes UTC with `Z`; an
/// offset such as `+01:00` is honoured too). `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_seconds) = split_offset(time)?;
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms_parts = hms.splitn(3, ':');
    let hour: i64 = hms_parts.next()?.parse().ok()?;
    let minute: i64 = hms_parts.next()?.parse().ok()?;
    let second: i64 = hms_parts.next()?.parse().ok()?;
    if hour > 23 || minute > 59 || second > 60 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{fraction:0<9}").get(..9)?.parse().ok()?;
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

/// The clock part and the offset from UTC in seconds (`Z` = 0).
fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z').or_else(|| time.strip_suffix('z')) {
        return Some((clock, 0));
    }
    let at = time.rfind(['+', '-'])?;
    let (clock, offset) = time.split_at(at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let (hours, minutes) = offset.get(1..)?.split_once(':')?;
    let hours: i64 = hours.parse().ok()?;
    let minutes: i64 = minutes.parse().ok()?;
    Some((clock, sign * (hours * 3600 + minutes * 60)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(text: &str) -> Option<u64> {
        parse_rfc3339(text).and_then(|t| t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs()))
    }

    /// Expected values from `date -u -d ... +%s`.
    #[test]
    fn docker_timestamps_parse_to_unix_seconds() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix("2026-11-24T04:01:13.123456789Z"), Some(1_795_492_873));
        assert_eq!(unix("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(unix("2024-12-31T23:59:59.5Z"), Some(1_735_689_599));
        assert_eq!(unix("2026-11-24T05:01:13+01:00"), Some(1_795_492_873));
        let nanos = parse_rfc3339("2026-11-24T04:01:13.123456789Z")
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.subsec_nanos());
        assert_eq!(nanos, Some(123_456_789));
    }

    #[test]
    fn anything_else_is_none() {
        for text in [
            "",
            "0001-01-01",
            "2026-13-01T00:00:00Z",
            "2026-11-24 04:01:13Z",
            "2026-11-24T25:00:00Z",
            "2026-11-24T04:01:13.x1Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }
}
