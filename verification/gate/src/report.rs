//! The gate's report: every check with its status, the zoo table, loom's exploration figures,
//! benchmark figures, and the summary. Written as `report.json`; read back as a baseline.

use serde::{Deserialize, Serialize};

use crate::tiers::ZOO;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It ran and held.
    Pass,
    /// It ran and failed, or could not run.
    Fail,
    /// It did not run (by request, which the detail says).
    Skip,
}

/// One check: a test, a model, a zoo variant, a baseline comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name (`crate::binary::test`, `zoo/<variant>`, `baseline/<what>`).
    pub name: String,
    /// The tier that ran it.
    pub tier: String,
    /// Pass, fail or skip.
    pub status: Status,
    /// Wall time.
    pub elapsed_ms: u64,
    /// Why it failed or was skipped, with the counterexample or output; empty on a pass.
    pub detail: String,
}

/// One historical variant and what caught it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooEntry {
    /// The variant's id, as in `original-service.md`.
    pub variant: String,
    /// `tracker` (quota_tracker::zoo) or `store` (quota_tracker::store_variants).
    pub layer: String,
    /// Whether at least one check caught it.
    pub caught: bool,
    /// The checks that caught it.
    pub caught_by: Vec<String>,
    /// The first catching check's counterexample (a loom interleaving, a shrunk history, a
    /// shuttle seed, table counts).
    pub counterexample: String,
}

/// How much of the state space one loom model explored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoomModel {
    /// The model's name (`rmw/2-threads`, `zoo/split-lock`, ...).
    pub name: String,
    /// Executions explored (up to the failing one, for a caught variant).
    pub executions: u64,
    /// Preemption bound; `None` is exhaustive.
    pub preemption_bound: Option<u64>,
    /// Distinct behaviours among the passing executions (each thread's events in order);
    /// `None` in reports from before they were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviours: Option<u64>,
    /// `pass` or `caught`.
    pub verdict: String,
}

/// Which way a benchmark figure improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Smaller is better (a cost).
    Lower,
    /// Larger is better (a saving).
    Higher,
}

/// One benchmark figure and the regression margin it is held to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// Which way is better.
    pub better: Better,
    /// How much worse than the baseline, as a fraction (0.5 = 50 %), still passes.
    pub margin: f64,
}

impl Figure {
    /// Whether the figure is a wall-clock measurement (moves with the machine), as opposed
    /// to a count that repeats run to run (store writes, requests, instructions).
    pub fn is_timing(&self) -> bool {
        !matches!(self.unit.as_str(), "writes" | "requests" | "instructions")
    }
}

/// How long one tier took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierTime {
    /// The tier.
    pub tier: String,
    /// Wall time, build included.
    pub elapsed_ms: u64,
}

/// Totals over the checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Checks that passed.
    pub pass: usize,
    /// Checks that failed.
    pub fail: usize,
    /// Checks skipped.
    pub skip: usize,
    /// Wall time of the whole gate.
    pub elapsed_ms: u64,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Every check, in the order they ran.
    pub checks: Vec<Check>,
    /// Every historical variant.
    pub zoo: Vec<ZooEntry>,
    /// Loom's exploration per model (compared with a baseline).
    #[serde(default)]
    pub loom: Vec<LoomModel>,
    /// Benchmark figures (compared with a baseline).
    #[serde(default)]
    pub benchmarks: Vec<Figure>,
    /// Wall time of each tier that ran, build included.
    #[serde(default)]
    pub tier_times: Vec<TierTime>,
    /// Tiers skipped by request.
    #[serde(default)]
    pub skipped_tiers: Vec<String>,
    /// Totals.
    pub summary: Summary,
}

impl Report {
    /// Recomputes the summary from the checks.
    pub fn summarize(&mut self, elapsed_ms: u64) {
        let count = |status| self.checks.iter().filter(|c| c.status == status).count();
        self.summary = Summary {
            pass: count(Status::Pass),
            fail: count(Status::Fail),
            skip: count(Status::Skip),
            elapsed_ms,
        };
    }

    /// Whether the gate passes: every check passed, or was skipped because the user asked.
    ///
    /// The zoo's checks say for each variant whether it was caught (pass), missed (fail), or
    /// not judged because tiers were skipped by request (skip), so they need no rule here.
    /// Any other skip (a test marked `#[ignore]` in a tier that ran) fails the gate.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| match c.status {
            Status::Pass => true,
            Status::Fail => false,
            Status::Skip => c.tier == ZOO || self.skipped_tiers.contains(&c.tier),
        })
    }

    /// The status of the check called `name`.
    pub fn status_of(&self, name: &str) -> Option<Status> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.status)
    }

    /// One row per tier, in order of first appearance.
    pub fn tiers(&self) -> Vec<TierRow> {
        let mut rows: Vec<TierRow> = Vec::new();
        for check in &self.checks {
            let index = match rows.iter().position(|r| r.tier == check.tier) {
                Some(index) => index,
                None => {
                    rows.push(TierRow {
                        tier: check.tier.clone(),
                        ..TierRow::default()
                    });
                    rows.len() - 1
                }
            };
            let row = &mut rows[index];
            row.checks += 1;
            match check.status {
                Status::Pass => row.passed += 1,
                Status::Fail => row.failed += 1,
                Status::Skip => row.skipped += 1,
            }
        }
        for row in &mut rows {
            row.elapsed_ms = self
                .tier_times
                .iter()
                .filter(|t| t.tier == row.tier)
                .map(|t| t.elapsed_ms)
                .sum();
        }
        rows
    }
}

/// One tier's line of the summary table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierRow {
    /// The tier.
    pub tier: String,
    /// Its checks.
    pub checks: usize,
    /// How many passed.
    pub passed: usize,
    /// How many failed.
    pub failed: usize,
    /// How many were skipped.
    pub skipped: usize,
    /// Its wall time, build included.
    pub elapsed_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, tier: &str, status: Status) -> Check {
        Check {
            name: name.into(),
            tier: tier.into(),
            status,
            elapsed_ms: 0,
            detail: String::new(),
        }
    }

    #[test]
    fn only_requested_skips_pass() {
        let mut report = Report {
            checks: vec![
                check("a::t", "unit", Status::Pass),
                check("loom/*", "loom", Status::Skip),
                check("zoo/io-under-lock", ZOO, Status::Skip),
            ],
            skipped_tiers: vec!["loom".into()],
            ..Report::default()
        };
        assert!(report.passed(), "skipped by request, the rest passed");
        report
            .checks
            .push(check("a::ignored", "unit", Status::Skip));
        assert!(!report.passed(), "an #[ignore]d test in a tier that ran");
        report.checks.pop();
        report
            .checks
            .push(check("zoo/torn-read", ZOO, Status::Fail));
        assert!(!report.passed());
        assert_eq!(report.status_of("zoo/torn-read"), Some(Status::Fail));
        assert_eq!(report.tiers()[0].passed, 1);
    }
}
