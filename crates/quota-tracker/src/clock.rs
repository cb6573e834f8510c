//! Time, injected: the core never reads the system clock itself.
//!
//! Injecting the clock lets tests cross a UTC day boundary at will and keeps loom and shuttle
//! models deterministic.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::day::UtcDay;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The UTC calendar day this instant falls on.
    pub fn day(self) -> UtcDay {
        UtcDay::from_days_since_epoch(self.0.div_euclid(MILLIS_PER_DAY))
    }

    /// Milliseconds elapsed from `earlier` to `self` (negative if the clock went backwards).
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Whole seconds since the Unix epoch (for TTL attributes).
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

pub(crate) const MILLIS_PER_DAY: i64 = 86_400_000;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            // A clock set before 1970 is a misconfigured host; treat it as the epoch.
            .unwrap_or_default();
        Timestamp(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to: for tests, models and reproductions.
///
/// It uses a std atomic on purpose: the clock is test scaffolding, not part of the
/// concurrency being checked, so loom and shuttle need not explore its interleavings.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            millis: AtomicI64::new(start.0),
        }
    }

    /// Moves the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        self.millis.store(to.0, Ordering::SeqCst);
    }

    /// Moves the clock forward by `millis`.
    pub fn advance(&self, millis: i64) {
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}
