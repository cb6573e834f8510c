//! What a caller reads about one service: used, remaining, percent, thresholds.

use crate::config::ServiceId;

/// Warning threshold, percent of the limit.
pub const WARN_PERCENT: u64 = 50;
/// Critical threshold, percent of the limit: calls are refused from here on.
pub const CRITICAL_PERCENT: u64 = 80;

/// How close a service is to its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuotaLevel {
    /// Below 50 %.
    Normal,
    /// From 50 % up to 80 %.
    Warning,
    /// From 80 %: `can_call` refuses.
    Critical,
}

/// `used` as a percentage of `limit` is at least `percent`, in exact integer arithmetic.
pub(crate) fn at_least_percent(used: u64, limit: u64, percent: u64) -> bool {
    u128::from(used) * 100 >= u128::from(limit) * u128::from(percent)
}

/// A snapshot of one service's quota, read in one critical section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    service: ServiceId,
    limit: u64,
    used: u64,
    remaining: u64,
    ceiling: u64,
}

impl Usage {
    /// The usage of a service with `limit` after `used` calls, admitting calls while `used`
    /// stays at or under `ceiling`.
    pub(crate) fn new(service: ServiceId, limit: u64, ceiling: u64, used: u64) -> Self {
        Self {
            service,
            limit,
            used,
            remaining: limit.saturating_sub(used),
            ceiling,
        }
    }

    /// [`Usage::new`] with `remaining` computed by the hot path (`crate::fast`), which
    /// knows whether `used` is within the limit and so needs no saturation.
    #[inline(always)]
    pub(crate) fn hot(
        service: ServiceId,
        limit: u64,
        ceiling: u64,
        used: u64,
        remaining: u64,
    ) -> Self {
        debug_assert_eq!(
            remaining,
            limit.saturating_sub(used),
            "the hot path's remaining"
        );
        Self::with_remaining(service, limit, ceiling, used, remaining)
    }

    /// A usage whose `remaining` was read apart from `used`: only the `torn-read` historical
    /// variant builds one.
    #[cfg(feature = "zoo")]
    pub(crate) fn torn(
        service: ServiceId,
        limit: u64,
        ceiling: u64,
        used: u64,
        remaining: u64,
    ) -> Self {
        Self::with_remaining(service, limit, ceiling, used, remaining)
    }

    /// The fields as given: the callers above say why `remaining` is right (or, for the
    /// zoo, wrong).
    #[inline(always)]
    fn with_remaining(
        service: ServiceId,
        limit: u64,
        ceiling: u64,
        used: u64,
        remaining: u64,
    ) -> Self {
        Self {
            service,
            limit,
            used,
            remaining,
            ceiling,
        }
    }

    /// The service this is about.
    pub fn service(&self) -> ServiceId {
        self.service
    }
    /// Calls allowed per period.
    pub fn limit(&self) -> u64 {
        self.limit
    }
    /// Calls recorded today (local and, after a sync or reload, other instances').
    pub fn used(&self) -> u64 {
        self.used
    }
    /// `max(0, limit - used)`.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
    /// `used / limit * 100`.
    pub fn percent_used(&self) -> f64 {
        self.used as f64 / self.limit as f64 * 100.0
    }
    /// Normal, warning (from 50 %) or critical (from 80 %).
    pub fn level(&self) -> QuotaLevel {
        if at_least_percent(self.used, self.limit, CRITICAL_PERCENT) {
            QuotaLevel::Critical
        } else if at_least_percent(self.used, self.limit, WARN_PERCENT) {
            QuotaLevel::Warning
        } else {
            QuotaLevel::Normal
        }
    }
    /// At or above the warning threshold.
    pub fn is_warning(&self) -> bool {
        self.level() >= QuotaLevel::Warning
    }
    /// At or above the critical threshold.
    pub fn is_critical(&self) -> bool {
        self.level() == QuotaLevel::Critical
    }
    /// The admission ceiling when this was read: one more call is admitted only if `used`
    /// stays at or under it. The critical threshold by default (80 % of the limit, rounded
    /// up), the configured percentage otherwise, and 25 % in reduced-rate mode.
    pub fn ceiling(&self) -> u64 {
        self.ceiling
    }
    /// Whether one more call may be made: quota remains and `used` is below the ceiling
    /// (with the default ceiling: not critical). Only advice: between this answer and the
    /// call another thread can take the last slot; [`crate::Tracker::admit`] decides and
    /// records in one step.
    pub fn can_call(&self) -> bool {
        self.remaining > 0 && self.used < self.ceiling
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(limit: u64, used: u64) -> Usage {
        Usage::new(
            ServiceId(0),
            limit,
            crate::state::ceiling_at(limit, CRITICAL_PERCENT),
            used,
        )
    }

    #[test]
    fn arithmetic() {
        let u = usage(500, 120);
        assert_eq!((u.remaining(), u.percent_used()), (380, 24.0));
        assert_eq!(
            usage(60, 100).remaining(),
            0,
            "over the limit never goes negative"
        );
        assert_eq!(usage(60, 100).percent_used().round(), 167.0);
    }

    #[test]
    fn thresholds_are_inclusive_and_exact() {
        // 100/day: 49 normal, 50 warning, 79 warning, 80 critical.
        let levels: Vec<_> = [0, 49, 50, 79, 80, 100, 101]
            .iter()
            .map(|&used| usage(100, used).level())
            .collect();
        use QuotaLevel::*;
        assert_eq!(
            levels,
            [
                Normal, Normal, Warning, Warning, Critical, Critical, Critical
            ]
        );
        // 60/minute: 80 % is 48 calls exactly; 47 is below.
        assert!(!usage(60, 47).is_critical());
        assert!(usage(60, 48).is_critical());
        // A limit whose 80 % is fractional: 7 * 0.8 = 5.6, so 5 is not critical and 6 is.
        assert!(!usage(7, 5).is_critical());
        assert!(usage(7, 6).is_critical());
        // Huge values do not overflow the comparison.
        assert!(usage(u64::MAX, u64::MAX).is_critical());
        assert!(!usage(u64::MAX, u64::MAX / 2).is_critical());
    }

    #[test]
    fn can_call_stops_at_critical_not_at_the_limit() {
        assert!(usage(100, 79).can_call());
        assert!(!usage(100, 80).can_call(), "refused from 80 %");
        assert!(!usage(1, 1).can_call(), "no quota left");
        assert!(usage(1, 0).can_call());
    }
}
