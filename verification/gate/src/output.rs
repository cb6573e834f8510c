//! The report in the forms people and CI systems read: a terminal table, JUnit XML, and a
//! Markdown summary for a pull-request comment.

use std::fmt::Write as _;

use crate::report::{Report, Status};

/// The at-a-glance table: one row per tier, then the verdict.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "tier", "checks", "passed", "failed", "skipped", "time"
    );
    for row in report.tiers() {
        let skipped_tier = report.skipped_tiers.contains(&row.tier);
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>7} {:>7} {:>7} {:>9}{}",
            row.tier,
            row.checks,
            row.passed,
            row.failed,
            row.skipped,
            seconds(row.elapsed_ms),
            if skipped_tier {
                "  (skipped by request)"
            } else {
                ""
            }
        );
    }
    let s = report.summary;
    let _ = writeln!(
        out,
        "{:<16} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "total",
        s.pass + s.fail + s.skip,
        s.pass,
        s.fail,
        s.skip,
        seconds(s.elapsed_ms)
    );
    out
}

/// The zoo table for the terminal.
pub fn zoo_table(report: &Report) -> String {
    let mut out = String::new();
    for entry in &report.zoo {
        let verdict = match report.status_of(&format!("zoo/{}", entry.variant)) {
            Some(Status::Pass) => "caught",
            Some(Status::Skip) => "skipped",
            _ => "MISSED",
        };
        let _ = writeln!(
            out,
            "{:<26} {:<8} {:<8} {}",
            entry.variant,
            entry.layer,
            verdict,
            entry.caught_by.join(", ")
        );
    }
    out
}

fn seconds(ms: u64) -> String {
    if ms >= 60_000 {
        format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

fn xml_escape(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r') || !c.is_control())
        .fold(String::with_capacity(text.len()), |mut out, c| {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                c => out.push(c),
            }
            out
        })
}

/// JUnit XML: one `testsuite` per tier, one `testcase` per check.
pub fn junit(report: &Report) -> String {
    let s = report.summary;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"quota-verify gate\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        s.pass + s.fail + s.skip,
        s.fail,
        s.skip,
        s.elapsed_ms as f64 / 1000.0
    );
    for row in report.tiers() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            xml_escape(&row.tier),
            row.checks,
            row.failed,
            row.skipped,
            row.elapsed_ms as f64 / 1000.0
        );
        for check in report.checks.iter().filter(|c| c.tier == row.tier) {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml_escape(&row.tier),
                xml_escape(&check.name),
                check.elapsed_ms as f64 / 1000.0
            );
            match check.status {
                Status::Pass => out.push_str("/>\n"),
                Status::Skip => {
                    let _ = writeln!(
                        out,
                        "><skipped message=\"{}\"/></testcase>",
                        xml_escape(&check.detail)
                    );
                }
                Status::Fail => {
                    let first = check.detail.lines().next().unwrap_or("failed");
                    let _ = writeln!(
                        out,
                        "><failure message=\"{}\">{}</failure></testcase>",
                        xml_escape(first),
                        xml_escape(&check.detail)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The Markdown summary: verdict, tier table, zoo table, failures with their details.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let verdict = if report.passed() {
        "✅ passed"
    } else {
        "❌ failed"
    };
    let _ = writeln!(out, "## quota-verify correctness gate: {verdict}\n");
    if !report.skipped_tiers.is_empty() {
        let _ = writeln!(
            out,
            "Skipped by request: {}.\n",
            report.skipped_tiers.join(", ")
        );
    }
    out.push_str(
        "| tier | checks | passed | failed | skipped | time |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for row in report.tiers() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.tier,
            row.checks,
            row.passed,
            row.failed,
            row.skipped,
            seconds(row.elapsed_ms)
        );
    }
    out.push_str("\n### The zoo\n\n| variant | layer | caught | caught by |\n|---|---|---|---|\n");
    for entry in &report.zoo {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            entry.variant,
            entry.layer,
            if entry.caught { "yes" } else { "**no**" },
            entry.caught_by.join("<br>")
        );
    }
    let examples: Vec<_> = report
        .zoo
        .iter()
        .filter(|z| !z.counterexample.is_empty())
        .collect();
    if !examples.is_empty() {
        out.push_str(
            "\n<details><summary>Counterexamples (the first catching check's)</summary>\n",
        );
        for entry in examples {
            let _ = writeln!(
                out,
                "\n`{}` — {}\n\n```\n{}\n```",
                entry.variant,
                entry.caught_by.first().map_or("", String::as_str),
                entry.counterexample.trim_end()
            );
        }
        out.push_str("</details>\n");
    }
    let failed: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .collect();
    if !failed.is_empty() {
        out.push_str("\n### Failures\n");
        for check in failed {
            let _ = writeln!(
                out,
                "\n<details><summary><code>{}</code> ({})</summary>\n\n```\n{}\n```\n</details>",
                check.name, check.tier, check.detail
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Check, TierTime};

    #[test]
    fn junit_escapes_and_counts() {
        let mut report = Report {
            checks: vec![
                Check {
                    name: "a::b".into(),
                    tier: "unit".into(),
                    status: Status::Pass,
                    elapsed_ms: 5,
                    detail: String::new(),
                },
                Check {
                    name: "zoo/split-lock".into(),
                    tier: "zoo".into(),
                    status: Status::Fail,
                    elapsed_ms: 0,
                    detail: "lost <2> & \"more\"\n\u{1b}[31mred".into(),
                },
            ],
            tier_times: vec![TierTime {
                tier: "unit".into(),
                elapsed_ms: 1500,
            }],
            ..Report::default()
        };
        report.summarize(2000);
        let xml = junit(&report);
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains("lost &lt;2&gt; &amp; &quot;more&quot;"),
            "{xml}"
        );
        assert!(!xml.contains('\u{1b}'), "control characters dropped");
        assert!(table(&report).contains("unit"), "{}", table(&report));
        assert!(markdown(&report).contains("❌ failed"));
    }
}
