//! Window boundaries under concurrency: a call on each side of a minute, hour, day or month
//! boundary, a sync beside them and the clock moving between them, in every interleaving.
//! Every call lands once, in the window (and day) it was counted in.
#![cfg(loom)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quota_loom::fixture::{self, LoomStore, LoomSynced};
use quota_loom::{Bound, Model, event, prove, trace};
use quota_tracker::sync::LoomBackend;
use quota_tracker::{
    ManualClock, Period, QuotaConfig, ServiceConfig, SyncedTracker, Timestamp, Tracker,
    TrackerOptions, UtcDay, Window,
};

/// 2026-11-30T23:59:59.999: the next millisecond starts a new minute, hour, day and month.
fn last_millisecond() -> Timestamp {
    let day = UtcDay::from_ymd(2026, 11, 30).expect("valid");
    Timestamp(day.next().start().0 - 1)
}

fn instance(period: Period, clock: &Arc<ManualClock>, store: &Arc<LoomStore>) -> Arc<LoomSynced> {
    let service = ServiceConfig::new("api", 1_000, period).expect("valid");
    let config = QuotaConfig::new(vec![service]).expect("valid");
    let options = TrackerOptions {
        instance: "a".into(),
        sync_interval_ms: i64::MAX,
        reload_interval_ms: i64::MAX,
    };
    let tracker = Tracker::<LoomBackend>::new_in(config, clock.clone(), options);
    Arc::new(SyncedTracker::new(tracker, Arc::clone(store)))
}

/// T1 records two calls, T2 moves the clock over the boundary, T3 syncs once. T1 notes on
/// which side each call fell by reading the clock just before it: under loom nothing runs
/// between that read and the tracker's own (a preemption needs a loom operation, and the
/// tracker reads the clock before it locks).
fn boundary_model(period: Period) -> impl Fn() + Sync + Send + 'static {
    move || {
        let before = last_millisecond();
        let after = Timestamp(before.0 + 1);
        let clock = Arc::new(ManualClock::new(before));
        let store = fixture::store();
        let instance = instance(period, &clock, &store);
        // Calls made before and after the boundary.
        let sides = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let recorder = {
            let (instance, clock, sides) = (
                Arc::clone(&instance),
                Arc::clone(&clock),
                Arc::clone(&sides),
            );
            trace::spawn("T1", move || {
                let id = instance.tracker().service("api").expect("configured");
                for _ in 0..2 {
                    let side = usize::from(quota_tracker::Clock::now(&*clock) >= after);
                    let recorded = instance.tracker().record_call(id, 1).expect("valid");
                    sides[side].fetch_add(1, Ordering::Relaxed);
                    let used = recorded.usage.used();
                    event!("record_call ({}): used={used}", ["before", "after"][side]);
                }
            })
        };
        let mover = {
            let clock = Arc::clone(&clock);
            trace::spawn("T2", move || {
                clock.set(after);
                event!("the clock passes the boundary");
            })
        };
        let syncer = {
            let instance = Arc::clone(&instance);
            trace::spawn("T3", move || {
                let report = instance.sync();
                event!("sync: {report:?}");
            })
        };
        for handle in [recorder, mover, syncer] {
            handle.join().expect("thread finished");
        }
        fixture::flush(&store, &instance);
        let calls = [
            sides[0].load(Ordering::Relaxed),
            sides[1].load(Ordering::Relaxed),
        ];
        check_windows(period, &store, &instance, [before, after], calls);
    }
}

/// Each side's calls are in the store once, in the window (and day) of that side, and the
/// tracker's current window counts the calls after the boundary.
fn check_windows(
    period: Period,
    store: &LoomStore,
    instance: &LoomSynced,
    [before, after]: [Timestamp; 2],
    [calls_before, calls_after]: [u64; 2],
) {
    let id = instance.tracker().service("api").expect("configured");
    let used_now = instance.tracker().usage(id).expect("configured").used();
    let today = instance.tracker().state().calls_today(id);
    let day_of = |t: Timestamp| store.counters(t.day()).get("api").copied().unwrap_or(0);
    let days = [day_of(before), day_of(after)];
    if days != [calls_before, calls_after] {
        panic!(
            "conservation violated (lost): day items {days:?}, calls {:?} before and after midnight",
            [calls_before, calls_after]
        );
    }
    let windows = if period == Period::Day {
        days
    } else {
        let window = |t| store.window("api", Window::containing(period, t));
        [window(before), window(after)]
    };
    if windows != [calls_before, calls_after] {
        panic!(
            "conservation violated (lost): {period} window items {windows:?}, calls {:?} on each side",
            [calls_before, calls_after]
        );
    }
    if (used_now, today) != (calls_after, calls_after) {
        panic!(
            "lost update: the tracker counts {used_now} in its window and {today} today, {calls_after} calls were made since the boundary"
        );
    }
}

#[test]
fn a_minute_boundary_splits_calls_between_their_own_windows() {
    prove(
        Model::proof("windows/minute-boundary", Bound::Exhaustive),
        boundary_model(Period::Minute),
    );
}

#[test]
fn an_hour_boundary_splits_calls_between_their_own_windows() {
    prove(
        Model::proof("windows/hour-boundary", Bound::Exhaustive),
        boundary_model(Period::Hour),
    );
}

#[test]
fn a_day_boundary_splits_calls_between_their_own_days() {
    prove(
        Model::proof("windows/day-boundary", Bound::Exhaustive),
        boundary_model(Period::Day),
    );
}

#[test]
fn a_month_boundary_splits_calls_between_their_own_windows() {
    prove(
        Model::proof("windows/month-boundary", Bound::Exhaustive),
        boundary_model(Period::Month),
    );
}
