//! Admission under concurrency: the fixed tracker never counts past the ceiling, with or
//! without refunds; `check-then-act` is shown to overshoot by the same workload, on real
//! threads and under shuttle at 100 threads.

use std::time::Duration;

use quota_evidence::Finding;
use quota_harness::Variant;
use quota_harness::admission::{AdmissionTrial, AdmissionWorkload, real_threads, shuttle_schedule};

fn workload(variant: Variant, threads: usize, refund_every: u64) -> AdmissionWorkload {
    AdmissionWorkload {
        variant,
        threads,
        call: Duration::from_millis(2),
        refund_every,
    }
}

fn assert_held(trial: &AdmissionTrial, what: &str) {
    assert!(
        trial.over_ceiling() == 0 && trial.used <= trial.ceiling,
        "{what}: used reached {} (ends at {}), ceiling {}",
        trial.max_used,
        trial.used,
        trial.ceiling
    );
    assert!(
        trial.conserved(),
        "{what}: admitted {} - refunded {} != used {}",
        trial.admitted,
        trial.refunded,
        trial.used
    );
    assert_eq!(
        trial.used, trial.ceiling,
        "{what}: admission stops at the ceiling, not before"
    );
}

#[test]
fn real_threads_fixed_admission_stops_at_the_ceiling_with_100_threads() {
    for refund_every in [0, 3] {
        let w = workload(Variant::Fixed, 100, refund_every);
        for i in 0..10 {
            let trial = real_threads(&w).expect("ran");
            assert_held(&trial, &format!("refund every {refund_every}, trial {i}"));
        }
    }
    Finding::new("lost-update/admission-real-threads", "fixed", false, "").emit();
}

#[test]
fn real_threads_check_then_act_overshoots_the_ceiling() {
    let w = workload(Variant::CheckThenAct, 100, 0);
    let found = (0..20).find_map(|i| {
        let trial = real_threads(&w).expect("ran");
        assert!(trial.conserved(), "check-then-act loses nothing: {trial:?}");
        (trial.over_ceiling() > 0).then_some((i, trial))
    });
    let counterexample = found.map_or_else(String::new, |(i, t)| {
        format!(
            "100 threads, admit -> 2 ms call -> record: trial {i} reached used={} over a \
             ceiling of {} (limit {})\nreplay: quota-verify repro --workload admission \
             --variant check-then-act --threads 100",
            t.max_used, t.ceiling, t.limit
        )
    });
    Finding::new(
        "lost-update/admission-real-threads",
        Variant::CheckThenAct.id(),
        found.is_some(),
        counterexample,
    )
    .emit();
    assert!(
        found.is_some(),
        "check-then-act stayed under the ceiling in 20 trials"
    );
}

#[test]
fn shuttle_fixed_admission_stops_at_the_ceiling() {
    for (threads, refund_every) in [(2, 0), (3, 2), (100, 0), (100, 4)] {
        let w = workload(Variant::Fixed, threads, refund_every);
        for (i, trial) in shuttle_schedule(&w, 7, 10).expect("ran").iter().enumerate() {
            assert_held(
                trial,
                &format!("{threads} threads, refund every {refund_every}, {i}"),
            );
        }
    }
    Finding::new("lost-update/admission-shuttle", "fixed", false, "").emit();
}

#[test]
fn shuttle_check_then_act_overshoots_at_100_threads() {
    let w = workload(Variant::CheckThenAct, 100, 0);
    let trials = shuttle_schedule(&w, 42, 10).expect("ran");
    let over: Vec<_> = trials.iter().filter(|t| t.over_ceiling() > 0).collect();
    let counterexample = over.first().map_or_else(String::new, |t| {
        format!(
            "shuttle seed 42, 100 threads: {} of 10 schedules went over the ceiling; the first \
             reached used={} against a ceiling of {}\nreplay: quota-verify repro --workload \
             admission --variant check-then-act --threads 100 --trials 10 --seed 42",
            over.len(),
            t.max_used,
            t.ceiling
        )
    });
    Finding::new(
        "lost-update/admission-shuttle",
        Variant::CheckThenAct.id(),
        !over.is_empty(),
        counterexample,
    )
    .emit();
    assert!(
        !over.is_empty(),
        "seed 42 stayed under the ceiling in 10 schedules"
    );
    assert!(trials.iter().all(AdmissionTrial::conserved));
}

#[test]
fn shuttle_admission_replays_from_its_seed() {
    for variant in [Variant::Fixed, Variant::CheckThenAct] {
        let w = workload(variant, 5, 2);
        let first = shuttle_schedule(&w, 99, 5).expect("ran");
        assert_eq!(
            first,
            shuttle_schedule(&w, 99, 5).expect("ran"),
            "{variant}"
        );
    }
}
