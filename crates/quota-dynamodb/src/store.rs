//! The store: deltas added per day item and per window item, at most once per batch, with
//! retries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, KeySchemaElement, KeyType, ProvisionedThroughput,
    ReturnValue, ScalarAttributeType, TableStatus,
};
use quota_tracker::{
    AsyncStore, Clock, DayDeltas, LeaseRequest, Store, StoreError, StoreErrorKind, StoredDay,
    StoredWindow, SyncBatch, Timestamp, UtcDay, Window, WindowKey,
};

use crate::client::{DynamoConfig, connect};
use crate::item::{
    ItemError, TOTAL, UPDATED_AT, WINDOW_USED, decode_day, decode_window, iso8601, key, number,
    seq_attribute, stamps, window_key, window_stamps,
};

/// How often and how patiently to retry throttling and transient errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// Backoff before the second attempt; doubles each time, with full jitter.
    pub base_delay: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: uniform in `[0, base · 2^attempt)`, capped at
    /// `max_delay` (full jitter, so instances that failed together do not retry together).
    pub(crate) fn backoff(&self, attempt: u32, seed: &mut u64) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_delay);
        jitter(exponential, seed)
    }
}

/// What a failed request means.
pub(crate) enum Failure {
    /// The condition failed: this batch already landed on this item.
    Duplicate,
    /// Worth retrying; `maybe_sent` if the server may have applied it.
    Transient { maybe_sent: bool, message: String },
    /// The request is wrong or not allowed; retrying will not help.
    Rejected(String),
}

pub(crate) fn classify<
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
>(
    error: &SdkError<E, R>,
    table: &str,
) -> Failure {
    match error {
        SdkError::ServiceError(context) => {
            let e = context.err();
            let message = e.message().unwrap_or("").to_owned();
            match e.code() {
                Some("ConditionalCheckFailedException") => Failure::Duplicate,
                Some(
                    code @ ("ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "LimitExceededException"),
                ) => Failure::Transient {
                    maybe_sent: false,
                    message: format!("{code}: {message}"),
                },
                // A server error on a write does not say the write did not happen.
                Some(code @ ("InternalServerError" | "ServiceUnavailable")) => Failure::Transient {
                    maybe_sent: true,
                    message: format!("{code}: {message}"),
                },
                Some("ResourceNotFoundException") => Failure::Rejected(format!(
                    "table {table:?} does not exist (create it, or set QUOTA_DYNAMODB_TABLE): {message}"
                )),
                Some(
                    code @ ("UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "AccessDeniedException"
                    | "ExpiredTokenException"),
                ) => Failure::Rejected(format!(
                    "bad or missing AWS credentials ({code}): {message}"
                )),
                Some(code) => Failure::Rejected(format!("{code}: {message}")),
                None => Failure::Transient {
                    maybe_sent: true,
                    message: format!("service error without a code: {e:?}"),
                },
            }
        }
        SdkError::ConstructionFailure(e) => Failure::Rejected(format!("invalid request: {e:?}")),
        // Timeouts, dropped connections and garbled responses: the request may have been
        // applied. Retrying is safe (the sequence condition makes a second apply a no-op).
        other => Failure::Transient {
            maybe_sent: true,
            message: format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(other)
            ),
        },
    }
}

/// A small xorshift for backoff jitter (no need for a crate for this).
fn jitter(bound: Duration, seed: &mut u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(*seed % nanos)
}

/// A seed for [`jitter`] from the time and `salt` (a batch's sequence, so two batches
/// retrying at one instant do not back off in step); never 0, which xorshift never leaves.
pub(crate) fn jitter_seed(now: Timestamp, salt: u64) -> u64 {
    (now.0 as u64 ^ salt) | 1
}

/// The async DynamoDB store.
#[derive(Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retry: RetryPolicy,
    /// Grant tickets answered, for the next grant on their item to remove (shared by clones).
    pub(crate) answered: Arc<crate::ticket_pruning::Answered>,
    #[cfg(feature = "zoo")]
    variant: crate::zoo::StoreVariant,
    #[cfg(feature = "zoo")]
    pub(crate) snapshots: crate::zoo::Snapshots,
}

impl DynamoStore {
    /// A store on `table` through `client`, stamping items with `clock`.
    pub fn new(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
            retry: RetryPolicy::default(),
            answered: Arc::default(),
            #[cfg(feature = "zoo")]
            variant: crate::zoo::StoreVariant::Fixed,
            #[cfg(feature = "zoo")]
            snapshots: crate::zoo::Snapshots::default(),
        }
    }

    /// Writes batches the way `variant` does (a historical bug, for the harness only).
    #[cfg(feature = "zoo")]
    pub fn with_variant(mut self, variant: crate::zoo::StoreVariant) -> Self {
        self.variant = variant;
        self
    }

    /// Connects as `config` says.
    pub async fn connect(config: &DynamoConfig, clock: Arc<dyn Clock>) -> Self {
        Self::new(connect(config).await, config.table.clone(), clock)
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client (for tests and tools).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the table (`PK` hash, `SK` range, both strings) if it does not exist, and
    /// waits until it is active. A table that exists with another key is refused
    /// ([`StoreErrorKind::Rejected`]): it is not a quota table. A request that times out or
    /// meets a transient error starts the sequence again after the retry policy's back-off
    /// (it is idempotent: a table that a lost answer created is found by the next look), up
    /// to the policy's attempts.
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        let mut seed = jitter_seed(self.clock.now(), 1);
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.create_table_once().await {
                Err(e) if e.kind != StoreErrorKind::Rejected && attempt < attempts => {
                    tracing::debug!(attempt, error = %e, "creating the table: trying again");
                    tokio::time::sleep(self.retry.backoff(attempt, &mut seed)).await;
                }
                Err(e) if e.kind != StoreErrorKind::Rejected && attempts > 1 => {
                    let message = format!("gave up after {attempts} attempts: {}", e.message);
                    return Err(StoreError::new(e.kind, e.operation, message));
                }
                done => return done,
            }
        }
    }

    /// One pass of [`DynamoStore::create_table_if_missing`]: look, create if missing, wait.
    async fn create_table_once(&self) -> Result<(), StoreError> {
        let exists = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        match exists {
            Ok(described) => self.check_quota_key(&described)?,
            Err(error) if error.code() != Some("ResourceNotFoundException") => {
                return Err(self.error("create table", &error));
            }
            Err(_) => self.create_table().await?,
        }
        self.wait_until_active().await
    }

    /// Refuses an existing table whose key is not the quota table's.
    fn check_quota_key(
        &self,
        described: &aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput,
    ) -> Result<(), StoreError> {
        let table = described.table();
        let key: Vec<(String, String, String)> = table
            .map(|t| t.key_schema())
            .unwrap_or_default()
            .iter()
            .map(|k| {
                let name = k.attribute_name().to_owned();
                let kind = table
                    .map(|t| t.attribute_definitions())
                    .unwrap_or_default()
                    .iter()
                    .find(|a| a.attribute_name() == name)
                    .map_or("?", |a| a.attribute_type().as_str())
                    .to_owned();
                (name, k.key_type().as_str().to_owned(), kind)
            })
            .collect();
        let expected = [
            ("PK".to_owned(), "HASH".to_owned(), "S".to_owned()),
            ("SK".to_owned(), "RANGE".to_owned(), "S".to_owned()),
        ];
        if key == expected {
            return Ok(());
        }
        let found: Vec<String> = key
            .iter()
            .map(|(n, t, k)| format!("{n} ({t}, {k})"))
            .collect();
        Err(StoreError::new(
            StoreErrorKind::Rejected,
            "create table",
            format!(
                "table {:?} exists but is not a quota table: its key is {}, \
                 expected PK (HASH, S) and SK (RANGE, S); choose another table",
                self.table,
                found.join(", ")
            ),
        ))
    }

    /// Sends the `CreateTable`; one that another creator made first is fine.
    async fn create_table(&self) -> Result<(), StoreError> {
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let (pk, sk) = (attribute("PK"), attribute("SK"));
        let (hash, range) = (key("PK", KeyType::Hash), key("SK", KeyType::Range));
        let throughput = ProvisionedThroughput::builder()
            .read_capacity_units(100)
            .write_capacity_units(100)
            .build();
        let built = (|| {
            Ok::<_, aws_sdk_dynamodb::error::BuildError>((pk?, sk?, hash?, range?, throughput?))
        })();
        let (pk, sk, hash, range, throughput) = built.map_err(|e| {
            StoreError::new(StoreErrorKind::Rejected, "create table", e.to_string())
        })?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(pk)
            .attribute_definitions(sk)
            .key_schema(hash)
            .key_schema(range)
            .provisioned_throughput(throughput)
            .send()
            .await;
        match created {
            Err(error) if error.code() != Some("ResourceInUseException") => {
                Err(self.error("create table", &error))
            }
            _ => Ok(()),
        }
    }

    /// Polls until the table is active (5 s at most).
    async fn wait_until_active(&self) -> Result<(), StoreError> {
        for _ in 0..100 {
            let status = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.error("create table", &e))?;
            if status.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(StoreError::new(
            StoreErrorKind::Unavailable,
            "create table",
            format!("table {:?} did not become active", self.table),
        ))
    }

    fn error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        &self,
        operation: &'static str,
        error: &SdkError<E, R>,
    ) -> StoreError {
        match classify(error, &self.table) {
            Failure::Duplicate => StoreError::new(
                StoreErrorKind::Rejected,
                operation,
                "unexpected condition failure",
            ),
            Failure::Transient {
                maybe_sent: true,
                message,
            } => StoreError::new(StoreErrorKind::OutcomeUnknown, operation, message),
            Failure::Transient { message, .. } => {
                StoreError::new(StoreErrorKind::Unavailable, operation, message)
            }
            Failure::Rejected(message) => {
                StoreError::new(StoreErrorKind::Rejected, operation, message)
            }
        }
    }

    /// Reads `day`'s item with a consistent read.
    pub async fn load(&self, day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        let item = self.get(key(day)).await?;
        item.map(|item| decode_day(day, &item))
            .transpose()
            .map_err(|e| unreadable("load", &e))
    }

    /// Reads the items of `windows` with consistent reads; windows with no item are left out.
    pub async fn load_windows(
        &self,
        windows: &[WindowKey],
    ) -> Result<Vec<StoredWindow>, StoreError> {
        let mut stored = Vec::with_capacity(windows.len());
        for window in windows {
            if let Some(item) = self.get(window_key(&window.service, window.window)).await? {
                stored.push(decode_window(window, &item).map_err(|e| unreadable("load", &e))?);
            }
        }
        Ok(stored)
    }

    /// One consistent `GetItem`, retried on transient errors.
    pub(crate) async fn get(
        &self,
        key: [(String, AttributeValue); 2],
    ) -> Result<Option<Item>, StoreError> {
        let mut seed = jitter_seed(self.clock.now(), 0);
        let mut last = None;
        for attempt in 0..self.retry.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.retry.backoff(attempt, &mut seed)).await;
            }
            let [pk, sk] = key.clone();
            let result = self
                .client
                .get_item()
                .table_name(&self.table)
                .key(pk.0, pk.1)
                .key(sk.0, sk.1)
                .consistent_read(true)
                .send()
                .await;
            match result {
                Ok(output) => return Ok(output.item().cloned()),
                Err(error) => match classify(&error, &self.table) {
                    Failure::Transient { message, .. } => last = Some(message),
                    _ => return Err(self.error("load", &error)),
                },
            }
        }
        Err(StoreError::new(
            StoreErrorKind::Unavailable,
            "load",
            last.unwrap_or_default(),
        ))
    }

    /// Adds the batch's deltas, one conditional `UpdateItem` per day. Returns the latest
    /// day's counters after the write, when DynamoDB returned them.
    pub async fn apply(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        #[cfg(feature = "zoo")]
        {
            use crate::zoo::StoreVariant;
            match self.variant {
                StoreVariant::Fixed => {}
                StoreVariant::SyncOverwrite => return self.apply_overwrite(batch).await,
                StoreVariant::OverwriteErasesCounters => {
                    return self.apply_then_save_whole(batch).await;
                }
                StoreVariant::RetryDoubleApply => {}
                StoreVariant::AckBeforeWrite => return self.apply_write_behind(batch),
            }
        }
        self.apply_fixed(batch).await
    }

    /// The fixed [`DynamoStore::apply`] (variants reuse it): each day's item, then each
    /// window's, one conditional `UpdateItem` each.
    pub(crate) async fn apply_fixed(
        &self,
        batch: &SyncBatch,
    ) -> Result<Option<StoredDay>, StoreError> {
        let mut fresh = None;
        // Once any item of the batch may have landed, a later failure leaves the whole batch
        // in doubt (so it is retried with the same sequence, never re-sent as a new batch).
        // Whatever that failure (refused, unreachable, rejected): restoring the batch as new
        // deltas would add the landed items twice.
        let mut any_landed = false;
        let in_doubt = |mut error: StoreError, any_landed: bool| {
            if any_landed {
                error.kind = StoreErrorKind::OutcomeUnknown;
            }
            error
        };
        for day in &batch.days {
            match self.apply_day(batch, day).await {
                Ok(stored) => {
                    any_landed = true;
                    fresh = stored.or(fresh);
                }
                Err(error) => return Err(in_doubt(error, any_landed)),
            }
        }
        let mut windows = Vec::with_capacity(batch.windows.len());
        for (service, window, delta) in batch.named_windows() {
            match self.apply_window(batch, service, window, delta).await {
                Ok(stored) => {
                    any_landed = true;
                    windows.extend(stored);
                }
                Err(error) => return Err(in_doubt(error, any_landed)),
            }
        }
        for (service, window, count) in batch.named_returns() {
            match self.apply_return(batch, service, window, count).await {
                Ok(()) => any_landed = true,
                Err(error) => return Err(in_doubt(error, any_landed)),
            }
        }
        Ok(fresh.map(|day: StoredDay| day.with_windows(windows)))
    }

    /// The condition that makes a retried batch a no-op (absent in `retry-double-apply`).
    fn at_most_once_condition(&self) -> Option<String> {
        #[cfg(feature = "zoo")]
        if self.variant == crate::zoo::StoreVariant::RetryDoubleApply {
            return None;
        }
        Some("attribute_not_exists(#seq) OR #seq < :seq".to_owned())
    }

    async fn apply_day(
        &self,
        batch: &SyncBatch,
        day: &DayDeltas,
    ) -> Result<Option<StoredDay>, StoreError> {
        let now = self.clock.now();
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let (mut adds, mut sets) = (Vec::new(), Vec::new());
        for (i, (service, delta)) in batch.config.services().iter().zip(&day.deltas).enumerate() {
            // Refunds of calls already synced are negative: ADD subtracts them.
            if *delta != 0 {
                names.insert(format!("#u{i}"), format!("{}_used", service.name()));
                values.insert(format!(":d{i}"), number(delta));
                adds.push(format!("#u{i} :d{i}"));
            }
            names.insert(format!("#l{i}"), format!("{}_limit", service.name()));
            values.insert(format!(":l{i}"), number(service.limit()));
            sets.push(format!("#l{i} = if_not_exists(#l{i}, :l{i})"));
        }
        names.insert("#total".to_owned(), TOTAL.to_owned());
        values.insert(":total".to_owned(), number(day.total()));
        adds.push("#total :total".to_owned());
        let update = Update::add(&adds.join(", "), names, values, sets, stamps(now));
        let item = self.update(batch, key(day.day), update).await?;
        Ok(item.and_then(|item| landed_but_unreadable(decode_day(day.day, &item))))
    }

    /// Adds `delta` to `service`'s item for `window`, under the batch's sequence condition.
    async fn apply_window(
        &self,
        batch: &SyncBatch,
        service: &str,
        window: Window,
        delta: i64,
    ) -> Result<Option<StoredWindow>, StoreError> {
        let now = self.clock.now();
        let limit = batch
            .config
            .services()
            .iter()
            .find(|s| s.name() == service)
            .map_or(0, |s| s.limit());
        let names = HashMap::from([
            ("#used".to_owned(), WINDOW_USED.to_owned()),
            ("#limit".to_owned(), "limit".to_owned()),
            ("#period".to_owned(), "period".to_owned()),
            ("#start".to_owned(), "window_start".to_owned()),
        ]);
        let values = HashMap::from([
            (":d".to_owned(), number(delta)),
            (":limit".to_owned(), number(limit)),
            (
                ":period".to_owned(),
                AttributeValue::S(window.period().to_string()),
            ),
            (
                ":start".to_owned(),
                AttributeValue::S(iso8601(window.start())),
            ),
        ]);
        let sets = vec![
            "#limit = if_not_exists(#limit, :limit)".to_owned(),
            "#period = if_not_exists(#period, :period)".to_owned(),
            "#start = if_not_exists(#start, :start)".to_owned(),
        ];
        let update = Update::add("#used :d", names, values, sets, window_stamps(now, window));
        let window_of = WindowKey {
            service: service.to_owned(),
            window,
        };
        let item = self
            .update(batch, window_key(service, window), update)
            .await?;
        Ok(item.and_then(|item| landed_but_unreadable(decode_window(&window_of, &item))))
    }

    /// One conditional `UpdateItem` of `key` for `batch`, retried on throttling and
    /// transient errors. `Ok(None)` when the item already holds this batch (a retry of a
    /// write that landed); the item after the write otherwise.
    pub(crate) async fn update(
        &self,
        batch: &SyncBatch,
        key: [(String, AttributeValue); 2],
        update: Update,
    ) -> Result<Option<Item>, StoreError> {
        let Update {
            expression,
            mut names,
            mut values,
        } = update;
        names.insert("#seq".to_owned(), seq_attribute(&batch.instance));
        values.insert(":seq".to_owned(), number(batch.seq));
        let expression = format!("{expression}, #seq = :seq");
        let seed = jitter_seed(self.clock.now(), batch.seq.rotate_left(17));
        let sent = self
            .send_retrying("apply", seed, || {
                let [pk, sk] = key.clone();
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key(pk.0, pk.1)
                    .key(sk.0, sk.1)
                    .update_expression(&expression)
                    .set_condition_expression(self.at_most_once_condition())
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()))
                    .return_values(ReturnValue::AllNew)
                    .send()
            })
            .await?;
        Ok(match sent {
            Sent::Answered(output) => Some(output.attributes().cloned().unwrap_or_default()),
            Sent::ConditionFailed => {
                tracing::debug!(seq = batch.seq, "batch already applied to this item");
                None
            }
        })
    }

    /// Sends the request `send` builds, retrying throttling and transient errors with
    /// backoff: the answer, or that its condition failed; a refusal at once; after the last
    /// attempt, [`StoreErrorKind::OutcomeUnknown`] if any attempt may have been applied,
    /// [`StoreErrorKind::Unavailable`] otherwise.
    pub(crate) async fn send_retrying<T, E, R, F, Fut>(
        &self,
        operation: &'static str,
        mut seed: u64,
        mut send: F,
    ) -> Result<Sent<T>, StoreError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
    {
        let mut maybe_sent = false;
        let mut last = String::new();
        for attempt in 0..self.retry.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.retry.backoff(attempt, &mut seed)).await;
            }
            match send().await {
                Ok(output) => return Ok(Sent::Answered(output)),
                Err(error) => match classify(&error, &self.table) {
                    Failure::Duplicate => return Ok(Sent::ConditionFailed),
                    Failure::Transient {
                        maybe_sent: sent,
                        message,
                    } => {
                        maybe_sent |= sent;
                        tracing::debug!(attempt, %message, "transient store error; retrying");
                        last = message;
                    }
                    // Refused now, but an earlier attempt may have landed: still in doubt,
                    // or the tracker would resend the batch as new and count it twice.
                    Failure::Rejected(message) if maybe_sent => {
                        return Err(StoreError::new(
                            StoreErrorKind::OutcomeUnknown,
                            operation,
                            format!("refused after an attempt that may have landed: {message}"),
                        ));
                    }
                    Failure::Rejected(message) => {
                        return Err(StoreError::new(
                            StoreErrorKind::Rejected,
                            operation,
                            message,
                        ));
                    }
                },
            }
        }
        let kind = if maybe_sent {
            StoreErrorKind::OutcomeUnknown
        } else {
            StoreErrorKind::Unavailable
        };
        Err(StoreError::new(
            kind,
            operation,
            format!("gave up after {} attempts: {last}", self.retry.attempts),
        ))
    }
}

/// How a retried request ended, short of an error.
pub(crate) enum Sent<T> {
    /// The server answered.
    Answered(T),
    /// Its condition failed (for a batch: already applied to this item).
    ConditionFailed,
}

/// Adds the `SET` clauses of an item's stamps: `updated_at` on every write, the TTL and the
/// entity type once, when the item is created.
fn set_stamps(
    stamps: [(&'static str, AttributeValue); 3],
    names: &mut HashMap<String, String>,
    values: &mut HashMap<String, AttributeValue>,
    sets: &mut Vec<String>,
) {
    for (a, value) in stamps {
        names.insert(format!("#{a}"), a.to_owned());
        values.insert(format!(":{a}"), value);
        sets.push(if a == UPDATED_AT {
            format!("#{a} = :{a}")
        } else {
            format!("#{a} = if_not_exists(#{a}, :{a})")
        });
    }
}

/// An item as the SDK returns it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// An update expression with its names and values, before the sequence condition's.
pub(crate) struct Update {
    pub(crate) expression: String,
    pub(crate) names: HashMap<String, String>,
    pub(crate) values: HashMap<String, AttributeValue>,
}

impl Update {
    /// `ADD {add} SET {sets}` with the item's `stamps` set too; the names and values of
    /// `add` and `sets` are already in the maps.
    pub(crate) fn add(
        add: &str,
        mut names: HashMap<String, String>,
        mut values: HashMap<String, AttributeValue>,
        mut sets: Vec<String>,
        stamps: [(&'static str, AttributeValue); 3],
    ) -> Self {
        set_stamps(stamps, &mut names, &mut values, &mut sets);
        Self {
            expression: format!("ADD {add} SET {}", sets.join(", ")),
            names,
            values,
        }
    }
}

/// A read of an item this store cannot decode: refused (the tracker keeps what it knew; a
/// lease is not granted on a guess).
pub(crate) fn unreadable(operation: &'static str, error: &ItemError) -> StoreError {
    StoreError::new(StoreErrorKind::Rejected, operation, error.to_string())
}

/// The counters a write brought back, when they can be read. The write itself landed: an
/// item someone else mangled must not turn it into a failure (which would resend it as
/// new), so the counters are dropped and the next reload reports the error.
fn landed_but_unreadable<T>(decoded: Result<T, ItemError>) -> Option<T> {
    decoded
        .map_err(
            |error| tracing::warn!(%error, "a write landed; the item it returned cannot be read"),
        )
        .ok()
}

/// [`DynamoStore`] behind the blocking [`Store`] trait, with a runtime of its own.
///
/// Call it from ordinary threads (as `SyncedTracker` does). From async code use
/// [`DynamoStore`] itself, with `quota_tracker::AsyncSyncedTracker` and [`crate::SyncTask`]:
/// called from inside a tokio runtime (a task, a `block_on`, `spawn_blocking`), every
/// operation fails with [`StoreErrorKind::Rejected`] saying so, where tokio would panic
/// ("Cannot start a runtime from within a runtime") or block one of that runtime's workers.
pub struct BlockingDynamoStore {
    store: DynamoStore,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

/// Refuses, with the reason, to block a thread of a tokio runtime.
fn outside_runtime(operation: &'static str) -> Result<(), StoreError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(());
    }
    Err(StoreError::new(
        StoreErrorKind::Rejected,
        operation,
        "BlockingDynamoStore called from inside a tokio runtime (a task, a block_on or \
         spawn_blocking), where blocking would panic or stall the runtime: from async code use \
         DynamoStore with quota_tracker::AsyncSyncedTracker and quota_dynamodb::SyncTask",
    ))
}

impl BlockingDynamoStore {
    /// Connects as `config` says, with a runtime of one worker thread.
    pub fn connect(config: &DynamoConfig, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        Self::connect_with(config, clock, |builder| builder)
    }

    /// Like [`BlockingDynamoStore::connect`], letting `customize` change the SDK client
    /// configuration first (tests add fault-injecting interceptors this way).
    pub fn connect_with(
        config: &DynamoConfig,
        clock: Arc<dyn Clock>,
        customize: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
    ) -> std::io::Result<Self> {
        outside_runtime("connect").map_err(|e| std::io::Error::other(e.message))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("quota-dynamodb")
            .enable_all()
            .build()?;
        let builder = runtime.block_on(crate::client::client_config(config));
        let client = Client::from_conf(customize(builder).build());
        let store = DynamoStore::new(client, config.table.clone(), clock);
        Ok(Self {
            store,
            runtime: Some(runtime),
        })
    }

    /// Runs `operation` to completion on this store's runtime, unless the caller is inside
    /// a runtime already.
    fn block_on<T>(
        &self,
        operation: &'static str,
        future: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        outside_runtime(operation)?;
        match &self.runtime {
            Some(runtime) => runtime.block_on(future),
            None => Err(StoreError::new(
                StoreErrorKind::Rejected,
                operation,
                "the store is being dropped",
            )),
        }
    }

    /// Writes batches the way `variant` does (a historical bug, for the harness only).
    #[cfg(feature = "zoo")]
    pub fn with_variant(mut self, variant: crate::zoo::StoreVariant) -> Self {
        self.store.variant = variant;
        self
    }

    /// The async store inside.
    pub fn inner(&self) -> &DynamoStore {
        &self.store
    }

    /// Calls of `service`'s lease for `window` granted and not given back.
    pub fn granted(&self, service: &str, window: Window) -> Result<u64, StoreError> {
        self.block_on("granted", self.store.granted(service, window))
    }

    /// Creates the table if it is missing (see [`DynamoStore::create_table_if_missing`]).
    pub fn create_table_if_missing(&self) -> Result<(), StoreError> {
        self.block_on("create-table", self.store.create_table_if_missing())
    }
}

impl Drop for BlockingDynamoStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its threads stop, which tokio refuses inside
        // another runtime; nothing runs on this one between calls, so let it go in the
        // background.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Store for BlockingDynamoStore {
    fn load_day(&self, day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        self.block_on("load", self.store.load(day))
    }

    fn load_windows(&self, windows: &[WindowKey]) -> Result<Vec<StoredWindow>, StoreError> {
        self.block_on("load", self.store.load_windows(windows))
    }

    fn apply_batch(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        self.block_on("apply", self.store.apply(batch))
    }

    fn grant_lease(&self, request: &LeaseRequest) -> Result<u64, StoreError> {
        self.block_on("grant", self.store.grant_lease(request))
    }
}

impl AsyncStore for DynamoStore {
    async fn load_day(&self, day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        self.load(day).await
    }

    async fn load_windows(&self, windows: &[WindowKey]) -> Result<Vec<StoredWindow>, StoreError> {
        DynamoStore::load_windows(self, windows).await
    }

    async fn apply_batch(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        self.apply(batch).await
    }

    async fn grant_lease(&self, request: &LeaseRequest) -> Result<u64, StoreError> {
        DynamoStore::grant_lease(self, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_marsaglias_xorshift64_within_its_bound() {
        // xorshift64 with the (13, 7, 17) triple: full period, and from 1 it first gives
        // 1082269761.
        let mut seed = 1;
        let bound = Duration::from_secs(1);
        assert_eq!(
            jitter(bound, &mut seed),
            Duration::from_nanos(1082269761 % 1_000_000_000)
        );
        assert_eq!(seed, 1082269761);
        // The next states (from any xorshift64 13/7/17 reference): the first one alone has
        // no overlapping bits, so it cannot tell `^=` from `|=`.
        for state in [
            1152992998833853505,
            11177516664432764457,
            17678023832001937445,
        ] {
            jitter(bound, &mut seed);
            assert_eq!(seed, state);
        }
        let draws: Vec<Duration> = (0..2_000).map(|_| jitter(bound, &mut seed)).collect();
        assert!(
            draws.iter().all(|d| *d < bound),
            "a draw at or past its bound"
        );
        let low = draws.iter().filter(|d| **d < bound / 10).count();
        let high = draws.iter().filter(|d| **d >= bound * 9 / 10).count();
        assert!(
            (100..300).contains(&low) && (100..300).contains(&high),
            "{low} low, {high} high"
        );
        let mut none = 0;
        assert_eq!(jitter(Duration::ZERO, &mut none), Duration::ZERO);
    }

    #[test]
    fn a_store_names_its_table() {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let clock = Arc::new(quota_tracker::ManualClock::new(Timestamp(0)));
        let store = DynamoStore::new(Client::from_conf(config), "quotas-eu", clock);
        assert_eq!(store.table(), "quotas-eu");
    }

    #[test]
    fn seeds_are_never_zero_and_differ_per_salt() {
        for (now, salt) in [(0, 0), (1, 0), (2, 0), (1 << 40, 1 << 40), (-1, u64::MAX)] {
            assert_ne!(jitter_seed(Timestamp(now), salt), 0, "{now} {salt}");
        }
        let now = Timestamp(3 << 17);
        let seeds: Vec<u64> = (1..=4u64)
            .map(|seq| jitter_seed(now, seq.rotate_left(17)))
            .collect();
        let mut distinct = seeds.clone();
        distinct.dedup();
        assert_eq!(distinct, seeds, "two batches share a seed");
        assert_ne!(jitter_seed(Timestamp(10), 0), jitter_seed(Timestamp(12), 0));
    }

    #[test]
    fn backoff_doubles_per_attempt_up_to_the_cap() {
        let retry = RetryPolicy {
            attempts: 8,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(300),
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for (attempt, bound) in [(0, 10), (1, 20), (3, 80), (5, 300), (40, 300)] {
            let bound = Duration::from_millis(bound);
            let waits: Vec<Duration> = (0..200)
                .map(|_| retry.backoff(attempt, &mut seed))
                .collect();
            let longest = waits.iter().max().copied().unwrap_or_default();
            assert!(
                longest < bound && longest >= bound * 3 / 4,
                "attempt {attempt}: longest wait {longest:?}, bound {bound:?}"
            );
        }
    }
}
