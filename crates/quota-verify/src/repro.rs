//! `quota-verify repro`: reproduce the lost-update bug of the original service, or (with
//! `--workload admission`) the check-then-act overshoot one level up.

mod admission;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use quota_harness::{Summary, Trial, Variant, Workload, real_threads, shuttle_schedule};
use quota_tracker::QuotaConfig;

/// Exit code: every fixed-variant trial was exact (historical variants may lose: that is
/// what they are for).
const OK: u8 = 0;
/// Exit code: the fixed tracker lost or invented calls.
const FIXED_LOST: u8 = 1;
/// Exit code: the run could not be carried out.
const CANNOT_RUN: u8 = 3;
/// Exit code: invalid arguments.
const BAD_ARGUMENTS: u8 = 2;

/// Reproduce the lost-update bug: threads record calls concurrently, then the counters are
/// compared with what was recorded. Or, with --workload admission, the check-then-act
/// overshoot: threads check the quota, call the provider and record, until refused.
///
/// lost-update (the default): thread i records CALLS single calls on service (i mod 3) of
/// tiingo, finnhub, sendgrid, as in the original Python test (2 threads: tiingo and finnhub,
/// 100 calls each). That test lost 48 of 100 updates before the fix.
///
/// admission: THREADS threads (default 100) each loop admit -> provider call (--call-ms,
/// default 2) -> admit again on sendgrid (limit 100, ceiling 80) until refused. fixed admits
/// and records in one critical section; check-then-act asks can_call, calls, then records, as
/// the original's parallel fetchers did, and overshoots the ceiling.
///
/// Exit status: 0 when the fixed tracker counted every trial exactly (and, for admission,
/// never passed the ceiling), whatever the historical variants did; 1 when the fixed tracker
/// lost, double-counted or over-admitted a call; 2 for invalid arguments; 3 when the run
/// could not be carried out.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  quota-verify repro                                  all variants, 2 threads x 100 calls, 200 trials
  quota-verify repro --variant split-lock --threads 100 --trials 20
  quota-verify repro --variant unlocked-rmw --seed 7 --json    deterministic, under shuttle
  quota-verify repro --workload admission             fixed and check-then-act, 100 threads, 20 trials
  quota-verify repro --workload admission --variant check-then-act --seed 3 --json")]
pub struct Args {
    /// What the threads do: record calls (lost-update) or admit until refused (admission).
    #[arg(long, value_enum, default_value_t = WorkloadKind::LostUpdate)]
    workload: WorkloadKind,

    /// Variant to run; repeat for several. [default: every variant the workload shows]
    ///
    /// lost-update: fixed (one critical section), unlocked-rmw (get, modify, set back field
    /// by field with no lock across), split-lock (lock for the get, lock again for the set).
    /// admission: fixed (admit), check-then-act (can_call, call, record_call).
    #[arg(long = "variant", value_name = "VARIANT", value_parser = parse_variant)]
    variants: Vec<Variant>,

    /// Concurrent threads. [default: 2 for lost-update, 100 for admission]
    #[arg(long, allow_negative_numbers = true, value_parser = whole_number::<10_000>)]
    threads: Option<u64>,

    /// Calls each thread records (lost-update only). [default: 100]
    #[arg(long, allow_negative_numbers = true, value_parser = whole_number::<10_000_000>)]
    calls: Option<u64>,

    /// Independent trials per variant. [default: 200 for lost-update, 20 for admission]
    #[arg(long, allow_negative_numbers = true, value_parser = whole_number::<1_000_000>)]
    trials: Option<u64>,

    /// How long the simulated provider call takes, in milliseconds (admission only, real
    /// threads; under --seed it is a yield). [default: 2]
    #[arg(long, value_name = "MS", allow_negative_numbers = true, value_parser = count_from_zero::<60_000>)]
    call_ms: Option<u64>,

    /// Give back every N-th admission of each thread, as if its provider call failed
    /// (admission only; 0: none, else at least 2). [default: 0]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = refund_every)]
    refund_every: Option<u64>,

    /// Run under shuttle's random scheduler with this seed instead of real threads:
    /// deterministic, the same seed gives the same result on every run. Shuttle switches
    /// threads far more often than an OS (or Python's GIL), so its loss rates are not
    /// comparable with real threads'.
    #[arg(long, value_name = "SEED", allow_negative_numbers = true, value_parser = seed)]
    seed: Option<u64>,

    /// Print one JSON object per variant (one per line) instead of a table.
    #[arg(long)]
    json: bool,
}

/// A count from 1 to `MAX`, with an error that says so.
fn whole_number<const MAX: u64>(input: &str) -> Result<u64, String> {
    input
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=MAX).contains(n))
        .ok_or_else(|| format!("expected a whole number from 1 to {MAX}"))
}

/// A count from 0 to `MAX`, with an error that says so.
fn count_from_zero<const MAX: u64>(input: &str) -> Result<u64, String> {
    input
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX)
        .ok_or_else(|| format!("expected a whole number from 0 to {MAX}"))
}

/// 0 (no refunds) or every N-th admission from 2 up: refunding every one would keep `used`
/// where it is, and the threads would admit forever.
fn refund_every(input: &str) -> Result<u64, String> {
    let expected = "expected 0 (no refunds) or a whole number from 2 to 1000000";
    match input.parse::<u64>() {
        Ok(n) if n == 0 || (2..=1_000_000).contains(&n) => Ok(n),
        Ok(1) => Err(format!(
            "{expected}: refunding every admission, no thread would ever be refused"
        )),
        _ => Err(expected.to_owned()),
    }
}

/// The workloads `repro` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WorkloadKind {
    /// Threads record calls concurrently; the counters must equal what was recorded.
    LostUpdate,
    /// Threads admit, call and admit again until refused; `used` must stay at or under the
    /// ceiling.
    Admission,
}

fn seed(input: &str) -> Result<u64, String> {
    input
        .parse()
        .map_err(|_| format!("expected a whole number from 0 to {}", u64::MAX))
}

/// The variants this workload can show: the fix and the read-modify-write losses.
fn repro_variants() -> Vec<Variant> {
    Variant::ALL
        .iter()
        .copied()
        .filter(|v| !v.is_buggy() || v.loses_in_repro())
        .collect()
}

fn parse_variant(input: &str) -> Result<Variant, String> {
    input
        .parse()
        .map_err(|e: quota_tracker::zoo::ParseVariantError| e.to_string())
}

/// The variants asked for, or every one `usable` when none was; an error naming the usable
/// ones when a variant does not show in this workload.
fn chosen_variants(
    args: &Args,
    usable: &[Variant],
    workload: &str,
) -> Result<Vec<Variant>, String> {
    if args.variants.is_empty() {
        return Ok(usable.to_vec());
    }
    let ids: Vec<&str> = usable.iter().map(|v| v.id()).collect();
    for variant in &args.variants {
        if usable.contains(variant) {
            continue;
        }
        let elsewhere = if variant.overshoots_in_repro() {
            "it shows in --workload admission".to_owned()
        } else if variant.loses_in_repro() {
            "it shows in --workload lost-update".to_owned()
        } else {
            "the loom models check it (scripts/loom)".to_owned()
        };
        return Err(format!(
            "variant {variant} ({}) does not show in the {workload} workload; {elsewhere}. \
             Expected one of {}",
            variant.description(),
            ids.join(", ")
        ));
    }
    Ok(dedup(&args.variants))
}

/// An argument that does not apply to the workload chosen.
fn refuse_foreign(args: &Args) -> Result<(), String> {
    let foreign = match args.workload {
        WorkloadKind::LostUpdate if args.call_ms.is_some() => Some("--call-ms"),
        WorkloadKind::LostUpdate if args.refund_every.is_some() => Some("--refund-every"),
        WorkloadKind::Admission if args.calls.is_some() => Some("--calls"),
        _ => None,
    };
    match (foreign, args.workload) {
        (Some(flag), WorkloadKind::LostUpdate) => {
            Err(format!("{flag} applies to --workload admission only"))
        }
        (Some(flag), WorkloadKind::Admission) => Err(format!(
            "{flag} applies to --workload lost-update only (admission threads admit until refused)"
        )),
        (None, _) => Ok(()),
    }
}

/// Runs the command and returns its exit code.
pub fn run(args: &Args) -> ExitCode {
    if let Err(message) = refuse_foreign(args) {
        eprintln!("error: {message}");
        return ExitCode::from(BAD_ARGUMENTS);
    }
    match args.workload {
        WorkloadKind::LostUpdate => run_lost_update(args),
        WorkloadKind::Admission => admission::run(args),
    }
}

fn run_lost_update(args: &Args) -> ExitCode {
    let variants = match chosen_variants(args, &repro_variants(), "lost-update") {
        Ok(variants) => variants,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(BAD_ARGUMENTS);
        }
    };
    let services: Vec<String> = QuotaConfig::default().names().map(str::to_owned).collect();
    let mut summaries = Vec::with_capacity(variants.len());
    for variant in variants {
        let workload = Workload {
            variant,
            threads: usize::try_from(args.threads.unwrap_or(2)).unwrap_or(usize::MAX),
            calls: args.calls.unwrap_or(100),
        };
        match run_variant(&workload, args, services.clone()) {
            Ok(summary) => summaries.push(summary),
            Err(error) => {
                eprintln!("quota-verify repro: {variant}: could not run: {error}");
                return ExitCode::from(CANNOT_RUN);
            }
        }
    }
    let fixed_broken = summaries
        .iter()
        .any(|s| s.variant == Variant::Fixed.id() && !s.exact());
    report(
        args,
        &summaries,
        || table(args, &summaries),
        fixed_broken.then_some("the fixed tracker did not count every call exactly"),
    )
}

/// Prints `rows` as JSON lines (`--json`) or `table`, and returns the exit code: 1 with
/// `fixed_broken`'s message when the fixed tracker failed, 0 otherwise.
pub(crate) fn report<T: serde::Serialize>(
    args: &Args,
    rows: &[T],
    table: impl FnOnce() -> String,
    fixed_broken: Option<&str>,
) -> ExitCode {
    if args.json {
        if !print_json_lines(rows) {
            return ExitCode::from(CANNOT_RUN);
        }
    } else {
        print!("{}", table());
    }
    match fixed_broken {
        Some(message) => {
            eprintln!("quota-verify repro: {message}");
            ExitCode::from(FIXED_LOST)
        }
        None => ExitCode::from(OK),
    }
}

/// Prints one JSON object per line; false (after saying why) if one cannot be encoded.
pub(crate) fn print_json_lines<T: serde::Serialize>(rows: &[T]) -> bool {
    for row in rows {
        match serde_json::to_string(row) {
            Ok(line) => println!("{line}"),
            Err(error) => {
                eprintln!("quota-verify repro: cannot encode the result as JSON: {error}");
                return false;
            }
        }
    }
    true
}

fn dedup(variants: &[Variant]) -> Vec<Variant> {
    let mut unique = Vec::with_capacity(variants.len());
    for v in variants {
        if !unique.contains(v) {
            unique.push(*v);
        }
    }
    unique
}

fn run_variant(
    workload: &Workload,
    args: &Args,
    services: Vec<String>,
) -> Result<Summary, quota_tracker::QuotaError> {
    let trials = args.trials.unwrap_or(200);
    let bar = progress(workload.variant, trials);
    let trials_wanted = usize::try_from(trials).unwrap_or(usize::MAX);
    let started = Instant::now();
    let trials: Vec<Trial> = match args.seed {
        Some(seed) => {
            let tick = bar.clone();
            shuttle_schedule(workload, seed, trials_wanted, move |_| tick.inc(1))?
        }
        None => (0..trials)
            .map(|_| {
                let trial = real_threads(workload);
                bar.inc(1);
                trial
            })
            .collect::<Result<_, _>>()?,
    };
    bar.finish_and_clear();
    Ok(Summary::new(
        workload,
        services,
        args.seed,
        &trials,
        started.elapsed(),
    ))
}

/// A progress bar on stderr; indicatif hides it when stderr is not a terminal.
pub(crate) fn progress(variant: Variant, trials: u64) -> ProgressBar {
    let bar = ProgressBar::new(trials);
    let style = ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} trials {elapsed}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(variant.id());
    bar
}

/// Wall time in seconds, or `-` for seeded runs (which leave it out).
pub(crate) fn seconds(elapsed_ms: Option<u64>) -> String {
    elapsed_ms.map_or_else(
        || "-".to_owned(),
        |ms| format!("{:.1}s", ms as f64 / 1000.0),
    )
}

fn table(args: &Args, summaries: &[Summary]) -> String {
    let mut out = String::new();
    let Some(first) = summaries.first() else {
        return out;
    };
    let scheduler = match args.seed {
        Some(seed) => format!("shuttle random scheduler, seed {seed}"),
        None => "real threads".to_owned(),
    };
    let expected: Vec<String> = first
        .services
        .iter()
        .zip(&first.expected)
        .filter(|(_, e)| **e > 0)
        .map(|(s, e)| format!("{s} {e}"))
        .collect();
    let _ = writeln!(
        out,
        "lost-update reproduction: {} threads x {} calls, {} trials, {scheduler}",
        first.threads, first.calls_per_thread, first.trials
    );
    let _ = writeln!(
        out,
        "expected per trial: {} (total {})\n",
        expected.join(", "),
        first.expected_total
    );
    let _ = writeln!(
        out,
        "{:<14} {:>18} {:>10} {:>9} {:>10} {:>9}",
        "variant", "trials with loss", "mean lost", "max lost", "loss rate", "time"
    );
    for s in summaries {
        let _ = writeln!(
            out,
            "{:<14} {:>18} {:>10.2} {:>9} {:>9.2}% {:>8}",
            s.variant,
            format!("{} / {}", s.trials_with_loss, s.trials),
            s.mean_lost,
            s.max_lost,
            s.loss_rate * 100.0,
            seconds(s.elapsed_ms)
        );
        if s.trials_with_excess > 0 || s.trials_with_wrong_total > s.trials_with_loss {
            let _ = writeln!(
                out,
                "{:<14} also: {} trials counted calls never made, {} had a wrong total",
                "", s.trials_with_excess, s.trials_with_wrong_total
            );
        }
    }
    let _ = writeln!(
        out,
        "\nThe original Python service lost 48 of 100 updates (48 %) in its failing run; \
         53 of 200 trials of the pre-fix module failed."
    );
    if let Some(seed) = args.seed {
        for s in summaries.iter().filter(|s| s.trials_with_loss > 0) {
            let _ = writeln!(
                out,
                "replay {}: quota-verify repro --variant {} --threads {} --calls {} --trials {} --seed {seed}",
                s.variant, s.variant, s.threads, s.calls_per_thread, s.trials
            );
        }
    }
    out
}
