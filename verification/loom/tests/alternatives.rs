//! The seed note's rejected alternatives, each modelled small and judged by loom.
//!
//! These are stand-alone implementations of two services and a total (not the core): each
//! is the simplest honest version of the idea, checked for the two things the tracker needs,
//! counts that lose nothing and a consistent view of all counters at once (the total must
//! equal the sum, thresholds and the forced sync read several fields). The verdicts are in
//! ARCHITECTURE.md.
#![cfg(loom)]

use std::sync::Arc;

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::{Mutex, RwLock};
use quota_loom::{Bound, Kind, Model, Reason, event, expect_caught, prove, trace};

fn model(alternative: &str, aspect: &str) -> Model {
    Model::of(
        Kind::Alternative,
        &format!("alternative/{alternative}/{aspect}"),
        alternative,
        Bound::Exhaustive,
    )
}

/// The operations every alternative offers: record on service 0 or 1, read everything.
trait Counters: Send + Sync + 'static {
    fn new() -> Self;
    fn record(&self, service: usize);
    /// (service 0, service 1, total), however the alternative reads them.
    fn read(&self) -> (u64, u64, u64);
}

/// Two recorders (on `services`) run; then the counts must be exact.
fn counts_exact<C: Counters>(services: [usize; 2]) -> impl Fn() + Sync + Send + 'static {
    move || {
        let counters = Arc::new(C::new());
        let handles: Vec<_> = services
            .iter()
            .enumerate()
            .map(|(i, &service)| {
                let counters = Arc::clone(&counters);
                trace::spawn(&format!("T{}", i + 1), move || {
                    counters.record(service);
                    event!("recorded service {service}");
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("recorder finished");
        }
        let (a, b, total) = counters.read();
        let expected = |s| services.iter().filter(|x| **x == s).count() as u64;
        if (a, b, total) != (expected(0), expected(1), 2) {
            panic!("lost update: read ({a}, {b}, total {total}) after recording on {services:?}");
        }
    }
}

/// Two recorders on different services and a reader: whatever it reads must be a state that
/// existed, so the total equals the sum of the services.
fn snapshot_consistent<C: Counters>() -> impl Fn() + Sync + Send + 'static {
    move || {
        let counters = Arc::new(C::new());
        let recorders: Vec<_> = [0, 1]
            .into_iter()
            .map(|service| {
                let counters = Arc::clone(&counters);
                trace::spawn(&format!("T{}", service + 1), move || {
                    counters.record(service);
                    event!("recorded service {service}");
                })
            })
            .collect();
        let reader = {
            let counters = Arc::clone(&counters);
            trace::spawn("R", move || {
                let (a, b, total) = counters.read();
                event!("reads ({a}, {b}, total {total})");
                if a + b != total {
                    panic!("torn snapshot: services {a} + {b} != total {total}");
                }
            })
        };
        for handle in recorders {
            handle.join().expect("recorder finished");
        }
        reader.join().expect("reader finished");
    }
}

// --- per-service locks -----------------------------------------------------------------

struct PerServiceLocks {
    used: [Mutex<u64>; 2],
    total: Mutex<u64>,
}

impl Counters for PerServiceLocks {
    fn new() -> Self {
        Self {
            used: [Mutex::new(0), Mutex::new(0)],
            total: Mutex::new(0),
        }
    }
    fn record(&self, service: usize) {
        *self.used[service].lock().expect("not poisoned") += 1;
        *self.total.lock().expect("not poisoned") += 1;
    }
    fn read(&self) -> (u64, u64, u64) {
        let a = *self.used[0].lock().expect("not poisoned");
        let b = *self.used[1].lock().expect("not poisoned");
        let total = *self.total.lock().expect("not poisoned");
        (a, b, total)
    }
}

#[test]
fn per_service_locks_count_exactly() {
    prove(
        model("per-service-locks", "counts"),
        counts_exact::<PerServiceLocks>([0, 1]),
    );
    prove(
        model("per-service-locks", "counts-same-service"),
        counts_exact::<PerServiceLocks>([0, 0]),
    );
}

#[test]
fn per_service_locks_tear_a_whole_tracker_read() {
    expect_caught(
        model("per-service-locks", "snapshot"),
        Reason::TornSnapshot,
        snapshot_consistent::<PerServiceLocks>(),
    );
}

// --- RwLock ------------------------------------------------------------------------------

struct Counts {
    used: [u64; 2],
    total: u64,
}

const ZERO: Counts = Counts {
    used: [0, 0],
    total: 0,
};

/// The whole read-modify-write under the write lock; reads under the read lock.
struct RwLockWrite(RwLock<Counts>);

impl Counters for RwLockWrite {
    fn new() -> Self {
        Self(RwLock::new(ZERO))
    }
    fn record(&self, service: usize) {
        let mut counts = self.0.write().expect("not poisoned");
        counts.used[service] += 1;
        counts.total += 1;
    }
    fn read(&self) -> (u64, u64, u64) {
        let counts = self.0.read().expect("not poisoned");
        (counts.used[0], counts.used[1], counts.total)
    }
}

/// The tempting shape: read under the read lock, write under the write lock.
struct RwLockUpgrade(RwLock<Counts>);

impl Counters for RwLockUpgrade {
    fn new() -> Self {
        Self(RwLock::new(ZERO))
    }
    fn record(&self, service: usize) {
        let (mut used, total) = {
            let counts = self.0.read().expect("not poisoned");
            event!("read lock: reads {:?}, total {}", counts.used, counts.total);
            (counts.used, counts.total)
        };
        used[service] += 1;
        let mut counts = self.0.write().expect("not poisoned");
        event!("write lock: writes {used:?}, total {}", total + 1);
        counts.used = used;
        counts.total = total + 1;
    }
    fn read(&self) -> (u64, u64, u64) {
        let counts = self.0.read().expect("not poisoned");
        (counts.used[0], counts.used[1], counts.total)
    }
}

#[test]
fn rwlock_with_the_write_lock_over_the_rmw_is_correct() {
    prove(
        model("rwlock", "counts"),
        counts_exact::<RwLockWrite>([0, 1]),
    );
    prove(
        model("rwlock", "snapshot"),
        snapshot_consistent::<RwLockWrite>(),
    );
}

#[test]
fn rwlock_read_then_write_loses_updates() {
    expect_caught(
        model("rwlock-read-then-write", "counts"),
        Reason::LostUpdate,
        counts_exact::<RwLockUpgrade>([0, 1]),
    );
}

// --- lock-free atomics -------------------------------------------------------------------

struct Atomics {
    used: [AtomicU64; 2],
    total: AtomicU64,
}

impl Counters for Atomics {
    fn new() -> Self {
        Self {
            used: [AtomicU64::new(0), AtomicU64::new(0)],
            total: AtomicU64::new(0),
        }
    }
    fn record(&self, service: usize) {
        self.used[service].fetch_add(1, Ordering::SeqCst);
        self.total.fetch_add(1, Ordering::SeqCst);
    }
    fn read(&self) -> (u64, u64, u64) {
        let a = self.used[0].load(Ordering::SeqCst);
        let b = self.used[1].load(Ordering::SeqCst);
        (a, b, self.total.load(Ordering::SeqCst))
    }
}

#[test]
fn atomic_counters_count_exactly() {
    prove(model("atomics", "counts"), counts_exact::<Atomics>([0, 1]));
    prove(
        model("atomics", "counts-same-service"),
        counts_exact::<Atomics>([0, 0]),
    );
}

#[test]
fn atomic_pending_drained_by_swap_conserves_calls() {
    prove(model("atomics", "pending-swap"), || {
        let pending = Arc::new(AtomicU64::new(0));
        let store = Arc::new(AtomicU64::new(0));
        let recorder = {
            let pending = Arc::clone(&pending);
            trace::spawn("T1", move || {
                for _ in 0..2 {
                    pending.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let syncer = {
            let (pending, store) = (Arc::clone(&pending), Arc::clone(&store));
            trace::spawn("S1", move || {
                let batch = pending.swap(0, Ordering::SeqCst);
                store.fetch_add(batch, Ordering::SeqCst);
            })
        };
        recorder.join().expect("recorder finished");
        syncer.join().expect("syncer finished");
        let held = store.load(Ordering::SeqCst) + pending.load(Ordering::SeqCst);
        if held != 2 {
            panic!("conservation violated (lost): store + pending = {held}, recorded 2");
        }
    });
}

#[test]
fn atomic_counters_tear_a_whole_tracker_read() {
    expect_caught(
        model("atomics", "snapshot"),
        Reason::TornSnapshot,
        snapshot_consistent::<Atomics>(),
    );
}

// --- copy-on-write -----------------------------------------------------------------------

/// The current version behind a pointer; swapping the pointer is atomic (a mutex stands in
/// for an atomic pointer, which would need unsafe code here).
struct CopyOnWrite {
    current: Mutex<Arc<Counts>>,
    compare_and_swap: bool,
}

impl CopyOnWrite {
    fn load(&self) -> Arc<Counts> {
        Arc::clone(&self.current.lock().expect("not poisoned"))
    }
}

impl Counters for CopyOnWrite {
    fn new() -> Self {
        Self {
            current: Mutex::new(Arc::new(ZERO)),
            compare_and_swap: false,
        }
    }
    fn record(&self, service: usize) {
        loop {
            let seen = self.load();
            let mut used = seen.used;
            used[service] += 1;
            let next = Arc::new(Counts {
                used,
                total: seen.total + 1,
            });
            event!("copied version {:?}, total {}", seen.used, seen.total);
            let mut current = self.current.lock().expect("not poisoned");
            if !self.compare_and_swap || Arc::ptr_eq(&current, &seen) {
                event!("publishes {:?}, total {}", next.used, next.total);
                *current = next;
                return;
            }
            event!("a newer version was published: retries");
            // Someone published a newer version since we read: start again from it.
        }
    }
    fn read(&self) -> (u64, u64, u64) {
        let counts = self.load();
        (counts.used[0], counts.used[1], counts.total)
    }
}

/// Copy-on-write with a compare-and-swap retry loop.
struct CopyOnWriteCas(CopyOnWrite);

impl Counters for CopyOnWriteCas {
    fn new() -> Self {
        Self(CopyOnWrite {
            compare_and_swap: true,
            ..CopyOnWrite::new()
        })
    }
    fn record(&self, service: usize) {
        self.0.record(service);
    }
    fn read(&self) -> (u64, u64, u64) {
        self.0.read()
    }
}

#[test]
fn copy_on_write_without_compare_and_swap_loses_updates() {
    expect_caught(
        model("copy-on-write", "counts"),
        Reason::LostUpdate,
        counts_exact::<CopyOnWrite>([0, 1]),
    );
}

#[test]
fn copy_on_write_with_compare_and_swap_is_correct() {
    prove(
        model("copy-on-write-cas", "counts"),
        counts_exact::<CopyOnWriteCas>([0, 1]),
    );
    prove(
        model("copy-on-write-cas", "snapshot"),
        snapshot_consistent::<CopyOnWriteCas>(),
    );
}
