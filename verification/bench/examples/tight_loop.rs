//! One implementation in a tight loop, for profiling (`perf record`) and for ratios without
//! the table's sampling: 100 million calls over THREADS threads (1 by default), rotating
//! services, wall time per call.
//!
//! `cargo run --release -p quota-bench --example tight_loop -- floor|toy|core [THREADS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use quota_tracker::{Clock, QuotaConfig, TickingClock, Tracker, TrackerOptions};

const CALLS: u64 = 100_000_000;

/// One implementation, shared by the threads.
// One value per process; boxing the tracker would add a pointer chase to the measured loop.
#[allow(clippy::large_enum_variant)]
enum Subject {
    Floor(AtomicU64),
    Toy(parking_lot::Mutex<([u64; 3], [u64; 3], u64)>),
    Core(Tracker, Vec<quota_tracker::ServiceId>),
}

impl Subject {
    fn new(which: &str) -> Option<Self> {
        Some(match which {
            "floor" => Subject::Floor(AtomicU64::new(0)),
            "toy" => Subject::Toy(parking_lot::Mutex::new(([0; 3], [0; 3], 0))),
            "core" => {
                let clock: Arc<dyn Clock> = TickingClock::start();
                let options = TrackerOptions {
                    instance: "tight-loop".into(),
                    ..TrackerOptions::default()
                };
                let tracker = Tracker::with_options(QuotaConfig::default(), clock, options);
                let ids = ["tiingo", "finnhub", "sendgrid"]
                    .iter()
                    .map(|name| tracker.service(name).unwrap_or_else(|e| panic!("{e}")))
                    .collect();
                Subject::Core(tracker, ids)
            }
            _ => return None,
        })
    }

    fn run(&self, calls: u64) {
        match self {
            Subject::Floor(counter) => {
                for _ in 0..calls {
                    counter.fetch_add(1, Ordering::Relaxed);
                    std::hint::black_box(counter);
                }
            }
            Subject::Toy(toy) => {
                for i in 0..calls {
                    let service = (i % 3) as usize;
                    let mut counts = toy.lock();
                    counts.0[service] += 1;
                    counts.1[service] += 1;
                    counts.2 += 1;
                    drop(counts);
                    std::hint::black_box(toy);
                }
            }
            Subject::Core(tracker, ids) => {
                for i in 0..calls {
                    match tracker.record_call(ids[(i % 3) as usize], 1) {
                        Ok(recorded) => consume(&recorded),
                        Err(e) => panic!("benchmark call refused: {e}"),
                    }
                }
            }
        }
    }
}

/// Uses every field of `recorded` by value, as the table's `hot_path::consume` does (this
/// example cannot reach the binary's modules): no field optimized away, no struct copy measured.
#[inline(always)]
fn consume(recorded: &quota_tracker::Recorded) {
    std::hint::black_box(recorded.usage.used());
    std::hint::black_box(recorded.usage.remaining());
    std::hint::black_box(recorded.crossed_critical);
    std::hint::black_box(recorded.sync_due);
    std::hint::black_box(recorded.reload_due);
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let threads: u64 = match std::env::args().nth(2).map(|t| t.parse()) {
        None => 1,
        Some(Ok(t)) if t > 0 => t,
        Some(_) => {
            eprintln!("error: THREADS must be a whole number of at least 1");
            std::process::exit(2);
        }
    };
    let Some(subject) = Subject::new(&which) else {
        eprintln!("error: unknown implementation {which:?}: expected floor, toy or core");
        std::process::exit(2);
    };
    let subject = Arc::new(subject);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let subject = Arc::clone(&subject);
            std::thread::spawn(move || subject.run(CALLS / threads))
        })
        .collect();
    for handle in handles {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / CALLS as f64;
    println!("{which} x{threads}: {ns:.2} ns per call");
}
