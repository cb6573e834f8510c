//! One line per model: printed, and appended as JSON to `$QUOTA_LOOM_REPORT` if set.

use std::io::Write as _;

use serde::Serialize;

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Must pass on the fixed core for every interleaving.
    Proof,
    /// A historical variant: loom must find a failing execution for the expected reason.
    Zoo,
    /// One of the seed note's rejected alternatives, with a verdict.
    Alternative,
}

/// The outcome of one model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// `group/name`, stable across runs (the gate compares it with a baseline).
    pub name: String,
    /// Proof, zoo or alternative.
    pub kind: Kind,
    /// The variant or alternative under test, if any.
    pub subject: Option<String>,
    /// Executions loom explored (up to the failing one, for a caught bug).
    pub executions: u64,
    /// Distinct behaviours among the passing executions: each thread's own events in order
    /// (`trace::behaviour_hash`). Unlike `executions`, it does not grow with the schedules
    /// loom needs to reach the same outcomes, so two versions of a model can be compared.
    pub behaviours: u64,
    /// Preemption bound; `None` means exhaustive.
    pub preemption_bound: Option<usize>,
    /// Wall time, milliseconds.
    pub elapsed_ms: u64,
    /// `pass` (every execution kept the invariants) or `caught` (a failing execution found).
    pub verdict: &'static str,
    /// For `caught`: the reason, as the expected marker.
    pub reason: Option<String>,
    /// For `caught`: the failing interleaving, one event per line, and the failed check.
    pub counterexample: Option<String>,
}

impl ModelReport {
    /// Prints the one-line summary and appends the JSON line to the report file.
    pub fn emit(&self) {
        let bound = self
            .preemption_bound
            .map_or_else(|| "none".to_owned(), |b| b.to_string());
        let reason = self
            .reason
            .as_deref()
            .map_or_else(String::new, |r| format!(" ({r})"));
        println!(
            "[loom] {:<46} {:<11} {:<7} executions={:<8} behaviours={:<5} bound={:<4} time={:.2}s{reason}",
            self.name,
            format!("{:?}", self.kind).to_lowercase(),
            self.verdict,
            self.executions,
            self.behaviours,
            bound,
            self.elapsed_ms as f64 / 1000.0,
        );
        if let Some(counterexample) = &self.counterexample {
            for line in counterexample.lines() {
                println!("         | {line}");
            }
        }
        let Ok(path) = std::env::var("QUOTA_LOOM_REPORT") else {
            return;
        };
        let line = match serde_json::to_string(self) {
            Ok(line) => line,
            Err(e) => panic!("cannot encode the report of {}: {e}", self.name),
        };
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(e) = appended {
            panic!("cannot append to QUOTA_LOOM_REPORT={path}: {e}");
        }
    }
}
