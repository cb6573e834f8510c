//! The benchmark runs and prints every table, with `--smoke`'s least work (figures are not
//! judged here: timing belongs in the benchmark's own output, not in tests on a shared
//! machine; the gate's bench tier runs `--quick` in release).

#[test]
fn smoke_run_prints_every_table_and_conserves_calls() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quota-bench"))
        .arg("--smoke")
        .output()
        .expect("the benchmark runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "## record_call: throughput and latency",
        "| floor: AtomicU64::fetch_add | 100 |",
        "| fixed core, parking_lot | 8 |",
        "## record_call latency while a sync",
        "| io-under-lock: writes holding the lock |",
        "## Store writes per 1,000 recorded calls",
        "| 8 | ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(
        text.matches("exact (").count(),
        2,
        "conservation in both simulations:\n{text}"
    );
}
