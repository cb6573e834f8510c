//! Recorded histories of concurrent workloads, judged by the linearizability checker.
//!
//! The fixed core's histories are linearizable (on real threads and under shuttle); the
//! historical variants `unlocked-rmw`, `split-lock` and `torn-read` are found not
//! linearizable, and proptest shrinks each failure to a small workload whose history is
//! printed, saved under `target/histories/`, and kept as a regression case in
//! `tests/regressions/` (checked again by `regressions_stay_not_linearizable`). Admission
//! histories near a ceiling: the fixed `admit` is linearizable, `check-then-act` is caught
//! (two admissions both pass the check) and shrunk.

use std::time::Duration;

use linearizability::jsonl;
use linearizability::models::Quota;
use linearizability::{Verdict, check, report};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use quota_evidence::Finding;
use quota_harness::histories::{
    Action, QuotaHistory, Threads, real_threads_history, shuttle_histories,
};
use quota_tracker::zoo::Variant;

const SCHEDULES: usize = 8;

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..2usize).prop_map(Action::Record),
        2 => (0..2usize).prop_map(Action::Read),
        1 => (0..2usize).prop_map(Action::CanCall),
        1 => Just(Action::Sync),
    ]
}

fn workload(max_threads: usize, max_ops: usize) -> impl Strategy<Value = Threads> {
    prop::collection::vec(
        prop::collection::vec(action(), 1..=max_ops),
        2..=max_threads,
    )
}

fn verdict(history: &QuotaHistory) -> Verdict {
    check(&Quota::default(), history, Some(Duration::from_secs(10))).verdict
}

#[test]
fn fixed_core_histories_are_linearizable_on_real_threads() {
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&workload(4, 40), |threads| {
            let history = real_threads_history(Variant::Fixed, &threads);
            let result = check(&Quota::default(), &history, Some(Duration::from_secs(10)));
            prop_assert_eq!(
                result.verdict,
                Verdict::Linearizable,
                "{}",
                report::text(&Quota::default(), &history, &result)
            );
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    Finding::new("linearizability/real-threads", "fixed", false, "").emit();
}

#[test]
fn fixed_core_histories_are_linearizable_under_shuttle() {
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(workload(4, 8), any::<u64>()), |(threads, seed)| {
            for (k, history) in shuttle_histories(Variant::Fixed, &threads, seed, SCHEDULES)
                .iter()
                .enumerate()
            {
                prop_assert_eq!(
                    verdict(history),
                    Verdict::Linearizable,
                    "seed {}, schedule {}",
                    seed,
                    k
                );
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    Finding::new("linearizability/shuttle-proptest", "fixed", false, "").emit();
}

/// Finds a failing (workload, seed) for `variant` under shuttle and shrinks it.
fn shrunk_counterexample(variant: Variant) -> (Threads, u64, usize, QuotaHistory) {
    // A fixed seed: the shrunk counterexample (and its size) repeats on every run; with
    // proptest's random seed the shrink sometimes stopped one action short of its bound.
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 256,
            failure_persistence: None,
            max_shrink_iters: 2_000,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let result = runner.run(&(workload(3, 6), 0..10_000u64), |(threads, seed)| {
        for history in shuttle_histories(variant, &threads, seed, SCHEDULES) {
            prop_assert_ne!(verdict(&history), Verdict::NotLinearizable);
        }
        Ok(())
    });
    let (threads, seed) = match result {
        Err(TestError::Fail(_, minimal)) => minimal,
        Err(other) => panic!("{variant}: proptest could not run: {other}"),
        Ok(()) => panic!("{variant}: 256 workloads x {SCHEDULES} schedules, never caught"),
    };
    let (schedule, history) = shuttle_histories(variant, &threads, seed, SCHEDULES)
        .into_iter()
        .enumerate()
        .find(|(_, h)| verdict(h) == Verdict::NotLinearizable)
        .unwrap_or_else(|| panic!("{variant}: the shrunk case did not replay"));
    (threads, seed, schedule, history)
}

#[test]
fn historical_variants_are_caught_and_shrunk() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("histories");
    std::fs::create_dir_all(&dir).expect("target dir is writable");
    for variant in [Variant::UnlockedRmw, Variant::SplitLock, Variant::TornRead] {
        let (threads, seed, schedule, history) = shrunk_counterexample(variant);
        let actions: usize = threads.iter().map(Vec::len).sum();
        let result = check(&Quota::default(), &history, None);
        let path = dir.join(format!("{}.jsonl", variant.id()));
        std::fs::write(&path, jsonl::write(&Quota::default(), &history)).expect("writable");
        let counterexample = format!(
            "shrunk to {} threads, {actions} actions: {threads:?}\n\
             replay: shuttle RandomScheduler seed {seed}, schedule {schedule} of {SCHEDULES} \
             (quota_harness::histories::shuttle_histories)\n{}",
            threads.len(),
            report::text(&Quota::default(), &history, &result)
        );
        Finding::new(
            "linearizability/shuttle-proptest",
            variant.id(),
            true,
            &counterexample,
        )
        .emit();
        eprintln!("saved: {}", path.display());
        assert!(actions <= 6, "{variant}: shrunk only to {actions} actions");
    }
}

#[test]
fn historical_variants_are_caught_on_real_threads() {
    // Real threads are not deterministic: try a racy workload until one history fails.
    let record_both: Threads = vec![vec![Action::Record(0); 50], vec![Action::Record(1); 50]];
    let read_while_recording: Threads =
        vec![vec![Action::Record(0); 50], vec![Action::Read(0); 50]];
    for (variant, threads) in [
        (Variant::UnlockedRmw, &record_both),
        (Variant::SplitLock, &record_both),
        (Variant::TornRead, &read_while_recording),
    ] {
        let attempt = (0..2_000).find_map(|i| {
            let history = real_threads_history(variant, threads);
            let result = check(&Quota::default(), &history, Some(Duration::from_secs(10)));
            (result.verdict == Verdict::NotLinearizable).then_some((i, history, result))
        });
        let counterexample = attempt
            .as_ref()
            .map_or_else(String::new, |(i, history, result)| {
                let report = report::text(&Quota::default(), history, result);
                format!(
                    "run {i} of {} threads x 50 actions ({:?}) was not linearizable\n{}",
                    threads.len(),
                    threads.iter().map(|t| t[0]).collect::<Vec<_>>(),
                    report.lines().take(12).collect::<Vec<_>>().join("\n")
                )
            });
        Finding::new(
            "linearizability/real-threads",
            variant.id(),
            attempt.is_some(),
            counterexample,
        )
        .emit();
        assert!(
            attempt.is_some(),
            "{variant}: 2,000 real-thread runs, all linearizable"
        );
    }
}

/// Admission near finnhub's ceiling (48): thread 0 first brings it to 46 in one record.
fn admission_workload() -> impl Strategy<Value = Threads> {
    let action = prop_oneof![
        4 => Just(Action::Admit(1)),
        1 => Just(Action::Record(1)),
        1 => Just(Action::Read(1)),
    ];
    prop::collection::vec(prop::collection::vec(action, 1..=4), 2..=3).prop_map(|mut threads| {
        threads[0].insert(0, Action::RecordMany(1, 46));
        threads
    })
}

#[test]
fn fixed_admission_histories_are_linearizable_under_shuttle() {
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(admission_workload(), any::<u64>()), |(threads, seed)| {
            for history in shuttle_histories(Variant::Fixed, &threads, seed, SCHEDULES) {
                prop_assert_eq!(verdict(&history), Verdict::Linearizable, "seed {}", seed);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    Finding::new("linearizability/admission-shuttle", "fixed", false, "").emit();
}

#[test]
fn check_then_act_is_caught_and_shrunk() {
    let variant = Variant::CheckThenAct;
    // A fixed seed: the shrunk counterexample (and its size) repeats on every run; with
    // proptest's random seed the shrink sometimes stopped one action short of its bound.
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 256,
            failure_persistence: None,
            max_shrink_iters: 2_000,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let result = runner.run(&(admission_workload(), 0..10_000u64), |(threads, seed)| {
        for history in shuttle_histories(variant, &threads, seed, SCHEDULES) {
            prop_assert_ne!(verdict(&history), Verdict::NotLinearizable);
        }
        Ok(())
    });
    let Err(TestError::Fail(_, (threads, seed))) = result else {
        Finding::new("linearizability/admission-shuttle", variant.id(), false, "").emit();
        panic!("{variant}: 256 workloads x {SCHEDULES} schedules, never caught: {result:?}");
    };
    let history = shuttle_histories(variant, &threads, seed, SCHEDULES)
        .into_iter()
        .find(|h| verdict(h) == Verdict::NotLinearizable)
        .unwrap_or_else(|| panic!("{variant}: the shrunk case did not replay"));
    let result = check(&Quota::default(), &history, None);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("histories");
    std::fs::create_dir_all(&dir).expect("target dir is writable");
    let path = dir.join(format!("{}.jsonl", variant.id()));
    std::fs::write(&path, jsonl::write(&Quota::default(), &history)).expect("writable");
    let actions: usize = threads.iter().map(Vec::len).sum();
    Finding::new(
        "linearizability/admission-shuttle",
        variant.id(),
        true,
        format!(
            "shrunk to {} threads, {actions} actions: {threads:?}\n\
             replay: shuttle RandomScheduler seed {seed} (quota_harness::histories::shuttle_histories)\n{}",
            threads.len(),
            report::text(&Quota::default(), &history, &result)
        ),
    )
    .emit();
    eprintln!("saved: {}", path.display());
    // The smallest is 4: the prelude (46 of 48), then three admissions, two that fit and a
    // third whose check passes before the second records. proptest's shrink stops at a
    // local minimum: 5 with the fixed seed, 4 with some others.
    assert!(actions <= 5, "{variant}: shrunk only to {actions} actions");
}

#[test]
fn regressions_stay_not_linearizable() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/regressions exists") {
        let path = entry.expect("readable").path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let parsed = jsonl::parse(&Quota::default(), &text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            verdict(&parsed.operations),
            Verdict::NotLinearizable,
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(
        checked >= 4,
        "expected a regression history per racy variant, found {checked}"
    );
}
