//! Release regression checks: this run against a stored report. Each kind of regression is
//! one check of the `baseline` tier, listing what regressed:
//!
//! - a check that passed in the baseline and is gone (a test deleted or renamed, a tier that
//!   stopped reporting);
//! - a zoo variant caught in the baseline and no longer caught;
//! - a loom model gone, run with a lower preemption bound than the baseline's, exploring
//!   fewer than half the executions it did, or, passing, showing fewer distinct behaviours
//!   than it did (a model that silently shrank: a thread or call removed; the behaviours
//!   catch a shrink the executions floor lets through);
//! - a benchmark figure worse than the baseline's by more than its stated margin.

use crate::report::{Better, Check, Figure, LoomModel, Report, Status};
use crate::tiers::BASELINE;

/// A loom model may explore down to this fraction of its baseline executions.
pub const LOOM_FLOOR: f64 = 0.5;

/// The comparisons, as checks. Without `timings`, wall-clock figures are left out (they
/// move with the machine: the release checklist compares them); counts are still compared.
pub fn compare(current: &Report, baseline: &Report, timings: bool) -> Vec<Check> {
    let ran = |tier: &str| !current.skipped_tiers.iter().any(|t| t == tier);
    let loom = if ran("loom") {
        loom_regressions(current, baseline)
    } else {
        Vec::new()
    };
    let bench = if ran("bench") {
        bench_regressions(current, baseline, timings)
    } else {
        Vec::new()
    };
    [
        ("checks-kept", disappeared(current, baseline, &ran)),
        (
            "zoo-still-caught",
            no_longer_caught(current, baseline, &ran),
        ),
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

/// Checks that passed in the baseline, in a tier that ran, and are gone.
fn disappeared(current: &Report, baseline: &Report, ran: &dyn Fn(&str) -> bool) -> Vec<String> {
    baseline
        .checks
        .iter()
        .filter(|b| b.status == Status::Pass && ran(&b.tier) && b.tier != BASELINE)
        .filter(|b| !current.checks.iter().any(|c| c.name == b.name))
        .map(|b| format!("{} ({})", b.name, b.tier))
        .collect()
}

/// Variants caught in the baseline and not now; judged only when a tier that caught it then
/// ran now (check names are `tier/...`).
fn no_longer_caught(
    current: &Report,
    baseline: &Report,
    ran: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    baseline
        .zoo
        .iter()
        .filter(|b| b.caught)
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
        .collect()
}

/// Loom models gone, run with a lower preemption bound than the baseline's
/// (`QUOTA_LOOM_MAX_PREEMPTIONS` lowers every model's), exploring under [`LOOM_FLOOR`] of
/// their executions, or passing with fewer behaviours.
fn loom_regressions(current: &Report, baseline: &Report) -> Vec<String> {
    baseline
        .loom
        .iter()
        .flat_map(|b| match current.loom.iter().find(|c| c.name == b.name) {
            None => vec![format!("{}: gone (explored {})", b.name, b.executions)],
            Some(c) => [
                lowered_bound(c, b),
                fewer_executions(c, b),
                fewer_behaviours(c, b),
            ]
            .into_iter()
            .flatten()
            .collect(),
        })
        .collect()
}

/// A model run with a lower preemption bound than the baseline's (`None` is exhaustive: any
/// bound is lower than it).
fn lowered_bound(c: &LoomModel, b: &LoomModel) -> Option<String> {
    let bound = |b: Option<u64>| b.map_or_else(|| "none".to_owned(), |n| n.to_string());
    let lowered = match (c.preemption_bound, b.preemption_bound) {
        (Some(now), Some(then)) => now < then,
        (Some(_), None) => true,
        (None, _) => false,
    };
    lowered.then(|| {
        format!(
            "{}: preemption bound {}, baseline {}",
            b.name,
            bound(c.preemption_bound),
            bound(b.preemption_bound)
        )
    })
}

/// A model exploring under [`LOOM_FLOOR`] of its baseline executions.
fn fewer_executions(c: &LoomModel, b: &LoomModel) -> Option<String> {
    ((c.executions as f64) < b.executions as f64 * LOOM_FLOOR).then(|| {
        format!(
            "{}: {} executions, baseline {} (below {:.0} %)",
            b.name,
            c.executions,
            b.executions,
            LOOM_FLOOR * 100.0
        )
    })
}

/// A model that passed in both runs showing fewer distinct behaviours than in the baseline
/// (loom's search is deterministic: at the same bound, the same model shows the same set).
/// A caught model stops at its first failure, so its count says nothing.
fn fewer_behaviours(c: &LoomModel, b: &LoomModel) -> Option<String> {
    let passed = |m: &LoomModel| m.verdict == "pass";
    let (Some(now), Some(then)) = (c.behaviours, b.behaviours) else {
        return None;
    };
    (passed(c) && passed(b) && now < then)
        .then(|| format!("{}: {now} behaviours, baseline {then}", b.name))
}

/// Benchmark figures gone, or worse than the baseline's by more than their margin (only the
/// counts, without `timings`).
fn bench_regressions(current: &Report, baseline: &Report, timings: bool) -> Vec<String> {
    baseline
        .benchmarks
        .iter()
        .filter(|b| timings || !b.is_timing())
        .filter_map(|b| {
            let c = current.benchmarks.iter().find(|c| c.name == b.name);
            figure_regression(b, c)
        })
        .collect()
}

/// How `current` regressed from the baseline's figure `b` (worse by more than `b`'s margin,
/// or not measured), or `None`.
pub fn figure_regression(b: &Figure, current: Option<&Figure>) -> Option<String> {
    let Some(c) = current else {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{LoomModel, ZooEntry};

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
                behaviours: Some(7),
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
        let same = compare(&report(), &baseline, true);
        assert!(same.iter().all(|c| c.status == Status::Pass), "{same:?}");
        let mut worse = report();
        worse.checks.clear();
        worse.zoo[0].caught = false;
        worse.loom[0].executions = 100;
        worse.benchmarks[0].value = 0.3;
        let checks = compare(&worse, &baseline, true);
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
        assert_eq!(compare(&skipped, &baseline, true)[1].status, Status::Pass);
        // Within the margin passes.
        let mut close = report();
        close.benchmarks[0].value = 0.24;
        assert_eq!(compare(&close, &baseline, true)[3].status, Status::Pass);
    }

    #[test]
    fn a_passing_model_with_fewer_behaviours_is_a_regression_even_with_as_many_executions() {
        let baseline = report();
        // A call removed from one thread: as many executions, fewer distinct behaviours.
        let mut shrunk = report();
        shrunk.loom[0].behaviours = Some(5);
        let check = &compare(&shrunk, &baseline, false)[2];
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.detail.contains("5 behaviours, baseline 7"),
            "{}",
            check.detail
        );
        // More is fine; a caught model, or a report from before behaviours, is not judged.
        let mut grown = report();
        grown.loom[0].behaviours = Some(9);
        assert_eq!(compare(&grown, &baseline, false)[2].status, Status::Pass);
        let mut caught = shrunk.clone();
        caught.loom[0].verdict = "caught".into();
        assert_eq!(compare(&caught, &baseline, false)[2].status, Status::Pass);
        let mut old = report();
        old.loom[0].behaviours = None;
        assert_eq!(compare(&shrunk, &old, false)[2].status, Status::Pass);
    }

    #[test]
    fn a_lowered_preemption_bound_is_a_regression_even_with_as_many_executions() {
        let baseline = report();
        // QUOTA_LOOM_MAX_PREEMPTIONS=2 on a model that ran exhaustively.
        let mut bounded = report();
        bounded.loom[0].preemption_bound = Some(2);
        let check = &compare(&bounded, &baseline, false)[2];
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.detail.contains("preemption bound 2, baseline none"),
            "{}",
            check.detail
        );
        let mut deeper = report();
        deeper.loom[0].preemption_bound = Some(4);
        let mut base4 = report();
        base4.loom[0].preemption_bound = Some(3);
        assert_eq!(
            compare(&deeper, &base4, false)[2].status,
            Status::Pass,
            "raised: fine"
        );
        assert_eq!(
            compare(&base4, &deeper, false)[2].status,
            Status::Fail,
            "lowered"
        );
    }

    #[test]
    fn instruction_counts_are_compared_within_2_percent_even_without_timings() {
        let figure = |value| Figure {
            name: "instructions per call, record_call, fixed core on parking_lot".into(),
            value,
            unit: "instructions".into(),
            better: Better::Lower,
            margin: 0.02,
        };
        let mut baseline = report();
        baseline.benchmarks = vec![figure(125.0)];
        let mut now = report();
        // Three more instructions a call (a throwaway change: 2.4 %) fail; two (1.6 %) pass.
        now.benchmarks = vec![figure(128.0)];
        let check = &compare(&now, &baseline, false)[3];
        assert_eq!(check.status, Status::Fail);
        assert!(
            check
                .detail
                .contains("128.000 instructions, baseline 125.000"),
            "{}",
            check.detail
        );
        now.benchmarks = vec![figure(127.0)];
        assert_eq!(compare(&now, &baseline, false)[3].status, Status::Pass);
    }

    #[test]
    fn without_timings_only_wall_clock_figures_are_left_out() {
        let mut baseline = report();
        baseline.benchmarks.push(Figure {
            name: "record_call ratio".into(),
            value: 2.0,
            unit: "x floor".into(),
            better: Better::Lower,
            margin: 1.0,
        });
        let mut slow = report();
        slow.benchmarks = baseline.benchmarks.clone();
        slow.benchmarks[1].value = 9.0;
        assert_eq!(compare(&slow, &baseline, true)[3].status, Status::Fail);
        assert_eq!(compare(&slow, &baseline, false)[3].status, Status::Pass);
        // A count is still compared.
        slow.benchmarks[0].value = 0.3;
        assert_eq!(compare(&slow, &baseline, false)[3].status, Status::Fail);
    }
}
