//! The lost-update workload, on real threads and under shuttle.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use quota_tracker::sync::{Backend, ShuttleBackend};

use crate::schedule::Scheduler;
use quota_tracker::zoo::Variant;
use quota_tracker::{
    ManualClock, QuotaConfig, QuotaError, ServiceId, Timestamp, Tracker, TrackerOptions, UtcDay,
};

/// What to run: which read-modify-write, how many threads, how many calls each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// The read-modify-write shape.
    pub variant: Variant,
    /// Concurrent threads; thread `i` records on service `i mod services`.
    pub threads: usize,
    /// Calls each thread records, one at a time.
    pub calls: u64,
}

impl Workload {
    /// Calls each service should end with, in configuration order.
    pub fn expected(&self, services: usize) -> Vec<u64> {
        let mut expected = vec![0; services];
        for thread in 0..self.threads {
            expected[thread % services] += self.calls;
        }
        expected
    }
}

/// One run of a workload: what each service should have counted and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trial {
    /// Per service, in configuration order.
    pub expected: Vec<u64>,
    /// Per service `used` at the end.
    pub observed: Vec<u64>,
    /// `total_api_calls_today` at the end.
    pub observed_total: u64,
    /// On real threads: whether two threads' calls were under way at one moment (one started
    /// before another finished). A trial whose threads ran one after another says nothing
    /// about the lock. `None` under shuttle, which interleaves by
    /// construction.
    pub overlapped: Option<bool>,
}

impl Trial {
    /// Calls recorded but missing from the counters, summed over services.
    pub fn lost(&self) -> u64 {
        self.expected
            .iter()
            .zip(&self.observed)
            .map(|(e, o)| e.saturating_sub(*o))
            .sum()
    }

    /// Calls counted that were never made (a double count), summed over services.
    pub fn excess(&self) -> u64 {
        self.expected
            .iter()
            .zip(&self.observed)
            .map(|(e, o)| o.saturating_sub(*e))
            .sum()
    }

    /// Whether the counters equal what was recorded, per service and in total.
    pub fn exact(&self) -> bool {
        self.expected == self.observed && self.observed_total == self.expected.iter().sum::<u64>()
    }
}

/// A clock stopped at noon, so no run crosses midnight and no sync becomes due.
pub(crate) fn clock() -> Arc<ManualClock> {
    let noon = UtcDay::from_ymd(2026, 11, 29).map_or(Timestamp(0), |d| d.start());
    Arc::new(ManualClock::new(Timestamp(noon.0 + 12 * 3_600_000)))
}

fn tracker<B: Backend>() -> (Arc<Tracker<B>>, Vec<ServiceId>) {
    let options = TrackerOptions {
        instance: "repro".into(),
        ..TrackerOptions::default()
    };
    let tracker = Tracker::<B>::new_in(QuotaConfig::default(), clock(), options);
    let ids = tracker.config().ids().collect();
    (Arc::new(tracker), ids)
}

fn record_all<B: Backend>(
    tracker: &Tracker<B>,
    variant: Variant,
    service: ServiceId,
    calls: u64,
) -> Result<(), QuotaError> {
    for _ in 0..calls {
        tracker.record_call_as(variant, service, 1)?;
    }
    Ok(())
}

fn outcome<B: Backend>(workload: &Workload, tracker: &Tracker<B>, ids: &[ServiceId]) -> Trial {
    let state = tracker.state();
    Trial {
        expected: workload.expected(ids.len()),
        observed: ids
            .iter()
            .map(|id| state.usage(*id).map_or(0, |u| u.used()))
            .collect(),
        observed_total: state.total_api_calls_today(),
        overlapped: None,
    }
}

/// Runs one trial on real OS threads.
///
/// The threads start together: each busy-waits until all are ready, so that the OS puts them
/// on different cores and their calls overlap.
pub fn real_threads(workload: &Workload) -> Result<Trial, QuotaError> {
    let (tracker, ids) = tracker::<quota_tracker::sync::DefaultBackend>();
    let ready = Arc::new(AtomicUsize::new(0));
    let spin_limit = spin_limit(workload.threads);
    let handles: Vec<_> = (0..workload.threads)
        .map(|thread| {
            let (tracker, ready) = (Arc::clone(&tracker), Arc::clone(&ready));
            let (variant, calls, service) =
                (workload.variant, workload.calls, ids[thread % ids.len()]);
            let threads = workload.threads;
            std::thread::spawn(move || {
                start_together(&ready, threads, spin_limit);
                let started = std::time::Instant::now();
                let result = record_all(&tracker, variant, service, calls);
                (result, started, std::time::Instant::now())
            })
        })
        .collect();
    let mut spans = Vec::with_capacity(handles.len());
    for handle in handles {
        match handle.join() {
            Ok((result, started, ended)) => {
                result?;
                spans.push((started, ended));
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    let mut trial = outcome(workload, &tracker, &ids);
    trial.overlapped = Some(overlapped(&spans));
    Ok(trial)
}

/// Whether two of the threads' `(start, end)` spans share a moment: some thread started
/// before another had finished, so their calls could meet at the lock.
pub(crate) fn overlapped(spans: &[(std::time::Instant, std::time::Instant)]) -> bool {
    let mut sorted = spans.to_vec();
    sorted.sort_by_key(|s| s.0);
    let mut latest_end = None;
    for (start, end) in sorted {
        if latest_end.is_some_and(|latest| start < latest) {
            return true;
        }
        latest_end = latest_end.max(Some(end));
    }
    false
}

/// How long [`start_together`] busy-waits: spinning only helps while every thread can have
/// a core of its own.
pub(crate) fn spin_limit(threads: usize) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if threads <= cores { 200_000 } else { 1_000 }
}

/// Announces this thread and waits until all `threads` have, so that their calls overlap.
///
/// It busy-waits first: a spinning thread keeps its core, so the OS places the next thread on
/// another core instead of running the threads one after another on the same one (with a
/// yielding wait, two threads often ran back to back and lost nothing). After a few
/// milliseconds (or at once when there are more threads than cores) it yields, so that every
/// thread gets to start.
pub(crate) fn start_together(ready: &AtomicUsize, threads: usize, spin_limit: u32) {
    ready.fetch_add(1, Ordering::SeqCst);
    let mut spins = 0u32;
    while ready.load(Ordering::SeqCst) < threads {
        if spins < spin_limit {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Runs `trials` trials under shuttle's random scheduler seeded with `seed`.
///
/// Deterministic: the same seed and workload give the same trials, on every run and every
/// machine. `on_trial` is called after each trial (for progress).
pub fn shuttle_schedule(
    workload: &Workload,
    seed: u64,
    trials: usize,
    on_trial: impl Fn(&Trial) + Send + Sync + 'static,
) -> Result<Vec<Trial>, QuotaError> {
    shuttle_schedule_with(Scheduler::Random, workload, seed, trials, on_trial)
}

/// [`shuttle_schedule`] under `scheduler` (random or PCT).
pub fn shuttle_schedule_with(
    scheduler: Scheduler,
    workload: &Workload,
    seed: u64,
    trials: usize,
    on_trial: impl Fn(&Trial) + Send + Sync + 'static,
) -> Result<Vec<Trial>, QuotaError> {
    let results = Arc::new(std::sync::Mutex::new(Vec::with_capacity(trials)));
    let mut config = shuttle::Config::new();
    // Large workloads take many steps; shuttle's default bound would fail them.
    config.max_steps = shuttle::MaxSteps::None;
    config.silence_warnings = true;
    let workload_copy = *workload;
    let sink = Arc::clone(&results);
    scheduler.run(seed, trials, config, move || {
        let workload = workload_copy;
        let (tracker, ids) = tracker::<ShuttleBackend>();
        let handles: Vec<_> = (0..workload.threads)
            .map(|thread| {
                let tracker = Arc::clone(&tracker);
                let service = ids[thread % ids.len()];
                shuttle::thread::spawn(move || {
                    record_all(&tracker, workload.variant, service, workload.calls)
                })
            })
            .collect();
        let mut failure = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => failure = Some(error),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        let trial = match failure {
            None => Ok(outcome(&workload, &tracker, &ids)),
            Some(error) => Err(error),
        };
        if let Ok(trial) = &trial {
            on_trial(trial);
        }
        sink.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(trial);
    });
    let mut results = results
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::mem::take(&mut *results).into_iter().collect()
}
