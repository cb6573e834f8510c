//! A grant ticket's attribute is removed only by a write that raises its instance's floor to
//! at least that ticket, and no ticket at or under the floor is granted: a removed ticket is
//! never granted again, and a lease item keeps about one `grant_` attribute per instance
//! rather than one per grant.
//!
//! The store notes each ticket it answered (granted, or found granted), per instance and lease
//! item. The next grant there carries them: its write `REMOVE`s their `grant_` attributes and
//! `SET`s `ticket_floor_<instance>` to the highest, under the condition that the floor is below
//! the new ticket and not above the new floor (so it only rises). Safety asks nothing of the
//! tracker: whatever is removed is under the floor. A repeat of a removed ticket (an attempt
//! the server ran after its answer, or a request asked again after its answer was lost) is
//! answered 0: those calls are stranded, never granted twice. Tickets count from the process's
//! start (`quota_tracker::Timestamp::first_number`), so a later process under the same name is
//! above an earlier one's floor.
//!
//! What stays on an item: each instance's last answered ticket, those a cancelled or failed
//! grant was carrying (noted again for the next), and those of a process that ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;
use quota_tracker::{LeaseRequest, Timestamp, Window};

use crate::item::{floor_attribute, grant_attribute, number};

/// Tickets one write removes at most (each is a name in its expression); more wait for the
/// next grant.
const MOST_PER_WRITE: usize = 16;

/// A lease item as seen by one instance: the instance, the service and the window.
type Key = (Arc<str>, String, Window);

/// The tickets this store answered and no write has removed yet, per instance and item.
#[derive(Debug, Default)]
pub(crate) struct Answered(Mutex<HashMap<Key, Vec<u64>>>);

impl Answered {
    /// What the next write for `request`'s item removes: up to [`MOST_PER_WRITE`] tickets
    /// answered there, never the request's own. Notes of windows ended by `now` are dropped
    /// (their items expire).
    pub(crate) fn take(&self, request: &LeaseRequest, now: Timestamp) -> Pruning<'_> {
        let key = key(request);
        let mut notes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        notes.retain(|(_, _, window), _| window.end() > now);
        let noted = notes.entry(key.clone()).or_default();
        let mut tickets = Vec::new();
        noted.retain(|&t| {
            let take = t != request.ticket && tickets.len() < MOST_PER_WRITE;
            if take {
                tickets.push(t);
            }
            !take
        });
        Pruning {
            answered: self,
            floor: tickets.iter().copied().max(),
            key,
            tickets,
            landed: false,
        }
    }

    /// Notes that `request`'s ticket was answered: the next grant on its item may remove it.
    pub(crate) fn note(&self, request: &LeaseRequest) {
        self.put(key(request), &[request.ticket]);
    }

    fn put(&self, key: Key, tickets: &[u64]) {
        let mut notes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let noted = notes.entry(key).or_default();
        for &ticket in tickets {
            if !noted.contains(&ticket) {
                noted.push(ticket);
            }
        }
    }
}

fn key(request: &LeaseRequest) -> Key {
    (
        Arc::clone(&request.instance),
        request.key.service.clone(),
        request.key.window,
    )
}

/// The tickets one grant's writes remove; noted again on drop unless a write carrying them
/// landed.
#[derive(Debug)]
pub(crate) struct Pruning<'a> {
    answered: &'a Answered,
    key: Key,
    tickets: Vec<u64>,
    /// The floor the write sets: the highest ticket removed, or the item's floor if higher.
    floor: Option<u64>,
    landed: bool,
}

impl Pruning<'_> {
    /// The item's floor is `floor`: the write must not lower it.
    pub(crate) fn raise_to(&mut self, floor: u64) {
        if let Some(mine) = &mut self.floor {
            *mine = (*mine).max(floor);
        }
    }

    /// A write carrying these tickets landed: they are removed.
    pub(crate) fn landed(&mut self) {
        self.landed = true;
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
        if !self.landed && !self.tickets.is_empty() {
            self.answered.put(self.key.clone(), &self.tickets);
        }
    }
}
