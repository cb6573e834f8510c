//! Random and PCT schedules side by side: how many schedules each needs to first catch each
//! variant the shuttle workloads show (the table in ARCHITECTURE.md comes from this test's
//! output), and the fixed tracker exact under PCT too.

use std::time::Duration;

use linearizability::models::Quota;
use linearizability::{Verdict, check};
use quota_evidence::Finding;
use quota_harness::admission::{self, AdmissionWorkload};
use quota_harness::histories::{Action, shuttle_histories_with};
use quota_harness::{Scheduler, Variant, Workload, shuttle_schedule_with};

/// Schedules each scheduler may take to catch a variant, per seed (shuttle has no early
/// stop, so `first_catch` tries a short run first; the worst first catch seen is 37).
const SCHEDULES: usize = 200;
/// Seeds per scheduler and variant: the table gives the median and the worst.
const SEEDS: u64 = 15;
const SCHEDULERS: [Scheduler; 3] = [
    Scheduler::Random,
    Scheduler::Pct { depth: 2 },
    Scheduler::Pct { depth: 3 },
];

/// The 1-based index of the first schedule in which `variant` shows its bug, if any, within
/// `budget(variant)` schedules.
///
/// Tries an eighth of the budget first, the whole budget only if that misses: a run of k
/// schedules is the first k of a longer run under the same seed (the schedulers draw from
/// the seeded generator in order), so both give the same first catch, and most seeds catch
/// early (the table in ARCHITECTURE.md: medians 1 to 9). Measured (debug build, alone):
/// 18.7 s with the whole budget every time, 2.3 s with the short try first, the same table.
fn first_catch(variant: Variant, scheduler: Scheduler, seed: u64) -> Option<usize> {
    let full = budget(variant);
    first_catch_within(variant, scheduler, seed, full / 8)
        .or_else(|| first_catch_within(variant, scheduler, seed, full))
}

/// Schedules per seed for `variant`: admission schedules admit 80 calls each, so fewer of
/// them (the worst first catch seen is 7).
fn budget(variant: Variant) -> usize {
    match variant {
        Variant::CheckThenAct => SCHEDULES / 5,
        _ => SCHEDULES,
    }
}

/// [`first_catch`] over exactly `schedules` schedules.
fn first_catch_within(
    variant: Variant,
    scheduler: Scheduler,
    seed: u64,
    schedules: usize,
) -> Option<usize> {
    let caught: Vec<bool> = match variant {
        Variant::UnlockedRmw | Variant::SplitLock | Variant::Fixed => {
            let w = Workload {
                variant,
                threads: 2,
                calls: 2,
            };
            shuttle_schedule_with(scheduler, &w, seed, schedules, |_| {})
                .expect("ran")
                .iter()
                .map(|t| !t.exact())
                .collect()
        }
        Variant::CheckThenAct => {
            let w = AdmissionWorkload {
                variant,
                threads: 2,
                call: Duration::ZERO,
                refund_every: 0,
            };
            admission::shuttle_schedule_with(scheduler, &w, seed, schedules)
                .expect("ran")
                .iter()
                .map(|t| t.over_ceiling() > 0 || !t.conserved())
                .collect()
        }
        Variant::TornRead => {
            let threads = vec![vec![Action::Record(0); 2], vec![Action::Read(0)]];
            shuttle_histories_with(scheduler, variant, &threads, seed, schedules)
                .iter()
                .map(|h| {
                    let verdict =
                        check(&Quota::default(), h, Some(Duration::from_secs(10))).verdict;
                    verdict == Verdict::NotLinearizable
                })
                .collect()
        }
        other => panic!("{other} has no shuttle workload here"),
    };
    caught.iter().position(|c| *c).map(|i| i + 1)
}

#[test]
fn schedules_to_first_catch_random_and_pct() {
    let variants = [
        Variant::UnlockedRmw,
        Variant::SplitLock,
        Variant::TornRead,
        Variant::CheckThenAct,
    ];
    println!(
        "| variant | workload | {} |",
        SCHEDULERS.map(Scheduler::label).join(" | ")
    );
    println!("|---|---|{}", "---|".repeat(SCHEDULERS.len()));
    for variant in variants {
        let workload = match variant {
            Variant::TornRead => "2 records beside 1 read",
            Variant::CheckThenAct => "2 threads admit until refused",
            _ => "2 threads x 2 calls",
        };
        // Per scheduler: the schedule of first catch under each seed.
        let runs: Vec<Vec<Option<usize>>> = SCHEDULERS
            .iter()
            .map(|s| {
                (0..SEEDS)
                    .map(|seed| first_catch(variant, *s, seed))
                    .collect()
            })
            .collect();
        let cells: Vec<String> = runs
            .iter()
            .map(|firsts| summary(firsts, budget(variant)))
            .collect();
        println!("| `{variant}` | {workload} | {} |", cells.join(" | "));
        let pct_caught = runs[1..]
            .iter()
            .all(|firsts| firsts.iter().all(Option::is_some));
        Finding::new(
            "lost-update/pct",
            variant.id(),
            pct_caught,
            format!(
                "schedules to first catch (median, worst of {SEEDS} seeds): {}",
                cells.join("; ")
            ),
        )
        .emit();
        for (scheduler, firsts) in SCHEDULERS.iter().zip(&runs) {
            assert!(
                firsts.iter().all(Option::is_some),
                "{variant}: {} missed it within {} schedules under some seed: {firsts:?}",
                scheduler.label(),
                budget(variant)
            );
        }
    }
}

/// `median (worst)` of the schedules to first catch; a miss (none within `budget`) counts
/// as worst.
fn summary(firsts: &[Option<usize>], budget: usize) -> String {
    let mut found: Vec<usize> = firsts.iter().map(|f| f.unwrap_or(usize::MAX)).collect();
    found.sort_unstable();
    let show = |n: usize| {
        if n == usize::MAX {
            format!("> {budget}")
        } else {
            n.to_string()
        }
    };
    format!(
        "{} ({})",
        show(found[found.len() / 2]),
        show(found[found.len() - 1])
    )
}

#[test]
fn the_fixed_tracker_is_exact_under_pct() {
    for scheduler in SCHEDULERS {
        for seed in 0..3 {
            let caught = first_catch(Variant::Fixed, scheduler, seed);
            assert_eq!(caught, None, "{} seed {seed}", scheduler.label());
        }
        let w = AdmissionWorkload {
            variant: Variant::Fixed,
            threads: 3,
            call: Duration::ZERO,
            refund_every: 2,
        };
        let trials = admission::shuttle_schedule_with(scheduler, &w, 7, 50).expect("ran");
        assert!(
            trials
                .iter()
                .all(|t| t.over_ceiling() == 0 && t.conserved())
        );
    }
    Finding::new("lost-update/pct", "fixed", false, "").emit();
}
