//! Running a tier's tests with `cargo nextest`: list them (which builds them, behind a
//! spinner), then run them with nextest's libtest-JSON stream, one check per test, behind a
//! progress bar.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::report::{Check, Status};

/// A nextest invocation: the arguments that select the tests, and the environment.
pub struct Invocation {
    /// The tier the checks belong to.
    pub tier: &'static str,
    /// Arguments after `list`/`run` that select packages, profile and filter.
    pub select: Vec<String>,
    /// Extra `run` arguments (e.g. `--test-threads 1`).
    pub run_args: Vec<String>,
    /// Environment for the build and the tests.
    pub env: Vec<(String, String)>,
    /// Whether to draw a spinner and a progress bar (not for a tier run in the background,
    /// whose bars would fight the foreground tier's).
    pub visible: bool,
}

/// What running the invocation produced.
pub struct Outcome {
    /// One check per test, plus a `<tier>/build` or `<tier>/run` check when nextest itself
    /// failed.
    pub checks: Vec<Check>,
}

/// Lists, then runs, the tests; `log` receives nextest's and cargo's own output.
pub fn run(invocation: &Invocation, log: &Path) -> Outcome {
    let spinner = if invocation.visible {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    let spinner = spinner.with_style(
        ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(200));
    spinner.set_message(format!("{}: building", invocation.tier));
    let started = Instant::now();
    let listed = list(invocation, log, &spinner);
    spinner.finish_and_clear();
    let expected = match listed {
        Ok(expected) => expected,
        Err(detail) => {
            return Outcome {
                checks: vec![Check {
                    name: format!("{}/build", invocation.tier),
                    tier: invocation.tier.to_owned(),
                    status: Status::Fail,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    detail,
                }],
            };
        }
    };
    eprintln!(
        "  {}: built in {:.0?}, {expected} tests",
        invocation.tier,
        started.elapsed()
    );
    execute(invocation, log, expected)
}

fn command(invocation: &Invocation, verb: &str, log: &Path) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .arg("nextest")
        .arg(verb)
        .args(&invocation.select)
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .env("NEXTEST_EXPERIMENTAL_LIBTEST_JSON", "1")
        // A failure's detail is the test's own message and counterexample, not a backtrace.
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        Ok(file) => command.stderr(file),
        Err(_) => command.stderr(Stdio::null()),
    };
    command
}

/// The number of tests that will run; builds them on the way.
fn list(invocation: &Invocation, log: &Path, spinner: &ProgressBar) -> Result<usize, String> {
    let mut child = crate::interrupt::spawn(
        command(invocation, "list", log).args(["--message-format", "json"]),
    )
    .map_err(|e| format!("cannot start cargo nextest: {e} (install cargo-nextest)"))?;
    let mut stdout = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            stdout.push_str(&line);
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    spinner.finish_and_clear();
    if !status.success() {
        return Err(format!(
            "building or listing the tests failed ({status}); the end of {}:\n{}",
            log.display(),
            tail(log, 40)
        ));
    }
    let listing: Value = serde_json::from_str(&stdout)
        .map_err(|e| format!("nextest's listing is not the JSON expected: {e}"))?;
    let suites = listing["rust-suites"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    Ok(suites
        .values()
        .filter_map(|suite| suite["testcases"].as_object())
        .flat_map(|cases| cases.values())
        .filter(|case| case["filter-match"]["status"] == "matches")
        .count())
}

fn execute(invocation: &Invocation, log: &Path, expected: usize) -> Outcome {
    let tier = invocation.tier;
    let bar = if invocation.visible {
        ProgressBar::new(expected as u64)
    } else {
        ProgressBar::hidden()
    };
    let bar = bar.with_style(
        ProgressStyle::with_template("  {msg:<16} [{bar:30}] {pos}/{len} [{elapsed}] {prefix}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(tier);
    let mut checks = Vec::new();
    let started = Instant::now();
    let child = crate::interrupt::spawn(
        command(invocation, "run", log)
            .args(["--no-fail-fast", "--message-format", "libtest-json-plus"])
            .args(&invocation.run_args),
    );
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            bar.finish_and_clear();
            return Outcome {
                checks: vec![failure(
                    tier,
                    "run",
                    0,
                    format!("cannot start cargo nextest: {e}"),
                )],
            };
        }
    };
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["type"] != "test" {
                continue;
            }
            let name = event["name"].as_str().unwrap_or("?").replace('$', "::");
            let status = match event["event"].as_str() {
                Some("started") => {
                    bar.set_prefix(short(&name));
                    continue;
                }
                Some("ok") => Status::Pass,
                Some("failed") => Status::Fail,
                Some("ignored") => Status::Skip,
                _ => continue,
            };
            let elapsed_ms = (event["exec_time"].as_f64().unwrap_or(0.0) * 1000.0) as u64;
            let detail = match status {
                Status::Pass => String::new(),
                Status::Skip => "marked #[ignore]: not run".to_owned(),
                Status::Fail => {
                    let output = event["stdout"].as_str().unwrap_or("");
                    bar.suspend(|| eprintln!("  FAIL {name}"));
                    last_lines(output, 60)
                }
            };
            bar.inc(1);
            checks.push(Check {
                name,
                tier: tier.to_owned(),
                status,
                elapsed_ms,
                detail,
            });
        }
    }
    let status = child.wait();
    bar.finish_and_clear();
    let ran_all = checks.len() == expected;
    let nextest_ok = status.as_ref().is_ok_and(|s| s.success());
    let any_failed = checks.iter().any(|c| c.status == Status::Fail);
    if !ran_all || (!nextest_ok && !any_failed) {
        checks.push(failure(
            tier,
            "run",
            started.elapsed().as_millis() as u64,
            format!(
                "nextest ran {} of {expected} tests and ended with {status:?}; the end of {}:\n{}",
                checks.len(),
                log.display(),
                tail(log, 40)
            ),
        ));
    }
    Outcome { checks }
}

/// A failed check named `<tier>/<what>`: a step of the tier that could not run.
pub fn failure(tier: &str, what: &str, elapsed_ms: u64, detail: String) -> Check {
    Check {
        name: format!("{tier}/{what}"),
        tier: tier.to_owned(),
        status: Status::Fail,
        elapsed_ms,
        detail,
    }
}

/// The test's own name, for the progress line.
fn short(name: &str) -> String {
    name.rsplit("::").next().unwrap_or(name).to_owned()
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[... {skip} lines above]\n"));
    }
    out.push_str(&lines[skip..].join("\n"));
    out
}

/// The log file at `path`, opened for appending twice: a child's stdout and stderr.
pub fn log_sinks(path: &Path) -> std::io::Result<(std::process::Stdio, std::process::Stdio)> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    Ok((file.try_clone()?.into(), file.into()))
}

/// The last `n` lines of the file at `path`.
pub fn tail(path: &Path, n: usize) -> String {
    last_lines(&std::fs::read_to_string(path).unwrap_or_default(), n)
}
