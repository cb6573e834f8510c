//! The hot path: a call that needs no attention adds to `used` and nothing else, and every
//! tally it skipped is brought up to date before anything else reads or changes the state.
//!
//! A recorded call counts in five places: the window's `used`, the bucket's pending delta,
//! today's count, the day's total and (bounded mode) the lease. Keeping all five on every
//! call cost five checked read-modify-writes under the lock. Instead the hot path moves only
//! `used`; the other tallies hold their value as of a *mark* (`Counter::mark`, the `used` they
//! were last settled at) and [`QuotaState::settle`] adds `used − mark` to each before any
//! other change. Readers that take `&self` add it themselves. Nothing is lost: the calls are
//! in `used` from the moment they are recorded, and settling is exact.
//!
//! The hot path may run only while nothing needs attention, which the cold paths decide
//! once for the many calls that follow:
//!
//! - per service, `record_below` / `admit_below` ([`QuotaState::rebound`]): below them no
//!   call crosses the critical threshold, passes the ceiling, outruns the lease's low-water
//!   mark (bounded mode) or could overflow any tally when it is settled; at or above them the
//!   full path decides, with every check;
//! - per tracker, `Cache::wake_at` ([`Cache::refresh`]): before it no window or day ends and
//!   neither due flag (sync, reload) changes; the flags the hot path reports are
//!   `Cache::due`, computed with it.
//!
//! Every change off the hot path goes through [`QuotaState::settled`], which settles first
//! and recomputes the bounds when done (on every exit, errors included); every change of the
//! sync book goes through `Cache::book_mut`, which sends the next call down the full path.
//! In the bounded mode the hot path only admits: a recorded call goes the full path, so that
//! every call the hot path added since the mark is one the lease covered.

use std::ops::{Deref, DerefMut};

use crate::admission::Reservation;
use crate::clock::Timestamp;
use crate::config::ServiceId;
use crate::state::{Counter, QuotaState};
use crate::tracker::{Busy, Cache, TrackerOptions};
use crate::usage::Usage;
use crate::window::Window;

/// The hot path's ceiling on `used` and on a call's `count` (2⁶³): below it, adding the two
/// cannot overflow, so the hot path needs no overflow test. Larger numbers take the full path.
const HALF: u64 = 1 << 63;

/// Whether a sync and a reload were due when the hot path's bounds were last computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Due {
    pub(crate) sync: bool,
    pub(crate) reload: bool,
}

/// The state, settled, for a change off the hot path; its bounds are recomputed on drop.
pub(crate) struct Settled<'a>(&'a mut QuotaState);

impl Deref for Settled<'_> {
    type Target = QuotaState;
    fn deref(&self) -> &QuotaState {
        self.0
    }
}

impl DerefMut for Settled<'_> {
    fn deref_mut(&mut self) -> &mut QuotaState {
        self.0
    }
}

impl Drop for Settled<'_> {
    fn drop(&mut self) {
        self.0.rebound();
    }
}

impl Counter {
    /// Calls the hot path added since the tallies were settled.
    #[inline]
    pub(crate) fn unsettled(&self) -> u64 {
        debug_assert!(self.used >= self.mark, "used went below its mark unsettled");
        self.used.saturating_sub(self.mark)
    }

    /// The bucket's pending delta, counting what the hot path added since the mark.
    pub(crate) fn pending_now(&self) -> i64 {
        let unsettled = i64::try_from(self.unsettled()).unwrap_or(i64::MAX);
        self.pending.saturating_add(unsettled)
    }

    /// Calls known today, counting what the hot path added since the mark.
    pub(crate) fn today_now(&self) -> u64 {
        self.today.saturating_add(self.unsettled())
    }

    /// Sets `used` from off the hot path (a roll, a merge, a refund, a full-path record):
    /// the tallies were settled, so the mark moves with it.
    pub(crate) fn set_used(&mut self, used: u64) {
        self.used = used;
        self.mark = used;
    }
}

impl QuotaState {
    /// The state settled, for a change off the hot path ([`Settled`]).
    pub(crate) fn settled(&mut self) -> Settled<'_> {
        self.settle();
        Settled(self)
    }

    /// Adds what the hot path added to `used` since the mark to pending, today's count, the
    /// total and, in the bounded mode, takes it from the lease. The bounds make each of these
    /// fit (saturating only guards a broken bound).
    pub(crate) fn settle(&mut self) {
        let bounded = self.config().lease_policy().is_some();
        let mut added = 0u64;
        for counter in self.counters.iter_mut() {
            let unsettled = counter.unsettled();
            if unsettled == 0 {
                continue;
            }
            counter.pending = counter.pending_now();
            counter.today = counter.today_now();
            if bounded {
                counter.lease = counter.lease.saturating_sub(unsettled);
            }
            counter.mark = counter.used;
            added = added.saturating_add(unsettled);
        }
        self.total_today = self.total_today.saturating_add(added);
    }

    /// Recomputes, for a settled state, how far the hot path may take each service's `used`:
    /// short of the critical threshold (until it was seen in the window), of overflowing
    /// `used`, pending, today's count or the total (its room shared among the services), and,
    /// to admit, of passing the ceiling or leaving the lease below its low-water mark. The
    /// bounded mode's records take the full path (`record_below` 0).
    pub(crate) fn rebound(&mut self) {
        let bounded = self.config().lease_policy().is_some();
        let services = self.counters.len().max(1) as u64;
        let total_room = (u64::MAX - self.total_today) / services;
        for counter in self.counters.iter_mut() {
            debug_assert_eq!(counter.used, counter.mark, "rebound of an unsettled state");
            let pending_room = u64::try_from(i128::from(i64::MAX) - i128::from(counter.pending))
                .unwrap_or(u64::MAX);
            let room = (u64::MAX - counter.used)
                .min(pending_room)
                .min(u64::MAX - counter.today)
                .min(total_room);
            let critical = if counter.critical_seen {
                u64::MAX
            } else {
                counter.critical_at()
            };
            // Within the limit, the hot path stays within it (one call across it takes the
            // full path); past it, it stays past: either way `remaining_mask` holds.
            let within = counter.used <= counter.limit;
            counter.remaining_mask = if within { u64::MAX } else { 0 };
            let limit_cap = if within {
                counter.limit.saturating_add(1)
            } else {
                u64::MAX
            };
            // Kept at or under HALF, and 0 once `used` reaches it: then `used` stays below
            // HALF on the hot path, and `used + count` (count below HALF) cannot overflow.
            let below = if counter.used >= HALF {
                0
            } else {
                counter
                    .used
                    .saturating_add(room)
                    .saturating_add(1)
                    .min(critical)
                    .min(HALF)
                    .min(limit_cap)
            };
            counter.record_below = if bounded { 0 } else { below };
            let lease_below = if bounded {
                counter
                    .lease
                    .checked_sub(counter.lease_low)
                    .map_or(0, |spare| {
                        counter.used.saturating_add(spare).saturating_add(1)
                    })
            } else {
                u64::MAX
            };
            counter.admit_below = below
                .min(counter.ceiling.saturating_add(1))
                .min(lease_below);
        }
    }

    /// Adds `count` calls to `service` if they need no attention (see the module doc): only
    /// `used` and the time of the last call change. `ADMIT`: an admission (the calls must also
    /// fit under the ceiling and the lease's low-water mark). Returns the usage after and the
    /// counter's window (for a reservation, without a second bounds check); `None` changes
    /// nothing: take the full path. Only correct before `Cache::wake_at` (no window or day has
    /// ended).
    #[inline(always)]
    fn add_fast<const ADMIT: bool>(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Option<(Usage, Window)> {
        // The gate's throwaway change goes here (verification/gate/src/probe.rs).
        let counter = self.counters.slot_mut(service);
        let below = if ADMIT {
            counter.admit_below
        } else {
            counter.record_below
        };
        if count == 0 || count >= HALF {
            return None;
        }
        // No overflow: with `below` above 0, `used` is below HALF (`rebound`), and so is
        // `count`. With `below` 0 the sum is never used.
        let used = counter.used.wrapping_add(count);
        if used >= below {
            return None;
        }
        counter.used = used;
        self.updated_at = now;
        let remaining = counter.limit.wrapping_sub(used) & counter.remaining_mask;
        let usage = Usage::hot(service, counter.limit, counter.ceiling, used, remaining);
        Some((usage, counter.window))
    }
}

impl Cache {
    /// The hot path of `record_call`: the usage after, and the due flags, or `None` for the
    /// full path (nothing changed).
    #[inline(always)]
    pub(crate) fn record_fast(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Option<(Usage, Due)> {
        if now.0 >= self.wake_at {
            return None;
        }
        let (usage, _) = self.state.add_fast::<false>(service, count, now)?;
        Some((usage, self.due))
    }

    /// The hot path of `admit`: the usage after, the reservation and the due flags, or
    /// `None` for the full path (nothing changed).
    #[inline(always)]
    pub(crate) fn admit_fast(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Option<(Usage, Reservation, Due)> {
        if now.0 >= self.wake_at {
            return None;
        }
        let (usage, window) = self.state.add_fast::<true>(service, count, now)?;
        let state = &self.state;
        let reservation = Reservation::new(service, count, state.day, window, state.owner);
        Some((usage, reservation, self.due))
    }

    /// Recomputes the due flags at `now` and the instant before which neither they nor any
    /// window can change (`wake_at`): the first window end, and the deadline of each flag
    /// not yet due. A store operation in flight holds both flags down until it finishes
    /// (which goes through `Cache::book_mut`).
    pub(crate) fn refresh(&mut self, now: Timestamp, options: &TrackerOptions) {
        let book = &self.book;
        let idle = book.busy == Busy::Idle;
        let sync_at = match (idle, book.forced) {
            (false, _) => i64::MAX,
            (true, true) => i64::MIN,
            (true, false) => book.last_sync.0.saturating_add(options.sync_interval_ms),
        };
        let reload_at = match (idle, book.last_load_attempt) {
            (false, _) => i64::MAX,
            (true, None) => i64::MIN,
            (true, Some(at)) => at.0.saturating_add(options.reload_interval_ms),
        };
        self.due = Due {
            sync: now.0 >= sync_at,
            reload: now.0 >= reload_at,
        };
        let mut wake_at = self.state.roll_at();
        for (due, at) in [(self.due.sync, sync_at), (self.due.reload, reload_at)] {
            if !due {
                wake_at = wake_at.min(at);
            }
        }
        self.wake_at = wake_at;
    }
}

#[cfg(test)]
mod tests {
    //! The hot path is an optimization only: a tracker taking it wherever it may and one
    //! that always takes the full path, driven through the same random operations (records,
    //! admissions, refunds, syncs that land, fail or end in doubt, reloads bringing other
    //! instances' calls, leases, the clock crossing minutes and days), answer and count the
    //! same after every step.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use crate::batch::{StoredDay, StoredWindow, SyncOutcome};
    use crate::clock::{Clock, ManualClock, Timestamp};
    use crate::config::{Period, QuotaConfig, ServiceConfig, ServiceId};
    use crate::day::UtcDay;
    use crate::lease::LeasePolicy;
    use crate::tracker::{Admission, ReloadOutcome, Tracker, TrackerOptions};
    use crate::window::Window;
    use crate::{Reservation, StoreError, StoreErrorKind};

    /// xorshift64*: reproducible without a dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    fn config(bounded: bool) -> QuotaConfig {
        let service = |name: &str, limit, period| {
            ServiceConfig::new(name, limit, period).unwrap_or_else(|e| panic!("{e}"))
        };
        let config = QuotaConfig::new(vec![
            service("minute", 12, Period::Minute),
            service("day", 40, Period::Day),
            service("month", 60, Period::Month),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        if bounded {
            let policy = LeasePolicy::new(20).unwrap_or_else(|e| panic!("{e}"));
            config.with_leases(policy)
        } else {
            config
        }
    }

    /// The two trackers and what each has handed out.
    struct Pair {
        clock: Arc<ManualClock>,
        fast: Tracker,
        full: Tracker,
        reservations: Vec<(Reservation, Reservation)>,
    }

    impl Pair {
        fn new(bounded: bool) -> Self {
            let start = UtcDay::from_ymd(2026, 12, 31).map_or(Timestamp(0), |d| d.start());
            let clock = Arc::new(ManualClock::new(Timestamp(start.0 + 23 * 3_600_000)));
            let options = || TrackerOptions {
                sync_interval_ms: 20_000,
                reload_interval_ms: 30_000,
                instance: "pair".into(),
            };
            let tracker = || Tracker::with_options(config(bounded), clock.clone(), options());
            Self {
                fast: tracker(),
                full: tracker(),
                clock,
                reservations: Vec::new(),
            }
        }

        /// Compares what each tracker holds, without rolling or refreshing anything (an
        /// observation that changed either would hide a stale bound).
        fn check_same(&self, step: &str) {
            let (a, b) = (self.fast.raw_state(), self.full.raw_state());
            for id in a.config().ids() {
                assert_eq!(a.usage(id), b.usage(id), "{step}: usage of {id:?}");
                assert_eq!(a.pending(id), b.pending(id), "{step}: pending of {id:?}");
                assert_eq!(a.calls_today(id), b.calls_today(id), "{step}: today");
                assert_eq!(a.lease_left(id), b.lease_left(id), "{step}: lease");
                assert_eq!(a.window(id), b.window(id), "{step}: window");
            }
            assert_eq!(
                a.total_api_calls_today(),
                b.total_api_calls_today(),
                "{step}"
            );
            assert_eq!(a.updated_at(), b.updated_at(), "{step}: updated_at");
            assert_eq!(a.unsynced(), b.unsynced(), "{step}: unsynced");
        }

        fn admitted(&mut self, step: &str, a: Admission, b: Admission) {
            let strip = |x: &Admission| {
                let r = x
                    .reservation
                    .as_ref()
                    .map(|r| (r.service(), r.count(), r.day()));
                (
                    r,
                    x.usage,
                    x.refusal,
                    x.crossed_critical,
                    x.sync_due,
                    x.reload_due,
                    x.lease_due,
                )
            };
            assert_eq!(strip(&a), strip(&b), "{step}");
            if let (Some(ra), Some(rb)) = (a.reservation, b.reservation) {
                self.reservations.push((ra, rb));
            }
        }

        fn step(&mut self, rng: &mut Rng) {
            let service = ServiceId(rng.below(3) as usize);
            let count = rng.below(4);
            match rng.below(12) {
                0..=2 => {
                    let step = format!("record {service:?} {count}");
                    let a = self.fast.record_call(service, count);
                    let b = self.full.record_call_full(service, count);
                    assert_eq!(a, b, "{step}");
                    self.check_same(&step);
                }
                3..=5 => {
                    let step = format!("admit {service:?} {count}");
                    let a = self.fast.admit(service, count);
                    let b = self.full.admit_full_path(service, count);
                    match (a, b) {
                        (Ok(a), Ok(b)) => self.admitted(&step, a, b),
                        (a, b) => assert_eq!(a.err(), b.err(), "{step}"),
                    }
                    self.check_same(&step);
                }
                6 if !self.reservations.is_empty() => {
                    let i = rng.below(self.reservations.len() as u64) as usize;
                    let (ra, rb) = self.reservations.swap_remove(i);
                    assert_eq!(self.fast.refund(ra), self.full.refund(rb), "refund");
                    self.check_same("refund");
                }
                7 => {
                    let millis = [0, 999, 7_000, 25_000, 61_000, 3_600_000][rng.below(6) as usize];
                    self.clock.advance(millis as i64);
                    self.check_same(&format!("advance {millis} ms"));
                }
                8 => self.sync(rng),
                9 => self.reload(rng),
                10 => self.lease(service, rng),
                _ => {
                    let step = format!("usage {service:?}");
                    assert_eq!(self.fast.usage(service), self.full.usage(service), "{step}");
                }
            }
        }

        fn sync(&mut self, rng: &mut Rng) {
            let outcome = match rng.below(3) {
                0 => SyncOutcome::Applied { fresh: None },
                1 => SyncOutcome::Failed,
                _ => SyncOutcome::Unknown,
            };
            let (a, b) = (self.fast.begin_sync(), self.full.begin_sync());
            assert_eq!(
                a.as_ref().map(|x| x.seq),
                b.as_ref().map(|x| x.seq),
                "begin_sync"
            );
            if let (Ok(a), Ok(b)) = (a, b) {
                self.fast.finish_sync(a, outcome.clone());
                self.full.finish_sync(b, outcome.clone());
            }
            self.check_same(&format!("sync {outcome:?}"));
        }

        /// A reload that brings other instances' calls (or fails).
        fn reload(&mut self, rng: &mut Rng) {
            let (a, b) = (self.fast.begin_reload(), self.full.begin_reload());
            let (Ok(a), Ok(b)) = (a, b) else {
                return self.check_same("reload not started");
            };
            let outcome = if rng.below(4) == 0 {
                ReloadOutcome::Failed
            } else {
                let mut used = std::collections::BTreeMap::new();
                for name in ["minute", "day", "month"] {
                    used.insert(name.to_owned(), rng.below(50));
                }
                let windows = a
                    .windows()
                    .iter()
                    .map(|key| StoredWindow {
                        key: key.clone(),
                        used: rng.below(40),
                    })
                    .collect();
                ReloadOutcome::Loaded(Some(StoredDay::new(a.day(), used).with_windows(windows)))
            };
            self.fast.finish_reload(a, outcome.clone());
            self.full.finish_reload(b, outcome);
            self.check_same("reload");
        }

        /// Bounded mode: a grant of a random size, or a failed one.
        fn lease(&mut self, service: ServiceId, rng: &mut Rng) {
            let (a, b) = (
                self.fast.begin_lease(service),
                self.full.begin_lease(service),
            );
            assert_eq!(a.is_ok(), b.is_ok(), "begin_lease");
            if let (Ok(a), Ok(b)) = (a, b) {
                let granted = rng.below(a.want + 1);
                let error = StoreError::new(StoreErrorKind::Unavailable, "grant", "test");
                let answer = |e| {
                    if rng_fail(granted) {
                        Err(e)
                    } else {
                        Ok(granted)
                    }
                };
                let ra = self.fast.finish_lease(&a, answer(&error));
                let rb = self.full.finish_lease(&b, answer(&error));
                assert_eq!(ra, rb, "finish_lease");
            }
            self.check_same("lease");
        }
    }

    /// One grant in seven fails (decided by its size, so both trackers agree).
    fn rng_fail(granted: u64) -> bool {
        granted % 7 == 3
    }

    fn run(bounded: bool) {
        for seed in 1..=150u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut pair = Pair::new(bounded);
            for _ in 0..400 {
                pair.step(&mut rng);
            }
        }
    }

    #[test]
    fn a_call_that_would_overflow_a_tally_is_refused_though_the_window_has_room() {
        let service = ServiceConfig::new("minute", i64::MAX, Period::Minute);
        let config = service.and_then(|s| QuotaConfig::new(vec![s]));
        let config = config.unwrap_or_else(|e| panic!("{e}"));
        let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
        let tracker = Tracker::new(config, clock.clone());
        let id = ServiceId(0);
        // Two minutes of i64::MAX calls, each synced: today's count and the total are one
        // short of u64::MAX, while the third minute's window starts from zero.
        for _ in 0..2 {
            tracker.record_call(id, i64::MAX as u64).expect("fits");
            let batch = tracker.begin_sync().expect("pending");
            tracker.finish_sync(batch, SyncOutcome::Applied { fresh: None });
            clock.advance(60_000);
        }
        tracker.record_call(id, 1).expect("rolls to the new minute");
        let error = tracker
            .record_call(id, 1)
            .expect_err("today's count overflows");
        assert!(error.to_string().contains("overflow"), "{error}");
        let state = tracker.raw_state();
        assert_eq!(state.usage(id).map(|u| u.used()), Ok(1));
        assert_eq!(state.calls_today(id), u64::MAX);
        assert_eq!(state.total_api_calls_today(), u64::MAX);
    }

    /// Minute services of limit `i64::MAX` named `names`, on a manual clock.
    fn huge(names: &[&str]) -> (Tracker, Arc<ManualClock>) {
        let services = names
            .iter()
            .map(|n| ServiceConfig::new(*n, i64::MAX, Period::Minute))
            .collect::<Result<Vec<_>, _>>();
        let config = services.and_then(QuotaConfig::new);
        let config = config.unwrap_or_else(|e| panic!("{e}"));
        let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
        (Tracker::new(config, clock.clone()), clock)
    }

    #[test]
    fn a_call_that_would_overflow_the_unsynced_delta_is_refused() {
        let (tracker, _) = huge(&["minute"]);
        let id = ServiceId(0);
        // Unsynced, the bucket's delta is at i64::MAX: one more call cannot be counted.
        tracker.record_call(id, i64::MAX as u64 - 1).expect("fits");
        tracker.record_call(id, 1).expect("fits exactly");
        let error = tracker.record_call(id, 1).expect_err("the delta overflows");
        assert!(error.to_string().contains("overflow"), "{error}");
        assert_eq!(
            tracker.raw_state().usage(id).map(|u| u.used()),
            Ok(i64::MAX as u64)
        );
    }

    #[test]
    fn counts_and_window_counts_past_half_of_u64_take_the_full_path_and_never_wrap() {
        let (tracker, _) = huge(&["minute"]);
        let id = ServiceId(0);
        let used = |t: &Tracker| t.raw_state().usage(id).map(|u| u.used());
        // A count of 2⁶³ or more: with one call in the window, `1 + u64::MAX` wraps to 0.
        tracker.record_call(id, 1).expect("fits");
        let error = tracker.record_call(id, u64::MAX).expect_err("overflows");
        assert!(error.to_string().contains("overflow"), "{error}");
        assert_eq!(used(&tracker), Ok(1));
        // `used` past 2⁶³ (synced, so the unsynced delta has room): a call whose sum wraps
        // must be refused, not recorded as a small count.
        tracker.record_call(id, (1 << 63) - 3).expect("fits");
        let batch = tracker.begin_sync().expect("pending");
        tracker.finish_sync(batch, SyncOutcome::Applied { fresh: None });
        // The first call after a sync takes the full path; the second would be the hot
        // path's, and takes `used` across 2⁶³.
        tracker.record_call(id, 1).expect("fits");
        tracker.record_call(id, 2).expect("fits");
        assert_eq!(used(&tracker), Ok((1 << 63) + 1));
        let error = tracker
            .record_call(id, (1 << 63) - 1)
            .expect_err("the window's count overflows");
        assert!(error.to_string().contains("overflow"), "{error}");
        assert_eq!(used(&tracker), Ok((1 << 63) + 1));
    }

    #[test]
    fn services_share_what_room_the_total_has_left() {
        let (tracker, clock) = huge(&["a", "b", "c"]);
        let [a, b, c] = [ServiceId(0), ServiceId(1), ServiceId(2)];
        // a and b record i64::MAX and i64::MAX - 2 calls (synced): the day's total is
        // u64::MAX - 3.
        for (id, calls) in [(a, i64::MAX as u64), (b, i64::MAX as u64 - 2)] {
            tracker.record_call(id, calls).expect("fits");
            let batch = tracker.begin_sync().expect("pending");
            tracker.finish_sync(batch, SyncOutcome::Applied { fresh: None });
        }
        clock.advance(60_000);
        // In the next minute every window has room; the total has room for three calls, so
        // after one, for two more, whichever services make them (the hot path's bounds
        // divide the room between the services).
        tracker.record_call(c, 1).expect("fits");
        let admitted: Vec<bool> = [a, b, c]
            .into_iter()
            .map(|id| tracker.record_call(id, 1).is_ok())
            .collect();
        assert_eq!(
            admitted,
            [true, true, false],
            "two calls fit the total, not three"
        );
        assert_eq!(tracker.raw_state().total_api_calls_today(), u64::MAX);
    }

    /// A clock that computes the time when asked (no shared atomic), as `SystemClock` does.
    struct AskedClock(AtomicI64);

    impl Clock for AskedClock {
        fn now(&self) -> Timestamp {
            Timestamp(self.0.load(Ordering::SeqCst))
        }
    }

    #[test]
    fn a_clock_without_a_shared_atomic_is_asked_and_calls_carry_its_time() {
        let start = 1_800_000_000_000; // a minute's start, mid-month
        let clock = Arc::new(AskedClock(AtomicI64::new(start)));
        let tracker = Tracker::new(config(false), clock.clone());
        let (minute, month) = (ServiceId(0), ServiceId(2));
        let used = |id| tracker.raw_state().usage(id).map(|u| u.used());
        for calls in 1..=3 {
            let recorded = tracker.record_call(minute, 1).expect("fits");
            assert_eq!(recorded.usage.used(), calls);
        }
        let admitted = tracker.admit(month, 2).expect("admits");
        assert!(admitted.reservation.is_some(), "{admitted:?}");
        assert_eq!(tracker.raw_state().updated_at(), Some(Timestamp(start)));
        // The next minute: the window rolls at the clock's time, not at "never".
        clock.0.store(start + 60_000, Ordering::SeqCst);
        tracker.record_call(minute, 1).expect("fits");
        tracker.record_call(minute, 1).expect("fits");
        assert_eq!(used(minute), Ok(2), "a new window");
        assert_eq!(used(month), Ok(2), "the month goes on");
        assert_eq!(
            tracker.raw_state().updated_at(),
            Some(Timestamp(start + 60_000))
        );
        assert_eq!(
            tracker.raw_state().window(minute),
            Some(Window::containing(
                Period::Minute,
                Timestamp(start + 60_000)
            ))
        );
    }

    #[test]
    fn the_hot_path_answers_and_counts_as_the_full_path_does() {
        run(false);
    }

    #[test]
    fn the_hot_path_answers_and_counts_as_the_full_path_does_when_bounded() {
        run(true);
    }
}
