//! `quota-verify repro`: reproduce the lost-update bug of the original service.

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

/// Reproduce the lost-update bug: threads record calls concurrently, then the counters are
/// compared with what was recorded.
///
/// Thread i records CALLS single calls on service (i mod 3) of tiingo, finnhub, sendgrid, as in
/// the original Python test (2 threads: tiingo and finnhub, 100 calls each). That test lost 48
/// of 100 updates before the fix.
///
/// Exit status: 0 when the fixed tracker counted every trial exactly (whatever the historical
/// variants lost), 1 when the fixed tracker lost or double-counted a call, 2 for invalid
/// arguments, 3 when the run could not be carried out.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  quota-verify repro                                  all variants, 2 threads x 100 calls, 200 trials
  quota-verify repro --variant split-lock --threads 100 --trials 20
  quota-verify repro --variant unlocked-rmw --seed 7 --json    deterministic, under shuttle")]
pub struct Args {
    /// Read-modify-write to run; repeat for several. [default: all]
    ///
    /// fixed: one critical section (the fix). unlocked-rmw: get, modify, set back field by
    /// field with no lock across. split-lock: lock for the get, lock again for the set.
    #[arg(long = "variant", value_name = "VARIANT", value_parser = parse_variant)]
    variants: Vec<Variant>,

    /// Concurrent threads.
    #[arg(long, default_value_t = 2, allow_negative_numbers = true, value_parser = whole_number::<10_000>)]
    threads: u64,

    /// Calls each thread records.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_parser = whole_number::<10_000_000>)]
    calls: u64,

    /// Independent trials per variant.
    #[arg(long, default_value_t = 200, allow_negative_numbers = true, value_parser = whole_number::<1_000_000>)]
    trials: u64,

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
    let variant: Variant = input
        .parse()
        .map_err(|e: quota_tracker::zoo::ParseVariantError| e.to_string())?;
    let usable = repro_variants();
    if usable.contains(&variant) {
        return Ok(variant);
    }
    let ids: Vec<&str> = usable.iter().map(|v| v.id()).collect();
    Err(format!(
        "variant {variant} ({}) does not lose updates in this workload, which only records \
         calls concurrently; the loom models check it (scripts/loom). Expected one of {}",
        variant.description(),
        ids.join(", ")
    ))
}

/// Runs the command and returns its exit code.
pub fn run(args: &Args) -> ExitCode {
    let variants = if args.variants.is_empty() {
        repro_variants()
    } else {
        dedup(&args.variants)
    };
    let services: Vec<String> = QuotaConfig::default().names().map(str::to_owned).collect();
    let mut summaries = Vec::with_capacity(variants.len());
    for variant in variants {
        let workload = Workload {
            variant,
            threads: usize::try_from(args.threads).unwrap_or(usize::MAX),
            calls: args.calls,
        };
        match run_variant(&workload, args, services.clone()) {
            Ok(summary) => summaries.push(summary),
            Err(error) => {
                eprintln!("quota-verify repro: {variant}: could not run: {error}");
                return ExitCode::from(CANNOT_RUN);
            }
        }
    }
    if args.json {
        for summary in &summaries {
            match serde_json::to_string(summary) {
                Ok(line) => println!("{line}"),
                Err(error) => {
                    eprintln!("quota-verify repro: cannot encode the result as JSON: {error}");
                    return ExitCode::from(CANNOT_RUN);
                }
            }
        }
    } else {
        print!("{}", table(args, &summaries));
    }
    let fixed_broken = summaries
        .iter()
        .any(|s| s.variant == Variant::Fixed.id() && !s.exact());
    if fixed_broken {
        eprintln!("quota-verify repro: the fixed tracker did not count every call exactly");
        ExitCode::from(FIXED_LOST)
    } else {
        ExitCode::from(OK)
    }
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
    let bar = progress(workload.variant, args.trials);
    let trials_wanted = usize::try_from(args.trials).unwrap_or(usize::MAX);
    let started = Instant::now();
    let trials: Vec<Trial> = match args.seed {
        Some(seed) => {
            let tick = bar.clone();
            shuttle_schedule(workload, seed, trials_wanted, move |_| tick.inc(1))?
        }
        None => (0..args.trials)
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
fn progress(variant: Variant, trials: u64) -> ProgressBar {
    let bar = ProgressBar::new(trials);
    let style = ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} trials {elapsed}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(variant.id());
    bar
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
            s.elapsed_ms.map_or_else(
                || "-".to_owned(),
                |ms| format!("{:.1}s", ms as f64 / 1000.0)
            )
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
