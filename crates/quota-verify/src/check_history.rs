//! `quota-verify check-history`: is a recorded history linearizable?

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use linearizability::jsonl::{self, JsonModel};
use linearizability::models::{CasRegister, Kv, Quota, QuotaOp, QuotaOutput, Register};
use linearizability::{Model, Operation, Verdict, check, report};
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
/// remaining], can-call -> bool, admit COUNT, refund COUNT, sync; `remaining`, `can-call` and
/// admissions are checked against the limits of --limits), register (read, write; initially null),
/// cas-register (read, write, cas [expected, new]; a failed cas saw another value), kv (get,
/// put, append on strings per key; a missing key reads "").
///
/// Exit status: 0 linearizable, 1 not linearizable, 2 unknown (time limit reached),
/// 3 unusable input (the line number and what was wrong are printed).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  quota-verify check-history --model cas-register etcd-001.jsonl
  quota-verify check-history --model quota run.jsonl --html run.html --timeout 60 --json
  quota-verify check-history --model quota --limits tiingo=500,finnhub=60 --ceiling-percent 80 run.jsonl")]
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

    /// The quota model's limits per service, e.g. `tiingo=500,finnhub=60,sendgrid=100`:
    /// `remaining`, `can-call` and admissions are checked against them, and a service in the
    /// history that is not named here is an error that names it. Without it: the original
    /// service's limits (tiingo=500, finnhub=60, sendgrid=100), and other services' counts are
    /// checked but their `remaining` and `can-call` are not (a warning names them).
    #[arg(long, value_name = "SERVICE=LIMIT,...", value_parser = limits)]
    limits: Option<Limits>,

    /// The quota model's ceiling, percent of each limit: `can-call` is true below it and
    /// admissions keep `used` at or under it.
    #[arg(long, value_name = "PERCENT", default_value_t = Quota::DEFAULT_CEILING_PERCENT,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    ceiling_percent: u8,
}

/// `--limits`: service names and their limits, in the order given.
#[derive(Debug, Clone)]
struct Limits(Vec<(String, u64)>);

fn limits(input: &str) -> Result<Limits, String> {
    let mut limits: Vec<(String, u64)> = Vec::new();
    for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (service, limit) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected SERVICE=LIMIT (e.g. finnhub=60)"))?;
        let service = service.trim();
        if service.is_empty() {
            return Err(format!("{part:?}: the service name is empty"));
        }
        let limit = limit.trim().parse::<u64>().map_err(|_| {
            format!("{part:?}: the limit of {service} must be a whole number of calls, 0 or more")
        })?;
        if limits.iter().any(|(s, _)| s == service) {
            return Err(format!("{service} is given twice"));
        }
        limits.push((service.to_owned(), limit));
    }
    if limits.is_empty() {
        return Err("expected at least one SERVICE=LIMIT (e.g. tiingo=500,finnhub=60)".into());
    }
    Ok(Limits(limits))
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
    if !matches!(args.model, ModelName::Quota)
        && (args.limits.is_some() || args.ceiling_percent != Quota::DEFAULT_CEILING_PERCENT)
    {
        eprintln!(
            "quota-verify check-history: --limits and --ceiling-percent are for --model quota"
        );
        return ExitCode::from(UNUSABLE);
    }
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
        ModelName::Quota => {
            let model = match &args.limits {
                Some(Limits(limits)) => {
                    Quota::with_limits(limits.iter().map(|(s, l)| (s.as_str(), *l)))
                }
                None => Quota::default(),
            };
            match model.with_ceiling_percent(args.ceiling_percent) {
                Ok(model) => {
                    let vet = |ops: &[Operation<QuotaOp, QuotaOutput>]| {
                        vet_services(&model, ops, args.limits.is_some())
                    };
                    run_model(&model, "quota", &text, args, &vet)
                }
                Err(e) => {
                    eprintln!("quota-verify check-history: {e}");
                    ExitCode::from(UNUSABLE)
                }
            }
        }
        ModelName::Register => run_model(&Register, "register", &text, args, &|_| Ok(())),
        ModelName::CasRegister => run_model(&CasRegister, "cas-register", &text, args, &|_| Ok(())),
        ModelName::Kv => run_model(&Kv, "kv", &text, args, &|_| Ok(())),
    }
}

/// Services of a quota history without a limit: an error when the limits were given (the
/// history and `--limits` disagree), a warning otherwise (their remaining and can-call go
/// unchecked).
fn vet_services(
    model: &Quota,
    ops: &[Operation<QuotaOp, QuotaOutput>],
    limits_given: bool,
) -> Result<(), String> {
    let unknown = model.unknown_services(ops.iter().map(|op| &op.input));
    if unknown.is_empty() {
        return Ok(());
    }
    let known: Vec<&str> = model.services().collect();
    if limits_given {
        return Err(format!(
            "the history names services --limits does not: {} (--limits has {})",
            unknown.join(", "),
            known.join(", ")
        ));
    }
    eprintln!(
        "quota-verify check-history: warning: no limit known for {}: their counts are checked, \
         their remaining and can-call are not (give every service's limit with --limits)",
        unknown.join(", ")
    );
    Ok(())
}

/// Operations of model `M`, as parsed.
type Ops<M> = [Operation<<M as Model>::Input, <M as Model>::Output>];

fn run_model<M: JsonModel>(
    model: &M,
    name: &str,
    text: &str,
    args: &Args,
    vet: &dyn Fn(&Ops<M>) -> Result<(), String>,
) -> ExitCode {
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
    if let Err(e) = vet(history) {
        eprintln!(
            "quota-verify check-history: {} is not a usable {name} history: {e}",
            args.file.display()
        );
        return ExitCode::from(UNUSABLE);
    }
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
