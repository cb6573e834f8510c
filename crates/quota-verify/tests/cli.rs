//! The `quota-verify` command line, as a user runs it.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quota-verify"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(output).trim()).expect("one JSON object")
}

#[test]
fn json_has_the_documented_fields() {
    let out = run(&[
        "repro",
        "--variant",
        "unlocked-rmw",
        "--threads",
        "2",
        "--calls",
        "100",
        "--trials",
        "200",
        "--seed",
        "42",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Seeded, so the loss below does not depend on two free cores.
    let v = json(&out);
    for field in [
        "variant",
        "threads",
        "calls_per_thread",
        "trials",
        "seed",
        "expected_total",
        "trials_with_loss",
        "mean_lost",
        "max_lost",
        "loss_rate",
    ] {
        assert!(v.get(field).is_some(), "missing {field} in {v}");
    }
    assert_eq!(v["variant"], "unlocked-rmw");
    assert_eq!(v["seed"], 42);
    assert_eq!(v["expected_total"], 200);
    assert!(v["trials_with_loss"].as_u64() > Some(0), "{v}");
    let rate = v["loss_rate"].as_f64().expect("number");
    let mean = v["mean_lost"].as_f64().expect("number");
    assert!((rate - mean / 200.0).abs() < 1e-9, "{v}");
    // Real threads report no seed.
    let out = run(&[
        "repro",
        "--variant",
        "fixed",
        "--threads",
        "2",
        "--trials",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["seed"], serde_json::Value::Null);
}

#[test]
fn fixed_with_100_threads_loses_nothing() {
    let out = run(&[
        "repro",
        "--variant",
        "fixed",
        "--threads",
        "100",
        "--calls",
        "100",
        "--trials",
        "20",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["trials_with_loss"], 0);
    assert_eq!(v["max_lost"], 0);
    assert_eq!(v["expected_total"], 10_000);
}

#[test]
fn the_same_seed_prints_identical_json_and_a_racy_variant_loses() {
    let args = [
        "repro",
        "--variant",
        "split-lock",
        "--trials",
        "50",
        "--seed",
        "9",
        "--json",
    ];
    let (a, b) = (run(&args), run(&args));
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    let v = json(&a);
    assert_eq!(v["seed"], 9);
    assert!(v["trials_with_loss"].as_u64() > Some(0), "{v}");
}

#[test]
fn human_output_names_each_variant_and_how_to_replay() {
    let out = run(&["repro", "--trials", "20", "--seed", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "fixed",
        "unlocked-rmw",
        "split-lock",
        "expected per trial: tiingo 100, finnhub 100 (total 200)",
        "48 of 100",
        "replay split-lock: quota-verify repro --variant split-lock --threads 2 --calls 100 --trials 20 --seed 5",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

/// One JSON object per line.
fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect()
}

#[test]
fn admission_fixed_never_passes_the_ceiling_and_check_then_act_does() {
    // The issue's acceptance command, on real threads.
    let out = run(&[
        "repro",
        "--workload",
        "admission",
        "--variant",
        "fixed",
        "--threads",
        "100",
        "--trials",
        "20",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fixed = json(&out);
    for field in [
        "variant",
        "threads",
        "trials",
        "ceiling",
        "limit",
        "trials_over_ceiling",
        "max_admitted",
        "max_over_ceiling",
    ] {
        assert!(fixed.get(field).is_some(), "missing {field} in {fixed}");
    }
    assert_eq!(fixed["trials_over_ceiling"], 0, "{fixed}");
    assert_eq!(fixed["max_admitted"], 80, "{fixed}");
    assert_eq!(
        (fixed["ceiling"].as_u64(), fixed["limit"].as_u64()),
        (Some(80), Some(100))
    );
    // Seeded, so the overshoot does not depend on the machine; the same seed, the same JSON.
    let args = [
        "repro",
        "--workload",
        "admission",
        "--variant",
        "check-then-act",
        "--trials",
        "5",
        "--seed",
        "3",
        "--json",
    ];
    let (a, b) = (run(&args), run(&args));
    assert!(
        a.status.success(),
        "historical variants may overshoot: {}",
        stderr(&a)
    );
    assert_eq!(stdout(&a), stdout(&b));
    let v = json(&a);
    assert!(v["trials_over_ceiling"].as_u64() > Some(0), "{v}");
    assert!(v["max_over_ceiling"].as_u64() > Some(0), "{v}");
    assert_eq!(
        v["trials_not_conserved"], 0,
        "it overshoots, it does not lose"
    );
}

#[test]
fn admission_runs_both_variants_by_default_with_refunds() {
    let out = run(&[
        "repro",
        "--workload",
        "admission",
        "--threads",
        "8",
        "--trials",
        "3",
        "--refund-every",
        "3",
        "--seed",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = json_lines(&out);
    let variants: Vec<_> = rows.iter().map(|r| r["variant"].clone()).collect();
    assert_eq!(variants, ["fixed", "check-then-act"]);
    assert_eq!(rows[0]["refund_every"], 3);
    assert_eq!(rows[0]["trials_over_ceiling"], 0);
    assert_eq!(rows[0]["trials_not_conserved"], 0);
    let text = stdout(&run(&[
        "repro",
        "--workload",
        "admission",
        "--threads",
        "4",
        "--trials",
        "2",
        "--seed",
        "2",
    ]));
    for needle in [
        "limit 100, ceiling 80",
        "trials over ceiling",
        "check-then-act",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn invalid_arguments_are_explained_with_a_nonzero_exit() {
    for (args, needle) in [
        (
            &["repro", "--variant", "rlock"][..],
            "expected one of fixed, unlocked-rmw, split-lock",
        ),
        (
            &["repro", "--variant", "reentrant-deadlock"][..],
            "the loom models check it (scripts/loom). Expected one of fixed, unlocked-rmw, split-lock",
        ),
        (&["repro", "--threads", "0"][..], "--threads"),
        (&["repro", "--calls", "-5"][..], "--calls"),
        (&["repro", "--trials", "many"][..], "--trials"),
        (&["repro", "--seed", "-1"][..], "--seed"),
        (
            &["repro", "--variant", "check-then-act"][..],
            "it shows in --workload admission",
        ),
        (
            &[
                "repro",
                "--workload",
                "admission",
                "--variant",
                "split-lock",
            ][..],
            "Expected one of fixed, check-then-act",
        ),
        (
            &["repro", "--workload", "admission", "--calls", "5"][..],
            "--calls applies to --workload lost-update only",
        ),
        (
            &["repro", "--call-ms", "3"][..],
            "--call-ms applies to --workload admission",
        ),
        (&["repro", "--workload", "batch"][..], "--workload"),
        (&["frobnicate"][..], "frobnicate"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn help_explains_the_exit_codes_and_the_original_bug() {
    let out = run(&["repro", "--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("Exit status"), "{text}");
    assert!(text.contains("48"), "{text}");
    assert!(text.contains("--seed"), "{text}");
}

fn history_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-histories");
    std::fs::create_dir_all(&dir).expect("writable");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writable");
    path
}

const LOST_UPDATE: &str = r#"{"process": 0, "type": "invoke", "f": "record", "key": "tiingo", "value": 1}
{"process": 1, "type": "invoke", "f": "record", "key": "tiingo", "value": 1}
{"process": 0, "type": "ok", "f": "record", "key": "tiingo", "value": 1}
{"process": 1, "type": "ok", "f": "record", "key": "tiingo", "value": 1}
"#;

#[test]
fn check_history_exit_codes_follow_the_verdict() {
    let good = history_file(
        "good.jsonl",
        r#"{"process": 0, "type": "invoke", "f": "record", "key": "tiingo", "value": 1}
{"process": 1, "type": "invoke", "f": "read", "key": "tiingo"}
{"process": 0, "type": "ok", "f": "record", "key": "tiingo", "value": 1}
{"process": 1, "type": "ok", "f": "read", "key": "tiingo", "value": [1, 499]}
"#,
    );
    let out = run(&[
        "check-history",
        "--model",
        "quota",
        good.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("linearizable"));

    let bad = history_file("lost.jsonl", LOST_UPDATE);
    let html = bad.with_extension("html");
    let out = run(&[
        "check-history",
        "--model",
        "quota",
        bad.to_str().expect("utf-8"),
        "--html",
        html.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("partition \"tiingo\""), "{text}");
    assert!(text.contains("Cannot be placed next"), "{text}");
    let page = std::fs::read_to_string(&html).expect("HTML written");
    assert!(
        page.contains("class=\"op stuck"),
        "the stuck operation is marked"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no network fetches"
    );
}

#[test]
fn check_history_json_and_unknown() {
    let bad = history_file("lost-json.jsonl", LOST_UPDATE);
    let out = run(&[
        "check-history",
        "--model",
        "quota",
        bad.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["verdict"], "not-linearizable");
    assert_eq!(v["operations"], 2);
    assert_eq!(v["partitions"], 1);
    assert!(v["elapsed_ms"].is_number());
    assert_eq!(v["failing_partition"]["key"], "tiingo");
    // A zero time limit stops the search at once: exit 2, verdict unknown. (The writes reuse
    // five values, so the search must decide: distinct values would be decided from the
    // zones, which need no time limit.)
    let many: String = (0..20_000)
        .map(|i| {
            format!(
                "{{\"process\": {p}, \"type\": \"invoke\", \"f\": \"write\", \"value\": {v}}}\n{{\"process\": {p}, \"type\": \"ok\", \"f\": \"write\", \"value\": {v}}}\n",
                p = i % 7,
                v = i % 5
            )
        })
        .collect();
    let big = history_file("big.jsonl", &many);
    let out = run(&[
        "check-history",
        "--model",
        "register",
        big.to_str().expect("utf-8"),
        "--timeout",
        "0",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(json(&out)["verdict"], "unknown");
}

#[test]
fn check_history_unusable_input_exits_3_with_the_line() {
    let broken = history_file(
        "broken.jsonl",
        "{\"process\": 0, \"type\": \"invoke\", \"f\": \"record\", \"key\": \"a\", \"value\": 1}\n{\"process\": 0, \"type\": \"done\", \"f\": \"record\"}\n",
    );
    let out = run(&[
        "check-history",
        "--model",
        "quota",
        broken.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("line 2: \"type\" must be one of invoke, ok, fail, info"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "check-history",
        "--model",
        "quota",
        "/nonexistent/history.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("cannot read /nonexistent/history.jsonl"));
    let out = run(&["check-history", "--model", "bank", "x.jsonl"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "bad arguments are unusable input here"
    );
    assert!(stderr(&out).contains("possible values: quota, register, cas-register, kv"));
    let out = run(&["check-history", "--model", "kv", "x", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("expected a number of seconds"));
    // An empty file was once "linearizable" (exit 0), and a completion on another key was
    // silently accepted: both are unusable input.
    let empty = history_file("empty.jsonl", "");
    let out = run(&[
        "check-history",
        "--model",
        "quota",
        empty.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("no operations"), "{}", stderr(&out));
    let moved = history_file(
        "moved.jsonl",
        "{\"process\": 0, \"type\": \"invoke\", \"f\": \"record\", \"key\": \"a\", \"value\": 1}\n{\"process\": 0, \"type\": \"ok\", \"f\": \"record\", \"key\": \"b\", \"value\": 1}\n",
    );
    let out = run(&[
        "check-history",
        "--model",
        "quota",
        moved.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
}

/// A record on `api`, then a read answering `[used, remaining]` and a can-call answering
/// `can_call`.
fn api_history(name: &str, remaining: u64, can_call: bool) -> std::path::PathBuf {
    history_file(
        name,
        &format!(
            r#"{{"process": 0, "type": "invoke", "f": "record", "key": "api", "value": 1}}
{{"process": 0, "type": "ok", "f": "record", "key": "api", "value": 1}}
{{"process": 1, "type": "invoke", "f": "read", "key": "api"}}
{{"process": 1, "type": "ok", "f": "read", "key": "api", "value": [1, {remaining}]}}
{{"process": 1, "type": "invoke", "f": "can-call", "key": "api"}}
{{"process": 1, "type": "ok", "f": "can-call", "key": "api", "value": {can_call}}}
"#
        ),
    )
}

#[test]
fn check_history_limits_check_remaining_and_can_call_and_name_unknown_services() {
    let check = |path: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["check-history", "--model", "quota"];
        args.extend_from_slice(extra);
        args.push(path.to_str().expect("utf-8"));
        run(&args)
    };
    let right = api_history("limits-right.jsonl", 9, true);
    let out = check(&right, &["--limits", "api=10"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A wrong `remaining` is caught once the limit is known, and only then.
    let wrong = api_history("limits-remaining.jsonl", 99, true);
    let out = check(&wrong, &["--limits", "api=10"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = check(&wrong, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no limit known for api"),
        "{}",
        stderr(&out)
    );
    // can-call false at 1 of 10 is wrong under an 80 % ceiling, right under a 10 % one.
    let refused = api_history("limits-can-call.jsonl", 9, false);
    let out = check(&refused, &["--limits", "api=10"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = check(&refused, &["--limits", "api=10", "--ceiling-percent", "10"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A service the limits do not name is unusable input, named.
    let out = check(&right, &["--limits", "tiingo=500,finnhub=60"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("services --limits does not: api"),
        "{}",
        stderr(&out)
    );
    for (bad, says) in [
        ("api", "expected SERVICE=LIMIT"),
        ("api=ten", "must be a whole number"),
        ("api=1,api=2", "given twice"),
        ("=5", "service name is empty"),
    ] {
        let out = check(&right, &["--limits", bad]);
        assert_eq!(out.status.code(), Some(3), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{bad}: {}", stderr(&out));
    }
    let out = run(&["check-history", "--model", "kv", "--limits", "api=1", "x"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("for --model quota"),
        "{}",
        stderr(&out)
    );
}

#[cfg(feature = "dynamodb")]
#[test]
fn store_check_explains_what_it_cannot_do() {
    let out = run(&[
        "store-check",
        "--endpoint",
        "http://127.0.0.1:9",
        "--writers",
        "1",
        "--ops",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not run against http://127.0.0.1:9"),
        "{}",
        stderr(&out)
    );
    let out = run(&["store-check", "--endpoint", "http://x", "--writers", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--writers"));
    let out = run(&["store-check", "--help"]);
    assert!(stdout(&out).contains("Exit status: 0 nothing lost or doubled"));
}

/// Built without the `dynamodb` feature (as scripts/repro builds it), store-check says so.
#[cfg(not(feature = "dynamodb"))]
#[test]
fn store_check_says_when_the_build_left_it_out() {
    let out = run(&["store-check", "--endpoint", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("built without DynamoDB support"),
        "{}",
        stderr(&out)
    );
}

/// Writes `files` (name, text) into a fresh directory named `name`.
fn history_dir(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("nested")).expect("writable");
    for (file, text) in files {
        std::fs::write(dir.join(file), text).expect("writable");
    }
    dir
}

const ONE_RECORD: &str = r#"{"process": 0, "type": "invoke", "f": "record", "key": "tiingo", "value": 1}
{"process": 0, "type": "ok", "f": "record", "key": "tiingo", "value": 1}
"#;

#[test]
fn check_history_checks_a_directory_in_one_run_and_exits_with_the_worst_status() {
    let dir = history_dir(
        "cli-many",
        &[
            ("a-good.jsonl", ONE_RECORD),
            ("b-lost.jsonl", LOST_UPDATE),
            ("nested/c-good.jsonl", ONE_RECORD),
            ("notes.txt", "not a history"),
        ],
    );
    let out = run(&[
        "check-history",
        "--model",
        "quota",
        dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "three histories (the .txt skipped) and a summary:\n{text}"
    );
    assert!(
        lines[0].starts_with("linearizable") && lines[0].contains("a-good.jsonl"),
        "{text}"
    );
    assert!(lines[1].starts_with("not-linearizable") && lines[1].contains("b-lost.jsonl"));
    assert!(lines[1].contains("cannot place line"), "{text}");
    assert!(
        lines[2].contains("c-good.jsonl"),
        "nested directories are read: {text}"
    );
    assert!(
        lines[3]
            .starts_with("3 histories: 2 linearizable, 1 not linearizable, 0 unknown, 0 unusable"),
        "{text}"
    );

    // An unusable file among them: reported in its line, the others still checked, exit 3.
    let broken = history_file("broken-among-many.jsonl", "{\"process\": 0}\n");
    let out = run(&[
        "check-history",
        "--model",
        "quota",
        "--json",
        dir.join("a-good.jsonl").to_str().expect("utf-8"),
        broken.to_str().expect("utf-8"),
        dir.join("b-lost.jsonl").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let objects: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON Lines"))
        .collect();
    assert_eq!(objects.len(), 4);
    assert_eq!(objects[0]["verdict"], "linearizable");
    assert_eq!(objects[1]["verdict"], "unusable");
    assert!(
        objects[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("line 1")),
        "{}",
        objects[1]
    );
    assert_eq!(objects[2]["verdict"], "not-linearizable");
    let summary = &objects[3]["summary"];
    assert_eq!(summary["histories"], 3);
    assert_eq!(summary["unusable"], 1);
    assert_eq!(summary["not_linearizable"], 1);
}

#[test]
fn check_history_refuses_what_several_histories_cannot_mean() {
    let dir = history_dir(
        "cli-refused",
        &[("a.jsonl", ONE_RECORD), ("b.jsonl", ONE_RECORD)],
    );
    let d = dir.to_str().expect("utf-8");
    let out = run(&["check-history", "--model", "quota", "--html", "x.html", d]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("--html writes the page of one history; 2 were given"));
    let out = run(&["check-history", "--model", "quota", "-", d]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("`-` (standard input) must be the only history"));
    let empty = history_dir("cli-empty-dir", &[]);
    let out = run(&[
        "check-history",
        "--model",
        "quota",
        empty.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("no *.jsonl history files"),
        "{}",
        stderr(&out)
    );
    for bad in ["0", "lots", "0.1", "12Q"] {
        let out = run(&["check-history", "--model", "quota", "--max-memory", bad, d]);
        assert_eq!(out.status.code(), Some(3), "--max-memory {bad}");
        assert!(
            stderr(&out).contains("expected a size such as 512M"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn check_history_turns_a_search_past_max_memory_into_unknown() {
    use linearizability::generate::register_history;
    use linearizability::jsonl;
    use linearizability::models::Register;
    // 50 processes overlapping on one register, writes reused: the search explodes.
    let mut hard = register_history(11, 1_000, 50, false);
    for op in &mut hard {
        if let linearizability::models::RegisterOp::Write(v) = &mut op.input {
            *v %= 3;
        }
    }
    let file = history_file("hard-register.jsonl", &jsonl::write(&Register, &hard));
    let out = run(&[
        "check-history",
        "--model",
        "register",
        "--max-memory",
        "16M",
        "--timeout",
        "120",
        "--json",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let v = json(&out);
    assert_eq!(v["verdict"], "unknown");
    assert_eq!(v["stopped"], "memory limit reached", "{v}");
    assert!(v["memory_peak_bytes"].as_u64() <= Some(16 << 20), "{v}");
}
