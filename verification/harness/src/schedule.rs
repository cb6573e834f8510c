//! Which shuttle scheduler explores the schedules: seeded random (the default) or PCT.
//!
//! PCT (probabilistic concurrency testing, Burckhardt et al., ASPLOS 2010) gives threads
//! random priorities and changes them at `depth - 1` random points; a bug that needs `d`
//! ordering constraints is found with probability at least `1 / (n * k^(d-1))` per schedule
//! (`n` threads, `k` steps). Random switching at every step is what the harness used first.
//! Both are deterministic from their seed.

use shuttle::scheduler::{PctScheduler, RandomScheduler};

/// A shuttle scheduler, as the workloads take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// `RandomScheduler`: a random runnable thread at every step.
    Random,
    /// `PctScheduler` with this depth (the ordering constraints it targets).
    Pct {
        /// The bug depth PCT is tuned for (at least 1).
        depth: usize,
    },
}

impl Scheduler {
    /// Runs `body` under `iterations` schedules from `seed`.
    pub fn run(
        self,
        seed: u64,
        iterations: usize,
        config: shuttle::Config,
        body: impl Fn() + Send + Sync + 'static,
    ) {
        match self {
            Scheduler::Random => {
                let scheduler = RandomScheduler::new_from_seed(seed, iterations);
                shuttle::Runner::new(scheduler, config).run(body);
            }
            Scheduler::Pct { depth } => {
                let scheduler = PctScheduler::new_from_seed(seed, depth.max(1), iterations);
                shuttle::Runner::new(scheduler, config).run(body);
            }
        }
    }

    /// The name in reports: `random` or `pct(depth 3)`.
    pub fn label(self) -> String {
        match self {
            Scheduler::Random => "random".to_owned(),
            Scheduler::Pct { depth } => format!("pct(depth {depth})"),
        }
    }
}
