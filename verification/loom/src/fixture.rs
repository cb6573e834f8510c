//! Trackers, stores and invariant checks the models share.
//!
//! The tracker is the real core on the loom backend; the store is `MemoryStore` on the same
//! backend (the one fake: loom cannot run I/O). The [`Ledger`] counts what the model's threads
//! recorded, in std atomics that loom does not see: it is the model's bookkeeping, read only
//! after the threads are joined.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use loom::sync::atomic::AtomicBool;
use quota_tracker::sync::LoomBackend;
use quota_tracker::zoo::Variant;
use quota_tracker::{
    DayDeltas, Faults, ManualClock, MemoryStore, QuotaConfig, SyncReport, SyncedTracker, Timestamp,
    Tracker, TrackerOptions, UtcDay,
};

use crate::event;
use crate::trace::{Role, run_concurrently};

/// The core tracker on loom's mutex.
pub type LoomTracker = Tracker<LoomBackend>;
/// The in-memory store on loom's mutex.
pub type LoomStore = MemoryStore<LoomBackend>;
/// A tracker wired to the shared in-memory store.
pub type LoomSynced = SyncedTracker<Arc<LoomStore>, LoomBackend>;

/// The services of the default configuration, in order.
pub const SERVICES: [&str; 3] = ["tiingo", "finnhub", "sendgrid"];

/// The day every model runs on (noon, so no model crosses midnight by accident).
pub fn day() -> UtcDay {
    UtcDay::from_ymd(2026, 11, 29).unwrap_or_else(|| UtcDay::from_days_since_epoch(0))
}

/// A tracker named `instance`. Syncs and reloads never fall due by themselves (the clock
/// stands still): the models call them explicitly, so loom explores where they interleave.
pub fn tracker(instance: &str) -> LoomTracker {
    tracker_with(instance, i64::MAX)
}

/// A tracker whose syncs fall due every `sync_interval_ms` (0: after every call).
pub fn tracker_with(instance: &str, sync_interval_ms: i64) -> LoomTracker {
    let noon = Timestamp(day().start().0 + 12 * 3_600_000);
    let options = TrackerOptions {
        instance: instance.into(),
        sync_interval_ms,
        reload_interval_ms: i64::MAX,
    };
    Tracker::new_in(
        QuotaConfig::default(),
        Arc::new(ManualClock::new(noon)),
        options,
    )
}

/// A tracker named `instance` wired to `store`.
pub fn synced(instance: &str, store: &Arc<LoomStore>) -> Arc<LoomSynced> {
    Arc::new(SyncedTracker::new(tracker(instance), Arc::clone(store)))
}

/// A fresh shared store.
pub fn store() -> Arc<LoomStore> {
    Arc::new(MemoryStore::default())
}

/// Calls recorded per service by the model's threads.
#[derive(Debug, Default)]
pub struct Ledger {
    recorded: [AtomicU64; 3],
}

impl Ledger {
    /// Notes `count` calls recorded on service `index`.
    pub fn add(&self, index: usize, count: u64) {
        self.recorded[index].fetch_add(count, Ordering::Relaxed);
    }

    /// Notes `count` calls of service `index` given back (refunded).
    pub fn remove(&self, index: usize, count: u64) {
        self.recorded[index].fetch_sub(count, Ordering::Relaxed);
    }

    /// Calls recorded on service `index`.
    pub fn get(&self, index: usize) -> u64 {
        self.recorded[index].load(Ordering::Relaxed)
    }
}

/// The position of `service` in [`SERVICES`].
pub fn index(service: &str) -> usize {
    SERVICES
        .iter()
        .position(|s| *s == service)
        .unwrap_or_else(|| panic!("model bug: unknown service {service}"))
}

/// Records one call on `service` the way `variant` does, and notes it in the ledger.
pub fn record(tracker: &LoomTracker, variant: Variant, service: &str, ledger: &Ledger) {
    record_with(tracker, service, ledger, |id| {
        tracker.record_call_as(variant, id, 1)
    });
}

/// Records one call on an instance: through the store for [`Variant::DoubleCountOnMiss`]
/// (whose bug is in that path), on the core tracker otherwise, so recording alone never
/// starts a store operation the model did not ask for.
pub fn record_synced(synced: &LoomSynced, variant: Variant, service: &str, ledger: &Ledger) {
    if variant != Variant::DoubleCountOnMiss {
        return record(synced.tracker(), variant, service, ledger);
    }
    record_with(synced.tracker(), service, ledger, |id| {
        synced.record_call_as(variant, id, 1)
    });
}

/// Resolves `service`, records through `call`, logs both ends and notes the call.
fn record_with(
    tracker: &LoomTracker,
    service: &str,
    ledger: &Ledger,
    call: impl FnOnce(
        quota_tracker::ServiceId,
    ) -> Result<quota_tracker::Recorded, quota_tracker::QuotaError>,
) {
    let id = tracker
        .service(service)
        .unwrap_or_else(|e| panic!("model bug: {e}"));
    event!("record_call({service})");
    match call(id) {
        Ok(recorded) => {
            ledger.add(index(service), 1);
            event!(
                "record_call({service}) returns used={}",
                recorded.usage.used()
            );
        }
        Err(e) => panic!("record_call({service}) refused a valid call: {e}"),
    }
}

/// Every counter equals the calls recorded on it (invariant 1), and the total their sum.
pub fn check_no_lost_update(tracker: &LoomTracker, ledger: &Ledger) {
    let state = tracker.state();
    let mut recorded_total = 0;
    for (i, service) in SERVICES.iter().enumerate() {
        let id = tracker
            .service(service)
            .unwrap_or_else(|e| panic!("model bug: {e}"));
        let used = state.usage(id).map_or(0, |u| u.used());
        let recorded = ledger.get(i);
        recorded_total += recorded;
        if used != recorded {
            panic!("lost update: {service}.used={used} after {recorded} calls recorded");
        }
    }
    let total = state.total_api_calls_today();
    if total != recorded_total {
        panic!("lost update: total_api_calls_today={total} after {recorded_total} calls recorded");
    }
}

/// Store + unsynced deltas of every instance == calls recorded, per service and in
/// `total_api_calls_today` (invariant 4). Call it at a quiet point: no batch in flight.
pub fn check_conservation(store: &LoomStore, instances: &[&LoomSynced], ledger: &Ledger) {
    check_services(store, instances, ledger);
    let unsynced: i64 = instances
        .iter()
        .flat_map(|t| t.tracker().unsynced())
        .filter(|d: &DayDeltas| d.day == day())
        .map(|d| d.total())
        .sum();
    let recorded: i128 = (0..SERVICES.len()).map(|i| i128::from(ledger.get(i))).sum();
    let held = i128::from(store.total(day())) + i128::from(unsynced);
    if held != recorded {
        let way = if held < recorded { "lost" } else { "doubled" };
        panic!(
            "conservation violated ({way}): total_api_calls_today: store {} + unsynced \
             {unsynced} = {held}, but {recorded} calls were recorded",
            store.total(day())
        );
    }
}

/// The per-service half of [`check_conservation`].
fn check_services(store: &LoomStore, instances: &[&LoomSynced], ledger: &Ledger) {
    for (i, service) in SERVICES.iter().enumerate() {
        let stored = store.counters(day()).get(*service).copied().unwrap_or(0);
        // Signed: refunds of calls already synced are negative deltas.
        let unsynced: i64 = instances
            .iter()
            .flat_map(|t| t.tracker().unsynced())
            .filter(|d: &DayDeltas| d.day == day())
            .map(|d| d.deltas[i])
            .sum();
        let recorded = i128::from(ledger.get(i));
        let held = i128::from(stored) + i128::from(unsynced);
        if held < recorded {
            panic!(
                "conservation violated (lost): {service}: store {stored} + unsynced {unsynced} \
                 = {held}, but {recorded} calls were recorded ({} lost)",
                recorded - held
            );
        }
        if held > recorded {
            panic!(
                "conservation violated (doubled): {service}: store {stored} + unsynced {unsynced} \
                 = {held}, but only {recorded} calls were recorded ({} counted twice)",
                held - recorded
            );
        }
    }
}

/// Syncs like `variant`, logging what happened, and checks that the store did not go back.
pub fn sync(synced: &LoomSynced, variant: Variant) -> SyncReport {
    let before = synced.store().counters(day());
    event!("sync");
    let report = synced.sync_as(variant);
    match &report {
        SyncReport::Applied { seq, calls } => event!("sync: batch {seq} of {calls} calls applied"),
        SyncReport::Failed(e) => event!("sync: failed: {}", e.message),
        SyncReport::InFlight => event!("sync: another sync in flight, returns at once"),
        SyncReport::NothingPending => event!("sync: nothing pending"),
    }
    let after = synced.store().counters(day());
    for (service, old) in &before {
        let new = after.get(service).copied().unwrap_or(0);
        if new < *old {
            panic!("store went backwards: {service} from {old} to {new}");
        }
    }
    report
}

/// Disarms faults and syncs until nothing is pending (a quiet point with nothing in doubt).
/// Not through [`sync`]: a flush may carry refunds, and the store goes down by them.
pub fn flush(store: &LoomStore, instance: &LoomSynced) {
    store.inject(Faults::default());
    for _ in 0..4 {
        event!("flush: sync");
        let report = instance.sync();
        event!("flush: {report:?}");
        if let SyncReport::NothingPending = report {
            return;
        }
    }
    panic!("flush: still pending after 4 syncs with a healthy store");
}

/// The role "F", which makes the store fail from some point on; where that point falls
/// relative to the other roles is up to loom, so both outcomes of each store call get
/// explored.
pub fn injection(store: &Arc<LoomStore>, faults: Faults) -> Role {
    let store = Arc::clone(store);
    (
        "F".to_owned(),
        Box::new(move || {
            store.inject(faults);
            event!("store faults armed: {faults:?}");
        }),
    )
}

/// A one-shot signal between model threads (a loom atomic, so loom explores both sides).
#[derive(Debug, Default)]
pub struct Signal(AtomicBool);

impl Signal {
    /// Raises the signal.
    pub fn raise(&self) {
        self.0.store(true, loom::sync::atomic::Ordering::SeqCst);
    }

    /// Waits (yielding to loom) until the signal is raised.
    pub fn wait(&self) {
        while !self.0.load(loom::sync::atomic::Ordering::SeqCst) {
            loom::thread::yield_now();
        }
    }
}

/// Threads named T1.. each record `calls` calls on their service with `variant`'s
/// read-modify-write; then every counter must equal what was recorded (invariant 1).
pub fn rmw_model(
    variant: Variant,
    threads: &'static [(&'static str, usize)],
) -> impl Fn() + Sync + Send + 'static {
    move || {
        let tracker = Arc::new(tracker("a"));
        let ledger = Arc::new(Ledger::default());
        let handles: Vec<_> = threads
            .iter()
            .enumerate()
            .map(|(i, &(service, calls))| {
                let (tracker, ledger) = (Arc::clone(&tracker), Arc::clone(&ledger));
                crate::trace::spawn(&format!("T{}", i + 1), move || {
                    for _ in 0..calls {
                        record(&tracker, variant, service, &ledger);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("recorder finished");
        }
        check_no_lost_update(&tracker, &ledger);
    }
}

/// Recorders, syncers, reloaders and a fault injector on one instance and one store.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The variant whose record, sync and reload paths run.
    pub variant: Variant,
    /// One recorder thread per entry: (service, calls).
    pub recorders: &'static [(&'static str, usize)],
    /// Syncer threads.
    pub syncers: usize,
    /// Syncs per syncer thread.
    pub syncs_each: usize,
    /// Reloader threads (one reload each).
    pub reloaders: usize,
    /// Faults armed by a separate thread at a point loom chooses.
    pub faults: Option<Faults>,
    /// After the threads: disarm faults and sync (the fixed way) until nothing is pending,
    /// so a batch left in doubt is resolved before conservation is checked.
    pub flush: bool,
}

impl Scenario {
    /// A scenario of `variant` with the given recorders and nothing else.
    pub const fn new(variant: Variant, recorders: &'static [(&'static str, usize)]) -> Self {
        Self {
            variant,
            recorders,
            syncers: 0,
            syncs_each: 1,
            reloaders: 0,
            faults: None,
            flush: false,
        }
    }

    /// The model: run every thread, join, then check conservation at the quiet point.
    pub fn model(self) -> impl Fn() + Sync + Send + 'static {
        move || {
            let store = store();
            let instance = synced("a", &store);
            let ledger = Arc::new(Ledger::default());
            let mut roles: Vec<Role> = Vec::new();
            for (i, &(service, calls)) in self.recorders.iter().enumerate() {
                let (instance, ledger) = (Arc::clone(&instance), Arc::clone(&ledger));
                roles.push((
                    format!("T{}", i + 1),
                    Box::new(move || {
                        for _ in 0..calls {
                            record_synced(&instance, self.variant, service, &ledger);
                        }
                    }),
                ));
            }
            for i in 0..self.syncers {
                let instance = Arc::clone(&instance);
                roles.push((
                    format!("S{}", i + 1),
                    Box::new(move || {
                        for _ in 0..self.syncs_each {
                            sync(&instance, self.variant);
                        }
                    }),
                ));
            }
            for i in 0..self.reloaders {
                let instance = Arc::clone(&instance);
                roles.push((
                    format!("R{}", i + 1),
                    Box::new(move || {
                        event!("reload");
                        let report = instance.reload_as(self.variant);
                        event!("reload: {report:?}");
                    }),
                ));
            }
            if let Some(faults) = self.faults {
                roles.push(injection(&store, faults));
            }
            run_concurrently(roles);
            if self.flush {
                flush(&store, &instance);
            }
            check_conservation(&store, &[&instance], &ledger);
        }
    }
}
