//! One implementation in a tight loop, for profiling (`perf record`) and for ratios without
//! the table's sampling: 100 million calls over THREADS threads (1 by default), rotating
//! services, wall time per call. The implementations are the table's
//! (`quota_bench::recorders`).
//!
//! `cargo run --release -p quota-bench --example tight_loop -- floor|toy|core [THREADS]`

use std::sync::Arc;
use std::time::Instant;

use quota_bench::recorders::{Core, Floor, Recorder, Toy};
use quota_tracker::TickingClock;
use quota_tracker::sync::ParkingLotBackend;

const CALLS: u64 = 100_000_000;

/// Runs `calls` per thread on `threads` threads sharing `recorder`; wall time per call (ns).
fn time<R: Recorder>(recorder: R, threads: u64) -> f64 {
    let recorder = Arc::new(recorder);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let recorder = Arc::clone(&recorder);
            std::thread::spawn(move || {
                for i in 0..CALLS / threads {
                    recorder.record((i % 3) as usize);
                }
            })
        })
        .collect();
    for handle in handles {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
    started.elapsed().as_nanos() as f64 / CALLS as f64
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
    let ns = match which.as_str() {
        "floor" => time(Floor::default(), threads),
        "toy" => time(Toy::default(), threads),
        "core" => time(
            Core::<ParkingLotBackend>::new(TickingClock::start()),
            threads,
        ),
        _ => {
            eprintln!("error: unknown implementation {which:?}: expected floor, toy or core");
            std::process::exit(2);
        }
    };
    println!("{which} x{threads}: {ns:.2} ns per call");
}
