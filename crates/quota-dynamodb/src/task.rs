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
