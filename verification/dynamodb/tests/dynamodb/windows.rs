//! Quota windows against the emulator: every window kind rolls at its boundary while
//! instances record and sync concurrently, and each side's calls land in their own window's
//! and day's items; a batch whose second item fails after its first landed is retried as it
//! is; refunds conserve.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

use quota_dynamodb::BlockingDynamoStore;
use quota_dynamodb_tests::faults::FailItems;
use quota_dynamodb_tests::{Server, by_hand};
use quota_tracker::{
    ManualClock, Period, QuotaConfig, ServiceConfig, Store, StoreErrorKind, SyncReport,
    SyncedTracker, Timestamp, Tracker, TrackerOptions, UtcDay, Window, WindowKey,
};

type Instance = SyncedTracker<Arc<BlockingDynamoStore>>;

/// One service per period, limits never reached.
fn config() -> QuotaConfig {
    let service = |name: &str, period| ServiceConfig::new(name, 1_000_000, period).expect("valid");
    QuotaConfig::new(vec![
        service("per-minute", Period::Minute),
        service("per-hour", Period::Hour),
        service("per-day", Period::Day),
        service("per-month", Period::Month),
    ])
    .expect("valid")
}

fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64, ms: i64) -> Timestamp {
    let day = UtcDay::from_ymd(y, mo, d).expect("valid");
    Timestamp(day.start().0 + h * 3_600_000 + mi * 60_000 + s * 1_000 + ms)
}

/// An instance that syncs after every call when no sync is in flight.
fn instance(
    name: &str,
    store: &Arc<BlockingDynamoStore>,
    clock: &Arc<ManualClock>,
) -> Arc<Instance> {
    let options = TrackerOptions {
        instance: name.into(),
        sync_interval_ms: 0,
        reload_interval_ms: i64::MAX,
    };
    let tracker = Tracker::with_options(config(), clock.clone(), options);
    Arc::new(SyncedTracker::new(tracker, Arc::clone(store)))
}

fn flush(instances: &[Arc<Instance>]) {
    for instance in instances {
        for _ in 0..20 {
            if let SyncReport::NothingPending = instance.sync() {
                break;
            }
        }
        assert!(
            instance.tracker().unsynced().is_empty(),
            "deltas left after flushing"
        );
    }
}

fn window_count(store: &BlockingDynamoStore, service: &str, window: Window) -> u64 {
    let key = WindowKey {
        service: service.to_owned(),
        window,
    };
    let stored = store.load_windows(&[key]).expect("readable");
    stored.first().map_or(0, |w| w.used)
}

fn day_count(store: &BlockingDynamoStore, day: UtcDay, service: &str) -> u64 {
    store
        .load_day(day)
        .expect("readable")
        .map_or(0, |d| d.used(service))
}

#[test]
fn every_window_kind_rolls_at_its_boundary_while_instances_record_and_sync() {
    let server = Server::start();
    // 2026-11-30T23:59:59.999: the next millisecond starts a new minute, hour, day and month.
    let before = at(2026, 11, 30, 23, 59, 59, 999);
    let clock = Arc::new(ManualClock::new(before));
    let store = Arc::new(server.store("windows", clock.clone()));
    let instances: Vec<_> = ["w1", "w2"]
        .iter()
        .map(|n| instance(n, &store, &clock))
        .collect();
    let (threads, calls_before, calls_after) = (2, 40u64, 25u64);
    let barrier = Arc::new(Barrier::new(instances.len() * threads + 1));
    let mut handles = Vec::new();
    for instance in &instances {
        for _ in 0..threads {
            let (instance, barrier) = (Arc::clone(instance), Arc::clone(&barrier));
            handles.push(std::thread::spawn(move || {
                let ids: Vec<_> = instance.tracker().config().ids().collect();
                for phase_calls in [calls_before, calls_after] {
                    for _ in 0..phase_calls {
                        for id in &ids {
                            instance.record_call(*id, 1).expect("valid");
                        }
                    }
                    barrier.wait(); // every call of this side of the boundary is recorded
                    barrier.wait(); // the clock has moved
                }
            }));
        }
    }
    barrier.wait();
    clock.set(Timestamp(before.0 + 1)); // 2026-12-01T00:00:00.000
    barrier.wait();
    barrier.wait();
    barrier.wait();
    for handle in handles {
        handle.join().expect("recorder finished");
    }
    flush(&instances);

    let recorders = (instances.len() * threads) as u64;
    let (old_side, new_side) = (recorders * calls_before, recorders * calls_after);
    let after = Timestamp(before.0 + 1);
    let (old_day, new_day) = (before.day(), after.day());
    for (service, period) in [
        ("per-minute", Period::Minute),
        ("per-hour", Period::Hour),
        ("per-day", Period::Day),
        ("per-month", Period::Month),
    ] {
        assert_eq!(
            day_count(&store, old_day, service),
            old_side,
            "{service}: day before"
        );
        assert_eq!(
            day_count(&store, new_day, service),
            new_side,
            "{service}: day after"
        );
        if period != Period::Day {
            let (old, new) = (
                Window::containing(period, before),
                Window::containing(period, after),
            );
            assert_ne!(old, new, "{service}: the boundary is one of {period}");
            assert_eq!(
                window_count(&store, service, old),
                old_side,
                "{service}: {old}"
            );
            assert_eq!(
                window_count(&store, service, new),
                new_side,
                "{service}: {new}"
            );
        }
    }
    // After a reload each instance counts exactly the new windows' calls, everyone's.
    for instance in &instances {
        assert!(matches!(
            instance.reload(),
            quota_tracker::ReloadReport::Loaded
        ));
        for id in instance.tracker().config().ids() {
            let used = instance.tracker().usage(id).expect("valid").used();
            assert_eq!(used, new_side, "{}", instance.tracker().instance());
        }
    }
}

#[test]
fn calls_at_12_34_59_999_and_12_35_00_000_land_in_different_minute_windows() {
    let server = Server::start();
    let last = at(2026, 12, 1, 12, 34, 59, 999);
    let clock = Arc::new(ManualClock::new(last));
    let store = Arc::new(server.store("minute", clock.clone()));
    let (a, b) = (
        instance("m1", &store, &clock),
        instance("m2", &store, &clock),
    );
    let minute = a.tracker().service("per-minute").expect("configured");
    a.tracker().record_call(minute, 1).expect("valid");
    b.tracker().record_call(minute, 1).expect("valid");
    clock.set(Timestamp(last.0 + 1));
    a.tracker().record_call(minute, 1).expect("valid");
    flush(&[Arc::clone(&a), Arc::clone(&b)]);
    let old = Window::containing(Period::Minute, last);
    let new = Window::containing(Period::Minute, Timestamp(last.0 + 1));
    assert_eq!(
        (old.to_string(), new.to_string()),
        ("2026-12-01T12:34".into(), "2026-12-01T12:35".into())
    );
    assert_eq!(window_count(&store, "per-minute", old), 2);
    assert_eq!(window_count(&store, "per-minute", new), 1);
    assert_eq!(
        day_count(&store, last.day(), "per-minute"),
        3,
        "both minutes in the day"
    );
    assert_eq!(a.tracker().usage(minute).map(|u| u.used()), Ok(1));
}

#[test]
fn a_batch_whose_window_item_fails_after_its_day_item_landed_is_retried_as_it_is() {
    let server = Server::start();
    let clock = Arc::new(ManualClock::new(at(2026, 12, 1, 12, 0, 0, 0)));
    let (faults, armed, failed) = FailItems::starting_with("WINDOW#");
    let store = Arc::new(server.store_with("doubt", clock.clone(), |b| b.interceptor(faults)));
    let t = by_hand("doubt", config(), clock.clone(), &store);
    let minute = t.tracker().service("per-minute").expect("configured");
    t.tracker().record_call(minute, 5).expect("valid");
    // The day item lands; every attempt at the window item is refused, not applied.
    let report = t.sync();
    let SyncReport::Failed(error) = report else {
        panic!("expected the sync to fail, got {report:?}");
    };
    assert!(failed.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        day_count(&store, t.tracker().state().day(), "per-minute"),
        5,
        "day item landed"
    );
    // More calls meanwhile; then the store heals and the same batch is resent first.
    t.tracker().record_call(minute, 2).expect("valid");
    armed.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        t.sync();
    }
    assert!(t.tracker().unsynced().is_empty());
    let window = t.tracker().state().window(minute).expect("window");
    assert_eq!(
        (
            day_count(&store, t.tracker().state().day(), "per-minute"),
            window_count(&store, "per-minute", window)
        ),
        (7, 7),
        "each item holds every call once (a batch restored as new deltas adds the day twice)"
    );
    assert_eq!(
        error.kind,
        StoreErrorKind::OutcomeUnknown,
        "{error}: in doubt, not failed"
    );
}

#[test]
fn refunds_beside_syncs_leave_admitted_minus_refunded_in_every_item() {
    let server = Server::start();
    let start = at(2026, 12, 1, 9, 30, 0, 0);
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(server.store("refunds", clock.clone()));
    let instances: Vec<_> = ["r1", "r2"]
        .iter()
        .map(|n| instance(n, &store, &clock))
        .collect();
    let services = config().len();
    let handles: Vec<_> = instances
        .iter()
        .flat_map(|i| [Arc::clone(i), Arc::clone(i)])
        .map(|instance| {
            std::thread::spawn(move || {
                // Calls kept per service: admitted minus refunded.
                let mut kept = vec![0u64; services];
                let ids: Vec<_> = instance.tracker().config().ids().collect();
                for (k, id) in ids.iter().copied().cycle().take(200).enumerate() {
                    let admission = instance.admit(id, 1).expect("valid");
                    let reservation = admission.reservation.expect("room");
                    if k % 3 == 0 {
                        instance.refund(reservation).expect("own reservation");
                    } else {
                        kept[id.index()] += 1;
                    }
                }
                kept
            })
        })
        .collect();
    let mut kept = vec![0u64; services];
    for handle in handles {
        for (sum, k) in kept.iter_mut().zip(handle.join().expect("finished")) {
            *sum += k;
        }
    }
    // One more admission on each service, refunded only after the minute (and hour) ended:
    // its refund is owed to the window it was admitted in.
    let late: Vec<_> = instances[0]
        .tracker()
        .config()
        .ids()
        .map(|id| instances[0].admit(id, 1).expect("valid"))
        .collect();
    instances[0].sync();
    clock.set(at(2026, 12, 1, 10, 0, 0, 0));
    for admission in late {
        instances[0]
            .refund(admission.reservation.expect("room"))
            .expect("own reservation");
    }
    flush(&instances);
    let day = start.day();
    for (i, (name, period)) in [
        ("per-minute", Period::Minute),
        ("per-hour", Period::Hour),
        ("per-day", Period::Day),
        ("per-month", Period::Month),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(day_count(&store, day, name), kept[i], "{name}: day item");
        if period != Period::Day {
            let window = Window::containing(period, start);
            assert_eq!(
                window_count(&store, name, window),
                kept[i],
                "{name}: {window}"
            );
        }
    }
}
