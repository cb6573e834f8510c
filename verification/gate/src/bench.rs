//! The bench tier: `quota-bench --quick --json`, one check, and its figures for the baseline.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::nextest::{log_sinks, tail};
use crate::report::{Check, Figure, Status};

/// `cargo run --release -p quota-bench -- MODE --json JSON`, its output appended to `log`.
pub fn quota_bench(mode: &str, json: &Path, log: &Path) -> std::io::Result<Command> {
    let (stdout, stderr) = log_sinks(log)?;
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args([
            "run",
            "--release",
            "--locked",
            "-q",
            "-p",
            "quota-bench",
            "--",
        ])
        .args([mode, "--json"])
        .arg(json)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    Ok(command)
}

/// Builds and runs the quick benchmarks; returns the check and the figures.
pub fn run(out_dir: &Path, log: &Path) -> (Check, Vec<Figure>) {
    let started = Instant::now();
    let json = out_dir.join("bench.json");
    let _ = std::fs::remove_file(&json);
    eprintln!("  bench: building and running quota-bench --quick (release)");
    let status =
        quota_bench("--quick", &json, log).and_then(|mut c| crate::interrupt::status(&mut c));
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let figures = std::fs::read_to_string(&json)
        .ok()
        .and_then(|text| serde_json::from_str::<Vec<Figure>>(&text).ok());
    let (status, detail, figures) = match (status, figures) {
        (Ok(s), Some(figures)) if s.success() => (Status::Pass, String::new(), figures),
        (status, _) => (
            Status::Fail,
            format!(
                "quota-bench did not produce its figures ({status:?}); the end of {}:\n{}",
                log.display(),
                tail(log, 30)
            ),
            Vec::new(),
        ),
    };
    let check = Check {
        name: "bench/quota-bench-quick".to_owned(),
        tier: "bench".to_owned(),
        status,
        elapsed_ms,
        detail,
    };
    (check, figures)
}
