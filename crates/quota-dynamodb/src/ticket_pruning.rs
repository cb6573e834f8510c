//! A grant ticket's attribute is removed only by a write that raises its instance's floor to
//! at least that ticket, and no ticket at or under the floor is granted: a removed ticket is
//! never granted again, and a lease item keeps about one `grant_` attribute per instance
//! rather than one per grant.
//!
//! The store notes each ticket it answered whose attribute is on the item (granted, or found
//! granted), per instance and lease item. The next grant there carries them: its write
//! `REMOVE`s their `grant_` attributes and `SET`s `ticket_floor_<instance>` to the highest,
//! under the condition that the floor is below the new ticket and not above the new floor (so
//! it only rises). Safety asks nothing of the tracker: whatever is removed is under the floor.
//! So that no floor passes a ticket that may still be granted, a grant carries only tickets
//! below every other ticket of the instance open on the item in this store (in flight, or
//! ended in doubt, which the tracker asks again). Tickets count from the process's start
//! (`quota_tracker::Timestamp::first_number`), so a later process under the same name is above
//! an earlier one's floor.
//!
//! What stays on an item: per process that granted in its window, its last answered ticket
//! and its floor (about 100 bytes: a month item of a fleet that starts some 4,000 processes
//! a month still reaches DynamoDB's 400 KB), and the tickets of grants never answered.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;
use quota_tracker::{LeaseRequest, Timestamp, Window};

use crate::item::{floor_attribute, grant_attribute, number};

/// Tickets one write removes at most (each is a name in its expression); more wait for the
/// next grant.
const MOST_PER_WRITE: usize = 16;

/// Answered tickets noted per item at most; past it the lowest are forgotten (their
/// attributes stay: more bytes, never a second grant).
const MOST_NOTED: usize = 256;

/// A lease item as seen by one instance: the instance, the service and the window.
type Key = (Arc<str>, String, Window);

/// What this store knows of one instance's tickets on one item.
#[derive(Debug, Default)]
struct Notes {
    /// Answered with an attribute on the item, not yet removed.
    answered: BTreeSet<u64>,
    /// In flight, or ended in doubt (the tracker asks again): no floor may reach them,
    /// or asking again would be answered 0 while the window has room.
    open: BTreeSet<u64>,
    /// The highest floor this store wrote or read on the item.
    floor: Option<u64>,
}

impl Notes {
    /// Raises the known floor to at least `floor`.
    fn floor_at_least(&mut self, floor: u64) {
        self.floor = Some(self.floor.map_or(floor, |known| known.max(floor)));
    }
}

/// The tickets this store answered and no write has removed yet, per instance and item.
#[derive(Debug, Default)]
pub(crate) struct Answered(Mutex<HashMap<Key, Notes>>);

impl Answered {
    /// What the next write for `request`'s item removes: up to [`MOST_PER_WRITE`] answered
    /// tickets, each below every other ticket of the instance open on the item. Marks the
    /// request's ticket open until the returned [`Pruning`] is dropped. Notes of windows
    /// ended by `now` are dropped (their items expire).
    pub(crate) fn take(&self, request: &LeaseRequest, now: Timestamp) -> Pruning<'_> {
        let key = key(request);
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|(_, _, window), _| window.end() > now);
        let notes = all.entry(key.clone()).or_default();
        let below = notes.open.first().copied().unwrap_or(u64::MAX);
        let tickets: Vec<u64> = notes
            .answered
            .range(..below)
            .filter(|&&t| t != request.ticket)
            .take(MOST_PER_WRITE)
            .copied()
            .collect();
        for ticket in &tickets {
            notes.answered.remove(ticket);
        }
        notes.open.insert(request.ticket);
        let floor = tickets
            .iter()
            .copied()
            .max()
            .map(|mine| mine.max(notes.floor.unwrap_or(0)));
        Pruning {
            answered: self,
            key,
            ticket: request.ticket,
            tickets,
            floor,
            landed: false,
            own_answered: false,
            in_doubt: false,
        }
    }

    fn with_notes(&self, key: &Key, change: impl FnOnce(&mut Notes)) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        change(all.entry(key.clone()).or_default());
    }
}

fn key(request: &LeaseRequest) -> Key {
    (
        Arc::clone(&request.instance),
        request.key.service.clone(),
        request.key.window,
    )
}

/// One grant's view of its item's notes: the tickets its writes remove, and what becomes of
/// its own ticket. Settled on drop: the removed tickets are noted again unless a write
/// carrying them landed; its own ticket is noted answered if its attribute is on the item,
/// and stays open if the grant ended in doubt.
#[derive(Debug)]
pub(crate) struct Pruning<'a> {
    answered: &'a Answered,
    key: Key,
    ticket: u64,
    tickets: Vec<u64>,
    /// The floor the write sets: the highest ticket removed, or a higher known floor.
    floor: Option<u64>,
    landed: bool,
    own_answered: bool,
    in_doubt: bool,
}

impl Pruning<'_> {
    /// The item's floor is `floor`: the write must not lower it.
    pub(crate) fn raise_to(&mut self, floor: u64) {
        if let Some(mine) = &mut self.floor {
            *mine = (*mine).max(floor);
        }
        self.answered.with_notes(&self.key, |notes| {
            notes.floor_at_least(floor);
        });
    }

    /// A write of this grant landed: what it carried is removed, and its own ticket's
    /// attribute is on the item.
    pub(crate) fn landed(&mut self) {
        self.landed = true;
        self.own_answered = true;
    }

    /// The item holds this grant's ticket already (an earlier attempt landed).
    pub(crate) fn found_own(&mut self) {
        self.own_answered = true;
    }

    /// The grant ended in doubt: the tracker will ask again with its ticket.
    pub(crate) fn in_doubt(&mut self) {
        self.in_doubt = true;
    }

    /// Adds the floor to a grant's write for `request`: the condition that keeps removed
    /// tickets from being granted (returned, to `AND` with the rest), the floor's `SET` and
    /// the `REMOVE` clause (if anything is removed), with their names and values.
    pub(crate) fn add_to(
        &self,
        request: &LeaseRequest,
        names: &mut HashMap<String, String>,
        values: &mut HashMap<String, AttributeValue>,
        sets: &mut Vec<String>,
    ) -> (String, Option<String>) {
        names.insert("#floor".to_owned(), floor_attribute(&request.instance));
        values.insert(":ticket_no".to_owned(), number(request.ticket));
        let Some(floor) = self.floor else {
            let condition = "(attribute_not_exists(#floor) OR #floor < :ticket_no)".to_owned();
            return (condition, None);
        };
        values.insert(":floor".to_owned(), number(floor));
        sets.push("#floor = :floor".to_owned());
        let mut removed = Vec::new();
        for (i, &ticket) in self.tickets.iter().enumerate() {
            let name = format!("#removed{i}");
            names.insert(name.clone(), grant_attribute(&request.instance, ticket));
            removed.push(name);
        }
        let condition =
            "(attribute_not_exists(#floor) OR (#floor < :ticket_no AND #floor <= :floor))";
        (condition.to_owned(), Some(removed.join(", ")))
    }
}

impl Drop for Pruning<'_> {
    fn drop(&mut self) {
        let (ticket, tickets) = (self.ticket, std::mem::take(&mut self.tickets));
        let (landed, own_answered, in_doubt) = (self.landed, self.own_answered, self.in_doubt);
        let floor = self.floor.filter(|_| landed);
        self.answered.with_notes(&self.key, |notes| {
            if !landed {
                notes.answered.extend(tickets);
            }
            if let Some(floor) = floor {
                notes.floor_at_least(floor);
            }
            // Answered and in doubt exclude each other: a grant in doubt found nothing.
            if !in_doubt {
                notes.open.remove(&ticket);
            }
            if own_answered {
                notes.answered.insert(ticket);
            }
            while notes.answered.len() > MOST_NOTED {
                notes.answered.pop_first();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    //! What a grant carries and what it leaves noted; the writes themselves are checked
    //! against the emulator (the dynamodb `store` suite).

    use super::*;
    use quota_tracker::{Period, QuotaConfig, WindowKey};

    const START: i64 = 1_800_000_000_000;

    fn request(ticket: u64) -> LeaseRequest {
        LeaseRequest {
            instance: "a".into(),
            ticket,
            service: QuotaConfig::default()
                .service("finnhub")
                .unwrap_or_else(|e| panic!("{e}")),
            key: WindowKey {
                service: "finnhub".to_owned(),
                window: Window::containing(Period::Minute, Timestamp(START)),
            },
            want: 10,
            ceiling: 1_000,
        }
    }

    /// Grants `ticket` to the end, its write landing.
    fn granted(answered: &Answered, ticket: u64) -> Vec<u64> {
        let mut pruning = answered.take(&request(ticket), Timestamp(START));
        pruning.landed();
        pruning.tickets.clone()
    }

    #[test]
    fn a_landed_grant_removes_what_it_carried_and_leaves_its_own_ticket_noted() {
        let answered = Answered::default();
        assert!(granted(&answered, 1).is_empty());
        assert_eq!(granted(&answered, 2), [1]);
        assert_eq!(
            granted(&answered, 3),
            [2],
            "1 was removed by the second grant"
        );
    }

    #[test]
    fn a_grant_that_did_not_land_notes_what_it_carried_again_but_not_its_own_ticket() {
        let answered = Answered::default();
        granted(&answered, 1);
        // Refused (nothing left), failed, or cancelled: nothing it carried was removed.
        drop(answered.take(&request(2), Timestamp(START)));
        let mut found = answered.take(&request(3), Timestamp(START));
        assert_eq!(found.tickets, [1]);
        // Its own ticket found on the item (an earlier attempt landed): noted.
        found.found_own();
        drop(found);
        assert_eq!(granted(&answered, 4), [1, 3]);
    }

    #[test]
    fn no_floor_reaches_a_ticket_in_flight_or_in_doubt() {
        let answered = Answered::default();
        granted(&answered, 1);
        let mut doubtful = answered.take(&request(2), Timestamp(START));
        assert_eq!(doubtful.tickets, [1]);
        // 2 is in flight: 3 is not removed by 4 (the floor would pass 2).
        assert!(granted(&answered, 3).is_empty());
        assert!(granted(&answered, 4).is_empty());
        doubtful.in_doubt();
        drop(doubtful);
        // 2 ended in doubt: 1 (carried, not removed) is removed by the next grant, but
        // nothing at or above 2, until 2 is asked again and answered.
        assert_eq!(granted(&answered, 5), [1]);
        assert!(granted(&answered, 2).is_empty());
        assert_eq!(granted(&answered, 6), [2, 3, 4, 5]);
    }

    #[test]
    fn a_write_carries_at_most_sixteen_and_the_rest_wait() {
        let answered = Answered::default();
        for ticket in 1..=40 {
            let mut pruning = answered.take(&request(ticket), Timestamp(START));
            pruning.found_own();
        }
        let carried = granted(&answered, 41);
        assert_eq!(carried, (1..=MOST_PER_WRITE as u64).collect::<Vec<_>>());
        assert_eq!(granted(&answered, 42).len(), MOST_PER_WRITE);
    }

    #[test]
    fn the_floor_written_is_never_below_one_known() {
        let answered = Answered::default();
        granted(&answered, 1);
        let mut pruning = answered.take(&request(2), Timestamp(START));
        assert_eq!(pruning.floor, Some(1));
        pruning.raise_to(30);
        assert_eq!(pruning.floor, Some(30));
        drop(pruning);
        // The next write starts from the floor read.
        let next = answered.take(&request(3), Timestamp(START));
        assert_eq!(next.floor, Some(30));
    }

    #[test]
    fn notes_of_an_ended_window_are_dropped() {
        let answered = Answered::default();
        granted(&answered, 1);
        // The instant the window ends: its notes go.
        let later = Timestamp(START + 60_000);
        let mut next_window = request(9);
        next_window.key.window = Window::containing(Period::Minute, later);
        drop(answered.take(&next_window, later));
        let all = answered.0.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(all.keys().all(|(_, _, window)| window.end() > later));
    }

    #[test]
    fn at_most_so_many_tickets_stay_noted_the_lowest_forgotten_first() {
        let answered = Answered::default();
        let note = |ticket| {
            answered
                .take(&request(ticket), Timestamp(START))
                .found_own()
        };
        let noted = || {
            let all = answered.0.lock().unwrap_or_else(PoisonError::into_inner);
            all.values().map(|n| n.answered.len()).sum::<usize>()
        };
        for ticket in 1..=250 {
            note(ticket);
        }
        // A grant holding 16 of them while 30 more are noted, then putting its 16 back.
        let held = answered.take(&request(1_000), Timestamp(START));
        for ticket in 251..=280 {
            note(ticket);
        }
        drop(held);
        assert_eq!(noted(), MOST_NOTED);
        let all = answered.0.lock().unwrap_or_else(PoisonError::into_inner);
        let lowest = all.values().filter_map(|n| n.answered.first()).min();
        assert_eq!(lowest, Some(&25), "the lowest are forgotten first");
    }
}
