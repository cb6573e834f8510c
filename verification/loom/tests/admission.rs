//! Admission at the boundary: in every interleaving the fixed `admit` keeps `used` at or
//! under the ceiling and admits exactly as many calls as fit; `check-then-act` (can_call,
//! then record_call, two critical sections) is caught admitting past it. Refunds keep
//! conservation with a sync running beside them.
#![cfg(loom)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quota_loom::fixture::{self, Ledger, LoomTracker};
use quota_loom::{Bound, Kind, Model, Reason, event, expect_caught, prove, trace};
use quota_tracker::zoo::Variant;

/// finnhub: limit 60, ceiling 48.
const SERVICE: &str = "finnhub";

/// `threads` threads each admit one call to finnhub, which starts `room` calls below its
/// ceiling; afterwards `used` must not pass the ceiling, and must equal what was admitted.
fn boundary_model(variant: Variant, threads: usize, room: u64) -> impl Fn() + Sync + Send {
    move || {
        let tracker = Arc::new(fixture::tracker("a"));
        let id = tracker.service(SERVICE).expect("configured");
        let ceiling = tracker.usage(id).expect("configured").ceiling();
        tracker.record_call(id, ceiling - room).expect("valid");
        let admitted = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (tracker, admitted) = (Arc::clone(&tracker), Arc::clone(&admitted));
                trace::spawn(&format!("T{}", t + 1), move || {
                    let admission = tracker.admit_as(variant, id, 1, || {}).expect("valid");
                    event!(
                        "admit: {} at used={}",
                        if admission.is_admitted() {
                            "admitted"
                        } else {
                            "refused"
                        },
                        admission.usage.used()
                    );
                    if admission.is_admitted() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("thread finished");
        }
        check_ceiling(
            &tracker,
            id,
            ceiling,
            room,
            admitted.load(Ordering::Relaxed),
        );
    }
}

fn check_ceiling(
    tracker: &LoomTracker,
    id: quota_tracker::ServiceId,
    ceiling: u64,
    room: u64,
    admitted: u64,
) {
    let used = tracker.usage(id).expect("configured").used();
    if used > ceiling {
        panic!("admitted past the ceiling: {SERVICE}.used={used}, ceiling {ceiling}");
    }
    if used != ceiling - room + admitted {
        panic!("lost update: {SERVICE}.used={used} after {admitted} admitted");
    }
}

#[test]
fn check_then_act_admits_past_the_ceiling_with_two_threads() {
    let name = format!("zoo/{}", Variant::CheckThenAct.id());
    prove(
        Model::of(
            Kind::Proof,
            &format!("{name}/fixed"),
            "fixed",
            Bound::Exhaustive,
        ),
        boundary_model(Variant::Fixed, 2, 1),
    );
    expect_caught(
        Model::of(
            Kind::Zoo,
            &name,
            Variant::CheckThenAct.id(),
            Bound::Exhaustive,
        ),
        Reason::OverCeiling,
        boundary_model(Variant::CheckThenAct, 2, 1),
    );
}

#[test]
fn check_then_act_admits_past_the_ceiling_with_three_threads() {
    let name = format!("zoo/{}-3-threads", Variant::CheckThenAct.id());
    prove(
        Model::of(
            Kind::Proof,
            &format!("{name}/fixed"),
            "fixed",
            Bound::Exhaustive,
        ),
        boundary_model(Variant::Fixed, 3, 2),
    );
    expect_caught(
        Model::of(
            Kind::Zoo,
            &name,
            Variant::CheckThenAct.id(),
            Bound::Exhaustive,
        ),
        Reason::OverCeiling,
        boundary_model(Variant::CheckThenAct, 3, 2),
    );
}

#[test]
fn refunds_keep_conservation_beside_a_sync() {
    // T1 admits and gives the call back, T2 admits and keeps it, T3 syncs: whether the
    // refund lands before or after the sync took the admission, the store ends at
    // admitted minus refunded.
    prove(
        Model::proof("admission/refund-beside-sync", Bound::Exhaustive),
        || {
            let store = fixture::store();
            let instance = fixture::synced("a", &store);
            let ledger = Arc::new(Ledger::default());
            let index = fixture::index(SERVICE);
            let spawn_admit = |label: &str, refund: bool| {
                let (instance, ledger) = (Arc::clone(&instance), Arc::clone(&ledger));
                trace::spawn(label, move || {
                    let tracker = instance.tracker();
                    let id = tracker.service(SERVICE).expect("configured");
                    let admission = tracker.admit(id, 1).expect("valid");
                    let reservation = admission.reservation.expect("room for two");
                    ledger.add(index, 1);
                    event!("admit: used={}", admission.usage.used());
                    if refund {
                        let usage = tracker.refund(reservation).expect("own reservation");
                        ledger.remove(index, 1);
                        event!("refund: used={}", usage.used());
                    }
                })
            };
            let refunder = spawn_admit("T1", true);
            let keeper = spawn_admit("T2", false);
            let syncer = {
                let instance = Arc::clone(&instance);
                // Not fixture::sync: its check that the store never goes back does not hold
                // with refunds, which are negative deltas.
                trace::spawn("T3", move || {
                    event!("sync");
                    let report = instance.sync();
                    event!("sync: {report:?}");
                })
            };
            for handle in [refunder, keeper, syncer] {
                handle.join().expect("thread finished");
            }
            fixture::check_conservation(&store, &[&instance], &ledger);
            fixture::flush(&store, &instance);
            fixture::check_conservation(&store, &[&instance], &ledger);
            fixture::check_no_lost_update(instance.tracker(), &ledger);
            // finnhub's limit is per minute: its window item must hold the same count.
            let id = instance.tracker().service(SERVICE).expect("configured");
            let window = instance.tracker().state().window(id).expect("window");
            let (stored, kept) = (store.window(SERVICE, window), ledger.get(index));
            if stored != kept {
                panic!(
                    "conservation violated (lost): {SERVICE} window {window} holds {stored}, \
                     {kept} calls kept"
                );
            }
        },
    );
}
