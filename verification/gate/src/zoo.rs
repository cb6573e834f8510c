//! The zoo table: for every historical variant of both layers, the checks that caught it
//! and a counterexample, from the findings the tests emitted (`quota_evidence`) and the
//! loom report.

use quota_dynamodb::zoo::StoreVariant;
use quota_evidence::Finding;
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

/// The zoo table and its checks (one per variant, plus `zoo/fixed`: no check may call the
/// fixed tracker or store wrong).
pub fn judge(findings: &[Finding], skipped: &[String]) -> (Vec<ZooEntry>, Vec<Check>) {
    let mut entries = Vec::new();
    let mut checks = Vec::new();
    for (variant, layer) in variants() {
        let caught: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.variant == variant && f.caught)
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
        let (status, detail) = if entry.caught {
            (Status::Pass, format!("caught by {}", caught_by.join(", ")))
        } else if skipped.is_empty() {
            let tried: Vec<&str> = findings
                .iter()
                .filter(|f| f.variant == variant)
                .map(|f| f.check.as_str())
                .collect();
            let fixed_fails = findings.iter().any(|f| f.variant == "fixed" && f.caught);
            (
                Status::Fail,
                if fixed_fails {
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
                    "not caught, but tiers {} were skipped by request",
                    skipped.join(", ")
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
    let false_alarms: Vec<String> = findings
        .iter()
        .filter(|f| f.variant == "fixed" && f.caught)
        .map(|f| format!("{}: {}", f.check, f.counterexample))
        .collect();
    checks.push(Check {
        name: "zoo/fixed".to_owned(),
        tier: ZOO.to_owned(),
        status: if false_alarms.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        elapsed_ms: 0,
        detail: if false_alarms.is_empty() {
            String::new()
        } else {
            format!(
                "checks found the fixed tracker wrong:\n{}",
                false_alarms.join("\n")
            )
        },
    });
    (entries, checks)
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
            Finding::new("dynamodb/conservation", "fixed", false, ""),
        ];
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
        assert!(zoo.len() >= 12, "9 tracker + 3 store variants");
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
