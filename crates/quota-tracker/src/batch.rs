//! What crosses between the core and a store: deltas out, stored counts in.
//!
//! The core never performs I/O. Under the cache lock it hands out a [`SyncBatch`]; the caller
//! writes it with whatever store it has, after releasing the lock, and reports a
//! [`SyncOutcome`] back.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{QuotaConfig, ServiceId};
use crate::day::UtcDay;
use crate::lease::LeaseReturn;
use crate::window::Window;

/// Calls recorded on one UTC day and not yet in the store, per service.
///
/// A delta is signed: a reservation given back after its call was synced (a refund) is a
/// negative delta for the day it was admitted on (design invariant 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayDeltas {
    /// The day the calls were recorded on (the store item they belong to).
    pub day: UtcDay,
    /// Per service, in configuration order: calls recorded minus calls refunded.
    pub deltas: Vec<i64>,
}

impl DayDeltas {
    /// The sum over services: what `total_api_calls_today` must change by.
    pub fn total(&self) -> i64 {
        self.deltas
            .iter()
            .fold(0i64, |sum, d| sum.saturating_add(*d))
    }

    /// True when no service has a delta.
    pub fn is_empty(&self) -> bool {
        self.deltas.iter().all(|d| *d == 0)
    }
}

/// Calls recorded in one minute, hour or month window of one service and not yet in that
/// window's store item (a day limit's window is the day item, so it has none of these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowDelta {
    /// The service.
    pub service: ServiceId,
    /// The window the calls were recorded in.
    pub window: Window,
    /// Calls recorded minus calls refunded.
    pub delta: i64,
}

/// Pending deltas summed for the store: per day item and per window item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Per day, oldest first.
    pub days: Vec<DayDeltas>,
    /// Per minute, hour or month window, oldest first.
    pub windows: Vec<WindowDelta>,
    /// Lease calls to give back ([`crate::lease`]; bounded mode only).
    pub returns: Vec<LeaseReturn>,
}

impl Pending {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty() && self.windows.is_empty() && self.returns.is_empty()
    }
}

/// Deltas to add to the store, taken from pending under the cache lock.
///
/// `(instance, seq)` identifies the batch: a store that remembers the last sequence applied
/// per instance can refuse a retry of a batch that already landed (design invariant 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncBatch {
    /// The tracker instance that produced it.
    pub instance: Arc<str>,
    /// Increases by one per new batch of this instance; a retried batch keeps its number.
    /// The first is [`crate::Timestamp::first_number`] of the tracker's start, so a later
    /// process reusing the instance name numbers past an earlier one's batches.
    pub seq: u64,
    /// The service names, so a store can map `deltas` to attributes.
    pub config: Arc<QuotaConfig>,
    /// One entry per day with deltas, oldest first: the day items' `<service>_used`.
    pub days: Vec<DayDeltas>,
    /// The same calls per minute, hour or month window, for those windows' items.
    pub windows: Vec<WindowDelta>,
    /// Lease calls given back, for the lease items (bounded mode; at most once per batch,
    /// as the deltas).
    pub returns: Vec<LeaseReturn>,
}

impl SyncBatch {
    /// The deltas as `(day, service name, delta)`, skipping zeros.
    pub fn named_deltas(&self) -> impl Iterator<Item = (UtcDay, &str, i64)> + '_ {
        self.days.iter().flat_map(move |day| {
            self.config
                .names()
                .zip(&day.deltas)
                .filter(|(_, delta)| **delta != 0)
                .map(move |(name, delta)| (day.day, name, *delta))
        })
    }

    /// The batch's deltas, per day and per window.
    pub fn pending(&self) -> Pending {
        Pending {
            days: self.days.clone(),
            windows: self.windows.clone(),
            returns: self.returns.clone(),
        }
    }

    /// The window deltas as `(service name, window, delta)`.
    pub fn named_windows(&self) -> impl Iterator<Item = (&str, Window, i64)> + '_ {
        self.windows.iter().filter_map(move |w| {
            let service = self.config.services().get(w.service.index())?;
            Some((service.name(), w.window, w.delta))
        })
    }

    /// The lease returns as `(service name, window, calls given back)`.
    pub fn named_returns(&self) -> impl Iterator<Item = (&str, Window, u64)> + '_ {
        self.returns.iter().filter_map(move |r| {
            let service = self.config.services().get(r.service.index())?;
            Some((service.name(), r.window, r.count))
        })
    }

    /// All deltas of the batch, summed over days and services (refunds count negative).
    pub fn total(&self) -> i64 {
        self.days
            .iter()
            .fold(0i64, |sum, d| sum.saturating_add(d.total()))
    }
}

/// A window whose count a reload reads: a service and one of its windows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowKey {
    /// The service's name.
    pub service: String,
    /// The window.
    pub window: Window,
}

/// One window's count as a store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWindow {
    /// Which service and window.
    pub key: WindowKey,
    /// Calls counted in the window by every instance.
    pub used: u64,
}

/// A day's counters as a store holds them, by service name, with the windows read or
/// written alongside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDay {
    /// The day of the item.
    pub day: UtcDay,
    /// `<service>_used` counters; services missing from the item count as 0.
    pub used: BTreeMap<String, u64>,
    /// Window counts of minute, hour and month limits (windows with no item are absent).
    pub windows: Vec<StoredWindow>,
    /// `total_api_calls_today`, when the store keeps it.
    pub total: Option<u64>,
}

impl StoredDay {
    /// An item for `day` with the given counters and no windows.
    pub fn new(day: UtcDay, used: BTreeMap<String, u64>) -> Self {
        Self {
            day,
            used,
            windows: Vec::new(),
            total: None,
        }
    }

    /// The same item with its `total_api_calls_today`.
    pub fn with_total(mut self, total: u64) -> Self {
        self.total = Some(total);
        self
    }

    /// The same item with these window counts.
    pub fn with_windows(mut self, windows: Vec<StoredWindow>) -> Self {
        self.windows = windows;
        self
    }

    /// The stored count of `service` in `window`, if the store returned it.
    pub fn window(&self, service: &str, window: Window) -> Option<u64> {
        self.windows
            .iter()
            .find(|w| w.key.service == service && w.key.window == window)
            .map(|w| w.used)
    }

    /// The stored counter of `service`, 0 when absent.
    pub fn used(&self, service: &str) -> u64 {
        self.used.get(service).copied().unwrap_or(0)
    }
}

/// How writing a [`SyncBatch`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The deltas are in the store. `fresh` carries the store's counters for the current day
    /// after the write, when the store returned them (DynamoDB's `ALL_NEW`), so other
    /// instances' calls become visible without a separate read.
    Applied {
        /// The current day's item after the write, if the store returned it.
        fresh: Option<StoredDay>,
    },
    /// The write did not happen: the deltas go back into pending, merged with newer ones.
    Failed,
    /// The write may or may not have landed (a timeout after sending). The batch is kept as
    /// it is and retried with the same `seq`, so a store that deduplicates applies it once.
    Unknown,
}
