//! Window boundaries under concurrency: a call on each side of a minute, hour, day or month
//! boundary, a sync beside them and the clock moving between them, in every interleaving.
//! Every call lands once, in the window (and day) it was counted in.
#![cfg(loom)]

use std::sync::Arc;

use loom::sync::atomic::AtomicI64;

use quota_loom::fixture::{self, LoomStore, LoomSynced};
use quota_loom::{Bound, Model, event, prove, trace};
use quota_tracker::sync::LoomBackend;
use quota_tracker::{
    Clock, Period, QuotaConfig, ServiceConfig, SyncedTracker, Timestamp, Tracker, TrackerOptions,
    UtcDay, Window,
};

/// 2026-11-30T23:59:59.999: the next millisecond starts a new minute, hour, day and month.
fn last_millisecond() -> Timestamp {
    let day = UtcDay::from_ymd(2026, 11, 30).expect("valid");
    Timestamp(day.next().start().0 - 1)
}

/// A clock loom sees: setting and reading it are loom operations, so loom explores where the
/// move falls between every other step. `ManualClock` keeps its time in a std atomic, which
/// loom's exhaustive search does not see: with it these models never had the clock move
/// between a thread's own read and the tracker's lock (bounded runs, which preempt at every
/// loom operation, did, and showed the model's old oracle wrong).
#[derive(Debug)]
struct LoomClock(AtomicI64);

impl LoomClock {
    fn set(&self, to: Timestamp) {
        self.0.store(to.0, loom::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for LoomClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(loom::sync::atomic::Ordering::SeqCst))
    }
}

fn instance(period: Period, clock: &Arc<LoomClock>, store: &Arc<LoomStore>) -> Arc<LoomSynced> {
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

/// T1 records two calls, T2 moves the clock over the boundary, T3 syncs once.
///
/// On which side a call was counted, T1 learns from the clock read just before and just
/// after it (a call read entirely before the move is before; one that started after it, after)
/// and, for the one call the move may straddle, from the tracker's answer: the second call's
/// `used` is 1 in a new window, 2 in the same one. A thread's own read right before the call
/// is not enough: the move can come between it and the tracker's read, or a sync can roll the
/// state to the new window first; counting such a call after the boundary is correct.
fn boundary_model(period: Period) -> impl Fn() + Sync + Send + 'static {
    move || {
        let before = last_millisecond();
        let after = Timestamp(before.0 + 1);
        let clock = Arc::new(LoomClock(AtomicI64::new(before.0)));
        let store = fixture::store();
        let instance = instance(period, &clock, &store);
        let recorder = {
            let (instance, clock) = (Arc::clone(&instance), Arc::clone(&clock));
            trace::spawn("T1", move || {
                let id = instance.tracker().service("api").expect("configured");
                let mut calls = Vec::new();
                for _ in 0..2 {
                    let started = clock.now();
                    let recorded = instance.tracker().record_call(id, 1).expect("valid");
                    let call = Call {
                        started_after: started >= after,
                        ended_after: clock.now() >= after,
                        used: recorded.usage.used(),
                    };
                    event!("record_call: {call:?}");
                    calls.push(call);
                }
                calls
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
        let calls = recorder.join().expect("T1 finished");
        for handle in [mover, syncer] {
            handle.join().expect("thread finished");
        }
        fixture::flush(&store, &instance);
        check_windows(period, &store, &instance, [before, after], sides(&calls));
    }
}

/// One of T1's calls: the clock before and after it, and the `used` the tracker answered.
#[derive(Debug, Clone, Copy)]
struct Call {
    started_after: bool,
    ended_after: bool,
    used: u64,
}

impl Call {
    /// The sides (0 before the boundary, 1 after) this call may have been counted on.
    fn may_be(self, side: usize) -> bool {
        match side {
            0 => !self.started_after,
            _ => self.ended_after,
        }
    }
}

/// How many of T1's two calls were counted before and after the boundary: the one split of
/// them the clock reads and the second call's `used` allow (the later call never on an
/// earlier side; `used` 2 for the same window, 1 for a new one).
fn sides(calls: &[Call]) -> [u64; 2] {
    let [first, second] = [calls[0], calls[1]];
    let splits = [(0, 0), (0, 1), (1, 1)].into_iter().filter(|&(a, b)| {
        first.may_be(a) && second.may_be(b) && second.used == if a == b { 2 } else { 1 }
    });
    let found: Vec<_> = splits.collect();
    match found.as_slice() {
        [(a, b)] => {
            let mut counts = [0, 0];
            counts[*a] += 1;
            counts[*b] += 1;
            counts
        }
        _ => panic!(
            "a call counted in a window its time does not allow: no one split of the calls {calls:?} fits the clock and the answers ({found:?})"
        ),
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
        Model::proof("windows/minute-boundary", Bound::Preemptions(3)),
        boundary_model(Period::Minute),
    );
}

#[test]
fn an_hour_boundary_splits_calls_between_their_own_windows() {
    prove(
        Model::proof("windows/hour-boundary", Bound::Preemptions(3)),
        boundary_model(Period::Hour),
    );
}

#[test]
fn a_day_boundary_splits_calls_between_their_own_days() {
    prove(
        Model::proof("windows/day-boundary", Bound::Preemptions(3)),
        boundary_model(Period::Day),
    );
}

#[test]
fn a_month_boundary_splits_calls_between_their_own_windows() {
    prove(
        Model::proof("windows/month-boundary", Bound::Preemptions(3)),
        boundary_model(Period::Month),
    );
}
