//! Findings: what one check found about one historical variant (caught or not, and the
//! counterexample), for the correctness gate.
//!
//! A test that runs a check against a variant calls [`Finding::emit`]: the finding is
//! printed, and when `$QUOTA_EVIDENCE` names a file, appended to it as one JSON line. The
//! gate (`scripts/gate`) sets the variable, runs the tests, and reads the file to fill the
//! zoo table of its report: which checks caught each variant, with what counterexample.
//!
//! Tests still assert what they expect; a finding is a record, never a verdict.

use std::io::Write as _;

use serde::{Deserialize, Serialize};

/// The environment variable naming the findings file.
pub const ENV: &str = "QUOTA_EVIDENCE";

/// What one check found about one variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The check, `tier/name` (e.g. `dynamodb/conservation`), stable across runs.
    pub check: String,
    /// The variant's id (as in `original-service.md`), or `fixed`.
    pub variant: String,
    /// Whether the check found the variant wrong.
    pub caught: bool,
    /// What it found: counts, a shrunk history, a schedule to replay. Empty when not caught.
    pub counterexample: String,
    /// Which way the counts went wrong, when the check compares counts: [`LOST`],
    /// [`DOUBLED`] or both (`lost+doubled`). The gate requires each store variant's own
    /// direction, so a check that calls any mismatch "caught" cannot pass a bug that errs
    /// the other way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
}

/// Calls missing from the counts.
pub const LOST: &str = "lost";
/// Calls counted more than once.
pub const DOUBLED: &str = "doubled";

/// The direction of a comparison that found `lost` calls missing and `doubled` too many.
pub fn direction(lost: u64, doubled: u64) -> Option<String> {
    match (lost > 0, doubled > 0) {
        (true, true) => Some(format!("{LOST}+{DOUBLED}")),
        (true, false) => Some(LOST.to_owned()),
        (false, true) => Some(DOUBLED.to_owned()),
        (false, false) => None,
    }
}

impl Finding {
    /// A finding of `check` about `variant`.
    pub fn new(
        check: impl Into<String>,
        variant: impl Into<String>,
        caught: bool,
        counterexample: impl Into<String>,
    ) -> Self {
        Self {
            check: check.into(),
            variant: variant.into(),
            caught,
            counterexample: counterexample.into(),
            direction: None,
        }
    }

    /// The same finding, saying which way the counts went wrong (see [`direction`]).
    pub fn with_direction(mut self, direction: Option<String>) -> Self {
        self.direction = direction;
        self
    }

    /// Whether the finding says the counts went wrong `way` ([`LOST`] or [`DOUBLED`]).
    pub fn shows(&self, way: &str) -> bool {
        self.direction
            .as_deref()
            .is_some_and(|d| d.split('+').any(|part| part == way))
    }

    /// Prints the finding and appends it to `$QUOTA_EVIDENCE` when set.
    ///
    /// # Panics
    ///
    /// When the file is set but cannot be written: a gate that silently lost evidence would
    /// report a caught variant as a hole.
    pub fn emit(&self) {
        let verdict = match (&self.caught, &self.direction) {
            (true, Some(direction)) => format!("caught ({direction})"),
            (true, None) => "caught".to_owned(),
            (false, _) => "not caught".to_owned(),
        };
        println!("[evidence] {} on {}: {verdict}", self.check, self.variant);
        for line in self.counterexample.lines() {
            println!("           | {line}");
        }
        let Ok(path) = std::env::var(ENV) else {
            return;
        };
        let line = match serde_json::to_string(self) {
            Ok(line) => line,
            Err(e) => panic!("cannot encode the finding of {}: {e}", self.check),
        };
        // One write per line on a file opened for appending: lines from tests running in
        // parallel processes do not interleave.
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = appended {
            panic!("cannot append to {ENV}={path}: {e}");
        }
    }
}

/// Reads a findings file; lines that do not parse are returned as errors naming the line.
pub fn read(text: &str) -> Result<Vec<Finding>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .map_err(|e| format!("line {}: expected a finding ({e}): {line}", n + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_round_trip_and_bad_lines_are_named() {
        let finding = Finding::new("dynamodb/conservation", "sync-overwrite", true, "lost 3");
        let text = format!("{}\n\n", serde_json::to_string(&finding).expect("encodes"));
        assert_eq!(read(&text), Ok(vec![finding]));
        let error = read("{}\nnot json").expect_err("bad lines");
        assert!(error.starts_with("line 1: expected a finding"), "{error}");
    }
}
