//! The sync protocol of the tracker, end to end with the in-memory store (real threads,
//! parking_lot). In debug builds the store asserts on every call that the caller does not
//! hold the cache lock, so each test here also checks invariant 2.

use std::sync::Arc;

use quota_tracker::{
    Clock, DayDeltas, Faults, ManualClock, MemoryStore, NoSync, QuotaConfig, ReloadOutcome,
    ReloadReport, Store, StoredDay, SyncOutcome, SyncReport, SyncedTracker, Timestamp, Tracker,
    TrackerOptions, UtcDay,
};

fn day() -> UtcDay {
    UtcDay::from_ymd(2026, 11, 29).expect("valid date")
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp(day().start().0 + 3_600_000)))
}

fn options(instance: &str) -> TrackerOptions {
    TrackerOptions {
        instance: instance.into(),
        ..TrackerOptions::default()
    }
}

fn synced(clock: &Arc<ManualClock>) -> SyncedTracker<Arc<MemoryStore>> {
    let tracker = Tracker::with_options(QuotaConfig::default(), clock.clone(), options("a"));
    SyncedTracker::new(tracker, Arc::new(MemoryStore::new()))
}

fn used(store: &MemoryStore, day: UtcDay, service: &str) -> u64 {
    store.counters(day).get(service).copied().unwrap_or(0)
}

#[test]
fn no_sync_before_the_interval_then_one_batch_with_everything() {
    let clock = clock();
    let t = synced(&clock);
    let tiingo = t.tracker().service("tiingo").expect("configured");
    for _ in 0..10 {
        let recorded = t.record_call(tiingo, 1).expect("recorded");
        assert!(!recorded.sync_due);
    }
    assert_eq!(t.store().writes(), 0, "no write per call");
    clock.advance(60_000);
    assert!(t.record_call(tiingo, 1).expect("recorded").sync_due);
    assert_eq!(t.store().writes(), 1);
    assert_eq!(used(t.store(), day(), "tiingo"), 11);
    assert_eq!(t.store().total(day()), 11);
    assert!(t.tracker().unsynced().is_empty());
}

#[test]
fn first_crossing_of_80_percent_forces_a_sync() {
    let clock = clock();
    let t = synced(&clock);
    let finnhub = t.tracker().service("finnhub").expect("configured");
    t.record_call(finnhub, 47).expect("recorded");
    assert_eq!(t.store().writes(), 0);
    let recorded = t.record_call(finnhub, 1).expect("recorded");
    assert!(recorded.crossed_critical && recorded.sync_due);
    assert_eq!(used(t.store(), day(), "finnhub"), 48);
    assert!(!t.tracker().can_call(finnhub).expect("configured"));
    // Later calls in the same minute do not force again.
    assert!(!t.record_call(finnhub, 1).expect("recorded").sync_due);
}

#[test]
fn a_failed_write_puts_its_deltas_back() {
    let clock = clock();
    let t = synced(&clock);
    let tiingo = t.tracker().service("tiingo").expect("configured");
    t.record_call(tiingo, 5).expect("recorded");
    t.store().inject(Faults {
        fail_writes: 1,
        ..Faults::default()
    });
    assert!(matches!(t.sync(), SyncReport::Failed(_)));
    t.record_call(tiingo, 2).expect("recorded");
    let unsynced = t.tracker().unsynced();
    assert_eq!(
        unsynced,
        vec![DayDeltas {
            day: day(),
            deltas: vec![7, 0, 0]
        }]
    );
    assert!(matches!(t.sync(), SyncReport::Applied { calls: 7, .. }));
    assert_eq!(used(t.store(), day(), "tiingo"), 7);
}

#[test]
fn a_write_in_doubt_is_retried_as_is_and_applied_once() {
    let clock = clock();
    let t = synced(&clock);
    let first = clock.now().first_number();
    let tiingo = t.tracker().service("tiingo").expect("configured");
    t.record_call(tiingo, 3).expect("recorded");
    t.store().inject(Faults {
        lose_acks: 1,
        ..Faults::default()
    });
    let SyncReport::Failed(error) = t.sync() else {
        panic!("expected the lost acknowledgement to surface");
    };
    assert!(error.to_string().contains("landed"), "{error}");
    assert_eq!(used(t.store(), day(), "tiingo"), 3, "it did land");
    t.record_call(tiingo, 1).expect("recorded");
    // The retry carries exactly the doubtful batch (the first), not the newer call.
    let retry = SyncReport::Applied {
        seq: first,
        calls: 3,
    };
    assert_eq!(t.sync(), retry);
    assert_eq!(t.store().duplicates(), 1, "the store recognised the retry");
    let next = SyncReport::Applied {
        seq: first + 1,
        calls: 1,
    };
    assert_eq!(t.sync(), next);
    assert_eq!(
        used(t.store(), day(), "tiingo"),
        4,
        "nothing lost, nothing doubled"
    );
}

#[test]
fn at_most_one_store_operation_in_flight_and_nobody_waits_for_it() {
    let clock = clock();
    let tracker: Tracker = Tracker::with_options(QuotaConfig::default(), clock, options("a"));
    let tiingo = tracker.service("tiingo").expect("configured");
    tracker.record_call(tiingo, 1).expect("recorded");
    let batch = tracker.begin_sync().expect("first sync starts");
    assert_eq!(tracker.begin_sync(), Err(NoSync::InFlight));
    assert_eq!(tracker.begin_reload().map(|_| ()), Err(NoSync::InFlight));
    // Recording goes on while the batch is out.
    tracker
        .record_call(tiingo, 1)
        .expect("recorded while syncing");
    let recorded = tracker.record_call(tiingo, 1).expect("recorded");
    assert!(!recorded.sync_due, "no sync is due while one is in flight");
    tracker.finish_sync(batch, SyncOutcome::Applied { fresh: None });
    assert_eq!(tracker.begin_sync().map(|b| b.total()), Ok(2));
}

#[test]
fn a_second_thread_does_not_block_on_a_slow_sync() {
    use std::sync::Barrier;
    let clock = clock();
    let tracker: Arc<Tracker> = Arc::new(Tracker::with_options(
        QuotaConfig::default(),
        clock,
        options("a"),
    ));
    let tiingo = tracker.service("tiingo").expect("configured");
    tracker.record_call(tiingo, 1).expect("recorded");
    let batch = tracker.begin_sync().expect("starts");
    // The batch is out (as if a slow write were running). Another thread must get an
    // immediate answer, and record, without waiting for it.
    let started = Arc::new(Barrier::new(2));
    let other = {
        let (tracker, started) = (Arc::clone(&tracker), Arc::clone(&started));
        std::thread::spawn(move || {
            started.wait();
            let second = tracker.begin_sync();
            tracker.record_call(tiingo, 1).expect("recorded");
            second
        })
    };
    started.wait();
    assert_eq!(other.join().expect("thread ran"), Err(NoSync::InFlight));
    tracker.finish_sync(batch, SyncOutcome::Applied { fresh: None });
}

#[test]
fn reload_merges_with_pending_and_a_failed_reload_keeps_the_state() {
    let clock = clock();
    let store = Arc::new(MemoryStore::new());
    let config = QuotaConfig::default();
    let a = SyncedTracker::new(
        Tracker::with_options(config.clone(), clock.clone(), options("a")),
        Arc::clone(&store),
    );
    let b = SyncedTracker::new(
        Tracker::with_options(config, clock.clone(), options("b")),
        Arc::clone(&store),
    );
    let tiingo = a.tracker().service("tiingo").expect("configured");
    // The first call of each instance loads (nothing is there yet).
    a.record_call(tiingo, 10).expect("recorded");
    b.record_call(tiingo, 3).expect("recorded");
    assert!(matches!(a.sync(), SyncReport::Applied { .. }));
    assert_eq!(b.reload(), ReloadReport::Loaded);
    // b sees a's 10 plus its own 3 pending.
    assert_eq!(b.tracker().usage(tiingo).map(|u| u.used()), Ok(13));
    assert_eq!(b.tracker().state().pending(tiingo), 3);
    // A failed read does not reset anything.
    store.inject(Faults {
        fail_reads: 1,
        ..Faults::default()
    });
    assert!(matches!(b.reload(), ReloadReport::Failed(_)));
    assert_eq!(b.tracker().usage(tiingo).map(|u| u.used()), Ok(13));
    assert!(matches!(b.sync(), SyncReport::Applied { .. }));
    assert_eq!(used(&store, day(), "tiingo"), 13);
}

#[test]
fn reload_counts_a_batch_in_doubt_once() {
    let clock = clock();
    let tracker: Tracker = Tracker::with_options(QuotaConfig::default(), clock, options("a"));
    let tiingo = tracker.service("tiingo").expect("configured");
    tracker.record_call(tiingo, 4).expect("recorded");
    let batch = tracker.begin_sync().expect("starts");
    tracker.finish_sync(batch, SyncOutcome::Unknown);
    // The store does not have it (it did not land): used stays 4, not 0.
    let ticket = tracker.begin_reload().expect("starts");
    tracker.finish_reload(
        ticket,
        ReloadOutcome::Loaded(Some(StoredDay::new(day(), Default::default()))),
    );
    assert_eq!(tracker.usage(tiingo).map(|u| u.used()), Ok(4));
}

#[test]
fn deltas_recorded_before_midnight_land_in_that_days_item() {
    let clock = Arc::new(ManualClock::new(Timestamp(day().next().start().0 - 1_000)));
    let t = SyncedTracker::new(
        Tracker::with_options(QuotaConfig::default(), clock.clone(), options("a")),
        Arc::new(MemoryStore::new()),
    );
    let sendgrid = t.tracker().service("sendgrid").expect("configured");
    t.record_call(sendgrid, 2).expect("recorded");
    clock.advance(2_000); // 00:00:01 the next day
    t.record_call(sendgrid, 5).expect("recorded");
    assert!(matches!(t.sync(), SyncReport::Applied { calls: 7, .. }));
    assert_eq!(used(t.store(), day(), "sendgrid"), 2);
    assert_eq!(used(t.store(), day().next(), "sendgrid"), 5);
    // sendgrid's limit is per day: the new day counts from zero.
    assert_eq!(t.tracker().usage(sendgrid).map(|u| u.used()), Ok(5));
}

#[test]
fn a_store_that_panics_mid_write_leaves_the_batch_in_doubt_not_lost() {
    struct Exploding;
    impl Store for Exploding {
        fn load_day(&self, _: UtcDay) -> Result<Option<StoredDay>, quota_tracker::StoreError> {
            Ok(None)
        }
        fn load_windows(
            &self,
            _: &[quota_tracker::WindowKey],
        ) -> Result<Vec<quota_tracker::StoredWindow>, quota_tracker::StoreError> {
            Ok(Vec::new())
        }
        fn apply_batch(
            &self,
            _: &quota_tracker::SyncBatch,
        ) -> Result<Option<StoredDay>, quota_tracker::StoreError> {
            panic!("driver bug");
        }
    }
    let clock = clock();
    let t = SyncedTracker::new(
        Tracker::with_options(QuotaConfig::default(), clock, options("a")),
        Exploding,
    );
    let tiingo = t.tracker().service("tiingo").expect("configured");
    t.tracker().record_call(tiingo, 2).expect("recorded");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.sync()));
    assert!(result.is_err());
    assert!(
        !t.tracker().store_op_in_flight(),
        "the instance can sync again"
    );
    assert_eq!(
        t.tracker()
            .unsynced()
            .iter()
            .map(DayDeltas::total)
            .sum::<i64>(),
        2
    );
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let clock = clock();
    let t = synced(&clock);
    let tiingo = t.tracker().service("tiingo").expect("configured");
    t.record_call(tiingo, 3).expect("recorded");
    let before = t.tracker().state();
    assert!(t.tracker().record_call_named("alpaca", 1).is_err());
    assert!(t.record_call(tiingo, 0).is_err());
    assert!(t.record_call(tiingo, u64::MAX).is_err());
    assert_eq!(t.tracker().state(), before);
}

#[test]
fn a_later_process_reusing_an_instance_name_is_not_taken_for_a_retry() {
    // A name set by hand (a pod's, say) outlives its process: the next process under it must
    // number its batches past the earlier one's, or the store drops them as duplicates.
    let clock = clock();
    let store = Arc::new(MemoryStore::new());
    let process = |clock: &Arc<ManualClock>| {
        let tracker =
            Tracker::with_options(QuotaConfig::default(), clock.clone(), options("pod-0"));
        SyncedTracker::new(tracker, Arc::clone(&store))
    };
    let first = process(&clock);
    let tiingo = first.tracker().service("tiingo").expect("configured");
    for _ in 0..3 {
        first.record_call(tiingo, 1).expect("recorded");
        assert!(matches!(first.sync(), SyncReport::Applied { calls: 1, .. }));
    }
    drop(first);
    clock.advance(1);
    let second = process(&clock);
    second.record_call(tiingo, 2).expect("recorded");
    let report = second.sync();
    assert!(
        matches!(report, SyncReport::Applied { calls: 2, .. }),
        "the restarted process's first batch: {report:?}"
    );
    assert_eq!(used(&store, day(), "tiingo"), 5, "a batch was dropped");
    assert_eq!(store.duplicates(), 0, "taken for a retry");
}
