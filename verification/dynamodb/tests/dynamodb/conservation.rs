//! Several tracker instances × threads against one real DynamoDB-compatible server: the
//! table's counters equal the calls recorded, per service, exactly.

use std::sync::Arc;

use quota_dynamodb_tests::faults::CountCalls;
use quota_dynamodb_tests::{Conservation, Server, flush, record_concurrently};
use quota_tracker::{
    ManualClock, Period, QuotaConfig, ServiceConfig, SyncedTracker, TickingClock, Timestamp,
    Tracker, TrackerOptions, UtcDay,
};

#[test]
fn four_instances_times_four_threads_lose_and_double_nothing() {
    let server = Server::start();
    let clock = TickingClock::start();
    let store = Arc::new(server.store("conservation", clock.clone()));
    let (instances, expected) = record_concurrently(&store, &clock, "instance", 4, 4, 250, 3);
    flush(&instances);
    let day = instances[0].tracker().state().day();
    let outcome = Conservation::read(&store, day, &expected);
    assert!(outcome.exact(), "table vs calls recorded: {outcome}");
    let total: u64 = expected.iter().sum();
    eprintln!("table holds exactly {total} calls from 4 instances x 4 threads");
}

#[test]
fn the_default_policy_costs_a_few_sdk_calls_per_thousand_recorded() {
    // 2 instances, each recording 100 calls a simulated second for 10 simulated minutes, on
    // the default policy (sync every 60 s), against the real server.
    let server = Server::start();
    let day = UtcDay::from_ymd(2026, 11, 29).expect("valid");
    let clock = Arc::new(ManualClock::new(Timestamp(day.start().0 + 3_600_000)));
    let calls = CountCalls::default();
    let counter = calls.clone();
    let store =
        Arc::new(server.store_with("policy-cost", clock.clone(), |b| b.interceptor(counter)));
    let before: u64 = calls.counts().values().sum();
    // Limits far above the calls, so no service reaches 80 % (no forced syncs).
    let config = QuotaConfig::new(
        ["tiingo", "finnhub", "sendgrid"]
            .into_iter()
            .map(|name| ServiceConfig::new(name, 100_000_000, Period::Day).expect("valid"))
            .collect(),
    )
    .expect("valid");
    let instances: Vec<_> = (0..2)
        .map(|i| {
            let options = TrackerOptions {
                instance: format!("policy-{i}").into(),
                ..TrackerOptions::default()
            };
            let tracker = Tracker::with_options(config.clone(), clock.clone(), options);
            SyncedTracker::new(tracker, Arc::clone(&store))
        })
        .collect();
    let mut recorded = [0u64; 3];
    for tick in 0..10 * 60 * 100u64 {
        clock.advance(10);
        for (i, instance) in instances.iter().enumerate() {
            let service = (tick as usize + i) % 3;
            let id = instance
                .tracker()
                .config()
                .ids()
                .nth(service)
                .expect("3 services");
            instance.record_call(id, 1).expect("recorded");
            recorded[service] += 1;
        }
    }
    let counts = calls.counts();
    let sent: u64 = counts.values().sum::<u64>() - before;
    let total: u64 = recorded.iter().sum();
    for instance in &instances {
        while let quota_tracker::SyncReport::Applied { .. } = instance.sync() {}
    }
    let outcome = Conservation::read(&store, day, &recorded);
    assert!(outcome.exact(), "{outcome}");
    let per_thousand = sent as f64 * 1000.0 / total as f64;
    eprintln!(
        "{total} calls recorded by 2 instances over 10 simulated minutes: {sent} SDK calls \
         (of {counts:?}, which includes creating the table), {per_thousand:.2} per 1,000 calls; table exact"
    );
    // The original sent one ADD per call (1,000 per 1,000) plus a put per minute.
    assert!(per_thousand < 1.0, "{per_thousand} SDK calls per 1,000");
}

#[test]
fn windows_at_the_default_intervals_cost_a_few_sdk_calls_per_thousand_recorded() {
    // The default configuration (tiingo per month, finnhub per minute, sendgrid per day) at
    // the intervals `Tracker::new` picks for it (10 s): a sync writes up to three items.
    let server = Server::start();
    let day = UtcDay::from_ymd(2026, 11, 29).expect("valid");
    let clock = Arc::new(ManualClock::new(Timestamp(day.start().0 + 3_600_000)));
    let calls = CountCalls::default();
    let counter = calls.clone();
    let store =
        Arc::new(server.store_with("window-cost", clock.clone(), |b| b.interceptor(counter)));
    let before: u64 = calls.counts().values().sum();
    // Limits far above the calls (no forced syncs), periods as the defaults'.
    let config = QuotaConfig::new(
        [
            ("tiingo", Period::Month),
            ("finnhub", Period::Minute),
            ("sendgrid", Period::Day),
        ]
        .into_iter()
        .map(|(name, period)| ServiceConfig::new(name, 100_000_000, period).expect("valid"))
        .collect(),
    )
    .expect("valid");
    let instances: Vec<_> = (0..2)
        .map(|i| {
            let options = TrackerOptions {
                instance: format!("window-{i}").into(),
                ..TrackerOptions::for_config(&config)
            };
            let tracker = Tracker::with_options(config.clone(), clock.clone(), options);
            SyncedTracker::new(tracker, Arc::clone(&store))
        })
        .collect();
    let mut total = 0u64;
    for tick in 0..10 * 60 * 100u64 {
        clock.advance(10);
        for (i, instance) in instances.iter().enumerate() {
            let id = instance
                .tracker()
                .config()
                .ids()
                .nth((tick as usize + i) % 3)
                .expect("3");
            instance.record_call(id, 1).expect("recorded");
            total += 1;
        }
    }
    let counts = calls.counts();
    let sent: u64 = counts.values().sum::<u64>() - before;
    let per_thousand = sent as f64 * 1000.0 / total as f64;
    eprintln!(
        "{total} calls by 2 instances over 10 simulated minutes, default windows and intervals: \
         {sent} SDK calls ({counts:?}), {per_thousand:.2} per 1,000 calls"
    );
    assert!(per_thousand < 5.0, "{per_thousand} SDK calls per 1,000");
}
