//! The bounded mode across two instances sharing one store (the in-memory store on loom's
//! mutex: the one fake, loom cannot run I/O): in every interleaving the instances together
//! admit at most the ceiling, and after both stop, every call granted is a call used (the
//! leftovers went back). The lease variants of the zoo are each caught: granted without
//! the condition (past the ceiling), asked for under the cache lock (I/O under the lock),
//! kept on stop (granted calls never given back).
#![cfg(loom)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quota_loom::fixture::{LoomStore, LoomSynced};
use quota_loom::trace::Role;
use quota_loom::{Bound, Kind, Model, Reason, event, expect_caught, prove, trace};
use quota_tracker::sync::LoomBackend;
use quota_tracker::zoo::Variant;
use quota_tracker::{
    LeasePolicy, ManualClock, MemoryStore, Period, QuotaConfig, ServiceConfig, SyncedTracker,
    Timestamp, Tracker, TrackerOptions, UtcDay, Window,
};

const SERVICE: &str = "finnhub";
/// Admitted up to the limit itself: 3 calls per minute, in blocks of 2.
const CEILING: u64 = 3;

fn noon() -> Timestamp {
    Timestamp(UtcDay::from_ymd(2026, 11, 29).expect("valid").start().0 + 12 * 3_600_000)
}

fn instance(name: &str, store: &Arc<LoomStore>) -> Arc<LoomSynced> {
    let service = ServiceConfig::new(SERVICE, CEILING as i64, Period::Minute).expect("valid");
    let config = QuotaConfig::new(vec![service])
        .and_then(|c| c.with_admission_ceiling(100))
        .expect("valid")
        .with_leases(LeasePolicy::new(50).expect("valid"));
    let options = TrackerOptions {
        instance: name.into(),
        sync_interval_ms: i64::MAX,
        reload_interval_ms: i64::MAX,
    };
    let clock = Arc::new(ManualClock::new(noon()));
    let tracker = Tracker::<LoomBackend>::new_in(config, clock, options);
    Arc::new(SyncedTracker::new(tracker, Arc::clone(store)))
}

/// Instance a has two threads admitting one call each, instance b one thread admitting
/// two: 4 calls wanted, 3 allowed. Then both stop, and the store must hold what was
/// admitted, as used and as granted.
fn two_instances(variant: Variant) -> impl Fn() + Sync + Send + 'static {
    move || {
        let store: Arc<LoomStore> = Arc::new(MemoryStore::default());
        let (a, b) = (instance("a", &store), instance("b", &store));
        let admitted = Arc::new(AtomicU64::new(0));
        let role = |label: &str, synced: &Arc<LoomSynced>, calls: usize| -> Role {
            let (synced, admitted) = (Arc::clone(synced), Arc::clone(&admitted));
            (
                label.to_owned(),
                Box::new(move || {
                    let id = synced.tracker().service(SERVICE).expect("configured");
                    for _ in 0..calls {
                        let admission = synced.admit_as(variant, id, 1).expect("valid");
                        event!(
                            "admit: {:?} at used={}",
                            admission.refusal,
                            admission.usage.used()
                        );
                        if admission.is_admitted() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }),
            )
        };
        trace::run_concurrently(vec![
            role("A1", &a, 1),
            role("A2", &a, 1),
            role("B1", &b, 2),
        ]);
        let admitted = admitted.load(Ordering::Relaxed);
        if admitted > CEILING {
            panic!("admitted past the ceiling: {admitted} admitted by a and b, ceiling {CEILING}");
        }
        for synced in [&a, &b] {
            synced.release_leases_as(variant);
        }
        let window = Window::containing(Period::Minute, noon());
        let (used, granted) = (
            store.window(SERVICE, window),
            store.granted(SERVICE, window),
        );
        if used != admitted {
            panic!("conservation violated (lost): the store holds {used}, {admitted} admitted");
        }
        if granted != used {
            panic!(
                "lease not returned: {granted} calls granted for {window}, {used} used, after \
                 both instances stopped"
            );
        }
    }
}

#[test]
fn two_instances_together_admit_at_most_the_ceiling_and_give_back_the_rest() {
    prove(
        Model::proof("leases/two-instances", Bound::Preemptions(4)),
        two_instances(Variant::Fixed),
    );
}

#[test]
fn a_lease_granted_without_the_condition_is_caught_admitting_past_the_ceiling() {
    expect_caught(
        Model::of(
            Kind::Zoo,
            &format!("zoo/{}", Variant::LeaseWithoutCondition.id()),
            Variant::LeaseWithoutCondition.id(),
            Bound::Preemptions(2),
        ),
        Reason::OverCeiling,
        two_instances(Variant::LeaseWithoutCondition),
    );
}

#[test]
fn a_lease_asked_for_under_the_cache_lock_is_caught() {
    expect_caught(
        Model::of(
            Kind::Zoo,
            &format!("zoo/{}", Variant::LeaseUnderLock.id()),
            Variant::LeaseUnderLock.id(),
            Bound::Preemptions(2),
        ),
        Reason::IoUnderLock,
        two_instances(Variant::LeaseUnderLock),
    );
}

#[test]
fn a_lease_kept_on_stop_is_caught_never_given_back() {
    expect_caught(
        Model::of(
            Kind::Zoo,
            &format!("zoo/{}", Variant::LeaseKeptOnStop.id()),
            Variant::LeaseKeptOnStop.id(),
            Bound::Preemptions(2),
        ),
        Reason::LeaseNotReturned,
        two_instances(Variant::LeaseKeptOnStop),
    );
}
