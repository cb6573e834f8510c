//! Store writes per 1,000 recorded calls with the default sync policy, and conservation.

use std::sync::Arc;

use quota_tracker::{
    ManualClock, MemoryStore, QuotaConfig, SyncReport, SyncedTracker, Timestamp, Tracker,
    TrackerOptions, UtcDay,
};

/// Simulates `instances` trackers, each recording 100 calls a second for `minutes` simulated
/// minutes, on the default policy (sync every 60 s, reload every 60 s, forced sync at the
/// first crossing of 80 %), against one shared store.
fn simulate(instances: usize, minutes: u64) {
    let day = UtcDay::from_ymd(2026, 11, 29).unwrap_or_else(|| UtcDay::from_days_since_epoch(0));
    let clock = Arc::new(ManualClock::new(Timestamp(day.start().0 + 3_600_000)));
    let store = Arc::new(MemoryStore::new());
    // Limits high enough that the simulation stays below 80 % (the forced sync happens once
    // per service and day at most, and is counted if it does).
    let config = QuotaConfig::new(
        ["tiingo", "finnhub", "sendgrid"]
            .into_iter()
            .map(|name| {
                quota_tracker::ServiceConfig::new(name, 100_000_000, quota_tracker::Period::Day)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let trackers: Vec<_> = (0..instances)
        .map(|i| {
            let options = TrackerOptions {
                instance: format!("i{i}").into(),
                ..TrackerOptions::default()
            };
            let tracker = Tracker::with_options(config.clone(), clock.clone(), options);
            SyncedTracker::new(tracker, Arc::clone(&store))
        })
        .collect();
    let ticks = minutes * 60 * 100;
    let mut recorded = 0u64;
    for tick in 0..ticks {
        clock.advance(10);
        for (i, t) in trackers.iter().enumerate() {
            let service = t
                .tracker()
                .config()
                .ids()
                .nth((tick as usize + i) % 3)
                .unwrap_or_else(|| panic!("three services"));
            if let Err(e) = t.record_call(service, 1) {
                panic!("{e}");
            }
            recorded += 1;
        }
    }
    let (writes, reads) = (store.writes(), store.reads());
    for t in &trackers {
        while let SyncReport::Applied { .. } = t.sync() {}
    }
    let stored = store.total(day);
    let per_thousand = writes as f64 * 1000.0 / recorded as f64;
    // The original: one ADD per call, plus a full put per instance every 60 s.
    crate::figures::keep(
        &format!("store writes per 1,000 calls, {instances} instances"),
        per_thousand,
        "writes",
        0.25,
    );
    let original = (recorded + instances as u64 * minutes) as f64 * 1000.0 / recorded as f64;
    println!(
        "| {instances} | {recorded} | {writes} | {reads} | {per_thousand:.3} | {original:.0} | {:.0}× | {} |",
        original / per_thousand,
        if stored == recorded {
            format!("exact ({stored})")
        } else {
            format!("LOST {}", recorded as i64 - stored as i64)
        }
    );
    assert_eq!(
        stored, recorded,
        "conservation: the store must hold every call"
    );
}

/// Prints the table for 1 and 8 instances.
pub fn report(minutes: u64) {
    println!(
        "\n## Store writes per 1,000 recorded calls (default policy, {minutes} simulated minutes, 100 calls/s per instance)\n"
    );
    println!(
        "| instances | calls | store writes | store reads | writes per 1,000 calls | original (1 ADD per call + a put per minute) | fewer writes | store after a final sync |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    simulate(1, minutes);
    simulate(8, minutes);
}
