//! Where counters persist: the store trait and an in-memory store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::batch::{StoredDay, StoredWindow, SyncBatch, SyncOutcome, WindowKey};
use crate::day::UtcDay;
use crate::lease::LeaseRequest;
use crate::sync::{Backend, DefaultBackend, Lock, assert_cache_lock_not_held};

/// How a store operation failed, which decides what happens to the deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The operation did not happen (refused, unreachable before sending). Safe to retry.
    Unavailable,
    /// The request was sent but no answer came: the write may have landed.
    OutcomeUnknown,
    /// The store refused the request as invalid (missing table, bad credentials, validation).
    /// Retrying will not help until someone fixes the configuration.
    Rejected,
}

/// A failed store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store {operation} failed ({kind:?}): {message}")]
pub struct StoreError {
    /// What kind of failure.
    pub kind: StoreErrorKind,
    /// `load` or `apply`.
    pub operation: &'static str,
    /// What the store said.
    pub message: String,
}

impl StoreError {
    /// A failure of `operation` of the given kind.
    pub fn new(kind: StoreErrorKind, operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            operation,
            message: message.into(),
        }
    }

    /// What a sync that ended with this error means for its batch.
    pub fn sync_outcome(&self) -> SyncOutcome {
        match self.kind {
            StoreErrorKind::OutcomeUnknown => SyncOutcome::Unknown,
            StoreErrorKind::Unavailable | StoreErrorKind::Rejected => SyncOutcome::Failed,
        }
    }
}

/// A blocking store of per-day and per-window counters, shared by tracker instances.
///
/// Implementations add deltas (never overwrite counters: invariant 5), and should apply a
/// batch at most once per `(instance, seq)` so that retrying a write in doubt is safe. A
/// batch writes several items (each day's, each window's): if one may have landed and a
/// later one failed, the whole batch is in doubt ([`StoreErrorKind::OutcomeUnknown`]).
pub trait Store: Send + Sync {
    /// The counters of `day`, or `None` when no item exists yet.
    fn load_day(&self, day: UtcDay) -> Result<Option<StoredDay>, StoreError>;

    /// The counts of these windows; a window with no item yet is left out.
    fn load_windows(&self, windows: &[WindowKey]) -> Result<Vec<StoredWindow>, StoreError>;

    /// Adds the batch's deltas (and takes its lease returns back). Returns the counters of
    /// the batch's latest day after the write, with the windows it wrote, when the store
    /// can tell them without another read.
    fn apply_batch(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError>;

    /// Grants up to `request.want` calls of the request's window, never taking what the
    /// window has granted in all past `request.ceiling` (one conditional write: the bounded
    /// mode's guarantee rests on it). Returns the calls granted: fewer than asked when the
    /// ceiling is near, 0 when it is reached. A request repeating an `(instance, ticket)` it
    /// granted before must be answered with that earlier grant, not granted again: the
    /// tracker asks again with the ticket of a grant in doubt ([`crate::grant_ticket`]). A
    /// store may forget tickets it answered, if it then refuses (answers 0) every ticket of
    /// the instance at or under them, for none may be granted twice: the tracker never asks
    /// again with a ticket that was answered. A store without leases refuses.
    fn grant_lease(&self, request: &LeaseRequest) -> Result<u64, StoreError> {
        Err(StoreError::new(
            StoreErrorKind::Rejected,
            "grant",
            format!(
                "this store does not grant leases (asked for {} of {})",
                request.want, request.key.service
            ),
        ))
    }
}

impl<S: Store + ?Sized> Store for Arc<S> {
    fn load_day(&self, day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        (**self).load_day(day)
    }
    fn load_windows(&self, windows: &[WindowKey]) -> Result<Vec<StoredWindow>, StoreError> {
        (**self).load_windows(windows)
    }
    fn apply_batch(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        (**self).apply_batch(batch)
    }
    fn grant_lease(&self, request: &LeaseRequest) -> Result<u64, StoreError> {
        (**self).grant_lease(request)
    }
}

/// Failures a [`MemoryStore`] injects, counted down one per operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// The next N writes fail without applying.
    pub fail_writes: u32,
    /// The next N writes apply, then report [`StoreErrorKind::OutcomeUnknown`].
    pub lose_acks: u32,
    /// The next N reads fail.
    pub fail_reads: u32,
    /// The next N lease grants fail without granting.
    pub fail_grants: u32,
    /// The next N lease grants are granted, then report [`StoreErrorKind::OutcomeUnknown`].
    pub lose_grant_acks: u32,
}

/// Counts an armed fault down: whether it was armed (and so fires now).
fn armed(fault: &mut u32) -> bool {
    let fires = *fault > 0;
    *fault = fault.saturating_sub(1);
    fires
}

#[derive(Debug, Default)]
struct MemoryData {
    days: BTreeMap<UtcDay, BTreeMap<String, u64>>,
    totals: BTreeMap<UtcDay, u64>,
    windows: HashMap<WindowKey, u64>,
    /// Calls granted per window by leases, minus calls returned.
    granted: HashMap<WindowKey, u64>,
    /// What each `(window, instance, ticket)` was granted: a repeat is answered with it.
    tickets: HashMap<(WindowKey, Arc<str>, u64), u64>,
    grants: u64,
    /// Highest batch sequence applied per instance: a retry at or below it is a duplicate.
    applied: HashMap<Arc<str>, u64>,
    faults: Faults,
    /// Writes in progress per instance, where the build checks invariants (see `sync`).
    in_flight: HashMap<Arc<str>, u32>,
    writes: u64,
    reads: u64,
    duplicates: u64,
}

impl MemoryData {
    /// Counts a read, failing it when a read failure is armed.
    fn read(&mut self) -> Result<(), StoreError> {
        self.reads += 1;
        if armed(&mut self.faults.fail_reads) {
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "load",
                "injected read failure",
            ));
        }
        Ok(())
    }
}

/// An in-memory [`Store`] that deduplicates retried batches and can inject faults.
///
/// It locks with the same backend as the tracker (so it runs under loom and shuttle), and
/// asserts on every call that the caller does not hold a cache lock.
pub struct MemoryStore<B: Backend = DefaultBackend> {
    data: B::Mutex<MemoryData>,
}

impl<B: Backend> Default for MemoryStore<B> {
    fn default() -> Self {
        Self {
            data: B::Mutex::new(MemoryData::default()),
        }
    }
}

impl MemoryStore {
    /// An empty store on the default backend; `MemoryStore::<B>::default()` for another.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<B: Backend> MemoryStore<B> {
    /// Replaces the faults to inject from now on.
    pub fn inject(&self, faults: Faults) {
        self.data.lock().faults = faults;
    }

    /// The stored counters of `day`, by service (empty when there is no item).
    pub fn counters(&self, day: UtcDay) -> BTreeMap<String, u64> {
        self.data.lock().days.get(&day).cloned().unwrap_or_default()
    }

    /// The stored count of `service` in `window` (0 when there is no item).
    pub fn window(&self, service: &str, window: crate::window::Window) -> u64 {
        let key = WindowKey {
            service: service.to_owned(),
            window,
        };
        self.data.lock().windows.get(&key).copied().unwrap_or(0)
    }

    /// The stored `total_api_calls_today` of `day`.
    pub fn total(&self, day: UtcDay) -> u64 {
        self.data.lock().totals.get(&day).copied().unwrap_or(0)
    }

    /// Calls of `service` in `window` granted by leases and not returned.
    pub fn granted(&self, service: &str, window: crate::window::Window) -> u64 {
        let key = WindowKey {
            service: service.to_owned(),
            window,
        };
        self.data.lock().granted.get(&key).copied().unwrap_or(0)
    }

    /// Lease grants decided (refused ones included; failed ones and repeats of a ticket not).
    pub fn grants(&self) -> u64 {
        self.data.lock().grants
    }

    /// Writes that changed the store.
    pub fn writes(&self) -> u64 {
        self.data.lock().writes
    }

    /// Reads served (failed ones included).
    pub fn reads(&self) -> u64 {
        self.data.lock().reads
    }

    /// Retried batches recognised as already applied and skipped.
    pub fn duplicates(&self) -> u64 {
        self.data.lock().duplicates
    }
}

impl<B: Backend> Store for MemoryStore<B> {
    fn load_day(&self, day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        assert_cache_lock_not_held::<B>("MemoryStore::load_day");
        let mut data = self.data.lock();
        data.read()?;
        let total = data.totals.get(&day).copied().unwrap_or(0);
        Ok(data
            .days
            .get(&day)
            .map(|used| StoredDay::new(day, used.clone()).with_total(total)))
    }

    fn load_windows(&self, windows: &[WindowKey]) -> Result<Vec<StoredWindow>, StoreError> {
        assert_cache_lock_not_held::<B>("MemoryStore::load_windows");
        let mut data = self.data.lock();
        data.read()?;
        Ok(windows
            .iter()
            .filter_map(|key| {
                let used = *data.windows.get(key)?;
                Some(StoredWindow {
                    key: key.clone(),
                    used,
                })
            })
            .collect())
    }

    fn apply_batch(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        assert_cache_lock_not_held::<B>("MemoryStore::apply_batch");
        // Where invariants are checked, a write is three steps (enter, apply, leave), so a
        // model checker can interleave a second write of the same instance and see it.
        let checking = B::cache_locks_held().is_some();
        if checking {
            self.enter_write(&batch.instance);
        }
        let result = self.apply_now(batch);
        if checking && let Some(n) = self.data.lock().in_flight.get_mut(&batch.instance) {
            *n = n.saturating_sub(1);
        }
        result
    }

    fn grant_lease(&self, request: &LeaseRequest) -> Result<u64, StoreError> {
        assert_cache_lock_not_held::<B>("MemoryStore::grant_lease");
        let mut data = self.data.lock();
        if armed(&mut data.faults.fail_grants) {
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "grant",
                "injected grant failure",
            ));
        }
        let ticket = (
            request.key.clone(),
            Arc::clone(&request.instance),
            request.ticket,
        );
        let grant = match data.tickets.get(&ticket) {
            // Asked again after an answer was lost: what that ticket got, once.
            Some(&grant) => grant,
            None => {
                data.grants += 1;
                let granted = data.granted.entry(request.key.clone()).or_default();
                // The conditional write: never past the ceiling.
                let grant = request.want.min(request.ceiling.saturating_sub(*granted));
                *granted += grant;
                data.tickets.insert(ticket, grant);
                grant
            }
        };
        if armed(&mut data.faults.lose_grant_acks) {
            return Err(StoreError::new(
                StoreErrorKind::OutcomeUnknown,
                "grant",
                "injected: the grant landed, its answer was lost",
            ));
        }
        Ok(grant)
    }
}

impl<B: Backend> MemoryStore<B> {
    fn enter_write(&self, instance: &Arc<str>) {
        let mut data = self.data.lock();
        let n = data.in_flight.entry(Arc::clone(instance)).or_default();
        *n += 1;
        if *n > 1 {
            panic!(
                "invariant violated: at most one sync in flight per instance \
                 ({n} writes of instance {instance} at once)"
            );
        }
    }

    fn apply_now(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        let mut data = self.data.lock();
        if armed(&mut data.faults.fail_writes) {
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "apply",
                "injected write failure",
            ));
        }
        let last_applied = data.applied.get(&batch.instance).copied().unwrap_or(0);
        if batch.seq > last_applied
            && let Some(negative) = below_zero(&data, batch)
        {
            // A refund larger than what the store holds: a refund applied twice, or a delta
            // lost before it. Where invariants are checked that is a bug to report loudly.
            assert!(
                B::cache_locks_held().is_none(),
                "invariant violated: batch {} of {} would take {negative} below zero",
                batch.seq,
                batch.instance
            );
            return Err(StoreError::new(
                StoreErrorKind::Rejected,
                "apply",
                format!("the batch would take {negative} below zero"),
            ));
        }
        if batch.seq <= last_applied {
            data.duplicates += 1;
        } else {
            for (day, service, delta) in batch.named_deltas() {
                let counter = data
                    .days
                    .entry(day)
                    .or_default()
                    .entry(service.to_owned())
                    .or_default();
                *counter = counter.saturating_add_signed(delta); // checked by below_zero
                let total = data.totals.entry(day).or_default();
                *total = total.saturating_add_signed(delta);
            }
            for (service, window, delta) in batch.named_windows() {
                let key = WindowKey {
                    service: service.to_owned(),
                    window,
                };
                let counter = data.windows.entry(key).or_default();
                *counter = counter.saturating_add_signed(delta);
            }
            for (service, window, count) in batch.named_returns() {
                let key = WindowKey {
                    service: service.to_owned(),
                    window,
                };
                let granted = data.granted.entry(key).or_default();
                // Where invariants are checked, a return of calls never granted is a bug.
                assert!(
                    *granted >= count || B::cache_locks_held().is_none(),
                    "invariant violated: batch {} of {} returns {count} calls of {service} \
                     in {window}, of {granted} granted",
                    batch.seq,
                    batch.instance
                );
                *granted = granted.saturating_sub(count);
            }
            data.applied.insert(Arc::clone(&batch.instance), batch.seq);
            data.writes += 1;
        }
        if armed(&mut data.faults.lose_acks) {
            return Err(StoreError::new(
                StoreErrorKind::OutcomeUnknown,
                "apply",
                "injected lost acknowledgement (the write landed)",
            ));
        }
        let windows = written_windows(&data, batch);
        let fresh = batch.days.last().map(|latest| {
            StoredDay::new(
                latest.day,
                data.days.get(&latest.day).cloned().unwrap_or_default(),
            )
            .with_windows(windows)
        });
        Ok(fresh)
    }
}

/// The counts, after a write, of the windows `batch` wrote.
fn written_windows(data: &MemoryData, batch: &SyncBatch) -> Vec<StoredWindow> {
    batch
        .named_windows()
        .map(|(service, window, _)| {
            let key = WindowKey {
                service: service.to_owned(),
                window,
            };
            let used = data.windows.get(&key).copied().unwrap_or(0);
            StoredWindow { key, used }
        })
        .collect()
}

/// The first counter `batch` would take below zero (`day`/`window` and service), if any.
fn below_zero(data: &MemoryData, batch: &SyncBatch) -> Option<String> {
    for (day, service, delta) in batch.named_deltas() {
        let held = data.days.get(&day).and_then(|d| d.get(service)).copied();
        if held.unwrap_or(0).checked_add_signed(delta).is_none() {
            return Some(format!("{service} on {day}"));
        }
    }
    for (service, window, delta) in batch.named_windows() {
        let key = WindowKey {
            service: service.to_owned(),
            window,
        };
        let held = data.windows.get(&key).copied().unwrap_or(0);
        if held.checked_add_signed(delta).is_none() {
            return Some(format!("{service} in {window}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "at most one sync in flight per instance (2 writes of instance a")]
    fn a_second_write_of_an_instance_while_one_is_in_flight_is_caught() {
        let store = MemoryStore::new();
        let (a, b) = (Arc::from("a"), Arc::from("b"));
        store.enter_write(&a);
        store.enter_write(&b); // another instance's write may overlap
        store.enter_write(&a);
    }

    #[test]
    fn writes_one_after_the_other_are_not_overlaps() {
        let store = MemoryStore::new();
        let a: Arc<str> = Arc::from("a");
        let config = Arc::new(crate::config::QuotaConfig::default());
        for seq in 1..=3 {
            let batch = SyncBatch {
                instance: Arc::clone(&a),
                seq,
                config: Arc::clone(&config),
                days: vec![],
                windows: vec![],
                returns: vec![],
            };
            store.apply_batch(&batch).expect("applied");
        }
        store.enter_write(&a);
    }
}
