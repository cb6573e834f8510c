//! The quota state machine: plain data, no locks, no I/O, no clock.
//!
//! Everything the tracker does to its state is a method here, called with the cache lock
//! held (design invariant 7: functions that need the locked state take `&mut QuotaState`,
//! so they cannot take the lock again). The same type is the sequential specification the
//! concurrent tracker is checked against.

use std::sync::Arc;

use crate::batch::{DayDeltas, StoredDay};
use crate::clock::Timestamp;
use crate::config::{QuotaConfig, ServiceId};
use crate::day::UtcDay;
use crate::error::QuotaError;
use crate::reduced::{REDUCED_PERCENT, StoreHealth};
use crate::usage::{CRITICAL_PERCENT, Usage};

/// Per-service counters for the current day, with the service's limits next to them so that
/// `record` touches nothing else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counter {
    /// The service's limit.
    pub(crate) limit: u64,
    /// The smallest `used` at or above the critical threshold.
    pub(crate) critical_at: u64,
    /// Admission keeps `used` at or under this (the configured percentage of the limit).
    pub(crate) ceiling: u64,
    /// The ceiling in reduced-rate mode (25 % of the limit, never above `ceiling`).
    pub(crate) reduced_ceiling: u64,
    /// Calls known today: this instance's plus, after syncs and reloads, other instances'.
    pub(crate) used: u64,
    /// This instance's calls not yet handed to a sync, minus its refunds since: negative
    /// when calls already synced were given back.
    pub(crate) pending: i64,
    /// The critical threshold was reached today (so the next crossing does not force a sync).
    pub(crate) critical_seen: bool,
}

/// The smallest `used` that is at or above `percent` of `limit`: `used < ceiling_at(..)`
/// exactly when `used` is below `percent` of `limit`.
pub(crate) fn ceiling_at(limit: u64, percent: u64) -> u64 {
    let scaled = u128::from(limit) * u128::from(percent);
    u64::try_from(scaled.div_ceil(100)).unwrap_or(u64::MAX)
}

/// The smallest `used` that is at or above the critical threshold of `limit`.
fn critical_at(limit: u64) -> u64 {
    ceiling_at(limit, CRITICAL_PERCENT)
}

/// What one recorded call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordOutcome {
    /// The service's usage right after the call, read in the same critical section.
    pub usage: Usage,
    /// This call took the service to 80 % for the first time today: sync now.
    pub crossed_critical: bool,
}

/// The per-day quota state of one tracker instance.
// `repr(C)` and this order: what `record` touches comes first, so that inside the tracker's
// `#[repr(C)]` cache it sits right behind the lock word, on the lock's cache line. Under
// contention every line the holder writes moves between cores once per handoff; with
// Rust's own field order these fields were spread over two more lines (BENCHMARKS.md has
// the before and after).
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(C)]
pub struct QuotaState {
    pub(crate) counters: Box<[Counter]>,
    /// Start of the next day, in milliseconds: a call at or after it rolls the day over.
    pub(crate) day_end: i64,
    pub(crate) total_today: u64,
    /// When a call was last recorded; [`NEVER`] before the first (a plain timestamp, not an
    /// `Option`, so recording stores one word).
    pub(crate) updated_at: Timestamp,
    /// Store failures and successes in a row; whether admission runs at the reduced rate.
    pub(crate) health: StoreHealth,
    config: Arc<QuotaConfig>,
    pub(crate) day: UtcDay,
    /// Pending deltas of earlier days, still owed to those days' store items.
    pub(crate) carried: Vec<DayDeltas>,
}

/// `updated_at` before any call was recorded.
const NEVER: Timestamp = Timestamp(i64::MIN);

impl QuotaState {
    /// An empty state for `day`.
    pub fn new(config: Arc<QuotaConfig>, day: UtcDay) -> Self {
        let percent = config.admission_ceiling_percent();
        let counters = config
            .services()
            .iter()
            .map(|s| {
                let ceiling = ceiling_at(s.limit(), percent);
                Counter {
                    limit: s.limit(),
                    critical_at: critical_at(s.limit()),
                    ceiling,
                    reduced_ceiling: ceiling.min(ceiling_at(s.limit(), REDUCED_PERCENT)),
                    ..Counter::default()
                }
            })
            .collect();
        Self {
            config,
            day,
            day_end: day.next().start().0,
            counters,
            total_today: 0,
            carried: Vec::new(),
            updated_at: NEVER,
            health: StoreHealth::default(),
        }
    }

    /// The configuration this state counts.
    pub fn config(&self) -> &Arc<QuotaConfig> {
        &self.config
    }

    /// The UTC day the counters are for.
    pub fn day(&self) -> UtcDay {
        self.day
    }

    /// When a call was last recorded.
    pub fn updated_at(&self) -> Option<Timestamp> {
        (self.updated_at != NEVER).then_some(self.updated_at)
    }

    /// Starts a new day if `day` is later than the current one: today's pending deltas are
    /// kept for today's store item, and the counters start from zero. A clock that went
    /// backwards keeps the current day. Returns whether the day changed.
    pub fn roll_to(&mut self, day: UtcDay) -> bool {
        if day <= self.day {
            return false;
        }
        let owed = DayDeltas {
            day: self.day,
            deltas: self.counters.iter().map(|c| c.pending).collect(),
        };
        if !owed.is_empty() {
            self.carried.push(owed);
        }
        for counter in self.counters.iter_mut() {
            *counter = Counter {
                used: 0,
                pending: 0,
                critical_seen: false,
                ..*counter
            };
        }
        self.total_today = 0;
        self.day = day;
        self.day_end = day.next().start().0;
        true
    }

    /// Adds `count` calls to `service` at `now`: the read-modify-write the whole project is
    /// about. Validates everything first, so an error leaves the counters unchanged (a day
    /// rollover caused by `now` may still happen: that is the passage of time, not a change
    /// of what was recorded).
    // `always`: with plain `#[inline]` LLVM kept it out of line in the benchmark binary (seen
    // in `perf report`), a call and register spills inside the critical section.
    #[inline(always)]
    pub fn record(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Result<RecordOutcome, QuotaError> {
        self.prepare(service, count, now)?;
        self.add(service, count, now)
    }

    /// Checks `service` and `count` and rolls the day over if `now` is past it: what every
    /// change of the counters starts with.
    // The hot path: the error and day-rollover paths live in cold functions, so this stays
    // two comparisons.
    #[inline(always)]
    pub(crate) fn prepare(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Result<(), QuotaError> {
        if service.0 >= self.counters.len() || count == 0 {
            return Err(self.invalid(service));
        }
        // Comparing with the day's end avoids a division per call.
        if now.0 >= self.day_end {
            self.roll_over(now);
        }
        Ok(())
    }

    /// Adds `count` to a checked `service` (after [`QuotaState::prepare`]), or nothing on
    /// overflow.
    #[inline(always)]
    pub(crate) fn add(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Result<RecordOutcome, QuotaError> {
        let counter = self.counters[service.0];
        // Pending is signed (refunds), so a count must fit an i64 too.
        let signed = i64::try_from(count).ok();
        let (Some(used), Some(pending), Some(total_today)) = (
            counter.used.checked_add(count),
            signed.and_then(|c| counter.pending.checked_add(c)),
            self.total_today.checked_add(count),
        ) else {
            return Err(self.overflow(service, count));
        };
        let crossed_critical = used >= counter.critical_at && !counter.critical_seen;
        let slot = &mut self.counters[service.0];
        slot.used = used;
        slot.pending = pending;
        // Stored only when it changes: every store here is one more the lock's release
        // waits to drain.
        if crossed_critical {
            slot.critical_seen = true;
        }
        self.total_today = total_today;
        self.updated_at = now;
        Ok(RecordOutcome {
            usage: Usage::new(service, counter.limit, self.ceiling_of(&counter), used),
            crossed_critical,
        })
    }

    /// The admission ceiling of `counter` now: lower in reduced-rate mode.
    #[inline(always)]
    pub(crate) fn ceiling_of(&self, counter: &Counter) -> u64 {
        if self.health.reduced() {
            counter.reduced_ceiling
        } else {
            counter.ceiling
        }
    }

    #[cold]
    #[inline(never)]
    fn roll_over(&mut self, now: Timestamp) {
        self.roll_to(now.day());
    }

    /// The error for a service id out of range or a count of zero.
    #[cold]
    #[inline(never)]
    fn invalid(&self, service: ServiceId) -> QuotaError {
        if service.0 >= self.counters.len() {
            return self.out_of_range(service);
        }
        QuotaError::ZeroCount {
            service: self.name(service),
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn overflow(&self, service: ServiceId, count: u64) -> QuotaError {
        QuotaError::Overflow {
            service: self.name(service),
            used: self.counters[service.0].used,
            count,
        }
    }

    /// The usage of `service`.
    pub fn usage(&self, service: ServiceId) -> Result<Usage, QuotaError> {
        let limit = self.config.get(service)?.limit();
        let counter = &self.counters[service.0];
        Ok(Usage::new(
            service,
            limit,
            self.ceiling_of(counter),
            counter.used,
        ))
    }

    /// What today's calls cost, in millionths of a currency unit: each service's count
    /// times its configured price per call (saturating).
    pub fn estimated_daily_cost_micros(&self) -> u64 {
        self.config
            .services()
            .iter()
            .zip(self.counters.iter())
            .fold(0u64, |sum, (service, counter)| {
                sum.saturating_add(counter.used.saturating_mul(service.cost_per_call_micros()))
            })
    }

    /// Whether admission runs at the reduced rate (after consecutive store failures).
    pub fn reduced_rate(&self) -> bool {
        self.health.reduced()
    }

    /// Counts a store operation's outcome towards entering or leaving reduced-rate mode;
    /// returns the mode's change, if any.
    pub fn note_store_outcome(&mut self, succeeded: bool) -> Option<bool> {
        self.health.note(succeeded)
    }

    /// Calls recorded today over all services.
    pub fn total_api_calls_today(&self) -> u64 {
        self.total_today
    }

    /// Today's deltas not yet handed to a sync, per service (negative after refunds of
    /// calls already synced).
    pub fn pending(&self, service: ServiceId) -> i64 {
        self.counters.get(service.0).map_or(0, |c| c.pending)
    }

    /// Whether any day has deltas waiting for a sync.
    pub fn has_pending(&self) -> bool {
        !self.carried.is_empty() || self.counters.iter().any(|c| c.pending > 0)
    }

    /// Every pending delta, oldest day first, leaving none pending.
    pub fn take_pending(&mut self) -> Vec<DayDeltas> {
        let days = self.pending_days();
        self.carried.clear();
        for counter in self.counters.iter_mut() {
            counter.pending = 0;
        }
        days
    }

    /// Every pending delta, oldest day first, leaving the state as it is.
    pub fn pending_days(&self) -> Vec<DayDeltas> {
        let mut days = self.carried.clone();
        let today = DayDeltas {
            day: self.day,
            deltas: self.counters.iter().map(|c| c.pending).collect(),
        };
        if !today.is_empty() {
            days.push(today);
        }
        days
    }

    /// Puts deltas of a failed write back into pending, merged with what was recorded since.
    pub fn restore_pending(&mut self, days: &[DayDeltas]) {
        for owed in days {
            if owed.day == self.day {
                for (counter, delta) in self.counters.iter_mut().zip(&owed.deltas) {
                    // Cannot overflow: pending never exceeds used, which already counts these.
                    counter.pending = counter.pending.saturating_add(*delta);
                }
            } else if let Some(carried) = self.carried.iter_mut().find(|c| c.day == owed.day) {
                for (sum, delta) in carried.deltas.iter_mut().zip(&owed.deltas) {
                    *sum = sum.saturating_add(*delta);
                }
            } else {
                self.carried.push(owed.clone());
                self.carried.sort_by_key(|c| c.day);
            }
        }
    }

    /// Merges counters read from the store with what this instance knows (invariant 6).
    ///
    /// The store holds every delta already synced (this instance's and others'); pending and
    /// `unsynced` (a batch whose write is in doubt) are this instance's calls it may not hold
    /// yet. A service's `used` becomes `stored + pending + unsynced`, and never goes down: a
    /// store behind what this instance already knows is not trusted to erase calls. Counters
    /// of another day are ignored. Returns whether the item was for the current day.
    pub fn merge_stored(&mut self, stored: &StoredDay, unsynced: &[DayDeltas]) -> bool {
        if stored.day != self.day {
            return false;
        }
        let in_doubt = unsynced.iter().find(|d| d.day == self.day);
        for (i, service) in self.config.services().iter().enumerate() {
            let doubt = in_doubt.and_then(|d| d.deltas.get(i)).copied().unwrap_or(0);
            let counter = &mut self.counters[i];
            // Signed: pending and the batch in doubt may hold refunds.
            let merged = i128::from(stored.used(service.name()))
                + i128::from(counter.pending)
                + i128::from(doubt);
            let merged = u64::try_from(merged.max(0)).unwrap_or(u64::MAX);
            counter.used = counter.used.max(merged);
            counter.critical_seen |= counter.used >= counter.critical_at;
        }
        self.total_today = self
            .counters
            .iter()
            .fold(0u64, |sum, c| sum.saturating_add(c.used));
        true
    }

    fn out_of_range(&self, service: ServiceId) -> QuotaError {
        QuotaError::ServiceIdOutOfRange {
            index: service.0,
            services: self.counters.len(),
        }
    }

    fn name(&self, service: ServiceId) -> String {
        self.config
            .services()
            .get(service.0)
            .map_or_else(String::new, |s| s.name().to_owned())
    }

    /// Raw counter access for the historical variants, which copy state field by field.
    #[cfg(feature = "zoo")]
    pub(crate) fn counter(&self, index: usize) -> Counter {
        self.counters[index]
    }

    /// Raw counter write-back for the historical variants.
    #[cfg(feature = "zoo")]
    pub(crate) fn set_counter(&mut self, index: usize, counter: Counter) {
        self.counters[index] = counter;
    }

    /// Raw total access for the historical variants.
    #[cfg(feature = "zoo")]
    pub(crate) fn set_total(&mut self, total: u64) {
        self.total_today = total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::usage::at_least_percent;

    fn day() -> UtcDay {
        UtcDay::from_ymd(2026, 11, 29).expect("valid")
    }

    fn state() -> (QuotaState, ServiceId, ServiceId) {
        let config = Arc::new(QuotaConfig::default());
        let tiingo = config.service("tiingo").expect("configured");
        let finnhub = config.service("finnhub").expect("configured");
        (QuotaState::new(config, day()), tiingo, finnhub)
    }

    fn at(hours: i64) -> Timestamp {
        Timestamp(day().start().0 + hours * 3_600_000)
    }

    #[test]
    fn record_adds_to_used_pending_and_total() {
        let (mut s, tiingo, finnhub) = state();
        s.record(tiingo, 3, at(1)).expect("ok");
        let out = s.record(finnhub, 2, at(2)).expect("ok");
        assert_eq!(out.usage.used(), 2);
        assert_eq!(out.usage.remaining(), 58);
        assert_eq!(s.usage(tiingo).map(|u| u.used()), Ok(3));
        assert_eq!(s.total_api_calls_today(), 5);
        assert_eq!((s.pending(tiingo), s.pending(finnhub)), (3, 2));
        assert_eq!(s.updated_at(), Some(at(2)));
    }

    #[test]
    fn first_crossing_of_80_percent_is_reported_once() {
        let (mut s, _, finnhub) = state();
        // finnhub: 60/minute, critical from 48.
        assert!(!s.record(finnhub, 47, at(1)).expect("ok").crossed_critical);
        assert!(s.record(finnhub, 1, at(1)).expect("ok").crossed_critical);
        assert!(!s.record(finnhub, 1, at(1)).expect("ok").crossed_critical);
        // A jump straight past it counts as a crossing too.
        let (mut s, tiingo, _) = state();
        assert!(s.record(tiingo, 450, at(1)).expect("ok").crossed_critical);
    }

    #[test]
    fn the_precomputed_critical_threshold_matches_the_percentage() {
        let limits = (1..=1_000).chain([u64::MAX / 100, u64::MAX / 2, u64::MAX]);
        for limit in limits {
            let at = critical_at(limit);
            assert!(
                at_least_percent(at, limit, CRITICAL_PERCENT),
                "limit {limit}"
            );
            assert!(
                at == 0 || !at_least_percent(at - 1, limit, CRITICAL_PERCENT),
                "limit {limit}: {at} is not the smallest"
            );
        }
    }

    #[test]
    fn a_count_past_what_pending_can_hold_is_refused() {
        let (mut s, tiingo, _) = state();
        let before = s.clone();
        let err = s
            .record(tiingo, i64::MAX as u64 + 1, at(1))
            .expect_err("refused");
        assert!(matches!(err, QuotaError::Overflow { used: 0, .. }), "{err}");
        assert_eq!(s, before);
    }

    #[test]
    fn bad_input_changes_nothing() {
        let (mut s, tiingo, _) = state();
        s.record(tiingo, 5, at(1)).expect("ok");
        let before = s.clone();
        assert!(matches!(
            s.record(tiingo, 0, at(1)),
            Err(QuotaError::ZeroCount { .. })
        ));
        assert!(matches!(
            s.record(tiingo, u64::MAX, at(1)),
            Err(QuotaError::Overflow { used: 5, .. })
        ));
        assert!(matches!(
            s.record(ServiceId(7), 1, at(1)),
            Err(QuotaError::ServiceIdOutOfRange { index: 7, .. })
        ));
        assert_eq!(s, before);
    }

    #[test]
    fn total_overflow_is_refused_even_when_the_service_fits() {
        let (mut s, tiingo, finnhub) = state();
        // A count and what is pending are at most i64::MAX; two synced halves fill the total.
        for _ in 0..2 {
            s.record(tiingo, i64::MAX as u64, at(1)).expect("fits");
            s.take_pending();
        }
        assert_eq!(s.total_api_calls_today(), u64::MAX - 1);
        let before = s.clone();
        let err = s.record(finnhub, 2, at(1)).expect_err("total overflows");
        assert!(err.to_string().contains("overflow"), "{err}");
        assert_eq!(s, before);
    }

    #[test]
    fn a_new_day_starts_from_zero_and_owes_yesterday_its_deltas() {
        let (mut s, tiingo, finnhub) = state();
        s.record(tiingo, 4, at(23)).expect("ok");
        s.record(finnhub, 1, at(25)).expect("ok"); // 01:00 the next day
        assert_eq!(s.day(), day().next());
        assert_eq!(s.usage(tiingo).map(|u| u.used()), Ok(0));
        assert_eq!(s.total_api_calls_today(), 1);
        let owed = s.take_pending();
        assert_eq!(
            owed,
            vec![
                DayDeltas {
                    day: day(),
                    deltas: vec![4, 0, 0]
                },
                DayDeltas {
                    day: day().next(),
                    deltas: vec![0, 1, 0]
                },
            ]
        );
        assert!(!s.has_pending());
        // A clock that goes back does not reopen yesterday.
        s.record(tiingo, 1, at(2)).expect("ok");
        assert_eq!(s.day(), day().next());
    }

    #[test]
    fn restored_deltas_merge_with_newer_ones() {
        let (mut s, tiingo, _) = state();
        s.record(tiingo, 4, at(1)).expect("ok");
        let taken = s.take_pending();
        s.record(tiingo, 2, at(1)).expect("ok");
        s.restore_pending(&taken);
        assert_eq!(s.pending(tiingo), 6);
        assert_eq!(s.usage(tiingo).map(|u| u.used()), Ok(6));
    }

    #[test]
    fn merge_adds_pending_and_doubtful_deltas_and_never_goes_down() {
        let (mut s, tiingo, finnhub) = state();
        s.record(tiingo, 2, at(1)).expect("ok");
        let stored = StoredDay::new(
            day(),
            [("tiingo".to_owned(), 10), ("finnhub".to_owned(), 50)].into(),
        );
        let doubt = [DayDeltas {
            day: day(),
            deltas: vec![1, 0, 0],
        }];
        assert!(s.merge_stored(&stored, &doubt));
        assert_eq!(s.usage(tiingo).map(|u| u.used()), Ok(13));
        assert_eq!(s.usage(finnhub).map(|u| u.used()), Ok(50));
        assert_eq!(s.pending(tiingo), 2, "pending survives a reload");
        assert_eq!(s.total_api_calls_today(), 63);
        // finnhub reached critical through the store: no forced sync on the next call.
        assert!(!s.record(finnhub, 1, at(1)).expect("ok").crossed_critical);
        // A store that is behind does not erase calls.
        let behind = StoredDay::new(day(), Default::default());
        s.merge_stored(&behind, &[]);
        assert_eq!(s.usage(tiingo).map(|u| u.used()), Ok(13));
        // Another day's item is ignored.
        assert!(!s.merge_stored(&StoredDay::new(day().next(), Default::default()), &[]));
    }
}
