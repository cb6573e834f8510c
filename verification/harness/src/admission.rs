//! The admission workload: threads loop admit → provider call → (refund) until refused, on
//! one service, and the tracker must never count past the ceiling.
//!
//! The fixed tracker decides and records in one critical section ([`Tracker::admit`]);
//! [`Variant::CheckThenAct`] asks `can_call`, makes the provider call, then records, as the
//! original's parallel fetchers did, and every thread that checked before the first one
//! recorded is admitted.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use quota_tracker::sync::{Backend, DefaultBackend, ShuttleBackend};
use quota_tracker::zoo::Variant;
use quota_tracker::{QuotaConfig, QuotaError, ServiceId, Tracker, TrackerOptions};

use crate::schedule::Scheduler;

/// The service the workload admits to: sendgrid, 100 a day, ceiling 80 by default.
pub const SERVICE: &str = "sendgrid";

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionWorkload {
    /// The admission shape.
    pub variant: Variant,
    /// Concurrent threads, all on [`SERVICE`].
    pub threads: usize,
    /// How long the simulated provider call takes on real threads (under shuttle it is a
    /// yield: a point where another thread may run).
    pub call: Duration,
    /// Every `n`-th admission of a thread is given back, as if its provider call had failed
    /// before it was made (0: none; 1 is read as none, since refunding every admission would
    /// never reach the ceiling).
    pub refund_every: u64,
}

/// One run: what was admitted, given back and counted, against the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionTrial {
    /// The service's limit.
    pub limit: u64,
    /// The admission ceiling (`used` must stay at or under it).
    pub ceiling: u64,
    /// Calls the threads were told were admitted.
    pub admitted: u64,
    /// Admitted calls given back.
    pub refunded: u64,
    /// The highest `used` any admission reported.
    pub max_used: u64,
    /// `used` at the end.
    pub used: u64,
}

impl AdmissionTrial {
    /// How far `used` went past the ceiling at its highest.
    pub fn over_ceiling(&self) -> u64 {
        self.max_used.saturating_sub(self.ceiling)
    }

    /// Whether the tracker's count equals admitted minus refunded (nothing lost or invented).
    pub fn conserved(&self) -> bool {
        self.admitted.checked_sub(self.refunded) == Some(self.used)
    }
}

/// What one thread saw.
#[derive(Debug, Default, Clone, Copy)]
struct ThreadCounts {
    admitted: u64,
    refunded: u64,
    max_used: u64,
}

fn tracker<B: Backend>() -> (Arc<Tracker<B>>, ServiceId) {
    let options = TrackerOptions {
        instance: "admission".into(),
        ..TrackerOptions::default()
    };
    let tracker =
        Tracker::<B>::new_in(QuotaConfig::default(), crate::lost_update::clock(), options);
    let service = tracker
        .service(SERVICE)
        .unwrap_or_else(|e| panic!("workload bug: {e}"));
    (Arc::new(tracker), service)
}

/// Admits until refused, making `call` for each admitted call (refunding every n-th).
fn admit_until_refused<B: Backend>(
    tracker: &Tracker<B>,
    workload: &AdmissionWorkload,
    service: ServiceId,
    call: &dyn Fn(),
) -> Result<ThreadCounts, QuotaError> {
    let mut counts = ThreadCounts::default();
    loop {
        let admission = tracker.admit_as(workload.variant, service, 1, call)?;
        let Some(reservation) = admission.reservation else {
            return Ok(counts);
        };
        counts.admitted += 1;
        counts.max_used = counts.max_used.max(admission.usage.used());
        if workload.refund_every > 1 && counts.admitted % workload.refund_every == 0 {
            tracker.refund(reservation)?;
            counts.refunded += 1;
        }
    }
}

fn trial<B: Backend>(
    tracker: &Tracker<B>,
    service: ServiceId,
    threads: impl IntoIterator<Item = ThreadCounts>,
) -> AdmissionTrial {
    let usage = tracker
        .usage(service)
        .unwrap_or_else(|e| panic!("workload bug: {e}"));
    let mut trial = AdmissionTrial {
        limit: usage.limit(),
        ceiling: usage.ceiling(),
        admitted: 0,
        refunded: 0,
        max_used: usage.used(),
        used: usage.used(),
    };
    for counts in threads {
        trial.admitted += counts.admitted;
        trial.refunded += counts.refunded;
        trial.max_used = trial.max_used.max(counts.max_used);
    }
    trial
}

/// Runs one trial on real OS threads, each provider call a sleep of `workload.call`.
pub fn real_threads(workload: &AdmissionWorkload) -> Result<AdmissionTrial, QuotaError> {
    let (tracker, service) = tracker::<DefaultBackend>();
    let ready = Arc::new(AtomicUsize::new(0));
    let spin = crate::lost_update::spin_limit(workload.threads);
    let handles: Vec<_> = (0..workload.threads)
        .map(|_| {
            let (tracker, ready, workload) = (Arc::clone(&tracker), Arc::clone(&ready), *workload);
            std::thread::spawn(move || {
                crate::lost_update::start_together(&ready, workload.threads, spin);
                let call = || std::thread::sleep(workload.call);
                admit_until_refused(&tracker, &workload, service, &call)
            })
        })
        .collect();
    let mut counts = Vec::with_capacity(handles.len());
    for handle in handles {
        match handle.join() {
            Ok(result) => counts.push(result?),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    Ok(trial(&tracker, service, counts))
}

/// Runs `trials` trials under shuttle's random scheduler seeded with `seed`; deterministic.
pub fn shuttle_schedule(
    workload: &AdmissionWorkload,
    seed: u64,
    trials: usize,
) -> Result<Vec<AdmissionTrial>, QuotaError> {
    shuttle_schedule_with(Scheduler::Random, workload, seed, trials)
}

/// [`shuttle_schedule`] under `scheduler` (random or PCT).
pub fn shuttle_schedule_with(
    scheduler: Scheduler,
    workload: &AdmissionWorkload,
    seed: u64,
    trials: usize,
) -> Result<Vec<AdmissionTrial>, QuotaError> {
    let results = Arc::new(std::sync::Mutex::new(Vec::with_capacity(trials)));
    let sink = Arc::clone(&results);
    let mut config = shuttle::Config::new();
    config.max_steps = shuttle::MaxSteps::None;
    config.silence_warnings = true;
    let workload = *workload;
    scheduler.run(seed, trials, config, move || {
        let (tracker, service) = tracker::<ShuttleBackend>();
        let handles: Vec<_> = (0..workload.threads)
            .map(|_| {
                let tracker = Arc::clone(&tracker);
                shuttle::thread::spawn(move || {
                    let call = shuttle::thread::yield_now;
                    admit_until_refused(&tracker, &workload, service, &call)
                })
            })
            .collect();
        let mut counts = Vec::with_capacity(handles.len());
        let mut failure = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(c)) => counts.push(c),
                Ok(Err(error)) => failure = Some(error),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        let result = match failure {
            None => Ok(trial(&tracker, service, counts)),
            Some(error) => Err(error),
        };
        sink.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(result);
    });
    let mut results = results
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::mem::take(&mut *results).into_iter().collect()
}

/// What a series of admission trials admitted, against the ceiling: the shape `quota-verify
/// repro --workload admission` prints.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AdmissionSummary {
    /// The variant's id.
    pub variant: String,
    /// `threads` or `shuttle`.
    pub scheduler: &'static str,
    /// Concurrent threads.
    pub threads: usize,
    /// Trials run.
    pub trials: usize,
    /// The shuttle seed; `None` for real threads.
    pub seed: Option<u64>,
    /// The service admitted to.
    pub service: &'static str,
    /// Its limit.
    pub limit: u64,
    /// Its admission ceiling: `used` must stay at or under it.
    pub ceiling: u64,
    /// The simulated provider call on real threads, milliseconds (a yield under shuttle).
    pub call_ms: u64,
    /// Every n-th admission of a thread given back (0: none).
    pub refund_every: u64,
    /// Trials in which `used` went past the ceiling.
    pub trials_over_ceiling: usize,
    /// The most calls standing (admitted minus refunded) at the end of one trial.
    pub max_admitted: u64,
    /// How far `used` went past the ceiling at its highest, over all trials.
    pub max_over_ceiling: u64,
    /// Mean calls standing at the end of a trial.
    pub mean_admitted: f64,
    /// Trials whose count differs from admitted minus refunded (lost or invented calls).
    pub trials_not_conserved: usize,
    /// Wall time of all trials, milliseconds; left out of seeded runs (see `Summary`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
}

impl AdmissionSummary {
    /// Summarises `trials` of `workload`.
    pub fn new(
        workload: &AdmissionWorkload,
        seed: Option<u64>,
        trials: &[AdmissionTrial],
        elapsed: Duration,
    ) -> Self {
        let first = trials.first();
        let standing = |t: &AdmissionTrial| t.admitted.saturating_sub(t.refunded);
        let total: u64 = trials.iter().map(standing).sum();
        Self {
            variant: workload.variant.id().to_owned(),
            scheduler: if seed.is_some() { "shuttle" } else { "threads" },
            threads: workload.threads,
            trials: trials.len(),
            seed,
            service: SERVICE,
            limit: first.map_or(0, |t| t.limit),
            ceiling: first.map_or(0, |t| t.ceiling),
            call_ms: u64::try_from(workload.call.as_millis()).unwrap_or(u64::MAX),
            refund_every: workload.refund_every,
            trials_over_ceiling: trials.iter().filter(|t| t.over_ceiling() > 0).count(),
            max_admitted: trials.iter().map(standing).max().unwrap_or(0),
            max_over_ceiling: trials
                .iter()
                .map(AdmissionTrial::over_ceiling)
                .max()
                .unwrap_or(0),
            mean_admitted: if trials.is_empty() {
                0.0
            } else {
                total as f64 / trials.len() as f64
            },
            trials_not_conserved: trials.iter().filter(|t| !t.conserved()).count(),
            elapsed_ms: seed
                .is_none()
                .then(|| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// Whether every trial stayed at or under the ceiling and counted exactly.
    pub fn held(&self) -> bool {
        self.trials_over_ceiling == 0 && self.trials_not_conserved == 0
    }
}
