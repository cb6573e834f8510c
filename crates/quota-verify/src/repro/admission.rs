//! `quota-verify repro --workload admission`: threads admit, call the provider and admit
//! again until refused; the fixed tracker must never count past the ceiling.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use quota_harness::Variant;
use quota_harness::admission::{
    AdmissionSummary, AdmissionTrial, AdmissionWorkload, real_threads, shuttle_schedule,
};

use super::{Args, BAD_ARGUMENTS, CANNOT_RUN};

/// The variants this workload shows: the fix and check-then-act.
fn admission_variants() -> Vec<Variant> {
    Variant::ALL
        .iter()
        .copied()
        .filter(|v| !v.is_buggy() || v.overshoots_in_repro())
        .collect()
}

/// Runs the admission workload and returns the exit code.
pub(super) fn run(args: &Args) -> ExitCode {
    let variants = match super::chosen_variants(args, &admission_variants(), "admission") {
        Ok(variants) => variants,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(BAD_ARGUMENTS);
        }
    };
    let mut summaries = Vec::with_capacity(variants.len());
    for variant in variants {
        let workload = AdmissionWorkload {
            variant,
            threads: usize::try_from(args.threads.unwrap_or(100)).unwrap_or(usize::MAX),
            call: Duration::from_millis(args.call_ms.unwrap_or(2)),
            refund_every: args.refund_every.unwrap_or(0),
        };
        match run_variant(&workload, args) {
            Ok(summary) => summaries.push(summary),
            Err(error) => {
                eprintln!("quota-verify repro: {variant}: could not run: {error}");
                return ExitCode::from(CANNOT_RUN);
            }
        }
    }
    let fixed_broken = summaries
        .iter()
        .any(|s| s.variant == Variant::Fixed.id() && !s.held());
    super::report(
        args,
        &summaries,
        || table(args, &summaries),
        fixed_broken.then_some("the fixed tracker admitted past the ceiling or miscounted"),
    )
}

fn run_variant(
    workload: &AdmissionWorkload,
    args: &Args,
) -> Result<AdmissionSummary, quota_tracker::QuotaError> {
    let trials = args.trials.unwrap_or(20);
    let bar = super::progress(workload.variant, trials);
    let started = Instant::now();
    let results: Vec<AdmissionTrial> = match args.seed {
        Some(seed) => {
            let wanted = usize::try_from(trials).unwrap_or(usize::MAX);
            let results = shuttle_schedule(workload, seed, wanted)?;
            bar.inc(trials);
            results
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
    Ok(AdmissionSummary::new(
        workload,
        args.seed,
        &results,
        started.elapsed(),
    ))
}

fn table(args: &Args, summaries: &[AdmissionSummary]) -> String {
    let Some(first) = summaries.first() else {
        return String::new();
    };
    let mut out = header(args, first);
    let _ = writeln!(
        out,
        "{:<15} {:>20} {:>13} {:>16} {:>14} {:>8}",
        "variant",
        "trials over ceiling",
        "max admitted",
        "max over ceiling",
        "not conserved",
        "time"
    );
    for s in summaries {
        let _ = writeln!(
            out,
            "{:<15} {:>20} {:>13} {:>16} {:>14} {:>8}",
            s.variant,
            format!("{} / {}", s.trials_over_ceiling, s.trials),
            s.max_admitted,
            s.max_over_ceiling,
            s.trials_not_conserved,
            super::seconds(s.elapsed_ms)
        );
    }
    out.push_str(&footer(args, summaries));
    out
}

/// What ran: threads, service, trials, scheduler, limit and ceiling.
fn header(args: &Args, first: &AdmissionSummary) -> String {
    let scheduler = match args.seed {
        Some(seed) => format!("shuttle random scheduler, seed {seed} (each provider call a yield)"),
        None => format!("real threads, each provider call {} ms", first.call_ms),
    };
    let refunds = if first.refund_every > 0 {
        format!(
            "; every {}th admission of a thread given back",
            first.refund_every
        )
    } else {
        String::new()
    };
    format!(
        "admission: {} threads admit on {} until refused, {} trials, {scheduler}\n\
         limit {}, ceiling {} (used must stay at or under it){refunds}\n\n",
        first.threads, first.service, first.trials, first.limit, first.ceiling
    )
}

/// The original's figure, and how to replay each seeded overshoot.
fn footer(args: &Args, summaries: &[AdmissionSummary]) -> String {
    let mut out = String::from(
        "\nThe landed core before admission existed, used as its README said (can_call, a 2 ms \
         call, record_call), ended at 179 of a limit of 100 with 100 threads in 5 of 5 trials.\n",
    );
    if let Some(seed) = args.seed {
        for s in summaries.iter().filter(|s| s.trials_over_ceiling > 0) {
            let _ = writeln!(
                out,
                "replay {}: quota-verify repro --workload admission --variant {} --threads {} --trials {} --seed {seed}",
                s.variant, s.variant, s.threads, s.trials
            );
        }
    }
    out
}
