//! Quota windows: a limit holds per UTC calendar minute, hour, day or month of its period,
//! and a call belongs to exactly one window of its service (design invariant 9).
//!
//! A window is its period and its start; the next window starts where it ends. Windows of a
//! minute or an hour lie inside one UTC day, a month's windows contain whole days, so the
//! finer of a call's window and its day ([`Window::bucket_end`]) decides when its pending
//! delta must be set aside for its own store items.

use std::fmt;

use crate::clock::{MILLIS_PER_DAY, Timestamp};
use crate::config::Period;
use crate::day::UtcDay;

const MILLIS_PER_MINUTE: i64 = 60_000;
const MILLIS_PER_HOUR: i64 = 3_600_000;

/// One window of a period: `[start, end)` in UTC milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    period: Period,
    start: i64,
}

impl Window {
    /// The window of `period` that contains `at`.
    pub fn containing(period: Period, at: Timestamp) -> Self {
        let start = match period {
            Period::Minute => at.0.div_euclid(MILLIS_PER_MINUTE) * MILLIS_PER_MINUTE,
            Period::Hour => at.0.div_euclid(MILLIS_PER_HOUR) * MILLIS_PER_HOUR,
            Period::Day => at.day().start().0,
            Period::Month => {
                let (year, month, _) = at.day().ymd();
                month_start(year, month)
            }
        };
        Self { period, start }
    }

    /// The period this is a window of.
    pub fn period(self) -> Period {
        self.period
    }

    /// The first millisecond of the window.
    pub fn start(self) -> Timestamp {
        Timestamp(self.start)
    }

    /// The first millisecond after the window (the next window's start).
    pub fn end(self) -> Timestamp {
        let end = match self.period {
            Period::Minute => self.start.saturating_add(MILLIS_PER_MINUTE),
            Period::Hour => self.start.saturating_add(MILLIS_PER_HOUR),
            Period::Day => self.start.saturating_add(MILLIS_PER_DAY),
            Period::Month => {
                let (year, month, _) = Timestamp(self.start).day().ymd();
                let (year, month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                month_start(year, month)
            }
        };
        Timestamp(end)
    }

    /// The window after this one.
    pub fn next(self) -> Self {
        Self::containing(self.period, self.end())
    }

    /// Whether `at` falls in this window.
    pub fn contains(self, at: Timestamp) -> bool {
        self.start <= at.0 && at.0 < self.end().0
    }

    /// The UTC day the window starts on.
    pub fn day(self) -> UtcDay {
        Timestamp(self.start).day()
    }

    /// Where a pending delta of this window, counted on the day of `at`, must be set aside:
    /// the end of the window or of that day, whichever comes first.
    pub fn bucket_end(self, at: Timestamp) -> i64 {
        self.end().0.min(at.day().next().start().0)
    }
}

/// Milliseconds at the start of `year`-`month`-01.
fn month_start(year: i64, month: u32) -> i64 {
    UtcDay::from_ymd(year, month, 1).map_or(i64::MAX, |d| d.start().0)
}

impl fmt::Display for Window {
    /// The store key's form: `2026-12-01T12:34` (minute), `2026-12-01T12` (hour),
    /// `2026-12-01` (day), `2026-12` (month).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = self.day();
        let ms = self.start.rem_euclid(MILLIS_PER_DAY);
        let (hour, minute) = (
            ms / MILLIS_PER_HOUR,
            ms % MILLIS_PER_HOUR / MILLIS_PER_MINUTE,
        );
        match self.period {
            Period::Minute => write!(f, "{day}T{hour:02}:{minute:02}"),
            Period::Hour => write!(f, "{day}T{hour:02}"),
            Period::Day => write!(f, "{day}"),
            Period::Month => {
                let (year, month, _) = day.ymd();
                write!(f, "{year:04}-{month:02}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64, ms: i64) -> Timestamp {
        let day = UtcDay::from_ymd(y, mo, d).expect("valid");
        Timestamp(day.start().0 + h * 3_600_000 + mi * 60_000 + s * 1_000 + ms)
    }

    #[test]
    fn the_last_millisecond_of_a_minute_and_the_first_of_the_next_are_different_windows() {
        let before = Window::containing(Period::Minute, at(2026, 12, 1, 12, 34, 59, 999));
        let after = Window::containing(Period::Minute, at(2026, 12, 1, 12, 35, 0, 0));
        assert_ne!(before, after);
        assert_eq!(before.next(), after);
        assert_eq!(before.to_string(), "2026-12-01T12:34");
        assert_eq!(after.to_string(), "2026-12-01T12:35");
        assert_eq!(before.end(), after.start());
    }

    #[test]
    fn each_period_starts_and_ends_on_its_calendar_boundary() {
        let t = at(2026, 12, 31, 23, 59, 59, 999);
        let cases = [
            (
                Period::Minute,
                "2026-12-31T23:59",
                at(2027, 1, 1, 0, 0, 0, 0),
            ),
            (Period::Hour, "2026-12-31T23", at(2027, 1, 1, 0, 0, 0, 0)),
            (Period::Day, "2026-12-31", at(2027, 1, 1, 0, 0, 0, 0)),
            (Period::Month, "2026-12", at(2027, 1, 1, 0, 0, 0, 0)),
        ];
        for (period, key, end) in cases {
            let w = Window::containing(period, t);
            assert_eq!((w.to_string().as_str(), w.end()), (key, end), "{period}");
            assert!(w.contains(t) && !w.contains(end), "{period}");
        }
        // February of a leap year: 29 days.
        let feb = Window::containing(Period::Month, at(2028, 2, 10, 0, 0, 0, 0));
        assert_eq!(feb.end(), at(2028, 3, 1, 0, 0, 0, 0));
        assert_eq!(feb.start(), at(2028, 2, 1, 0, 0, 0, 0));
    }

    #[test]
    fn a_bucket_ends_at_the_window_or_the_day_whichever_is_first() {
        let noon = at(2026, 12, 1, 12, 0, 30, 0);
        let minute = Window::containing(Period::Minute, noon);
        assert_eq!(minute.bucket_end(noon), at(2026, 12, 1, 12, 1, 0, 0).0);
        let month = Window::containing(Period::Month, noon);
        assert_eq!(month.bucket_end(noon), at(2026, 12, 2, 0, 0, 0, 0).0);
    }

    #[test]
    fn windows_before_the_epoch_still_contain_their_instant() {
        for period in [Period::Minute, Period::Hour, Period::Day, Period::Month] {
            let t = Timestamp(-1);
            let w = Window::containing(period, t);
            assert!(w.contains(t), "{period}: {w}");
        }
    }
}
