//! The UTC calendar day, which is the store key of a day's quota (`SK = "YYYY-MM-DD"`).

use std::fmt;
use std::str::FromStr;

use crate::clock::{MILLIS_PER_DAY, Timestamp};

/// A UTC calendar day, stored as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcDay(i64);

/// Why a string is not a `YYYY-MM-DD` day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid day {input:?}: expected YYYY-MM-DD, a real calendar date")]
pub struct ParseDayError {
    input: String,
}

impl UtcDay {
    /// The day `days` after 1970-01-01 (negative: before it).
    pub fn from_days_since_epoch(days: i64) -> Self {
        UtcDay(days)
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> i64 {
        self.0
    }

    /// The day for a proleptic Gregorian date, or `None` if the date does not exist.
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(UtcDay(days_from_civil(year, month, day)))
    }

    /// The (year, month, day) of this day.
    pub fn ymd(self) -> (i64, u32, u32) {
        civil_from_days(self.0)
    }

    /// Midnight UTC at the start of this day.
    pub fn start(self) -> Timestamp {
        Timestamp(self.0.saturating_mul(MILLIS_PER_DAY))
    }

    /// The day after this one.
    pub fn next(self) -> Self {
        UtcDay(self.0 + 1)
    }
}

impl fmt::Display for UtcDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl FromStr for UtcDay {
    type Err = ParseDayError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDayError {
            input: s.to_owned(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(err());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u32, ParseDayError> {
            let part = &s[range];
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            part.parse().map_err(|_| err())
        };
        let (y, m, d) = (number(0..4)?, number(5..7)?, number(8..10)?);
        UtcDay::from_ymd(i64::from(y), m, d).ok_or_else(err)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Day-number conversions in 400-year eras (each era is exactly 146,097 days), with the year
// starting in March so that the leap day falls at the end.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let m = i64::from(month);
    let shifted_month = if m > 2 { m - 3 } else { m + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(UtcDay::from_days_since_epoch(0).to_string(), "1970-01-01");
        assert_eq!(UtcDay::from_days_since_epoch(-1).to_string(), "1969-12-31");
        // 2026-11-29 is day 20,786.
        assert_eq!(UtcDay::from_ymd(2026, 11, 29).map(|d| d.0), Some(20_786));
        assert_eq!(
            UtcDay::from_ymd(2000, 2, 29).map(|d| d.to_string()),
            Some("2000-02-29".into())
        );
        assert_eq!(UtcDay::from_ymd(1900, 2, 29), None);
        assert_eq!(UtcDay::from_ymd(2026, 4, 31), None);
        assert_eq!(UtcDay::from_ymd(2026, 13, 1), None);
    }

    #[test]
    fn round_trips_every_day_for_two_millennia() {
        for n in -400_000..400_000 {
            let day = UtcDay(n);
            let (y, m, d) = day.ymd();
            assert_eq!(UtcDay::from_ymd(y, m, d), Some(day), "day {n}");
        }
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!("2026-11-29".parse::<UtcDay>().map(|d| d.0), Ok(20_786));
        for bad in [
            "2026-1-29",
            "2026/11/29",
            "2026-02-30",
            "abcd-ef-gh",
            "",
            "2026-11-29T",
        ] {
            let err = bad.parse::<UtcDay>().expect_err(bad);
            assert!(err.to_string().contains("YYYY-MM-DD"), "{err}");
        }
    }

    #[test]
    fn timestamps_map_to_their_day_at_the_boundary() {
        let day = UtcDay::from_ymd(2026, 11, 29).expect("valid");
        assert_eq!(day.start().day(), day);
        assert_eq!(Timestamp(day.start().0 - 1).day().to_string(), "2026-11-28");
        assert_eq!(Timestamp(day.next().start().0 - 1).day(), day);
    }
}
