//! The historical variants: the original service's bugs, re-introduced on purpose so the
//! harness can show it catches each one. Built only with the `zoo` cargo feature; nothing in
//! the production API reaches them.
//!
//! A variant is chosen at run time ([`Variant`] parses from its id). Each runs the tracker's
//! own state machine ([`QuotaState`]) and store protocol, changed only where the historical
//! code went wrong, in the one operation it broke ([`Variant::operation`]):
//! [`Tracker::record_call_as`], [`Tracker::usage_as`], [`SyncedTracker::record_call_as`],
//! [`SyncedTracker::sync_as`] or [`SyncedTracker::reload_as`]. For every other operation a
//! variant behaves like the fixed tracker.
//!
//! Adding one: a [`Variant`] case, its row in [`Variant::ALL`] and the match arms of its
//! metadata, then its arm in the operation it breaks.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::admission::Reservation;
use crate::batch::SyncOutcome;
use crate::config::ServiceId;
use crate::error::QuotaError;
use crate::state::QuotaState;
use crate::store::Store;
use crate::sync::Backend;
use crate::synced::{ReloadReport, SyncReport, SyncedTracker};
use crate::tracker::{Admission, Busy, Recorded, ReloadOutcome, Tracker};
use crate::usage::Usage;

/// A shape of the tracker: the fixed one or a historical bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The fix: one critical section over the whole read-modify-write.
    Fixed,
    /// Get a snapshot, modify it, set it back, with no lock across the steps. Each field
    /// access is atomic on its own (as a Python attribute access is under the GIL), but a
    /// thread can interleave between any two of them.
    UnlockedRmw,
    /// The lock is taken for the get and again for the set, released in between: the last
    /// writer's whole snapshot wins, erasing other services' updates (the 48 % bug).
    SplitLock,
    /// A helper re-acquires the non-reentrant cache lock its caller holds.
    ReentrantDeadlock,
    /// A reader takes `used` and `remaining` in two critical sections.
    TornRead,
    /// The sync writes to the store while holding the cache lock.
    IoUnderLock,
    /// The sync writes a copy of pending taken earlier, then clears pending: calls recorded
    /// while the write was out are dropped.
    StaleSnapshotSync,
    /// A failed store write drops its deltas instead of putting them back.
    LostOnSyncFailure,
    /// On a cache miss the call is added to the store, the cache is reloaded (which now holds
    /// it) and the call is recorded locally again, to be synced a second time.
    DoubleCountOnMiss,
    /// A failed store read installs an empty tracker and marks it loaded.
    ResetOnLoadFailure,
    /// Admission as the original's fetchers did it: `can_call` in one critical section, the
    /// provider call, then `record_call` in another. Every caller that checked before the
    /// first one recorded is admitted: the `split-lock` shape one level up.
    CheckThenAct,
    /// Bounded mode: a lease granted without the store's condition (the instance asks with
    /// no ceiling), so instances together are granted, and admit, past the ceiling.
    LeaseWithoutCondition,
    /// Bounded mode: the next block is asked for while the cache lock is held, so every
    /// caller of the instance waits for the store.
    LeaseUnderLock,
    /// Bounded mode: a stop drops what is left of its leases instead of giving it back, so
    /// the window's calls stay granted to an instance that is gone.
    LeaseKeptOnStop,
}

/// The operation a variant changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `record_call`.
    Record,
    /// `usage` / `can_call`.
    Read,
    /// `sync`.
    Sync,
    /// `reload`.
    Reload,
    /// `admit`: check the quota and record the call.
    Admit,
    /// The bounded mode's leases: granting, refilling, giving back.
    Lease,
}

impl Variant {
    /// Every variant, the fixed one first.
    pub const ALL: &'static [Variant] = &[
        Variant::Fixed,
        Variant::UnlockedRmw,
        Variant::SplitLock,
        Variant::ReentrantDeadlock,
        Variant::TornRead,
        Variant::IoUnderLock,
        Variant::StaleSnapshotSync,
        Variant::LostOnSyncFailure,
        Variant::DoubleCountOnMiss,
        Variant::ResetOnLoadFailure,
        Variant::CheckThenAct,
        Variant::LeaseWithoutCondition,
        Variant::LeaseUnderLock,
        Variant::LeaseKeptOnStop,
    ];

    /// The id used on the command line and in reports.
    pub fn id(self) -> &'static str {
        match self {
            Variant::Fixed => "fixed",
            Variant::UnlockedRmw => "unlocked-rmw",
            Variant::SplitLock => "split-lock",
            Variant::ReentrantDeadlock => "reentrant-deadlock",
            Variant::TornRead => "torn-read",
            Variant::IoUnderLock => "io-under-lock",
            Variant::StaleSnapshotSync => "stale-snapshot-sync",
            Variant::LostOnSyncFailure => "lost-on-sync-failure",
            Variant::DoubleCountOnMiss => "double-count-on-miss",
            Variant::ResetOnLoadFailure => "reset-on-load-failure",
            Variant::CheckThenAct => "check-then-act",
            Variant::LeaseWithoutCondition => "lease-without-condition",
            Variant::LeaseUnderLock => "lease-under-lock",
            Variant::LeaseKeptOnStop => "lease-kept-on-stop",
        }
    }

    /// One line on what the variant does.
    pub fn description(self) -> &'static str {
        match self {
            Variant::Fixed => "one critical section over get, modify and set",
            Variant::UnlockedRmw => "get, modify, set back field by field with no lock across",
            Variant::SplitLock => "lock for the get, lock again for the set, released between",
            Variant::ReentrantDeadlock => "a helper re-acquires the lock its caller holds",
            Variant::TornRead => "used and remaining read in two critical sections",
            Variant::IoUnderLock => "the store write runs while the cache lock is held",
            Variant::StaleSnapshotSync => "writes a copy of pending, then clears pending",
            Variant::LostOnSyncFailure => "a failed write drops its deltas",
            Variant::DoubleCountOnMiss => "a miss adds to the store, reloads, then records again",
            Variant::ResetOnLoadFailure => "a failed read installs an empty, loaded tracker",
            Variant::CheckThenAct => "can_call, then the provider call, then record_call",
            Variant::LeaseWithoutCondition => "leases granted without the ceiling's condition",
            Variant::LeaseUnderLock => "the next lease asked for under the cache lock",
            Variant::LeaseKeptOnStop => "a stop drops its leases instead of giving them back",
        }
    }

    /// The operation the variant changes; the others behave as the fixed tracker's.
    pub fn operation(self) -> Operation {
        match self {
            Variant::Fixed
            | Variant::UnlockedRmw
            | Variant::SplitLock
            | Variant::ReentrantDeadlock
            | Variant::DoubleCountOnMiss => Operation::Record,
            Variant::TornRead => Operation::Read,
            Variant::IoUnderLock | Variant::StaleSnapshotSync | Variant::LostOnSyncFailure => {
                Operation::Sync
            }
            Variant::ResetOnLoadFailure => Operation::Reload,
            Variant::CheckThenAct => Operation::Admit,
            Variant::LeaseWithoutCondition | Variant::LeaseUnderLock | Variant::LeaseKeptOnStop => {
                Operation::Lease
            }
        }
    }

    /// Whether running it on real threads can hang the process (a real deadlock). Such a
    /// variant only runs under a model checker, which reports the deadlock instead.
    pub fn can_hang(self) -> bool {
        self == Variant::ReentrantDeadlock
    }

    /// Whether the lost-update workload (concurrent `record_call` only, no store) shows it.
    pub fn loses_in_repro(self) -> bool {
        matches!(self, Variant::UnlockedRmw | Variant::SplitLock)
    }

    /// Whether the admission workload (admit, provider call, until refused) shows it.
    pub fn overshoots_in_repro(self) -> bool {
        self == Variant::CheckThenAct
    }

    /// Whether this is a historical bug (everything but [`Variant::Fixed`]).
    pub fn is_buggy(self) -> bool {
        self != Variant::Fixed
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A variant id that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown variant {input:?}: expected one of {}", Variant::ALL.iter().map(|v| v.id()).collect::<Vec<_>>().join(", "))]
pub struct ParseVariantError {
    input: String,
}

impl FromStr for Variant {
    type Err = ParseVariantError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Variant::ALL
            .iter()
            .copied()
            .find(|v| v.id() == s)
            .ok_or_else(|| ParseVariantError {
                input: s.to_owned(),
            })
    }
}

static TRACER: OnceLock<fn(fmt::Arguments<'_>)> = OnceLock::new();

/// Installs a function that receives each step of the historical variants ("reads
/// tiingo.used=5", "writes ..."), so a model checker can print a counterexample as an
/// interleaving. Can be set once per process; returns false if one was already set.
pub fn set_tracer(tracer: fn(fmt::Arguments<'_>)) -> bool {
    TRACER.set(tracer).is_ok()
}

fn step(args: fmt::Arguments<'_>) {
    if let Some(tracer) = TRACER.get() {
        tracer(args);
    }
}

/// What a historical record variant returns: it never schedules a sync or a reload.
fn unscheduled(usage: Usage, crossed_critical: bool) -> Recorded {
    Recorded {
        usage,
        crossed_critical,
        sync_due: false,
        reload_due: false,
    }
}

/// `name.used=N, ...` for every service of `state`.
fn describe(state: &QuotaState) -> String {
    let mut parts = Vec::with_capacity(state.config().len());
    for (index, name) in state.config().names().enumerate() {
        parts.push(format!("{name}.used={}", state.counter(index).used));
    }
    parts.join(", ")
}

impl<B: Backend> Tracker<B> {
    /// Records `count` calls to `service` the way `variant` does. Variants that change
    /// another operation record like the fixed tracker. Historical record variants do not
    /// schedule syncs: they exist to show the read-modify-write failing.
    pub fn record_call_as(
        &self,
        variant: Variant,
        service: ServiceId,
        count: u64,
    ) -> Result<Recorded, QuotaError> {
        let outcome = match variant {
            Variant::SplitLock => {
                let now = self.now();
                // get_tracker(): a copy, under the lock.
                let mut snapshot = self.with_state(|state| {
                    step(format_args!("get: reads {}", describe(state)));
                    state.clone()
                });
                // tracker.record_call(): on the copy, lock released.
                let outcome = snapshot.record(service, count, now)?;
                // set_cached_tracker(): the copy replaces whatever is there now.
                self.with_state(|state| {
                    step(format_args!("set: writes {}", describe(&snapshot)));
                    *state = snapshot;
                });
                outcome
            }
            Variant::UnlockedRmw => {
                let now = self.now();
                let mut snapshot = self.read_field_by_field();
                let outcome = snapshot.record(service, count, now)?;
                self.write_field_by_field(&snapshot);
                outcome
            }
            Variant::ReentrantDeadlock => {
                return self.with_cache(|cache| {
                    let outcome = cache.state.record(service, count, self.now())?;
                    step(format_args!(
                        "holds the cache lock, calls a helper that locks it"
                    ));
                    // The helper takes the lock its caller holds: a non-reentrant lock never
                    // grants it.
                    let usage = self.usage(service)?;
                    Ok(unscheduled(usage, outcome.crossed_critical))
                });
            }
            _ => return self.record_call(service, count),
        };
        Ok(unscheduled(outcome.usage, outcome.crossed_critical))
    }

    /// Admits `count` calls to `service` the way `variant` does, making the provider call
    /// (`call`) only for admitted calls, where the variant makes it. The fixed tracker
    /// decides and records in one critical section, then calls; [`Variant::CheckThenAct`]
    /// asks `can_call`, calls, then records. Other variants admit like the fixed tracker.
    pub fn admit_as(
        &self,
        variant: Variant,
        service: ServiceId,
        count: u64,
        call: impl FnOnce(),
    ) -> Result<Admission, QuotaError> {
        if variant != Variant::CheckThenAct {
            let admission = self.admit(service, count)?;
            if admission.is_admitted() {
                call();
            }
            return Ok(admission);
        }
        let usage = self.usage(service)?;
        step(format_args!(
            "can_call: used={} below {}: {}",
            usage.used(),
            usage.ceiling(),
            usage.can_call()
        ));
        if !usage.can_call() {
            return Ok(Admission {
                reservation: None,
                usage,
                refusal: Some(crate::admission::Refusal::Ceiling),
                crossed_critical: false,
                sync_due: false,
                reload_due: false,
                lease_due: false,
            });
        }
        call();
        let recorded = self.record_call(service, count)?;
        step(format_args!("record_call: used={}", recorded.usage.used()));
        let (day, window, owner) = self.with_state(|s| (s.day(), s.window(service), s.owner));
        let window = window.ok_or(QuotaError::ServiceIdOutOfRange {
            index: service.index(),
            services: self.config().len(),
        })?;
        Ok(Admission {
            reservation: Some(Reservation::new(service, count, day, window, owner)),
            usage: recorded.usage,
            refusal: None,
            crossed_critical: recorded.crossed_critical,
            sync_due: false,
            reload_due: false,
            lease_due: false,
        })
    }

    /// Reads the usage of `service` the way `variant` does.
    pub fn usage_as(&self, variant: Variant, service: ServiceId) -> Result<Usage, QuotaError> {
        if variant != Variant::TornRead {
            return self.usage(service);
        }
        let first = self.with_state(|state| {
            let usage = state.usage(service);
            if let Ok(u) = &usage {
                step(format_args!("reads used={}", u.used()));
            }
            usage
        })?;
        let second = self.with_state(|state| {
            let usage = state.usage(service);
            if let Ok(u) = &usage {
                step(format_args!("reads remaining={}", u.remaining()));
            }
            usage
        })?;
        Ok(Usage::torn(
            service,
            first.limit(),
            first.ceiling(),
            first.used(),
            second.remaining(),
        ))
    }

    /// A snapshot assembled from one access per field, nothing held across them.
    fn read_field_by_field(&self) -> QuotaState {
        let (config, day) = self.with_state(|s| (std::sync::Arc::clone(s.config()), s.day()));
        let mut snapshot = QuotaState::new(config, day);
        for index in 0..snapshot.config().len() {
            let counter = self.with_state(|s| {
                let counter = s.counter(index);
                step(format_args!(
                    "reads {}.used={}",
                    s.config().services()[index].name(),
                    counter.used
                ));
                counter
            });
            snapshot.set_counter(index, counter);
        }
        let total = self.with_state(|s| {
            step(format_args!("reads total={}", s.total_api_calls_today()));
            s.total_api_calls_today()
        });
        snapshot.set_total(total);
        snapshot
    }

    /// Writes every field of `snapshot` back, one access per field.
    fn write_field_by_field(&self, snapshot: &QuotaState) {
        for index in 0..snapshot.config().len() {
            let counter = snapshot.counter(index);
            self.with_state(|s| {
                step(format_args!(
                    "writes {}.used={}",
                    s.config().services()[index].name(),
                    counter.used
                ));
                s.set_counter(index, counter);
            });
        }
        let total = snapshot.total_api_calls_today();
        self.with_state(|s| {
            step(format_args!("writes total={total}"));
            s.set_total(total);
        });
    }
}

impl<S: Store, B: Backend> SyncedTracker<S, B> {
    /// Admits like `variant` in the bounded mode: the lease variants refill their own way
    /// ([`SyncedTracker::refill_as`]); every other variant admits as [`SyncedTracker::admit`].
    pub fn admit_as(
        &self,
        variant: Variant,
        service: ServiceId,
        count: u64,
    ) -> Result<Admission, QuotaError> {
        self.admit_with(service, count, |service| {
            self.refill_as(variant, service);
        })
    }

    /// Asks for the next block of `service`'s window the way `variant` does.
    pub fn refill_as(&self, variant: Variant, service: ServiceId) -> crate::lease::LeaseReport {
        match variant {
            Variant::LeaseWithoutCondition => {
                let request = match self.tracker().begin_lease(service) {
                    Ok(request) => request,
                    Err(why) => return why,
                };
                let unbounded = crate::lease::LeaseRequest {
                    ceiling: u64::MAX,
                    ..request.clone()
                };
                step(format_args!(
                    "grant: {} asked with no ceiling",
                    request.want
                ));
                let answer = self.store().grant_lease(&unbounded);
                self.tracker()
                    .finish_lease(&request, answer.as_ref().copied())
            }
            Variant::LeaseUnderLock => {
                let instance = std::sync::Arc::clone(&self.tracker().options.instance);
                let now = self.tracker().now();
                self.tracker().with_state(|state| {
                    let request = match state.lease_request(service, &instance, now) {
                        Ok(request) => request,
                        Err(why) => return why,
                    };
                    step(format_args!("grant: asked with the cache lock held"));
                    match self.store().grant_lease(&request) {
                        Ok(granted) => state.lease_granted(&request, granted, now),
                        Err(error) => {
                            let in_doubt = error.kind == crate::StoreErrorKind::OutcomeUnknown;
                            state.lease_failed(&request, now, in_doubt).0
                        }
                    }
                })
            }
            _ => self.refill(service),
        }
    }

    /// Stops the way `variant` does: [`Variant::LeaseKeptOnStop`] drops its leases (they
    /// are never given back), every other variant gives them back
    /// ([`SyncedTracker::release_leases`]). Either way, a last sync.
    pub fn release_leases_as(&self, variant: Variant) -> SyncReport {
        if variant != Variant::LeaseKeptOnStop {
            return self.release_leases();
        }
        self.tracker().with_state(|state| {
            for counter in state.counters.iter_mut() {
                counter.lease = 0;
            }
        });
        step(format_args!("stop: leases dropped"));
        self.sync()
    }

    /// Records like `variant`: [`Variant::DoubleCountOnMiss`] here, the record variants of
    /// [`Tracker::record_call_as`] otherwise (without syncing).
    pub fn record_call_as(
        &self,
        variant: Variant,
        service: ServiceId,
        count: u64,
    ) -> Result<Recorded, QuotaError> {
        if variant != Variant::DoubleCountOnMiss {
            return match variant.operation() {
                Operation::Record if variant.is_buggy() => {
                    self.tracker().record_call_as(variant, service, count)
                }
                _ => self.record_call(service, count),
            };
        }
        let tracker = self.tracker();
        let missed = tracker.with_cache(|cache| cache.book.last_load_attempt.is_none());
        if missed {
            // The original's miss path: increment the store item, then load the cache from it.
            let (instance, config) = tracker.batch_parts();
            let delta = i64::try_from(count).unwrap_or(i64::MAX);
            let mut deltas = vec![0i64; config.len()];
            if let Some(slot) = deltas.get_mut(service.index()) {
                *slot = delta;
            }
            let (day, window) = tracker.with_state(|s| (s.day(), s.window(service)));
            let windows = window
                .filter(|w| w.period() != crate::config::Period::Day)
                .map(|window| crate::batch::WindowDelta {
                    service,
                    window,
                    delta,
                })
                .into_iter()
                .collect();
            let pending = crate::batch::Pending {
                days: vec![crate::batch::DayDeltas { day, deltas }],
                windows,
                returns: Vec::new(),
            };
            let batch = tracker.with_cache(|cache| cache.book.new_batch(instance, config, pending));
            step(format_args!("miss: adds {count} to the store"));
            if self.store().apply_batch(&batch).is_ok() {
                step(format_args!("miss: reloads the cache from the store"));
                self.reload();
            }
        }
        // ...then records the call locally as well, pending a second sync of the same call.
        step(format_args!("records {count} locally"));
        tracker.record_call(service, count)
    }

    /// Syncs the way `variant` does ([`Variant::IoUnderLock`], [`Variant::StaleSnapshotSync`],
    /// [`Variant::LostOnSyncFailure`]); like [`SyncedTracker::sync`] otherwise.
    pub fn sync_as(&self, variant: Variant) -> SyncReport {
        let tracker = self.tracker();
        let (instance, config) = tracker.batch_parts();
        match variant {
            Variant::IoUnderLock => tracker.with_cache(|cache| {
                let pending = cache.state.take_pending();
                if pending.is_empty() {
                    return SyncReport::NothingPending;
                }
                let batch = cache.book.new_batch(instance, config, pending);
                step(format_args!(
                    "writes batch {} holding the cache lock",
                    batch.seq
                ));
                match self.store().apply_batch(&batch) {
                    Ok(_) => SyncReport::Applied {
                        seq: batch.seq,
                        calls: batch.total(),
                    },
                    Err(error) => {
                        cache.state.restore_pending(&batch.days, &batch.windows);
                        SyncReport::Failed(error)
                    }
                }
            }),
            Variant::StaleSnapshotSync => {
                let batch = tracker.with_cache(|cache| {
                    let pending = cache.state.unsynced();
                    let calls: i64 = pending
                        .days
                        .iter()
                        .map(crate::batch::DayDeltas::total)
                        .sum();
                    step(format_args!("copies pending: {calls} calls"));
                    (!pending.is_empty()).then(|| cache.book.new_batch(instance, config, pending))
                });
                let Some(batch) = batch else {
                    return SyncReport::NothingPending;
                };
                match self.store().apply_batch(&batch) {
                    Ok(_) => {
                        tracker.with_state(|s| {
                            let taken = s.take_pending();
                            let cleared: i64 =
                                taken.days.iter().map(crate::batch::DayDeltas::total).sum();
                            step(format_args!(
                                "wrote the copy; clears pending: {cleared} calls"
                            ));
                        });
                        SyncReport::Applied {
                            seq: batch.seq,
                            calls: batch.total(),
                        }
                    }
                    Err(error) => SyncReport::Failed(error),
                }
            }
            Variant::LostOnSyncFailure => {
                let Ok(batch) = tracker.begin_sync() else {
                    return self.sync();
                };
                let (seq, calls) = (batch.seq, batch.total());
                match self.store().apply_batch(&batch) {
                    Ok(fresh) => {
                        tracker.finish_sync(batch, SyncOutcome::Applied { fresh });
                        SyncReport::Applied { seq, calls }
                    }
                    Err(error) => {
                        step(format_args!("write of {calls} calls failed; drops them"));
                        tracker.finish_sync(batch, SyncOutcome::Applied { fresh: None });
                        SyncReport::Failed(error)
                    }
                }
            }
            _ => self.sync(),
        }
    }

    /// Reloads the way `variant` does ([`Variant::ResetOnLoadFailure`]); like
    /// [`SyncedTracker::reload`] otherwise.
    pub fn reload_as(&self, variant: Variant) -> ReloadReport {
        if variant != Variant::ResetOnLoadFailure {
            return self.reload();
        }
        let tracker = self.tracker();
        let Ok(ticket) = tracker.begin_reload() else {
            return ReloadReport::InFlight;
        };
        match crate::synced::load(self.store(), &ticket) {
            Ok(stored) => {
                tracker.finish_reload(ticket, ReloadOutcome::Loaded(stored));
                ReloadReport::Loaded
            }
            Err(error) => {
                step(format_args!("read failed; installs an empty tracker"));
                tracker.with_cache(|cache| {
                    let fresh =
                        QuotaState::new(std::sync::Arc::clone(cache.state.config()), ticket.day());
                    cache.state = fresh;
                    cache.book.busy = Busy::Idle;
                });
                ReloadReport::Failed(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_explained() {
        for v in Variant::ALL {
            assert_eq!(v.id().parse::<Variant>(), Ok(*v));
        }
        let err = "rlock".parse::<Variant>().expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("unknown variant \"rlock\": expected one of fixed, unlocked-rmw"),
            "{err}"
        );
    }
}
