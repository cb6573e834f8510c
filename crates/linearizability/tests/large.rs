//! Large generated histories: linearizable by construction, or corrupted in one read.
//! They exercise what small histories cannot (memo keys over many words, long searches,
//! partitions in parallel).

use linearizability::generate::{cas_register_history, kv_history, register_history};
use linearizability::models::{CasRegister, Kv, Register, RegisterOp};
use linearizability::{CheckOptions, MemoryBudget, Stopped, Verdict, check, check_with};

#[test]
fn generated_register_histories_are_judged_right() {
    for (seed, ops, processes) in [(1, 200, 3), (2, 1_000, 10), (3, 3_000, 5)] {
        let clean = register_history(seed, ops, processes, false);
        assert_eq!(
            check(&Register, &clean, None).verdict,
            Verdict::Linearizable,
            "seed {seed}: {ops} ops, {processes} processes"
        );
        let bad = register_history(seed, ops, processes, true);
        let result = check(&Register, &bad, None);
        assert_eq!(
            result.verdict,
            Verdict::NotLinearizable,
            "seed {seed} corrupted"
        );
        let p = &result.partitions[0];
        assert!(p.stuck.is_some() && !p.linearization.is_empty());
    }
}

#[test]
fn generated_kv_histories_are_judged_right_per_key() {
    for (seed, ops, processes, keys) in [(4, 2_000, 10, 10), (5, 5_000, 50, 20)] {
        let clean = kv_history(seed, ops, processes, keys, false);
        let result = check(&Kv, &clean, None);
        assert_eq!(result.verdict, Verdict::Linearizable, "seed {seed}");
        assert_eq!(result.partitions.len(), keys);
        let bad = kv_history(seed, ops, processes, keys, true);
        assert_eq!(check(&Kv, &bad, None).verdict, Verdict::NotLinearizable);
    }
}

/// A register history whose writes reuse three values: the search must decide it (distinct
/// values would be decided from the zones without searching).
fn register_history_of_three_values(
    seed: u64,
    ops: usize,
    processes: usize,
    corrupt: bool,
) -> Vec<linearizability::Operation<RegisterOp, Option<i64>>> {
    let mut history = register_history(seed, ops, processes, corrupt);
    for op in &mut history {
        match (&mut op.input, &mut op.outcome) {
            (RegisterOp::Write(v), _) => *v %= 3,
            (RegisterOp::Read, linearizability::Outcome::Ok(Some(v))) if *v >= 0 => *v %= 3,
            _ => {}
        }
    }
    history
}

#[test]
fn a_time_limit_yields_unknown_instead_of_hanging() {
    // Many concurrent processes and a read that cannot be placed: the search explores a
    // large space before giving up. With a zero limit it must stop at once.
    let bad = register_history_of_three_values(9, 20_000, 50, true);
    let result = check(&Register, &bad, Some(std::time::Duration::ZERO));
    assert_eq!(result.verdict, Verdict::Unknown);
}

#[test]
fn a_memory_limit_yields_unknown_with_a_prefix_instead_of_running_out() {
    // 50 processes overlapping on one register: the search's memo grows without end here.
    // Writes of three values but reads of the values first generated: to prove that no
    // order explains them, the search must try them all.
    let mut hard = register_history(11, 1_000, 50, false);
    for op in &mut hard {
        if let RegisterOp::Write(v) = &mut op.input {
            *v %= 3;
        }
    }
    let budget = MemoryBudget::new(16 << 20);
    let options = CheckOptions {
        timeout: Some(std::time::Duration::from_secs(60)),
        budget: Some(&budget),
        threads: 1,
    };
    let result = check_with(&Register, &hard, &options);
    assert_eq!(result.verdict, Verdict::Unknown);
    let p = &result.partitions[0];
    assert_eq!(
        p.stopped,
        Some(Stopped::MemoryLimit),
        "stopped by {:?}",
        p.stopped
    );
    assert!(!p.linearization.is_empty(), "no partial result");
    assert!(
        result.memory_peak <= 16 << 20 && result.memory_peak > 8 << 20,
        "peak {}",
        result.memory_peak
    );
}

#[test]
fn generated_etcd_like_histories_with_unknown_outcomes_are_judged_right() {
    for seed in 0..20 {
        let clean = cas_register_history(seed, 500, 5, 50, false);
        assert!(
            clean.iter().any(|op| op.ret.is_none()),
            "seed {seed}: no info operation"
        );
        assert_eq!(
            check(&CasRegister, &clean, None).verdict,
            Verdict::Linearizable,
            "seed {seed}"
        );
        let bad = cas_register_history(seed, 500, 5, 50, true);
        assert_eq!(
            check(&CasRegister, &bad, None).verdict,
            Verdict::NotLinearizable,
            "seed {seed}"
        );
    }
}
