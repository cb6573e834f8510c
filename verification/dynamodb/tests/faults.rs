//! Faults injected at the SDK layer after the server applied a write (the "timeout after
//! apply" case): throttling and server errors returned for writes that landed, and responses
//! lost outright. Retries must neither lose nor double anything.

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
use quota_dynamodb_tests::{Server, flush, record_concurrently};
use quota_tracker::{Store, TickingClock};

/// Every `every`-th successful `UpdateItem` response is replaced, in turn, by a throttling
/// error, a server error, or a lost response. Never two in a row, so retries get through.
#[derive(Debug)]
struct AfterApplyFaults {
    every: u64,
    updates: AtomicU64,
    injected: Arc<AtomicU64>,
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
        let body = format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected after the write was applied"}}"#
        );
        let mut response = HttpResponse::new(StatusCode::try_from(status)?, SdkBody::from(body));
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        *context.response_mut() = response;
        Ok(())
    }
}

#[test]
fn retried_writes_that_had_landed_are_not_applied_twice() {
    let server = Server::start();
    let clock = TickingClock::start();
    let injected = Arc::new(AtomicU64::new(0));
    let faults = AfterApplyFaults {
        every: 3,
        updates: AtomicU64::new(0),
        injected: Arc::clone(&injected),
    };
    let store = Arc::new(server.store_with("faults", clock.clone(), |b| b.interceptor(faults)));
    let (instances, expected) = record_concurrently(&store, &clock, "faulty", 2, 2, 300, 2);
    flush(&instances);
    let day = instances[0].tracker().state().day();
    let stored = store.load_day(day).expect("readable").expect("item exists");
    assert_eq!(
        stored.used("tiingo"),
        expected[0],
        "tiingo: nothing lost, nothing doubled"
    );
    assert_eq!(
        stored.used("finnhub"),
        expected[1],
        "finnhub: nothing lost, nothing doubled"
    );
    let injected = injected.load(Ordering::SeqCst);
    assert!(injected >= 10, "only {injected} faults injected");
    eprintln!("{injected} faults injected after applied writes; table exact ({expected:?})");
}
