//! `quota-verify check-history`: is a recorded history linearizable?

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use linearizability::jsonl::{self, JsonModel};
use linearizability::models::{CasRegister, Kv, Quota, QuotaOp, QuotaOutput, Register};
use linearizability::{
    CheckOptions, CheckResult, MemoryBudget, Model, Operation, Verdict, check_with, report,
};
use serde_json::{Value, json};

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
/// Several files, or a directory (its `*.jsonl` files, recursively), are checked in
/// parallel in one process: one line per history in the order given, then a summary.
///
/// Exit status: 0 linearizable, 1 not linearizable, 2 unknown (time or memory limit
/// reached), 3 unusable input (the line number and what was wrong are printed). With several
/// histories, the highest status of any.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  quota-verify check-history --model cas-register etcd-001.jsonl
  quota-verify check-history --model cas-register histories/ --json
  quota-verify check-history --model quota run.jsonl --html run.html --timeout 60 --json
  quota-verify check-history --model quota --limits tiingo=500,finnhub=60 --ceiling-percent 80 run.jsonl")]
pub struct Args {
    /// The sequential specification to check against.
    #[arg(long, value_enum)]
    model: ModelName,

    /// History files (JSON Lines) or directories of them; `-` reads standard input.
    #[arg(required = true, value_name = "FILE|DIR")]
    files: Vec<PathBuf>,

    /// Give up on a history after this many seconds ("unknown", exit status 2).
    /// [default: no limit]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    timeout: Option<Duration>,

    /// The memory the searches may hold at once, shared by the histories checked together,
    /// e.g. `512M` or `8G` (K, M, G, T: powers of 1024; a bare number is bytes). A search that
    /// would pass it stops as "unknown" (exit status 2) with the longest prefix it found,
    /// instead of the machine running out of memory.
    #[arg(long, value_name = "SIZE", value_parser = size, default_value = "4G")]
    max_memory: usize,

    /// Histories checked at once. [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,

    /// Also write a self-contained HTML page showing the operations on a timeline per
    /// process (one history only).
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,

    /// Print JSON instead of text: one object for one history; for several, one object per
    /// line and a last line `{"summary": ...}`.
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

/// `--max-memory`: a size in bytes, with an optional K, M, G or T (powers of 1024).
fn size(input: &str) -> Result<usize, String> {
    let expected =
        || format!("{input:?}: expected a size such as 512M, 8G or 1048576 (bytes), more than 0");
    let text = input.trim().to_ascii_uppercase();
    let text = text
        .strip_suffix("IB")
        .or(text.strip_suffix('B'))
        .unwrap_or(&text);
    let (number, shift) = match text.chars().last() {
        Some('K') => (&text[..text.len() - 1], 10),
        Some('M') => (&text[..text.len() - 1], 20),
        Some('G') => (&text[..text.len() - 1], 30),
        Some('T') => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    let value: f64 = number.trim().parse().map_err(|_| expected())?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > usize::MAX as f64 {
        return Err(expected());
    }
    Ok(bytes as usize)
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
    let sources = match sources(&args.files) {
        Ok(sources) => sources,
        Err(e) => {
            eprintln!("quota-verify check-history: {e}");
            return ExitCode::from(UNUSABLE);
        }
    };
    let single = sources.len() == 1 && !args.files[0].is_dir();
    if args.html.is_some() && !single {
        eprintln!(
            "quota-verify check-history: --html writes the page of one history; {} were given",
            sources.len()
        );
        return ExitCode::from(UNUSABLE);
    }
    let run = Run { args, single };
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
                    run.all(&model, "quota", &vet, &sources)
                }
                Err(e) => {
                    eprintln!("quota-verify check-history: {e}");
                    ExitCode::from(UNUSABLE)
                }
            }
        }
        ModelName::Register => run.all(&Register, "register", &|_| Ok(()), &sources),
        ModelName::CasRegister => run.all(&CasRegister, "cas-register", &|_| Ok(()), &sources),
        ModelName::Kv => run.all(&Kv, "kv", &|_| Ok(()), &sources),
    }
}

/// The histories to check: the files given, and each directory's `*.jsonl` files
/// (recursively, sorted). A path that does not exist is an error naming it.
fn sources(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    if paths.len() > 1 && paths.iter().any(|p| p.as_os_str() == "-") {
        return Err("`-` (standard input) must be the only history given".to_owned());
    }
    let mut sources = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" || !path.is_dir() {
            if path.as_os_str() != "-" && !path.exists() {
                return Err(format!(
                    "cannot read {}: no such file or directory",
                    path.display()
                ));
            }
            sources.push(path.clone());
            continue;
        }
        let before = sources.len();
        collect_jsonl(path, &mut sources)
            .map_err(|e| format!("cannot read the directory {}: {e}", path.display()))?;
        if sources.len() == before {
            return Err(format!(
                "{}: no *.jsonl history files in this directory",
                path.display()
            ));
        }
    }
    Ok(sources)
}

fn collect_jsonl(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_jsonl(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
    Ok(())
}

fn read(source: &Path) -> Result<String, String> {
    let text = if source.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(source)
    };
    text.map_err(|e| format!("cannot read {}: {e}", source.display()))
}

/// Operations of model `M`, as parsed.
type Ops<M> = [Operation<<M as Model>::Input, <M as Model>::Output>];

/// One history's outcome: its exit status, what to print, and its JSON object.
struct Checked {
    status: u8,
    text: String,
    json: Value,
}

/// A run of the command over its histories.
struct Run<'a> {
    args: &'a Args,
    /// One file given: its full report, as before several could be.
    single: bool,
}

impl Run<'_> {
    /// Checks every source, `jobs` at a time, printing as they finish (in order).
    fn all<M: JsonModel>(
        &self,
        model: &M,
        name: &str,
        vet: &(dyn Fn(&Ops<M>) -> Result<(), String> + Sync),
        sources: &[PathBuf],
    ) -> ExitCode {
        let started = Instant::now();
        let budget = MemoryBudget::new(self.args.max_memory);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let jobs = self
            .args
            .jobs
            .map_or(cores, usize::from)
            .min(sources.len())
            .max(1);
        // Every history's partitions get the cores too: the first partition found not
        // linearizable stops its siblings, which may be far harder to decide.
        let options = CheckOptions {
            timeout: self.args.timeout,
            budget: Some(&budget),
            threads: 0,
        };
        let next = AtomicUsize::new(0);
        let (sender, receiver) = mpsc::channel::<(usize, Checked)>();
        let mut counts: BTreeMap<u8, usize> = BTreeMap::new();
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                let sender = sender.clone();
                let (next, options) = (&next, &options);
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(source) = sources.get(i) else { return };
                        let checked = self.one(model, name, vet, source, options);
                        if sender.send((i, checked)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(sender);
            let mut waiting: BTreeMap<usize, Checked> = BTreeMap::new();
            let mut printed = 0;
            for (i, checked) in receiver {
                waiting.insert(i, checked);
                while let Some(checked) = waiting.remove(&printed) {
                    *counts.entry(checked.status).or_default() += 1;
                    if self.args.json {
                        println!("{}", checked.json);
                    } else {
                        print!("{}", checked.text);
                    }
                    printed += 1;
                }
            }
        });
        if !self.single {
            self.summary(&counts, sources.len(), started.elapsed(), budget.peak());
        }
        ExitCode::from(counts.keys().max().copied().unwrap_or(LINEARIZABLE))
    }

    fn summary(
        &self,
        counts: &BTreeMap<u8, usize>,
        histories: usize,
        elapsed: Duration,
        peak: usize,
    ) {
        let count = |status| counts.get(&status).copied().unwrap_or(0);
        if self.args.json {
            let summary = json!({"summary": {
                "histories": histories,
                "linearizable": count(LINEARIZABLE),
                "not_linearizable": count(NOT_LINEARIZABLE),
                "unknown": count(UNKNOWN),
                "unusable": count(UNUSABLE),
                "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
                "memory_peak_bytes": peak,
            }});
            println!("{summary}");
        } else {
            println!(
                "{histories} histories: {} linearizable, {} not linearizable, {} unknown, {} \
                 unusable; {:.1} ms, search memory peak {:.1} MiB",
                count(LINEARIZABLE),
                count(NOT_LINEARIZABLE),
                count(UNKNOWN),
                count(UNUSABLE),
                elapsed.as_secs_f64() * 1000.0,
                peak as f64 / (1 << 20) as f64
            );
        }
    }

    /// Reads, parses, vets and checks one history.
    fn one<M: JsonModel>(
        &self,
        model: &M,
        name: &str,
        vet: &(dyn Fn(&Ops<M>) -> Result<(), String> + Sync),
        source: &Path,
        options: &CheckOptions<'_>,
    ) -> Checked {
        let unusable = |message: String| {
            let text = if self.single {
                eprintln!("quota-verify check-history: {message}");
                String::new()
            } else {
                format!("{:<17} {}: {message}\n", "unusable", source.display())
            };
            Checked {
                status: UNUSABLE,
                text,
                json: json!({"verdict": "unusable", "model": name,
                             "file": source.display().to_string(), "error": message}),
            }
        };
        let text = match read(source) {
            Ok(text) => text,
            Err(e) => return unusable(e),
        };
        let parsed = match jsonl::parse(model, &text) {
            Ok(parsed) => parsed,
            Err(e) => {
                return unusable(format!(
                    "{} is not a usable {name} history: {e}",
                    source.display()
                ));
            }
        };
        if let Err(e) = vet(&parsed.operations) {
            return unusable(format!(
                "{} is not a usable {name} history: {e}",
                source.display()
            ));
        }
        let result = check_with(model, &parsed.operations, options);
        if let Some(path) = &self.args.html
            && let Err(e) = std::fs::write(path, report::html(model, &parsed.operations, &result))
        {
            return unusable(format!("cannot write {}: {e}", path.display()));
        }
        let status = match result.verdict {
            Verdict::Linearizable => LINEARIZABLE,
            Verdict::NotLinearizable => NOT_LINEARIZABLE,
            Verdict::Unknown => UNKNOWN,
        };
        let json = result_json(model, name, source, &parsed, &result);
        let text = if self.single {
            let mut text = report::text(model, &parsed.operations, &result);
            if let Some(path) = &self.args.html {
                text.push_str(&format!("HTML report: {}\n", path.display()));
            }
            text
        } else {
            line(model, source, &parsed, &result)
        };
        Checked { status, text, json }
    }
}

/// One line of a run over several histories.
fn line<M: Model>(
    model: &M,
    source: &Path,
    parsed: &jsonl::ParsedHistory<M::Input, M::Output>,
    result: &CheckResult,
) -> String {
    let verdict = match result.verdict {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "not-linearizable",
        Verdict::Unknown => "unknown",
    };
    let mut line = format!(
        "{verdict:<17} {}  ({} operations, {} partition(s), {:.1} ms",
        source.display(),
        result.operations,
        result.partitions.len(),
        result.elapsed.as_secs_f64() * 1000.0
    );
    let failing = result
        .partitions
        .iter()
        .find(|p| p.verdict == Verdict::NotLinearizable);
    if let Some(k) = failing.and_then(|p| p.stuck) {
        let op = &parsed.operations[k];
        line.push_str(&format!(
            "; cannot place line {}: {}",
            parsed.lines[k].0,
            model.describe(&op.input, &op.outcome)
        ));
    }
    if result.verdict == Verdict::Unknown
        && let Some(why) = result.partitions.iter().find_map(|p| p.stopped)
    {
        line.push_str(&format!("; {}", report::stopped_text(why)));
    }
    line.push_str(")\n");
    line
}

/// A history's result as the JSON object `--json` prints.
fn result_json<M: Model>(
    model: &M,
    name: &str,
    source: &Path,
    parsed: &jsonl::ParsedHistory<M::Input, M::Output>,
    result: &CheckResult,
) -> Value {
    let history = &parsed.operations;
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
    let stopped = result
        .partitions
        .iter()
        .filter_map(|p| p.stopped)
        .map(report::stopped_text)
        .next();
    json!({
        "verdict": result.verdict,
        "model": name,
        "file": source.display().to_string(),
        "operations": result.operations,
        "partitions": result.partitions.len(),
        "elapsed_ms": result.elapsed.as_secs_f64() * 1000.0,
        "memory_peak_bytes": result.memory_peak,
        "stopped": stopped,
        "failing_partition": failing,
    })
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
