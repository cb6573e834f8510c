//! The tracker driven from async code: no call awaits while it holds the cache lock, because
//! the lock is only ever held by the synchronous core, and every store operation is awaited
//! after the core has released it (design invariant 2, for tasks).
//!
//! [`AsyncStore`] is [`Store`](crate::Store) as futures; [`AsyncSyncedTracker`] is
//! [`SyncedTracker`](crate::SyncedTracker) for tasks: the same three sans-IO calls
//! (`begin_*`, the store, `finish_*`), the store awaited in between. A sync whose future is
//! dropped mid-write (a cancelled task) reports its batch in doubt, as a panic does on a
//! thread: retried as it is, never lost, never counted twice. The runtime is the caller's;
//! a background task (for tokio: `quota_dynamodb::SyncTask`) drives periodic syncs with
//! [`crate::SyncCycle`], the schedule `BackgroundSync` keeps.

use std::future::Future;

use crate::admission::{Refusal, Reservation};
use crate::batch::{StoredDay, StoredWindow, SyncBatch, WindowKey};
use crate::config::ServiceId;
use crate::day::UtcDay;
use crate::error::QuotaError;
use crate::lease::{LeaseReport, LeaseRequest};
use crate::store::StoreError;
use crate::sync::{Backend, DefaultBackend};
use crate::synced::{InFlight, ReloadReport, SyncReport, end_reload};
use crate::tracker::{Admission, Recorded, ReloadTicket, Tracker};
use crate::usage::Usage;

/// A store of per-day and per-window counters whose operations are futures: what
/// [`Store`](crate::Store) promises, awaited. The futures are `Send`, so a multi-thread
/// runtime may move them between its threads.
pub trait AsyncStore: Send + Sync {
    /// The counters of `day`, or `None` when no item exists yet.
    fn load_day(
        &self,
        day: UtcDay,
    ) -> impl Future<Output = Result<Option<StoredDay>, StoreError>> + Send;

    /// The counts of these windows; a window with no item yet is left out.
    fn load_windows(
        &self,
        windows: &[WindowKey],
    ) -> impl Future<Output = Result<Vec<StoredWindow>, StoreError>> + Send;

    /// Adds the batch's deltas (and takes its lease returns back), at most once per
    /// `(instance, seq)`; as [`Store::apply_batch`](crate::Store::apply_batch).
    fn apply_batch(
        &self,
        batch: &SyncBatch,
    ) -> impl Future<Output = Result<Option<StoredDay>, StoreError>> + Send;

    /// Grants up to `request.want` calls without taking the window past `request.ceiling`,
    /// once per `(instance, ticket)`; as [`Store::grant_lease`](crate::Store::grant_lease).
    fn grant_lease(
        &self,
        request: &LeaseRequest,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A shared store, as [`Store`](crate::Store) has it.
impl<S: AsyncStore + ?Sized> AsyncStore for std::sync::Arc<S> {
    fn load_day(
        &self,
        day: UtcDay,
    ) -> impl Future<Output = Result<Option<StoredDay>, StoreError>> + Send {
        (**self).load_day(day)
    }

    fn load_windows(
        &self,
        windows: &[WindowKey],
    ) -> impl Future<Output = Result<Vec<StoredWindow>, StoreError>> + Send {
        (**self).load_windows(windows)
    }

    fn apply_batch(
        &self,
        batch: &SyncBatch,
    ) -> impl Future<Output = Result<Option<StoredDay>, StoreError>> + Send {
        (**self).apply_batch(batch)
    }

    fn grant_lease(
        &self,
        request: &LeaseRequest,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).grant_lease(request)
    }
}

/// The in-memory store from async code: each future is ready when first polled (the store
/// never waits), so async code can be tested with no runtime or server.
impl<B: Backend> AsyncStore for crate::store::MemoryStore<B> {
    async fn load_day(&self, day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        crate::store::Store::load_day(self, day)
    }

    async fn load_windows(&self, windows: &[WindowKey]) -> Result<Vec<StoredWindow>, StoreError> {
        crate::store::Store::load_windows(self, windows)
    }

    async fn apply_batch(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        crate::store::Store::apply_batch(self, batch)
    }

    async fn grant_lease(&self, request: &LeaseRequest) -> Result<u64, StoreError> {
        crate::store::Store::grant_lease(self, request)
    }
}

/// A [`Tracker`] and an [`AsyncStore`], for tasks: records and admissions decide under the
/// lock without awaiting, then await a due sync or reload (or, bounded mode, a lease block)
/// with the lock released.
pub struct AsyncSyncedTracker<S: AsyncStore, B: Backend = DefaultBackend> {
    tracker: Tracker<B>,
    store: S,
}

impl<S: AsyncStore, B: Backend> AsyncSyncedTracker<S, B> {
    /// Wires `tracker` to `store`.
    pub fn new(tracker: Tracker<B>, store: S) -> Self {
        Self { tracker, store }
    }

    /// The tracker (its calls never await and never do I/O).
    pub fn tracker(&self) -> &Tracker<B> {
        &self.tracker
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Records `count` calls, then awaits a sync or reload if one is due. A store failure is
    /// not a recording failure: the calls stay recorded and pending, and it is logged.
    pub async fn record_call(
        &self,
        service: ServiceId,
        count: u64,
    ) -> Result<Recorded, QuotaError> {
        let recorded = self.tracker.record_call(service, count)?;
        self.run_due(recorded.sync_due, recorded.reload_due).await;
        Ok(recorded)
    }

    /// Admits `count` calls if they keep the service at or under its ceiling (one critical
    /// section, [`Tracker::admit`]), then awaits a due sync or reload. Bounded mode: a
    /// refusal for want of a lease awaits a block and decides again, once; a lease running
    /// low awaits the next block.
    pub async fn admit(&self, service: ServiceId, count: u64) -> Result<Admission, QuotaError> {
        let admission = self.admit_leasing(service, count).await?;
        self.run_due(admission.sync_due, admission.reload_due).await;
        Ok(admission)
    }

    /// [`AsyncSyncedTracker::admit`] without the sync or reload: for a task whose syncs run
    /// in a background task.
    pub async fn admit_leasing(
        &self,
        service: ServiceId,
        count: u64,
    ) -> Result<Admission, QuotaError> {
        let mut admission = self.tracker.admit(service, count)?;
        if admission.refusal == Some(Refusal::NoLease) {
            self.refill(service).await;
            admission = self.tracker.admit(service, count)?;
        }
        if admission.lease_due {
            self.refill(service).await;
        }
        Ok(admission)
    }

    /// Gives an admitted reservation back ([`Tracker::refund`]); the next sync carries it.
    pub fn refund(&self, reservation: Reservation) -> Result<Usage, QuotaError> {
        self.tracker.refund(reservation)
    }

    async fn run_due(&self, sync_due: bool, reload_due: bool) {
        if sync_due && let SyncReport::Failed(error) = self.sync().await {
            tracing::warn!(%error, "sync failed; deltas kept pending");
            return;
        }
        let reload_due = if sync_due {
            self.tracker.reload_due()
        } else {
            reload_due
        };
        if reload_due && let ReloadReport::Failed(error) = self.reload().await {
            tracing::warn!(%error, "reload failed; keeping the last known state");
        }
    }

    /// Writes pending deltas to the store now, unless a store operation is in flight.
    pub async fn sync(&self) -> SyncReport {
        let in_flight = match InFlight::start(&self.tracker) {
            Ok(in_flight) => in_flight,
            Err(report) => return report,
        };
        let result = self.store.apply_batch(in_flight.batch()).await;
        in_flight.end(result)
    }

    /// Re-reads today's item and the current windows' items, and merges them.
    pub async fn reload(&self) -> ReloadReport {
        let Ok(ticket) = self.tracker.begin_reload() else {
            return ReloadReport::InFlight;
        };
        let result = load(&self.store, &ticket).await;
        end_reload(&self.tracker, ticket, result)
    }

    /// Asks the store for the next block of `service`'s current window (bounded mode).
    pub async fn refill(&self, service: ServiceId) -> LeaseReport {
        let request = match self.tracker.begin_lease(service) {
            Ok(request) => request,
            Err(why) => return why,
        };
        let answer = self.store.grant_lease(&request).await;
        self.tracker
            .finish_lease(&request, answer.as_ref().copied())
    }

    /// Asks again for every grant of the current windows still in doubt
    /// ([`Tracker::begin_doubt_requests`]): what landed joins the lease, to be given back
    /// by a stop.
    /// After the first failure the rest are not sent: they stay in doubt.
    pub async fn settle_grants_in_doubt(&self) {
        let mut failed = None;
        for request in self.tracker.begin_doubt_requests() {
            let answer = match &failed {
                Some(error) => Err(StoreError::clone(error)),
                None => self.store.grant_lease(&request).await,
            };
            self.tracker
                .finish_lease(&request, answer.as_ref().copied());
            if let Err(error) = answer {
                failed = Some(error);
            }
        }
    }

    /// Settles the grants in doubt, gives every lease back and syncs (the instance is
    /// stopping); a sync in the default mode.
    pub async fn release_leases(&self) -> SyncReport {
        self.settle_grants_in_doubt().await;
        self.tracker.release_leases();
        self.sync().await
    }
}

/// What a reload needs: the day item, and the windows' items when there are any.
async fn load<S: AsyncStore>(
    store: &S,
    ticket: &ReloadTicket,
) -> Result<Option<StoredDay>, StoreError> {
    let day = store.load_day(ticket.day()).await?;
    if ticket.windows().is_empty() {
        return Ok(day);
    }
    let windows = store.load_windows(ticket.windows()).await?;
    let day = day.unwrap_or_else(|| StoredDay::new(ticket.day(), Default::default()));
    Ok(Some(day.with_windows(windows)))
}
