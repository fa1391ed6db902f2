//! `[maintenance] window`: when `reconciler run` may upgrade boards, as
//! `"02:00-05:00"`, `"Sat,Sun 02:00-05:00"` or `"Mon-Fri 22:00-01:00"`,
//! in UTC (the controller and the boards may live in different zones; UTC
//! is the one clock they share, and Raspberry Pi OS boards default to it
//! only when nobody chose a zone, so it is spelled out rather than guessed).
//!
//! A window whose end is before its start runs past midnight; the days name
//! the day it opens on.

use serde::Serialize;

/// The days of the week in the order [`Window::days`] keeps them.
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MINUTES_PER_DAY: u32 = 24 * 60;

/// A weekly time window, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Monday first: the days the window opens on.
    pub days: [bool; 7],
    /// Minutes after midnight.
    pub start: u32,
    /// Minutes after midnight; before `start` when it runs past midnight,
    /// `24 * 60` for the end of the day.
    pub end: u32,
}

/// Why a window was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Not `[DAYS ]HH:MM-HH:MM[ UTC]`.
    #[error("window {0:?} is not `HH:MM-HH:MM` with optional days before it (`Sat,Sun 02:00-05:00`, `Mon-Fri 22:00-01:00`), in UTC")]
    Form(String),
    /// A day that is not one of Mon..Sun.
    #[error(
        "window day {0:?} is not one of Mon, Tue, Wed, Thu, Fri, Sat, Sun (ranges as Mon-Fri)"
    )]
    Day(String),
    /// A time that is not HH:MM from 00:00 to 24:00.
    #[error("window time {0:?} is not HH:MM between 00:00 and 24:00")]
    Time(String),
    /// The same start and end: an empty window, or a whole day.
    #[error("window {0:?} starts and ends at the same time; `00:00-24:00` is the whole day")]
    Empty(String),
    /// A zone other than UTC.
    #[error("window {text:?} names the time zone {zone:?}: windows are in UTC (the one clock the controller and every board share)")]
    Zone { text: String, zone: String },
}

impl std::str::FromStr for Window {
    type Err = WindowError;

    fn from_str(text: &str) -> Result<Self, WindowError> {
        let form = || WindowError::Form(text.to_string());
        let mut words: Vec<&str> = text.split_whitespace().collect();
        if words.last().is_some_and(|w| w.eq_ignore_ascii_case("utc")) {
            words.pop();
        }
        let (days, times) = match words.as_slice() {
            [times] => ([true; 7], *times),
            [days, times] => (parse_days(days)?, *times),
            [_, _, zone] => {
                return Err(WindowError::Zone {
                    text: text.to_string(),
                    zone: (*zone).to_string(),
                })
            }
            _ => return Err(form()),
        };
        let (start, end) = times.split_once('-').ok_or_else(form)?;
        let (start, end) = (parse_time(start)?, parse_time(end)?);
        if start == end {
            return Err(WindowError::Empty(text.to_string()));
        }
        if start == MINUTES_PER_DAY {
            return Err(WindowError::Time("24:00".into()));
        }
        Ok(Self { days, start, end })
    }
}

fn parse_days(text: &str) -> Result<[bool; 7], WindowError> {
    let index = |day: &str| {
        DAYS.iter()
            .position(|d| d.eq_ignore_ascii_case(day))
            .ok_or_else(|| WindowError::Day(day.to_string()))
    };
    let mut days = [false; 7];
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (index(from)?, index(to)?);
                // Fri-Mon wraps over the weekend.
                let mut day = from;
                loop {
                    days[day] = true;
                    if day == to {
                        break;
                    }
                    day = (day + 1) % 7;
                }
            }
            None => days[index(part)?] = true,
        }
    }
    Ok(days)
}

fn parse_time(text: &str) -> Result<u32, WindowError> {
    let bad = || WindowError::Time(text.to_string());
    let (hours, minutes) = text.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(hours) || !digits(minutes) {
        return Err(bad());
    }
    let (hours, minutes): (u32, u32) = (
        hours.parse().map_err(|_| bad())?,
        minutes.parse().map_err(|_| bad())?,
    );
    match (hours, minutes) {
        (24, 0) => Ok(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Ok(hours * 60 + minutes),
        _ => Err(bad()),
    }
}

impl Window {
    /// Whether `unix_seconds` (UTC) falls inside the window.
    pub fn contains(&self, unix_seconds: u64) -> bool {
        let day_number = unix_seconds / 86_400;
        // 1970-01-01 was a Thursday (index 3, Monday first).
        let today = usize::try_from((day_number + 3) % 7).unwrap_or(0);
        let yesterday = (today + 6) % 7;
        let minute = u32::try_from((unix_seconds % 86_400) / 60).unwrap_or(0);
        if self.start < self.end {
            self.days[today] && (self.start..self.end).contains(&minute)
        } else {
            // Past midnight: the evening part opens today, the morning part
            // belongs to the window that opened yesterday.
            (self.days[today] && minute >= self.start)
                || (self.days[yesterday] && minute < self.end)
        }
    }
}

impl std::fmt::Display for Window {
    /// As it is written back: `Sat,Sun 02:00-05:00 UTC`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.days != [true; 7] {
            let named: Vec<&str> = DAYS
                .iter()
                .zip(self.days)
                .filter(|(_, on)| *on)
                .map(|(d, _)| *d)
                .collect();
            write!(f, "{} ", named.join(","))?;
        }
        let time = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{} UTC", time(self.start), time(self.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(text: &str) -> Window {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    // 2026-12-05 was a Saturday.
    const SATURDAY_MIDNIGHT: u64 = 1_796_428_800;
    const HOUR: u64 = 3600;

    #[test]
    fn saturday_midnight_is_a_saturday() {
        let w = window("Sat 00:00-24:00");
        assert!(w.contains(SATURDAY_MIDNIGHT));
        assert!(w.contains(SATURDAY_MIDNIGHT + 24 * HOUR - 1));
        assert!(!w.contains(SATURDAY_MIDNIGHT - 1));
        assert!(!w.contains(SATURDAY_MIDNIGHT + 24 * HOUR));
    }

    #[test]
    fn a_daily_window_holds_its_start_but_not_its_end() {
        let w = window("02:00-05:00");
        assert!(!w.contains(SATURDAY_MIDNIGHT + HOUR));
        assert!(w.contains(SATURDAY_MIDNIGHT + 2 * HOUR));
        assert!(w.contains(SATURDAY_MIDNIGHT + 5 * HOUR - 1));
        assert!(!w.contains(SATURDAY_MIDNIGHT + 5 * HOUR));
        assert!(w.contains(SATURDAY_MIDNIGHT + 3 * 24 * HOUR + 3 * HOUR));
    }

    #[test]
    fn a_window_past_midnight_belongs_to_the_day_it_opens() {
        // Opens Friday 22:00, ends Saturday 01:00.
        let w = window("Fri 22:00-01:00 UTC");
        assert!(w.contains(SATURDAY_MIDNIGHT - HOUR));
        assert!(w.contains(SATURDAY_MIDNIGHT + HOUR / 2));
        assert!(!w.contains(SATURDAY_MIDNIGHT + HOUR));
        // Saturday evening is not in it.
        assert!(!w.contains(SATURDAY_MIDNIGHT + 23 * HOUR));
    }

    #[test]
    fn day_lists_and_ranges_wrap_over_the_weekend() {
        assert_eq!(
            window("Fri-Mon 01:00-02:00").days,
            [true, false, false, false, true, true, true]
        );
        assert_eq!(
            window("mon,wed 01:00-02:00").days,
            [true, false, true, false, false, false, false]
        );
    }

    #[test]
    fn it_reads_back_as_written() {
        for text in [
            "Sat,Sun 02:00-05:00 UTC",
            "00:00-24:00 UTC",
            "Mon 23:30-00:30 UTC",
        ] {
            assert_eq!(window(text).to_string(), text);
        }
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        let error = |text: &str| text.parse::<Window>().err().map(|e| e.to_string());
        assert!(error("2:00-5:00").is_some_and(|e| e.contains("HH:MM")));
        assert!(error("Sa 02:00-05:00").is_some_and(|e| e.contains("Mon, Tue")));
        assert!(error("02:00-25:00").is_some_and(|e| e.contains("25:00")));
        assert!(error("03:00-03:00").is_some_and(|e| e.contains("same time")));
        assert!(error("Sat 02:00-05:00 CET").is_some_and(|e| e.contains("UTC")));
        assert!(error("nightly").is_some_and(|e| e.contains("HH:MM-HH:MM")));
        assert!(error("24:00-02:00").is_some());
    }
}
