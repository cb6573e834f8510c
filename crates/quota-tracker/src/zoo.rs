//! The historical variants: the original service's bugs, re-introduced on purpose so the
//! harness can show it catches each one. Built only with the `zoo` cargo feature; nothing in
//! the production API reaches them.
//!
//! A variant is chosen at run time ([`Variant`] parses from its id) and runs the tracker's
//! own state machine ([`QuotaState::record`]) with the locking of the historical shape.
//! Adding one: a new [`Variant`] with its row in [`Variant::ALL`], and its arm in
//! [`Tracker::record_call_as`] (or in whichever operation it breaks).

use std::fmt;
use std::str::FromStr;

use crate::config::ServiceId;
use crate::error::QuotaError;
use crate::state::QuotaState;
use crate::sync::Backend;
use crate::tracker::{Recorded, Tracker};

/// A read-modify-write shape: the fixed one or a historical bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The fix: one critical section over the whole read-modify-write.
    Fixed,
    /// Get a snapshot, modify it, set it back, with no lock across the steps. Each field
    /// access is atomic on its own (as a Python attribute access is under the GIL), but a
    /// thread can interleave between any two of them.
    UnlockedRmw,
    /// The lock is taken for the get and again for the set, released in between: the last
    /// writer's whole snapshot wins, erasing other services' updates (the 48 % bug).
    SplitLock,
}

impl Variant {
    /// Every variant, the fixed one first.
    pub const ALL: &'static [Variant] = &[Variant::Fixed, Variant::UnlockedRmw, Variant::SplitLock];

    /// The id used on the command line and in reports.
    pub fn id(self) -> &'static str {
        match self {
            Variant::Fixed => "fixed",
            Variant::UnlockedRmw => "unlocked-rmw",
            Variant::SplitLock => "split-lock",
        }
    }

    /// One line on what the variant does.
    pub fn description(self) -> &'static str {
        match self {
            Variant::Fixed => "one critical section over get, modify and set",
            Variant::UnlockedRmw => "get, modify, set back field by field with no lock across",
            Variant::SplitLock => "lock for the get, lock again for the set, released between",
        }
    }

    /// Whether this is a historical bug (everything but [`Variant::Fixed`]).
    pub fn is_buggy(self) -> bool {
        self != Variant::Fixed
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A variant id that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown variant {input:?}: expected one of {}", Variant::ALL.iter().map(|v| v.id()).collect::<Vec<_>>().join(", "))]
pub struct ParseVariantError {
    input: String,
}

impl FromStr for Variant {
    type Err = ParseVariantError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Variant::ALL
            .iter()
            .copied()
            .find(|v| v.id() == s)
            .ok_or_else(|| ParseVariantError {
                input: s.to_owned(),
            })
    }
}

impl<B: Backend> Tracker<B> {
    /// Records `count` calls to `service` the way `variant` does. Historical variants do not
    /// schedule syncs: they exist to show the read-modify-write losing updates.
    pub fn record_call_as(
        &self,
        variant: Variant,
        service: ServiceId,
        count: u64,
    ) -> Result<Recorded, QuotaError> {
        let outcome = match variant {
            Variant::Fixed => return self.record_call(service, count),
            Variant::SplitLock => {
                let now = self.now();
                // get_tracker(): a copy, under the lock.
                let mut snapshot = self.with_state(|state| state.clone());
                // tracker.record_call(): on the copy, lock released.
                let outcome = snapshot.record(service, count, now)?;
                // set_cached_tracker(): the copy replaces whatever is there now.
                self.with_state(|state| *state = snapshot);
                outcome
            }
            Variant::UnlockedRmw => {
                let now = self.now();
                let mut snapshot = self.read_field_by_field();
                let outcome = snapshot.record(service, count, now)?;
                self.write_field_by_field(&snapshot);
                outcome
            }
        };
        Ok(Recorded {
            usage: outcome.usage,
            crossed_critical: outcome.crossed_critical,
            sync_due: false,
            reload_due: false,
        })
    }

    /// A snapshot assembled from one access per field, nothing held across them.
    fn read_field_by_field(&self) -> QuotaState {
        let (config, day) = self.with_state(|s| (std::sync::Arc::clone(s.config()), s.day()));
        let mut snapshot = QuotaState::new(config, day);
        for index in 0..snapshot.config().len() {
            let counter = self.with_state(|s| s.counter(index));
            snapshot.set_counter(index, counter);
        }
        let total = self.with_state(|s| s.total_api_calls_today());
        snapshot.set_total(total);
        snapshot
    }

    /// Writes every field of `snapshot` back, one access per field.
    fn write_field_by_field(&self, snapshot: &QuotaState) {
        for index in 0..snapshot.config().len() {
            let counter = snapshot.counter(index);
            self.with_state(|s| s.set_counter(index, counter));
        }
        let total = snapshot.total_api_calls_today();
        self.with_state(|s| s.set_total(total));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_explained() {
        for v in Variant::ALL {
            assert_eq!(v.id().parse::<Variant>(), Ok(*v));
        }
        let err = "rlock".parse::<Variant>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown variant \"rlock\": expected one of fixed, unlocked-rmw, split-lock"
        );
    }
}
