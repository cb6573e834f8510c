//! Leases in DynamoDB: a grant is one conditional `UpdateItem` that cannot take a window's
//! `granted` past the ceiling, so the bounded mode's bound holds whatever the instances do
//! at the same time.
//!
//! The lease item of a service and window (`SK = LEASE#<service>#<window>`) holds `granted`:
//! calls granted minus calls given back. A grant `ADD`s the block under the condition
//! `granted <= ceiling - want` (or no item yet). When the condition fails, a consistent read
//! tells what is left, and the grant is tried again for that much, under the same kind of
//! condition; 0 when nothing is left. Returns ride on sync batches (`ADD` of a negative
//! count, under the batch's sequence condition, so a retried batch gives back once).
//!
//! A grant is decided once per ticket (`quota_tracker::grant_ticket`): the same write sets
//! `grant_<instance>_<ticket>` to the calls granted, under the further condition that the
//! attribute does not exist yet. A retry of an attempt that landed (the SDK's, after a lost
//! answer, or the tracker's next request with the ticket of a grant in doubt) fails that
//! condition, and the read that follows finds the attribute and answers what it holds: a
//! grant whose answer was lost is recovered, never granted twice. A grant that gives up
//! after an attempt that may have landed is reported as [`StoreErrorKind::OutcomeUnknown`].
//! The next grant of the same instance on the item removes the attributes of tickets already
//! answered, raising the instance's ticket floor ([`crate::ticket_pruning`]): an item keeps
//! about two attributes per process that granted in its window (still not bounded for a
//! fleet that starts thousands of processes in one long window; see ARCHITECTURE.md).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use quota_tracker::{LeaseRequest, StoreError, StoreErrorKind, SyncBatch, Window};

use crate::item::{
    LEASE_GRANTED, floor_attribute, grant_attribute, granted, lease_key, lease_stamps, number,
    optional_count,
};
use crate::store::{DynamoStore, Sent, Update, unreadable};
use crate::ticket_pruning::Pruning;

/// Conditional grants tried before giving up when other instances keep taking what is
/// left in between.
const GRANT_ROUNDS: u32 = 8;

/// What keeps a grant under the ceiling (`granted + want <= ceiling`, written without an
/// addition DynamoDB's conditions do not have) and decides a ticket once (with the floor's
/// condition, [`crate::ticket_pruning`]).
const GRANT_CONDITION: &str =
    "(attribute_not_exists(#granted) OR #granted <= :room) AND attribute_not_exists(#ticket)";

impl DynamoStore {
    /// Grants up to `request.want` calls of the request's window, never taking the window's
    /// `granted` past `request.ceiling`. Returns the calls granted (0: all granted already,
    /// or the ticket is at or under its instance's ticket floor: see ARCHITECTURE.md).
    pub async fn grant_lease(&self, request: &LeaseRequest) -> Result<u64, StoreError> {
        let mut pruning = self.answered.take(request, self.clock.now());
        let granted = self.grant_pruning(request, &mut pruning).await;
        if granted
            .as_ref()
            .is_err_and(|e| e.kind == StoreErrorKind::OutcomeUnknown)
        {
            pruning.in_doubt();
        }
        granted
    }

    /// [`DynamoStore::grant_lease`], each write also removing what `pruning` carries.
    async fn grant_pruning(
        &self,
        request: &LeaseRequest,
        pruning: &mut Pruning<'_>,
    ) -> Result<u64, StoreError> {
        let key = lease_key(&request.key.service, request.key.window);
        let ticket = grant_attribute(&request.instance, request.ticket);
        let floor = floor_attribute(&request.instance);
        let mut want = request.want.min(request.ceiling);
        for _ in 0..GRANT_ROUNDS {
            if want == 0 {
                return Ok(0);
            }
            if self.try_grant(request, &ticket, want, pruning).await? {
                pruning.landed();
                return Ok(want);
            }
            // The ticket was granted already, is under the floor, or someone else's grant came
            // first: see which, and what is left. A try before may have landed (the condition
            // may be the ticket's): a failure from here on leaves the grant in doubt.
            let item = self
                .get(key.clone())
                .await
                .map_err(in_doubt)?
                .unwrap_or_default();
            let read = |attribute: &str| {
                optional_count(&item, attribute).map_err(|e| in_doubt(unreadable("grant", &e)))
            };
            if let Some(earlier) = read(&ticket)? {
                pruning.found_own();
                return Ok(earlier);
            }
            if let Some(floor) = read(&floor)? {
                if floor >= request.ticket {
                    // A later ticket of the same instance name was removed first (by another
                    // store of it): this one can no longer be granted, and never was (its
                    // attribute would be here).
                    tracing::warn!(
                        instance = %request.instance, ticket = request.ticket, floor,
                        "a grant ticket at or under its instance's ticket floor: nothing granted"
                    );
                    return Ok(0);
                }
                pruning.raise_to(floor);
            }
            let granted = granted(&item).map_err(|e| in_doubt(unreadable("grant", &e)))?;
            want = want.min(request.ceiling.saturating_sub(granted));
        }
        // An attempt of a try may have landed late: in doubt, so the ticket is asked again.
        Err(StoreError::new(
            StoreErrorKind::OutcomeUnknown,
            "grant",
            format!(
                "{} grants of {} in {} lost the race {GRANT_ROUNDS} times",
                request.key.service, request.want, request.key.window
            ),
        ))
    }

    /// One conditional grant of `want` under `ticket`, removing what `pruning` carries:
    /// true if it landed, false if the condition failed (the window has less than `want`
    /// left, the ticket was granted before or is under the floor, or the floor is above
    /// `pruning`'s).
    async fn try_grant(
        &self,
        request: &LeaseRequest,
        ticket: &str,
        want: u64,
        pruning: &Pruning<'_>,
    ) -> Result<bool, StoreError> {
        let room = request.ceiling - want;
        let mut names = HashMap::from([
            ("#granted".to_owned(), LEASE_GRANTED.to_owned()),
            ("#ticket".to_owned(), ticket.to_owned()),
        ]);
        let mut values = HashMap::from([
            (":want".to_owned(), number(want)),
            (":room".to_owned(), number(room)),
        ]);
        let mut sets = vec!["#ticket = :want".to_owned()];
        let (floor_condition, removed) =
            pruning.add_to(request, &mut names, &mut values, &mut sets);
        let condition = format!("{GRANT_CONDITION} AND {floor_condition}");
        let stamps = lease_stamps(self.clock.now(), request.key.window);
        let Update {
            mut expression,
            names,
            values,
        } = Update::add("#granted :want", names, values, sets, stamps);
        if let Some(removed) = removed {
            expression = format!("{expression} REMOVE {removed}");
        }
        let seed = crate::store::jitter_seed(self.clock.now(), 0);
        let sent = self
            .send_retrying("grant", seed, || {
                let [pk, sk] = lease_key(&request.key.service, request.key.window);
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key(pk.0, pk.1)
                    .key(sk.0, sk.1)
                    .update_expression(&expression)
                    .condition_expression(&condition)
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()))
                    .return_values(ReturnValue::None)
                    .send()
            })
            .await?;
        Ok(match sent {
            Sent::Answered(_) => true,
            Sent::ConditionFailed => false,
        })
    }

    /// Gives `count` calls of `service`'s lease for `window` back, under the batch's
    /// sequence condition.
    pub(crate) async fn apply_return(
        &self,
        batch: &SyncBatch,
        service: &str,
        window: Window,
        count: u64,
    ) -> Result<(), StoreError> {
        let names = HashMap::from([("#granted".to_owned(), LEASE_GRANTED.to_owned())]);
        let values = HashMap::from([(":back".to_owned(), AttributeValue::N(format!("-{count}")))]);
        let stamps = lease_stamps(self.clock.now(), window);
        let update = Update::add("#granted :back", names, values, Vec::new(), stamps);
        self.update(batch, lease_key(service, window), update)
            .await
            .map(|_| ())
    }

    /// The calls of `service`'s lease for `window` granted and not given back (consistent
    /// read; 0 without an item).
    pub async fn granted(&self, service: &str, window: Window) -> Result<u64, StoreError> {
        let item = self.get(lease_key(service, window)).await?;
        item.as_ref()
            .map_or(Ok(0), granted)
            .map_err(|e| unreadable("granted", &e))
    }
}

/// The same failure, reported in doubt: after a grant's try the store cannot tell whether
/// one of its attempts landed.
fn in_doubt(error: StoreError) -> StoreError {
    StoreError::new(
        StoreErrorKind::OutcomeUnknown,
        error.operation,
        format!("after a try that may have landed: {}", error.message),
    )
}
