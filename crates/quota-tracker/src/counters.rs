//! A state's per-service counters in fixed slots: every [`ServiceId`] names a slot, and a
//! slot past the configured services never lets the hot path record, so the hot path finds
//! its counter with a mask and a shift, with no bounds check and no pointer to load.
//!
//! A configuration holds at most [`MAX_SERVICES`] services ([`crate::QuotaConfig::new`]
//! refuses more), so every id is below it. An id from another configuration with more
//! services than this one lands on an unused slot, whose bounds (0) send the call to the
//! full path, which refuses it as out of range (`QuotaError::ServiceIdOutOfRange`), as
//! before.

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::clock::Timestamp;
use crate::config::{Period, ServiceId};
use crate::state::Counter;
use crate::window::Window;

/// The most services one configuration may hold (a power of two: ids are masked with it).
pub const MAX_SERVICES: usize = 64;

const _: () = assert!(MAX_SERVICES.is_power_of_two());

/// The counters of the configured services, first in `slots`; derefs to those only.
#[derive(Clone)]
pub(crate) struct Counters {
    len: usize,
    slots: Box<[Counter; MAX_SERVICES]>,
}

impl Counters {
    /// `counters` in the first slots, the rest unused. At most [`MAX_SERVICES`], as
    /// [`crate::QuotaConfig::new`] ensures (a debug assertion; more would be left out).
    pub(crate) fn new(counters: Vec<Counter>) -> Self {
        debug_assert!(counters.len() <= MAX_SERVICES, "more services than slots");
        let len = counters.len().min(MAX_SERVICES);
        let mut slots = Box::new([unused(); MAX_SERVICES]);
        slots[..len].copy_from_slice(&counters[..len]);
        Self { len, slots }
    }

    /// The slot `service` names, for the hot path: an unused slot's bounds are 0, so the
    /// hot path changes nothing in it.
    #[inline(always)]
    pub(crate) fn slot_mut(&mut self, service: ServiceId) -> &mut Counter {
        // A mask, not a bounds check: ids are below MAX_SERVICES by construction.
        &mut self.slots[service.0 & (MAX_SERVICES - 1)]
    }
}

/// A slot no configured service uses: bounds 0, so the hot path never records in it.
fn unused() -> Counter {
    let window = Window::containing(Period::Day, Timestamp(0));
    Counter {
        used: 0,
        record_below: 0,
        admit_below: 0,
        limit: 0,
        remaining_mask: 0,
        ceiling: 0,
        mark: 0,
        pending: 0,
        today: 0,
        lease: 0,
        next_roll: i64::MAX,
        normal_ceiling: 0,
        lease_low: 0,
        window,
        critical_seen: false,
    }
}

impl Deref for Counters {
    type Target = [Counter];
    fn deref(&self) -> &[Counter] {
        &self.slots[..self.len]
    }
}

impl DerefMut for Counters {
    fn deref_mut(&mut self) -> &mut [Counter] {
        &mut self.slots[..self.len]
    }
}

impl PartialEq for Counters {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Counters {}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::clock::{ManualClock, Timestamp};
    use crate::config::{Period, QuotaConfig, ServiceConfig};
    use crate::tracker::Tracker;

    use super::MAX_SERVICES;

    /// `count` minute services of a large limit, named `s0`, `s1`, ….
    fn config(count: usize) -> QuotaConfig {
        let services = (0..count)
            .map(|i| ServiceConfig::new(format!("s{i}"), 1_000_000, Period::Minute))
            .collect::<Result<Vec<_>, _>>();
        services
            .and_then(QuotaConfig::new)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_id_of_a_larger_configuration_is_refused_on_the_hot_path_and_counts_nowhere() {
        let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
        let tracker = Tracker::new(config(3), clock);
        let mine = tracker.service("s0").unwrap_or_else(|e| panic!("{e}"));
        // Warm the hot path: its bounds are set and the clock is before `wake_at`.
        tracker.record_call(mine, 1).expect("counted");
        let larger = config(MAX_SERVICES);
        for name in ["s3", "s4", "s63"] {
            let foreign = larger.service(name).unwrap_or_else(|e| panic!("{e}"));
            let error = tracker
                .record_call(foreign, 1)
                .expect_err("out of range here");
            assert!(error.to_string().contains("out of range"), "{error}");
            assert!(tracker.admit(foreign, 1).is_err(), "admitted {name}");
        }
        let state = tracker.raw_state();
        let used: Vec<_> = state.counters.iter().map(|c| c.used).collect();
        assert_eq!(used, [1, 0, 0], "a foreign id changed a counter");
        assert_eq!(state.total_api_calls_today(), 1);
    }

    #[test]
    fn the_unused_slots_are_not_part_of_the_state() {
        let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
        let tracker = Tracker::new(config(2), clock);
        let state = tracker.raw_state();
        assert_eq!(state.counters.len(), 2);
        assert_eq!(format!("{:?}", state.counters).matches("used").count(), 2);
    }
}
