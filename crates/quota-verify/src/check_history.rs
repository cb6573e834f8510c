//! `quota-verify check-history`: is a recorded history linearizable?

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use linearizability::jsonl::{self, JsonModel};
use linearizability::models::{CasRegister, Kv, Quota, Register};
use linearizability::{Verdict, check, report};
use serde_json::json;

/// Exit code: linearizable.
const LINEARIZABLE: u8 = 0;
/// Exit code: not linearizable.
const NOT_LINEARIZABLE: u8 = 1;
/// Exit code: the time limit was reached before a verdict.
const UNKNOWN: u8 = 2;
/// Exit code: the input (file or arguments) could not be used.
pub const UNUSABLE: u8 = 3;

/// Check whether a recorded concurrent history is linearizable.
///
/// The history is JSON Lines, one event per line in real-time order, with Jepsen's field
/// names: {"process": 3, "type": "invoke"|"ok"|"fail"|"info", "f": "cas", "key": "k1",
/// "value": [1, 4]}. "key" is optional (partitioned models use it); other fields are
/// ignored. An invocation with no completion by the end of the file counts as "info": it may
/// have taken effect at any point after its invocation, or not at all.
///
/// Models: quota (per service, the key: record COUNT -> used after, read -> [used,
/// remaining], can-call -> bool, sync), register (read, write; initially null),
/// cas-register (read, write, cas [expected, new]; a failed cas saw another value), kv (get,
/// put, append on strings per key; a missing key reads "").
///
/// Exit status: 0 linearizable, 1 not linearizable, 2 unknown (time limit reached),
/// 3 unusable input (the line number and what was wrong are printed).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  quota-verify check-history --model cas-register etcd-001.jsonl
  quota-verify check-history --model quota run.jsonl --html run.html --timeout 60 --json")]
pub struct Args {
    /// The sequential specification to check against.
    #[arg(long, value_enum)]
    model: ModelName,

    /// The history file (JSON Lines); `-` reads standard input.
    file: PathBuf,

    /// Give up after this many seconds with exit status 2 ("unknown"). [default: no limit]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    timeout: Option<Duration>,

    /// Also write a self-contained HTML page showing the operations on a timeline per process.
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModelName {
    Quota,
    Register,
    CasRegister,
    Kv,
}

fn seconds(input: &str) -> Result<Duration, String> {
    input
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| "expected a number of seconds, 0 or more (e.g. 30 or 2.5)".to_owned())
}

/// Runs the command and returns its exit code.
pub fn run(args: &Args) -> ExitCode {
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(&args.file)
    };
    let text = match text {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "quota-verify check-history: cannot read {}: {e}",
                args.file.display()
            );
            return ExitCode::from(UNUSABLE);
        }
    };
    match args.model {
        ModelName::Quota => run_model(&Quota::default(), "quota", &text, args),
        ModelName::Register => run_model(&Register, "register", &text, args),
        ModelName::CasRegister => run_model(&CasRegister, "cas-register", &text, args),
        ModelName::Kv => run_model(&Kv, "kv", &text, args),
    }
}

fn run_model<M: JsonModel>(model: &M, name: &str, text: &str, args: &Args) -> ExitCode {
    let parsed = match jsonl::parse(model, text) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!(
                "quota-verify check-history: {} is not a usable {name} history: {e}",
                args.file.display()
            );
            return ExitCode::from(UNUSABLE);
        }
    };
    let history = &parsed.operations;
    let result = check(model, history, args.timeout);
    if let Some(path) = &args.html
        && let Err(e) = std::fs::write(path, report::html(model, history, &result))
    {
        eprintln!(
            "quota-verify check-history: cannot write {}: {e}",
            path.display()
        );
        return ExitCode::from(UNUSABLE);
    }
    if args.json {
        let failing = result
            .partitions
            .iter()
            .find(|p| p.verdict == Verdict::NotLinearizable)
            .map(|p| {
                let describe = |i: usize| {
                    let op = &history[i];
                    json!({
                        "process": op.process,
                        "operation": model.describe(&op.input, &op.outcome),
                        "line": parsed.lines[i].0,
                    })
                };
                json!({
                    "key": p.key,
                    "operations": p.operations.len(),
                    "longest_prefix": p.linearization.iter().map(|&i| describe(i)).collect::<Vec<_>>(),
                    "stuck": p.stuck.map(describe),
                })
            });
        let object = json!({
            "verdict": result.verdict,
            "model": name,
            "file": args.file.display().to_string(),
            "operations": result.operations,
            "partitions": result.partitions.len(),
            "elapsed_ms": result.elapsed.as_secs_f64() * 1000.0,
            "failing_partition": failing,
        });
        println!("{object}");
    } else {
        print!("{}", report::text(model, history, &result));
        if let Some(path) = &args.html {
            println!("HTML report: {}", path.display());
        }
    }
    ExitCode::from(match result.verdict {
        Verdict::Linearizable => LINEARIZABLE,
        Verdict::NotLinearizable => NOT_LINEARIZABLE,
        Verdict::Unknown => UNKNOWN,
    })
}
