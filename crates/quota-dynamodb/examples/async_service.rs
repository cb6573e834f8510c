//! An async service using the tracker: handlers on a multi-thread tokio runtime admit calls
//! to a provider through `AsyncSyncedTracker`, a `SyncTask` syncs the counts to DynamoDB in
//! the background, and the shutdown flushes them.
//!
//! ```sh
//! bash scripts/dynamodb-setup && docker run -d -p 8000:8000 quota-verify/dynalite:local
//! QUOTA_DYNAMODB_ENDPOINT=http://127.0.0.1:8000 cargo run -p quota-dynamodb --example async_service
//! ```
//!
//! Configuration from the environment: `QUOTA_DYNAMODB_TABLE` (default `quota-tracker`),
//! `QUOTA_DYNAMODB_ENDPOINT` (default: AWS itself), `AWS_REGION`.

use std::sync::Arc;
use std::time::Duration;

use quota_dynamodb::{DynamoConfig, DynamoStore, SyncTask};
use quota_tracker::{AsyncSyncedTracker, QuotaConfig, TickingClock, Tracker};

/// A stand-in for the provider: a call that takes a few milliseconds and sometimes never
/// reaches it (a refused connection), in which case its reservation is given back.
async fn call_provider(request: u64) -> Result<(), &'static str> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if request.is_multiple_of(17) {
        Err("connection refused: never sent")
    } else {
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = TickingClock::start();
    let config = DynamoConfig::from_env();
    let store = DynamoStore::connect(&config, clock.clone()).await;
    store.create_table_if_missing().await?;
    let tracker = Tracker::new(QuotaConfig::default(), clock);
    let tracker = Arc::new(AsyncSyncedTracker::new(tracker, store));
    let syncer = SyncTask::spawn(Arc::clone(&tracker), Duration::from_secs(1))?;

    let finnhub = tracker.tracker().service("finnhub")?;
    let handlers: Vec<_> = (0..32u64)
        .map(|request| {
            let tracker = Arc::clone(&tracker);
            tokio::spawn(async move {
                // Decide and count in one critical section; never awaits under the lock.
                let admission = tracker.admit_leasing(finnhub, 1).await?;
                let Some(reservation) = admission.reservation else {
                    return Ok::<_, quota_tracker::QuotaError>("refused");
                };
                match call_provider(request).await {
                    Ok(()) => Ok("called"),
                    Err(_) => {
                        tracker.refund(reservation)?;
                        Ok("refunded")
                    }
                }
            })
        })
        .collect();
    let mut outcomes = std::collections::BTreeMap::new();
    for handler in handlers {
        *outcomes.entry(handler.await??).or_insert(0u32) += 1;
    }
    let totals = syncer.shutdown().await;
    let usage = tracker.tracker().usage(finnhub)?;
    println!(
        "finnhub: {outcomes:?}; used {} of {} this minute (ceiling {}); synced: {totals:?}",
        usage.used(),
        usage.limit(),
        usage.ceiling()
    );
    Ok(())
}
