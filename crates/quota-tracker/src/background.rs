//! Store I/O on a thread of its own, so that no caller of `record_call` ever waits for the
//! store, not even the one whose call made a sync due.
//!
//! [`SyncedTracker::record_call`] runs a due sync on the calling thread (as the original's
//! `_maybe_sync` did): every other caller goes on, but that one waits for the write, up to
//! the store's timeouts and retries during an outage. With [`BackgroundSync`], callers record
//! through [`SyncedTracker::tracker`] (which never does I/O) and the syncer thread syncs, or
//! reloads when nothing is pending, once per period. Dropping the handle stops the thread after a last
//! sync, so calls recorded before the drop are not left behind in memory.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::store::Store;
use crate::sync::Backend;
use crate::synced::{ReloadReport, SyncReport, SyncedTracker};

/// The running syncer thread; stopping it (or dropping it) syncs one last time.
pub struct BackgroundSync {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<Totals>>,
}

/// What the syncer thread did over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Batches that landed.
    pub applied: u64,
    /// Syncs that failed (their deltas stayed pending, or in doubt for a retry).
    pub failed: u64,
    /// Reloads that merged the store's counters.
    pub reloads: u64,
}

impl BackgroundSync {
    /// Starts a thread that, every `period` until stopped, syncs `synced`, or reloads it when
    /// nothing is pending (so the instance still sees other instances' calls), and reloads
    /// after a sync too when a reload is due and the sync did not bring back every current
    /// window's count. One or two store operations per period.
    pub fn start<S, B>(synced: Arc<SyncedTracker<S, B>>, period: Duration) -> Self
    where
        S: Store + Send + Sync + 'static,
        B: Backend + 'static,
        SyncedTracker<S, B>: Send + Sync,
    {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("quota-sync".to_owned())
            .spawn(move || run(&synced, &signal, period))
            .ok();
        if handle.is_none() {
            tracing::error!("cannot start the quota sync thread; nothing will be synced");
        }
        Self { stop, handle }
    }

    /// Stops the thread after a last sync and returns what it did.
    pub fn stop(mut self) -> Totals {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Totals {
        let (stopped, wake) = &*self.stop;
        if let Ok(mut stopped) = stopped.lock() {
            *stopped = true;
        }
        wake.notify_all();
        self.handle
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for BackgroundSync {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn run<S: Store, B: Backend>(
    synced: &SyncedTracker<S, B>,
    stop: &(Mutex<bool>, Condvar),
    period: Duration,
) -> Totals {
    let mut totals = Totals::default();
    loop {
        let stopping = {
            let (stopped, wake) = stop;
            let Ok(guard) = stopped.lock() else { break };
            match wake.wait_timeout_while(guard, period, |stopped| !*stopped) {
                Ok((guard, _)) => *guard,
                Err(_) => true,
            }
        };
        if stopping {
            synced.settle_grants_in_doubt();
            synced.tracker().release_leases();
        }
        let mut cycle = SyncCycle::new(stopping);
        let mut step = SyncStep::Sync;
        loop {
            step = match step {
                SyncStep::Sync => {
                    let report = synced.sync();
                    cycle.after_sync(&report, || synced.tracker().reload_due(), &mut totals)
                }
                SyncStep::Reload => cycle.after_reload(&synced.reload(), &mut totals),
                SyncStep::Done => break,
            };
        }
        if stopping {
            break;
        }
    }
    totals
}

/// What a syncer does next in its period: shared by [`BackgroundSync`]'s thread and the
/// async sync task of `quota-dynamodb`, so both keep the same schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStep {
    /// Sync (the first step of every period).
    Sync,
    /// Read the store.
    Reload,
    /// Nothing more this period.
    Done,
}

/// One period of a syncer: a sync, then a reload when nothing was pending (to see other
/// instances' calls) or when the sync did not bring back every current window's count and
/// a reload is due. On the way out (`stopping`, leases already released) no reload, and up
/// to four syncs: a batch in doubt and the deltas behind it may take two.
#[derive(Debug, Clone, Copy)]
pub struct SyncCycle {
    stopping: bool,
    syncs_left: u8,
}

impl SyncCycle {
    /// A period's cycle; start it with [`SyncStep::Sync`].
    pub fn new(stopping: bool) -> Self {
        Self {
            stopping,
            syncs_left: if stopping { 3 } else { 0 },
        }
    }

    /// Counts what a sync did in `totals` (logging a failure) and says what comes next;
    /// `reload_due` is asked only after a batch landed.
    pub fn after_sync(
        &mut self,
        report: &SyncReport,
        reload_due: impl FnOnce() -> bool,
        totals: &mut Totals,
    ) -> SyncStep {
        match report {
            SyncReport::Applied { .. } => {
                totals.applied += 1;
                if self.stopping {
                    self.again()
                } else if reload_due() {
                    SyncStep::Reload
                } else {
                    SyncStep::Done
                }
            }
            SyncReport::Failed(error) => {
                totals.failed += 1;
                tracing::warn!(%error, "background sync failed; deltas kept pending");
                SyncStep::Done
            }
            SyncReport::NothingPending if !self.stopping => SyncStep::Reload,
            SyncReport::NothingPending | SyncReport::InFlight => SyncStep::Done,
        }
    }

    /// Counts what a reload did (logging a failure); the period's work is done.
    pub fn after_reload(&mut self, report: &ReloadReport, totals: &mut Totals) -> SyncStep {
        match report {
            ReloadReport::Loaded => totals.reloads += 1,
            ReloadReport::Failed(error) => {
                tracing::warn!(%error, "background reload failed; keeping the last known state");
            }
            ReloadReport::InFlight => {}
        }
        SyncStep::Done
    }

    fn again(&mut self) -> SyncStep {
        if self.syncs_left == 0 {
            return SyncStep::Done;
        }
        self.syncs_left -= 1;
        SyncStep::Sync
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreError, StoreErrorKind};

    const APPLIED: SyncReport = SyncReport::Applied { seq: 1, calls: 1 };

    /// The steps of one cycle fed `reports` in turn (each sync takes the next), and totals.
    fn steps(stopping: bool, reports: &[SyncReport], reload_due: bool) -> (Vec<SyncStep>, Totals) {
        let (mut cycle, mut totals) = (SyncCycle::new(stopping), Totals::default());
        let mut reports = reports.iter();
        let mut step = SyncStep::Sync;
        let mut seen = vec![step];
        while step != SyncStep::Done && seen.len() < 20 {
            step = match step {
                SyncStep::Sync => {
                    let report = reports.next().unwrap_or(&SyncReport::NothingPending);
                    cycle.after_sync(report, || reload_due, &mut totals)
                }
                SyncStep::Reload => cycle.after_reload(&ReloadReport::Loaded, &mut totals),
                SyncStep::Done => break,
            };
            seen.push(step);
        }
        (seen, totals)
    }

    #[test]
    fn a_period_syncs_then_reloads_only_when_asked_to() {
        use SyncStep::{Done, Reload, Sync};
        let (seen, totals) = steps(false, &[APPLIED], false);
        assert_eq!(
            (seen, totals.applied, totals.reloads),
            (vec![Sync, Done], 1, 0)
        );
        let (seen, totals) = steps(false, &[APPLIED], true);
        assert_eq!(
            (seen, totals.applied, totals.reloads),
            (vec![Sync, Reload, Done], 1, 1)
        );
        // Nothing pending: reload to see other instances (but not on the way out).
        let (seen, totals) = steps(false, &[SyncReport::NothingPending], false);
        assert_eq!((seen, totals.reloads), (vec![Sync, Reload, Done], 1));
        let (seen, _) = steps(true, &[SyncReport::NothingPending], true);
        assert_eq!(seen, vec![Sync, Done]);
        let failed = SyncReport::Failed(StoreError::new(
            StoreErrorKind::Unavailable,
            "apply",
            "down",
        ));
        let (seen, totals) = steps(false, &[failed], true);
        assert_eq!(
            (seen, totals.failed, totals.applied),
            (vec![Sync, Done], 1, 0)
        );
    }

    #[test]
    fn on_the_way_out_it_syncs_up_to_four_times_while_batches_land() {
        use SyncStep::{Done, Sync};
        let (seen, totals) = steps(true, &[APPLIED; 10], true);
        assert_eq!(seen, vec![Sync, Sync, Sync, Sync, Done]);
        assert_eq!((totals.applied, totals.reloads), (4, 0));
        let (seen, totals) = steps(true, &[APPLIED, SyncReport::NothingPending], true);
        assert_eq!((seen, totals.applied), (vec![Sync, Sync, Done], 1));
    }
}
