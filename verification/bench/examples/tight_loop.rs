//! One implementation in a tight loop, for profiling (`perf record`, `valgrind
//! --tool=callgrind`) and for ratios without the table's sampling: 100 million calls over
//! THREADS threads (1 by default), rotating services, wall time per call. The loop and the
//! implementations are the library's (`quota_bench::tight`, `quota_bench::recorders`).
//!
//! `cargo run --release -p quota-bench --example tight_loop -- floor|toy|core|admit [THREADS [CALLS]]`

const CALLS: u64 = 100_000_000;

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
    match quota_bench::tight::run(&which, threads, calls) {
        Ok(ns) => println!("{which} x{threads}: {ns:.2} ns per call"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
