//! Workloads that drive the quota tracker concurrently and measure what they lose.
//!
//! The lost-update workload is the original test's shape: thread `i` records `calls` single
//! calls on service `i mod services` (two threads: tiingo and finnhub), then the counters are
//! compared with what was recorded. It runs on real OS threads ([`real_threads`]) or under
//! shuttle's seeded random scheduler ([`shuttle_schedule`]), with any [`Variant`].
//!
//! [`admission`] is the same idea one level up: threads admit, call the provider and admit
//! again until refused, and the count must never pass the ceiling ([`Variant::CheckThenAct`]
//! does).
//!
//! [`histories`] records richer workloads (records, reads, can-call, syncs) as histories for
//! the linearizability checker.

pub mod admission;
pub mod histories;
pub mod lost_update;
pub mod schedule;
pub mod summary;

pub use lost_update::{Trial, Workload, real_threads, shuttle_schedule, shuttle_schedule_with};
pub use quota_tracker::zoo::Variant;
pub use schedule::Scheduler;
pub use summary::Summary;
