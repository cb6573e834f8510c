//! The gate's report: every check with its status, the zoo table, loom's exploration figures,
//! benchmark figures, and the summary. Written as `report.json`; read back as a baseline.

use serde::{Deserialize, Serialize};

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
    /// `tracker` (quota_tracker::zoo) or `store` (quota_dynamodb::zoo).
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

    /// Whether the gate passes: no failed check, no unrequested skip, every variant caught.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| {
            c.status == Status::Pass
                || (c.status == Status::Skip && self.skipped_tiers.contains(&c.tier))
        }) && self.zoo.iter().all(|z| z.caught || self.zoo_excused(z))
    }

    /// A variant not caught only because the user skipped tiers is reported, not failed.
    pub fn zoo_excused(&self, entry: &ZooEntry) -> bool {
        !entry.caught && !self.skipped_tiers.is_empty()
    }

    /// Per tier, in order of first appearance: (tier, checks, passed, failed, skipped, ms).
    pub fn tiers(&self) -> Vec<(String, usize, usize, usize, usize, u64)> {
        let mut rows: Vec<(String, usize, usize, usize, usize, u64)> = Vec::new();
        for check in &self.checks {
            let index = match rows.iter().position(|r| r.0 == check.tier) {
                Some(index) => index,
                None => {
                    rows.push((check.tier.clone(), 0, 0, 0, 0, 0));
                    rows.len() - 1
                }
            };
            let row = &mut rows[index];
            row.1 += 1;
            match check.status {
                Status::Pass => row.2 += 1,
                Status::Fail => row.3 += 1,
                Status::Skip => row.4 += 1,
            }
        }
        for row in &mut rows {
            row.5 = self
                .tier_times
                .iter()
                .filter(|t| t.tier == row.0)
                .map(|t| t.elapsed_ms)
                .sum();
        }
        rows
    }
}
