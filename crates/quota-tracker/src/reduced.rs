//! Reduced-rate mode: after [`FAILURES_TO_ENTER`] store failures in a row, admission allows
//! only `used < 25 %` of each limit, until [`SUCCESSES_TO_LEAVE`] successes in a row.
//!
//! The original service's later versions did this: while the store is failing, other
//! instances' calls go unseen, so each instance admits from a view that is getting staler and
//! spends less of the quota on its own. The counting happens where a sync's or reload's
//! outcome is reported to the tracker (`Tracker::finish_sync`, `Tracker::finish_reload`),
//! under the cache lock, so it is as atomic as the counters it guards.

/// Store failures in a row that switch admission to the reduced rate.
pub const FAILURES_TO_ENTER: u8 = 3;
/// Store successes in a row that switch it back.
pub const SUCCESSES_TO_LEAVE: u8 = 5;
/// The ceiling in reduced-rate mode, in percent of each limit: calls are admitted while
/// `used` stays below it.
pub const REDUCED_PERCENT: u64 = 25;

/// Consecutive store outcomes, and the mode they put admission in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StoreHealth {
    failures: u8,
    successes: u8,
    reduced: bool,
}

impl StoreHealth {
    /// Whether admission runs at the reduced rate.
    #[inline(always)]
    pub(crate) fn reduced(&self) -> bool {
        self.reduced
    }

    /// Counts one outcome; returns `Some(reduced)` when the mode changed.
    pub(crate) fn note(&mut self, succeeded: bool) -> Option<bool> {
        if succeeded {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if self.reduced && self.successes >= SUCCESSES_TO_LEAVE {
                self.reduced = false;
                return Some(false);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if !self.reduced && self.failures >= FAILURES_TO_ENTER {
                self.reduced = true;
                return Some(true);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(outcomes: &[bool]) -> StoreHealth {
        let mut health = StoreHealth::default();
        for &ok in outcomes {
            health.note(ok);
        }
        health
    }

    #[test]
    fn three_failures_in_a_row_enter_and_five_successes_leave() {
        assert!(!after(&[false, false]).reduced());
        assert!(after(&[false, false, false]).reduced());
        // A success in between starts the count again.
        assert!(!after(&[false, false, true, false, false]).reduced());
        let entered = [false; 3];
        let four = [&entered[..], &[true; 4]].concat();
        assert!(after(&four).reduced(), "four successes are not enough");
        let five = [&entered[..], &[true; 5]].concat();
        assert!(!after(&five).reduced());
        // A failure among the successes starts their count again.
        let broken = [&entered[..], &[true, true, true, true, false, true][..]].concat();
        assert!(after(&broken).reduced());
    }

    #[test]
    fn a_change_of_mode_is_reported_once() {
        let mut health = StoreHealth::default();
        assert_eq!(health.note(false), None);
        assert_eq!(health.note(false), None);
        assert_eq!(health.note(false), Some(true));
        assert_eq!(health.note(false), None);
        for _ in 0..4 {
            assert_eq!(health.note(true), None);
        }
        assert_eq!(health.note(true), Some(false));
        assert_eq!(health.note(true), None);
    }
}
