//! A result as text and as a self-contained HTML page (no network fetches).

use std::fmt::Write as _;

use crate::checker::{CheckResult, PartitionResult, Stopped, Verdict};
use crate::history::Operation;
use crate::model::Model;

fn verdict_text(result: &CheckResult) -> String {
    match result.verdict {
        Verdict::Linearizable => "linearizable".to_owned(),
        Verdict::NotLinearizable => "not linearizable".to_owned(),
        Verdict::Unknown => {
            let why = result
                .partitions
                .iter()
                .filter_map(|p| p.stopped)
                .find(|s| *s != Stopped::Cancelled)
                .unwrap_or(Stopped::Cancelled);
            format!("unknown ({})", stopped_text(why))
        }
    }
}

fn partition_verdict_text(p: &PartitionResult) -> String {
    match (p.verdict, p.stopped) {
        (Verdict::Unknown, Some(why)) => format!("unknown ({})", stopped_text(why)),
        (Verdict::Unknown, None) => "unknown".to_owned(),
        (Verdict::Linearizable, _) => "linearizable".to_owned(),
        (Verdict::NotLinearizable, _) => "not linearizable".to_owned(),
    }
}

/// Why a search stopped, as reports say it.
pub fn stopped_text(stopped: Stopped) -> &'static str {
    match stopped {
        Stopped::TimeLimit => "time limit reached",
        Stopped::MemoryLimit => "memory limit reached",
        Stopped::Cancelled => "stopped: another part failed first",
    }
}

fn partition_name(p: &PartitionResult) -> String {
    p.key
        .as_ref()
        .map_or_else(|| "the history".to_owned(), |k| format!("partition {k:?}"))
}

fn span<I, O>(op: &Operation<I, O>) -> String {
    match op.ret {
        Some(ret) => format!("[{}, {}]", op.call, ret),
        None => format!("[{}, ?]", op.call),
    }
}

/// A text report: the verdict, and for a failing partition its longest linearizable prefix
/// and the operation that cannot be placed after it.
pub fn text<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    result: &CheckResult,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} operations in {} partition(s), {:.1} ms",
        verdict_text(result),
        result.operations,
        result.partitions.len(),
        result.elapsed.as_secs_f64() * 1000.0
    );
    for p in result
        .partitions
        .iter()
        .filter(|p| p.verdict == Verdict::NotLinearizable)
    {
        let _ = writeln!(
            out,
            "\n{} ({} operations) is not linearizable.",
            partition_name(p),
            p.operations.len()
        );
        let _ = writeln!(
            out,
            "Longest linearizable prefix ({} operations), in linearization order:",
            p.linearization.len()
        );
        let mut state = model.init();
        for (n, &i) in p.linearization.iter().enumerate() {
            let op = &history[i];
            if let crate::model::Next::One(s) | crate::model::Next::Either(s, _) =
                model.step(&state, &op.input, &op.outcome)
            {
                state = s;
            }
            let _ = writeln!(
                out,
                "  {:>3}. p{} {}  {}  => {}",
                n + 1,
                op.process,
                model.describe(&op.input, &op.outcome),
                span(op),
                model.describe_state(&state)
            );
        }
        if let Some(i) = p.stuck {
            let op = &history[i];
            let _ = writeln!(
                out,
                "Cannot be placed next (it returned at {} and no state allows it): p{} {}  {}",
                op.ret.map_or_else(|| "?".to_owned(), |r| r.to_string()),
                op.process,
                model.describe(&op.input, &op.outcome),
                span(op)
            );
        }
    }
    for p in result
        .partitions
        .iter()
        .filter(|p| p.verdict == Verdict::Unknown)
    {
        let _ = writeln!(
            out,
            "{}: not decided ({} operations; {}; longest linearizable prefix found: {} operations)",
            partition_name(p),
            p.operations.len(),
            p.stopped.map_or("not checked", stopped_text),
            p.linearization.len()
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML page: per partition, the operations on a timeline per process,
/// the longest linearizable prefix numbered in green, the operation that cannot be placed
/// in red, the rest in grey.
pub fn html<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    result: &CheckResult,
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>linearizability: {}</title>\n\
         <style>\n\
         body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}\n\
         h1{{font-size:20px}} h2{{font-size:16px;margin-top:28px}}\n\
         .row{{position:relative;height:30px;border-bottom:1px solid #eee}}\n\
         .label{{position:absolute;left:0;width:60px;top:7px;color:#666}}\n\
         .lane{{position:absolute;left:64px;right:8px;top:0;bottom:0}}\n\
         .op{{position:absolute;top:4px;height:22px;border-radius:4px;font-size:11px;overflow:hidden;\
         white-space:nowrap;padding:3px 4px;box-sizing:border-box;min-width:6px}}\n\
         .lin{{background:#cdeccd;border:1px solid #3a3}} .stuck{{background:#f6c9c9;border:2px solid #c22}}\n\
         .other{{background:#eee;border:1px solid #aaa}} .info{{border-style:dashed}}\n\
         .legend span{{display:inline-block;padding:2px 8px;margin-right:8px;border-radius:4px}}\n\
         pre{{background:#f7f7f7;padding:12px;overflow:auto}}\n\
         </style></head><body>\n",
        verdict_text(result)
    );
    let _ = writeln!(
        out,
        "<h1>{}: {} operations, {} partition(s)</h1>",
        escape(&verdict_text(result)),
        result.operations,
        result.partitions.len()
    );
    let _ = writeln!(
        out,
        "<p class=\"legend\"><span class=\"lin\">n. linearized (order n)</span>\
         <span class=\"stuck\">cannot be placed</span><span class=\"other\">not reached</span>\
         <span class=\"other info\">outcome unknown</span></p>"
    );
    let (min, max) = history.iter().fold((u64::MAX, 0u64), |(lo, hi), op| {
        (lo.min(op.call), hi.max(op.ret.unwrap_or(op.call)))
    });
    let end = max.saturating_add(1).max(min.saturating_add(1));
    let x = |t: u64| (t.saturating_sub(min)) as f64 / (end - min) as f64 * 100.0;
    for p in &result.partitions {
        let _ = writeln!(
            out,
            "<h2>{}: {} ({} operations)</h2>",
            escape(&partition_name(p)),
            escape(&partition_verdict_text(p)),
            p.operations.len()
        );
        let mut processes: Vec<u64> = p.operations.iter().map(|&i| history[i].process).collect();
        processes.sort_unstable();
        processes.dedup();
        for process in processes {
            let _ = write!(
                out,
                "<div class=\"row\"><div class=\"label\">p{process}</div><div class=\"lane\">"
            );
            for &i in p
                .operations
                .iter()
                .filter(|&&i| history[i].process == process)
            {
                let op = &history[i];
                let order = p.linearization.iter().position(|&j| j == i);
                let class = match (order, p.stuck == Some(i)) {
                    (_, true) => "stuck",
                    (Some(_), _) => "lin",
                    _ => "other",
                };
                let info = if op.ret.is_none() { " info" } else { "" };
                let (left, right) = (x(op.call), x(op.ret.unwrap_or(end)));
                let text = model.describe(&op.input, &op.outcome);
                let label = order.map_or_else(|| text.clone(), |n| format!("{}. {text}", n + 1));
                let _ = write!(
                    out,
                    "<div class=\"op {class}{info}\" style=\"left:{left:.3}%;width:{:.3}%\" \
                     title=\"p{process} {} {}\">{}</div>",
                    (right - left).max(0.3),
                    escape(&text),
                    escape(&span(op)),
                    escape(&label)
                );
            }
            let _ = writeln!(out, "</div></div>");
        }
    }
    let _ = writeln!(
        out,
        "<h2>Report</h2><pre>{}</pre>",
        escape(&text(model, history, result))
    );
    out.push_str("</body></html>\n");
    out
}
