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

/// How much work each table does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    /// The figures of BENCHMARKS.md.
    Full,
    /// The gate's run: rougher figures in seconds.
    Quick,
    /// Every table printed with the least work (tests of the output, in debug builds).
    Smoke,
}

impl Size {
    fn label(self) -> &'static str {
        match self {
            Size::Full => "",
            Size::Quick => ", --quick",
            Size::Smoke => ", --smoke",
        }
    }

    /// Calls per thread at 1 thread (divided among threads above it), and the least per thread.
    fn hot_path_calls(self) -> (u64, u64) {
        match self {
            Size::Full => (10_000_000, 10_000),
            Size::Quick => (200_000, 10_000),
            Size::Smoke => (2_000, 100),
        }
    }

    fn sync_latency_time(self) -> Duration {
        Duration::from_millis(match self {
            Size::Full => 3_000,
            Size::Quick => 300,
            Size::Smoke => 100,
        })
    }

    fn simulated_minutes(self) -> u64 {
        match self {
            Size::Full => 30,
            Size::Quick => 3,
            Size::Smoke => 1,
        }
    }
}

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
    let size = if args.iter().any(|a| a == "--smoke") {
        Size::Smoke
    } else if args.iter().any(|a| a == "--quick") {
        Size::Quick
    } else {
        Size::Full
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "quota-bench [--quick | --smoke] [--hot-path | --sync-latency | --instructions] [--json FILE]\n\n\
             Prints the benchmark tables of BENCHMARKS.md.\n  \
             --quick       fewer calls (what the gate runs; figures are rougher)\n  \
             --smoke       the least work that prints every table (for tests of the output;\n                \
             the figures mean nothing)\n  \
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
            "--quick" | "--smoke" | "--hot-path" | "--sync-latency" | "--instructions" | "--json"
        );
        let json_file = *i > 0 && args[i - 1] == "--json";
        !(known || json_file)
    }) {
        eprintln!(
            "error: unknown argument {:?}: expected --quick, --smoke, --hot-path, --sync-latency, --instructions or --json FILE",
            unknown.1
        );
        std::process::exit(2);
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for figures worth reading");
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("# quota-bench ({cores} cores{})", size.label());
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
        let (calls_at_1_thread, at_least_per_thread) = size.hot_path_calls();
        hot_path::report(calls_at_1_thread, at_least_per_thread);
    }
    if !only_hot && !only_sync && !only_instructions {
        instructions::report();
    }
    if !only_hot && !only_instructions {
        sync_latency::report(size.sync_latency_time());
    }
    if !only_hot && !only_sync && !only_instructions {
        store_cost::report(size.simulated_minutes());
    }
    if let Some(path) = json {
        if let Err(e) = figures::write(&path) {
            eprintln!("error: cannot write the figures to {path}: {e}");
            std::process::exit(1);
        }
        eprintln!("figures written to {path}");
    }
}
