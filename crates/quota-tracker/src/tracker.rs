//! The cache and its lock: one critical section per operation, and sync bookkeeping that
//! keeps store I/O outside it.

use std::sync::Arc;

use crate::admission::{Refusal, Reservation};
use crate::batch::{DayDeltas, Pending, StoredDay, SyncBatch, SyncOutcome, WindowDelta, WindowKey};
use crate::clock::{Clock, ClockReader, Timestamp};
use crate::config::{QuotaConfig, ServiceId};
use crate::day::UtcDay;
use crate::error::QuotaError;
use crate::fast::Due;
use crate::state::QuotaState;
use crate::sync::{Backend, CacheGuard, CacheLock, DefaultBackend};
use crate::usage::Usage;

/// Tuning of a [`Tracker`]; the defaults are the original service's.
#[derive(Debug, Clone)]
pub struct TrackerOptions {
    /// Sync pending deltas at most this often, unless a crossing of 80 % forces it (60 s by
    /// default; 10 s from [`TrackerOptions::for_config`] with a per-minute limit).
    pub sync_interval_ms: i64,
    /// Re-read the store this often, to see other instances' calls (as the sync interval).
    pub reload_interval_ms: i64,
    /// Names this instance in its sync batches and lease grants (for idempotent retries).
    /// Defaults to the process id and the start time. A name set by hand may be reused by
    /// one process after another (their numbers count from each one's start time), not by
    /// two at once, and not across a clock stepped back past the earlier one's run.
    pub instance: Arc<str>,
}

impl TrackerOptions {
    /// The longest interval between syncs, and between reloads: the original's 60 s.
    pub const MAX_INTERVAL_MS: i64 = 60_000;

    /// Defaults for `config`: syncs and reloads at most a sixth of the shortest window apart
    /// (10 s with a per-minute limit), and never more than 60 s. Across instances a window's
    /// count is then at most `sync + reload` intervals stale (20 s of a minute; see
    /// ARCHITECTURE.md), where 60 s would leave each instance deciding a whole minute on its
    /// own calls alone.
    pub fn for_config(config: &QuotaConfig) -> Self {
        let shortest = config
            .services()
            .iter()
            .map(|s| match s.period() {
                crate::config::Period::Minute => 60_000,
                crate::config::Period::Hour => 3_600_000,
                crate::config::Period::Day | crate::config::Period::Month => 86_400_000,
            })
            .min()
            .unwrap_or(Self::MAX_INTERVAL_MS * 6);
        let interval = (shortest / 6).min(Self::MAX_INTERVAL_MS);
        Self {
            sync_interval_ms: interval,
            reload_interval_ms: interval,
            ..Self::default()
        }
    }
}

impl Default for TrackerOptions {
    /// The original service's intervals, 60 s, whatever the windows (see
    /// [`TrackerOptions::for_config`]).
    fn default() -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Self {
            sync_interval_ms: 60_000,
            reload_interval_ms: 60_000,
            instance: format!("pid{}-{started:x}", std::process::id()).into(),
        }
    }
}

/// What a recorded call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The service's usage right after this call, from the same critical section.
    pub usage: Usage,
    /// This call took the service to 80 % for the first time in its window.
    pub crossed_critical: bool,
    /// A sync should run now (the interval passed or a crossing forced it, and none is in
    /// flight). Run it after this call returns: never under the lock.
    pub sync_due: bool,
    /// The store should be re-read (never loaded, or the reload interval passed).
    pub reload_due: bool,
}

/// What an admission returns.
#[derive(Debug, PartialEq, Eq)]
pub struct Admission {
    /// `Some` when the calls were admitted (and recorded): give it to
    /// [`Tracker::refund`] if the provider call is not made. `None` when refused.
    pub reservation: Option<Reservation>,
    /// The service's usage right after the decision, from the same critical section.
    pub usage: Usage,
    /// Why not, when refused.
    pub refusal: Option<Refusal>,
    /// The admitted calls took the service to 80 % for the first time in its window.
    pub crossed_critical: bool,
    /// A sync should run now; run it after this returns, never under the lock.
    pub sync_due: bool,
    /// The store should be re-read.
    pub reload_due: bool,
    /// Bounded mode: the lease is running low; ask for the next block
    /// ([`Tracker::begin_lease`]) after this returns, never under the lock.
    pub lease_due: bool,
}

impl Admission {
    /// Whether the calls were admitted.
    pub fn is_admitted(&self) -> bool {
        self.reservation.is_some()
    }
}

/// Why no store operation was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSync {
    /// Another sync or reload of this instance is in flight; it was not waited for.
    InFlight,
    /// There is nothing to send.
    NothingPending,
}

/// Proof that a reload was started; hand it back to [`Tracker::finish_reload`].
#[derive(Debug)]
#[must_use = "a started reload must be finished, or no sync or reload can start again"]
pub struct ReloadTicket {
    day: UtcDay,
    windows: Vec<WindowKey>,
}

impl ReloadTicket {
    /// The day whose store item to read.
    pub fn day(&self) -> UtcDay {
        self.day
    }

    /// The current windows of the minute, hour and month limits, whose items to read too.
    pub fn windows(&self) -> &[WindowKey] {
        &self.windows
    }
}

/// How reading the store ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The item was read; `None` when the store has no item for the day yet.
    Loaded(Option<StoredDay>),
    /// The read failed: the tracker keeps its last known state.
    Failed,
}

/// The store operation an instance has in flight; at most one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    Idle,
    Syncing { seq: u64 },
    Reloading,
}

#[derive(Debug)]
pub(crate) struct SyncBook {
    pub(crate) busy: Busy,
    /// Counts from the start time ([`Timestamp::first_number`]), past an earlier process's
    /// batches under the same instance name.
    next_seq: u64,
    pub(crate) last_sync: Timestamp,
    /// A batch whose write may have landed: retried as it is before anything new is sent.
    in_doubt: Option<SyncBatch>,
    /// A crossing of 80 % asked for a sync that has not happened yet.
    pub(crate) forced: bool,
    pub(crate) last_load_attempt: Option<Timestamp>,
}

impl SyncBook {
    /// Numbers a new batch of `days`.
    pub(crate) fn new_batch(
        &mut self,
        instance: &Arc<str>,
        config: &Arc<QuotaConfig>,
        pending: Pending,
    ) -> SyncBatch {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        SyncBatch {
            instance: Arc::clone(instance),
            seq,
            config: Arc::clone(config),
            days: pending.days,
            windows: pending.windows,
            returns: pending.returns,
        }
    }
}

/// Everything the cache lock protects.
// `repr(C)`, what the hot path reads first: right behind the lock word (see `QuotaState`).
#[repr(C)]
pub(crate) struct Cache {
    /// Before this instant (ms) no window ends and neither due flag changes: the hot path
    /// ([`crate::fast`]) may run. `i64::MIN` sends the next call down the full path.
    pub(crate) wake_at: i64,
    /// The due flags as of the last [`Cache::refresh`], valid before `wake_at`.
    pub(crate) due: Due,
    pub(crate) state: QuotaState,
    /// Read freely; changed only through [`Cache::book_mut`].
    pub(crate) book: SyncBook,
}

impl Cache {
    /// The sync book, to change: the hot path's due flags may change with it, so the next
    /// call takes the full path, which recomputes them.
    pub(crate) fn book_mut(&mut self) -> &mut SyncBook {
        self.wake_at = i64::MIN;
        &mut self.book
    }
}

/// A quota tracker instance: the cached state behind one lock.
///
/// Every method takes the lock once and never calls anything that takes it again
/// (design invariant 7). Store I/O never happens here: [`Tracker::begin_sync`] hands out the
/// pending deltas, the caller writes them after this returns, and reports back with
/// [`Tracker::finish_sync`]. [`crate::SyncedTracker`] does that dance for a blocking store.
pub struct Tracker<B: Backend = DefaultBackend> {
    config: Arc<QuotaConfig>,
    pub(crate) clock: ClockReader,
    pub(crate) options: TrackerOptions,
    pub(crate) cache: CacheLock<B, Cache>,
}

impl Tracker<DefaultBackend> {
    /// A tracker for `config`, reading time from `clock`, with the options
    /// [`TrackerOptions::for_config`] picks.
    pub fn new(config: QuotaConfig, clock: Arc<dyn Clock>) -> Self {
        let options = TrackerOptions::for_config(&config);
        Self::new_in(config, clock, options)
    }

    /// A tracker with explicit options.
    pub fn with_options(
        config: QuotaConfig,
        clock: Arc<dyn Clock>,
        options: TrackerOptions,
    ) -> Self {
        Self::new_in(config, clock, options)
    }
}

impl<B: Backend> Tracker<B> {
    /// A tracker on the synchronization backend `B` (see [`crate::sync`]).
    pub fn new_in(config: QuotaConfig, clock: Arc<dyn Clock>, options: TrackerOptions) -> Self {
        let config = Arc::new(config);
        let now = clock.now();
        let cache = Cache {
            wake_at: i64::MIN,
            due: Due::default(),
            state: QuotaState::starting(Arc::clone(&config), now),
            book: SyncBook {
                busy: Busy::Idle,
                next_seq: now.first_number(),
                last_sync: now,
                in_doubt: None,
                forced: false,
                last_load_attempt: None,
            },
        };
        Self {
            config,
            clock: ClockReader::new(clock),
            options,
            cache: CacheLock::new(cache),
        }
    }

    /// The services this tracker counts.
    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    /// The id of the service called `name`.
    pub fn service(&self, name: &str) -> Result<ServiceId, QuotaError> {
        self.config.service(name)
    }

    /// This instance's name in sync batches.
    pub fn instance(&self) -> &str {
        &self.options.instance
    }

    /// Records `count` calls to `service`: one critical section over the whole
    /// read-modify-write. On error nothing recorded changes.
    #[inline]
    pub fn record_call(&self, service: ServiceId, count: u64) -> Result<Recorded, QuotaError> {
        // Read the clock before locking: the critical section stays a few loads and stores.
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        match cache.record_fast(service, count, now) {
            Some((usage, due)) => {
                drop(cache);
                Ok(Recorded {
                    usage,
                    crossed_critical: false,
                    sync_due: due.sync,
                    reload_due: due.reload,
                })
            }
            None => self.record_full(cache, service, count, now),
        }
    }

    /// [`Tracker::record_call`] off the hot path: a window or day ends, a flag falls due, a
    /// threshold is crossed, the bounded mode, or bad input.
    #[cold]
    #[inline(never)]
    fn record_full(
        &self,
        mut cache: CacheGuard<'_, B, Cache>,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Result<Recorded, QuotaError> {
        let outcome = cache.state.record(service, count, now);
        if outcome.as_ref().is_ok_and(|o| o.crossed_critical) {
            cache.book_mut().forced = true;
        }
        cache.refresh(now, &self.options);
        let due = cache.due;
        drop(cache);
        let outcome = outcome?;
        if outcome.crossed_critical {
            self.warn_crossed(&outcome.usage);
        }
        Ok(Recorded {
            usage: outcome.usage,
            crossed_critical: outcome.crossed_critical,
            sync_due: due.sync,
            reload_due: due.reload,
        })
    }

    /// Admits `count` calls to `service` only if they keep `used` at or under the ceiling
    /// ([`crate::Usage::ceiling`]), deciding and recording in one critical section: the safe
    /// form of "check the quota, call the provider, record". Refused calls change nothing.
    /// On error nothing recorded changes.
    #[inline]
    pub fn admit(&self, service: ServiceId, count: u64) -> Result<Admission, QuotaError> {
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        match cache.admit_fast(service, count, now) {
            Some((usage, reservation, due)) => {
                drop(cache);
                Ok(Admission {
                    reservation: Some(reservation),
                    usage,
                    refusal: None,
                    crossed_critical: false,
                    sync_due: due.sync,
                    reload_due: due.reload,
                    lease_due: false,
                })
            }
            None => self.admit_full(cache, service, count, now),
        }
    }

    /// [`Tracker::admit`] off the hot path: as [`Tracker::record_full`], and refusals and
    /// a lease running low.
    #[cold]
    #[inline(never)]
    fn admit_full(
        &self,
        mut cache: CacheGuard<'_, B, Cache>,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Result<Admission, QuotaError> {
        let recorded = cache.state.try_admit(service, count, now);
        let admitted = recorded.as_ref().is_ok_and(|r| r.refusal.is_none());
        if admitted && recorded.as_ref().is_ok_and(|r| r.crossed_critical) {
            cache.book_mut().forced = true;
        }
        cache.refresh(now, &self.options);
        let due = cache.due;
        let reservation = admitted.then(|| cache.state.reservation(service, count));
        // Only a lease below its low-water mark reads the request book.
        let lease_due = admitted
            && recorded.as_ref().is_ok_and(|r| r.lease_low)
            && cache.state.no_lease_asked(service);
        drop(cache);
        let recorded = recorded?;
        if recorded.crossed_critical && admitted {
            self.warn_crossed(&recorded.usage);
        }
        Ok(Admission {
            reservation,
            usage: recorded.usage,
            refusal: recorded.refusal,
            crossed_critical: admitted && recorded.crossed_critical,
            sync_due: admitted && due.sync,
            reload_due: due.reload,
            lease_due,
        })
    }

    /// [`Tracker::record_call`] always down the full path: the reference the hot path is
    /// tested against.
    #[cfg(test)]
    pub(crate) fn record_call_full(
        &self,
        service: ServiceId,
        count: u64,
    ) -> Result<Recorded, QuotaError> {
        let now = self.clock.now();
        self.record_full(self.cache.lock(), service, count, now)
    }

    /// The state as it is, not rolled to now (an observation that changes nothing).
    #[cfg(test)]
    pub(crate) fn raw_state(&self) -> QuotaState {
        self.cache.lock().state.clone()
    }

    /// [`Tracker::admit`] always down the full path.
    #[cfg(test)]
    pub(crate) fn admit_full_path(
        &self,
        service: ServiceId,
        count: u64,
    ) -> Result<Admission, QuotaError> {
        let now = self.clock.now();
        self.admit_full(self.cache.lock(), service, count, now)
    }

    /// Gives an admitted reservation back (the provider call was not made): its calls no
    /// longer count, on the day they were admitted, and the store ends at admitted minus
    /// refunded. Returns the service's usage after.
    pub fn refund(&self, reservation: Reservation) -> Result<Usage, QuotaError> {
        self.cache.lock().state.refund(reservation)
    }

    /// What today's calls cost, in millionths of a currency unit (see
    /// [`crate::ServiceConfig::with_cost_per_call_micros`]); 0 just after midnight.
    pub fn estimated_daily_cost_micros(&self) -> u64 {
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        cache.state.roll_to(now);
        cache.state.estimated_daily_cost_micros()
    }

    /// [`Tracker::estimated_daily_cost_micros`] in currency units.
    pub fn estimated_daily_cost(&self) -> f64 {
        self.estimated_daily_cost_micros() as f64 / 1e6
    }

    /// Whether admission runs at the reduced rate (after consecutive store failures; see
    /// [`crate::reduced`]).
    pub fn reduced_rate(&self) -> bool {
        self.cache.lock().state.reduced_rate()
    }

    #[cold]
    #[inline(never)]
    fn warn_crossed(&self, usage: &Usage) {
        tracing::warn!(
            service = self.config.services()[usage.service().0].name(),
            used = usage.used(),
            limit = usage.limit(),
            "quota crossed the critical threshold; forcing a sync"
        );
    }

    /// [`Tracker::record_call`] by service name.
    pub fn record_call_named(&self, service: &str, count: u64) -> Result<Recorded, QuotaError> {
        self.record_call(self.config.service(service)?, count)
    }

    /// The usage of `service` in its current window, read in one critical section (a
    /// window that ended reads as the next one's).
    pub fn usage(&self, service: ServiceId) -> Result<Usage, QuotaError> {
        let now = self.clock.now();
        self.cache.lock().state.usage_at(service, now)
    }

    /// Whether another call to `service` may be made now (remaining > 0 and below the
    /// ceiling, 80 % by default). Advice only: to check and record as one step, use
    /// [`Tracker::admit`].
    pub fn can_call(&self, service: ServiceId) -> Result<bool, QuotaError> {
        self.usage(service).map(|u| u.can_call())
    }

    /// Calls recorded today over all services.
    pub fn total_api_calls_today(&self) -> u64 {
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        cache.state.roll_to(now);
        cache.state.total_api_calls_today()
    }

    /// A consistent copy of the whole state (one critical section), every window rolled to
    /// now.
    pub fn state(&self) -> QuotaState {
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        cache.state.roll_to(now);
        cache.state.clone()
    }

    /// Every delta this instance has recorded and not yet seen land in the store: pending
    /// deltas of every day plus a batch whose write is in doubt. A batch in flight is held
    /// by whoever is writing it, not counted here.
    pub fn unsynced(&self) -> Vec<DayDeltas> {
        self.unsynced_all().days
    }

    /// [`Tracker::unsynced`] per minute, hour and month window.
    pub fn unsynced_windows(&self) -> Vec<WindowDelta> {
        self.unsynced_all().windows
    }

    fn unsynced_all(&self) -> Pending {
        let cache = self.cache.lock();
        let mut pending = cache.state.unsynced();
        if let Some(batch) = &cache.book.in_doubt {
            merge_days(&mut pending.days, &batch.days);
            merge_windows(&mut pending.windows, &batch.windows);
        }
        pending
    }

    /// Whether the store should be re-read now: never read, or the reload interval passed
    /// since the last read (a sync that brought back every current count counts as one).
    pub fn reload_due(&self) -> bool {
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        cache.refresh(now, &self.options);
        cache.due.reload
    }

    /// Whether a sync or reload is in flight.
    pub fn store_op_in_flight(&self) -> bool {
        self.cache.lock().book.busy != Busy::Idle
    }

    /// Takes the pending deltas for a sync, if none is in flight and there is something to
    /// send. A batch whose earlier write is in doubt is handed out again first, unchanged.
    ///
    /// The caller must write the batch *after* this returns (the lock is already released)
    /// and then call [`Tracker::finish_sync`] exactly once.
    pub fn begin_sync(&self) -> Result<SyncBatch, NoSync> {
        let mut cache = self.cache.lock();
        if cache.book.busy != Busy::Idle {
            return Err(NoSync::InFlight);
        }
        cache.book_mut();
        let Cache { state, book, .. } = &mut *cache;
        let batch = match book.in_doubt.clone() {
            Some(retry) => retry,
            None => {
                let pending = state.take_pending();
                if pending.is_empty() {
                    book.forced = false;
                    return Err(NoSync::NothingPending);
                }
                book.new_batch(&self.options.instance, &self.config, pending)
            }
        };
        book.busy = Busy::Syncing { seq: batch.seq };
        Ok(batch)
    }

    /// Reports how writing `batch` ended. Deltas of a failed write go back into pending; a
    /// write in doubt is kept to be retried as it is; an applied write may bring fresh
    /// counters from the store, merged with what was recorded meanwhile.
    pub fn finish_sync(&self, batch: SyncBatch, outcome: SyncOutcome) {
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        cache.book_mut();
        let Cache { state, book, .. } = &mut *cache;
        if book.busy != (Busy::Syncing { seq: batch.seq }) {
            // Not the batch in flight (a caller bug). Restoring it could count it twice,
            // dropping it could lose it: keep it as in doubt only if nothing else is.
            debug_assert!(
                false,
                "finish_sync for batch {} which is not in flight",
                batch.seq
            );
            return;
        }
        book.busy = Busy::Idle;
        let changed = state.note_store_outcome(matches!(outcome, SyncOutcome::Applied { .. }));
        match outcome {
            SyncOutcome::Applied { fresh } => {
                book.in_doubt = None;
                book.forced = false;
                book.last_sync = now;
                if let Some(fresh) = fresh {
                    // Current windows first: counts of windows that ended are not merged.
                    state.roll_to(now);
                    state.merge_stored(&fresh, &Pending::default());
                    // A reload's worth only if it read every count a reload would: the
                    // batch may not have written every current window's item.
                    if state.covered_by(&fresh) {
                        book.last_load_attempt = Some(now);
                    }
                }
            }
            // A retry of a batch in doubt that now surely failed is still in doubt: its
            // first attempt may have landed, and restoring it would count it twice.
            SyncOutcome::Failed if book.in_doubt.as_ref().is_some_and(|b| b.seq == batch.seq) => {}
            SyncOutcome::Failed => {
                book.in_doubt = None;
                state.restore_pending(&batch.days, &batch.windows);
                state.restore_returns(&batch.returns);
            }
            SyncOutcome::Unknown => book.in_doubt = Some(batch),
        }
        drop(cache);
        if let Some(reduced) = changed {
            warn_mode(reduced);
        }
    }

    /// Starts a reload of the current day's item, if no store operation is in flight.
    pub fn begin_reload(&self) -> Result<ReloadTicket, NoSync> {
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        if cache.book.busy != Busy::Idle {
            return Err(NoSync::InFlight);
        }
        cache.book_mut().busy = Busy::Reloading;
        cache.book_mut().last_load_attempt = Some(now);
        cache.state.roll_to(now);
        let state = &cache.state;
        let windows = self
            .config
            .ids()
            .filter_map(|id| {
                let window = state.window(id)?;
                (window.period() != crate::config::Period::Day).then(|| WindowKey {
                    service: self.config.services()[id.index()].name().to_owned(),
                    window,
                })
            })
            .collect();
        Ok(ReloadTicket {
            day: state.day(),
            windows,
        })
    }

    /// Merges a reload's result: stored counters plus pending deltas (invariant 6). A failed
    /// read keeps the last known state and does not count as loaded.
    pub fn finish_reload(&self, ticket: ReloadTicket, outcome: ReloadOutcome) {
        let mut cache = self.cache.lock();
        cache.book_mut();
        let Cache { state, book, .. } = &mut *cache;
        debug_assert_eq!(
            book.busy,
            Busy::Reloading,
            "finish_reload without begin_reload"
        );
        book.busy = Busy::Idle;
        let changed = state.note_store_outcome(matches!(outcome, ReloadOutcome::Loaded(_)));
        match outcome {
            ReloadOutcome::Loaded(stored) => {
                let in_doubt = book
                    .in_doubt
                    .as_ref()
                    .map_or_else(Pending::default, SyncBatch::pending);
                if let Some(stored) = stored.filter(|s| s.day == ticket.day) {
                    state.merge_stored(&stored, &in_doubt);
                }
            }
            ReloadOutcome::Failed => {}
        }
        drop(cache);
        if let Some(reduced) = changed {
            warn_mode(reduced);
        }
    }

    /// The lock and the state, settled, for the historical variants that take the lock
    /// their own way (raw field access: the hot path's bounds are recomputed after).
    #[cfg(feature = "zoo")]
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut QuotaState) -> R) -> R {
        f(&mut self.cache.lock().state.settled())
    }

    /// The lock and everything it protects, for the historical variants (the next call
    /// takes the full path).
    #[cfg(feature = "zoo")]
    pub(crate) fn with_cache<R>(&self, f: impl FnOnce(&mut Cache) -> R) -> R {
        let mut cache = self.cache.lock();
        cache.book_mut();
        f(&mut cache)
    }

    /// The instance name and configuration, to number batches in the historical variants.
    #[cfg(feature = "zoo")]
    pub(crate) fn batch_parts(&self) -> (&Arc<str>, &Arc<QuotaConfig>) {
        (&self.options.instance, &self.config)
    }

    /// The clock, for the historical variants.
    #[cfg(feature = "zoo")]
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// Logs a change of admission mode (outside the lock).
#[cold]
#[inline(never)]
fn warn_mode(reduced: bool) {
    if reduced {
        tracing::warn!("store failed 3 times in a row: admitting below 25 % of each limit");
    } else {
        tracing::info!("store answered 5 times in a row: admitting up to the ceiling again");
    }
}

/// Adds `more` into `windows`, window by window, keeping them in order.
fn merge_windows(windows: &mut Vec<WindowDelta>, more: &[WindowDelta]) {
    for extra in more {
        match windows
            .iter_mut()
            .find(|w| w.service == extra.service && w.window == extra.window)
        {
            Some(w) => w.delta = w.delta.saturating_add(extra.delta),
            None => windows.push(extra.clone()),
        }
    }
    windows.sort_by_key(|w| (w.window.start(), w.service));
}

/// Adds `more` into `days`, day by day, keeping days in order.
fn merge_days(days: &mut Vec<DayDeltas>, more: &[DayDeltas]) {
    for extra in more {
        match days.iter_mut().find(|d| d.day == extra.day) {
            Some(day) => {
                for (sum, delta) in day.deltas.iter_mut().zip(&extra.deltas) {
                    *sum = sum.saturating_add(*delta);
                }
            }
            None => days.push(extra.clone()),
        }
    }
    days.sort_by_key(|d| d.day);
}
