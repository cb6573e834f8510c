//! What a tracker makes of the store's counters, with stored days written by hand: a reload
//! adds this instance's unsynced calls (pending, in closed buckets, in a batch in doubt) to
//! the store's, each to its own service, window and day; a sync's fresh counters stand for a
//! reload only when they hold every current window; and `has_pending` sees every kind of
//! delta. Written for mutants the other tests let live (MUTANTS.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use quota_tracker::{
    ManualClock, Period, QuotaConfig, ReloadOutcome, ServiceConfig, ServiceId, StoredDay,
    StoredWindow, SyncOutcome, Timestamp, Tracker, TrackerOptions, UtcDay, Window, WindowKey,
};

fn day() -> UtcDay {
    UtcDay::from_ymd(2026, 12, 1).expect("valid")
}

/// `api`: 1,000 a minute; `mail`: 1,000 a day.
fn tracker() -> (Tracker, Arc<ManualClock>, ServiceId, ServiceId) {
    let config = QuotaConfig::new(vec![
        ServiceConfig::new("api", 1_000, Period::Minute).expect("valid"),
        ServiceConfig::new("mail", 1_000, Period::Day).expect("valid"),
    ])
    .expect("valid");
    let clock = Arc::new(ManualClock::new(Timestamp(day().start().0 + 3_600_000)));
    let options = TrackerOptions {
        instance: "a".into(),
        ..TrackerOptions::for_config(&config)
    };
    let t = Tracker::with_options(config, clock.clone(), options);
    let (api, mail) = (
        t.service("api").expect("configured"),
        t.service("mail").expect("configured"),
    );
    (t, clock, api, mail)
}

fn minute(clock: &ManualClock) -> Window {
    Window::containing(Period::Minute, quota_tracker::Clock::now(clock))
}

/// What the store holds after other instances' calls: `api` 100 today, 50 in `window`;
/// `mail` 40 today.
fn stored(day: UtcDay, window: Window) -> StoredDay {
    StoredDay::new(
        day,
        BTreeMap::from([("api".to_owned(), 100), ("mail".to_owned(), 40)]),
    )
    .with_windows(vec![StoredWindow {
        key: WindowKey {
            service: "api".to_owned(),
            window,
        },
        used: 50,
    }])
}

fn reload(t: &Tracker, stored: StoredDay) {
    let ticket = t.begin_reload().expect("nothing in flight");
    t.finish_reload(ticket, ReloadOutcome::Loaded(Some(stored)));
}

/// 5 api calls in one minute, then 2 api and 3 mail in the next: the first minute's
/// bucket is closed and still pending.
fn calls_over_two_minutes(t: &Tracker, clock: &ManualClock, api: ServiceId, mail: ServiceId) {
    t.record_call(api, 5).expect("valid");
    clock.advance(60_000);
    t.record_call(api, 2).expect("valid");
    t.record_call(mail, 3).expect("valid");
}

/// (api's window, api today, mail's day, total today)
fn counts(t: &Tracker, api: ServiceId, mail: ServiceId) -> (u64, u64, u64, u64) {
    let state = t.state();
    (
        state.usage(api).expect("valid").used(),
        state.calls_today(api),
        state.usage(mail).expect("valid").used(),
        state.total_api_calls_today(),
    )
}

#[test]
fn a_reload_adds_pending_and_closed_buckets_each_where_it_belongs() {
    let (t, clock, api, mail) = tracker();
    calls_over_two_minutes(&t, &clock, api, mail);
    reload(&t, stored(day(), minute(&clock)));
    // api's window: 50 stored + its 2 (the first minute's 5 are another window's);
    // api today: 100 + 5 + 2; mail: 40 + 3.
    assert_eq!(counts(&t, api, mail), (52, 107, 43, 150));
}

#[test]
fn a_reload_adds_a_batch_in_doubt_each_where_it_belongs() {
    let (t, clock, api, mail) = tracker();
    calls_over_two_minutes(&t, &clock, api, mail);
    let batch = t.begin_sync().expect("pending");
    t.finish_sync(batch, SyncOutcome::Unknown);
    reload(&t, stored(day(), minute(&clock)));
    assert_eq!(counts(&t, api, mail), (52, 107, 43, 150));
}

#[test]
fn has_pending_sees_closed_buckets_and_current_ones() {
    let (t, clock, api, _) = tracker();
    assert!(!t.state().has_pending());
    t.record_call(api, 1).expect("valid");
    assert!(t.state().has_pending(), "the current bucket");
    clock.advance(60_000);
    // The minute ended: the call sits in a closed bucket, the current one is empty.
    assert!(t.state().has_pending(), "a closed bucket");
    let batch = t.begin_sync().expect("pending");
    t.finish_sync(batch, SyncOutcome::Applied { fresh: None });
    assert!(!t.state().has_pending());
}

/// Whether a reload is due right after a sync whose store answered `fresh`.
fn reload_due_after_sync_answered(fresh: impl FnOnce(&ManualClock) -> StoredDay) -> bool {
    let (t, clock, api, _) = tracker();
    // The construction's first load, so that only the sync's answer can make one not due.
    reload(&t, StoredDay::new(day(), BTreeMap::new()));
    clock.advance(30_000);
    t.record_call(api, 1).expect("valid");
    clock.advance(TrackerOptions::MAX_INTERVAL_MS);
    let batch = t.begin_sync().expect("pending");
    t.finish_sync(
        batch,
        SyncOutcome::Applied {
            fresh: Some(fresh(&clock)),
        },
    );
    t.record_call(api, 1).expect("valid").reload_due
}

#[test]
fn fresh_counters_stand_for_a_reload_only_when_they_hold_every_current_window() {
    assert!(!reload_due_after_sync_answered(|c| stored(
        day(),
        minute(c)
    )));
    assert!(reload_due_after_sync_answered(|_| StoredDay::new(
        day(),
        BTreeMap::new()
    )));
    let yesterday = UtcDay::from_ymd(2026, 11, 30).expect("valid");
    assert!(reload_due_after_sync_answered(|c| stored(
        yesterday,
        minute(c)
    )));
}

#[test]
fn unsynced_windows_add_a_batch_in_doubt_to_what_is_pending_window_by_window() {
    let (t, clock, api, mail) = tracker();
    let first = minute(&clock);
    t.record_call(api, 2).expect("valid");
    let batch = t.begin_sync().expect("pending");
    assert!(t.store_op_in_flight());
    t.finish_sync(batch, SyncOutcome::Unknown);
    assert!(!t.store_op_in_flight());
    t.record_call(api, 3).expect("valid");
    t.record_call(mail, 1).expect("valid");
    clock.advance(60_000);
    t.record_call(api, 4).expect("valid");
    let windows: Vec<(ServiceId, Window, i64)> = t
        .unsynced_windows()
        .into_iter()
        .map(|w| (w.service, w.window, w.delta))
        .collect();
    // mail's window is the day: its calls are in the day's deltas, not here.
    assert_eq!(windows, vec![(api, first, 5), (api, minute(&clock), 4)]);
    let days = t.unsynced();
    assert_eq!(days.iter().map(|d| d.total()).sum::<i64>(), 10);
}

#[test]
fn a_reload_is_due_at_first_and_not_again_until_the_interval_passes() {
    let (t, clock, _, _) = tracker();
    assert!(t.reload_due(), "never read");
    reload(&t, StoredDay::new(day(), BTreeMap::new()));
    assert!(!t.reload_due());
    clock.advance(10_000); // a sixth of the shortest window (a minute)
    assert!(t.reload_due());
    assert_eq!(t.config().services()[1].name(), "mail");
}

/// `api` and `feed`, both 1,000 a minute: their buckets share day and window.
fn two_minute_services() -> (Tracker, Arc<ManualClock>, ServiceId, ServiceId) {
    let config = QuotaConfig::new(vec![
        ServiceConfig::new("api", 1_000, Period::Minute).expect("valid"),
        ServiceConfig::new("feed", 1_000, Period::Minute).expect("valid"),
    ])
    .expect("valid");
    // An hour before midnight, so a test can cross it.
    let clock = Arc::new(ManualClock::new(Timestamp(
        day().start().0 + 23 * 3_600_000,
    )));
    let t = Tracker::with_options(config, clock.clone(), TrackerOptions::default());
    let (api, feed) = (
        t.service("api").expect("configured"),
        t.service("feed").expect("configured"),
    );
    (t, clock, api, feed)
}

fn windows_of(deltas: Vec<quota_tracker::WindowDelta>) -> Vec<(ServiceId, i64)> {
    deltas.into_iter().map(|w| (w.service, w.delta)).collect()
}

#[test]
fn services_sharing_a_window_keep_their_own_deltas() {
    let (t, _, api, feed) = two_minute_services();
    t.record_call(api, 2).expect("valid");
    t.record_call(feed, 3).expect("valid");
    let batch = t.begin_sync().expect("pending");
    assert_eq!(windows_of(batch.windows.clone()), vec![(api, 2), (feed, 3)]);
    t.finish_sync(batch, SyncOutcome::Unknown);
    t.record_call(feed, 4).expect("valid");
    // The batch in doubt (api 2, feed 3) and what came after (feed 4), window by window.
    assert_eq!(windows_of(t.unsynced_windows()), vec![(api, 2), (feed, 7)]);
}

#[test]
fn a_batch_in_doubt_stays_on_its_own_day_after_midnight() {
    let (t, clock, api, _) = two_minute_services();
    t.record_call(api, 2).expect("valid");
    let batch = t.begin_sync().expect("pending");
    t.finish_sync(batch, SyncOutcome::Unknown);
    clock.advance(3_600_000);
    t.record_call(api, 5).expect("valid");
    let days: Vec<(UtcDay, i64)> = t.unsynced().iter().map(|d| (d.day, d.total())).collect();
    let next = UtcDay::from_ymd(2026, 12, 2).expect("valid");
    assert_eq!(days, vec![(day(), 2), (next, 5)]);
}
