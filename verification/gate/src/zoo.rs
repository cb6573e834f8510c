//! The zoo table: for every historical variant of both layers, the checks that caught it
//! and a counterexample, from the findings the tests emitted (`quota_evidence`) and the
//! loom report.

use quota_evidence::Finding;
use quota_tracker::store_variants::StoreVariant;
use quota_tracker::zoo::Variant;

use crate::report::{Check, LoomModel, Status, ZooEntry};
use crate::tiers::ZOO;

/// One line of the loom report (`verification/loom/src/report.rs` writes it).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LoomLine {
    /// `group/name`.
    pub name: String,
    /// `proof`, `zoo` or `alternative`.
    pub kind: String,
    /// The variant, for a zoo model.
    pub subject: Option<String>,
    /// Executions explored.
    pub executions: u64,
    /// Preemption bound (`None`: exhaustive).
    pub preemption_bound: Option<u64>,
    /// Distinct behaviours among the passing executions (absent from older reports).
    #[serde(default)]
    pub behaviours: Option<u64>,
    /// `pass` or `caught`.
    pub verdict: String,
    /// The failing interleaving, when caught.
    pub counterexample: Option<String>,
}

/// Reads the loom report; unreadable lines are skipped (the tier's own checks fail then).
pub fn read_loom(text: &str) -> Vec<LoomLine> {
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The loom models as findings: a zoo model is a check on its variant, a proof model a
/// check on the fixed tracker.
pub fn loom_findings(lines: &[LoomLine]) -> Vec<Finding> {
    lines
        .iter()
        .filter(|l| l.kind == "zoo" || l.kind == "proof")
        .map(|l| {
            let variant = match (&l.subject, l.kind.as_str()) {
                (Some(subject), "zoo") => subject.clone(),
                _ => "fixed".to_owned(),
            };
            // A zoo model that finds its bug is `caught`; a proof that finds the fixed code
            // wrong is a `fail`, which is the same finding about `fixed`.
            let found_wrong = l.verdict == "caught" || l.verdict == "fail";
            Finding::new(
                format!("loom/{}", l.name),
                variant,
                found_wrong,
                l.counterexample.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// The loom figures kept in the report.
pub fn loom_models(lines: &[LoomLine]) -> Vec<LoomModel> {
    lines
        .iter()
        .map(|l| LoomModel {
            name: l.name.clone(),
            executions: l.executions,
            preemption_bound: l.preemption_bound,
            behaviours: l.behaviours,
            verdict: l.verdict.clone(),
        })
        .collect()
}

/// Every historical variant: (id, layer).
pub fn variants() -> Vec<(&'static str, &'static str)> {
    let tracker = Variant::ALL
        .iter()
        .filter(|v| v.is_buggy())
        .map(|v| (v.id(), "tracker"));
    let store = StoreVariant::ALL
        .iter()
        .filter(|v| v.is_buggy())
        .map(|v| (v.id(), "store"));
    tracker.chain(store).collect()
}

/// The tiers with a check aimed at `variant`: an uncaught variant is excused only when all
/// of them were skipped by request (a test keeps this in step with the baseline's evidence).
pub fn able_to_catch(variant: &str) -> &'static [&'static str] {
    if variant == StoreVariant::AckBeforeWrite.id() {
        // Every call lands in the end within one process: only a crash shows it.
        return &["fleet"];
    }
    if StoreVariant::ALL.iter().any(|v| v.id() == variant) {
        return &["dynamodb", "fleet"];
    }
    match variant {
        "unlocked-rmw" | "split-lock" | "check-then-act" => {
            &["lost-update", "linearizability", "loom"]
        }
        "torn-read" => &["lost-update", "linearizability", "loom"],
        _ => &["loom"],
    }
}

/// The tiers whose checks run against the fixed code too and must say so (`zoo/fixed`).
pub const REPORT_ON_FIXED: [&str; 5] = [
    "lost-update",
    "linearizability",
    "loom",
    "dynamodb",
    "fleet",
];

/// Which way a variant's checks must find the counts wrong, if it is one of the store's.
fn expected_direction(variant: &str) -> Option<&'static str> {
    StoreVariant::ALL
        .iter()
        .find(|v| v.id() == variant)
        .and_then(|v| v.shows_as())
}

/// The zoo table and its checks (one per variant, plus `zoo/fixed`: no check may call the
/// fixed tracker or store wrong, and every tier that ran must have reported on it).
pub fn judge(findings: &[Finding], skipped: &[String]) -> (Vec<ZooEntry>, Vec<Check>) {
    let mut entries = Vec::new();
    let mut checks = Vec::new();
    for (variant, layer) in variants() {
        // A store variant counts as caught only when its counts went wrong its own way.
        let direction = expected_direction(variant);
        let caught: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.variant == variant && f.caught)
            .filter(|f| direction.is_none_or(|way| f.shows(way)))
            .collect();
        let mut caught_by: Vec<String> = caught.iter().map(|f| f.check.clone()).collect();
        caught_by.dedup();
        let counterexample = caught
            .first()
            .map_or_else(String::new, |f| f.counterexample.clone());
        let entry = ZooEntry {
            variant: variant.to_owned(),
            layer: layer.to_owned(),
            caught: !caught.is_empty(),
            caught_by: caught_by.clone(),
            counterexample: counterexample.clone(),
        };
        let excused = able_to_catch(variant)
            .iter()
            .all(|tier| skipped.iter().any(|s| s == tier));
        let (status, detail) = if entry.caught {
            (Status::Pass, format!("caught by {}", caught_by.join(", ")))
        } else if !excused {
            let tried: Vec<&str> = findings
                .iter()
                .filter(|f| f.variant == variant)
                .map(|f| f.check.as_str())
                .collect();
            let fixed_fails = findings.iter().any(|f| f.variant == "fixed" && f.caught);
            let wrong_way = findings
                .iter()
                .any(|f| f.variant == variant && f.caught && !caught.contains(&f));
            (
                Status::Fail,
                if wrong_way {
                    format!(
                        "found wrong, but not {}: a check that calls any mismatch caught \
                         would pass a bug that errs the other way",
                        direction.unwrap_or("its way")
                    )
                } else if fixed_fails {
                    "not judged: checks also find the fixed code wrong (see zoo/fixed), and a \
                     variant's check stops at its failing control"
                        .to_owned()
                } else if tried.is_empty() {
                    "no check ran against this variant: a hole in the harness".to_owned()
                } else {
                    format!("not caught by {}: a hole in the harness", tried.join(", "))
                },
            )
        } else {
            (
                Status::Skip,
                format!(
                    "not caught, but every tier able to catch it ({}) was skipped by request",
                    able_to_catch(variant).join(", ")
                ),
            )
        };
        checks.push(Check {
            name: format!("zoo/{variant}"),
            tier: ZOO.to_owned(),
            status,
            elapsed_ms: 0,
            detail,
        });
        entries.push(entry);
    }
    checks.push(judge_fixed(findings, skipped));
    (entries, checks)
}

/// `zoo/fixed`: no check found the fixed code wrong, and every tier that ran and checks the
/// fixed code reported on it (a tier with no fixed finding proves nothing about it).
fn judge_fixed(findings: &[Finding], skipped: &[String]) -> Check {
    let false_alarms: Vec<String> = findings
        .iter()
        .filter(|f| f.variant == "fixed" && f.caught)
        .map(|f| format!("{}: {}", f.check, f.counterexample))
        .collect();
    let silent: Vec<&str> = REPORT_ON_FIXED
        .iter()
        .copied()
        .filter(|tier| !skipped.iter().any(|s| s == tier))
        .filter(|tier| {
            let prefix = format!("{tier}/");
            !findings
                .iter()
                .any(|f| f.variant == "fixed" && f.check.starts_with(&prefix))
        })
        .collect();
    let mut problems = Vec::new();
    if !false_alarms.is_empty() {
        problems.push(format!(
            "checks found the fixed tracker wrong:\n{}",
            false_alarms.join("\n")
        ));
    }
    if !silent.is_empty() {
        problems.push(format!(
            "no check of tier {} reported on the fixed code",
            silent.join(", ")
        ));
    }
    Check {
        name: "zoo/fixed".to_owned(),
        tier: ZOO.to_owned(),
        status: if problems.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        elapsed_ms: 0,
        detail: problems.join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncaught_variant_fails_and_says_which_checks_missed_it() {
        let findings = vec![
            Finding::new("loom/zoo/split-lock", "split-lock", true, "T1 ..."),
            Finding::new("lost-update/shuttle", "split-lock", true, "seed 42"),
            Finding::new("lost-update/shuttle", "torn-read", false, ""),
        ];
        let findings = [findings, fixed_reports()].concat();
        let (zoo, checks) = judge(&findings, &[]);
        let split = zoo
            .iter()
            .find(|z| z.variant == "split-lock")
            .expect("listed");
        assert!(split.caught);
        assert_eq!(
            split.caught_by,
            ["loom/zoo/split-lock", "lost-update/shuttle"]
        );
        assert_eq!(split.counterexample, "T1 ...");
        let status = |name: &str| {
            checks
                .iter()
                .find(|c| c.name == name)
                .map(|c| (c.status, c.detail.clone()))
                .expect("a check per variant")
        };
        assert_eq!(status("zoo/split-lock").0, Status::Pass);
        let (torn, detail) = status("zoo/torn-read");
        assert_eq!(torn, Status::Fail);
        assert!(
            detail.contains("not caught by lost-update/shuttle"),
            "{detail}"
        );
        assert_eq!(status("zoo/sync-overwrite").0, Status::Fail);
        assert_eq!(status("zoo/fixed").0, Status::Pass);
        let (_, skipped) = judge(&findings, &["loom".to_owned()]);
        assert!(skipped.iter().any(|c| c.status == Status::Skip));
        assert!(zoo.len() >= 13, "10 tracker + 3 store variants");
    }

    /// A report on the fixed code from every tier that must give one.
    fn fixed_reports() -> Vec<Finding> {
        REPORT_ON_FIXED
            .iter()
            .map(|tier| Finding::new(format!("{tier}/some-check"), "fixed", false, ""))
            .collect()
    }

    fn status_of(checks: &[Check], name: &str) -> (Status, String) {
        checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| (c.status, c.detail.clone()))
            .unwrap_or_else(|| panic!("no check {name}"))
    }

    #[test]
    fn a_skipped_tier_excuses_only_the_variants_no_tier_that_ran_could_catch() {
        // Nothing caught split-lock: skipping bench (or loom alone) must not excuse it.
        let findings = fixed_reports();
        for skipped in [vec!["bench".to_owned()], vec!["loom".to_owned()]] {
            let (_, checks) = judge(&findings, &skipped);
            let (status, detail) = status_of(&checks, "zoo/split-lock");
            assert_eq!(status, Status::Fail, "skipping {skipped:?}: {detail}");
        }
        // Loom is the only tier able to catch reentrant-deadlock: skipping it excuses that.
        let (_, checks) = judge(&findings, &["loom".to_owned()]);
        assert_eq!(status_of(&checks, "zoo/reentrant-deadlock").0, Status::Skip);
        assert_eq!(
            status_of(&checks, "zoo/torn-read").0,
            Status::Fail,
            "linearizability ran"
        );
        let every: Vec<String> = ["lost-update", "linearizability", "loom"]
            .map(str::to_owned)
            .to_vec();
        let (_, checks) = judge(&findings, &every);
        assert_eq!(status_of(&checks, "zoo/split-lock").0, Status::Skip);
    }

    #[test]
    fn zoo_fixed_fails_when_a_tier_that_ran_did_not_report_on_the_fixed_code() {
        let (_, checks) = judge(&fixed_reports(), &[]);
        assert_eq!(status_of(&checks, "zoo/fixed").0, Status::Pass);
        let without_dynamodb: Vec<Finding> = fixed_reports()
            .into_iter()
            .filter(|f| !f.check.starts_with("dynamodb/"))
            .collect();
        let (_, checks) = judge(&without_dynamodb, &[]);
        let (status, detail) = status_of(&checks, "zoo/fixed");
        assert_eq!(status, Status::Fail);
        assert!(detail.contains("no check of tier dynamodb"), "{detail}");
        // Unless that tier was skipped.
        let (_, checks) = judge(&without_dynamodb, &["dynamodb".to_owned()]);
        assert_eq!(status_of(&checks, "zoo/fixed").0, Status::Pass);
        let (_, checks) = judge(&[], &[]);
        assert_eq!(
            status_of(&checks, "zoo/fixed").0,
            Status::Fail,
            "no report at all"
        );
    }

    #[test]
    fn a_store_variant_found_wrong_the_other_way_is_not_caught() {
        let finding = |direction: Option<&str>| {
            let found = Finding::new(
                "dynamodb/after-apply-faults",
                "retry-double-apply",
                true,
                "x",
            )
            .with_direction(direction.map(str::to_owned));
            [vec![found], fixed_reports()].concat()
        };
        let verdict = |direction| {
            let (_, checks) = judge(&finding(direction), &[]);
            status_of(&checks, "zoo/retry-double-apply")
        };
        assert_eq!(verdict(Some("doubled")).0, Status::Pass);
        assert_eq!(verdict(Some("lost+doubled")).0, Status::Pass);
        let (status, detail) = verdict(Some("lost"));
        assert_eq!(status, Status::Fail);
        assert!(detail.contains("not doubled"), "{detail}");
        assert_eq!(
            verdict(None).0,
            Status::Fail,
            "a mismatch of no stated direction"
        );
    }

    #[test]
    fn the_tiers_able_to_catch_each_variant_cover_the_baseline_evidence() {
        let text = include_str!("../baseline.json");
        let baseline: crate::report::Report = serde_json::from_str(text).expect("baseline parses");
        for entry in &baseline.zoo {
            for check in &entry.caught_by {
                let tier = check.split('/').next().unwrap_or_default();
                assert!(
                    able_to_catch(&entry.variant).contains(&tier),
                    "{}: caught by {check}, but tier {tier} is not listed as able to catch it",
                    entry.variant
                );
            }
        }
        for (variant, _) in variants() {
            assert!(!able_to_catch(variant).is_empty(), "{variant}");
        }
    }

    #[test]
    fn a_failing_loom_proof_is_a_finding_against_the_fixed_code() {
        let lines = read_loom(
            r#"{"name":"rmw/2-threads","kind":"proof","subject":null,"executions":4,"preemption_bound":null,"verdict":"fail","counterexample":"T1 ..."}
{"name":"zoo/split-lock","kind":"zoo","subject":"split-lock","executions":3,"preemption_bound":null,"verdict":"caught","counterexample":"T2 ..."}
{"name":"alternative/rwlock","kind":"alternative","subject":"rwlock","executions":3,"preemption_bound":null,"verdict":"caught","counterexample":"x"}"#,
        );
        let findings = loom_findings(&lines);
        assert_eq!(findings.len(), 2, "alternatives are not zoo evidence");
        assert_eq!(
            findings[0],
            Finding::new("loom/rmw/2-threads", "fixed", true, "T1 ...")
        );
        let (_, checks) = judge(&findings, &[]);
        let fixed = checks
            .iter()
            .find(|c| c.name == "zoo/fixed")
            .expect("listed");
        assert_eq!(fixed.status, Status::Fail);
        let torn = checks
            .iter()
            .find(|c| c.name == "zoo/torn-read")
            .expect("listed");
        assert!(torn.detail.starts_with("not judged"), "{}", torn.detail);
    }
}
