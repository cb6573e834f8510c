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
//! The attributes stay until the item expires with its window, one per grant: about
//! `100 / block percent` full grants per window, plus one per return that reopens room (not
//! bounded for a fleet that restarts often in a long window; see ARCHITECTURE.md).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use quota_tracker::{LeaseRequest, StoreError, StoreErrorKind, SyncBatch, Window};

use crate::item::{
    LEASE_GRANTED, grant_attribute, granted, lease_key, lease_stamps, number, ticket_grant,
};
use crate::store::{DynamoStore, Sent, Update, unreadable};

/// Conditional grants tried before giving up when other instances keep taking what is
/// left in between.
const GRANT_ROUNDS: u32 = 8;

/// What keeps a grant under the ceiling (`granted + want <= ceiling`, written without an
/// addition DynamoDB's conditions do not have) and decides a ticket once.
const GRANT_CONDITION: &str =
    "(attribute_not_exists(#granted) OR #granted <= :room) AND attribute_not_exists(#ticket)";

impl DynamoStore {
    /// Grants up to `request.want` calls of the request's window, never taking the window's
    /// `granted` past `request.ceiling`. Returns the calls granted (0: all granted already).
    pub async fn grant_lease(&self, request: &LeaseRequest) -> Result<u64, StoreError> {
        let key = lease_key(&request.key.service, request.key.window);
        let ticket = grant_attribute(&request.instance, request.ticket);
        let mut want = request.want.min(request.ceiling);
        for _ in 0..GRANT_ROUNDS {
            if want == 0 {
                return Ok(0);
            }
            match self.try_grant(request, &ticket, want).await? {
                Some(granted) => return Ok(granted),
                None => {
                    // The ticket was granted already, or someone else's grant came first:
                    // see which, and what is left.
                    // A try before may have landed (the condition may be the ticket's): a
                    // failure from here on leaves the grant in doubt.
                    let item = self
                        .get(key.clone())
                        .await
                        .map_err(in_doubt)?
                        .unwrap_or_default();
                    if let Some(earlier) = ticket_grant(&item, &ticket)
                        .map_err(|e| in_doubt(unreadable("grant", &e)))?
                    {
                        return Ok(earlier);
                    }
                    let granted = granted(&item).map_err(|e| in_doubt(unreadable("grant", &e)))?;
                    want = want.min(request.ceiling.saturating_sub(granted));
                }
            }
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

    /// One conditional grant of `want` under `ticket`: `Some(want)` if it landed, `None` if
    /// the condition failed (the window has less than `want` left, or the ticket was
    /// granted before).
    async fn try_grant(
        &self,
        request: &LeaseRequest,
        ticket: &str,
        want: u64,
    ) -> Result<Option<u64>, StoreError> {
        let room = request.ceiling - want;
        let names = HashMap::from([
            ("#granted".to_owned(), LEASE_GRANTED.to_owned()),
            ("#ticket".to_owned(), ticket.to_owned()),
        ]);
        let values = HashMap::from([
            (":want".to_owned(), number(want)),
            (":room".to_owned(), number(room)),
        ]);
        let stamps = lease_stamps(self.clock.now(), request.key.window);
        let sets = vec!["#ticket = :want".to_owned()];
        let Update {
            expression,
            names,
            values,
        } = Update::add("#granted :want", names, values, sets, stamps);
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
                    .condition_expression(GRANT_CONDITION)
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()))
                    .return_values(ReturnValue::None)
                    .send()
            })
            .await?;
        Ok(match sent {
            Sent::Answered(_) => Some(want),
            Sent::ConditionFailed => None,
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
