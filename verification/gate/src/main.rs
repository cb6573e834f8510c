//! `quota-gate`: the correctness gate. Runs every verification tier (unit, lost-update,
//! linearizability, loom, dynamodb, fleet, bench), judges the zoo (every historical variant must
//! be caught by some check), optionally compares with a baseline report, and writes
//! `report.json`, `junit.xml` and `summary.md`.
//!
//! Run it through `scripts/gate`, which also sets up the container engine and the emulator
//! image. Exit status: 0 when every check passed and every variant was caught, 1 when not,
//! 2 for bad arguments, 3 when the gate itself could not run or write its report.

mod baseline;
mod bench;
mod emulator;
mod interrupt;
mod nextest;
mod output;
mod probe;
mod reaper;
mod report;
mod tiers;
mod zoo;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use clap::Parser;

use crate::emulator::SharedEmulator;
use crate::nextest::{Invocation, tail};
use crate::report::{Check, Figure, Report, Status, TierTime};
use crate::tiers::{Runner, TIERS, Tier};

/// The quota-verify correctness gate.
///
/// Runs every tier of the verification harness, checks that every historical bug of the
/// original service (the zoo) is caught by at least one check, and writes a report:
/// report.json (machine-readable), junit.xml (for CI systems) and summary.md (for a
/// pull-request comment), in --out.
///
/// Exit status: 0 all checks passed and every variant was caught; 1 something failed (the
/// summary names it); 2 bad arguments; 3 the gate could not run or write its report.
#[derive(Debug, Parser)]
#[command(name = "quota-gate", version, after_help = tiers_help())]
struct Args {
    /// Skip a tier (repeatable). Skipped tiers are marked in the report; a tier skipped any
    /// other way (it could not run) fails the gate.
    #[arg(long, value_name = "TIER", value_parser = clap::builder::PossibleValuesParser::new(tiers::names()))]
    skip: Vec<String>,

    /// Run only this tier (repeatable): every other tier is skipped by request, as with
    /// --skip. For a quick look at one tier; a release check runs them all.
    #[arg(long, value_name = "TIER", value_parser = clap::builder::PossibleValuesParser::new(tiers::names()), conflicts_with = "skip")]
    only: Vec<String>,

    /// Compare with a stored report: checks that disappeared, variants no longer caught,
    /// loom models run with a lower preemption bound, exploring under half their executions
    /// or (passing) showing fewer distinct behaviours, benchmark figures worse than their
    /// margin. Each fails the gate.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,

    /// With --baseline, leave wall-clock figures out of the comparison (they move with the
    /// machine); checks, the zoo, loom executions and bounds, and counted figures (store
    /// writes) are still compared. What CI does (scripts/test); a release compares all.
    #[arg(long, requires = "baseline")]
    no_timings: bool,

    /// Store this run's report as a baseline (only when the gate passed).
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,

    /// Where the reports and logs go.
    #[arg(long, value_name = "DIR", default_value = "target/gate")]
    out: PathBuf,
}

fn tiers_help() -> String {
    let mut help = String::from("Tiers, in the order they run:\n");
    for tier in TIERS {
        help.push_str(&format!("  {:<16} {}\n", tier.name, tier.about));
    }
    help.push_str(&format!(
        "  {:<16} derived: one check per historical variant (caught by which checks)\n",
        tiers::ZOO
    ));
    help.push_str(&format!(
        "  {:<16} derived, with --baseline: the regression comparisons\n",
        tiers::BASELINE
    ));
    help
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = interrupt::install() {
        eprintln!("warning: {e}: an interrupted gate may leave its tests or emulator running");
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(3)
        }
    }
}

impl Args {
    /// The tiers skipped by request, from --skip or --only.
    fn skipped(&self) -> Vec<String> {
        if self.only.is_empty() {
            return self.skip.clone();
        }
        tiers::names()
            .into_iter()
            .filter(|name| !self.only.iter().any(|o| o == name))
            .map(str::to_owned)
            .collect()
    }
}

fn run(args: &Args) -> Result<bool, String> {
    let skipped = args.skipped();
    if !Path::new("verification/gate/Cargo.toml").exists() {
        return Err("run the gate from the workspace root (scripts/gate does)".to_owned());
    }
    let baseline = args.baseline.as_deref().map(read_baseline).transpose()?;
    let files = Files::prepare(&args.out)?;
    let started = Instant::now();
    let mut report = Report {
        skipped_tiers: skipped.clone(),
        ..Report::default()
    };
    run_tiers(&skipped, &files, &mut report);
    judge_zoo(&files, &skipped, &mut report);
    if let Some(baseline) = &baseline {
        let comparisons = baseline::compare(&report, baseline, !args.no_timings);
        report.checks.extend(comparisons);
    }
    report.summarize(started.elapsed().as_millis() as u64);
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    files.write("report.json", json.clone())?;
    files.write("junit.xml", output::junit(&report))?;
    files.write("summary.md", output::markdown(&report))?;
    print_summary(&report, &args.out);
    let passed = report.passed();
    if let Some(path) = &args.write_baseline {
        if passed && skipped.is_empty() {
            std::fs::write(path, json)
                .map_err(|e| format!("cannot write the baseline {}: {e}", path.display()))?;
            println!("baseline written to {}", path.display());
        } else {
            println!(
                "baseline NOT written to {}: only a passing run of every tier makes a baseline",
                path.display()
            );
            return Ok(false);
        }
    }
    Ok(passed)
}

fn read_baseline(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the baseline {}: {e}", path.display()))?;
    serde_json::from_str::<Report>(&text).map_err(|e| {
        format!(
            "the baseline {} is not a gate report (report.json): {e}",
            path.display()
        )
    })
}

/// Where a run writes: the reports, the per-tier logs, and the evidence and loom report the
/// tests append to (emptied at the start).
struct Files {
    out: PathBuf,
    logs: PathBuf,
    evidence: PathBuf,
    loom_report: PathBuf,
}

impl Files {
    fn prepare(out: &Path) -> Result<Self, String> {
        let out = std::env::current_dir()
            .map_err(|e| format!("no current directory: {e}"))?
            .join(out);
        let logs = out.join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let files = Self {
            evidence: out.join("evidence.jsonl"),
            loom_report: out.join("loom.jsonl"),
            logs,
            out,
        };
        for file in [&files.evidence, &files.loom_report] {
            std::fs::write(file, "")
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        }
        for entry in std::fs::read_dir(&files.logs)
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(files)
    }

    fn write(&self, name: &str, text: String) -> Result<(), String> {
        let path = self.out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// What one tier produced.
#[derive(Default)]
struct TierRun {
    checks: Vec<Check>,
    /// The bench tier's figures, for the report and the baseline.
    benchmarks: Vec<Figure>,
    elapsed_ms: u64,
}

/// Runs every tier not skipped, in order, except that a tier marked `beside_emulator` runs
/// in the background while the emulator tiers after it run; background tiers are joined
/// before the next tier that runs in the foreground without the emulator. Results are
/// recorded in tier order.
fn run_tiers(skipped: &[String], files: &Files, report: &mut Report) {
    let is_skipped = |name: &str| skipped.iter().any(|s| s == name);
    let mut runs: Vec<Option<TierRun>> = TIERS.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let mut background = Vec::new();
        for (i, tier) in TIERS.iter().enumerate() {
            let emulator_later = TIERS[i + 1..]
                .iter()
                .any(|later| later.needs_emulator && !is_skipped(later.name));
            let in_background = tier.beside_emulator && emulator_later && !is_skipped(tier.name);
            if !tier.needs_emulator && !in_background {
                join_all(&mut background, &mut runs);
            }
            eprintln!("[{}/{}] {} — {}", i + 1, TIERS.len(), tier.name, tier.about);
            if is_skipped(tier.name) {
                eprintln!("  skipped by request");
                runs[i] = Some(skipped_run(tier));
                continue;
            }
            if in_background {
                eprintln!("  running in the background beside the emulator tiers");
                let handle = scope.spawn(move || timed(tier, files, false));
                background.push((i, handle));
                continue;
            }
            runs[i] = Some(timed(tier, files, true));
        }
        join_all(&mut background, &mut runs);
    });
    for (tier, run) in TIERS.iter().zip(runs.into_iter().flatten()) {
        if run.elapsed_ms > 0 || !is_skipped(tier.name) {
            report.tier_times.push(TierTime {
                tier: tier.name.to_owned(),
                elapsed_ms: run.elapsed_ms,
            });
        }
        report.checks.extend(run.checks);
        report.benchmarks.extend(run.benchmarks);
    }
}

/// A tier running in the background: its index in `TIERS` and its thread.
type Background<'scope> = Vec<(usize, std::thread::ScopedJoinHandle<'scope, TierRun>)>;

/// Waits for every background tier, oldest first, and records what each produced.
fn join_all(background: &mut Background<'_>, runs: &mut [Option<TierRun>]) {
    for (at, handle) in background.drain(..) {
        runs[at] = Some(join(handle, TIERS[at].name));
    }
}

/// The single check of a tier skipped by request.
fn skipped_run(tier: &Tier) -> TierRun {
    TierRun {
        checks: vec![Check {
            name: format!("{}/*", tier.name),
            tier: tier.name.to_owned(),
            status: Status::Skip,
            elapsed_ms: 0,
            detail: "skipped by request (--skip or --only)".to_owned(),
        }],
        ..TierRun::default()
    }
}

/// Runs one tier and says how it went.
fn timed(tier: &Tier, files: &Files, visible: bool) -> TierRun {
    let started = Instant::now();
    let log = files.logs.join(format!("{}.log", tier.name));
    let (checks, benchmarks) = run_tier(tier, &log, files, visible);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    eprintln!(
        "  {}: {} checks, {} failed, {:.1}s",
        tier.name,
        checks.len(),
        failed,
        elapsed_ms as f64 / 1000.0
    );
    TierRun {
        checks,
        benchmarks,
        elapsed_ms,
    }
}

/// Waits for a background tier; a panic in it becomes a failed check, not a lost tier.
fn join(handle: std::thread::ScopedJoinHandle<'_, TierRun>, tier: &str) -> TierRun {
    eprintln!("  waiting for the background tier {tier}");
    handle.join().unwrap_or_else(|_| TierRun {
        checks: vec![nextest::failure(
            tier,
            "run",
            0,
            "the gate's thread running this tier panicked".to_owned(),
        )],
        ..TierRun::default()
    })
}

/// Reads the evidence and loom report the tests wrote and judges the zoo with them.
fn judge_zoo(files: &Files, skipped: &[String], report: &mut Report) {
    let mut findings =
        quota_evidence::read(&std::fs::read_to_string(&files.evidence).unwrap_or_default())
            .unwrap_or_else(|e| {
                report.checks.push(Check {
                    name: "zoo/evidence".to_owned(),
                    tier: tiers::ZOO.to_owned(),
                    status: Status::Fail,
                    elapsed_ms: 0,
                    detail: format!("{}: {e}", files.evidence.display()),
                });
                Vec::new()
            });
    let loom_lines =
        zoo::read_loom(&std::fs::read_to_string(&files.loom_report).unwrap_or_default());
    findings.extend(zoo::loom_findings(&loom_lines));
    report.loom = zoo::loom_models(&loom_lines);
    let (entries, zoo_checks) = zoo::judge(&findings, skipped);
    report.zoo = entries;
    report.checks.extend(zoo_checks);
}

fn print_summary(report: &Report, out: &Path) {
    println!("\n{}", output::table(report));
    println!("zoo:\n{}", output::zoo_table(report));
    for check in report.checks.iter().filter(|c| c.status == Status::Fail) {
        println!("FAILED {} ({})", check.name, check.tier);
        for line in nextest::last_lines(&check.detail, 25).lines() {
            println!("    {line}");
        }
    }
    println!(
        "gate {}: reports in {} (report.json, junit.xml, summary.md)",
        if report.passed() { "PASSED" } else { "FAILED" },
        out.display()
    );
}

fn run_tier(tier: &Tier, log: &Path, files: &Files, visible: bool) -> (Vec<Check>, Vec<Figure>) {
    let failed = |what: &str, detail: String| {
        (
            vec![nextest::failure(tier.name, what, 0, detail)],
            Vec::new(),
        )
    };
    if tier.needs_emulator
        && let Err(detail) = set_up_emulator_once(log)
    {
        return failed("setup", detail);
    }
    let mut env = vec![(
        quota_evidence::ENV.to_owned(),
        files.evidence.display().to_string(),
    )];
    // Kept until the tier's tests are done; dropped, the container is removed.
    let _shared = if tier.shared_emulator {
        match SharedEmulator::start() {
            Ok(server) => {
                env.push((emulator::ENDPOINT_VAR.to_owned(), server.endpoint.clone()));
                Some(server)
            }
            Err(detail) => return failed("emulator", detail),
        }
    } else {
        None
    };
    let run_args = tier
        .test_threads
        .map(|n| vec!["--test-threads".to_owned(), n.to_string()])
        .unwrap_or_default();
    let invocation = match tier.runner {
        Runner::Bench => {
            let (check, figures) = bench::run(&files.out, log);
            let probe = probe::run(&figures, log);
            return (vec![check, probe], figures);
        }
        Runner::Workspace { filter } => Invocation {
            tier: tier.name,
            select: ["--workspace", "--all-features", "--locked", "-E", filter]
                .map(str::to_owned)
                .to_vec(),
            run_args,
            env,
            visible,
        },
        // As scripts/loom: release, --cfg loom only for this crate's build, its own target dir.
        Runner::Loom => Invocation {
            tier: tier.name,
            select: [
                "--locked",
                "-p",
                "quota-loom",
                "--cargo-profile",
                "release",
                "--target-dir",
                "target/loom",
            ]
            .map(str::to_owned)
            .to_vec(),
            run_args,
            env: env
                .into_iter()
                .chain([
                    ("RUSTFLAGS".to_owned(), "--cfg loom".to_owned()),
                    (
                        "QUOTA_LOOM_REPORT".to_owned(),
                        files.loom_report.display().to_string(),
                    ),
                ])
                .collect(),
            visible,
        },
    };
    (nextest::run(&invocation, log).checks, Vec::new())
}

/// `set_up_emulator` once per gate run: emulator tiers running at the same time wait for the
/// first one's setup and share its outcome.
fn set_up_emulator_once(log: &Path) -> Result<(), String> {
    static SETUP: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    SETUP.get_or_init(|| set_up_emulator(log)).clone()
}

/// Runs `scripts/dynamodb-setup` (engine installed and started, image built), logging it.
fn set_up_emulator(log: &Path) -> Result<(), String> {
    eprintln!("  setting up the container engine and emulator image (scripts/dynamodb-setup)");
    let file = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let copy = file.try_clone().map_err(|e| e.to_string())?;
    let status = interrupt::status(
        Command::new("bash")
            .arg("scripts/dynamodb-setup")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(copy),
    )
    .map_err(|e| format!("cannot run scripts/dynamodb-setup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "scripts/dynamodb-setup failed ({status}):\n{}",
            tail(log, 30)
        ))
    }
}
