//! Bounded admission: an instance admits only calls covered by a lease the store granted,
//! and the store never grants past the ceiling, so a fleet of instances sharing one store
//! admits at most the ceiling per service and window, together (design invariant 10).
//!
//! A lease is a block of calls of one service's current window. The store keeps, per
//! window, how many calls it granted, and grants a block only with a conditional write that
//! cannot take that past the ceiling ([`Store::grant_lease`]).
//! Under the cache lock an instance admits from its block (one comparison and one
//! subtraction more than the default mode); it asks for the next block outside the lock,
//! when the block runs low or out. What is left of a block goes back to the store when the
//! window ends or the instance stops, riding on a sync batch (so a retried batch gives it
//! back once): at a quiet point, granted − returned == used, per service and window.
//!
//! Per instance and window: admitted − refunded + lease left + returned == granted to it.
//! Summed over the fleet, admitted − refunded ≤ granted ≤ ceiling. A grant whose outcome is
//! unknown counts as not granted until the service asks again in that window with the same
//! ticket, when the store answers what it granted ([`crate::grant_ticket`]); one still in
//! doubt when its window ends is stranded there (fewer admitted, never more).

use std::sync::Arc;

use crate::batch::WindowKey;
use crate::clock::Timestamp;
use crate::config::{QuotaConfig, ServiceId};
use crate::error::ConfigError;
use crate::state::{Counter, QuotaState};
use crate::store::{Store, StoreError, StoreErrorKind};
use crate::sync::Backend;
use crate::synced::{SyncReport, SyncedTracker};
use crate::tracker::Tracker;
use crate::window::Window;

/// How an instance admits when the store cannot grant a lease (unreachable, throttled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutage {
    /// Refuse what the leases held do not cover: the fleet stays at or under the ceiling.
    /// The default.
    Closed,
    /// After a failed grant, admit up to `allowance` calls of the window without a lease,
    /// once per window and instance, with a warning: across N instances the window's
    /// admissions stay at or under `ceiling + N × allowance`.
    Open {
        /// Calls an instance may admit per window without a lease.
        allowance: u64,
    },
}

/// The bounded mode's settings: how large a block to ask for, and what to do in an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasePolicy {
    block_percent: u64,
    outage: LeaseOutage,
}

impl LeasePolicy {
    /// The default block: 5 % of the ceiling (40 calls of a ceiling of 800).
    pub const DEFAULT_BLOCK_PERCENT: u64 = 5;

    /// Leases of `block_percent` of each service's ceiling (rounded up, at least one call),
    /// failing closed. Refuses 0 and anything above 100.
    pub fn new(block_percent: u64) -> Result<Self, ConfigError> {
        if !(1..=100).contains(&block_percent) {
            return Err(ConfigError::InvalidLeaseBlock {
                percent: block_percent,
            });
        }
        Ok(Self {
            block_percent,
            outage: LeaseOutage::Closed,
        })
    }

    /// The same blocks, with `outage` deciding what happens when no lease can be granted.
    pub fn with_outage(mut self, outage: LeaseOutage) -> Self {
        self.outage = outage;
        self
    }

    /// The block size, in percent of the ceiling.
    pub fn block_percent(&self) -> u64 {
        self.block_percent
    }

    /// What happens when the store cannot grant.
    pub fn outage(&self) -> LeaseOutage {
        self.outage
    }

    /// The block asked for at a time, for a window whose ceiling is `ceiling`.
    pub fn block(&self, ceiling: u64) -> u64 {
        crate::state::ceiling_at(ceiling, self.block_percent).max(1)
    }
}

impl Default for LeasePolicy {
    /// Blocks of 5 % of the ceiling, failing closed.
    fn default() -> Self {
        Self {
            block_percent: Self::DEFAULT_BLOCK_PERCENT,
            outage: LeaseOutage::Closed,
        }
    }
}

/// A request for a block of one service's window: hand it to
/// [`Store::grant_lease`], then to
/// [`Tracker::finish_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a lease request must be finished, or the service asks again only when it runs out"]
pub struct LeaseRequest {
    /// The instance asking: with `ticket`, what names the grant in the store.
    pub instance: Arc<str>,
    /// Names the grant among the instance's: a store grants a ticket at most once and
    /// answers a repeat with what it granted ([`crate::grant_ticket`]), so a request in
    /// doubt can be asked again (or 0, once it has forgotten a ticket it answered).
    pub ticket: u64,
    /// The service.
    pub service: ServiceId,
    /// Its name and window: the store's lease item.
    pub key: WindowKey,
    /// How many calls to ask for.
    pub want: u64,
    /// The most the store may have granted for the window, in all: the service's ceiling.
    pub ceiling: u64,
}

/// Calls of a lease given back to the store: the block's remainder at the window's end or
/// at a stop, or a refund of calls admitted in a window that has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseReturn {
    /// The service.
    pub service: ServiceId,
    /// The window the lease was granted for.
    pub window: Window,
    /// Calls given back.
    pub count: u64,
}

/// How a lease request ended, as the tracker took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseReport {
    /// The store granted this many calls (0: the window's ceiling is all granted).
    Granted(u64),
    /// Granted for a window that ended while the request was out: given back with the
    /// next sync.
    Expired(u64),
    /// The grant failed; `allowance` calls were opened without a lease
    /// ([`LeaseOutage::Open`]), 0 when failing closed.
    Failed {
        /// Calls admitted without a lease from now on in this window.
        allowance: u64,
    },
    /// The last request was refused (the window's ceiling is all granted) or failed less
    /// than [`LEASE_RETRY_MS`] ago: not asked again yet, so a fleet at its ceiling or a
    /// store that is down is not asked on every call.
    Backoff,
    /// The tracker is not in the bounded mode: nothing to ask for.
    NotBounded,
}

/// After a grant of nothing or a failed one, how long a service waits before asking again.
pub const LEASE_RETRY_MS: i64 = 1_000;

/// What the state keeps of each service's lease, beside the hot counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LeaseBook {
    /// Requests out for this service.
    pub(crate) asked: u32,
    /// The outage allowance of the current window was used.
    pub(crate) opened: bool,
    /// Calls of the lease the store never granted (the outage allowance): not given back.
    pub(crate) unleased: u64,
    /// No request before this (ms): the last one got nothing.
    pub(crate) retry_at: i64,
}

/// Empties a lease: what of it the store granted (the allowance counts as spent first, so
/// a return never exceeds a grant).
fn drain(counter: &mut Counter, book: &mut LeaseBook) -> u64 {
    let left = std::mem::take(&mut counter.lease);
    let unleased = std::mem::take(&mut book.unleased);
    left.saturating_sub(unleased)
}

/// The lease a service starts a window with: none when bounded, no limit otherwise (so the
/// admission check is the same comparison in both modes).
pub(crate) fn initial_lease(config: &QuotaConfig) -> u64 {
    if config.lease_policy().is_some() {
        0
    } else {
        u64::MAX
    }
}

/// Below this many calls left, a bounded service asks for its next block ahead of need;
/// never in the default mode.
pub(crate) fn low_water(config: &QuotaConfig, ceiling: u64) -> u64 {
    config
        .lease_policy()
        .map_or(0, |policy| policy.block(ceiling).div_ceil(2))
}

/// Closes a lease at the end of its window (the roll calls it in the bounded mode): the
/// remainder goes back, the next window starts with none.
pub(crate) fn close(
    returns: &mut Returns,
    service: usize,
    counter: &mut Counter,
    book: &mut LeaseBook,
) {
    let left = drain(counter, book);
    book.opened = false;
    book.retry_at = i64::MIN;
    returns.give_back(ServiceId(service), counter.window, left);
}

/// What this instance was granted per service and window, and gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Granted {
    service: ServiceId,
    window: Window,
    granted: u64,
    returned: u64,
}

/// Lease calls owed back to the store, each return capped at what the store granted this
/// instance for that window and it has not given back yet (invariant 10: a return never
/// exceeds a grant, whatever refunds and the outage allowance did).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Returns {
    /// To send with the next sync.
    pending: Vec<LeaseReturn>,
    /// Grants of the current and recent windows (older ones are forgotten: a refund of a
    /// call admitted that long ago is not given back, its call stays granted).
    ledger: Vec<Granted>,
}

/// Windows per service the ledger remembers.
const REMEMBERED: usize = 4;

impl Returns {
    /// Notes that the store granted `count` calls of `window`.
    fn granted(&mut self, service: ServiceId, window: Window, count: u64) {
        match self
            .ledger
            .iter_mut()
            .find(|g| g.service == service && g.window == window)
        {
            Some(g) => g.granted = g.granted.saturating_add(count),
            None => {
                self.ledger.push(Granted {
                    service,
                    window,
                    granted: count,
                    returned: 0,
                });
                let mine: Vec<usize> = (0..self.ledger.len())
                    .filter(|&i| self.ledger[i].service == service)
                    .collect();
                if mine.len() > REMEMBERED {
                    self.ledger.remove(mine[0]);
                }
            }
        }
    }

    /// Gives back up to `count` calls of `window`: no more than was granted and not yet
    /// given back.
    fn give_back(&mut self, service: ServiceId, window: Window, count: u64) {
        let Some(grant) = self
            .ledger
            .iter_mut()
            .find(|g| g.service == service && g.window == window)
        else {
            return;
        };
        let count = count.min(grant.granted - grant.returned);
        grant.returned += count;
        self.owe(service, window, count);
    }

    /// Adds `count` to what the next sync sends back for `window`.
    fn owe(&mut self, service: ServiceId, window: Window, count: u64) {
        if count == 0 {
            return;
        }
        match self
            .pending
            .iter_mut()
            .find(|r| r.service == service && r.window == window)
        {
            Some(r) => r.count = r.count.saturating_add(count),
            None => self.pending.push(LeaseReturn {
                service,
                window,
                count,
            }),
        }
    }

    /// Whether nothing is owed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// What is owed, leaving it owed.
    pub(crate) fn owed(&self) -> Vec<LeaseReturn> {
        self.pending.clone()
    }

    /// What is owed, for a sync batch.
    pub(crate) fn take(&mut self) -> Vec<LeaseReturn> {
        std::mem::take(&mut self.pending)
    }

    /// Owes again what a write that surely failed carried (already counted as returned).
    fn restore(&mut self, returns: &[LeaseReturn]) {
        for r in returns {
            self.owe(r.service, r.window, r.count);
        }
    }
}

impl QuotaState {
    /// Calls `service` may still admit from its lease in the current window (`u64::MAX` in
    /// the default mode).
    pub fn lease_left(&self, service: ServiceId) -> u64 {
        let bounded = self.config().lease_policy().is_some();
        self.counters.get(service.0).map_or(0, |c| {
            if bounded {
                // The hot path admitted `unsettled` calls from it since the mark.
                c.lease.saturating_sub(c.unsettled())
            } else {
                c.lease
            }
        })
    }

    /// A request for the next block of `service`'s current window at `now`, or why not (the
    /// default mode, or a back-off). Counts the request as out.
    pub(crate) fn lease_request(
        &mut self,
        service: ServiceId,
        instance: &Arc<str>,
        now: Timestamp,
    ) -> Result<LeaseRequest, LeaseReport> {
        if self.config().lease_policy().is_none() || service.0 >= self.counters.len() {
            return Err(LeaseReport::NotBounded);
        }
        if now.0 < self.leases[service.0].retry_at {
            return Err(LeaseReport::Backoff);
        }
        let ticket = self
            .tickets
            .for_request(service, self.counters[service.0].window);
        Ok(self.request_with(service, ticket, instance))
    }

    /// Requests asking again, with their tickets, for every grant in doubt of the current
    /// windows (none in the default mode): so a stop can take back, and give back, what
    /// landed. Counts them as out; no back-off applies.
    pub(crate) fn doubt_requests(&mut self, instance: &Arc<str>) -> Vec<LeaseRequest> {
        if self.config().lease_policy().is_none() {
            return Vec::new();
        }
        let mut requests = Vec::new();
        for i in 0..self.counters.len() {
            let service = ServiceId(i);
            for ticket in self.tickets.take_in_doubt(service, self.counters[i].window) {
                requests.push(self.request_with(service, ticket, instance));
            }
        }
        requests
    }

    /// A request for a block of `service`'s current window under `ticket` (bounded mode),
    /// counted as out.
    fn request_with(
        &mut self,
        service: ServiceId,
        ticket: u64,
        instance: &Arc<str>,
    ) -> LeaseRequest {
        let counter = &self.counters[service.0];
        let ceiling = counter.normal_ceiling;
        let want = self
            .config()
            .lease_policy()
            .map_or(0, |policy| policy.block(ceiling));
        let request = LeaseRequest {
            instance: Arc::clone(instance),
            ticket,
            service,
            key: WindowKey {
                service: self.config().services()[service.0].name().to_owned(),
                window: counter.window,
            },
            want,
            ceiling,
        };
        self.leases[service.0].asked += 1;
        request
    }

    /// Takes what the store granted for `request` at `now`: into the lease when its window
    /// is still the current one, into the returns otherwise. Nothing granted backs off.
    pub(crate) fn lease_granted(
        &mut self,
        request: &LeaseRequest,
        granted: u64,
        now: Timestamp,
    ) -> LeaseReport {
        let mut state = self.settled();
        let state = &mut *state;
        let i = request.service.0;
        state.leases[i].asked = state.leases[i].asked.saturating_sub(1);
        state.tickets.answered(request.ticket);
        // Only an answer for the current window says anything about it.
        if granted == 0 && request.key.window == state.counters[i].window {
            state.leases[i].retry_at = now.0.saturating_add(LEASE_RETRY_MS);
        }
        state
            .returns
            .granted(request.service, request.key.window, granted);
        if request.key.window == state.counters[i].window {
            let lease = &mut state.counters[i].lease;
            *lease = lease.saturating_add(granted);
            LeaseReport::Granted(granted)
        } else {
            state
                .returns
                .give_back(request.service, request.key.window, granted);
            LeaseReport::Expired(granted)
        }
    }

    /// Notes that the store did not grant `request` at `now` (backing off): failing closed
    /// changes nothing else; failing open opens the window's allowance, once. A grant
    /// `in_doubt` keeps its ticket for the service's next request in that window; the
    /// second value says one could not be kept (stranded).
    pub(crate) fn lease_failed(
        &mut self,
        request: &LeaseRequest,
        now: Timestamp,
        in_doubt: bool,
    ) -> (LeaseReport, bool) {
        let mut state = self.settled();
        let state = &mut *state;
        let i = request.service.0;
        state.leases[i].asked = state.leases[i].asked.saturating_sub(1);
        // Asking again for a grant in doubt: a sure failure of this try says nothing about
        // the first, which may have landed.
        let in_doubt = state.tickets.answered(request.ticket) || in_doubt;
        let stranded = in_doubt
            && !state
                .tickets
                .doubt(request.service, request.key.window, request.ticket);
        let outage = state.config().lease_policy().map(|p| p.outage());
        let current = request.key.window == state.counters[i].window;
        if current {
            state.leases[i].retry_at = now.0.saturating_add(LEASE_RETRY_MS);
        }
        match outage {
            Some(LeaseOutage::Open { allowance }) if current && !state.leases[i].opened => {
                state.leases[i].opened = true;
                state.leases[i].unleased = allowance;
                let lease = &mut state.counters[i].lease;
                *lease = lease.saturating_add(allowance);
                (LeaseReport::Failed { allowance }, stranded)
            }
            _ => (LeaseReport::Failed { allowance: 0 }, stranded),
        }
    }

    /// Gives every lease back (the instance is stopping): nothing is admitted after this
    /// until a new block is granted.
    pub(crate) fn release_leases(&mut self) {
        if self.config().lease_policy().is_none() {
            return;
        }
        let mut state = self.settled();
        let state = &mut *state;
        for (i, counter) in state.counters.iter_mut().enumerate() {
            let left = drain(counter, &mut state.leases[i]);
            state.returns.give_back(ServiceId(i), counter.window, left);
        }
    }

    /// Refunded calls go back to the lease they came from: to the current block, or to the
    /// store when their window has ended. Nothing in the default mode.
    pub(crate) fn refund_lease(&mut self, service: ServiceId, window: Window, count: u64) {
        if self.config().lease_policy().is_none() {
            return;
        }
        if window == self.counters[service.0].window {
            let lease = &mut self.counters[service.0].lease;
            *lease = lease.saturating_add(count);
        } else {
            self.returns.give_back(service, window, count);
        }
    }

    /// Puts returns of a write that surely failed back, for the next sync.
    pub(crate) fn restore_returns(&mut self, returns: &[LeaseReturn]) {
        self.returns.restore(returns);
    }

    /// Whether no request for `service`'s next block is out (so one running low asks).
    pub(crate) fn no_lease_asked(&self, service: ServiceId) -> bool {
        self.leases.get(service.0).is_some_and(|b| b.asked == 0)
    }
}

impl<B: Backend> Tracker<B> {
    /// A request for the next block of `service`'s current window, to grant outside the
    /// lock, or why there is none ([`LeaseReport::NotBounded`], [`LeaseReport::Backoff`]).
    /// Finish it with [`Tracker::finish_lease`].
    pub fn begin_lease(&self, service: ServiceId) -> Result<LeaseRequest, LeaseReport> {
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        cache.state.roll_to(now);
        cache
            .state
            .lease_request(service, &self.options.instance, now)
    }

    /// Takes what the store answered to `request`: the calls granted, or the failure. A
    /// grant in doubt counts as not granted until the service's next request in its window
    /// asks again with its ticket ([`crate::grant_ticket`]).
    pub fn finish_lease(
        &self,
        request: &LeaseRequest,
        answer: Result<u64, &StoreError>,
    ) -> LeaseReport {
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        cache.state.roll_to(now);
        let (report, stranded) = match answer {
            Ok(granted) => (cache.state.lease_granted(request, granted, now), false),
            Err(error) => {
                cache
                    .state
                    .lease_failed(request, now, error.kind == StoreErrorKind::OutcomeUnknown)
            }
        };
        drop(cache);
        if stranded {
            warn_stranded(request);
        }
        if let (LeaseReport::Failed { allowance }, Err(error)) = (report, answer) {
            warn_lease_failed(request, allowance, error);
        }
        report
    }

    /// Calls `service` may still admit from its lease (`u64::MAX` in the default mode).
    pub fn lease_left(&self, service: ServiceId) -> u64 {
        self.cache.lock().state.lease_left(service)
    }

    /// Requests asking again for every grant of the current windows still in doubt, to
    /// finish with [`Tracker::finish_lease`] like any other: a stop sends them before it
    /// gives its leases back ([`SyncedTracker::release_leases`]), so a grant that landed
    /// is given back too and nothing stays granted to nobody.
    #[must_use = "each request must be finished, or its ticket is lost and the service's ahead-of-need refill stays muted"]
    pub fn begin_doubt_requests(&self) -> Vec<LeaseRequest> {
        let mut cache = self.cache.lock();
        cache.state.roll_to(self.clock.now());
        cache.state.doubt_requests(&self.options.instance)
    }

    /// Gives every lease back with the next sync (the instance is stopping). Admission
    /// after this asks the store for new blocks.
    pub fn release_leases(&self) {
        self.cache.lock().state.release_leases();
    }
}

/// Logs a grant in doubt that will not be asked again (too many of its service's are).
#[cold]
#[inline(never)]
fn warn_stranded(request: &LeaseRequest) {
    tracing::warn!(
        service = %request.key.service,
        window = %request.key.window,
        ticket = request.ticket,
        "lease grant in doubt, not asked again: its calls stay unused this window"
    );
}

/// Logs a failed grant (outside the lock).
#[cold]
#[inline(never)]
fn warn_lease_failed(request: &LeaseRequest, allowance: u64, error: &StoreError) {
    if allowance > 0 {
        tracing::warn!(
            %error,
            service = %request.key.service,
            allowance,
            "lease not granted: failing open, admitting up to the outage allowance without one"
        );
    } else {
        tracing::warn!(
            %error,
            service = %request.key.service,
            "lease not granted: failing closed, refusing what the lease held does not cover"
        );
    }
}

impl<S: Store, B: Backend> SyncedTracker<S, B> {
    /// Asks the store for the next block of `service`'s current window and takes the
    /// answer; the cache lock is not held while the store decides.
    pub fn refill(&self, service: ServiceId) -> LeaseReport {
        let request = match self.tracker().begin_lease(service) {
            Ok(request) => request,
            Err(why) => return why,
        };
        let answer = self.store().grant_lease(&request);
        self.tracker()
            .finish_lease(&request, answer.as_ref().copied())
    }

    /// Asks again, outside the lock, for every grant of the current windows still in doubt
    /// ([`Tracker::begin_doubt_requests`]): what landed joins the lease. A stop does this
    /// before it gives its leases back, so nothing stays granted to nobody.
    /// After the first failure the rest are not sent (a store that is down would make a
    /// stop wait a full retry cycle for each): they stay in doubt.
    pub fn settle_grants_in_doubt(&self) {
        let mut failed = None;
        for request in self.tracker().begin_doubt_requests() {
            let answer = match &failed {
                Some(error) => Err(StoreError::clone(error)),
                None => self.store().grant_lease(&request),
            };
            self.tracker()
                .finish_lease(&request, answer.as_ref().copied());
            if let Err(error) = answer {
                failed = Some(error);
            }
        }
    }

    /// Settles the grants in doubt ([`SyncedTracker::settle_grants_in_doubt`]), gives every
    /// lease back and syncs, so the store holds the returns (the instance is stopping). In
    /// the default mode, just a sync.
    pub fn release_leases(&self) -> SyncReport {
        self.settle_grants_in_doubt();
        self.tracker().release_leases();
        self.sync()
    }
}
