//! `AsyncSyncedTracker` on the in-memory store, whose futures are ready at once (polled by
//! a few lines of executor here: the crate depends on no runtime): a due sync is awaited after
//! a record, a reload brings other instances' day and window counts, and in the bounded mode
//! an admission refused for want of a lease waits for a block and decides again. The same
//! driver against the emulator, under tokio, is `verification/dynamodb/tests/dynamodb/async_driver.rs`.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use quota_tracker::{
    AsyncSyncedTracker, LeasePolicy, ManualClock, MemoryStore, Period, QuotaConfig, ServiceConfig,
    Timestamp, Tracker, TrackerOptions, UtcDay,
};

/// Runs a future that never waits on anything (every store operation here is ready at
/// once); one that is still pending after many polls is a bug in the test.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
    panic!("a future over an in-memory store did not complete");
}

fn day() -> UtcDay {
    UtcDay::from_ymd(2026, 12, 1).expect("valid")
}

fn instance(
    name: &str,
    config: &QuotaConfig,
    clock: &Arc<ManualClock>,
    store: &Arc<MemoryStore>,
) -> AsyncSyncedTracker<Arc<MemoryStore>> {
    let options = TrackerOptions {
        instance: name.into(),
        ..TrackerOptions::for_config(config)
    };
    let tracker = Tracker::with_options(config.clone(), clock.clone(), options);
    AsyncSyncedTracker::new(tracker, Arc::clone(store))
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp(day().start().0 + 3_600_000)))
}

#[test]
fn a_record_that_makes_a_sync_due_awaits_it() {
    let (clock, store) = (clock(), Arc::new(MemoryStore::new()));
    let t = instance("a", &QuotaConfig::default(), &clock, &store);
    let sendgrid = t.tracker().service("sendgrid").expect("configured");
    // sendgrid allows 100 a day: the 80th call crosses the critical threshold and forces a
    // sync, which the record awaits.
    for _ in 0..80 {
        ready(t.record_call(sendgrid, 1)).expect("recorded");
    }
    assert_eq!(store.counters(day()).get("sendgrid"), Some(&80));
    assert!(t.tracker().unsynced().is_empty());
}

#[test]
fn a_reload_brings_other_instances_day_and_window_counts() {
    let (clock, store) = (clock(), Arc::new(MemoryStore::new()));
    let config = QuotaConfig::default();
    let (a, b) = (
        instance("a", &config, &clock, &store),
        instance("b", &config, &clock, &store),
    );
    let (tiingo, finnhub) = (
        a.tracker().service("tiingo").expect("configured"),
        a.tracker().service("finnhub").expect("configured"),
    );
    a.tracker().record_call(tiingo, 7).expect("recorded");
    a.tracker().record_call(finnhub, 5).expect("recorded");
    assert!(matches!(
        ready(a.sync()),
        quota_tracker::SyncReport::Applied { .. }
    ));
    assert!(matches!(
        ready(b.reload()),
        quota_tracker::ReloadReport::Loaded
    ));
    // tiingo's month and finnhub's minute are windows of their own in the store.
    assert_eq!(b.tracker().usage(tiingo).map(|u| u.used()), Ok(7));
    assert_eq!(b.tracker().usage(finnhub).map(|u| u.used()), Ok(5));
}

#[test]
fn a_refusal_for_want_of_a_lease_waits_for_a_block_and_decides_again() {
    let (clock, store) = (clock(), Arc::new(MemoryStore::new()));
    let config = QuotaConfig::new(vec![
        ServiceConfig::new("finnhub", 100, Period::Minute).expect("valid"),
    ])
    .expect("valid")
    .with_leases(LeasePolicy::new(10).expect("valid"));
    let t = instance("a", &config, &clock, &store);
    let finnhub = t.tracker().service("finnhub").expect("configured");
    let admission = ready(t.admit(finnhub, 3)).expect("valid");
    assert!(admission.is_admitted(), "{admission:?}");
    assert_eq!(t.tracker().usage(finnhub).map(|u| u.used()), Ok(3));
}
