//! `quota-bench`: what the lock costs, whether sync stays off the hot path, and how many
//! store writes the sync policy saves. Prints Markdown tables (BENCHMARKS.md holds a run).
//!
//! Usage: `cargo run --release -p quota-bench [-- --quick]`. Figures are wall-clock on a
//! shared machine: compare rows of one run, not runs of different days.

mod hot_path;
mod stats;
mod store_cost;
mod sync_latency;

use std::time::Duration;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "quota-bench [--quick]\n\nPrints the benchmark tables of BENCHMARKS.md. --quick runs fewer calls (for a smoke test)."
        );
        return;
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for figures worth reading");
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "# quota-bench ({cores} cores{})",
        if quick { ", --quick" } else { "" }
    );
    let only_hot = std::env::args().any(|a| a == "--hot-path");
    hot_path::report(if quick { 200_000 } else { 20_000_000 });
    if only_hot {
        return;
    }
    sync_latency::report(Duration::from_millis(if quick { 300 } else { 3_000 }));
    store_cost::report(if quick { 3 } else { 30 });
}
