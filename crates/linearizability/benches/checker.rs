//! Checker throughput on generated histories: `cargo bench -p linearizability`.
//!
//! Prints one row per history: operations, processes, partitions, verdict, time and
//! operations checked per second. Histories are generated from a known linearization
//! (`linearizability::generate`), so the expected verdict is known; each row asserts it.
//! Timings are wall time of one run on whatever machine runs this: compare rows of one run.

use std::time::{Duration, Instant};

use linearizability::generate::{
    cas_register_history, kv_history, quota_history, register_history,
};
use linearizability::models::{CasRegister, Kv, Quota, Register};
use linearizability::{Model, Operation, Unpartitioned, Verdict, check};

const LIMIT: Duration = Duration::from_secs(60);
/// Checking kv without partitions explodes combinatorially (that is the point of the row):
/// it gets a short limit and only the smaller sizes.
const WHOLE_LIMIT: Duration = Duration::from_secs(20);

/// Checks one history and prints its row; returns whether the check reached a verdict.
fn row<M: Model>(
    name: &str,
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    processes: usize,
    expected: Verdict,
    limit: Duration,
) -> bool {
    let started = Instant::now();
    let result = check(model, history, Some(limit));
    let elapsed = started.elapsed();
    let decided = result.verdict != Verdict::Unknown;
    let verdict = match result.verdict {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "not linearizable",
        Verdict::Unknown => "unknown (limit)",
    };
    println!(
        "{name:<34} {:>8} {:>6} {:>10} {verdict:<17} {:>10.1} {:>12.0}",
        history.len(),
        processes,
        result.partitions.len(),
        elapsed.as_secs_f64() * 1000.0,
        history.len() as f64 / elapsed.as_secs_f64()
    );
    assert!(
        result.verdict == expected || !decided,
        "{name}: expected {expected:?}, got {:?}",
        result.verdict
    );
    decided
}

fn main() {
    // `cargo bench` passes --bench; there is no filter: it is one table.
    println!(
        "{:<34} {:>8} {:>6} {:>10} {:<17} {:>10} {:>12}",
        "history", "ops", "procs", "partitions", "verdict", "ms", "ops/s"
    );
    let linearizable = Verdict::Linearizable;
    // A single register with every process's operation overlapping every other's is the
    // search's worst case (exponential in the overlap). Once a size reaches the limit, the
    // larger ones with as many processes are skipped.
    let mut register_gave_up = [false; 2];
    for &ops in &[1_000, 10_000, 100_000] {
        for (p, &processes) in [10, 50].iter().enumerate() {
            let kv = kv_history(ops as u64, ops, processes, 10, false);
            let name = "kv, 10 keys, partitioned";
            row(name, &Kv, &kv, processes, linearizable, LIMIT);
            if ops == 1_000 {
                let name = "kv, 10 keys, not partitioned";
                row(
                    name,
                    &Unpartitioned(Kv),
                    &kv,
                    processes,
                    linearizable,
                    WHOLE_LIMIT,
                );
            }
            let name = "register (one key)";
            if register_gave_up[p] {
                println!(
                    "{name:<34} {ops:>8} {processes:>6} {:>10} skipped: a smaller one reached the limit",
                    1
                );
                continue;
            }
            let register = register_history(ops as u64, ops, processes, false);
            register_gave_up[p] = !row(name, &Register, &register, processes, linearizable, LIMIT);
        }
    }
    let broken = Verdict::NotLinearizable;
    for &processes in &[10, 50] {
        let bad = kv_history(7, 10_000, processes, 10, true);
        row(
            "kv 10k, one read corrupted",
            &Kv,
            &bad,
            processes,
            broken,
            LIMIT,
        );
        let bad = register_history(7, 10_000, processes, true);
        row(
            "register 10k, one read corrupted",
            &Register,
            &bad,
            processes,
            broken,
            LIMIT,
        );
    }
    // The quota model's records report `used` after them, which pins their order: decided
    // without searching (O(n log n)), however many processes overlap.
    let quota = Quota::with_limits([]);
    for (corrupt, expected, name) in [
        (false, linearizable, "quota 1M, one service"),
        (true, broken, "quota 1M, one record corrupted"),
    ] {
        let history = quota_history(13, 1_000_000, 100, corrupt);
        row(name, &quota, &history, 100, expected, LIMIT);
    }
    // Shaped like Jepsen's etcd histories (porcupine's corpus: 102 files): a cas register,
    // 5 clients, some unknown outcomes (timeouts). Generated here, not those files.
    for (info_every, label) in [
        (100, "102 etcd-like, 1 % info"),
        (5, "102 etcd-like, 20 % info"),
    ] {
        let started = Instant::now();
        let mut ops = 0;
        for seed in 0..102 {
            let history = cas_register_history(seed, 1_000, 5, info_every, false);
            ops += history.len();
            assert_eq!(
                check(&CasRegister, &history, Some(LIMIT)).verdict,
                linearizable
            );
        }
        let elapsed = started.elapsed();
        println!(
            "{label:<34} {ops:>8} {:>6} {:>10} {:<17} {:>10.1} {:>12.0}",
            5,
            102,
            "linearizable",
            elapsed.as_secs_f64() * 1000.0,
            ops as f64 / elapsed.as_secs_f64()
        );
    }
}
