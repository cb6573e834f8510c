//! Faults injected at the SDK layer after the server applied a write (the "timeout after
//! apply" case): throttling and server errors returned for writes that landed, and responses
//! lost outright. Retries must neither lose nor double anything.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use quota_dynamodb_tests::faults::{AfterApplyFaults, LandThenRefuse};
use quota_dynamodb_tests::{Conservation, Server, flush, record_concurrently};
use quota_tracker::{Clock, TickingClock};

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
    let config = quota_tracker::QuotaConfig::default();
    let instance = quota_dynamodb_tests::by_hand("gives-up", config, clock.clone(), &store);
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
    let config = quota_tracker::QuotaConfig::default();
    let instance = quota_dynamodb_tests::by_hand("rejected-retry", config, clock.clone(), &store);
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

/// A bounded instance on a store built with `interceptor`, syncing and reloading only when
/// told.
fn leasing_instance(
    server: &Server,
    table: &str,
    clock: &Arc<TickingClock>,
    interceptor: LandThenRefuse,
) -> (
    quota_tracker::SyncedTracker<Arc<quota_dynamodb::BlockingDynamoStore>>,
    Arc<quota_dynamodb::BlockingDynamoStore>,
) {
    let store = Arc::new(server.store_with(table, clock.clone(), |b| b.interceptor(interceptor)));
    let config = quota_tracker::QuotaConfig::default().with_leases(Default::default());
    let instance = quota_dynamodb_tests::by_hand(table, config, clock.clone(), &store);
    (instance, store)
}

#[test]
fn a_lease_grant_whose_answer_was_lost_is_granted_once_and_recovered() {
    let server = Server::start();
    let clock = TickingClock::start();
    // The grant lands, its answer is lost, the store's own retry goes through: the retry
    // finds the ticket granted and answers what it got.
    let (instance, store) =
        leasing_instance(&server, "grant-retried", &clock, LandThenRefuse::new(0));
    let sendgrid = instance.tracker().service("sendgrid").expect("configured");
    let window = quota_tracker::Window::containing(quota_tracker::Period::Day, clock.now());
    let quota_tracker::LeaseReport::Granted(block) = instance.refill(sendgrid) else {
        panic!("the retry should have recovered the grant");
    };
    assert!(block > 0);
    assert_eq!(store.granted("sendgrid", window), Ok(block), "granted once");
    assert_eq!(instance.tracker().lease_left(sendgrid), block);

    // Every retry refused too: the grant ends in doubt, and the instance's next request
    // (after the back-off) carries its ticket and recovers the block.
    let (instance, store) =
        leasing_instance(&server, "grant-in-doubt", &clock, LandThenRefuse::new(4));
    assert_eq!(
        instance.refill(sendgrid),
        quota_tracker::LeaseReport::Failed { allowance: 0 }
    );
    assert_eq!(store.granted("sendgrid", window), Ok(block), "landed");
    std::thread::sleep(std::time::Duration::from_millis(
        quota_tracker::LEASE_RETRY_MS as u64 + 50,
    ));
    assert_eq!(
        instance.refill(sendgrid),
        quota_tracker::LeaseReport::Granted(block),
        "recovered"
    );
    assert_eq!(
        store.granted("sendgrid", window),
        Ok(block),
        "not granted twice"
    );
    for _ in 0..3 {
        assert!(instance.admit(sendgrid, 1).expect("valid").is_admitted());
    }
    // At the quiet point the store counts granted what was used.
    assert!(matches!(
        instance.release_leases(),
        quota_tracker::SyncReport::Applied { calls: 3, .. }
    ));
    assert_eq!(store.granted("sendgrid", window), Ok(3));
}
