//! A tracker wired to a blocking store: records, and syncs when due, outside the lock.

use crate::admission::{Refusal, Reservation};
use crate::batch::{StoredDay, SyncBatch, SyncOutcome};
use crate::config::ServiceId;
use crate::error::QuotaError;
use crate::store::{Store, StoreError};
use crate::sync::{Backend, DefaultBackend};
use crate::tracker::{Admission, NoSync, Recorded, ReloadOutcome, ReloadTicket, Tracker};
use crate::usage::Usage;

/// What a call to [`SyncedTracker::sync`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncReport {
    /// Nothing was pending.
    NothingPending,
    /// Another thread's sync or reload was in flight; this call returned without waiting.
    InFlight,
    /// The batch landed.
    Applied {
        /// The batch's sequence number.
        seq: u64,
        /// Calls it carried, net of refunds.
        calls: i64,
    },
    /// The write failed; its deltas are pending again, or kept for a retry if in doubt.
    Failed(StoreError),
}

/// What a call to [`SyncedTracker::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadReport {
    /// The store was read and merged.
    Loaded,
    /// Another store operation was in flight.
    InFlight,
    /// The read failed; the last known state was kept.
    Failed(StoreError),
}

/// A [`Tracker`] and a blocking [`Store`]: `record_call` syncs when a sync is due, after
/// the cache lock is released, and never waits for another thread's sync.
pub struct SyncedTracker<S: Store, B: Backend = DefaultBackend> {
    tracker: Tracker<B>,
    store: S,
}

impl<S: Store, B: Backend> SyncedTracker<S, B> {
    /// Wires `tracker` to `store`.
    pub fn new(tracker: Tracker<B>, store: S) -> Self {
        Self { tracker, store }
    }

    /// The tracker.
    pub fn tracker(&self) -> &Tracker<B> {
        &self.tracker
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Records `count` calls, then syncs or reloads if one is due. A store failure is not a
    /// recording failure: the call stays recorded and pending, and the report is logged.
    pub fn record_call(&self, service: ServiceId, count: u64) -> Result<Recorded, QuotaError> {
        let recorded = self.tracker.record_call(service, count)?;
        self.run_due(recorded.sync_due, recorded.reload_due);
        Ok(recorded)
    }

    /// Admits `count` calls if they keep the service at or under its ceiling, deciding and
    /// recording in one critical section ([`Tracker::admit`]), then syncs or reloads if one
    /// is due, after the lock is released.
    ///
    /// In the bounded mode ([`crate::lease`]) a refusal for want of a lease asks the store
    /// for a block and decides again, once; a lease running low asks for the next block
    /// ahead of need. Either way the store is asked after the lock is released.
    pub fn admit(&self, service: ServiceId, count: u64) -> Result<Admission, QuotaError> {
        self.admit_with(service, count, |service| {
            self.refill(service);
        })
    }

    /// Admits as [`SyncedTracker::admit`] does, asking the store for lease blocks as
    /// needed (bounded mode), but runs no sync or reload: for callers whose syncs run
    /// elsewhere ([`crate::BackgroundSync`], a loop of their own).
    pub fn admit_leasing(&self, service: ServiceId, count: u64) -> Result<Admission, QuotaError> {
        self.lease_and_admit(service, count, |service| {
            self.refill(service);
        })
    }

    /// [`SyncedTracker::admit`], asking for blocks with `refill`.
    pub(crate) fn admit_with(
        &self,
        service: ServiceId,
        count: u64,
        refill: impl Fn(ServiceId),
    ) -> Result<Admission, QuotaError> {
        let admission = self.lease_and_admit(service, count, refill)?;
        self.run_due(admission.sync_due, admission.reload_due);
        Ok(admission)
    }

    /// Admits, asking for a block with `refill` and deciding again once when refused for
    /// want of a lease, and ahead of need when the lease runs low.
    fn lease_and_admit(
        &self,
        service: ServiceId,
        count: u64,
        refill: impl Fn(ServiceId),
    ) -> Result<Admission, QuotaError> {
        let mut admission = self.tracker.admit(service, count)?;
        if admission.refusal == Some(Refusal::NoLease) {
            refill(service);
            admission = self.tracker.admit(service, count)?;
        }
        if admission.lease_due {
            refill(service);
        }
        Ok(admission)
    }

    /// Gives an admitted reservation back ([`Tracker::refund`]); the next sync carries it.
    pub fn refund(&self, reservation: Reservation) -> Result<Usage, QuotaError> {
        self.tracker.refund(reservation)
    }

    /// Runs the store operation a call said was due; a failure is logged, not returned. A
    /// sync that did not bring back every current window's count leaves a due reload due.
    fn run_due(&self, sync_due: bool, reload_due: bool) {
        if sync_due && let SyncReport::Failed(error) = self.sync() {
            tracing::warn!(%error, "sync failed; deltas kept pending");
            return;
        }
        let reload_due = if sync_due {
            self.tracker.reload_due()
        } else {
            reload_due
        };
        if reload_due && let ReloadReport::Failed(error) = self.reload() {
            tracing::warn!(%error, "reload failed; keeping the last known state");
        }
    }

    /// Writes pending deltas to the store now, unless a store operation is in flight.
    pub fn sync(&self) -> SyncReport {
        let in_flight = match InFlight::start(&self.tracker) {
            Ok(in_flight) => in_flight,
            Err(report) => return report,
        };
        let result = self.store.apply_batch(in_flight.batch());
        in_flight.end(result)
    }

    /// Re-reads today's item and the current windows' items, and merges them with pending
    /// deltas.
    pub fn reload(&self) -> ReloadReport {
        let Ok(ticket) = self.tracker.begin_reload() else {
            return ReloadReport::InFlight;
        };
        let result = load(&self.store, &ticket);
        end_reload(&self.tracker, ticket, result)
    }
}

/// Merges what a reload read (or notes that it failed) and says how it went.
pub(crate) fn end_reload<B: Backend>(
    tracker: &Tracker<B>,
    ticket: ReloadTicket,
    result: Result<Option<StoredDay>, StoreError>,
) -> ReloadReport {
    match result {
        Ok(stored) => {
            tracker.finish_reload(ticket, ReloadOutcome::Loaded(stored));
            ReloadReport::Loaded
        }
        Err(error) => {
            tracker.finish_reload(ticket, ReloadOutcome::Failed);
            ReloadReport::Failed(error)
        }
    }
}

/// Reads what a reload needs: the day item, and the windows' items when there are any
/// (one store read for a day-only configuration).
pub(crate) fn load<S: Store>(
    store: &S,
    ticket: &ReloadTicket,
) -> Result<Option<StoredDay>, StoreError> {
    let day = store.load_day(ticket.day())?;
    if ticket.windows().is_empty() {
        return Ok(day);
    }
    let windows = store.load_windows(ticket.windows())?;
    let day = day.unwrap_or_else(|| StoredDay::new(ticket.day(), Default::default()));
    Ok(Some(day.with_windows(windows)))
}

/// A batch being written. If the store call unwinds (or, from async code, its future is
/// dropped before it finished), the batch is reported in doubt rather than lost, and the
/// instance can sync again.
pub(crate) struct InFlight<'a, B: Backend> {
    tracker: &'a Tracker<B>,
    batch: Option<SyncBatch>,
    seq: u64,
    calls: i64,
}

impl<'a, B: Backend> InFlight<'a, B> {
    /// Takes the pending deltas for a sync, or says why there is none.
    pub(crate) fn start(tracker: &'a Tracker<B>) -> Result<Self, SyncReport> {
        let batch = match tracker.begin_sync() {
            Ok(batch) => batch,
            Err(NoSync::InFlight) => return Err(SyncReport::InFlight),
            Err(NoSync::NothingPending) => return Err(SyncReport::NothingPending),
        };
        Ok(Self {
            tracker,
            seq: batch.seq,
            calls: batch.total(),
            batch: Some(batch),
        })
    }

    pub(crate) fn batch(&self) -> &SyncBatch {
        self.batch.as_ref().expect("batch present until finished")
    }

    /// Reports how the write ended.
    pub(crate) fn end(mut self, result: Result<Option<StoredDay>, StoreError>) -> SyncReport {
        match result {
            Ok(fresh) => {
                self.finish(SyncOutcome::Applied { fresh });
                SyncReport::Applied {
                    seq: self.seq,
                    calls: self.calls,
                }
            }
            Err(error) => {
                self.finish(error.sync_outcome());
                SyncReport::Failed(error)
            }
        }
    }

    fn finish(&mut self, outcome: SyncOutcome) {
        if let Some(batch) = self.batch.take() {
            self.tracker.finish_sync(batch, outcome);
        }
    }
}

impl<B: Backend> Drop for InFlight<'_, B> {
    fn drop(&mut self) {
        self.finish(SyncOutcome::Unknown);
    }
}
