//! Loss statistics over trials, in the shape the `repro` command prints.

use serde::Serialize;

use crate::lost_update::{Trial, Workload};

/// What a series of trials lost, per trial and overall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The variant's id.
    pub variant: String,
    /// `threads` or `shuttle`.
    pub scheduler: &'static str,
    /// Concurrent threads.
    pub threads: usize,
    /// Calls per thread.
    pub calls_per_thread: u64,
    /// Trials run.
    pub trials: usize,
    /// The shuttle seed; `None` for real threads.
    pub seed: Option<u64>,
    /// Service names, in the order of `expected`.
    pub services: Vec<String>,
    /// Calls each service should count per trial.
    pub expected: Vec<u64>,
    /// Calls per trial over all services.
    pub expected_total: u64,
    /// Trials in which at least one call was lost.
    pub trials_with_loss: usize,
    /// Mean calls lost per trial.
    pub mean_lost: f64,
    /// Most calls lost in one trial.
    pub max_lost: u64,
    /// `mean_lost / expected_total`.
    pub loss_rate: f64,
    /// Trials that counted calls never made (a double count); 0 for every variant so far.
    pub trials_with_excess: usize,
    /// Trials whose `total_api_calls_today` differs from the calls made.
    pub trials_with_wrong_total: usize,
    /// Wall time of all trials, milliseconds. Left out of seeded (shuttle) runs, whose output
    /// is byte-for-byte the same on every run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
}

impl Summary {
    /// Summarises `trials` of `workload`.
    pub fn new(
        workload: &Workload,
        services: Vec<String>,
        seed: Option<u64>,
        trials: &[Trial],
        elapsed: std::time::Duration,
    ) -> Self {
        let expected = workload.expected(services.len());
        let expected_total: u64 = expected.iter().sum();
        let lost: Vec<u64> = trials.iter().map(Trial::lost).collect();
        let mean_lost = if trials.is_empty() {
            0.0
        } else {
            lost.iter().sum::<u64>() as f64 / trials.len() as f64
        };
        Self {
            variant: workload.variant.id().to_owned(),
            scheduler: if seed.is_some() { "shuttle" } else { "threads" },
            threads: workload.threads,
            calls_per_thread: workload.calls,
            trials: trials.len(),
            seed,
            services,
            expected,
            expected_total,
            trials_with_loss: lost.iter().filter(|l| **l > 0).count(),
            mean_lost,
            max_lost: lost.iter().copied().max().unwrap_or(0),
            loss_rate: if expected_total == 0 {
                0.0
            } else {
                mean_lost / expected_total as f64
            },
            trials_with_excess: trials.iter().filter(|t| t.excess() > 0).count(),
            trials_with_wrong_total: trials
                .iter()
                .filter(|t| t.observed_total != expected_total)
                .count(),
            elapsed_ms: seed
                .is_none()
                .then(|| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// Whether every trial counted exactly the calls made.
    pub fn exact(&self) -> bool {
        self.trials_with_loss == 0
            && self.trials_with_excess == 0
            && self.trials_with_wrong_total == 0
    }
}
