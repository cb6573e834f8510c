//! Admission end to end with the in-memory store: conservation with refunds, reduced-rate
//! mode counted where sync and reload outcomes are reported, the estimated daily cost.

mod common;

use std::sync::Arc;

use quota_tracker::{
    Faults, ManualClock, MemoryStore, Period, QuotaConfig, ServiceConfig, Store, SyncReport,
    SyncedTracker, Timestamp, Tracker, TrackerOptions, UtcDay,
};

fn day() -> UtcDay {
    UtcDay::from_ymd(2026, 12, 1).expect("valid date")
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp(day().start().0 + 3_600_000)))
}

fn synced(clock: &Arc<ManualClock>, config: QuotaConfig) -> SyncedTracker<Arc<MemoryStore>> {
    let options = TrackerOptions {
        instance: "a".into(),
        ..TrackerOptions::default()
    };
    let tracker = Tracker::with_options(config, clock.clone(), options);
    SyncedTracker::new(tracker, Arc::new(MemoryStore::new()))
}

fn stored(t: &SyncedTracker<Arc<MemoryStore>>, day: UtcDay, service: &str) -> u64 {
    t.store().counters(day).get(service).copied().unwrap_or(0)
}

#[test]
fn the_store_ends_at_admitted_minus_refunded_whether_the_refund_comes_before_or_after_a_sync() {
    let clock = clock();
    let t = synced(&clock, QuotaConfig::default());
    let sendgrid = t.tracker().service("sendgrid").expect("configured");
    let kept = t.admit(sendgrid, 5).expect("valid");
    let synced_then_refunded = t.admit(sendgrid, 3).expect("valid");
    assert!(matches!(t.sync(), SyncReport::Applied { calls: 8, .. }));
    let refunded_before_sync = t.admit(sendgrid, 2).expect("valid");
    for admission in [synced_then_refunded, refunded_before_sync] {
        let reservation = admission.reservation.expect("admitted");
        t.refund(reservation).expect("refunded");
    }
    assert!(kept.is_admitted());
    assert_eq!(t.tracker().usage(sendgrid).map(|u| u.used()), Ok(5));
    // Pending is 2 - 2 - 3 = -3: a negative delta for the calls already in the store.
    assert!(matches!(t.sync(), SyncReport::Applied { calls: -3, .. }));
    assert_eq!(stored(&t, day(), "sendgrid"), 5);
    assert_eq!(
        t.store().total(day()),
        5,
        "total_api_calls_today conserved too"
    );
}

#[test]
fn a_refund_after_midnight_lands_in_the_day_of_its_admission() {
    let clock = clock();
    let t = synced(&clock, QuotaConfig::default());
    let tiingo = t.tracker().service("tiingo").expect("configured");
    let admission = t.admit(tiingo, 4).expect("valid");
    t.sync();
    clock.advance(24 * 3_600_000);
    t.admit(tiingo, 1).expect("valid");
    t.refund(admission.reservation.expect("admitted"))
        .expect("refunded");
    t.sync();
    assert_eq!(stored(&t, day(), "tiingo"), 0);
    assert_eq!(stored(&t, day().next(), "tiingo"), 1);
    // tiingo's limit is per month: both days are in one window, which keeps 4 - 4 + 1.
    let month = t.tracker().state().window(tiingo).expect("window");
    assert_eq!(t.store().window("tiingo", month), 1);
    assert_eq!(t.tracker().usage(tiingo).map(|u| u.used()), Ok(1));
}

/// Fails the next `n` syncs (writes) of `t`, with something pending each time.
fn failing_syncs(t: &SyncedTracker<Arc<MemoryStore>>, service: quota_tracker::ServiceId, n: u32) {
    t.store().inject(Faults {
        fail_writes: n,
        ..Faults::default()
    });
    for _ in 0..n {
        t.tracker().record_call(service, 1).expect("valid");
        assert!(matches!(t.sync(), SyncReport::Failed(_)));
    }
}

#[test]
fn three_store_failures_in_a_row_reduce_admission_to_25_percent_and_five_successes_restore_it() {
    let clock = clock();
    let t = synced(&clock, QuotaConfig::default());
    let sendgrid = t.tracker().service("sendgrid").expect("configured");
    t.tracker().record_call(sendgrid, 20).expect("valid");
    failing_syncs(&t, sendgrid, 2);
    assert!(!t.tracker().reduced_rate(), "two failures are not enough");
    assert!(t.tracker().can_call(sendgrid).expect("valid"));
    failing_syncs(&t, sendgrid, 1);
    assert!(t.tracker().reduced_rate());
    // used = 23 of 100: below 25 %, so two more are admitted and the third is refused.
    assert!(t.tracker().admit(sendgrid, 2).expect("valid").is_admitted());
    let refused = t.tracker().admit(sendgrid, 1).expect("valid");
    assert!(!refused.is_admitted());
    assert_eq!((refused.usage.used(), refused.usage.ceiling()), (25, 25));
    assert!(!t.tracker().can_call(sendgrid).expect("valid"));
    // Successes: four syncs and reloads are not enough, the fifth leaves the mode. A failed
    // reload counts as a failure too and starts the successes again.
    for _ in 0..4 {
        t.tracker().record_call(sendgrid, 1).expect("valid");
        assert!(matches!(t.sync(), SyncReport::Applied { .. }));
    }
    t.store().inject(Faults {
        fail_reads: 1,
        ..Faults::default()
    });
    assert!(matches!(t.reload(), quota_tracker::ReloadReport::Failed(_)));
    for _ in 0..4 {
        assert!(matches!(t.reload(), quota_tracker::ReloadReport::Loaded));
    }
    assert!(t.tracker().reduced_rate(), "a failure restarted the count");
    assert!(matches!(t.reload(), quota_tracker::ReloadReport::Loaded));
    assert!(!t.tracker().reduced_rate());
    assert!(t.tracker().admit(sendgrid, 1).expect("valid").is_admitted());
}

#[test]
fn the_estimated_daily_cost_is_each_service_count_times_its_price() {
    let services = vec![
        ServiceConfig::new("tiingo", 500, Period::Month)
            .expect("valid")
            .with_cost_per_call_micros(1_500),
        ServiceConfig::new("sendgrid", 100, Period::Day)
            .expect("valid")
            .with_cost_per_call_micros(250),
        ServiceConfig::new("free", 10, Period::Day).expect("valid"),
    ];
    let clock = clock();
    let t = synced(&clock, QuotaConfig::new(services).expect("valid"));
    for (name, calls) in [("tiingo", 3), ("sendgrid", 4), ("free", 5)] {
        let id = t.tracker().service(name).expect("configured");
        t.tracker().record_call(id, calls).expect("valid");
    }
    assert_eq!(
        t.tracker().estimated_daily_cost_micros(),
        3 * 1_500 + 4 * 250
    );
    assert!((t.tracker().estimated_daily_cost() - 0.0055).abs() < 1e-12);
    clock.advance(24 * 3_600_000);
    assert_eq!(
        t.tracker().estimated_daily_cost_micros(),
        0,
        "a new day, no call yet"
    );
    let tiingo = t.tracker().service("tiingo").expect("configured");
    t.tracker().record_call(tiingo, 1).expect("valid");
    assert_eq!(t.tracker().estimated_daily_cost_micros(), 1_500);
}

#[test]
fn a_batch_that_would_take_a_stored_counter_below_zero_is_refused() {
    let store = MemoryStore::new();
    let config = Arc::new(QuotaConfig::default());
    let batch = quota_tracker::SyncBatch {
        instance: "a".into(),
        seq: 1,
        config,
        days: vec![quota_tracker::DayDeltas {
            day: day(),
            deltas: vec![0, 0, -1],
        }],
        windows: Vec::new(),
        returns: Vec::new(),
    };
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.apply_batch(&batch)));
    // Where invariants are checked (debug builds, loom, shuttle) it is a loud failure.
    match result {
        Err(_) if cfg!(debug_assertions) => {}
        Err(_) => panic!("panicked in a release build"),
        Ok(outcome) => {
            let error = outcome.expect_err("refused");
            assert_eq!(error.kind, quota_tracker::StoreErrorKind::Rejected);
            assert!(error.message.contains("below zero"), "{error}");
        }
    }
    assert_eq!(store.writes(), 0, "nothing applied");
}

#[test]
fn default_intervals_follow_the_shortest_window() {
    let minute = QuotaConfig::default(); // finnhub: 60 per minute
    let options = TrackerOptions::for_config(&minute);
    assert_eq!(
        (options.sync_interval_ms, options.reload_interval_ms),
        (10_000, 10_000)
    );
    let daily = QuotaConfig::new(vec![
        ServiceConfig::new("sendgrid", 100, Period::Day).expect("valid"),
        ServiceConfig::new("tiingo", 500, Period::Month).expect("valid"),
    ])
    .expect("valid");
    assert_eq!(TrackerOptions::for_config(&daily).sync_interval_ms, 60_000);
    let hourly = QuotaConfig::new(vec![
        ServiceConfig::new("h", 10, Period::Hour).expect("valid"),
    ])
    .expect("valid");
    assert_eq!(TrackerOptions::for_config(&hourly).sync_interval_ms, 60_000);
    assert_eq!(
        TrackerOptions::default().sync_interval_ms,
        60_000,
        "the original's"
    );
}

#[test]
fn a_retried_batch_in_doubt_that_then_fails_stays_in_doubt_and_lands_once() {
    let clock = clock();
    let t = synced(&clock, QuotaConfig::default());
    let sendgrid = t.tracker().service("sendgrid").expect("configured");
    t.tracker().record_call(sendgrid, 4).expect("valid");
    // The write lands but its answer is lost: in doubt.
    t.store().inject(Faults {
        lose_acks: 1,
        ..Faults::default()
    });
    assert!(matches!(t.sync(), SyncReport::Failed(_)));
    // The retry is refused outright: still in doubt, not restored as new deltas.
    t.store().inject(Faults {
        fail_writes: 1,
        ..Faults::default()
    });
    assert!(matches!(t.sync(), SyncReport::Failed(_)));
    t.tracker().record_call(sendgrid, 1).expect("valid");
    for _ in 0..3 {
        t.sync();
    }
    assert!(t.tracker().unsynced().is_empty());
    assert_eq!(stored(&t, day(), "sendgrid"), 5, "each call once");
}

#[test]
fn a_sync_that_wrote_only_some_windows_does_not_count_as_a_reload() {
    let clock = clock();
    let store = Arc::new(MemoryStore::new());
    let instance = |name: &str| {
        let options = TrackerOptions {
            instance: name.into(),
            sync_interval_ms: 10_000,
            reload_interval_ms: 10_000,
        };
        let tracker = Tracker::with_options(QuotaConfig::default(), clock.clone(), options);
        SyncedTracker::new(tracker, Arc::clone(&store))
    };
    let (a, b) = (instance("a"), instance("b"));
    let (sendgrid, finnhub) = (
        a.tracker().service("sendgrid").expect("configured"),
        a.tracker().service("finnhub").expect("configured"),
    );
    a.record_call(sendgrid, 1).expect("valid"); // a's first reload
    b.record_call(finnhub, 40).expect("valid");
    b.sync();
    clock.advance(10_000);
    // a syncs its sendgrid call; the answer carries the day item and no finnhub window, so
    // a must still read the store to see b's 40.
    a.record_call(sendgrid, 1).expect("valid");
    assert_eq!(a.tracker().usage(finnhub).map(|u| u.used()), Ok(40));
}

#[test]
fn entering_the_reduced_rate_warns_once_and_leaving_it_does_not_warn() {
    let clock = clock();
    let t = synced(&clock, QuotaConfig::default());
    let sendgrid = t.tracker().service("sendgrid").expect("configured");
    assert_eq!(common::warnings(|| failing_syncs(&t, sendgrid, 2)), 0);
    assert_eq!(
        common::warnings(|| failing_syncs(&t, sendgrid, 2)),
        1,
        "the third failure"
    );
    assert!(t.tracker().reduced_rate());
    let restored = common::warnings(|| {
        for _ in 0..5 {
            assert!(matches!(t.reload(), quota_tracker::ReloadReport::Loaded));
        }
    });
    assert!(!t.tracker().reduced_rate());
    assert_eq!(restored, 0, "leaving the mode is news, not a warning");
}

#[test]
fn a_reservation_says_how_many_calls_it_holds_and_refunds_only_where_it_was_made() {
    let clock = clock();
    let here = synced(&clock, QuotaConfig::default());
    let there = synced(&clock, QuotaConfig::default());
    let sendgrid = here.tracker().service("sendgrid").expect("configured");
    let reservation = here
        .admit(sendgrid, 3)
        .expect("valid")
        .reservation
        .expect("admitted");
    assert_eq!(reservation.count(), 3);
    there.admit(sendgrid, 4).expect("valid");
    // The same service, day and window in another tracker: not its reservation to refund.
    let refused = there.refund(reservation);
    assert!(
        matches!(
            refused,
            Err(quota_tracker::QuotaError::RefundWithoutReservation { count: 3, .. })
        ),
        "{refused:?}"
    );
    assert_eq!(there.tracker().usage(sendgrid).map(|u| u.used()), Ok(4));
    assert_eq!(here.tracker().usage(sendgrid).map(|u| u.used()), Ok(3));
}
