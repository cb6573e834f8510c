//! `quota-bench`: what the lock costs, whether sync stays off the hot path, and how many
//! store writes the sync policy saves. Prints Markdown tables (BENCHMARKS.md holds a run).
//!
//! Usage: `cargo run --release -p quota-bench [-- --quick]`. Figures are wall-clock on a
//! shared machine: compare rows of one run, not runs of different days.

mod figures;
mod hot_path;
mod instructions;
mod stats;
mod store_cost;
mod sync_latency;

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The mode `--instructions` runs under callgrind: one implementation, CALLS calls.
    if args.first().map(String::as_str) == Some("--tight-loop") {
        let calls = args
            .get(2)
            .and_then(|c| c.parse().ok())
            .unwrap_or(1_000_000);
        let which = args.get(1).map_or("", String::as_str);
        if let Err(e) = quota_bench::tight::run(which, 1, calls) {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "quota-bench [--quick] [--hot-path | --sync-latency | --instructions] [--json FILE]\n\n\
             Prints the benchmark tables of BENCHMARKS.md.\n  \
             --quick       fewer calls (a smoke run; figures are rougher)\n  \
             --instructions only the instructions per call (valgrind callgrind; exact)\n  \
             --hot-path    only the record_call (and admit) table\n  \
             --sync-latency only the table of record_call latency with a sync in flight\n  \
             --json FILE   also write the headline figures (with regression margins) as JSON,\n                \
             for the correctness gate's baseline"
        );
        return;
    }
    let json = match args.iter().position(|a| a == "--json") {
        Some(i) => match args.get(i + 1) {
            Some(path) => Some(path.clone()),
            None => {
                eprintln!("error: --json needs a FILE to write the figures to");
                std::process::exit(2);
            }
        },
        None => None,
    };
    if let Some(unknown) = args.iter().enumerate().find(|(i, a)| {
        let known = matches!(
            a.as_str(),
            "--quick" | "--hot-path" | "--sync-latency" | "--instructions" | "--json"
        );
        let json_file = *i > 0 && args[i - 1] == "--json";
        !(known || json_file)
    }) {
        eprintln!(
            "error: unknown argument {:?}: expected --quick, --hot-path, --sync-latency, --instructions or --json FILE",
            unknown.1
        );
        std::process::exit(2);
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for figures worth reading");
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "# quota-bench ({cores} cores{})",
        if quick { ", --quick" } else { "" }
    );
    let only_hot = args.iter().any(|a| a == "--hot-path");
    let only_sync = args.iter().any(|a| a == "--sync-latency");
    let only_instructions = args.iter().any(|a| a == "--instructions");
    if [only_hot, only_sync, only_instructions]
        .iter()
        .filter(|o| **o)
        .count()
        > 1
    {
        eprintln!(
            "error: --hot-path, --sync-latency and --instructions each ask for one table only: pick one"
        );
        std::process::exit(2);
    }
    if only_instructions {
        instructions::report();
    } else if !only_sync {
        hot_path::report(if quick { 200_000 } else { 10_000_000 });
    }
    if !only_hot && !only_sync && !only_instructions {
        instructions::report();
    }
    if !only_hot && !only_instructions {
        sync_latency::report(Duration::from_millis(if quick { 300 } else { 3_000 }));
    }
    if !only_hot && !only_sync && !only_instructions {
        store_cost::report(if quick { 3 } else { 30 });
    }
    if let Some(path) = json {
        if let Err(e) = figures::write(&path) {
            eprintln!("error: cannot write the figures to {path}: {e}");
            std::process::exit(1);
        }
        eprintln!("figures written to {path}");
    }
}
