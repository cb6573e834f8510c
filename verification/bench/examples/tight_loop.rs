//! One implementation in a tight single-threaded loop, for profiling (`perf record`) and for
//! the uncontended ratio without the table's sampling: 100 million calls, ns per call.
//!
//! `cargo run --release -p quota-bench --example tight_loop -- floor|toy|core`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use quota_tracker::{Clock, QuotaConfig, TickingClock, Tracker, TrackerOptions};

const CALLS: u64 = 100_000_000;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let started = Instant::now();
    match which.as_str() {
        "floor" => {
            let counter = AtomicU64::new(0);
            for _ in 0..CALLS {
                counter.fetch_add(1, Ordering::Relaxed);
                std::hint::black_box(&counter);
            }
        }
        "toy" => {
            let toy = parking_lot::Mutex::new(([0u64; 3], [0u64; 3], 0u64));
            for i in 0..CALLS {
                let service = (i % 3) as usize;
                let mut counts = toy.lock();
                counts.0[service] += 1;
                counts.1[service] += 1;
                counts.2 += 1;
                drop(counts);
                std::hint::black_box(&toy);
            }
        }
        "core" => {
            let clock: Arc<dyn Clock> = TickingClock::start();
            let options = TrackerOptions {
                instance: "tight-loop".into(),
                ..TrackerOptions::default()
            };
            let tracker = Tracker::with_options(QuotaConfig::default(), clock, options);
            let ids: Vec<_> = ["tiingo", "finnhub", "sendgrid"]
                .iter()
                .map(|name| tracker.service(name).unwrap_or_else(|e| panic!("{e}")))
                .collect();
            for i in 0..CALLS {
                let recorded = tracker.record_call(ids[(i % 3) as usize], 1);
                std::hint::black_box(&recorded);
            }
        }
        other => {
            eprintln!("error: unknown implementation {other:?}: expected floor, toy or core");
            std::process::exit(2);
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / CALLS as f64;
    println!("{which}: {ns:.2} ns per call");
}
