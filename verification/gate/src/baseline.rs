//! Release regression checks: this run against a stored report. Each kind of regression is
//! one check of the `baseline` tier, listing what regressed:
//!
//! - a check that passed in the baseline and is gone (a test deleted or renamed, a tier that
//!   stopped reporting);
//! - a zoo variant caught in the baseline and no longer caught;
//! - a loom model gone, or exploring fewer than half the executions it did (a model that
//!   silently shrank: a bound lowered, a thread or call removed);
//! - a benchmark figure worse than the baseline's by more than its stated margin.

use crate::report::{Better, Check, Report, Status};
use crate::tiers::BASELINE;

/// A loom model may explore down to this fraction of its baseline executions.
pub const LOOM_FLOOR: f64 = 0.5;

/// The comparisons, as checks.
pub fn compare(current: &Report, baseline: &Report) -> Vec<Check> {
    let ran = |tier: &str| !current.skipped_tiers.iter().any(|t| t == tier);
    let disappeared: Vec<String> = baseline
        .checks
        .iter()
        .filter(|b| b.status == Status::Pass && ran(&b.tier) && b.tier != BASELINE)
        .filter(|b| !current.checks.iter().any(|c| c.name == b.name))
        .map(|b| format!("{} ({})", b.name, b.tier))
        .collect();
    let no_longer_caught: Vec<String> = baseline
        .zoo
        .iter()
        .filter(|b| b.caught)
        // Judged only when a tier that caught it then ran now (check names are `tier/...`).
        .filter(|b| {
            b.caught_by
                .iter()
                .any(|check| ran(check.split('/').next().unwrap_or_default()))
        })
        .filter(|b| {
            !current
                .zoo
                .iter()
                .any(|c| c.variant == b.variant && c.caught)
        })
        .map(|b| format!("{} (was caught by {})", b.variant, b.caught_by.join(", ")))
        .collect();
    let loom: Vec<String> = if ran("loom") {
        baseline
            .loom
            .iter()
            .filter_map(|b| match current.loom.iter().find(|c| c.name == b.name) {
                None => Some(format!("{}: gone (explored {})", b.name, b.executions)),
                Some(c) if (c.executions as f64) < b.executions as f64 * LOOM_FLOOR => {
                    Some(format!(
                        "{}: {} executions, baseline {} (below {:.0} %)",
                        b.name,
                        c.executions,
                        b.executions,
                        LOOM_FLOOR * 100.0
                    ))
                }
                Some(_) => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    let bench: Vec<String> = if ran("bench") {
        baseline
            .benchmarks
            .iter()
            .filter_map(|b| {
                let Some(c) = current.benchmarks.iter().find(|c| c.name == b.name) else {
                    return Some(format!("{}: not measured any more", b.name));
                };
                let limit = match b.better {
                    Better::Lower => b.value * (1.0 + b.margin),
                    Better::Higher => b.value * (1.0 - b.margin),
                };
                let worse = match b.better {
                    Better::Lower => c.value > limit,
                    Better::Higher => c.value < limit,
                };
                worse.then(|| {
                    format!(
                        "{}: {:.3} {}, baseline {:.3} (margin {:.0} %, limit {:.3})",
                        b.name,
                        c.value,
                        c.unit,
                        b.value,
                        b.margin * 100.0,
                        limit
                    )
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    [
        ("checks-kept", disappeared),
        ("zoo-still-caught", no_longer_caught),
        ("loom-executions", loom),
        ("benchmarks", bench),
    ]
    .into_iter()
    .map(|(name, regressions)| Check {
        name: format!("{BASELINE}/{name}"),
        tier: BASELINE.to_owned(),
        status: if regressions.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        elapsed_ms: 0,
        detail: regressions.join("\n"),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Figure, LoomModel, ZooEntry};

    fn report() -> Report {
        Report {
            checks: vec![Check {
                name: "core::tests::a".into(),
                tier: "unit".into(),
                status: Status::Pass,
                elapsed_ms: 1,
                detail: String::new(),
            }],
            zoo: vec![ZooEntry {
                variant: "split-lock".into(),
                layer: "tracker".into(),
                caught: true,
                caught_by: vec!["loom/zoo/split-lock".into()],
                counterexample: String::new(),
            }],
            loom: vec![LoomModel {
                name: "rmw/3-threads".into(),
                executions: 414,
                preemption_bound: None,
                verdict: "pass".into(),
            }],
            benchmarks: vec![Figure {
                name: "store writes per 1,000 calls, 8 instances".into(),
                value: 0.2,
                unit: "writes".into(),
                better: Better::Lower,
                margin: 0.25,
            }],
            ..Report::default()
        }
    }

    #[test]
    fn each_kind_of_regression_fails_its_check() {
        let baseline = report();
        let same = compare(&report(), &baseline);
        assert!(same.iter().all(|c| c.status == Status::Pass), "{same:?}");
        let mut worse = report();
        worse.checks.clear();
        worse.zoo[0].caught = false;
        worse.loom[0].executions = 100;
        worse.benchmarks[0].value = 0.3;
        let checks = compare(&worse, &baseline);
        assert!(
            checks.iter().all(|c| c.status == Status::Fail),
            "{checks:?}"
        );
        assert!(checks[0].detail.contains("core::tests::a"));
        assert!(checks[2].detail.contains("100 executions, baseline 414"));
        // A variant whose catching tier was skipped by request is not judged.
        let mut skipped = report();
        skipped.zoo[0].caught = false;
        skipped.skipped_tiers = vec!["loom".into()];
        assert_eq!(compare(&skipped, &baseline)[1].status, Status::Pass);
        // Within the margin passes.
        let mut close = report();
        close.benchmarks[0].value = 0.24;
        assert_eq!(compare(&close, &baseline)[3].status, Status::Pass);
    }
}
