//! `record_call` latency while a slow sync is in flight: the lock must not be held over I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use quota_tracker::zoo::Variant;
use quota_tracker::{
    Clock, MemoryStore, QuotaConfig, Store, StoreError, StoredDay, SyncBatch, SyncedTracker,
    TickingClock, Tracker, TrackerOptions, UtcDay,
};

use crate::stats::{human, percentiles};

/// A store whose every write takes `delay` (a slow network), then lands in memory.
struct SlowStore {
    inner: MemoryStore,
    delay: Duration,
}

impl Store for SlowStore {
    fn load_day(&self, day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        self.inner.load_day(day)
    }
    fn apply_batch(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        std::thread::sleep(self.delay);
        self.inner.apply_batch(batch)
    }
}

/// Runs one scenario, prints its row, returns its p50 (ns).
fn scenario(name: &str, syncer: Option<Variant>, duration: Duration, delay: Duration) -> u64 {
    let clock: Arc<dyn Clock> = TickingClock::start();
    let options = TrackerOptions {
        instance: "latency".into(),
        sync_interval_ms: i64::MAX,
        reload_interval_ms: i64::MAX,
    };
    let tracker = Tracker::with_options(QuotaConfig::default(), clock, options);
    let store = SlowStore {
        inner: MemoryStore::new(),
        delay,
    };
    let synced = Arc::new(SyncedTracker::new(tracker, store));
    let done = Arc::new(AtomicBool::new(false));
    let sync_thread = syncer.map(|variant| {
        let (synced, done) = (Arc::clone(&synced), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut syncs = 0u64;
            while !done.load(Ordering::Relaxed) {
                // Keep a write in flight nearly all the time.
                synced.sync_as(variant);
                syncs += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            syncs
        })
    });
    let tiingo = synced
        .tracker()
        .service("tiingo")
        .unwrap_or_else(|e| panic!("{e}"));
    // One call every 100 µs, on a schedule: a caller blocked behind a held lock shows up in
    // the latency of every call that was due meanwhile (measured from when it was due), not
    // as one slow call in a tight loop.
    let interval = Duration::from_micros(100);
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut due = started;
    while started.elapsed() < duration {
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        if let Err(e) = synced.tracker().record_call(tiingo, 1) {
            panic!("benchmark call refused: {e}");
        }
        samples.push(due.elapsed().as_nanos() as u64);
        due += interval;
    }
    done.store(true, Ordering::Relaxed);
    let syncs = sync_thread.map_or(0, |h| h.join().unwrap_or(0));
    let calls = samples.len();
    let max = samples.iter().copied().max().unwrap_or(0);
    let (p50, p99) = percentiles(&mut samples);
    println!(
        "| {name} | {calls} | {syncs} | {} | {} | {} |",
        human(p50),
        human(p99),
        human(max)
    );
    p50
}

/// Prints the table: no sync, the fixed sync, and the `io-under-lock` variant.
pub fn report(duration: Duration) {
    let delay = Duration::from_millis(50);
    println!(
        "\n## record_call latency while a sync to a slow store ({} ms per write) is in flight (one call due every 100 µs; latency from when it was due)\n",
        delay.as_millis()
    );
    println!("| scenario | calls | syncs | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    let idle = scenario("no sync running", None, duration, delay);
    let syncing = scenario(
        "fixed: sync writes outside the lock",
        Some(Variant::Fixed),
        duration,
        delay,
    );
    crate::figures::keep(
        "record_call p50 with a sync in flight, ratio to no sync",
        syncing as f64 / idle.max(1) as f64,
        "x",
        1.0,
    );
    scenario(
        "io-under-lock: writes holding the lock",
        Some(Variant::IoUnderLock),
        duration,
        delay,
    );
}
