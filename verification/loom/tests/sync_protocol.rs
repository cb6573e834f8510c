//! Invariants 2–6 on the fixed core: recorders, syncers, reloaders and store faults together.
//! The store asserts on every call that its caller holds no cache lock (invariant 2) and that
//! no two writes of one instance overlap (invariant 3).
#![cfg(loom)]

use std::sync::Arc;

use quota_loom::fixture::{self, Ledger, Scenario, Signal};
use quota_loom::{Bound, Model, event, prove, trace};
use quota_tracker::zoo::Variant::Fixed;
use quota_tracker::{Faults, SyncReport, SyncedTracker};

#[test]
fn records_and_syncs_interleaved() {
    prove(
        Model::proof("sync/2-recorders-1-syncer-x2", Bound::Exhaustive),
        Scenario {
            syncers: 1,
            syncs_each: 2,
            ..Scenario::new(Fixed, &[("tiingo", 1), ("finnhub", 1)])
        }
        .model(),
    );
}

#[test]
fn two_syncers_never_overlap() {
    prove(
        Model::proof("sync/2-recorders-2-syncers", Bound::Preemptions(5)),
        Scenario {
            syncers: 2,
            ..Scenario::new(Fixed, &[("tiingo", 1), ("finnhub", 1)])
        }
        .model(),
    );
}

#[test]
fn a_failing_write_puts_its_deltas_back() {
    prove(
        Model::proof("sync/failing-write", Bound::Exhaustive),
        Scenario {
            syncers: 1,
            syncs_each: 2,
            faults: Some(Faults {
                fail_writes: 1,
                ..Faults::default()
            }),
            ..Scenario::new(Fixed, &[("tiingo", 1), ("finnhub", 1)])
        }
        .model(),
    );
}

#[test]
fn a_write_in_doubt_is_applied_exactly_once() {
    prove(
        Model::proof("sync/write-in-doubt", Bound::Exhaustive),
        Scenario {
            syncers: 1,
            syncs_each: 2,
            faults: Some(Faults {
                lose_acks: 1,
                ..Faults::default()
            }),
            flush: true,
            ..Scenario::new(Fixed, &[("tiingo", 1), ("finnhub", 1)])
        }
        .model(),
    );
}

#[test]
fn a_failing_read_keeps_the_last_known_state() {
    prove(
        Model::proof("sync/failing-read", Bound::Preemptions(5)),
        Scenario {
            syncers: 1,
            reloaders: 1,
            faults: Some(Faults {
                fail_reads: 1,
                ..Faults::default()
            }),
            ..Scenario::new(Fixed, &[("tiingo", 1)])
        }
        .model(),
    );
}

/// T1 holds a batch (its write "in flight") and waits for T2's sync to return before it
/// finishes. If a second syncer waited on the first, nothing could move: loom would report
/// the model stuck instead of passing.
#[test]
fn a_second_syncer_does_not_wait_for_the_first() {
    prove(
        Model::proof("sync/second-syncer-does-not-block", Bound::Exhaustive),
        || {
            let tracker = Arc::new(fixture::tracker("a"));
            let ledger = Ledger::default();
            fixture::record(&tracker, Fixed, "tiingo", &ledger);
            let (out, returned) = (Arc::new(Signal::default()), Arc::new(Signal::default()));
            let first = {
                let (tracker, out, returned) = (
                    Arc::clone(&tracker),
                    Arc::clone(&out),
                    Arc::clone(&returned),
                );
                trace::spawn("T1", move || {
                    let batch = tracker.begin_sync().expect("something is pending");
                    event!("holds batch {} and waits for T2", batch.seq);
                    out.raise();
                    returned.wait();
                    tracker.finish_sync(batch, quota_tracker::SyncOutcome::Applied { fresh: None });
                })
            };
            let second = {
                let (tracker, out, returned) = (
                    Arc::clone(&tracker),
                    Arc::clone(&out),
                    Arc::clone(&returned),
                );
                trace::spawn("T2", move || {
                    out.wait();
                    let attempt = tracker.begin_sync();
                    event!("begin_sync returns {attempt:?}");
                    returned.raise();
                    assert!(
                        attempt.is_err(),
                        "at most one sync in flight: a second batch was handed out"
                    );
                })
            };
            first.join().expect("T1 finished");
            second.join().expect("T2 finished");
        },
    );
}

/// Two instances share the store: each reload must merge the other's synced calls with its
/// own pending ones, never replace them.
#[test]
fn a_reload_merges_with_pending_deltas() {
    prove(
        Model::proof("sync/2-instances-reload-merges", Bound::Exhaustive),
        || {
            let store = fixture::store();
            let (a, b) = (fixture::synced("a", &store), fixture::synced("b", &store));
            let ledger = Arc::new(Ledger::default());
            let writer = {
                let (a, ledger) = (Arc::clone(&a), Arc::clone(&ledger));
                trace::spawn("A", move || {
                    fixture::record(a.tracker(), Fixed, "tiingo", &ledger);
                    fixture::sync(&a, Fixed);
                })
            };
            let reader = {
                let (b, ledger) = (Arc::clone(&b), Arc::clone(&ledger));
                trace::spawn("B", move || {
                    fixture::record(b.tracker(), Fixed, "tiingo", &ledger);
                    event!("reload");
                    let report = b.reload();
                    event!("reload: {report:?}");
                })
            };
            writer.join().expect("A finished");
            reader.join().expect("B finished");
            let tiingo = b.tracker().service("tiingo").expect("configured");
            let used = b.tracker().usage(tiingo).map_or(0, |u| u.used());
            assert!(
                used >= 1,
                "a reload replaced pending deltas: b's tiingo.used={used} after b recorded 1"
            );
            fixture::check_conservation(&store, &[&a, &b], &ledger);
        },
    );
}

/// The driver (`SyncedTracker::record_call`) with syncs due after every call: two recorders
/// each trigger their own sync and the first call's reload; whoever finds one in flight
/// leaves it. At the end, after one flush, the store holds every call.
#[test]
fn the_driver_syncs_when_due_without_losing_or_doubling() {
    prove(
        Model::proof("sync/driver-sync-every-call", Bound::Exhaustive),
        || {
            let store = fixture::store();
            let instance = Arc::new(SyncedTracker::new(
                fixture::tracker_with("a", 0),
                Arc::clone(&store),
            ));
            let ledger = Arc::new(Ledger::default());
            let handles: Vec<_> = [("T1", "tiingo"), ("T2", "finnhub")]
                .into_iter()
                .map(|(name, service)| {
                    let (instance, ledger) = (Arc::clone(&instance), Arc::clone(&ledger));
                    trace::spawn(name, move || {
                        let id = instance.tracker().service(service).expect("configured");
                        event!("record_call({service}) through the driver");
                        instance.record_call(id, 1).expect("valid call");
                        ledger.add(
                            fixture::SERVICES
                                .iter()
                                .position(|s| *s == service)
                                .unwrap_or(0),
                            1,
                        );
                    })
                })
                .collect();
            for handle in handles {
                handle.join().expect("recorder finished");
            }
            fixture::flush(&store, &instance);
            fixture::check_conservation(&store, &[&instance], &ledger);
            if !instance.tracker().unsynced().is_empty() {
                panic!("conservation violated (lost): deltas still unsynced after a flush");
            }
            let _: SyncReport = fixture::sync(&instance, Fixed);
        },
    );
}
