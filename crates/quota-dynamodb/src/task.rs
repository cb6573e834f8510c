//! The sync task: an async tracker's periodic syncs as a task on the caller's tokio runtime,
//! and a shutdown that flushes (leases given back, pending deltas synced) before it returns.

use std::sync::Arc;
use std::time::Duration;

use quota_tracker::sync::Backend;
use quota_tracker::{AsyncStore, AsyncSyncedTracker, BackgroundTotals, SyncCycle, SyncStep};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The running sync task. [`SyncTask::shutdown`] stops it after a last flush and returns
/// what it did; dropping it without a shutdown asks the task to flush and stop on its own,
/// which only finishes if the runtime keeps running.
pub struct SyncTask {
    stop: Arc<Notify>,
    handle: Option<JoinHandle<BackgroundTotals>>,
}

/// Why the task was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "SyncTask::spawn must be called from inside a tokio runtime (a task or block_on); \
     use SyncTask::spawn_on with a runtime handle otherwise"
)]
pub struct NoRuntime;

impl SyncTask {
    /// Spawns the task on the current runtime: every `period` it syncs `synced`, or reloads
    /// when nothing is pending, on the schedule `BackgroundSync` keeps
    /// ([`quota_tracker::SyncCycle`]).
    pub fn spawn<S, B>(
        synced: Arc<AsyncSyncedTracker<S, B>>,
        period: Duration,
    ) -> Result<Self, NoRuntime>
    where
        S: AsyncStore + 'static,
        B: Backend,
    {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| NoRuntime)?;
        Ok(Self::spawn_on(&handle, synced, period))
    }

    /// [`SyncTask::spawn`] on the runtime of `handle`.
    pub fn spawn_on<S, B>(
        handle: &tokio::runtime::Handle,
        synced: Arc<AsyncSyncedTracker<S, B>>,
        period: Duration,
    ) -> Self
    where
        S: AsyncStore + 'static,
        B: Backend,
    {
        let stop = Arc::new(Notify::new());
        let signal = Arc::clone(&stop);
        let handle = handle.spawn(async move { run(&synced, &signal, period).await });
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the task after a last flush (leases given back, pending deltas synced, up to
    /// four syncs) and returns what it did over its life.
    pub async fn shutdown(mut self) -> BackgroundTotals {
        self.stop.notify_one();
        match self.handle.take() {
            Some(handle) => handle.await.unwrap_or_else(|error| {
                tracing::error!(%error, "the quota sync task ended abnormally");
                BackgroundTotals::default()
            }),
            None => BackgroundTotals::default(),
        }
    }
}

impl Drop for SyncTask {
    fn drop(&mut self) {
        if self.handle.is_some() {
            // Not shut down: let the task flush and end by itself rather than abort it
            // with deltas pending.
            self.stop.notify_one();
        }
    }
}

async fn run<S: AsyncStore, B: Backend>(
    synced: &AsyncSyncedTracker<S, B>,
    stop: &Notify,
    period: Duration,
) -> BackgroundTotals {
    let mut totals = BackgroundTotals::default();
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(period) => false,
            () = stop.notified() => true,
        };
        if stopping {
            synced.settle_grants_in_doubt().await;
            synced.tracker().release_leases();
        }
        let mut cycle = SyncCycle::new(stopping);
        let mut step = SyncStep::Sync;
        loop {
            step = match step {
                SyncStep::Sync => {
                    let report = synced.sync().await;
                    cycle.after_sync(&report, || synced.tracker().reload_due(), &mut totals)
                }
                SyncStep::Reload => cycle.after_reload(&synced.reload().await, &mut totals),
                SyncStep::Done => break,
            };
        }
        if stopping {
            return totals;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quota_tracker::{
        ManualClock, MemoryStore, QuotaConfig, Timestamp, Tracker, TrackerOptions, UtcDay,
    };

    fn day() -> UtcDay {
        UtcDay::from_ymd(2026, 12, 1).expect("valid")
    }

    /// A tracker with 5 calls recorded on tiingo, not yet synced, and its store.
    fn recorded() -> (Arc<AsyncSyncedTracker<Arc<MemoryStore>>>, Arc<MemoryStore>) {
        let clock = Arc::new(ManualClock::new(Timestamp(day().start().0 + 3_600_000)));
        let options = TrackerOptions {
            instance: "task".into(),
            ..TrackerOptions::default()
        };
        let tracker = Tracker::with_options(QuotaConfig::default(), clock, options);
        let store = Arc::new(MemoryStore::new());
        let synced = Arc::new(AsyncSyncedTracker::new(tracker, Arc::clone(&store)));
        let tiingo = synced.tracker().service("tiingo").expect("configured");
        synced.tracker().record_call(tiingo, 5).expect("recorded");
        (synced, store)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    }

    #[test]
    fn shutdown_flushes_and_reports_what_the_task_did() {
        let (synced, store) = recorded();
        let totals = runtime().block_on(async {
            let task = SyncTask::spawn(Arc::clone(&synced), Duration::from_secs(3_600))
                .expect("inside a runtime");
            task.shutdown().await
        });
        assert_eq!(totals.applied, 1, "{totals:?}");
        assert_eq!(store.total(day()), 5);
    }

    #[test]
    fn a_task_dropped_without_shutdown_still_flushes_while_the_runtime_runs() {
        let (synced, store) = recorded();
        runtime().block_on(async {
            drop(SyncTask::spawn(
                Arc::clone(&synced),
                Duration::from_secs(3_600),
            ));
            for _ in 0..200 {
                if store.total(day()) == 5 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            panic!("nothing flushed a second after the drop");
        });
    }

    #[test]
    fn spawning_outside_a_runtime_is_an_error_not_a_panic() {
        let (synced, _) = recorded();
        assert!(matches!(
            SyncTask::spawn(synced, Duration::from_secs(1)),
            Err(NoRuntime)
        ));
    }
}
