//! Faults injected at the SDK layer after the server applied a write (the "timeout after
//! apply" case): throttling and server errors returned for writes that landed, and responses
//! lost outright. Retries must neither lose nor double anything.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use quota_dynamodb_tests::faults::AfterApplyFaults;
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
