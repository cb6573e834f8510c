//! Fleet verification: tracker instances as real processes sharing one store, faults
//! injected from outside (SIGKILL, SIGSTOP/SIGCONT, SIGTERM, the store's server killed and
//! restarted on its volume, or paused), and a verdict from the journals the workers kept.
//!
//! Jepsen's shape: the clients record a history ([`journal`]) that survives their crash,
//! the faults come from outside ([`faults`], [`coordinator`]), and a checker judges the
//! store against the history afterwards ([`verdict`]). `quota-verify fleet` is the command;
//! `quota-verify fleet-worker` runs [`worker`] in each process.

pub mod coordinator;
pub mod emulator;
pub mod faults;
pub mod journal;
pub mod proxy;
pub mod verdict;
pub mod worker;

use quota_tracker::{LeasePolicy, Period, QuotaConfig, ServiceConfig};

/// The services worker `index` admits to: `capped`, shared by the whole fleet, reaches its
/// ceiling within seconds (1,000 a day, ceiling 800); `steady-<index>`, the worker's own,
/// never does (1,000,000 a day), so the store's count of it says exactly what this one
/// worker's calls became (a loss or a double of one worker is not hidden by another's).
pub fn services(bounded: bool, index: usize) -> QuotaConfig {
    let service = |name: &str, limit| {
        ServiceConfig::new(name, limit, Period::Day).unwrap_or_else(|e| panic!("{e}"))
    };
    let own = format!("steady-{index}");
    let config = QuotaConfig::new(vec![service("capped", 1_000), service(&own, 1_000_000)])
        .unwrap_or_else(|e| panic!("{e}"));
    if bounded {
        config.with_leases(LeasePolicy::default())
    } else {
        config
    }
}

/// The ceiling of a limit at `percent` (rounded up, as the tracker's).
pub fn ceiling(limit: u64, percent: u64) -> u64 {
    (u128::from(limit) * u128::from(percent)).div_ceil(100) as u64
}
