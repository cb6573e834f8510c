//! The bounded mode's ledger of grants, read where it ends up: the returns a sync batch
//! carries. Two services and several windows at once (each return goes to its own service
//! and window), a write that surely failed (its returns owed again), a request still out
//! (no second one asked), a late failure (no allowance for a window that has ended), and the
//! four windows the ledger remembers. Grants are answered by hand, as a store would.

use std::sync::Arc;

use quota_tracker::{
    LeaseOutage, LeasePolicy, LeaseReport, LeaseReturn, ManualClock, Period, QuotaConfig,
    ServiceConfig, ServiceId, StoreError, StoreErrorKind, SyncOutcome, Timestamp, Tracker,
    TrackerOptions, UtcDay, Window,
};

fn start() -> Timestamp {
    Timestamp(UtcDay::from_ymd(2026, 12, 1).expect("valid").start().0 + 3_600_000)
}

/// finnhub and polygon, 100 calls a minute each, admitted up to 100, leases of 10 %.
fn config(outage: LeaseOutage) -> QuotaConfig {
    let minute = |name| ServiceConfig::new(name, 100, Period::Minute).expect("valid");
    QuotaConfig::new(vec![minute("finnhub"), minute("polygon")])
        .and_then(|c| c.with_admission_ceiling(100))
        .expect("valid")
        .with_leases(LeasePolicy::new(10).expect("valid").with_outage(outage))
}

fn tracker(outage: LeaseOutage) -> (Tracker, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let options = TrackerOptions {
        instance: "a".into(),
        ..TrackerOptions::default()
    };
    (
        Tracker::with_options(config(outage), clock.clone(), options),
        clock,
    )
}

fn ids(t: &Tracker) -> (ServiceId, ServiceId) {
    (
        t.service("finnhub").expect("configured"),
        t.service("polygon").expect("configured"),
    )
}

/// Asks for a block of `service` and answers with `granted`, as a store would.
fn grant(t: &Tracker, service: ServiceId, granted: u64) -> LeaseReport {
    let request = t.begin_lease(service).expect("a request");
    t.finish_lease(&request, Ok(granted))
}

fn admit(t: &Tracker, service: ServiceId, count: u64) {
    assert!(t.admit(service, count).expect("valid").is_admitted());
}

fn window(clock: &ManualClock) -> Window {
    Window::containing(Period::Minute, quota_tracker::Clock::now(clock))
}

/// The returns the next batch carries, sorted, and the batch (still in flight).
fn returns(t: &Tracker) -> (Vec<LeaseReturn>, quota_tracker::SyncBatch) {
    let batch = t.begin_sync().expect("something to send");
    let mut returns = batch.returns.clone();
    returns.sort_by_key(|r| (r.service, r.window.start(), r.count));
    (returns, batch)
}

/// Calls the next batch gives back for `window`, over every service.
fn returned_to(t: &Tracker, window: Window) -> u64 {
    let (returns, _) = returns(t);
    returns
        .iter()
        .filter(|r| r.window == window)
        .map(|r| r.count)
        .sum()
}

fn back(service: ServiceId, window: Window, count: u64) -> LeaseReturn {
    LeaseReturn {
        service,
        window,
        count,
    }
}

#[test]
fn each_return_goes_to_its_own_service_and_window() {
    let (t, clock) = tracker(LeaseOutage::Closed);
    let (finnhub, polygon) = ids(&t);
    let first = window(&clock);
    assert_eq!(grant(&t, finnhub, 10), LeaseReport::Granted(10));
    assert_eq!(grant(&t, polygon, 10), LeaseReport::Granted(10));
    admit(&t, finnhub, 2);
    admit(&t, polygon, 3);
    clock.advance(60_000);
    let second = window(&clock);
    assert_eq!(grant(&t, finnhub, 10), LeaseReport::Granted(10));
    admit(&t, finnhub, 1);
    t.release_leases();
    let (returns, _) = returns(&t);
    assert_eq!(
        returns,
        vec![
            back(finnhub, first, 8),
            back(finnhub, second, 9),
            back(polygon, first, 7),
        ]
    );
}

#[test]
fn returns_of_a_write_that_surely_failed_are_owed_again() {
    let (t, _) = tracker(LeaseOutage::Closed);
    let (finnhub, _) = ids(&t);
    grant(&t, finnhub, 10);
    admit(&t, finnhub, 4);
    t.release_leases();
    let (sent, batch) = returns(&t);
    assert_eq!(sent.iter().map(|r| r.count).sum::<u64>(), 6);
    t.finish_sync(batch, SyncOutcome::Failed);
    let (again, batch) = returns(&t);
    assert_eq!(again, sent);
    t.finish_sync(batch, SyncOutcome::Applied { fresh: None });
    assert!(t.begin_sync().is_err(), "nothing owed once applied");
}

#[test]
fn a_lease_with_nothing_admitted_is_still_given_back() {
    let (t, clock) = tracker(LeaseOutage::Closed);
    let (finnhub, _) = ids(&t);
    grant(&t, finnhub, 10);
    t.release_leases();
    assert!(t.state().has_pending(), "returns alone are pending");
    // Returns alone make a batch: no call is pending, but the store must get its 10 back.
    let (returns, _) = returns(&t);
    assert_eq!(returns, vec![back(finnhub, window(&clock), 10)]);
}

#[test]
fn no_second_request_is_asked_while_one_is_out() {
    let (t, _) = tracker(LeaseOutage::Closed);
    let (finnhub, _) = ids(&t);
    grant(&t, finnhub, 10);
    let out = t.begin_lease(finnhub).expect("a request");
    // 10 granted, low water 5: the admission that leaves 4 would ask, but one is out.
    let admission = t.admit(finnhub, 6).expect("valid");
    assert!(admission.is_admitted());
    assert!(!admission.lease_due, "asked again with a request out");
    assert_eq!(t.finish_lease(&out, Ok(10)), LeaseReport::Granted(10));
    assert_eq!(t.lease_left(finnhub), 14);
    let admission = t.admit(finnhub, 10).expect("valid");
    assert!(admission.lease_due, "running low with nothing out asks");
}

#[test]
fn a_failure_answered_after_its_window_ended_opens_no_allowance() {
    let (t, clock) = tracker(LeaseOutage::Open { allowance: 3 });
    let (finnhub, _) = ids(&t);
    let late = t.begin_lease(finnhub).expect("a request");
    clock.advance(60_000);
    let error = StoreError::new(StoreErrorKind::Unavailable, "grant", "down");
    assert_eq!(
        t.finish_lease(&late, Err(&error)),
        LeaseReport::Failed { allowance: 0 }
    );
    assert_eq!(t.lease_left(finnhub), 0);
    // The current window's own failure does open it.
    let now = t.begin_lease(finnhub).expect("a request");
    assert_eq!(
        t.finish_lease(&now, Err(&error)),
        LeaseReport::Failed { allowance: 3 }
    );
    assert_eq!(t.lease_left(finnhub), 3);
}

/// What the first window gets back when a call admitted in it is refunded after `windows`
/// windows in all were granted (8 of its 10 went back when it ended).
fn late_refund_after(windows: usize) -> u64 {
    let (t, clock) = tracker(LeaseOutage::Closed);
    let (finnhub, _) = ids(&t);
    let first = window(&clock);
    grant(&t, finnhub, 10);
    let early = t
        .admit(finnhub, 2)
        .expect("valid")
        .reservation
        .expect("admitted");
    for _ in 1..windows {
        clock.advance(60_000);
        grant(&t, finnhub, 10);
    }
    t.refund(early).expect("ours");
    t.release_leases();
    returned_to(&t, first)
}

#[test]
fn the_ledger_remembers_four_windows_for_late_refunds_and_forgets_the_fifth() {
    assert_eq!(
        late_refund_after(4),
        10,
        "8 at the window's end and 2 refunded late"
    );
    assert_eq!(
        late_refund_after(5),
        8,
        "the late refund is no longer remembered"
    );
}

#[test]
fn a_policy_reads_back_its_block() {
    assert_eq!(LeasePolicy::new(10).expect("valid").block_percent(), 10);
    assert_eq!(LeasePolicy::new(37).expect("valid").block_percent(), 37);
}

#[test]
fn late_refunds_never_give_back_more_than_was_granted() {
    let (t, clock) = tracker(LeaseOutage::Open { allowance: 3 });
    let (finnhub, _) = ids(&t);
    let first = window(&clock);
    let error = StoreError::new(StoreErrorKind::Unavailable, "grant", "down");
    let request = t.begin_lease(finnhub).expect("a request");
    assert_eq!(
        t.finish_lease(&request, Err(&error)),
        LeaseReport::Failed { allowance: 3 }
    );
    // Three calls on the allowance, which the store never granted.
    let mut reservations: Vec<_> = (0..3)
        .map(|_| {
            t.admit(finnhub, 1)
                .expect("valid")
                .reservation
                .expect("admitted")
        })
        .collect();
    clock.advance(quota_tracker::LEASE_RETRY_MS);
    assert_eq!(grant(&t, finnhub, 10), LeaseReport::Granted(10));
    reservations.extend((0..2).map(|_| {
        t.admit(finnhub, 1)
            .expect("valid")
            .reservation
            .expect("admitted")
    }));
    clock.advance(60_000);
    for reservation in reservations {
        t.refund(reservation).expect("ours");
    }
    t.release_leases();
    let to_first = returned_to(&t, first);
    assert_eq!(to_first, 10, "all of the grant back, none of the allowance");
}
