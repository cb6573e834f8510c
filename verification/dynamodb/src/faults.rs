//! Faults injected at the SDK layer after the server applied a write: the "timeout after
//! apply" case, where the client sees an error for a write that landed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::config::Intercept;
use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

/// Every `every`-th successful `UpdateItem` response is replaced, in turn, by a throttling
/// error, a server error, or a lost response. Never two in a row, so retries get through.
#[derive(Debug)]
pub struct AfterApplyFaults {
    every: u64,
    updates: AtomicU64,
    injected: Arc<AtomicU64>,
}

impl AfterApplyFaults {
    /// Faults on every `every`-th applied `UpdateItem`; returns the interceptor and the count
    /// of faults injected so far.
    pub fn every(every: u64) -> (Self, Arc<AtomicU64>) {
        let injected = Arc::new(AtomicU64::new(0));
        let faults = Self {
            every: every.max(2),
            updates: AtomicU64::new(0),
            injected: Arc::clone(&injected),
        };
        (faults, injected)
    }
}

impl Intercept for AfterApplyFaults {
    fn name(&self) -> &'static str {
        "after-apply-faults"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let is_update = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == "UpdateItem");
        if !is_update || context.response().status().as_u16() != 200 {
            return Ok(());
        }
        let n = self.updates.fetch_add(1, Ordering::SeqCst);
        if n % self.every != 1 {
            return Ok(());
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        let (status, kind) = match (n / self.every) % 3 {
            0 => (400, "ProvisionedThroughputExceededException"),
            1 => (500, "InternalServerError"),
            _ => return Err("injected: the connection dropped after the write was applied".into()),
        };
        *context.response_mut() =
            error_response(status, kind, "injected after the write was applied")?;
        Ok(())
    }
}

/// Makes an endpoint lossy on purpose, to show that `store-check` notices: every `every`-th
/// `UpdateItem` that adds `:one` is rewritten to add 0, so the server acknowledges an
/// increment it never made (as moto's threaded server sometimes did under concurrency).
#[derive(Debug)]
pub struct LostAdds {
    every: u64,
    adds: AtomicU64,
}

impl LostAdds {
    /// Loses every `every`-th `ADD`.
    pub fn every(every: u64) -> Self {
        Self {
            every: every.max(1),
            adds: AtomicU64::new(0),
        }
    }
}

impl Intercept for LostAdds {
    fn name(&self) -> &'static str {
        "lost-adds"
    }

    fn modify_before_serialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(input) = update_input(context) else {
            return Ok(());
        };
        let Some(one) = input
            .expression_attribute_values
            .as_mut()
            .and_then(|values| values.get_mut(":one"))
        else {
            return Ok(());
        };
        if self.adds.fetch_add(1, Ordering::SeqCst) % self.every == self.every - 1 {
            *one = aws_sdk_dynamodb::types::AttributeValue::N("0".to_owned());
        }
        Ok(())
    }
}

/// Makes an endpoint non-atomic on purpose, to show that `store-check` says so: every
/// `every`-th `UpdateItem` answer that returns the counter `c` is rewritten to return the
/// value the previous such answer returned, as two increments that read the same previous
/// value would (what a stock moto server was seen doing). The writes themselves all land, so
/// nothing is lost or doubled: only the returns repeat.
#[derive(Debug, Clone)]
pub struct RepeatedReturns {
    every: u64,
    state: Arc<Repeats>,
}

#[derive(Debug, Default)]
struct Repeats {
    answers: AtomicU64,
    repeated: AtomicU64,
    last: std::sync::Mutex<Option<String>>,
}

impl RepeatedReturns {
    /// Repeats the previous return in every `every`-th answer (clones share the count).
    pub fn every(every: u64) -> Self {
        Self {
            every: every.max(2),
            state: Arc::default(),
        }
    }

    /// How many answers were rewritten.
    pub fn repeated(&self) -> u64 {
        self.state.repeated.load(Ordering::SeqCst)
    }
}

impl Intercept for RepeatedReturns {
    fn name(&self) -> &'static str {
        "repeated-returns"
    }

    fn modify_before_completion(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(output)) = context.output_or_error_mut() else {
            return Ok(());
        };
        let Some(output) =
            output.downcast_mut::<aws_sdk_dynamodb::operation::update_item::UpdateItemOutput>()
        else {
            return Ok(());
        };
        let Some(value) = output.attributes.as_mut().and_then(|a| a.get_mut("c")) else {
            return Ok(());
        };
        let Ok(returned) = value.as_n().cloned() else {
            return Ok(());
        };
        let mut last = self.state.last.lock().map_err(|_| "poisoned")?;
        let n = self.state.answers.fetch_add(1, Ordering::SeqCst);
        match last.clone() {
            Some(previous) if n % self.every == self.every - 1 => {
                *value = aws_sdk_dynamodb::types::AttributeValue::N(previous);
                self.state.repeated.fetch_add(1, Ordering::SeqCst);
            }
            _ => *last = Some(returned),
        }
        Ok(())
    }
}

/// Counts the requests sent, by operation name (`UpdateItem`, `GetItem`, ...), and the
/// operations on lease items apart (`UpdateItem on a lease item`, once per operation). Not a
/// fault: the cost measurements use it.
#[derive(Debug, Default, Clone)]
pub struct CountCalls {
    counts: Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
}

impl CountCalls {
    /// Operations sent so far, by name.
    pub fn counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "count-calls"
    }

    // Operations on lease items, once per operation (not per attempt): what the bounded
    // mode adds, told apart by the item's sort key.
    fn read_before_execution(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::{get_item::GetItemInput, update_item::UpdateItemInput};
        let input = context.input();
        let (operation, key) = if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            ("UpdateItem", update.key())
        } else if let Some(get) = input.downcast_ref::<GetItemInput>() {
            ("GetItem", get.key())
        } else {
            return Ok(());
        };
        let lease = key
            .and_then(|k| k.get("SK"))
            .and_then(|sk| sk.as_s().ok())
            .is_some_and(|sk| sk.starts_with("LEASE#"));
        if let (true, Ok(mut counts)) = (lease, self.counts.lock()) {
            *counts
                .entry(format!("{operation} on a lease item"))
                .or_default() += 1;
        }
        Ok(())
    }

    // Per attempt: a retried request counts again (it is another call to the server).
    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let (Some(metadata), Ok(mut counts)) = (cfg.load::<Metadata>(), self.counts.lock()) {
            *counts.entry(metadata.name().to_owned()).or_default() += 1;
        }
        Ok(())
    }
}

/// Makes writes to some items fail without being applied, while armed: an `UpdateItem` whose
/// sort key starts with `prefix` is sent to a table that does not exist (so the server
/// changes nothing), and its "no such table" answer is turned into throttling, which the
/// store retries until it gives up. The shape of a batch whose first item landed and whose
/// second surely did not.
#[derive(Debug)]
pub struct FailItems {
    prefix: String,
    armed: Arc<std::sync::atomic::AtomicBool>,
    failed: Arc<AtomicU64>,
}

/// Marks an attempt whose request [`FailItems`] redirected.
#[derive(Debug, Clone, Copy)]
struct Redirected;

impl aws_smithy_types::config_bag::Storable for Redirected {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// The table [`FailItems`] redirects writes to.
const NO_SUCH_TABLE: &str = "quota-verify-no-such-table";

impl FailItems {
    /// Fails writes to items whose sort key starts with `prefix`; returns the interceptor,
    /// its arming switch (armed at first) and the count of writes failed.
    pub fn starting_with(
        prefix: &str,
    ) -> (Self, Arc<std::sync::atomic::AtomicBool>, Arc<AtomicU64>) {
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let failed = Arc::new(AtomicU64::new(0));
        let faults = Self {
            prefix: prefix.to_owned(),
            armed: Arc::clone(&armed),
            failed: Arc::clone(&failed),
        };
        (faults, armed, failed)
    }
}

impl Intercept for FailItems {
    fn name(&self) -> &'static str {
        "fail-items"
    }

    fn modify_before_serialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(input) = update_input(context) else {
            return Ok(());
        };
        let targeted = input
            .key
            .as_ref()
            .and_then(|key| key.get("SK"))
            .and_then(|sk| sk.as_s().ok())
            .is_some_and(|sk| sk.starts_with(&self.prefix));
        if targeted {
            redirect(input, cfg);
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Only this attempt's request, redirected above: the server changed nothing.
        throttle_redirected(context, cfg).map(|_| ())
    }
}

/// The write lands, its answer is lost, and every retry is refused without being applied,
/// until the store gives up: the path where a write ends "outcome unknown" after all its
/// attempts. While armed, the first `UpdateItem` is applied and its response replaced by a
/// dropped connection; every later one is sent to a missing table and answered with
/// throttling. Disarms itself after `refusals` refused attempts.
#[derive(Debug)]
pub struct LandThenRefuse {
    landed: std::sync::atomic::AtomicBool,
    refusals_left: AtomicU64,
    /// Answer the refused retry as invalid (the missing table's own error, not retried)
    /// instead of with throttling.
    reject: bool,
}

impl LandThenRefuse {
    /// Lands one write, then refuses the next `refusals` attempts (throttled).
    pub fn new(refusals: u64) -> Self {
        Self {
            landed: std::sync::atomic::AtomicBool::new(false),
            refusals_left: AtomicU64::new(refusals),
            reject: false,
        }
    }

    /// Lands one write, then rejects its retry as invalid: a refusal that is not retried,
    /// after an attempt that landed.
    pub fn rejecting() -> Self {
        Self {
            reject: true,
            ..Self::new(1)
        }
    }

    fn refusing(&self) -> bool {
        self.landed.load(Ordering::SeqCst) && self.refusals_left.load(Ordering::SeqCst) > 0
    }
}

impl Intercept for LandThenRefuse {
    fn name(&self) -> &'static str {
        "land-then-refuse"
    }

    fn modify_before_serialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.refusing() {
            return Ok(());
        }
        if let Some(input) = update_input(context) {
            redirect(input, cfg);
            self.refusals_left.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.reject && throttle_redirected(context, cfg)? {
            return Ok(());
        }
        let is_update = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == "UpdateItem");
        let applied = context.response().status().as_u16() == 200;
        if is_update && applied && !self.landed.swap(true, Ordering::SeqCst) {
            return Err("injected: the connection dropped after the write was applied".into());
        }
        Ok(())
    }
}

/// While armed, every `UpdateItem` attempt is sent to a table that does not exist (the server
/// changes nothing) and answered with a dropped connection, so the caller cannot tell that
/// it did not land: the write ends in doubt after its retries, though nothing was applied.
/// Returns the interceptor and its arming switch (disarmed at first).
#[derive(Debug)]
pub struct DropUnapplied {
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl DropUnapplied {
    /// The interceptor, disarmed, and its switch.
    pub fn new() -> (Self, Arc<std::sync::atomic::AtomicBool>) {
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let armed_too = Arc::clone(&armed);
        (Self { armed }, armed_too)
    }
}

impl Intercept for DropUnapplied {
    fn name(&self) -> &'static str {
        "drop-unapplied"
    }

    fn modify_before_serialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(input) = update_input(context) {
            redirect(input, cfg);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        _context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Redirected>().is_some() {
            return Err("injected: the connection dropped (the write was not applied)".into());
        }
        Ok(())
    }
}

/// Answers attempts of one operation with a service error, whatever the server did with the
/// request: for the answers a caller must tell apart by their code (a table another creator
/// made, a describe refused, a compare-and-set failing for another reason than its condition).
/// Answers the first `count` attempts of the operation (all of them with `u64::MAX`); with
/// [`ErrorAnswers::conditional_only`], only `UpdateItem`s that carry a condition.
#[derive(Debug)]
pub struct ErrorAnswers {
    operation: &'static str,
    status: u16,
    kind: &'static str,
    conditional_only: bool,
    left: AtomicU64,
    answered: Arc<AtomicU64>,
}

/// Marks an attempt whose input [`ErrorAnswers`] selected.
#[derive(Debug, Clone, Copy)]
struct Selected;

impl aws_smithy_types::config_bag::Storable for Selected {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl ErrorAnswers {
    /// Answers the first `count` attempts of `operation` (`"DescribeTable"`, ...) with the
    /// service error `kind`, sent with `status`; returns the interceptor and the count of
    /// answers it replaced.
    pub fn new(
        operation: &'static str,
        status: u16,
        kind: &'static str,
        count: u64,
    ) -> (Self, Arc<AtomicU64>) {
        let answered = Arc::new(AtomicU64::new(0));
        let answers = Self {
            operation,
            status,
            kind,
            conditional_only: false,
            left: AtomicU64::new(count),
            answered: Arc::clone(&answered),
        };
        (answers, answered)
    }

    /// Only `UpdateItem`s with a condition expression (compare-and-set writes).
    pub fn conditional_only(mut self) -> Self {
        self.conditional_only = true;
        self
    }
}

impl Intercept for ErrorAnswers {
    fn name(&self) -> &'static str {
        "error-answers"
    }

    fn modify_before_serialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let selected = !self.conditional_only
            || context
                .input()
                .downcast_ref::<aws_sdk_dynamodb::operation::update_item::UpdateItemInput>()
                .is_some_and(|update| update.condition_expression().is_some());
        if selected {
            cfg.interceptor_state().store_put(Selected);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let ours = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == self.operation);
        if !ours || cfg.load::<Selected>().is_none() {
            return Ok(());
        }
        let take = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            });
        if take.is_ok() {
            self.answered.fetch_add(1, Ordering::SeqCst);
            *context.response_mut() = error_response(self.status, self.kind, "injected")?;
        }
        Ok(())
    }
}

/// A DynamoDB error response of `kind` with `status`, as the server would send it.
fn error_response(status: u16, kind: &str, message: &str) -> Result<HttpResponse, BoxError> {
    let body =
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"{message}"}}"#);
    let mut response = HttpResponse::new(StatusCode::try_from(status)?, SdkBody::from(body));
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    Ok(response)
}

/// Sends `input` to a table that does not exist (the server changes nothing), marking the
/// attempt so [`throttle_redirected`] answers it.
fn redirect(
    input: &mut aws_sdk_dynamodb::operation::update_item::UpdateItemInput,
    cfg: &mut ConfigBag,
) {
    input.table_name = Some(NO_SUCH_TABLE.to_owned());
    cfg.interceptor_state().store_put(Redirected);
}

/// Answers a redirected attempt with throttling (so the store retries it, and finally gives
/// up with the write surely not applied); returns whether it did.
fn throttle_redirected(
    context: &mut BeforeDeserializationInterceptorContextMut<'_>,
    cfg: &ConfigBag,
) -> Result<bool, BoxError> {
    if cfg.load::<Redirected>().is_none() {
        return Ok(false);
    }
    *context.response_mut() = error_response(
        400,
        "ProvisionedThroughputExceededException",
        "injected: refused, not applied",
    )?;
    Ok(true)
}

/// The request's input, if it is an `UpdateItem`'s.
fn update_input<'a>(
    context: &'a mut aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextMut<'_>,
) -> Option<&'a mut aws_sdk_dynamodb::operation::update_item::UpdateItemInput> {
    context.input_mut().downcast_mut()
}
