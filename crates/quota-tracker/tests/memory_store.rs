//! `MemoryStore`, the store every in-process test and the harness count on, and the `Store`
//! trait's defaults: reads and retries counted, days and windows read back after a write
//! (directly and through an `Arc`), a retried refund recognised as a retry rather than
//! refused as going below zero, and a store without leases refusing to grant.
//! Written for mutants the other tests let live (MUTANTS.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use quota_tracker::{
    DayDeltas, LeaseRequest, MemoryStore, Period, QuotaConfig, ServiceConfig, Store, StoreError,
    StoreErrorKind, StoredDay, StoredWindow, SyncBatch, Timestamp, UtcDay, Window, WindowDelta,
    WindowKey,
};

fn day() -> UtcDay {
    UtcDay::from_ymd(2026, 12, 1).expect("valid")
}

fn config() -> Arc<QuotaConfig> {
    Arc::new(
        QuotaConfig::new(vec![
            ServiceConfig::new("api", 100, Period::Minute).expect("valid"),
        ])
        .expect("valid"),
    )
}

fn minute() -> Window {
    Window::containing(Period::Minute, Timestamp(day().start().0 + 60_000))
}

/// Batch `seq` of instance "a": `delta` calls to api today and in `minute()`.
fn batch(seq: u64, delta: i64) -> SyncBatch {
    SyncBatch {
        instance: "a".into(),
        seq,
        config: config(),
        days: vec![DayDeltas {
            day: day(),
            deltas: vec![delta],
        }],
        windows: vec![WindowDelta {
            service: config().service("api").expect("configured"),
            window: minute(),
            delta,
        }],
        returns: vec![],
    }
}

fn key() -> WindowKey {
    WindowKey {
        service: "api".to_owned(),
        window: minute(),
    }
}

#[test]
fn a_write_reads_back_as_days_and_windows_directly_and_through_an_arc() {
    let store = Arc::new(MemoryStore::new());
    let fresh = store.apply_batch(&batch(1, 5)).expect("applied");
    let fresh = fresh.expect("the memory store answers with the counters");
    assert_eq!(fresh.used("api"), 5);
    assert_eq!(
        fresh.window("api", minute()),
        Some(5),
        "the windows it wrote"
    );
    let direct = store.load_day(day()).expect("read").expect("an item");
    let shared = Store::load_day(&store, day())
        .expect("read")
        .expect("an item");
    assert_eq!((direct.used("api"), shared.used("api")), (5, 5));
    assert_eq!(
        Store::load_windows(&store, &[key()]).expect("read"),
        vec![StoredWindow {
            key: key(),
            used: 5
        }]
    );
}

#[test]
fn reads_and_recognised_retries_are_counted() {
    let store = MemoryStore::new();
    assert_eq!((store.reads(), store.duplicates()), (0, 0));
    store.load_day(day()).expect("read");
    store.load_day(day()).expect("read");
    store.load_windows(&[key()]).expect("read");
    assert_eq!(store.reads(), 3);
    store.apply_batch(&batch(1, 5)).expect("applied");
    assert_eq!(store.duplicates(), 0);
    for _ in 0..2 {
        let retried = store
            .apply_batch(&batch(1, 5))
            .expect("a retry is no error");
        assert_eq!(retried.map(|d| d.used("api")), Some(5), "applied once");
    }
    assert_eq!(store.duplicates(), 2);
    assert_eq!(store.counters(day()).get("api"), Some(&5));
}

#[test]
fn a_retried_refund_is_a_retry_not_a_refusal() {
    let store = MemoryStore::new();
    store.apply_batch(&batch(1, 5)).expect("applied");
    store
        .apply_batch(&batch(2, -5))
        .expect("the refund applied");
    // Sent again (its answer was lost): already applied, so it must not be judged as
    // taking the counter below zero a second time.
    let retried = store
        .apply_batch(&batch(2, -5))
        .expect("a retry is no error");
    assert_eq!(retried.map(|d| d.used("api")), Some(0));
    assert_eq!(store.counters(day()).get("api"), Some(&0));
}

/// A store that implements only what a store must: no leases.
struct Leaseless;

impl Store for Leaseless {
    fn load_day(&self, _day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        Ok(Some(StoredDay::new(day(), BTreeMap::new())))
    }
    fn load_windows(&self, _windows: &[WindowKey]) -> Result<Vec<StoredWindow>, StoreError> {
        Ok(vec![])
    }
    fn apply_batch(&self, _batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        Ok(None)
    }
}

#[test]
fn a_store_without_leases_refuses_to_grant() {
    let request = LeaseRequest {
        instance: "a".into(),
        ticket: 1,
        service: config().service("api").expect("configured"),
        key: key(),
        want: 10,
        ceiling: 80,
    };
    let refused = Leaseless.grant_lease(&request).expect_err("no leases here");
    assert_eq!(refused.kind, StoreErrorKind::Rejected);
    assert!(
        refused.to_string().contains("asked for 10 of api"),
        "{refused}"
    );
    assert!(Arc::new(Leaseless).load_day(day()).expect("read").is_some());
}
