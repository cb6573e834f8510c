//! The server paused mid-run: recording goes on locally, `can_call` keeps answering, the sync
//! in flight stalls (its attempts time out and are retried, or it fails and keeps its deltas)
//! without the recorder waiting, and after the server is back every call is in the table once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quota_dynamodb_tests::{Server, by_hand};
use quota_tracker::{
    BackgroundSync, BackgroundTotals, QuotaConfig, Store, SyncReport, TickingClock,
};

#[test]
fn a_paused_server_delays_syncs_and_loses_nothing() {
    // Its own container even when QUOTA_DYNAMODB_ENDPOINT names another server: the test
    // pauses the server process, which only a container of its own allows (it used to pass
    // silently, having checked nothing, when the variable was set).
    let server = Server::container();
    let container = server
        .container
        .as_ref()
        .expect("Server::container always starts one");
    let clock = TickingClock::start();
    let store = Arc::new(server.store("outage", clock.clone()));
    let instance = Arc::new(by_hand(
        "outage",
        QuotaConfig::default(),
        clock.clone(),
        &store,
    ));
    let tiingo = instance.tracker().service("tiingo").expect("configured");

    // The store I/O runs on the background syncer's thread; the recorder never waits for it.
    let syncer = BackgroundSync::start(Arc::clone(&instance), Duration::from_millis(5));
    let mut recorded = 0u64;
    let mut record_for = |duration: Duration| {
        let started = Instant::now();
        let mut slowest = Duration::ZERO;
        while started.elapsed() < duration {
            let t0 = Instant::now();
            instance
                .tracker()
                .record_call(tiingo, 1)
                .expect("valid call");
            assert!(
                instance.tracker().usage(tiingo).is_ok(),
                "can_call keeps answering"
            );
            slowest = slowest.max(t0.elapsed());
            recorded += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        slowest
    };
    record_for(Duration::from_millis(500));
    container.pause().expect("paused");
    let slowest_while_paused = record_for(Duration::from_secs(5));
    container.unpause().expect("thawed");
    record_for(Duration::from_millis(500));
    let BackgroundTotals {
        applied, failed, ..
    } = syncer.stop();
    assert!(
        slowest_while_paused < Duration::from_millis(100),
        "recording waited on the store: {slowest_while_paused:?}"
    );
    // Flush: the store is back, everything pending or in doubt lands (once).
    for _ in 0..20 {
        if let SyncReport::NothingPending = instance.sync() {
            break;
        }
    }
    assert!(
        instance.tracker().unsynced().is_empty(),
        "everything flushed"
    );
    let day = instance.tracker().state().day();
    let stored = store.load_day(day).expect("readable").expect("item exists");
    assert_eq!(stored.used("tiingo"), recorded, "table vs calls recorded");
    eprintln!(
        "{recorded} calls, {applied} syncs applied, {failed} failed during the pause; \
         slowest record_call while paused {slowest_while_paused:?}; table exact"
    );
}
