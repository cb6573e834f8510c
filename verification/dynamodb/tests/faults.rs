//! Faults injected at the SDK layer after the server applied a write (the "timeout after
//! apply" case): throttling and server errors returned for writes that landed, and responses
//! lost outright. Retries must neither lose nor double anything.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use quota_dynamodb_tests::faults::{AfterApplyFaults, LandThenRefuse};
use quota_dynamodb_tests::{Conservation, Server, flush, record_concurrently};
use quota_tracker::TickingClock;

#[test]
fn retried_writes_that_had_landed_are_not_applied_twice() {
    let server = Server::start();
    let clock = TickingClock::start();
    let (faults, injected) = AfterApplyFaults::every(3);
    let store = Arc::new(server.store_with("faults", clock.clone(), |b| b.interceptor(faults)));
    let (instances, expected) = record_concurrently(&store, &clock, "faulty", 2, 2, 300, 2);
    flush(&instances);
    let day = instances[0].tracker().state().day();
    let outcome = Conservation::read(&store, day, &expected);
    assert!(outcome.exact(), "nothing lost, nothing doubled: {outcome}");
    let injected = injected.load(Ordering::SeqCst);
    assert!(injected >= 10, "only {injected} faults injected");
    eprintln!("{injected} faults injected after applied writes; table exact ({expected:?})");
}

#[test]
fn a_write_that_landed_and_whose_every_retry_was_refused_is_resent_not_restored() {
    let server = Server::start();
    let clock = TickingClock::start();
    // The first attempt lands, its answer is lost, the four retries are refused: the store
    // gives up with the outcome unknown.
    let faults = LandThenRefuse::new(4);
    let store = Arc::new(server.store_with("gives-up", clock.clone(), |b| b.interceptor(faults)));
    let options = quota_tracker::TrackerOptions {
        instance: "gives-up".into(),
        sync_interval_ms: i64::MAX,
        reload_interval_ms: i64::MAX,
    };
    let tracker = quota_tracker::Tracker::with_options(
        quota_tracker::QuotaConfig::default(),
        clock.clone(),
        options,
    );
    let instance = quota_tracker::SyncedTracker::new(tracker, Arc::clone(&store));
    let sendgrid = instance.tracker().service("sendgrid").expect("configured");
    instance.tracker().record_call(sendgrid, 3).expect("valid");
    let report = instance.sync();
    let quota_tracker::SyncReport::Failed(error) = report else {
        panic!("expected the sync to give up, got {report:?}");
    };
    instance.tracker().record_call(sendgrid, 2).expect("valid");
    for _ in 0..3 {
        instance.sync();
    }
    assert!(instance.tracker().unsynced().is_empty());
    let day = instance.tracker().state().day();
    let outcome = Conservation::read(&store, day, &[0, 0, 5]);
    assert!(outcome.exact(), "each call once: {outcome}");
    assert_eq!(
        error.kind,
        quota_tracker::StoreErrorKind::OutcomeUnknown,
        "{error}: a write that may have landed is in doubt"
    );
}

#[test]
fn a_write_that_landed_and_whose_retry_was_rejected_stays_in_doubt_and_lands_once() {
    let server = Server::start();
    let clock = TickingClock::start();
    // The first attempt lands, its answer is lost, the retry is refused as invalid: the
    // refusal must not make the batch a sure failure (restored, it would be sent again as
    // a new batch and counted twice).
    let store = Arc::new(server.store_with("rejected-retry", clock.clone(), |b| {
        b.interceptor(LandThenRefuse::rejecting())
    }));
    let options = quota_tracker::TrackerOptions {
        instance: "rejected-retry".into(),
        sync_interval_ms: i64::MAX,
        reload_interval_ms: i64::MAX,
    };
    let tracker = quota_tracker::Tracker::with_options(
        quota_tracker::QuotaConfig::default(),
        clock.clone(),
        options,
    );
    let instance = quota_tracker::SyncedTracker::new(tracker, Arc::clone(&store));
    let sendgrid = instance.tracker().service("sendgrid").expect("configured");
    instance.tracker().record_call(sendgrid, 3).expect("valid");
    let report = instance.sync();
    let quota_tracker::SyncReport::Failed(error) = report else {
        panic!("expected the sync to fail, got {report:?}");
    };
    assert_eq!(
        error.kind,
        quota_tracker::StoreErrorKind::OutcomeUnknown,
        "{error}: refused after an attempt that may have landed"
    );
    for _ in 0..3 {
        instance.sync();
    }
    let day = instance.tracker().state().day();
    let outcome = Conservation::read(&store, day, &[0, 0, 3]);
    assert!(outcome.exact(), "each call once: {outcome}");
}
