//! `quota-verify fleet` as a user runs it: real worker processes, real signals, the emulator
//! on a volume restarted for real. Needs the container engine and the emulator image
//! (`scripts/dynamodb-setup`); the gate's `fleet` tier.
#![cfg(feature = "dynamodb")]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use quota_evidence::Finding;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quota-verify"))
        .arg("fleet")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn report(output: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "one JSON object expected ({e}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Processes whose command line mentions `needle` (workers of a run, by its table).
fn processes_with(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(needle).then_some(cmdline)
        })
        .collect()
}

fn table(name: &str) -> String {
    format!("fleet-test-{name}-{}", std::process::id())
}

/// A run's journal directory, removed when the test passes (kept for reading when it fails).
struct OutDir(String);

impl std::ops::Deref for OutDir {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn out_dir(name: &str) -> OutDir {
    OutDir(
        std::env::temp_dir()
            .join(format!("quota-fleet-test-{name}-{}", std::process::id()))
            .display()
            .to_string(),
    )
}

fn sum(service_rows: &serde_json::Value, field: &str) -> u64 {
    service_rows.as_array().map_or(0, |rows| {
        rows.iter().filter_map(|r| r[field].as_u64()).sum()
    })
}

#[test]
fn the_fixed_tracker_passes_every_fault_and_a_terminated_worker_loses_nothing() {
    let (table, out) = (table("faults"), out_dir("faults"));
    let output = run(&[
        "--instances",
        "4",
        "--threads",
        "4",
        "--duration",
        "40",
        "--seed",
        "3",
        "--faults",
        "kill,freeze,term,store-restart,store-pause",
        "--table",
        &table,
        "--out",
        &out,
        "--json",
    ]);
    let report = report(&output);
    let caught = report["verdict"] != "pass";
    Finding::new(
        "fleet/faults",
        "fixed",
        caught,
        if caught {
            report.to_string()
        } else {
            String::new()
        },
    )
    .emit();
    assert!(!caught, "the fixed tracker failed: {report:#}");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(report["faults"].as_array().map(Vec::len), Some(5));
    let workers = report["workers"].as_array().expect("workers");
    let fates: Vec<&str> = workers.iter().filter_map(|w| w["fate"].as_str()).collect();
    for fate in ["killed", "thawed", "terminated"] {
        assert!(fates.contains(&fate), "{fate} missing: {fates:?}");
    }
    // The killed worker lost at most its unacknowledged calls; nothing was doubled.
    assert!(
        report["lost"].as_u64() <= report["lost_bound"].as_u64(),
        "{report:#}"
    );
    assert_eq!(report["doubled"], 0);
    assert!(
        Path::new(&*out).join("worker-0.jsonl").exists(),
        "journals kept in --out"
    );
    assert!(
        processes_with(&table).is_empty(),
        "a worker outlived the run"
    );
}

#[test]
fn the_bounded_mode_admits_at_most_the_ceiling_across_processes() {
    let (table, out) = (table("bounded"), out_dir("bounded"));
    let output = run(&[
        "--instances",
        "4",
        "--threads",
        "4",
        "--duration",
        "20",
        "--admission",
        "bounded",
        "--faults",
        "kill,store-restart",
        "--table",
        &table,
        "--out",
        &out,
        "--json",
    ]);
    let report = report(&output);
    assert_eq!(report["verdict"], "pass", "{report:#}");
    let capped = &report["services"][0];
    assert_eq!(capped["service"], "capped");
    assert!(
        capped["admitted"].as_u64() <= capped["ceiling"].as_u64(),
        "{capped:#}"
    );
    assert!(
        capped["admitted_bound"].is_null(),
        "the bounded mode's bound is the ceiling"
    );
}

/// The seeds a store variant's fleet run tries, in order, until the variant is caught: whether
/// a write lands in doubt (what `retry-double-apply` needs to double) depends on how the VM
/// schedules the workers around the faults, and one loaded CI run with seed 5 had none. A
/// variant that escapes every seed fails; a retry is said on stderr.
const VARIANT_SEEDS: [&str; 2] = ["5", "6"];

/// A store variant must fail the fleet run, its own way, with the faults: the freeze
/// leaves a write in doubt (its answer dropped), which `retry-double-apply` doubles. One test
/// per variant, so the gate runs them side by side (each run waits out its duration).
fn store_variant_is_caught_at_fleet_level(variant: &str, way: &str, faults: &str) {
    let mut seeds = VARIANT_SEEDS.iter().peekable();
    let (output, report) = loop {
        let seed = seeds.next().expect("at least one seed");
        let (output, report) = store_variant_fleet_run(variant, faults, seed);
        if report["verdict"] == "fail" || seeds.peek().is_none() {
            break (output, report);
        }
        eprintln!("RETRY: {variant} was not caught with seed {seed}; trying the next seed");
    };
    judge_store_variant(variant, way, &output, &report);
}

/// One fleet run of `variant` with `seed`; its output and report. No worker outlives it.
fn store_variant_fleet_run(
    variant: &str,
    faults: &str,
    seed: &str,
) -> (std::process::Output, serde_json::Value) {
    let name = format!("{variant}-{seed}");
    let (table, out) = (table(&name), out_dir(&name));
    let output = run(&[
        "--instances",
        "3",
        "--threads",
        "2",
        "--duration",
        "15",
        "--seed",
        seed,
        "--faults",
        faults,
        "--store-variant",
        variant,
        "--table",
        &table,
        "--out",
        &out,
        "--json",
    ]);
    let report = report(&output);
    assert!(
        processes_with(&table).is_empty(),
        "a worker outlived the run"
    );
    (output, report)
}

/// Whether `variant`'s fleet run caught it, showing as `way` (lost or doubled); emits the
/// finding.
fn judge_store_variant(
    variant: &str,
    way: &str,
    output: &std::process::Output,
    report: &serde_json::Value,
) {
    let (lost, doubled) = (
        sum(&report["services"], "lost"),
        sum(&report["services"], "doubled"),
    );
    // Lost beyond the bound: what the store lacks past the killed workers' unsynced calls.
    let lost_beyond = lost.saturating_sub(sum(&report["services"], "lost_bound"));
    let caught = report["verdict"] == "fail";
    let direction = quota_evidence::direction(lost_beyond, doubled);
    let finding = Finding::new(
        format!("fleet/{}", if way == "lost" { "lost" } else { "doubled" }),
        variant,
        caught,
        if caught {
            format!(
                "lost {lost} (bound {}), doubled {doubled}",
                sum(&report["services"], "lost_bound")
            )
        } else {
            String::new()
        },
    )
    .with_direction(direction);
    finding.emit();
    assert!(caught, "{variant} passed the fleet run: {report:#}");
    assert_eq!(output.status.code(), Some(1), "{variant}");
    assert!(
        finding.shows(way),
        "{variant} must show as {way}: {report:#}"
    );
}

#[test]
fn sync_overwrite_is_caught_at_fleet_level_as_lost_counts() {
    store_variant_is_caught_at_fleet_level("sync-overwrite", "lost", "kill,freeze,store-restart");
}

#[test]
fn retry_double_apply_is_caught_at_fleet_level_as_doubled_counts() {
    // A pause is what reliably makes a write land after its client gave up (the server
    // answers the queued requests once it runs again): with kill, freeze and restart alone
    // a loaded CI run once had no write in doubt, and nothing doubled.
    store_variant_is_caught_at_fleet_level(
        "retry-double-apply",
        "doubled",
        "kill,freeze,store-restart,store-pause",
    );
}

#[test]
fn ack_before_write_is_caught_at_fleet_level_as_lost_counts() {
    store_variant_is_caught_at_fleet_level("ack-before-write", "lost", "kill,freeze,store-restart");
}

#[test]
fn bad_input_is_refused_with_exit_3_and_no_worker_left() {
    let (table, out) = (table("bad"), out_dir("bad"));
    for (args, says) in [
        (vec!["--instances", "0"], "--instances 0"),
        (vec!["--faults", "kill,explode"], "unknown fault"),
        (
            vec![
                "--endpoint",
                "http://127.0.0.1:1",
                "--faults",
                "none",
                "--duration",
                "2",
            ],
            "cannot use table",
        ),
        (
            vec![
                "--endpoint",
                "http://127.0.0.1:1",
                "--faults",
                "store-restart",
            ],
            "need the emulator",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--table", &table, "--out", &out]);
        let output = run(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should say {says:?}: {stderr}"
        );
    }
    assert!(processes_with(&table).is_empty());
}

#[test]
fn ctrl_c_stops_every_worker_and_the_emulator() {
    let (table, out) = (table("interrupt"), out_dir("interrupt"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_quota-verify"))
        .args([
            "fleet",
            "--duration",
            "60",
            "--faults",
            "none",
            "--table",
            &table,
            "--out",
            &out,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while processes_with(&format!("fleet-worker --table {table}")).len() < 4
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !processes_with(&format!("fleet-worker --table {table}")).is_empty(),
        "workers started"
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal");
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        processes_with(&format!("fleet-worker --table {table}")).is_empty(),
        "workers left"
    );
    let containers = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("name=quota-fleet-{}", child.id()),
            "-q",
        ])
        .output()
        .expect("docker");
    assert!(
        containers.stdout.is_empty(),
        "the emulator container was left behind"
    );
}

#[test]
fn the_emulator_of_a_killed_coordinator_is_removed_by_the_next_emulator_started() {
    // SIGKILL runs no drop: the container stays, until another emulator starts and sees
    // that its owner is gone.
    let (table, out) = (table("killed"), out_dir("killed"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_quota-verify"))
        .args(["fleet", "--duration", "60", "--faults", "none"])
        .args(["--table", &table, "--out", &out])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let containers = |pid: u32| {
        let output = Command::new("docker")
            .args(["ps", "-a", "--filter", &format!("name=quota-fleet-{pid}-")])
            .args(["--format", "{{.Names}}"])
            .output()
            .expect("docker");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while processes_with(&format!("fleet-worker --table {table}")).is_empty()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let left = containers(child.id());
    assert!(
        !left.is_empty(),
        "no container to leave behind: the fleet never started"
    );
    drop(quota_fleet::emulator::Emulator::in_memory().expect("the emulator starts"));
    assert_eq!(containers(child.id()), "", "{left} is still there");
    // Its workers see their parent gone and stop on their own.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_with(&format!("fleet-worker --table {table}")).is_empty()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        processes_with(&format!("fleet-worker --table {table}")).is_empty(),
        "workers left"
    );
}

#[test]
fn a_table_that_is_not_a_quota_table_is_refused_with_exit_3() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, KeySchemaElement, KeyType, ProvisionedThroughput, ScalarAttributeType,
    };
    let emulator = quota_fleet::emulator::Emulator::start().expect("the emulator starts");
    let config = quota_dynamodb::DynamoConfig {
        table: "someone-elses".to_owned(),
        endpoint: Some(emulator.endpoint.clone()),
        region: "us-east-1".to_owned(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = quota_dynamodb::connect(&config).await;
        let attribute = AttributeDefinition::builder()
            .attribute_name("id")
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("valid");
        let key = KeySchemaElement::builder()
            .attribute_name("id")
            .key_type(KeyType::Hash)
            .build()
            .expect("valid");
        let throughput = ProvisionedThroughput::builder()
            .read_capacity_units(1)
            .write_capacity_units(1)
            .build()
            .expect("valid");
        client
            .create_table()
            .table_name(&config.table)
            .attribute_definitions(attribute)
            .key_schema(key)
            .provisioned_throughput(throughput)
            .send()
            .await
            .expect("the other table is created");
    });
    let output = run(&[
        "--endpoint",
        &emulator.endpoint,
        "--table",
        &config.table,
        "--faults",
        "none",
        "--duration",
        "2",
        "--out",
        &out_dir("not-ours"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("not a quota table"), "{stderr}");
    assert!(
        processes_with("--table someone-elses").is_empty(),
        "no worker started"
    );

    // A quota table that already holds today's counts (an earlier run's) is refused too:
    // the verdict would read them as doubled.
    let reused = [
        "--endpoint",
        &emulator.endpoint,
        "--table",
        "reused-table",
        "--faults",
        "none",
    ];
    let mut first = reused.to_vec();
    let (first_out, second_out) = (out_dir("first"), out_dir("second"));
    first.extend(["--duration", "2", "--instances", "1", "--out", &first_out]);
    assert_eq!(
        run(&first).status.code(),
        Some(0),
        "a first run on a fresh table"
    );
    let mut second = reused.to_vec();
    second.extend(["--duration", "2", "--instances", "1", "--out", &second_out]);
    let output = run(&second);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("already holds counts"), "{stderr}");
}
