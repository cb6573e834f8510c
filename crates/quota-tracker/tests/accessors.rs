//! What the public accessors report, the clocks the tracker reads, and the warnings it logs:
//! each test here was written to kill a mutant the other tests let live (MUTANTS.md).

mod common;

use std::sync::Arc;

use common::warnings;

use quota_tracker::{
    Clock, ManualClock, Period, QuotaConfig, ServiceConfig, SystemClock, TickingClock, Timestamp,
    Tracker, TrackerOptions, UtcDay,
};

fn one_minute_service() -> QuotaConfig {
    QuotaConfig::new(vec![
        ServiceConfig::new("api", 10, Period::Minute).expect("valid"),
    ])
    .expect("valid")
}

/// When the tracker saw a call made now happen (`updated_at`).
fn time_of_a_call(clock: Arc<dyn Clock>) -> i64 {
    let tracker: Tracker = Tracker::new(one_minute_service(), clock);
    let api = tracker.service("api").expect("configured");
    tracker.record_call(api, 1).expect("valid");
    tracker.state().updated_at().expect("a call was recorded").0
}

#[test]
fn the_tracker_reads_the_time_of_every_kind_of_clock() {
    let system_now = SystemClock.now().0;
    // The system clock is asked through the trait; the ticking and manual clocks share
    // their atomic. Each must give the tracker the real time.
    let seen = time_of_a_call(Arc::new(SystemClock));
    assert!(
        (seen - system_now).abs() <= 5_000,
        "system clock: {seen} vs {system_now}"
    );
    let seen = time_of_a_call(TickingClock::start());
    assert!(
        (seen - system_now).abs() <= 5_000,
        "ticking clock: {seen} vs {system_now}"
    );
    let at = Timestamp(1_800_000_123_456);
    assert_eq!(
        time_of_a_call(Arc::new(ManualClock::new(at))),
        at.0,
        "manual clock"
    );
    // An `Arc` of a clock is a clock that reads the same.
    let shared: Arc<Arc<ManualClock>> = Arc::new(Arc::new(ManualClock::new(at)));
    assert_eq!(time_of_a_call(shared), at.0);
}

#[test]
fn timestamps_measure_and_convert() {
    assert_eq!(Timestamp(5_000).millis_since(Timestamp(1_500)), 3_500);
    assert_eq!(Timestamp(1_500).millis_since(Timestamp(5_000)), -3_500);
    assert_eq!(Timestamp(1_999).unix_seconds(), 1);
    assert_eq!(
        Timestamp(-1).unix_seconds(),
        -1,
        "before the epoch rounds down"
    );
    assert_eq!(
        UtcDay::from_days_since_epoch(20_000).days_since_epoch(),
        20_000
    );
    assert_eq!(
        UtcDay::from_ymd(2026, 12, 2).map(UtcDay::days_since_epoch),
        Some(20_789)
    );
}

#[test]
fn days_parse_only_in_iso_form() {
    assert_eq!(
        "2026-12-02".parse::<UtcDay>().ok(),
        UtcDay::from_ymd(2026, 12, 2)
    );
    for bad in [
        "2026x12x02",
        "2026-12x02",
        "2026x12-02",
        "2026-12",
        "2026",
        "",
        "2026-13-01",
        "20261202xx",
    ] {
        assert!(bad.parse::<UtcDay>().is_err(), "{bad:?} parsed");
    }
}

#[test]
fn periods_read_back_as_written() {
    for period in [Period::Minute, Period::Hour, Period::Day, Period::Month] {
        assert_eq!(period.to_string(), period.as_str());
        assert_eq!(period.as_str().parse::<Period>().ok(), Some(period));
    }
    assert_eq!(Period::Hour.as_str(), "hour");
    assert!("fortnight".parse::<Period>().is_err());
}

#[test]
fn a_configuration_and_a_tracker_say_what_they_hold() {
    let config = QuotaConfig::default();
    assert!(!config.is_empty());
    assert_eq!(config.len(), 3);
    let options = TrackerOptions {
        instance: "worker-7".into(),
        ..TrackerOptions::default()
    };
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    let tracker: Tracker = Tracker::with_options(config.clone(), clock, options);
    assert_eq!(tracker.instance(), "worker-7");
    assert_eq!(tracker.config(), &config);
    let tiingo = tracker.service("tiingo").expect("configured");
    let sendgrid = tracker.service("sendgrid").expect("configured");
    tracker.record_call(tiingo, 2).expect("valid");
    tracker.record_call(sendgrid, 3).expect("valid");
    assert_eq!(tracker.total_api_calls_today(), 5);
    let usage = tracker.usage(tiingo).expect("valid");
    assert_eq!((usage.limit(), usage.used()), (500, 2));
}

#[test]
fn sync_and_reload_intervals_follow_the_shortest_window() {
    // A per-minute limit: a sixth of it, 10 s.
    let options = TrackerOptions::for_config(&one_minute_service());
    assert_eq!(
        (options.sync_interval_ms, options.reload_interval_ms),
        (10_000, 10_000)
    );
    // Only a monthly limit: capped at 60 s.
    let monthly = QuotaConfig::new(vec![
        ServiceConfig::new("m", 10, Period::Month).expect("valid"),
    ])
    .expect("valid");
    assert_eq!(
        TrackerOptions::for_config(&monthly).sync_interval_ms,
        60_000
    );
    let hourly = QuotaConfig::new(vec![
        ServiceConfig::new("h", 10, Period::Hour).expect("valid"),
    ])
    .expect("valid");
    assert_eq!(TrackerOptions::for_config(&hourly).sync_interval_ms, 60_000);
}

#[test]
fn usage_levels_and_advice() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    let config = QuotaConfig::new(vec![
        ServiceConfig::new("api", 10, Period::Day).expect("valid"),
    ])
    .expect("valid");
    let tracker: Tracker = Tracker::new(config, clock);
    let api = tracker.service("api").expect("configured");
    let level = |used| {
        let u = tracker.usage(api).expect("valid");
        assert_eq!(u.used(), used);
        (u.is_warning(), u.is_critical(), u.can_call())
    };
    assert_eq!(level(0), (false, false, true));
    tracker.record_call(api, 4).expect("valid");
    assert_eq!(level(4), (false, false, true));
    tracker.record_call(api, 1).expect("valid");
    assert_eq!(level(5), (true, false, true), "50 % warns");
    tracker.record_call(api, 3).expect("valid");
    assert_eq!(
        level(8),
        (true, true, false),
        "80 % is critical and the ceiling"
    );
}

#[test]
fn crossing_the_critical_threshold_warns_once() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    let tracker: Tracker = Tracker::new(one_minute_service(), clock);
    let api = tracker.service("api").expect("configured");
    assert_eq!(
        warnings(|| drop(tracker.record_call(api, 7))),
        0,
        "70 %: quiet"
    );
    let crossed = warnings(|| {
        let recorded = tracker.record_call(api, 1).expect("valid");
        assert!(recorded.crossed_critical);
    });
    assert_eq!(crossed, 1, "80 %: one warning");
    assert_eq!(
        warnings(|| drop(tracker.record_call(api, 1))),
        0,
        "past it: no more"
    );
}

#[test]
fn a_batch_hands_out_its_deltas_as_one_pending_value() {
    let clock = Arc::new(ManualClock::new(Timestamp(
        UtcDay::from_ymd(2026, 12, 1).expect("valid").start().0 + 60_000,
    )));
    let tracker: Tracker = Tracker::new(one_minute_service(), clock);
    let api = tracker.service("api").expect("configured");
    tracker.record_call(api, 3).expect("valid");
    let batch = tracker.begin_sync().expect("nothing in flight");
    let pending = batch.pending();
    assert_eq!(
        (&pending.days, &pending.windows, &pending.returns),
        (&batch.days, &batch.windows, &batch.returns)
    );
    assert_eq!(pending.days.iter().map(|d| d.total()).sum::<i64>(), 3);
    assert_eq!(pending.windows.len(), 1, "the minute window's item");
}

#[test]
fn errors_name_the_service() {
    let tracker: Tracker = Tracker::new(one_minute_service(), Arc::new(SystemClock));
    let api = tracker.service("api").expect("configured");
    let zero = tracker.record_call(api, 0).expect_err("a count of zero");
    assert!(zero.to_string().contains("api"), "{zero}");
    tracker.record_call(api, 1).expect("valid");
    let overflow = tracker.record_call(api, u64::MAX).expect_err("overflow");
    assert!(overflow.to_string().contains("api"), "{overflow}");
}
