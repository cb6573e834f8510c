//! Qualifying an endpoint: does this DynamoDB-compatible server lose or double concurrent
//! updates? (Emulators have: moto's threaded server lost a few of 2,000 concurrent `ADD`s.)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_smithy_types::error::display::DisplayErrorContext;
use quota_tracker::{StoreError, StoreErrorKind, SystemClock};

use crate::client::{DynamoConfig, connect};
use crate::item::number;
use crate::store::DynamoStore;

/// What [`qualify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualification {
    /// Concurrent writers.
    pub writers: usize,
    /// Operations per writer (of each kind).
    pub ops: u64,
    /// `ADD 1` operations acknowledged: what the counter must end at.
    pub expected: u64,
    /// What the counter ended at (consistent read).
    pub observed: u64,
    /// Acknowledged increments missing from the counter.
    pub lost: u64,
    /// Increments counted beyond those acknowledged.
    pub doubled: u64,
    /// `ADD`s that returned a counter value another `ADD` also returned (each must see its
    /// own: a repeated value means two increments were not serialised).
    pub repeated_returns: u64,
    /// Compare-and-set increments that succeeded, and what their register ended at.
    pub cas_succeeded: u64,
    /// The register's final value.
    pub cas_observed: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Qualification {
    /// Whether the endpoint lost or doubled nothing.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.doubled == 0
            && self.repeated_returns == 0
            && self.cas_observed == self.cas_succeeded
    }
}

fn read_number(item: Option<&HashMap<String, AttributeValue>>, name: &str) -> Option<u64> {
    item?.get(name)?.as_n().ok()?.parse().ok()
}

fn failed(message: impl Into<String>) -> StoreError {
    StoreError::new(StoreErrorKind::Unavailable, "store-check", message)
}

/// Runs `writers` concurrent writers, each doing `ops` `ADD 1`s on one counter and `ops`
/// compare-and-set increments of one register, then reads both back.
pub async fn qualify(
    config: &DynamoConfig,
    writers: usize,
    ops: u64,
) -> Result<Qualification, StoreError> {
    qualify_client(connect(config).await, &config.table, writers, ops).await
}

/// [`qualify`] through a client built by the caller (a test injects faults this way), on
/// `table` (created if missing).
pub async fn qualify_client(
    client: Client,
    table: &str,
    writers: usize,
    ops: u64,
) -> Result<Qualification, StoreError> {
    DynamoStore::new(client.clone(), table, Arc::new(SystemClock))
        .create_table_if_missing()
        .await?;
    let started = Instant::now();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    // Fresh items per run, so leftovers of earlier runs never count.
    let run = format!("store-check-{}-{nanos}", std::process::id());
    let key = |name: &str| {
        HashMap::from([
            (
                "PK".to_owned(),
                AttributeValue::S("SYSTEM#STORE-CHECK".to_owned()),
            ),
            ("SK".to_owned(), AttributeValue::S(format!("{run}-{name}"))),
        ])
    };
    let (counter, register) = (key("counter"), key("register"));
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (client, table) = (client.clone(), table.to_owned());
            let (counter, register) = (counter.clone(), register.clone());
            tokio::spawn(async move { writer(&client, &table, counter, register, ops).await })
        })
        .collect();
    let mut returns = Vec::new();
    let mut cas_succeeded = 0;
    for task in tasks {
        let (values, cas) = task
            .await
            .map_err(|e| failed(format!("a writer stopped: {e}")))??;
        returns.extend(values);
        cas_succeeded += cas;
    }
    let read = |key: HashMap<String, AttributeValue>| {
        let (client, table) = (client.clone(), table.to_owned());
        async move {
            client
                .get_item()
                .table_name(table)
                .set_key(Some(key))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| failed(format!("reading back: {}", DisplayErrorContext(&e))))
        }
    };
    let observed = read_number(read(counter).await?.item(), "c").unwrap_or(0);
    let cas_observed = read_number(read(register).await?.item(), "v").unwrap_or(0);
    let expected = returns.len() as u64;
    returns.sort_unstable();
    let repeated_returns = returns.windows(2).filter(|w| w[0] == w[1]).count() as u64;
    Ok(Qualification {
        writers,
        ops,
        expected,
        observed,
        lost: expected.saturating_sub(observed),
        doubled: observed.saturating_sub(expected),
        repeated_returns,
        cas_succeeded,
        cas_observed,
        elapsed: started.elapsed(),
    })
}

async fn writer(
    client: &Client,
    table: &str,
    counter: HashMap<String, AttributeValue>,
    register: HashMap<String, AttributeValue>,
    ops: u64,
) -> Result<(Vec<u64>, u64), StoreError> {
    let mut returned = Vec::with_capacity(ops as usize);
    for _ in 0..ops {
        let output = client
            .update_item()
            .table_name(table)
            .set_key(Some(counter.clone()))
            .update_expression("ADD c :one")
            .expression_attribute_values(":one", number(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| failed(format!("ADD: {}", DisplayErrorContext(&e))))?;
        returned.push(read_number(output.attributes.as_ref(), "c").unwrap_or(0));
    }
    let mut succeeded = 0;
    for _ in 0..ops {
        let current = client
            .get_item()
            .table_name(table)
            .set_key(Some(register.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed(format!("read: {}", DisplayErrorContext(&e))))?;
        let seen = read_number(current.item(), "v");
        let mut update = client
            .update_item()
            .table_name(table)
            .set_key(Some(register.clone()))
            .update_expression("SET v = :next")
            .expression_attribute_values(":next", number(seen.unwrap_or(0) + 1));
        update = match seen {
            Some(value) => update
                .condition_expression("v = :seen")
                .expression_attribute_values(":seen", number(value)),
            None => update.condition_expression("attribute_not_exists(v)"),
        };
        match update.send().await {
            Ok(_) => succeeded += 1,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
            Err(e) => {
                return Err(failed(format!(
                    "conditional write: {}",
                    DisplayErrorContext(&e)
                )));
            }
        }
    }
    Ok((returned, succeeded))
}
