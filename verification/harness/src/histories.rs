//! Concurrent workloads recorded as histories, for the linearizability checker.
//!
//! Each thread runs its list of [`Action`]s against one tracker instance (with the
//! in-memory store, so syncs run too), stamping each operation's invocation and completion
//! on one shared counter: an operation's interval on that counter contains the real one, so
//! the recorded history keeps every real-time order (and can only add overlaps).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use linearizability::models::{QuotaOp, QuotaOutput};
use linearizability::{Operation, Outcome};
use quota_tracker::sync::{Backend, DefaultBackend, ShuttleBackend};
use quota_tracker::zoo::Variant;
use quota_tracker::{MemoryStore, QuotaConfig, SyncReport, SyncedTracker, Tracker, TrackerOptions};

use crate::schedule::Scheduler;

/// The services the workloads use (two of the default three).
pub const SERVICES: [&str; 2] = ["tiingo", "finnhub"];

/// One operation of a workload thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `record_call(service, 1)`; the history keeps the `used` it returned.
    Record(usize),
    /// `record_call(service, n)`: to bring a service near its ceiling in one step.
    RecordMany(usize, u64),
    /// `admit(service, 1)` (the variant's admission); the history keeps the decision and
    /// the `used` it returned.
    Admit(usize),
    /// `usage(service)`: used and remaining.
    Read(usize),
    /// `can_call(service)`.
    CanCall(usize),
    /// A sync of pending deltas to the store.
    Sync,
}

/// A history of quota operations.
pub type QuotaHistory = Vec<Operation<QuotaOp, QuotaOutput>>;

/// What a workload runs: per thread, its actions in order.
pub type Threads = Vec<Vec<Action>>;

type Instance<B> = SyncedTracker<Arc<MemoryStore<B>>, B>;

fn instance<B: Backend>() -> Arc<Instance<B>> {
    let options = TrackerOptions {
        instance: "history".into(),
        sync_interval_ms: i64::MAX,
        reload_interval_ms: i64::MAX,
    };
    let tracker =
        Tracker::<B>::new_in(QuotaConfig::default(), crate::lost_update::clock(), options);
    Arc::new(SyncedTracker::new(
        tracker,
        Arc::new(MemoryStore::<B>::default()),
    ))
}

/// Runs one thread's actions, returning its operations.
fn run_thread<B: Backend>(
    instance: &Instance<B>,
    variant: Variant,
    process: u64,
    actions: &[Action],
    clock: &AtomicU64,
) -> QuotaHistory {
    let tracker = instance.tracker();
    let id = |service: usize| {
        tracker
            .service(SERVICES[service])
            .unwrap_or_else(|e| panic!("workload bug: {e}"))
    };
    let mut ops = Vec::with_capacity(actions.len());
    for action in actions {
        let call = clock.fetch_add(1, Ordering::SeqCst);
        let (input, outcome) = match *action {
            Action::Record(s) => record(tracker, variant, s, 1),
            Action::RecordMany(s, n) => record(tracker, variant, s, n),
            Action::Admit(s) => {
                let input = QuotaOp::Admit {
                    service: SERVICES[s].to_owned(),
                    count: 1,
                };
                let outcome = match tracker.admit_as(variant, id(s), 1, || {}) {
                    Ok(a) => Outcome::Ok(QuotaOutput::Admission {
                        admitted: a.is_admitted(),
                        used: Some(a.usage.used()),
                    }),
                    Err(_) => Outcome::Fail,
                };
                (input, outcome)
            }
            Action::Read(s) => {
                let input = QuotaOp::Read {
                    service: SERVICES[s].to_owned(),
                };
                let outcome = match tracker.usage_as(variant, id(s)) {
                    Ok(u) => Outcome::Ok(QuotaOutput::Usage {
                        used: u.used(),
                        remaining: Some(u.remaining()),
                    }),
                    Err(_) => Outcome::Fail,
                };
                (input, outcome)
            }
            Action::CanCall(s) => {
                let input = QuotaOp::CanCall {
                    service: SERVICES[s].to_owned(),
                };
                let outcome = match tracker.usage_as(variant, id(s)) {
                    Ok(u) => Outcome::Ok(QuotaOutput::CanCall(u.can_call())),
                    Err(_) => Outcome::Fail,
                };
                (input, outcome)
            }
            Action::Sync => {
                let outcome = match instance.sync_as(variant) {
                    SyncReport::Failed(_) => Outcome::Fail,
                    _ => Outcome::Ok(QuotaOutput::Synced),
                };
                (QuotaOp::Sync { service: None }, outcome)
            }
        };
        let ret = clock.fetch_add(1, Ordering::SeqCst);
        ops.push(Operation::new(process, call, Some(ret), input, outcome));
    }
    ops
}

/// `record_call_as(variant, service, count)` as a history operation.
fn record<B: Backend>(
    tracker: &Tracker<B>,
    variant: Variant,
    service: usize,
    count: u64,
) -> (QuotaOp, Outcome<QuotaOutput>) {
    let input = QuotaOp::Record {
        service: SERVICES[service].to_owned(),
        count,
    };
    let outcome = tracker
        .service(SERVICES[service])
        .and_then(|id| tracker.record_call_as(variant, id, count));
    let outcome = match outcome {
        Ok(r) => Outcome::Ok(QuotaOutput::Recorded(Some(r.usage.used()))),
        Err(_) => Outcome::Fail,
    };
    (input, outcome)
}

/// Runs `threads` on real OS threads and returns the recorded history.
pub fn real_threads_history(variant: Variant, threads: &Threads) -> QuotaHistory {
    let instance = instance::<DefaultBackend>();
    let clock = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (count, spin) = (threads.len(), crate::lost_update::spin_limit(threads.len()));
    let handles: Vec<_> = threads
        .iter()
        .enumerate()
        .map(|(p, actions)| {
            let (instance, clock, ready) = (
                Arc::clone(&instance),
                Arc::clone(&clock),
                Arc::clone(&ready),
            );
            let actions = actions.clone();
            std::thread::spawn(move || {
                // Start together, so the threads' operations overlap (see lost_update).
                crate::lost_update::start_together(&ready, count, spin);
                run_thread(&instance, variant, p as u64, &actions, &clock)
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        .collect()
}

/// Runs `threads` under `schedules` shuttle schedules from `seed`; one history per schedule.
/// Deterministic: the same arguments give the same histories.
pub fn shuttle_histories(
    variant: Variant,
    threads: &Threads,
    seed: u64,
    schedules: usize,
) -> Vec<QuotaHistory> {
    shuttle_histories_with(Scheduler::Random, variant, threads, seed, schedules)
}

/// [`shuttle_histories`] under `scheduler` (random or PCT).
pub fn shuttle_histories_with(
    scheduler: Scheduler,
    variant: Variant,
    threads: &Threads,
    seed: u64,
    schedules: usize,
) -> Vec<QuotaHistory> {
    let results = Arc::new(std::sync::Mutex::new(Vec::with_capacity(schedules)));
    let sink = Arc::clone(&results);
    let threads = threads.clone();
    let mut config = shuttle::Config::new();
    config.silence_warnings = true;
    scheduler.run(seed, schedules, config, move || {
        let instance = instance::<ShuttleBackend>();
        let clock = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = threads
            .iter()
            .enumerate()
            .map(|(p, actions)| {
                let (instance, clock, actions) =
                    (Arc::clone(&instance), Arc::clone(&clock), actions.clone());
                shuttle::thread::spawn(move || {
                    run_thread(&instance, variant, p as u64, &actions, &clock)
                })
            })
            .collect();
        let history: QuotaHistory = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        sink.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(history);
    });
    let mut results = results
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::mem::take(&mut *results)
}
