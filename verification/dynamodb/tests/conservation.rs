//! Several tracker instances × threads against one real DynamoDB-compatible server: the
//! table's counters equal the calls recorded, per service, exactly.

use std::sync::Arc;

use quota_dynamodb_tests::Server;
use quota_tracker::{
    QuotaConfig, Store, SyncReport, SyncedTracker, TickingClock, Tracker, TrackerOptions,
};

#[test]
fn four_instances_times_four_threads_lose_and_double_nothing() {
    let server = Server::start();
    let clock = TickingClock::start();
    let store = Arc::new(server.store("conservation", clock.clone()));
    const INSTANCES: usize = 4;
    const THREADS: usize = 4;
    const CALLS: u64 = 250;
    let instances: Vec<_> = (0..INSTANCES)
        .map(|i| {
            let options = TrackerOptions {
                instance: format!("instance-{i}").into(),
                // Sync whenever none is in flight: as many store writes as possible.
                sync_interval_ms: 0,
                ..TrackerOptions::default()
            };
            let tracker = Tracker::with_options(QuotaConfig::default(), clock.clone(), options);
            Arc::new(SyncedTracker::new(tracker, Arc::clone(&store)))
        })
        .collect();
    let handles: Vec<_> = (0..INSTANCES * THREADS)
        .map(|n| {
            let instance = Arc::clone(&instances[n % INSTANCES]);
            std::thread::spawn(move || {
                let service = instance
                    .tracker()
                    .config()
                    .ids()
                    .nth(n % 3)
                    .expect("3 services");
                for _ in 0..CALLS {
                    instance.record_call(service, 1).expect("valid call");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("recorder finished");
    }
    for instance in &instances {
        for _ in 0..10 {
            match instance.sync() {
                SyncReport::NothingPending => break,
                SyncReport::Failed(e) => eprintln!("flush: {e} (retrying)"),
                _ => {}
            }
        }
        assert!(instance.tracker().unsynced().is_empty(), "flushed");
    }
    let day = instances[0].tracker().state().day();
    let stored = store
        .load_day(day)
        .expect("readable")
        .expect("the item exists");
    let mut expected = [0u64; 3];
    for n in 0..INSTANCES * THREADS {
        expected[n % 3] += CALLS;
    }
    for (i, name) in ["tiingo", "finnhub", "sendgrid"].iter().enumerate() {
        assert_eq!(
            stored.used(name),
            expected[i],
            "{name}: table vs calls recorded"
        );
    }
    let total: u64 = expected.iter().sum();
    eprintln!("table holds exactly {total} calls from {INSTANCES} instances x {THREADS} threads");
}
