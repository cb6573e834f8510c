//! A lease grant is decided once per ticket: a request whose answer was lost is asked
//! again with the same ticket, and the store answers what it granted then instead of
//! granting again, so a grant in doubt is recovered within its window, never doubled.
//!
//! Each request carries a ticket ([`crate::LeaseRequest::ticket`]) that the store keeps
//! with the grant ([`crate::Store::grant_lease`]). When a grant ends in doubt
//! ([`crate::StoreErrorKind::OutcomeUnknown`]), the tracker keeps its ticket, and the
//! service's next request for the same window carries it again: if the first try landed,
//! the store answers its grant and the calls reach the lease; if not, the ticket is
//! granted as new (or answered 0 by a store whose ticket floor passed it, which DynamoDB's
//! does only when another store of the same instance name raised it). A ticket in doubt when its window ends is dropped: those calls stay
//! stranded in the ended window (fewer admitted, never more).
//!
//! Tickets count up from the tracker's start time ([`Timestamp::first_number`]), so a later
//! process reusing an instance name does not reuse the tickets of an earlier one.

use crate::clock::Timestamp;
use crate::config::ServiceId;
use crate::window::Window;

/// Grants in doubt a service keeps to ask again; a further one is stranded (logged).
const KEPT_IN_DOUBT: usize = 8;

/// A grant whose outcome is unknown: its ticket, to ask again in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InDoubt {
    service: ServiceId,
    window: Window,
    ticket: u64,
}

/// The tickets of one tracker: the next one to issue, those of grants in doubt, and those
/// of grants in doubt being asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tickets {
    next: u64,
    in_doubt: Vec<InDoubt>,
    /// Taken out of `in_doubt` for a request now out: whatever that request's failure, the
    /// first try may have landed, so a failure puts them back ([`Tickets::answered`]).
    asking_again: Vec<u64>,
}

impl Tickets {
    /// Tickets of a tracker started at `now`.
    pub(crate) fn starting(now: Timestamp) -> Self {
        Self {
            next: now.first_number(),
            in_doubt: Vec::new(),
            asking_again: Vec::new(),
        }
    }

    /// The ticket of `service`'s next request in `window`: one of its grants in doubt in
    /// that window if there is one, a new one otherwise. Grants in doubt of `service`'s
    /// earlier windows are dropped (stranded there).
    pub(crate) fn for_request(&mut self, service: ServiceId, window: Window) -> u64 {
        self.in_doubt
            .retain(|d| d.service != service || d.window == window);
        if let Some(i) = self.in_doubt.iter().position(|d| d.service == service) {
            let ticket = self.in_doubt.swap_remove(i).ticket;
            self.asking_again.push(ticket);
            return ticket;
        }
        let ticket = self.next;
        self.next = self.next.saturating_add(1);
        ticket
    }

    /// Takes the tickets of `service`'s grants in doubt in `window` (dropping those of
    /// earlier windows), to ask them all again.
    pub(crate) fn take_in_doubt(&mut self, service: ServiceId, window: Window) -> Vec<u64> {
        let mut taken = Vec::new();
        self.in_doubt.retain(|d| {
            if d.service != service {
                return true;
            }
            if d.window == window {
                taken.push(d.ticket);
            }
            false
        });
        self.asking_again.extend(&taken);
        taken
    }

    /// Notes that the request carrying `ticket` was answered (granted or failed); returns
    /// whether it was asking again for a grant in doubt (whose failure leaves it in doubt).
    pub(crate) fn answered(&mut self, ticket: u64) -> bool {
        match self.asking_again.iter().position(|&t| t == ticket) {
            Some(i) => {
                self.asking_again.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Keeps `ticket`, whose grant is in doubt, to ask again. Returns false when too many
    /// are kept already (the grant stays stranded). Doubts of `service`'s windows that ended
    /// before `window` are dropped first: stranded already, they must not take this
    /// window's places.
    pub(crate) fn doubt(&mut self, service: ServiceId, window: Window, ticket: u64) -> bool {
        self.in_doubt
            .retain(|d| d.service != service || d.window.end() > window.start());
        let kept = self
            .in_doubt
            .iter()
            .filter(|d| d.service == service)
            .count();
        if kept >= KEPT_IN_DOUBT {
            return false;
        }
        self.in_doubt.push(InDoubt {
            service,
            window,
            ticket,
        });
        true
    }

    /// Grants of `service` in doubt (kept to ask again).
    #[cfg(test)]
    pub(crate) fn in_doubt(&self, service: ServiceId) -> usize {
        self.in_doubt
            .iter()
            .filter(|d| d.service == service)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Period;

    fn minute(at: i64) -> Window {
        Window::containing(Period::Minute, Timestamp(at))
    }

    #[test]
    fn a_ticket_in_doubt_is_asked_again_in_its_window_and_dropped_after() {
        let mut tickets = Tickets::starting(Timestamp(2));
        let (a, b) = (ServiceId(0), ServiceId(1));
        let first = tickets.for_request(a, minute(0));
        assert_eq!(first, 2 * crate::clock::NUMBERS_PER_MS + 1);
        assert!(tickets.doubt(a, minute(0), first));
        // Another service gets a new ticket; the same service gets the one in doubt back.
        assert_eq!(tickets.for_request(b, minute(0)), first + 1);
        assert_eq!(tickets.for_request(a, minute(0)), first);
        assert_eq!(tickets.in_doubt(a), 0);
        assert!(tickets.doubt(a, minute(0), first));
        // The next window: the doubt is dropped, a new ticket issued.
        assert_eq!(tickets.for_request(a, minute(60_000)), first + 2);
        assert_eq!(tickets.in_doubt(a), 0);
    }

    #[test]
    fn only_so_many_doubts_are_kept_per_service() {
        let mut tickets = Tickets::starting(Timestamp(0));
        let service = ServiceId(0);
        for t in 0..KEPT_IN_DOUBT as u64 {
            assert!(tickets.doubt(service, minute(0), t));
        }
        assert!(!tickets.doubt(service, minute(0), 99));
        assert!(tickets.doubt(ServiceId(1), minute(0), 99));
    }

    #[test]
    fn doubts_of_an_ended_window_leave_room_for_the_next_windows() {
        let mut tickets = Tickets::starting(Timestamp(0));
        let service = ServiceId(0);
        for t in 0..KEPT_IN_DOUBT as u64 {
            assert!(tickets.doubt(service, minute(0), t));
        }
        // The first minute's are stranded already: the next minute keeps its own.
        for t in 0..KEPT_IN_DOUBT as u64 {
            assert!(tickets.doubt(service, minute(60_000), 100 + t), "doubt {t}");
        }
        assert_eq!(tickets.in_doubt(service), KEPT_IN_DOUBT);
        assert_eq!(tickets.for_request(service, minute(60_000)), 100);
    }

    #[test]
    fn a_clock_before_the_epoch_starts_tickets_at_one() {
        let mut tickets = Tickets::starting(Timestamp(-5));
        assert_eq!(tickets.for_request(ServiceId(0), minute(0)), 1);
    }
}
