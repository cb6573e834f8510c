//! The bounded mode end to end with the in-memory store: instances sharing one store admit
//! at most the ceiling together, what is left of a lease goes back at the window's end and
//! at a stop (so granted == used at a quiet point), refunds go back to the lease, and a
//! store that cannot grant fails closed or open as configured, and a grant whose answer
//! was lost is recovered by the next request in its window.

mod common;

use std::sync::Arc;

use quota_tracker::{
    Faults, LeaseOutage, LeasePolicy, LeaseReport, ManualClock, MemoryStore, Period, QuotaConfig,
    Refusal, ServiceConfig, ServiceId, SyncReport, SyncedTracker, Timestamp, Tracker,
    TrackerOptions, UtcDay, Window,
};

type Synced = SyncedTracker<Arc<MemoryStore>>;

fn start() -> Timestamp {
    Timestamp(UtcDay::from_ymd(2026, 12, 1).expect("valid").start().0 + 3_600_000)
}

/// One service, `limit` calls per minute, admitted up to the limit itself, in leases of
/// `block_percent` of it.
fn config(limit: i64, block_percent: u64) -> QuotaConfig {
    QuotaConfig::new(vec![
        ServiceConfig::new("finnhub", limit, Period::Minute).expect("valid"),
    ])
    .and_then(|c| c.with_admission_ceiling(100))
    .expect("valid")
    .with_leases(LeasePolicy::new(block_percent).expect("valid"))
}

fn instance(
    name: &str,
    config: &QuotaConfig,
    clock: &Arc<ManualClock>,
    store: &Arc<MemoryStore>,
) -> Synced {
    let options = TrackerOptions {
        instance: name.into(),
        ..TrackerOptions::for_config(config)
    };
    let tracker = Tracker::with_options(config.clone(), clock.clone(), options);
    SyncedTracker::new(tracker, Arc::clone(store))
}

fn finnhub(t: &Synced) -> ServiceId {
    t.tracker().service("finnhub").expect("configured")
}

fn window(clock: &ManualClock) -> Window {
    Window::containing(Period::Minute, quota_tracker::Clock::now(clock))
}

/// Instance "a" alone on a fresh store (blocks of 10 of 100 a minute), `faults` armed.
fn alone_with(faults: Faults) -> (Arc<ManualClock>, Arc<MemoryStore>, Synced, ServiceId) {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let a = instance("a", &config(100, 10), &clock, &store);
    let id = finnhub(&a);
    store.inject(faults);
    (clock, store, a, id)
}

#[test]
fn instances_sharing_a_store_admit_the_ceiling_together_and_no_more() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let config = config(100, 10);
    let fleet: Vec<Synced> = ["a", "b", "c"]
        .iter()
        .map(|n| instance(n, &config, &clock, &store))
        .collect();
    let id = finnhub(&fleet[0]);
    // Each instance sees only its own calls until a sync; without leases each would admit
    // 100. Round-robin until every instance is refused.
    let mut admitted = 0;
    let mut refused = [false; 3];
    while !refused.iter().all(|r| *r) {
        for (i, t) in fleet.iter().enumerate() {
            let admission = t.admit(id, 1).expect("valid");
            if admission.is_admitted() {
                admitted += 1;
            } else {
                refused[i] = true;
                assert_eq!(
                    admission.refusal,
                    Some(Refusal::NoLease),
                    "the store is out"
                );
            }
        }
    }
    assert_eq!(admitted, 100, "the whole ceiling, once");
    assert_eq!(store.granted("finnhub", window(&clock)), 100);
    for t in &fleet {
        assert!(matches!(t.release_leases(), SyncReport::Applied { .. }));
    }
    assert_eq!(store.window("finnhub", window(&clock)), 100);
    assert_eq!(
        store.granted("finnhub", window(&clock)),
        100,
        "granted == used"
    );
}

#[test]
fn a_stop_gives_the_unused_lease_back_so_granted_equals_used() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let config = config(100, 10);
    let (a, b) = (
        instance("a", &config, &clock, &store),
        instance("b", &config, &clock, &store),
    );
    let id = finnhub(&a);
    for _ in 0..3 {
        assert!(a.admit(id, 1).expect("valid").is_admitted());
    }
    // A block of 10 asked on the first call; 7 left is above the low-water mark (5).
    assert_eq!(store.granted("finnhub", window(&clock)), 10);
    assert_eq!(a.tracker().lease_left(id), 7);
    assert!(matches!(
        a.release_leases(),
        SyncReport::Applied { calls: 3, .. }
    ));
    assert_eq!(a.tracker().lease_left(id), 0);
    assert_eq!(store.granted("finnhub", window(&clock)), 3);
    assert_eq!(store.window("finnhub", window(&clock)), 3);
    // What a gave back, b can have: 97 more, then the store is out.
    let mut more = 0;
    while b.admit(id, 1).expect("valid").is_admitted() {
        more += 1;
    }
    assert_eq!(more, 97);
}

#[test]
fn a_window_that_ends_gives_its_lease_back_and_the_next_starts_with_none() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let config = config(100, 10);
    let a = instance("a", &config, &clock, &store);
    let id = finnhub(&a);
    let first = window(&clock);
    assert!(a.admit(id, 2).expect("valid").is_admitted());
    clock.advance(60_000);
    let second = window(&clock);
    assert!(a.admit(id, 1).expect("valid").is_admitted());
    a.release_leases();
    assert_eq!(
        store.granted("finnhub", first),
        2,
        "the rest of 10 went back"
    );
    assert_eq!(store.window("finnhub", first), 2);
    assert_eq!(store.granted("finnhub", second), 1);
    assert_eq!(store.window("finnhub", second), 1);
}

#[test]
fn a_refund_goes_back_to_the_lease_or_to_the_store_when_its_window_ended() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let config = config(100, 10);
    let a = instance("a", &config, &clock, &store);
    let id = finnhub(&a);
    let first = window(&clock);
    let kept = a
        .admit(id, 4)
        .expect("valid")
        .reservation
        .expect("admitted");
    let left = a.tracker().lease_left(id);
    let refunded = a
        .admit(id, 1)
        .expect("valid")
        .reservation
        .expect("admitted");
    a.refund(refunded).expect("ours");
    assert_eq!(a.tracker().lease_left(id), left, "back in the block");
    clock.advance(60_000);
    a.refund(kept).expect("ours");
    a.release_leases();
    assert_eq!(store.window("finnhub", first), 0);
    assert_eq!(
        store.granted("finnhub", first),
        0,
        "granted == used after the late refund"
    );
}

#[test]
fn failing_closed_refuses_what_no_lease_covers() {
    let (clock, _store, a, id) = alone_with(Faults {
        fail_grants: 2,
        ..Faults::default()
    });
    let admission = a.admit(id, 1).expect("valid");
    assert_eq!(admission.refusal, Some(Refusal::NoLease));
    assert_eq!(
        a.refill(id),
        LeaseReport::Backoff,
        "not asked on every call"
    );
    clock.advance(quota_tracker::LEASE_RETRY_MS);
    assert_eq!(a.refill(id), LeaseReport::Failed { allowance: 0 });
    clock.advance(quota_tracker::LEASE_RETRY_MS);
    assert_eq!(a.refill(id), LeaseReport::Granted(10), "the store is back");
    assert!(a.admit(id, 1).expect("valid").is_admitted());
}

#[test]
fn a_grant_whose_answer_was_lost_is_recovered_by_the_next_request_not_granted_twice() {
    let (clock, store, a, id) = alone_with(Faults {
        lose_grant_acks: 1,
        ..Faults::default()
    });
    // The store granted 10; the answer was lost, so a took nothing.
    let admission = a.admit(id, 1).expect("valid");
    assert_eq!(admission.refusal, Some(Refusal::NoLease));
    assert_eq!(store.granted("finnhub", window(&clock)), 10);
    assert_eq!(a.tracker().lease_left(id), 0);
    // The next request carries the same ticket: the store answers those 10, grants none.
    clock.advance(quota_tracker::LEASE_RETRY_MS);
    assert_eq!(a.refill(id), LeaseReport::Granted(10), "recovered");
    assert_eq!(store.granted("finnhub", window(&clock)), 10);
    assert_eq!(store.grants(), 1, "one grant decided, answered twice");
    for _ in 0..3 {
        assert!(a.admit(id, 1).expect("valid").is_admitted());
    }
    // At the quiet point, what the store counts granted is what was used.
    a.release_leases();
    assert_eq!(store.granted("finnhub", window(&clock)), 3);
    assert_eq!(store.window("finnhub", window(&clock)), 3);
    // The next request is a new grant.
    assert_eq!(a.refill(id), LeaseReport::Granted(10));
    assert_eq!(store.grants(), 2);
}

#[test]
fn a_grant_in_doubt_stays_in_doubt_when_asking_again_surely_fails() {
    let (clock, store, a, id) = alone_with(Faults {
        lose_grant_acks: 1,
        ..Faults::default()
    });
    assert_eq!(a.refill(id), LeaseReport::Failed { allowance: 0 });
    // The store is down now (a sure failure, as a refused connection): that says nothing
    // about the first try, which landed.
    store.inject(Faults {
        fail_grants: 1,
        ..Faults::default()
    });
    clock.advance(quota_tracker::LEASE_RETRY_MS);
    assert_eq!(a.refill(id), LeaseReport::Failed { allowance: 0 });
    clock.advance(quota_tracker::LEASE_RETRY_MS);
    assert_eq!(a.refill(id), LeaseReport::Granted(10), "still recovered");
    assert_eq!(store.grants(), 1);
    assert_eq!(store.granted("finnhub", window(&clock)), 10);
}

#[test]
fn a_stop_that_cannot_ask_again_sends_nothing_more_and_keeps_the_doubt() {
    let (clock, store, a, id) = alone_with(Faults::default());
    // Two requests out at once, both ending in doubt (their answers lost on the way).
    let lost = quota_tracker::StoreError::new(
        quota_tracker::StoreErrorKind::OutcomeUnknown,
        "grant",
        "answer lost",
    );
    let (first, second) = (
        a.tracker().begin_lease(id).expect("bounded"),
        a.tracker().begin_lease(id).expect("bounded"),
    );
    assert_ne!(first.ticket, second.ticket);
    for request in [&first, &second] {
        a.tracker().finish_lease(request, Err(&lost));
    }
    // The store is down at the stop: the first ask fails, the second is not sent.
    store.inject(Faults {
        fail_grants: 1,
        ..Faults::default()
    });
    a.settle_grants_in_doubt();
    assert_eq!(store.grants(), 0, "nothing sent after the failure");
    // Both are still in doubt: the next two requests carry their tickets.
    clock.advance(quota_tracker::LEASE_RETRY_MS);
    let again = a.tracker().begin_doubt_requests();
    let mut tickets: Vec<u64> = again.iter().map(|r| r.ticket).collect();
    tickets.sort_unstable();
    assert_eq!(tickets, vec![first.ticket, second.ticket]);
    for request in &again {
        a.tracker().finish_lease(request, Ok(0));
    }
}

#[test]
fn a_stop_asks_again_for_a_grant_in_doubt_and_gives_it_back() {
    let (clock, store, a, id) = alone_with(Faults::default());
    assert!(a.admit(id, 1).expect("valid").is_admitted());
    store.inject(Faults {
        lose_grant_acks: 1,
        ..Faults::default()
    });
    // Still within the back-off of nothing: the stop asks anyway.
    assert_eq!(a.refill(id), LeaseReport::Failed { allowance: 0 });
    assert_eq!(store.granted("finnhub", window(&clock)), 20);
    a.release_leases();
    assert_eq!(
        store.granted("finnhub", window(&clock)),
        1,
        "granted == used"
    );
    assert_eq!(
        store.grants(),
        2,
        "the stop's request was an answer, not a grant"
    );
}

#[test]
fn a_grant_in_doubt_when_its_window_ends_is_not_asked_again_in_the_next() {
    let (clock, store, a, id) = alone_with(Faults {
        lose_grant_acks: 1,
        ..Faults::default()
    });
    let first = window(&clock);
    assert_eq!(a.refill(id), LeaseReport::Failed { allowance: 0 });
    clock.advance(60_000);
    // A new window, a new ticket: its grant is its own, the first stays stranded there.
    assert_eq!(a.refill(id), LeaseReport::Granted(10));
    assert_eq!(store.grants(), 2);
    assert_eq!(store.granted("finnhub", first), 10);
    assert_eq!(store.granted("finnhub", window(&clock)), 10);
}

#[test]
fn a_window_all_granted_is_not_asked_again_on_every_call() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let config = config(100, 10);
    let (a, b) = (
        instance("a", &config, &clock, &store),
        instance("b", &config, &clock, &store),
    );
    let id = finnhub(&a);
    while a.admit(id, 1).expect("valid").is_admitted() {}
    let asked = store.grants();
    for _ in 0..100 {
        assert!(!b.admit(id, 1).expect("valid").is_admitted());
    }
    assert_eq!(
        store.grants(),
        asked + 1,
        "one grant of nothing, then a back-off"
    );
    // a stops and gives nothing back (it used all 100); after the back-off b asks again.
    a.release_leases();
    clock.advance(quota_tracker::LEASE_RETRY_MS);
    assert!(!b.admit(id, 1).expect("valid").is_admitted());
    assert_eq!(store.grants(), asked + 2);
}

#[test]
fn failing_open_admits_the_allowance_once_per_window_and_never_gives_it_back() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let policy = LeasePolicy::new(10)
        .expect("valid")
        .with_outage(LeaseOutage::Open { allowance: 3 });
    let config = config(100, 10).with_leases(policy);
    let a = instance("a", &config, &clock, &store);
    let id = finnhub(&a);
    store.inject(Faults {
        fail_grants: 100,
        ..Faults::default()
    });
    let mut admitted = 0;
    for _ in 0..10 {
        admitted += u64::from(a.admit(id, 1).expect("valid").is_admitted());
    }
    assert_eq!(admitted, 3, "the allowance, once");
    store.inject(Faults::default());
    // One call of the allowance left unspent is not a grant: a stop returns none of it.
    let policy_window = window(&clock);
    a.release_leases();
    assert_eq!(store.granted("finnhub", policy_window), 0);
    assert_eq!(store.window("finnhub", policy_window), 3);
}

#[test]
fn the_default_mode_has_no_lease_to_run_out_of() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let config = QuotaConfig::default();
    let a = instance("a", &config, &clock, &store);
    let id = a.tracker().service("finnhub").expect("configured");
    assert_eq!(a.tracker().lease_left(id), u64::MAX);
    assert_eq!(a.refill(id), LeaseReport::NotBounded);
    assert!(a.admit(id, 48).expect("valid").is_admitted());
    let refused = a.admit(id, 1).expect("valid");
    assert_eq!(refused.refusal, Some(Refusal::Ceiling));
    assert_eq!(store.grants(), 0);
}

#[test]
fn a_lease_block_outside_one_to_a_hundred_percent_is_refused() {
    for percent in [0, 101] {
        let error = LeasePolicy::new(percent).expect_err("out of range");
        assert!(
            error.to_string().contains(&format!("{percent} %")),
            "{error}"
        );
    }
}

#[test]
fn a_lease_running_low_asks_for_the_next_block_ahead_of_need() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let a = instance("a", &config(100, 10), &clock, &store);
    let id = finnhub(&a);
    for _ in 0..5 {
        assert!(a.admit(id, 1).expect("valid").is_admitted());
    }
    assert_eq!(
        store.grants(),
        1,
        "5 left: not below the low-water mark yet"
    );
    let sixth = a.admit(id, 1).expect("valid");
    assert!(sixth.lease_due, "4 left is below 5");
    assert_eq!(store.grants(), 2);
    assert_eq!(a.tracker().lease_left(id), 14);
}

#[test]
fn calls_admitted_on_the_outage_allowance_are_never_given_back_even_when_refunded_late() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let policy = LeasePolicy::new(10)
        .expect("valid")
        .with_outage(LeaseOutage::Open { allowance: 5 });
    let a = instance("a", &config(100, 10).with_leases(policy), &clock, &store);
    let id = finnhub(&a);
    let first = window(&clock);
    store.inject(Faults {
        fail_grants: 1,
        ..Faults::default()
    });
    let reservations: Vec<_> = (0..5)
        .map(|_| {
            a.admit(id, 1)
                .expect("valid")
                .reservation
                .expect("on the allowance")
        })
        .collect();
    assert_eq!(store.granted("finnhub", first), 0, "nothing was granted");
    // The window ends, then the allowance's calls are refunded: nothing of them may go
    // back to the store, which never granted them.
    clock.advance(60_000);
    assert!(
        a.admit(id, 1).expect("valid").is_admitted(),
        "the next window, on a lease"
    );
    for reservation in reservations {
        a.refund(reservation).expect("ours");
    }
    a.tracker().release_leases();
    let batch = a
        .tracker()
        .begin_sync()
        .expect("the next window's lease goes back");
    let first_window: Vec<_> = batch.returns.iter().filter(|r| r.window == first).collect();
    assert!(
        first_window.is_empty(),
        "returned what was never granted: {first_window:?}"
    );
    a.tracker()
        .finish_sync(batch, quota_tracker::SyncOutcome::Failed);
}

#[test]
fn a_lease_not_granted_warns_each_time_it_is_asked_for_and_refused() {
    let (clock, _store, a, id) = alone_with(Faults {
        fail_grants: 2,
        ..Faults::default()
    });
    let warned = common::warned(|| drop(a.admit(id, 1)));
    assert_eq!(warned.len(), 1, "the first grant failed: {warned:?}");
    assert!(warned[0].contains("failing closed"), "{warned:?}");
    assert_eq!(
        common::warnings(|| {
            a.refill(id);
        }),
        0,
        "backing off: not asked"
    );
    clock.advance(quota_tracker::LEASE_RETRY_MS);
    assert_eq!(
        common::warnings(|| {
            a.refill(id);
        }),
        1,
        "asked again, refused again"
    );
    clock.advance(quota_tracker::LEASE_RETRY_MS);
    assert_eq!(
        common::warnings(|| {
            a.refill(id);
        }),
        0,
        "granted"
    );
}

#[test]
fn a_lease_not_granted_with_an_outage_allowance_warns_that_it_fails_open() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(MemoryStore::new());
    let policy = LeasePolicy::new(10)
        .expect("valid")
        .with_outage(LeaseOutage::Open { allowance: 3 });
    let a = instance("a", &config(100, 10).with_leases(policy), &clock, &store);
    let id = finnhub(&a);
    store.inject(Faults {
        fail_grants: 1,
        ..Faults::default()
    });
    let warned = common::warned(|| assert!(a.admit(id, 1).expect("valid").is_admitted()));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("failing open"), "{warned:?}");
}
