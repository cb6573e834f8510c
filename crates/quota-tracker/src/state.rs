//! The quota state machine: plain data, no locks, no I/O, no clock.
//!
//! Everything the tracker does to its state is a method here, called with the cache lock
//! held (design invariant 7: functions that need the locked state take `&mut QuotaState`,
//! so they cannot take the lock again). The same type is the sequential specification the
//! concurrent tracker is checked against.
//!
//! Each service counts in its window ([`crate::Window`], invariant 9): a call at or after the
//! window's end starts the next window from zero, and what the old one had pending is set
//! aside ([`crate::pending`]) for the old window's and day's store items, as midnight does
//! for the day.

use std::sync::Arc;

use crate::batch::{DayDeltas, Pending, StoredDay, WindowDelta};
use crate::clock::Timestamp;
use crate::config::{Period, QuotaConfig, ServiceId};
use crate::counters::Counters;
use crate::day::UtcDay;
use crate::error::QuotaError;
use crate::grant_ticket::Tickets;
use crate::lease::{self, LeaseBook, Returns};
use crate::pending::{self, Bucket};
use crate::reduced::{REDUCED_PERCENT, StoreHealth};
use crate::usage::{CRITICAL_PERCENT, Usage};
use crate::window::Window;

/// Per-service counters for the current window and day, with the service's limits next to
/// them so that a call touches nothing else.
// `repr(C)`: what the hot path ([`crate::fast`]) reads and writes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Counter {
    /// Calls known in the current window: this instance's plus, after syncs and reloads,
    /// other instances'.
    pub(crate) used: u64,
    /// The hot path records while `used` stays below this ([`QuotaState::rebound`]).
    pub(crate) record_below: u64,
    /// The hot path admits while `used` stays below this.
    pub(crate) admit_below: u64,
    /// The service's limit.
    pub(crate) limit: u64,
    /// `u64::MAX` while `used` is within the limit and 0 past it, for as long as the hot
    /// path's bounds hold ([`QuotaState::rebound`]): the hot path's `remaining` is
    /// `(limit − used) & remaining_mask`, with no saturation to compute.
    pub(crate) remaining_mask: u64,
    /// Admission keeps `used` at or under this now: `normal_ceiling`, or the reduced one
    /// ([`Counter::reduced_ceiling`]) in reduced-rate mode (switched when the mode changes,
    /// so the hot path reads one word).
    pub(crate) ceiling: u64,
    /// `used` when `pending`, `today`, `lease` and the total were last settled
    /// ([`QuotaState::settle`]): the calls above it count in each of them too.
    pub(crate) mark: u64,
    /// This instance's calls in the current bucket not yet handed to a sync, minus its
    /// refunds since: negative when calls already synced were given back (as of the mark).
    pub(crate) pending: i64,
    /// Calls known today (the day item's `<service>_used`; as of the mark).
    pub(crate) today: u64,
    /// Calls the lease of the current window still covers ([`crate::lease`]; as of the
    /// mark): admission refuses what it does not. `u64::MAX` in the default mode.
    pub(crate) lease: u64,
    /// A call at or after this (ms) closes the current bucket: the window's end or the
    /// day's, whichever is first.
    pub(crate) next_roll: i64,
    /// The configured percentage of the limit.
    pub(crate) normal_ceiling: u64,
    /// Below this lease, ask for the next block ahead of need (0 in the default mode).
    pub(crate) lease_low: u64,
    /// The current window.
    pub(crate) window: Window,
    /// The critical threshold was reached in this window (so the next crossing does not
    /// force a sync).
    pub(crate) critical_seen: bool,
}

// A power of two, so that finding a service's counter on the hot path is one shift.
const _: () = assert!(std::mem::size_of::<Counter>() == 128);

impl Counter {
    /// The smallest `used` at or above the critical threshold (computed, not kept: the
    /// counter's 128 bytes hold the hot path's fields).
    pub(crate) fn critical_at(&self) -> u64 {
        critical_at(self.limit)
    }

    /// The ceiling in reduced-rate mode: 25 % of the limit, never above the normal one.
    fn reduced_ceiling(&self) -> u64 {
        self.normal_ceiling
            .min(ceiling_at(self.limit, REDUCED_PERCENT))
    }
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
    /// This call took the service to 80 % for the first time in its window: sync now.
    pub crossed_critical: bool,
    /// An admission left the lease below its low-water mark (bounded mode only).
    pub(crate) lease_low: bool,
    /// Why an admission was refused (nothing recorded); `None` when recorded.
    pub(crate) refusal: Option<crate::admission::Refusal>,
}

/// The quota state of one tracker instance.
// `repr(C)` and this order: what `record` touches comes first, so that inside the tracker's
// `#[repr(C)]` cache it sits right behind the lock word, on the lock's cache line. Under
// contention every line the holder writes moves between cores once per handoff; with
// Rust's own field order these fields were spread over two more lines (BENCHMARKS.md has
// the before and after).
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(C)]
pub struct QuotaState {
    pub(crate) counters: Counters,
    pub(crate) total_today: u64,
    /// When a call was last recorded; [`NEVER`] before the first (a plain timestamp, not an
    /// `Option`, so recording stores one word).
    pub(crate) updated_at: Timestamp,
    /// Store failures and successes in a row; whether admission runs at the reduced rate.
    pub(crate) health: StoreHealth,
    config: Arc<QuotaConfig>,
    pub(crate) day: UtcDay,
    /// Pending deltas of closed buckets (earlier windows or days), still owed to those
    /// windows' and days' store items.
    pub(crate) carried: Vec<Bucket>,
    /// Names this state in the reservations it hands out, so a refund of another tracker's
    /// reservation is refused.
    pub(crate) owner: u64,
    /// Per service, the lease requests out and whether the outage allowance was used.
    pub(crate) leases: Box<[LeaseBook]>,
    /// Lease calls owed back to the store (remainders of ended windows, a stop's), sent
    /// with the next sync.
    pub(crate) returns: Returns,
    /// The tickets of lease requests, and of grants in doubt to ask again.
    pub(crate) tickets: Tickets,
}

/// Numbers states for [`QuotaState::owner`].
static OWNERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// `updated_at` before any call was recorded.
const NEVER: Timestamp = Timestamp(i64::MIN);

impl QuotaState {
    /// An empty state for `day`, each service in its window at the day's start.
    pub fn new(config: Arc<QuotaConfig>, day: UtcDay) -> Self {
        Self::starting(config, day.start())
    }

    /// An empty state at `now`: the day and each service's window containing it.
    pub fn starting(config: Arc<QuotaConfig>, now: Timestamp) -> Self {
        let percent = config.admission_ceiling_percent();
        let counters = config
            .services()
            .iter()
            .map(|s| {
                let ceiling = ceiling_at(s.limit(), percent);
                let window = Window::containing(s.period(), now);
                Counter {
                    used: 0,
                    record_below: 0,
                    admit_below: 0,
                    limit: s.limit(),
                    remaining_mask: u64::MAX,
                    ceiling,
                    mark: 0,
                    pending: 0,
                    today: 0,
                    lease: lease::initial_lease(&config),
                    next_roll: window.bucket_end(now),
                    normal_ceiling: ceiling,
                    lease_low: lease::low_water(&config, ceiling),
                    window,
                    critical_seen: false,
                }
            })
            .collect();
        let counters = Counters::new(counters);
        let mut state = Self {
            leases: vec![LeaseBook::default(); config.len()].into_boxed_slice(),
            returns: Returns::default(),
            tickets: Tickets::starting(now),
            config,
            day: now.day(),
            counters,
            total_today: 0,
            carried: Vec::new(),
            updated_at: NEVER,
            health: StoreHealth::default(),
            owner: OWNERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        state.rebound();
        state
    }

    /// The configuration this state counts.
    pub fn config(&self) -> &Arc<QuotaConfig> {
        &self.config
    }

    /// The UTC day the daily counters are for.
    pub fn day(&self) -> UtcDay {
        self.day
    }

    /// The current window of `service`.
    pub fn window(&self, service: ServiceId) -> Option<Window> {
        self.counters.get(service.0).map(|c| c.window)
    }

    /// When a call was last recorded.
    pub fn updated_at(&self) -> Option<Timestamp> {
        (self.updated_at != NEVER).then_some(self.updated_at)
    }

    /// Moves every service to the window and day containing `now`: a closed bucket's
    /// pending deltas are kept for its own window's and day's store items, a new window
    /// counts from zero, a new day's daily counters too. A clock that went backwards keeps
    /// the current windows and day. Returns whether anything rolled.
    pub fn roll_to(&mut self, now: Timestamp) -> bool {
        let mut state = self.settled();
        let state = &mut *state;
        let new_day = now.day() > state.day;
        let mut rolled = new_day;
        let bounded = state.config.lease_policy().is_some();
        for (service, counter) in state.counters.iter_mut().enumerate() {
            if now.0 < counter.next_roll && !new_day {
                continue;
            }
            rolled = true;
            pending::add(
                &mut state.carried,
                Bucket {
                    service,
                    day: state.day,
                    window: counter.window,
                    delta: counter.pending,
                },
            );
            counter.pending = 0;
            if now >= counter.window.end() {
                if bounded {
                    lease::close(
                        &mut state.returns,
                        service,
                        counter,
                        &mut state.leases[service],
                    );
                }
                counter.window = Window::containing(counter.window.period(), now);
                counter.set_used(0);
                counter.critical_seen = false;
            }
            if new_day {
                counter.today = 0;
            }
            counter.next_roll = counter.window.bucket_end(now);
        }
        if new_day {
            state.day = now.day();
            state.total_today = 0;
        }
        rolled
    }

    /// The first instant at which a call rolls a window or the day over.
    pub(crate) fn roll_at(&self) -> i64 {
        self.counters
            .iter()
            .map(|c| c.next_roll)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Adds `count` calls to `service` at `now`: the read-modify-write the whole project is
    /// about. Validates everything first, so an error leaves the counters unchanged (a
    /// window or day rollover caused by `now` may still happen: that is the passage of time,
    /// not a change of what was recorded).
    ///
    /// This is the full path, with every check; the tracker's hot path (ARCHITECTURE.md)
    /// does the same for calls that need no attention.
    pub fn record(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Result<RecordOutcome, QuotaError> {
        let mut state = self.settled();
        state.prepare(service, count, now)?;
        state.add::<false>(service, count, now)
    }

    /// Checks `service` and `count` and rolls the window (and day) over if `now` is past
    /// the current bucket: what every change of the counters starts with.
    pub(crate) fn prepare(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Result<(), QuotaError> {
        if service.0 >= self.counters.len() || count == 0 {
            return Err(self.invalid(service));
        }
        // One comparison covers the window's end and the day's.
        if now.0 >= self.counters[service.0].next_roll {
            self.roll_over(now);
        }
        Ok(())
    }

    /// Adds `count` to a checked `service` (after [`QuotaState::prepare`], settled), or
    /// nothing on overflow. `ADMIT`: the calls are an admission the lease covers (checked by
    /// the caller), taken from it (bounded mode).
    pub(crate) fn add<const ADMIT: bool>(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Result<RecordOutcome, QuotaError> {
        let counter = self.counters[service.0];
        // Pending is signed (refunds), so a count must fit an i64 too.
        let signed = i64::try_from(count).ok();
        let (Some(used), Some(pending), Some(today), Some(total_today)) = (
            counter.used.checked_add(count),
            signed.and_then(|c| counter.pending.checked_add(c)),
            counter.today.checked_add(count),
            self.total_today.checked_add(count),
        ) else {
            return Err(self.overflow(service, count));
        };
        let crossed_critical = used >= counter.critical_at() && !counter.critical_seen;
        let bounded = self.config.lease_policy().is_some();
        let slot = &mut self.counters[service.0];
        slot.set_used(used);
        slot.pending = pending;
        slot.today = today;
        if ADMIT && bounded {
            slot.lease = counter.lease - count;
        }
        slot.critical_seen |= crossed_critical;
        self.total_today = total_today;
        self.updated_at = now;
        Ok(RecordOutcome {
            usage: Usage::new(service, counter.limit, self.ceiling_of(&counter), used),
            crossed_critical,
            lease_low: false,
            refusal: None,
        })
    }

    /// The admission ceiling of `counter` now (lower in reduced-rate mode).
    pub(crate) fn ceiling_of(&self, counter: &Counter) -> u64 {
        counter.ceiling
    }

    #[cold]
    #[inline(never)]
    fn roll_over(&mut self, now: Timestamp) {
        self.roll_to(now);
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

    /// The usage of `service` in its current window (as of the last roll; see
    /// [`QuotaState::usage_at`]).
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

    /// The usage of `service` at `now`: rolls its window first, so a window that ended
    /// reads as the new one's zero.
    pub fn usage_at(&mut self, service: ServiceId, now: Timestamp) -> Result<Usage, QuotaError> {
        if self
            .counters
            .get(service.0)
            .is_some_and(|c| now.0 >= c.next_roll)
        {
            self.roll_over(now);
        }
        self.usage(service)
    }

    /// Calls of `service` known today (the day item's count; the window's for a day limit).
    pub fn calls_today(&self, service: ServiceId) -> u64 {
        self.counters.get(service.0).map_or(0, Counter::today_now)
    }

    /// What today's calls cost, in millionths of a currency unit: each service's count
    /// today times its configured price per call (saturating).
    pub fn estimated_daily_cost_micros(&self) -> u64 {
        self.config
            .services()
            .iter()
            .zip(self.counters.iter())
            .fold(0u64, |sum, (service, counter)| {
                sum.saturating_add(
                    counter
                        .today_now()
                        .saturating_mul(service.cost_per_call_micros()),
                )
            })
    }

    /// Whether admission runs at the reduced rate (after consecutive store failures).
    pub fn reduced_rate(&self) -> bool {
        self.health.reduced()
    }

    /// Counts a store operation's outcome towards entering or leaving reduced-rate mode;
    /// returns the mode's change, if any.
    pub fn note_store_outcome(&mut self, succeeded: bool) -> Option<bool> {
        let mut state = self.settled();
        let changed = state.health.note(succeeded);
        if let Some(reduced) = changed {
            for counter in state.counters.iter_mut() {
                counter.ceiling = if reduced {
                    counter.reduced_ceiling()
                } else {
                    counter.normal_ceiling
                };
            }
        }
        changed
    }

    /// Calls recorded today over all services.
    pub fn total_api_calls_today(&self) -> u64 {
        self.counters.iter().fold(self.total_today, |total, c| {
            total.saturating_add(c.unsettled())
        })
    }

    /// The current bucket's deltas not yet handed to a sync, per service (negative after
    /// refunds of calls already synced).
    pub fn pending(&self, service: ServiceId) -> i64 {
        self.counters.get(service.0).map_or(0, Counter::pending_now)
    }

    /// Whether any bucket has deltas waiting for a sync.
    pub fn has_pending(&self) -> bool {
        !self.carried.is_empty()
            || !self.returns.is_empty()
            || self.counters.iter().any(|c| c.pending_now() != 0)
    }

    /// Every pending bucket: the closed ones and each service's current one.
    fn buckets(&self) -> Vec<Bucket> {
        let mut buckets = self.carried.clone();
        for (service, counter) in self.counters.iter().enumerate() {
            pending::add(
                &mut buckets,
                Bucket {
                    service,
                    day: self.day,
                    window: counter.window,
                    delta: counter.pending_now(),
                },
            );
        }
        buckets
    }

    /// Every pending delta, summed per day and per window, leaving none pending.
    pub fn take_pending(&mut self) -> Pending {
        let mut state = self.settled();
        let pending = state.unsynced();
        state.carried.clear();
        state.returns.take();
        for counter in state.counters.iter_mut() {
            counter.pending = 0;
        }
        pending
    }

    /// Every pending delta, summed per day and per window, leaving the state as it is.
    pub fn unsynced(&self) -> Pending {
        let buckets = self.buckets();
        Pending {
            days: pending::days_of(&buckets, self.counters.len()),
            windows: pending::windows_of(&buckets),
            returns: self.returns.owed(),
        }
    }

    /// Every pending delta per day (the day items' view of [`QuotaState::unsynced`]).
    pub fn pending_days(&self) -> Vec<DayDeltas> {
        self.unsynced().days
    }

    /// Puts the deltas of a write that surely failed back into pending, merged with what
    /// was recorded since: into the current bucket where they belong to it, set aside for
    /// their own window and day otherwise.
    pub fn restore_pending(&mut self, days: &[DayDeltas], windows: &[WindowDelta]) {
        let mut state = self.settled();
        let state = &mut *state;
        let periods: Vec<Period> = state.config.services().iter().map(|s| s.period()).collect();
        for bucket in pending::buckets_of(days, windows, &periods) {
            let counter = &mut state.counters[bucket.service];
            if bucket.day == state.day && bucket.window == counter.window {
                // Cannot overflow: pending never exceeds used, which already counts these.
                counter.pending = counter.pending.saturating_add(bucket.delta);
            } else {
                pending::add(&mut state.carried, bucket);
            }
        }
    }

    /// This instance's deltas not yet in the store for `service`: in its current window and
    /// today, from the pending buckets and from `in_doubt` (a batch whose write may not have
    /// landed).
    fn own_unsynced(&self, service: usize, in_doubt: &Pending) -> (i64, i64) {
        let counter = &self.counters[service];
        let (mut window, mut today) = (counter.pending_now(), counter.pending_now());
        for bucket in self.carried.iter().filter(|b| b.service == service) {
            if bucket.window == counter.window {
                window = window.saturating_add(bucket.delta);
            }
            if bucket.day == self.day {
                today = today.saturating_add(bucket.delta);
            }
        }
        for w in &in_doubt.windows {
            if w.service.0 == service && w.window == counter.window {
                window = window.saturating_add(w.delta);
            }
        }
        if let Some(day) = in_doubt.days.iter().find(|d| d.day == self.day) {
            let delta = day.deltas.get(service).copied().unwrap_or(0);
            today = today.saturating_add(delta);
            if counter.window.period() == Period::Day {
                window = window.saturating_add(delta);
            }
        }
        (window, today)
    }

    /// Merges counters read from the store with what this instance knows (invariant 6).
    ///
    /// The store holds every delta already synced (this instance's and others'); pending and
    /// `in_doubt` (a batch whose write may not have landed) are this instance's calls it may
    /// not hold yet. A window's `used` becomes `stored + own unsynced` (from the window's
    /// item, or the day item for a day limit) and a service's calls today likewise from the
    /// day item; neither ever goes down: a store behind what this instance already knows is
    /// not trusted to erase calls. Counters of another day and windows other than the
    /// current ones are ignored. Returns whether the item was for the current day.
    pub fn merge_stored(&mut self, stored: &StoredDay, in_doubt: &Pending) -> bool {
        let mut state = self.settled();
        let state = &mut *state;
        let same_day = stored.day == state.day;
        for i in 0..state.counters.len() {
            let name = state.config.services()[i].name().to_owned();
            let (own_window, own_today) = state.own_unsynced(i, in_doubt);
            let counter = &mut state.counters[i];
            let stored_window = match counter.window.period() {
                Period::Day => same_day.then(|| stored.used(&name)),
                _ => stored.window(&name, counter.window),
            };
            if same_day {
                let merged = add_signed(stored.used(&name), own_today);
                counter.today = counter.today.max(merged);
            }
            if let Some(stored_window) = stored_window {
                counter.set_used(counter.used.max(add_signed(stored_window, own_window)));
                counter.critical_seen |= counter.used >= counter.critical_at();
            }
        }
        if same_day {
            state.total_today = state
                .counters
                .iter()
                .fold(0u64, |sum, c| sum.saturating_add(c.today));
        }
        same_day
    }

    /// Whether `stored` holds every count a reload would read now: today's item and the
    /// current window of every minute, hour and month limit.
    pub fn covered_by(&self, stored: &StoredDay) -> bool {
        stored.day == self.day
            && self
                .counters
                .iter()
                .zip(self.config.services())
                .filter(|(c, _)| c.window.period() != Period::Day)
                .all(|(c, s)| stored.window(s.name(), c.window).is_some())
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

    /// Raw counter access for the historical variants, which copy state field by field
    /// (through `Tracker::with_state`, which settles first).
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

/// `stored + delta`, clamped to the counter's range (a delta may be negative: refunds).
fn add_signed(stored: u64, delta: i64) -> u64 {
    let sum = i128::from(stored) + i128::from(delta);
    u64::try_from(sum.max(0)).unwrap_or(u64::MAX)
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
        s.roll_to(at(1));
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
    fn a_new_day_starts_the_daily_counts_from_zero_and_owes_yesterday_its_deltas() {
        let (mut s, tiingo, finnhub) = state();
        s.record(tiingo, 4, at(23)).expect("ok");
        s.record(finnhub, 1, at(25)).expect("ok"); // 01:00 the next day
        assert_eq!(s.day(), day().next());
        // tiingo's limit is per month: its window goes on; today's count starts again.
        assert_eq!(s.usage(tiingo).map(|u| u.used()), Ok(4));
        assert_eq!(s.calls_today(tiingo), 0);
        assert_eq!(s.total_api_calls_today(), 1);
        let owed = s.take_pending();
        assert_eq!(
            owed.days,
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
        let windows: Vec<_> = owed
            .windows
            .iter()
            .map(|w| (w.service, w.window.to_string(), w.delta))
            .collect();
        assert_eq!(
            windows,
            [
                (tiingo, "2026-11".to_owned(), 4),
                (finnhub, "2026-11-30T01:00".to_owned(), 1)
            ]
        );
        assert!(!s.has_pending());
        // A clock that goes back does not reopen yesterday.
        s.record(tiingo, 1, at(2)).expect("ok");
        assert_eq!(s.day(), day().next());
    }

    #[test]
    fn a_new_window_starts_from_zero_and_its_deltas_land_in_their_own_window() {
        let (mut s, _, finnhub) = state();
        let last_ms = Timestamp(at(12).0 + 34 * 60_000 + 59_999); // 12:34:59.999
        let next_ms = Timestamp(last_ms.0 + 1); // 12:35:00.000
        s.record(finnhub, 40, last_ms).expect("ok");
        let out = s.record(finnhub, 1, next_ms).expect("ok");
        assert_eq!(out.usage.used(), 1, "a new minute counts from zero");
        assert!(!out.crossed_critical);
        assert_eq!(s.calls_today(finnhub), 41, "the day still counts both");
        let owed = s.take_pending();
        let windows: Vec<_> = owed
            .windows
            .iter()
            .map(|w| (w.window.to_string(), w.delta))
            .collect();
        assert_eq!(
            windows,
            [
                ("2026-11-29T12:34".to_owned(), 40),
                ("2026-11-29T12:35".to_owned(), 1)
            ]
        );
        assert_eq!(owed.days[0].deltas, vec![0, 41, 0]);
        // Reading after the window ended shows the next one's zero.
        assert_eq!(
            s.usage_at(finnhub, Timestamp(next_ms.0 + 60_000))
                .map(|u| u.used()),
            Ok(0)
        );
    }

    #[test]
    fn restored_deltas_merge_with_newer_ones() {
        let (mut s, tiingo, _) = state();
        s.record(tiingo, 4, at(1)).expect("ok");
        let taken = s.take_pending();
        s.record(tiingo, 2, at(1)).expect("ok");
        s.restore_pending(&taken.days, &taken.windows);
        assert_eq!(s.pending(tiingo), 6);
        assert_eq!(s.usage(tiingo).map(|u| u.used()), Ok(6));
    }

    #[test]
    fn restored_deltas_of_a_closed_window_stay_in_that_window() {
        let (mut s, _, finnhub) = state();
        s.record(finnhub, 3, at(1)).expect("ok");
        let taken = s.take_pending();
        s.record(finnhub, 2, Timestamp(at(1).0 + 60_000))
            .expect("ok"); // the next minute
        s.restore_pending(&taken.days, &taken.windows);
        assert_eq!(s.pending(finnhub), 2, "the current minute's only");
        let owed = s.take_pending();
        let windows: Vec<_> = owed
            .windows
            .iter()
            .map(|w| (w.window.to_string(), w.delta))
            .collect();
        assert_eq!(
            windows,
            [
                ("2026-11-29T01:00".to_owned(), 3),
                ("2026-11-29T01:01".to_owned(), 2)
            ]
        );
        assert_eq!(owed.days[0].deltas, vec![0, 5, 0]);
    }

    #[test]
    fn merge_adds_pending_and_doubtful_deltas_and_never_goes_down() {
        let (mut s, tiingo, finnhub) = state();
        let sendgrid = s.config().service("sendgrid").expect("configured");
        s.record(tiingo, 2, at(1)).expect("ok");
        s.roll_to(at(1)); // as a reload does: the windows read are the current ones
        let month = s.window(tiingo).expect("window");
        let minute = s.window(finnhub).expect("window");
        let window = |service: &str, window, used| crate::batch::StoredWindow {
            key: crate::batch::WindowKey {
                service: service.to_owned(),
                window,
            },
            used,
        };
        let stored = StoredDay::new(
            day(),
            [
                ("tiingo".to_owned(), 10),
                ("finnhub".to_owned(), 50),
                ("sendgrid".to_owned(), 30),
            ]
            .into(),
        )
        .with_windows(vec![
            window("tiingo", month, 40),
            window("finnhub", minute, 50),
        ]);
        let doubt = Pending {
            days: vec![DayDeltas {
                day: day(),
                deltas: vec![1, 0, 0],
            }],
            windows: vec![WindowDelta {
                service: tiingo,
                window: month,
                delta: 1,
            }],
            returns: Vec::new(),
        };
        assert!(s.merge_stored(&stored, &doubt));
        assert_eq!(
            s.usage(tiingo).map(|u| u.used()),
            Ok(43),
            "window: 40 + 2 + 1"
        );
        assert_eq!(s.calls_today(tiingo), 13, "day item: 10 + 2 + 1");
        assert_eq!(s.usage(finnhub).map(|u| u.used()), Ok(50));
        assert_eq!(
            s.usage(sendgrid).map(|u| u.used()),
            Ok(30),
            "a day limit reads the day item"
        );
        assert_eq!(s.pending(tiingo), 2, "pending survives a reload");
        assert_eq!(s.total_api_calls_today(), 93);
        // finnhub reached critical through the store: no forced sync on the next call.
        assert!(!s.record(finnhub, 1, at(1)).expect("ok").crossed_critical);
        // A store that is behind does not erase calls.
        let behind = StoredDay::new(day(), Default::default());
        s.merge_stored(&behind, &Pending::default());
        assert_eq!(s.usage(tiingo).map(|u| u.used()), Ok(43));
        // Another day's item, or another window's count, is ignored.
        let old_minute = window("finnhub", Window::containing(Period::Minute, at(0)), 59);
        let other = StoredDay::new(day().next(), Default::default()).with_windows(vec![old_minute]);
        assert!(!s.merge_stored(&other, &Pending::default()));
        assert_eq!(s.usage(finnhub).map(|u| u.used()), Ok(51));
    }
}
