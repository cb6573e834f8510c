//! `record_call` latency while a slow sync is in flight: the lock must not be held over I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use quota_tracker::zoo::Variant;
use quota_tracker::{
    Clock, QuotaConfig, Store, StoreError, StoredDay, SyncBatch, SyncedTracker, TickingClock,
    Tracker, TrackerOptions, UtcDay,
};

use crate::stats::{human, percentiles};

/// A store whose every write takes `delay` (a slow network) and is then acknowledged. It
/// keeps nothing: this table measures latency, not counts. And it asserts nothing, unlike
/// `MemoryStore`, which in debug builds refuses to be called under the cache lock: the
/// `io-under-lock` row does exactly that on purpose (its sync thread used to panic on the
/// first write in a debug build, and the panic was swallowed: the row measured nothing).
struct SlowStore {
    delay: Duration,
}

impl Store for SlowStore {
    fn load_day(&self, _day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        Ok(None)
    }
    fn load_windows(
        &self,
        _windows: &[quota_tracker::WindowKey],
    ) -> Result<Vec<quota_tracker::StoredWindow>, StoreError> {
        Ok(Vec::new())
    }
    fn apply_batch(&self, _batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        std::thread::sleep(self.delay);
        Ok(None)
    }
}

/// The calls' latencies (ns, from when each was due) and the syncs completed in one slice.
struct Slice {
    samples: Vec<u64>,
    syncs: u64,
}

/// What runs beside the caller in a scenario.
#[derive(Clone, Copy)]
enum Beside {
    /// Nothing.
    Nothing,
    /// A thread that sleeps and wakes as the syncer does (a write's delay, then 1 ms) and
    /// never touches the tracker: what a waking thread alone costs the caller on this machine.
    Sleeper,
    /// A thread keeping a sync of this kind in flight nearly all the time.
    Sync(Variant),
}

/// Runs one slice of a scenario: a fresh tracker, a call due every 100 µs for `duration`,
/// and `beside` on a thread of its own.
fn slice(beside: Beside, duration: Duration, delay: Duration) -> Slice {
    let clock: Arc<dyn Clock> = TickingClock::start();
    let options = TrackerOptions {
        instance: "latency".into(),
        sync_interval_ms: i64::MAX,
        reload_interval_ms: i64::MAX,
    };
    let tracker = Tracker::with_options(QuotaConfig::default(), clock, options);
    let store = SlowStore { delay };
    let synced = Arc::new(SyncedTracker::new(tracker, store));
    let done = Arc::new(AtomicBool::new(false));
    let sync_thread = match beside {
        Beside::Nothing => None,
        Beside::Sleeper | Beside::Sync(_) => {
            let (synced, done) = (Arc::clone(&synced), Arc::clone(&done));
            Some(std::thread::spawn(move || {
                let mut syncs = 0u64;
                while !done.load(Ordering::Relaxed) {
                    match beside {
                        // Keep a write in flight nearly all the time.
                        Beside::Sync(variant) => {
                            synced.sync_as(variant);
                            syncs += 1;
                        }
                        _ => std::thread::sleep(delay),
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                syncs
            }))
        }
    };
    let tiingo = synced
        .tracker()
        .service("tiingo")
        .unwrap_or_else(|e| panic!("{e}"));
    // One call every 100 µs, on a schedule: a caller blocked behind a held lock shows up in
    // the latency of every call that was due meanwhile (measured from when it was due), not
    // as one slow call in a tight loop.
    let interval = Duration::from_micros(100);
    // Allocated up front: growing it between calls would make the next call late.
    let mut samples =
        Vec::with_capacity((duration.as_micros() / interval.as_micros()) as usize + 1);
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
    // A sync thread that panicked is a broken measurement, not zero syncs.
    let syncs = sync_thread.map_or(0, |h| {
        h.join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    Slice { samples, syncs }
}

/// Slices per scenario: as many of [`SLICE`] as `duration` holds, at most ten. The scenarios
/// take turns, slice by slice, so that a slow spell of the VM lands on all of them alike
/// instead of on whichever ran then (with one long run each, the no-sync p99 moved between
/// 1.8 and 552 µs from run to run).
fn rounds(duration: Duration) -> u32 {
    (duration.as_millis() / SLICE.as_millis()).clamp(1, 10) as u32
}

/// The shortest slice worth running: several 50 ms writes.
const SLICE: Duration = Duration::from_millis(300);

/// One table row: a scenario's pooled slices.
struct Pooled {
    name: &'static str,
    beside: Beside,
    samples: Vec<u64>,
    /// The p99 of each slice on its own.
    slice_p99s: Vec<u64>,
    syncs: u64,
}

impl Pooled {
    fn add(&mut self, mut slice: Slice) {
        self.slice_p99s.push(percentiles(&mut slice.samples).1);
        self.samples.extend(slice.samples);
        self.syncs += slice.syncs;
    }

    /// Prints the row; returns (p50, p99 of the median slice) in ns.
    fn print(mut self) -> (u64, u64) {
        let calls = self.samples.len();
        let max = self.samples.iter().copied().max().unwrap_or(0);
        let (p50, p99) = percentiles(&mut self.samples);
        let (median_slice_p99, _) = percentiles(&mut self.slice_p99s);
        println!(
            "| {} | {calls} | {} | {} | {} | {} | {} |",
            self.name,
            self.syncs,
            human(p50),
            human(p99),
            human(median_slice_p99),
            human(max)
        );
        (p50, median_slice_p99)
    }
}

/// Prints the table: no sync, the control, the fixed sync, and the `io-under-lock` variant.
pub fn report(duration: Duration) {
    let delay = Duration::from_millis(50);
    let rounds = rounds(duration);
    println!(
        "\n## record_call latency while a sync to a slow store ({} ms per write) is in flight (one call due every 100 µs; latency from when it was due; {rounds} interleaved slices per row)\n",
        delay.as_millis()
    );
    println!("| scenario | calls | syncs | p50 | p99 | p99 of the median slice | max |");
    println!("|---|---|---|---|---|---|---|");
    let mut rows = [
        ("no sync running", Beside::Nothing),
        (
            "control: a thread waking like the syncer, no sync",
            Beside::Sleeper,
        ),
        (
            "fixed: sync writes outside the lock",
            Beside::Sync(Variant::Fixed),
        ),
        (
            "io-under-lock: writes holding the lock",
            Beside::Sync(Variant::IoUnderLock),
        ),
    ]
    .map(|(name, beside)| Pooled {
        name,
        beside,
        samples: Vec::new(),
        slice_p99s: Vec::new(),
        syncs: 0,
    });
    for _ in 0..rounds {
        for row in &mut rows {
            row.add(slice(row.beside, duration / rounds, delay));
        }
    }
    let [idle, control, syncing, io_under_lock] = rows;
    let (idle_p50, idle_p99) = idle.print();
    let (_, control_p99) = control.print();
    let (syncing_p50, syncing_p99) = syncing.print();
    io_under_lock.print();
    crate::figures::keep(
        "record_call p50 with a sync in flight, ratio to no sync",
        syncing_p50 as f64 / idle_p50.max(1) as f64,
        "x",
        1.0,
    );
    println!(
        "\nWith a sync in flight ÷ without: p50 {:.2}×, p99 of the median slice {:.2}× (one slow \
         spell of the VM moves the pooled p99, and lands in one slice only); ÷ the control \
         (a waking thread, no sync): p99 of the median slice {:.2}×.",
        syncing_p50 as f64 / idle_p50.max(1) as f64,
        syncing_p99 as f64 / idle_p99.max(1) as f64,
        syncing_p99 as f64 / control_p99.max(1) as f64,
    );
}
