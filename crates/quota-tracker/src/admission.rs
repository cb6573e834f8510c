//! Admission: a call is admitted only if it keeps `used` at or under the ceiling, and is
//! recorded in the same critical section as the decision (design invariant 8).
//!
//! `can_call` followed later by `record_call` is two critical sections with a provider call
//! between them: every caller that checked before the first one recorded is admitted (the
//! `check-then-act` variant of the zoo). [`QuotaState::admit`] decides and records in one
//! step; a [`Reservation`] given back with [`QuotaState::refund`] (the provider call was not
//! made) is a negative delta for the day it was admitted on, so conservation counts it:
//! the store ends at admitted minus refunded.

use crate::clock::Timestamp;
use crate::config::ServiceId;
use crate::day::UtcDay;
use crate::error::QuotaError;
use crate::pending::{self, Bucket};
use crate::state::{QuotaState, RecordOutcome};
use crate::usage::Usage;
use crate::window::Window;

/// Calls admitted and recorded: hand it to a refund if the provider call was not made.
///
/// Not `Clone`: a reservation is given back at most once.
#[derive(Debug, PartialEq, Eq)]
pub struct Reservation {
    service: ServiceId,
    count: u64,
    day: UtcDay,
    window: Window,
    owner: u64,
}

impl Reservation {
    /// A reservation of `count` calls to `service` on `day`, in `window`, by the state
    /// numbered `owner`.
    pub(crate) fn new(
        service: ServiceId,
        count: u64,
        day: UtcDay,
        window: Window,
        owner: u64,
    ) -> Self {
        Self {
            service,
            count,
            day,
            window,
            owner,
        }
    }

    /// The service the calls were admitted to.
    pub fn service(&self) -> ServiceId {
        self.service
    }

    /// How many calls were admitted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The UTC day they were counted on (a refund goes to that day's count).
    pub fn day(&self) -> UtcDay {
        self.day
    }

    /// The window they were counted in (a refund goes to that window's count).
    pub fn window(&self) -> Window {
        self.window
    }
}

/// Why calls were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// They would take `used` past the ceiling.
    Ceiling,
    /// They fit under the ceiling as this instance sees it, but its lease does not cover
    /// them (bounded mode): ask the store for a block, then try again.
    NoLease,
}

/// What one admission decided.
#[derive(Debug, PartialEq, Eq)]
pub struct AdmitOutcome {
    /// `Some` when admitted (and recorded); `None` when refused (nothing changed).
    pub reservation: Option<Reservation>,
    /// Why not, when refused.
    pub refusal: Option<Refusal>,
    /// The service's usage right after the decision, from the same critical section.
    pub usage: Usage,
    /// The admitted calls took the service to 80 % for the first time in its window: sync
    /// now.
    pub crossed_critical: bool,
}

impl QuotaState {
    /// Admits `count` calls to `service` at `now` if they keep `used` at or under the
    /// ceiling ([`Usage::ceiling`]), recording them in the same step; refuses them otherwise,
    /// changing nothing. Bad input is an error, as for [`QuotaState::record`].
    pub fn admit(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Result<AdmitOutcome, QuotaError> {
        let recorded = self.try_admit(service, count, now)?;
        Ok(match recorded.refusal {
            None => AdmitOutcome {
                reservation: Some(self.reservation(service, count)),
                refusal: None,
                usage: recorded.usage,
                crossed_critical: recorded.crossed_critical,
            },
            Some(refusal) => AdmitOutcome {
                reservation: None,
                refusal: Some(refusal),
                usage: recorded.usage,
                crossed_critical: false,
            },
        })
    }

    /// The decision and the recording of [`QuotaState::admit`], in one flat outcome
    /// (`refusal` set when refused, `lease_low` when the lease is left below its low-water
    /// mark): the full path, with every check, of what the tracker's hot path
    /// ([`crate::fast`]) does for calls that need no attention.
    pub(crate) fn try_admit(
        &mut self,
        service: ServiceId,
        count: u64,
        now: Timestamp,
    ) -> Result<RecordOutcome, QuotaError> {
        let mut state = self.settled();
        state.prepare(service, count, now)?;
        let fits = state.fits(service, count);
        let counter = &state.counters[service.0];
        let refusal = match (fits, count <= counter.lease) {
            (true, true) => {
                let low = counter.lease - count < counter.lease_low;
                let mut recorded = state.add::<true>(service, count, now)?;
                recorded.lease_low = low;
                return Ok(recorded);
            }
            (true, false) => Refusal::NoLease,
            (false, _) => Refusal::Ceiling,
        };
        Ok(RecordOutcome {
            usage: Usage::new(
                service,
                counter.limit,
                state.ceiling_of(counter),
                counter.used,
            ),
            crossed_critical: false,
            lease_low: false,
            refusal: Some(refusal),
        })
    }

    /// Whether `count` more calls keep `service` at or under its ceiling (an overflowing
    /// sum is past any ceiling).
    fn fits(&self, service: ServiceId, count: u64) -> bool {
        let counter = &self.counters[service.0];
        counter
            .used
            .checked_add(count)
            .is_some_and(|after| after <= self.ceiling_of(counter))
    }

    /// A reservation of `count` calls just admitted to `service`: its current window and day.
    #[inline(always)]
    pub(crate) fn reservation(&self, service: ServiceId, count: u64) -> Reservation {
        let window = self.counters[service.0].window;
        Reservation::new(service, count, self.day, window, self.owner)
    }

    /// Gives `reservation` back: its calls no longer count, in the window and on the day
    /// they were admitted. Whatever of that is still local goes down (the window's `used`,
    /// today's count and total); the rest is a negative delta owed to that window's and
    /// day's store items. Returns the service's usage after.
    pub fn refund(&mut self, reservation: Reservation) -> Result<Usage, QuotaError> {
        self.settled().refund_settled(reservation)
    }

    fn refund_settled(&mut self, reservation: Reservation) -> Result<Usage, QuotaError> {
        let Reservation {
            service,
            count,
            day,
            window,
            owner,
        } = reservation;
        let counters = self.counters.len();
        let Some(counter) = self.counters.get(service.0).copied() else {
            return Err(QuotaError::ServiceIdOutOfRange {
                index: service.0,
                services: counters,
            });
        };
        let (same_window, same_day) = (window == counter.window, day == self.day);
        let refused = || self.no_reservation(service, count, day, counter.used);
        let ours = owner == self.owner && day <= self.day;
        let Some(signed) = i64::try_from(count).ok().filter(|_| ours) else {
            return Err(refused());
        };
        let used = if same_window {
            counter.used.checked_sub(count)
        } else {
            Some(counter.used)
        };
        let (today, total) = if same_day {
            (
                counter.today.checked_sub(count),
                self.total_today.checked_sub(count),
            )
        } else {
            (Some(counter.today), Some(self.total_today))
        };
        let (Some(used), Some(today), Some(total)) = (used, today, total) else {
            return Err(refused());
        };
        if same_window && same_day {
            let Some(pending) = counter.pending.checked_sub(signed) else {
                return Err(refused());
            };
            self.counters[service.0].pending = pending;
        } else {
            let bucket = Bucket {
                service: service.0,
                day,
                window,
                delta: -signed,
            };
            pending::add(&mut self.carried, bucket);
        }
        let slot = &mut self.counters[service.0];
        slot.set_used(used);
        slot.today = today;
        self.total_today = total;
        self.refund_lease(service, window, count);
        self.usage(service)
    }

    #[cold]
    fn no_reservation(&self, service: ServiceId, count: u64, day: UtcDay, used: u64) -> QuotaError {
        QuotaError::RefundWithoutReservation {
            service: self.config().services()[service.0].name().to_owned(),
            day: day.to_string(),
            count,
            used,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{Period, QuotaConfig, ServiceConfig};

    fn day() -> UtcDay {
        UtcDay::from_ymd(2026, 12, 1).expect("valid")
    }

    fn at(hours: i64) -> Timestamp {
        Timestamp(day().start().0 + hours * 3_600_000)
    }

    /// One service with limit 10: the default ceiling is 8.
    fn state(ceiling_percent: u64) -> (QuotaState, ServiceId) {
        let service = ServiceConfig::new("api", 10, Period::Day).expect("valid");
        let config = QuotaConfig::new(vec![service])
            .and_then(|c| c.with_admission_ceiling(ceiling_percent))
            .expect("valid");
        let id = config.service("api").expect("configured");
        (QuotaState::new(Arc::new(config), day()), id)
    }

    #[test]
    fn admits_up_to_the_ceiling_and_refuses_past_it_changing_nothing() {
        let (mut s, api) = state(80);
        for expected in 1..=8 {
            let out = s.admit(api, 1, at(1)).expect("valid");
            assert!(out.reservation.is_some(), "call {expected} admitted");
            assert_eq!(out.usage.used(), expected);
        }
        let before = s.clone();
        let out = s.admit(api, 1, at(1)).expect("valid");
        assert_eq!(out.reservation, None, "the 9th call would pass 8");
        assert_eq!((out.usage.used(), out.usage.ceiling()), (8, 8));
        assert_eq!(s, before, "a refusal changes nothing");
    }

    #[test]
    fn a_count_that_does_not_fit_is_refused_whole() {
        let (mut s, api) = state(80);
        s.admit(api, 7, at(1)).expect("valid");
        assert_eq!(s.admit(api, 2, at(1)).expect("valid").reservation, None);
        assert!(s.admit(api, 1, at(1)).expect("valid").reservation.is_some());
        let (mut s, api) = state(80);
        assert_eq!(
            s.admit(api, u64::MAX, at(1)).expect("valid").reservation,
            None
        );
    }

    #[test]
    fn the_ceiling_can_be_raised_to_the_limit() {
        let (mut s, api) = state(100);
        assert!(
            s.admit(api, 10, at(1))
                .expect("valid")
                .reservation
                .is_some()
        );
        assert_eq!(s.admit(api, 1, at(1)).expect("valid").reservation, None);
    }

    #[test]
    fn admission_agrees_with_can_call_for_one_call() {
        for limit in 1..=300 {
            let service = ServiceConfig::new("api", limit, Period::Day).expect("valid");
            let config = Arc::new(QuotaConfig::new(vec![service]).expect("valid"));
            let mut s = QuotaState::new(config, day());
            let api = ServiceId(0);
            loop {
                let could = s.usage(api).expect("valid").can_call();
                let admitted = s.admit(api, 1, at(1)).expect("valid").reservation.is_some();
                assert_eq!(
                    could, admitted,
                    "limit {limit}, used {}",
                    s.counters[0].used
                );
                if !admitted {
                    break;
                }
            }
        }
    }

    #[test]
    fn reduced_rate_admits_below_25_percent_only_after_three_failures_and_five_successes_end_it() {
        let (mut s, api) = state(80);
        s.admit(api, 2, at(1)).expect("valid");
        for _ in 0..2 {
            assert_eq!(s.note_store_outcome(false), None);
        }
        assert!(
            s.admit(api, 1, at(1)).expect("valid").reservation.is_some(),
            "2 failures"
        );
        // used = 3 now; the third failure enters reduced mode: ceiling 25 % of 10 = 3.
        assert_eq!(s.note_store_outcome(false), Some(true));
        let refused = s.admit(api, 1, at(1)).expect("valid");
        assert_eq!(refused.reservation, None, "used 3 is not below 25 % of 10");
        assert_eq!(refused.usage.ceiling(), 3);
        assert!(!s.usage(api).expect("valid").can_call());
        for _ in 0..4 {
            assert_eq!(s.note_store_outcome(true), None);
        }
        assert_eq!(
            s.admit(api, 1, at(1)).expect("valid").reservation,
            None,
            "4 successes"
        );
        assert_eq!(s.note_store_outcome(true), Some(false));
        assert!(
            s.admit(api, 1, at(1)).expect("valid").reservation.is_some(),
            "5 successes"
        );
        assert_eq!(s.usage(api).map(|u| u.ceiling()), Ok(8));
    }

    #[test]
    fn bad_input_is_an_error_and_changes_nothing() {
        let (mut s, api) = state(80);
        let before = s.clone();
        assert!(matches!(
            s.admit(api, 0, at(1)),
            Err(QuotaError::ZeroCount { .. })
        ));
        assert!(matches!(
            s.admit(ServiceId(3), 1, at(1)),
            Err(QuotaError::ServiceIdOutOfRange { .. })
        ));
        assert_eq!(s, before);
    }

    #[test]
    fn a_refund_on_the_same_day_takes_the_calls_back_from_used_pending_and_total() {
        let (mut s, api) = state(80);
        let first = s
            .admit(api, 3, at(1))
            .expect("valid")
            .reservation
            .expect("admitted");
        s.take_pending(); // synced: the refund must become a negative delta
        let second = s
            .admit(api, 2, at(1))
            .expect("valid")
            .reservation
            .expect("admitted");
        assert_eq!(s.refund(first).map(|u| u.used()), Ok(2));
        assert_eq!(s.pending(api), -1, "2 pending, 3 refunded after their sync");
        assert_eq!(s.total_api_calls_today(), 2);
        assert_eq!(s.refund(second).map(|u| u.used()), Ok(0));
        assert_eq!(s.pending_days()[0].deltas, vec![-3]);
    }

    #[test]
    fn a_refund_after_midnight_is_owed_to_the_day_of_its_admission() {
        let (mut s, api) = state(80);
        let reservation = s
            .admit(api, 4, at(23))
            .expect("valid")
            .reservation
            .expect("ok");
        s.take_pending();
        s.admit(api, 1, at(25)).expect("valid"); // the next day
        let usage = s.refund(reservation).expect("valid");
        assert_eq!(usage.used(), 1, "today's count is untouched");
        let owed = s.take_pending().days;
        assert_eq!(owed.len(), 2);
        assert_eq!((owed[0].day, owed[0].deltas.clone()), (day(), vec![-4]));
        assert_eq!(
            (owed[1].day, owed[1].deltas.clone()),
            (day().next(), vec![1])
        );
    }

    #[test]
    fn a_refund_that_no_admission_covers_is_refused() {
        let (mut s, api) = state(80);
        let (mut other, _) = state(80);
        let foreign = other
            .admit(api, 5, at(1))
            .expect("valid")
            .reservation
            .expect("ok");
        s.admit(api, 2, at(1)).expect("valid");
        let before = s.clone();
        let err = s.refund(foreign).expect_err("refused");
        assert!(matches!(
            err,
            QuotaError::RefundWithoutReservation {
                count: 5,
                used: 2,
                ..
            }
        ));
        assert!(
            err.to_string().contains("does not match a reservation"),
            "{err}"
        );
        assert_eq!(s, before);
    }
}
