//! Pending deltas set aside for their own store items: a delta counted in one window of a
//! service on one UTC day lands in that day's item and (for a minute, hour or month limit)
//! in that window's item, whatever time it is when it is synced.
//!
//! The tracker keeps deltas in buckets: one per service, day and window, the finer of the
//! two deciding when a bucket closes ([`crate::Window::bucket_end`]). A batch carries the
//! buckets summed two ways, per day ([`DayDeltas`]) and per window ([`WindowDelta`]); since a
//! minute or an hour lies inside a day and a day inside a month, the buckets can be rebuilt
//! exactly from those sums ([`buckets_of`]) when a write that surely failed is put back.

use crate::batch::{DayDeltas, WindowDelta};
use crate::config::{Period, ServiceId};
use crate::day::UtcDay;
use crate::window::Window;

/// Deltas of one service, counted on one day in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub(crate) service: usize,
    pub(crate) day: UtcDay,
    pub(crate) window: Window,
    pub(crate) delta: i64,
}

/// Adds `bucket` to `buckets`, merging it into one with the same service, day and window.
pub(crate) fn add(buckets: &mut Vec<Bucket>, bucket: Bucket) {
    if bucket.delta == 0 {
        return;
    }
    let same = |b: &&mut Bucket| {
        b.service == bucket.service && b.day == bucket.day && b.window == bucket.window
    };
    match buckets.iter_mut().find(same) {
        Some(existing) => existing.delta = existing.delta.saturating_add(bucket.delta),
        None => buckets.push(bucket),
    }
}

/// The buckets summed per day, oldest first, each with one delta per service (`services`
/// of them); days whose deltas sum to nothing for every service are left out.
pub(crate) fn days_of(buckets: &[Bucket], services: usize) -> Vec<DayDeltas> {
    let mut days: Vec<DayDeltas> = Vec::new();
    for bucket in buckets {
        let index = match days.iter().position(|d| d.day == bucket.day) {
            Some(index) => index,
            None => {
                days.push(DayDeltas {
                    day: bucket.day,
                    deltas: vec![0; services],
                });
                days.len() - 1
            }
        };
        let slot = &mut days[index].deltas[bucket.service];
        *slot = slot.saturating_add(bucket.delta);
    }
    days.retain(|d| !d.is_empty());
    days.sort_by_key(|d| d.day);
    days
}

/// The buckets of minute, hour and month limits summed per service and window, oldest
/// first (a day limit's window is its day item).
pub(crate) fn windows_of(buckets: &[Bucket]) -> Vec<WindowDelta> {
    let mut windows: Vec<WindowDelta> = Vec::new();
    for bucket in buckets.iter().filter(|b| b.window.period() != Period::Day) {
        let service = ServiceId(bucket.service);
        match windows
            .iter_mut()
            .find(|w| w.service == service && w.window == bucket.window)
        {
            Some(w) => w.delta = w.delta.saturating_add(bucket.delta),
            None => windows.push(WindowDelta {
                service,
                window: bucket.window,
                delta: bucket.delta,
            }),
        }
    }
    windows.retain(|w| w.delta != 0);
    windows.sort_by_key(|w| (w.window.start(), w.service));
    windows
}

/// The buckets that `days` and `windows` sum, for services with these `periods`: a minute
/// or hour limit's buckets are its windows (each inside one day), a day or month limit's are
/// its days (each inside one window).
pub(crate) fn buckets_of(
    days: &[DayDeltas],
    windows: &[WindowDelta],
    periods: &[Period],
) -> Vec<Bucket> {
    let mut buckets = Vec::new();
    for (service, period) in periods.iter().enumerate() {
        match period {
            Period::Minute | Period::Hour => {
                for w in windows.iter().filter(|w| w.service.0 == service) {
                    add(
                        &mut buckets,
                        Bucket {
                            service,
                            day: w.window.day(),
                            window: w.window,
                            delta: w.delta,
                        },
                    );
                }
            }
            Period::Day | Period::Month => {
                for day in days {
                    let delta = day.deltas.get(service).copied().unwrap_or(0);
                    let window = Window::containing(*period, day.day.start());
                    add(
                        &mut buckets,
                        Bucket {
                            service,
                            day: day.day,
                            window,
                            delta,
                        },
                    );
                }
            }
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn day(d: u32) -> UtcDay {
        UtcDay::from_ymd(2026, 11, d).expect("valid")
    }

    fn bucket(service: usize, period: Period, d: u32, hour: i64, delta: i64) -> Bucket {
        let at = Timestamp(day(d).start().0 + hour * 3_600_000);
        Bucket {
            service,
            day: at.day(),
            window: Window::containing(period, at),
            delta,
        }
    }

    #[test]
    fn sums_per_day_and_per_window_rebuild_the_same_buckets() {
        let periods = [Period::Month, Period::Minute, Period::Day, Period::Hour];
        let mut buckets = Vec::new();
        for b in [
            bucket(0, Period::Month, 29, 1, 3),
            bucket(0, Period::Month, 30, 1, 2),
            bucket(1, Period::Minute, 29, 1, 4),
            bucket(1, Period::Minute, 29, 2, -1),
            bucket(2, Period::Day, 30, 5, 7),
            bucket(3, Period::Hour, 29, 23, 1),
            bucket(3, Period::Hour, 30, 0, 1),
        ] {
            add(&mut buckets, b);
        }
        let days = days_of(&buckets, 4);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].deltas, vec![3, 3, 0, 1]);
        assert_eq!(days[1].deltas, vec![2, 0, 7, 1]);
        let windows = windows_of(&buckets);
        assert_eq!(
            windows.len(),
            5,
            "{windows:?}: one month, two minutes, two hours"
        );
        let month = windows.iter().find(|w| w.service.0 == 0).expect("month");
        assert_eq!(month.delta, 5);
        let mut rebuilt = buckets_of(&days, &windows, &periods);
        let key = |b: &Bucket| (b.service, b.day, b.window);
        rebuilt.sort_by_key(key);
        buckets.sort_by_key(key);
        assert_eq!(rebuilt, buckets);
    }

    #[test]
    fn buckets_that_cancel_out_leave_nothing_to_send() {
        let mut buckets = Vec::new();
        add(&mut buckets, bucket(0, Period::Day, 29, 1, 2));
        add(&mut buckets, bucket(0, Period::Day, 29, 3, -2));
        assert!(days_of(&buckets, 1).is_empty());
        assert!(windows_of(&buckets).is_empty());
    }
}
