//! A day boundary during a sync (injected clock): deltas land in their own day's item.

use std::sync::Arc;

use quota_dynamodb_tests::{Server, by_hand};
use quota_tracker::{ManualClock, NoSync, QuotaConfig, Store, SyncOutcome, Timestamp, UtcDay};

#[test]
fn calls_on_both_sides_of_midnight_land_in_their_own_days() {
    let server = Server::start();
    let day = UtcDay::from_ymd(2026, 11, 29).expect("valid");
    let clock = Arc::new(ManualClock::new(Timestamp(day.next().start().0 - 2_000)));
    let store = Arc::new(server.store("midnight", clock.clone()));
    let instance = by_hand("midnight", QuotaConfig::default(), clock.clone(), &store);
    let tiingo = instance.tracker().service("tiingo").expect("configured");

    // 23:59:58: three calls, and a sync starts (its batch holds them)...
    for _ in 0..3 {
        instance.tracker().record_call(tiingo, 1).expect("valid");
    }
    let batch = instance.tracker().begin_sync().expect("pending");
    // ...one more call before midnight, not in that batch (the next sync must carry it to
    // the old day's item)...
    clock.advance(1_000);
    instance.tracker().record_call(tiingo, 1).expect("valid");
    // ...midnight passes while the batch is out; two calls are made on the new day...
    clock.advance(2_000);
    for _ in 0..2 {
        instance.tracker().record_call(tiingo, 1).expect("valid");
    }
    // ...then the write happens and is reported.
    let outcome = match store.apply_batch(&batch) {
        Ok(fresh) => SyncOutcome::Applied { fresh },
        Err(e) => e.sync_outcome(),
    };
    instance.tracker().finish_sync(batch, outcome);
    assert!(matches!(
        instance.sync(),
        quota_tracker::SyncReport::Applied { .. }
    ));
    assert_eq!(
        instance.tracker().begin_sync().map(|_| ()),
        Err(NoSync::NothingPending)
    );

    let used = |d: UtcDay| {
        store
            .load_day(d)
            .expect("readable")
            .map_or(0, |stored| stored.used("tiingo"))
    };
    assert_eq!(
        used(day),
        4,
        "the calls before midnight, in the old day's item"
    );
    assert_eq!(
        used(day.next()),
        2,
        "the calls after midnight, in the new day's item"
    );
    assert_eq!(
        instance.tracker().state().calls_today(tiingo),
        2,
        "today starts over"
    );
    // tiingo's limit is per month: its window holds both days' calls, in its own item.
    assert_eq!(instance.tracker().usage(tiingo).map(|u| u.used()), Ok(6));
    let month = instance.tracker().state().window(tiingo).expect("window");
    let key = quota_tracker::WindowKey {
        service: "tiingo".to_owned(),
        window: month,
    };
    let stored = store.load_windows(&[key]).expect("readable");
    assert_eq!(stored.first().map(|w| w.used), Some(6), "{stored:?}");
}
