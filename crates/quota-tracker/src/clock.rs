//! Time, injected: the core never reads the system clock itself.
//!
//! Injecting the clock lets tests cross a UTC day boundary at will and keeps loom and shuttle
//! models deterministic.

use std::sync::Arc;
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

    /// The first of the numbers (sync batch sequences, grant tickets) a tracker started at
    /// this instant issues: its start in ms × [`NUMBERS_PER_MS`], plus one. The store keys
    /// both by instance name, and a name set by hand outlives its process: counting from the
    /// start time, a later process under the same name numbers past an earlier one (unless
    /// the earlier one issued more than [`NUMBERS_PER_MS`] per ms it ran, or the clock went
    /// back between them).
    pub fn first_number(self) -> u64 {
        let ms = u64::try_from(self.0).unwrap_or(0);
        ms.saturating_mul(NUMBERS_PER_MS).saturating_add(1)
    }
}

/// Numbers a tracker may issue per millisecond it has run before it reaches those of a
/// tracker started a millisecond later ([`Timestamp::first_number`]).
pub const NUMBERS_PER_MS: u64 = 1 << 10;

pub(crate) const MILLIS_PER_DAY: i64 = 86_400_000;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// The atomic this clock's time is kept in, if it is one (milliseconds since the epoch):
    /// the tracker then loads it itself, with no virtual call per operation. `None` (the
    /// default) for clocks that compute the time when asked.
    fn shared_millis(&self) -> Option<Arc<AtomicI64>> {
        None
    }
}

/// Reads a clock the cheapest way it allows: one load of its atomic when it has one
/// ([`Clock::shared_millis`]), a call through the trait object otherwise.
pub(crate) struct ClockReader {
    clock: Arc<dyn Clock>,
    millis: Option<Arc<AtomicI64>>,
}

impl ClockReader {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        let millis = clock.shared_millis();
        Self { clock, millis }
    }

    /// The current instant.
    #[inline(always)]
    pub(crate) fn now(&self) -> Timestamp {
        match &self.millis {
            // Relaxed: a timestamp orders nothing else; every load is a plain `mov` on x86.
            Some(millis) => Timestamp(millis.load(Ordering::Relaxed)),
            None => self.ask(),
        }
    }

    // Out of line, so the atomic's load is the fall-through path.
    #[cold]
    #[inline(never)]
    fn ask(&self) -> Timestamp {
        self.clock.now()
    }
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

/// The system clock read by a background thread once a millisecond, so that `now()` is one
/// atomic load: for hot paths, where a system call per operation would cost more than the
/// operation. Timestamps have millisecond resolution (plenty for daily quotas and 60 s sync
/// intervals). The thread stops when the last handle is dropped.
#[derive(Debug)]
pub struct TickingClock {
    millis: Arc<AtomicI64>,
}

impl TickingClock {
    /// Starts the ticking thread and returns the clock.
    pub fn start() -> std::sync::Arc<Self> {
        let clock = std::sync::Arc::new(Self {
            millis: Arc::new(AtomicI64::new(SystemClock.now().0)),
        });
        let weak = std::sync::Arc::downgrade(&clock);
        let spawned = std::thread::Builder::new()
            .name("quota-clock".to_owned())
            .spawn(move || {
                while let Some(clock) = weak.upgrade() {
                    clock.millis.store(SystemClock.now().0, Ordering::Relaxed);
                    drop(clock);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            });
        if let Err(error) = spawned {
            // Without the thread the clock would stand still: say so loudly rather than
            // silently freezing time.
            tracing::error!(%error, "cannot start the clock thread; TickingClock will not advance");
        }
        clock
    }
}

impl Clock for TickingClock {
    #[inline]
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::Relaxed))
    }

    fn shared_millis(&self) -> Option<Arc<AtomicI64>> {
        Some(Arc::clone(&self.millis))
    }
}

/// A clock that only moves when told to: for tests, models and reproductions.
///
/// It uses a std atomic on purpose: the clock is test scaffolding, not part of the
/// concurrency being checked, so loom and shuttle need not explore its interleavings.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            millis: Arc::new(AtomicI64::new(start.0)),
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

    fn shared_millis(&self) -> Option<Arc<AtomicI64>> {
        Some(Arc::clone(&self.millis))
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }

    fn shared_millis(&self) -> Option<Arc<AtomicI64>> {
        (**self).shared_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticking_clock_follows_the_system_clock() {
        let clock = TickingClock::start();
        let first = clock.now();
        assert!((first.0 - SystemClock.now().0).abs() < 1_000);
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert!(clock.now() > first, "the clock thread advances it");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(5));
        assert_eq!(clock.now(), Timestamp(5));
        clock.advance(10);
        assert_eq!(clock.now(), Timestamp(15));
        clock.set(Timestamp(-3));
        assert_eq!(clock.now(), Timestamp(-3));
    }
}
