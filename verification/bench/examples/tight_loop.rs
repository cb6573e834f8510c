//! One implementation in a tight loop, for profiling (`perf record`) and for ratios without
//! the table's sampling: 100 million calls over THREADS threads (1 by default), rotating
//! services, wall time per call. The implementations are the table's
//! (`quota_bench::recorders`).
//!
//! `cargo run --release -p quota-bench --example tight_loop -- floor|toy|core|admit [THREADS [CALLS]]`
//!
//! CALLS (100 million by default) makes it short enough for `valgrind --tool=callgrind`,
//! whose instruction counts per call compare `admit` with `core` (`record_call`) exactly.

use std::sync::Arc;
use std::time::Instant;

use quota_bench::recorders::{Admitter, Core, Floor, Recorder, Toy};
use quota_tracker::TickingClock;
use quota_tracker::sync::ParkingLotBackend;

const CALLS: u64 = 100_000_000;

/// Runs `calls` in all on `threads` threads sharing `recorder`; wall time per call (ns).
fn time<R: Recorder>(recorder: R, threads: u64, calls: u64) -> f64 {
    let recorder = Arc::new(recorder);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let recorder = Arc::clone(&recorder);
            std::thread::spawn(move || {
                for i in 0..calls / threads {
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
    started.elapsed().as_nanos() as f64 / calls as f64
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
    let calls: u64 = match std::env::args().nth(3).map(|c| c.parse()) {
        None => CALLS,
        Some(Ok(c)) if c >= threads => c,
        Some(_) => {
            eprintln!("error: CALLS must be a whole number of at least THREADS");
            std::process::exit(2);
        }
    };
    let ns = match which.as_str() {
        "floor" => time(Floor::default(), threads, calls),
        "toy" => time(Toy::default(), threads, calls),
        "core" => time(
            Core::<ParkingLotBackend>::new(TickingClock::start()),
            threads,
            calls,
        ),
        "admit" => time(
            Admitter::<ParkingLotBackend>::new(TickingClock::start()),
            threads,
            calls,
        ),
        _ => {
            eprintln!(
                "error: unknown implementation {which:?}: expected floor, toy, core or admit"
            );
            std::process::exit(2);
        }
    };
    println!("{which} x{threads}: {ns:.2} ns per call");
}
