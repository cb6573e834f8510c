//! Each historical variant loom can express is caught, for its own reason; the same model on
//! the fixed core passes, so the check is about that bug and not about the model.
#![cfg(loom)]

use std::sync::Arc;

use quota_loom::fixture::{self, Ledger, Scenario, rmw_model};
use quota_loom::{Bound, Kind, Model, Reason, event, expect_caught, prove, trace};
use quota_tracker::Faults;
use quota_tracker::zoo::Variant;

/// Proves `model(Fixed)`, then expects `model(variant)` caught for `reason`.
fn caught_only_when_broken<M: Fn() + Sync + Send + 'static>(
    variant: Variant,
    bound: Bound,
    reason: Reason,
    model: impl Fn(Variant) -> M,
) {
    let name = format!("zoo/{}", variant.id());
    prove(
        Model::of(Kind::Proof, &format!("{name}/fixed"), "fixed", bound),
        model(Variant::Fixed),
    );
    expect_caught(
        Model::of(Kind::Zoo, &name, variant.id(), bound),
        reason,
        model(variant),
    );
}

#[test]
fn unlocked_rmw_loses_an_update_to_another_service() {
    caught_only_when_broken(
        Variant::UnlockedRmw,
        Bound::Exhaustive,
        Reason::LostUpdate,
        |v| rmw_model(v, &[("tiingo", 1), ("finnhub", 1)]),
    );
}

#[test]
fn split_lock_loses_an_update_to_another_service() {
    caught_only_when_broken(
        Variant::SplitLock,
        Bound::Exhaustive,
        Reason::LostUpdate,
        |v| rmw_model(v, &[("tiingo", 1), ("finnhub", 1)]),
    );
}

#[test]
fn reentrant_lock_deadlocks() {
    caught_only_when_broken(
        Variant::ReentrantDeadlock,
        Bound::Exhaustive,
        Reason::Deadlock,
        |v| rmw_model(v, &[("tiingo", 1), ("finnhub", 1)]),
    );
}

#[test]
fn torn_read_sees_used_and_remaining_from_different_updates() {
    caught_only_when_broken(
        Variant::TornRead,
        Bound::Exhaustive,
        Reason::TornRead,
        |v| {
            move || {
                let tracker = Arc::new(fixture::tracker("a"));
                let ledger = Arc::new(Ledger::default());
                let recorder = {
                    let (tracker, ledger) = (Arc::clone(&tracker), Arc::clone(&ledger));
                    trace::spawn("T1", move || {
                        fixture::record(&tracker, Variant::Fixed, "tiingo", &ledger)
                    })
                };
                let reader = {
                    let tracker = Arc::clone(&tracker);
                    trace::spawn("T2", move || {
                        let tiingo = tracker.service("tiingo").expect("configured");
                        let usage = tracker.usage_as(v, tiingo).expect("configured");
                        event!(
                            "usage: used={} remaining={}",
                            usage.used(),
                            usage.remaining()
                        );
                        if usage.used() + usage.remaining() != usage.limit() {
                            panic!(
                                "torn read: used={} + remaining={} != limit {}",
                                usage.used(),
                                usage.remaining(),
                                usage.limit()
                            );
                        }
                    })
                };
                recorder.join().expect("recorder finished");
                reader.join().expect("reader finished");
            }
        },
    );
}

#[test]
fn io_under_the_cache_lock_is_caught_in_the_store() {
    caught_only_when_broken(
        Variant::IoUnderLock,
        Bound::Exhaustive,
        Reason::IoUnderLock,
        |v| {
            Scenario {
                syncers: 1,
                ..Scenario::new(v, &[("tiingo", 1)])
            }
            .model()
        },
    );
}

#[test]
fn stale_snapshot_sync_drops_calls_recorded_during_the_write() {
    caught_only_when_broken(
        Variant::StaleSnapshotSync,
        Bound::Exhaustive,
        Reason::ConservationLost,
        |v| {
            Scenario {
                syncers: 1,
                ..Scenario::new(v, &[("tiingo", 2)])
            }
            .model()
        },
    );
}

#[test]
fn lost_on_sync_failure_drops_the_failed_deltas() {
    caught_only_when_broken(
        Variant::LostOnSyncFailure,
        Bound::Exhaustive,
        Reason::ConservationLost,
        |v| {
            Scenario {
                syncers: 1,
                faults: Some(Faults {
                    fail_writes: 1,
                    ..Faults::default()
                }),
                ..Scenario::new(v, &[("tiingo", 1)])
            }
            .model()
        },
    );
}

#[test]
fn double_count_on_miss_counts_the_first_call_twice() {
    caught_only_when_broken(
        Variant::DoubleCountOnMiss,
        Bound::Exhaustive,
        Reason::ConservationDoubled,
        |v| Scenario::new(v, &[("tiingo", 1), ("finnhub", 1)]).model(),
    );
}

#[test]
fn reset_on_load_failure_erases_pending_calls() {
    caught_only_when_broken(
        Variant::ResetOnLoadFailure,
        Bound::Exhaustive,
        Reason::ConservationLost,
        |v| {
            Scenario {
                reloaders: 1,
                faults: Some(Faults {
                    fail_reads: 1,
                    ..Faults::default()
                }),
                ..Scenario::new(v, &[("tiingo", 1)])
            }
            .model()
        },
    );
}
