//! `quota-verify fleet`: tracker instances as real processes against one store, with
//! faults from outside, judged from the journals they kept; and `fleet-worker`, the process
//! each instance runs in.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use quota_dynamodb::zoo::StoreVariant;
use quota_fleet::coordinator::{FleetConfig, FleetError, FleetReport};
use quota_fleet::faults::FaultKind;
use quota_fleet::worker::WorkerConfig;

/// Exit code: every check held.
const PASSED: u8 = 0;
/// Exit code: calls lost beyond the bound, doubled, or admitted past the bound.
const FAILED: u8 = 1;
/// Exit code: bad input, or the run could not start.
const CANNOT_RUN: u8 = 3;
/// Exit code: interrupted (Ctrl-C); every worker was stopped.
const INTERRUPTED: u8 = 130;

/// Run a fleet of tracker instances as processes against one store, inject faults, and
/// judge the store against what each instance recorded.
///
/// INSTANCES worker processes (this binary, as `fleet-worker`), each a tracker with its own
/// sync loop and THREADS threads admitting RATE calls a second each to two services
/// (`capped`: 1,000 a day, ceiling 800, shared by the fleet, reached within seconds;
/// `steady-N`: worker N's own, never near its limit, so the store's count of it is exactly
/// what that worker's calls became). Each worker journals every call before asking and after the answer, and every
/// batch the store acknowledged, to DIR/worker-N.jsonl (one write per line: a SIGKILL loses
/// none). FAULTS are injected once each at times drawn from SEED: `kill` (SIGKILL),
/// `freeze` (SIGSTOP for 4 s, then SIGCONT), `term` (SIGTERM: a graceful stop mid-run),
/// `store-restart` (the emulator's server killed and started again on its volume),
/// `store-pause` (the server paused for 4 s). At the end every survivor gets SIGTERM and
/// makes a last sync.
///
/// The verdict, per service: the store holds every call of the workers that stopped
/// gracefully and every acknowledged call of the killed ones; it may lack a killed
/// worker's calls since its last acknowledged sync (`lost` ≤ `lost_bound`), and holds
/// nothing more than was recorded (`doubled` = 0). Admissions across the fleet stay at or
/// under the ceiling (`--admission bounded`) or under the default mode's stated bound
/// (`admitted_bound`, from ARCHITECTURE.md's formula with the run's own rates and sync gaps);
/// a killed worker's unanswered asks (`in_doubt`) may have been refusals and are not counted.
///
/// Without --endpoint it starts the emulator image of scripts/dynamodb-setup itself, on a
/// volume (so a restart keeps the table), and removes it at the end. With --endpoint (a real
/// table: the standard AWS credential chain and --region) store faults are refused.
///
/// Exit status: 0 every check held, 1 a check failed (lost beyond the bound, doubled,
/// admitted past the bound), 3 bad input or the run could not start (zero instances, an
/// unreachable endpoint, a table that is not a quota table, or one holding counts already), 130 interrupted (Ctrl-C,
/// SIGTERM, SIGHUP). No worker is
/// left running after any of them.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  quota-verify fleet --instances 4 --threads 4 --duration 60 --faults kill,freeze,store-restart --json
  quota-verify fleet --admission bounded --faults none --duration 20
  quota-verify fleet --store-variant retry-double-apply --faults store-pause --duration 20")]
pub struct Args {
    /// Worker processes (1 to 64).
    #[arg(long, default_value_t = 4)]
    instances: u64,

    /// Admitting threads per worker (1 to 64).
    #[arg(long, default_value_t = 4)]
    threads: u64,

    /// Seconds the workers admit.
    #[arg(long, default_value_t = 60)]
    duration: u64,

    /// Admissions per second per thread.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,

    /// Faults to inject, comma-separated: kill, freeze, term, store-restart, store-pause,
    /// or none.
    #[arg(long, default_value = "kill,freeze,term,store-restart,store-pause")]
    faults: String,

    /// Draws the faults' times and targets; the same seed replays the same schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// `default` (each instance decides from its own view) or `bounded` (leases).
    #[arg(long, default_value = "default", value_parser = ["default", "bounded"])]
    admission: String,

    /// A store bug for the workers to write with: fixed, sync-overwrite,
    /// overwrite-erases-counters, retry-double-apply.
    #[arg(long, default_value = "fixed")]
    store_variant: String,

    /// A DynamoDB endpoint to use instead of starting the emulator (store faults need the
    /// emulator).
    #[arg(long)]
    endpoint: Option<String>,

    /// The AWS region to sign for.
    #[arg(long, default_value = "us-east-1")]
    region: String,

    /// The table (created if missing); default a fresh one per run.
    #[arg(long)]
    table: Option<String>,

    /// Where the journals go (created); default a new directory under the system's
    /// temporary directory, printed.
    #[arg(long)]
    out: Option<PathBuf>,

    /// Milliseconds between two syncs of a worker.
    #[arg(long, default_value_t = 500)]
    sync_ms: u64,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// A worker process of `quota-verify fleet` (started by it, not by hand).
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long)]
    table: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long)]
    instance: String,
    #[arg(long)]
    index: usize,
    #[arg(long)]
    threads: usize,
    #[arg(long)]
    rate: f64,
    #[arg(long)]
    bounded: bool,
    #[arg(long, default_value = "fixed")]
    store_variant: String,
    #[arg(long)]
    journal: PathBuf,
    #[arg(long, default_value_t = 500)]
    sync_ms: u64,
    #[arg(long)]
    parent: Option<u32>,
}

/// Runs a worker; its exit code.
pub fn run_worker(args: &WorkerArgs) -> ExitCode {
    let Ok(store_variant) = args.store_variant.parse::<StoreVariant>() else {
        eprintln!("error: unknown --store-variant {:?}", args.store_variant);
        return ExitCode::from(CANNOT_RUN);
    };
    let config = WorkerConfig {
        endpoint: args.endpoint.clone(),
        table: args.table.clone(),
        region: args.region.clone(),
        instance: args.instance.clone(),
        index: args.index,
        threads: args.threads,
        rate: args.rate,
        bounded: args.bounded,
        store_variant,
        journal: args.journal.clone(),
        sync_period: Duration::from_millis(args.sync_ms),
        parent: args.parent,
    };
    ExitCode::from(quota_fleet::worker::run(&config))
}

/// The run's settings from the arguments, or what is wrong with them.
fn config(args: &Args) -> Result<FleetConfig, String> {
    let count = |value: u64, name: &str| {
        if (1..=64).contains(&value) {
            Ok(value as usize)
        } else {
            Err(format!("--{name} {value}: expected 1 to 64"))
        }
    };
    let instances = count(args.instances, "instances")?;
    let threads = count(args.threads, "threads")?;
    if args.duration == 0 {
        return Err("--duration 0: expected at least 1 second".to_owned());
    }
    if !(args.rate > 0.0 && args.rate <= 10_000.0) {
        return Err(format!(
            "--rate {}: expected more than 0, at most 10000",
            args.rate
        ));
    }
    let faults = match args.faults.trim() {
        "none" | "" => Vec::new(),
        list => {
            let mut kinds = Vec::new();
            for name in list.split(',') {
                let kind: FaultKind = name.trim().parse().map_err(|e| format!("--faults: {e}"))?;
                if kinds.contains(&kind) {
                    return Err(format!(
                        "--faults: {kind} twice (each fault is injected once)"
                    ));
                }
                kinds.push(kind);
            }
            kinds
        }
    };
    let store_variant = args
        .store_variant
        .parse::<StoreVariant>()
        .map_err(|e| format!("--store-variant: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        std::env::temp_dir().join(format!("quota-fleet-{stamp}-{}", std::process::id()))
    });
    Ok(FleetConfig {
        instances,
        threads,
        duration: Duration::from_secs(args.duration),
        rate: args.rate,
        faults,
        seed: args.seed,
        endpoint: args.endpoint.clone(),
        region: args.region.clone(),
        table: args.table.clone(),
        bounded: args.admission == "bounded",
        store_variant,
        out,
        exe,
        sync_period: Duration::from_millis(args.sync_ms.max(1)),
    })
}

/// Runs the command and returns its exit code.
pub fn run(args: &Args) -> ExitCode {
    let config = match config(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(CANNOT_RUN);
        }
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    // Ctrl-C, a CI job's timeout (SIGTERM) and a closed terminal (SIGHUP) all end the run
    // the same way: every worker stopped, the emulator removed.
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&interrupted)) {
            eprintln!("error: cannot handle signal {signal}: {e}");
            return ExitCode::from(CANNOT_RUN);
        }
    }
    let progress = |line: &str| eprintln!("fleet: {line}");
    match quota_fleet::coordinator::run(&config, &interrupted, &progress) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&json(&report)) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("error: cannot print the report: {e}"),
                }
            } else {
                print!("{}", table(&report));
            }
            ExitCode::from(if report.pass { PASSED } else { FAILED })
        }
        Err(FleetError::Interrupted) => {
            eprintln!("fleet: interrupted: every worker was stopped");
            ExitCode::from(INTERRUPTED)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(CANNOT_RUN)
        }
    }
}

/// The report as JSON: counts summed over services at the top level, admissions and
/// ceilings per service (the window is the day), and every service's and worker's row.
fn json(report: &FleetReport) -> serde_json::Value {
    let sum = |f: fn(&quota_fleet::verdict::ServiceVerdict) -> u64| -> u64 {
        report.services.iter().map(f).sum()
    };
    let per_service = |f: fn(&quota_fleet::verdict::ServiceVerdict) -> u64| {
        report
            .services
            .iter()
            .map(|s| (s.service.clone(), f(s)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    serde_json::json!({
        "instances": report.instances,
        "threads": report.threads,
        "duration_s": report.duration_s,
        "admission": report.admission,
        "store_variant": report.store_variant,
        "seed": report.seed,
        "faults": report.faults,
        "recorded": sum(|s| s.recorded),
        "stored": sum(|s| s.stored),
        "lost": sum(|s| s.lost),
        "doubled": sum(|s| s.doubled),
        "lost_bound": sum(|s| s.lost_bound),
        "admitted": per_service(|s| s.admitted),
        "ceiling": per_service(|s| s.ceiling),
        "admitted_bound": report
            .services
            .iter()
            .filter_map(|s| Some((s.service.clone(), s.admitted_bound?)))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "services": report.services,
        "workers": report.workers,
        "out": report.out,
        "verdict": if report.pass { "pass" } else { "fail" },
    })
}

/// The report as text.
fn table(report: &FleetReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleet: {} workers x {} threads, {} s, admission {}, store {}, seed {}",
        report.instances,
        report.threads,
        report.duration_s,
        report.admission,
        report.store_variant,
        report.seed
    );
    for fault in &report.faults {
        let target = fault
            .worker
            .map_or_else(String::new, |w| format!(" worker-{w}"));
        let until = fault.until_ms.map_or_else(String::new, |u| {
            format!(" until {:.1} s", u as f64 / 1000.0)
        });
        let _ = writeln!(
            out,
            "  {:>6.1} s  {}{target}{until}",
            fault.at_ms as f64 / 1000.0,
            fault.kind
        );
    }
    let _ = writeln!(
        out,
        "\n| service | recorded | stored | lost | lost bound | doubled | admitted | ceiling | admitted bound | verdict |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for s in &report.services {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.service,
            s.recorded,
            s.stored,
            s.lost,
            s.lost_bound,
            s.doubled,
            s.admitted,
            s.ceiling,
            s.admitted_bound
                .map_or_else(|| "ceiling".to_owned(), |b| b.to_string()),
            if s.pass { "pass" } else { "FAIL" }
        );
    }
    let _ = writeln!(out);
    for w in &report.workers {
        let admitted: u64 = w.admitted.values().sum();
        let acked: i64 = w.acked.values().sum();
        let unanswered: u64 = w.unanswered.values().sum();
        let _ = writeln!(
            out,
            "{}: {:?}, admitted {admitted}, acknowledged {acked}, unanswered {unanswered}",
            w.instance, w.fate
        );
    }
    let _ = writeln!(
        out,
        "\nverdict: {} (journals in {})",
        if report.pass { "pass" } else { "FAIL" },
        report.out.display()
    );
    out
}
