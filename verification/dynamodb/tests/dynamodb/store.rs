//! The store's contract against a real DynamoDB-compatible server: a retried batch lands
//! once, items keep the original schema and their limits, errors name their cause.

use std::sync::Arc;

use quota_dynamodb::{BlockingDynamoStore, DynamoConfig};
use quota_dynamodb_tests::Server;
use quota_dynamodb_tests::faults::{ErrorAnswers, LostAdds, RepeatedReturns};
use quota_tracker::{
    DayDeltas, ManualClock, QuotaConfig, Store, StoreErrorKind, SyncBatch, SyncReport, Timestamp,
    UtcDay,
};

fn day() -> UtcDay {
    UtcDay::from_ymd(2026, 11, 29).expect("valid")
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp(day().start().0 + 3_600_000)))
}

fn batch(instance: &str, seq: u64, deltas: Vec<i64>) -> SyncBatch {
    SyncBatch {
        instance: instance.into(),
        seq,
        config: Arc::new(QuotaConfig::default()),
        days: vec![DayDeltas { day: day(), deltas }],
        windows: Vec::new(),
        returns: Vec::new(),
    }
}

#[test]
fn a_retried_batch_lands_once_and_a_new_one_adds() {
    let server = Server::start();
    let store = server.store("retries", clock());
    let first = batch("a", 1, vec![3, 1, 0]);
    let fresh = store.apply_batch(&first).expect("applied");
    assert_eq!(fresh.map(|d| d.used("tiingo")), Some(3));
    // The same batch again, as after a timeout whose first attempt did land.
    store
        .apply_batch(&first)
        .expect("a duplicate is not an error");
    let stored = store
        .load_day(day())
        .expect("readable")
        .expect("item exists");
    assert_eq!(
        (stored.used("tiingo"), stored.used("finnhub")),
        (3, 1),
        "applied once"
    );
    // Control: a new batch (the next sequence) does add, and so would the retry above
    // without the sequence condition.
    store
        .apply_batch(&batch("a", 2, vec![3, 0, 0]))
        .expect("applied");
    // Another instance's sequence numbers are its own.
    store
        .apply_batch(&batch("b", 1, vec![1, 0, 0]))
        .expect("applied");
    let stored = store
        .load_day(day())
        .expect("readable")
        .expect("item exists");
    assert_eq!(stored.used("tiingo"), 7);
}

#[test]
fn a_later_process_reusing_an_instance_name_adds_its_calls() {
    // A name set by hand (a pod's) outlives its process. The store drops any batch numbered
    // at or below the name's last applied one, so the next process must number past it.
    let server = Server::start();
    let clock = clock();
    let store = Arc::new(server.store("reused-name", clock.clone()));
    let process =
        || quota_dynamodb_tests::by_hand("pod-0", QuotaConfig::default(), clock.clone(), &store);
    let first = process();
    let tiingo = first.tracker().service("tiingo").expect("configured");
    for _ in 0..3 {
        first.record_call(tiingo, 1).expect("recorded");
        assert!(matches!(first.sync(), SyncReport::Applied { calls: 1, .. }));
    }
    drop(first);
    clock.advance(1);
    let second = process();
    second.record_call(tiingo, 2).expect("recorded");
    assert!(matches!(
        second.sync(),
        SyncReport::Applied { calls: 2, .. }
    ));
    let stored = store
        .load_day(day())
        .expect("readable")
        .expect("item exists");
    assert_eq!(
        stored.used("tiingo"),
        5,
        "the later process's batch was dropped"
    );
}

#[test]
fn items_keep_the_original_schema_and_their_limits() {
    let server = Server::start();
    let clock = clock();
    let store = server.store("schema", clock.clone());
    store
        .apply_batch(&batch("a", 1, vec![2, 0, 5]))
        .expect("applied");
    let read = || raw_item(&store, "schema", "2026-11-29");
    let item = read();
    let n = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).cloned();
    let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(n("tiingo_used").as_deref(), Some("2"));
    assert_eq!(n("sendgrid_used").as_deref(), Some("5"));
    assert_eq!(n("finnhub_used"), None, "no delta, no counter");
    assert_eq!(n("total_api_calls_today").as_deref(), Some("7"));
    assert_eq!(
        n("finnhub_limit").as_deref(),
        Some("60"),
        "limits stored with the counters"
    );
    assert_eq!(s("entity_type").as_deref(), Some("QUOTA_TRACKER"));
    assert_eq!(s("updated_at").as_deref(), Some("2026-11-29T01:00:00.000Z"));
    let ttl: i64 = n("ttl_timestamp")
        .and_then(|t| t.parse().ok())
        .expect("a ttl");
    assert_eq!(ttl, (day().start().0 + 3_600_000) / 1000 + 7 * 24 * 3600);
    // A later write moves updated_at; the TTL and entity type stay as the item was created.
    clock.set(Timestamp(day().start().0 + 2 * 3_600_000));
    store
        .apply_batch(&batch("a", 2, vec![1, 0, 0]))
        .expect("applied");
    let item = read();
    let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let n = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).cloned();
    assert_eq!(s("updated_at").as_deref(), Some("2026-11-29T02:00:00.000Z"));
    assert_eq!(n("ttl_timestamp"), Some(ttl.to_string()), "ttl set once");
    assert_eq!(s("entity_type").as_deref(), Some("QUOTA_TRACKER"));
}

/// The item `sort_key` of `table` as the server holds it (a consistent read by the SDK).
fn raw_item(
    store: &BlockingDynamoStore,
    table: &str,
    sort_key: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let get = store
        .inner()
        .client()
        .get_item()
        .table_name(table)
        .key("PK", aws_value("SYSTEM#QUOTA"))
        .key("SK", aws_value(sort_key))
        .consistent_read(true);
    let output = runtime.block_on(get.send()).expect("readable");
    output.item().cloned().expect("the item exists")
}

fn aws_value(s: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::S(s.to_owned())
}

#[test]
fn errors_name_their_cause() {
    let server = Server::start();
    let config = server.config("no-such-table");
    let store = BlockingDynamoStore::connect(&config, clock()).expect("runtime");
    let err = store
        .apply_batch(&batch("a", 1, vec![1, 0, 0]))
        .expect_err("no table");
    assert_eq!(err.kind, StoreErrorKind::Rejected);
    assert!(
        err.message
            .contains("table \"no-such-table\" does not exist"),
        "{err}"
    );

    // Nothing listens on this port: the write did not happen, or may have; either way the
    // tracker keeps the deltas (pending or in doubt), and the message says what failed.
    let config = DynamoConfig {
        table: "t".to_owned(),
        endpoint: Some("http://127.0.0.1:9".to_owned()),
        region: "us-east-1".to_owned(),
    };
    let store = BlockingDynamoStore::connect(&config, clock()).expect("runtime");
    let err = store
        .apply_batch(&batch("a", 1, vec![1, 0, 0]))
        .expect_err("unreachable");
    assert_ne!(err.kind, StoreErrorKind::Rejected, "{err}");
    assert!(err.message.contains("gave up after"), "{err}");
}

#[test]
fn the_emulator_qualifies_under_concurrent_adds_and_conditional_writes() {
    let server = Server::start();
    let config = server.config("store-check");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = runtime
        .block_on(quota_dynamodb::qualify(&config, 16, 20))
        .expect("ran");
    assert_eq!(result.expected, 320);
    assert!(result.passed(), "{result:?}");
    assert!(result.cas_succeeded > 0, "{result:?}");
}

#[test]
fn a_lossy_endpoint_fails_the_store_check_with_the_counts() {
    // The emulator, made to acknowledge every 25th ADD without applying it (client-side
    // rewrite): the check must notice the loss in the final count and in the returns.
    let server = Server::start();
    let config = server.config("store-check-lossy");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = runtime
        .block_on(async {
            let builder = quota_dynamodb::client_config(&config).await;
            let client = aws_sdk_dynamodb::Client::from_conf(
                builder.interceptor(LostAdds::every(25)).build(),
            );
            quota_dynamodb::qualify_client(client, &config.table, 16, 25).await
        })
        .expect("ran");
    assert!(!result.passed(), "{result:?}");
    assert_eq!(
        (result.expected, result.observed, result.lost),
        (400, 384, 16),
        "{result:?}"
    );
    assert!(result.repeated_returns >= 15, "{result:?}");
}

#[test]
fn an_endpoint_returning_a_repeated_value_is_non_atomic_with_the_count() {
    // The emulator, made to answer every 20th ADD with the previous ADD's return (client-side
    // rewrite of the answer; every write lands): nothing lost or doubled, and the verdict
    // must say non-atomic, with the count, not "lost-or-doubled".
    let server = Server::start();
    let config = server.config("store-check-repeated");
    let repeats = RepeatedReturns::every(20);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = runtime
        .block_on(async {
            let builder = quota_dynamodb::client_config(&config).await;
            let client =
                aws_sdk_dynamodb::Client::from_conf(builder.interceptor(repeats.clone()).build());
            quota_dynamodb::qualify_client(client, &config.table, 16, 25).await
        })
        .expect("ran");
    assert_eq!((result.expected, result.observed), (400, 400), "{result:?}");
    assert_eq!((result.lost, result.doubled), (0, 0), "{result:?}");
    assert_eq!(repeats.repeated(), 20, "every 20th of 400 answers");
    assert_eq!(result.repeated_returns, repeats.repeated(), "{result:?}");
    assert_eq!(
        result.verdict(),
        quota_dynamodb::Verdict::NonAtomic,
        "{result:?}"
    );
    assert!(!result.passed());
}

#[test]
fn a_table_with_another_key_is_refused_as_not_a_quota_table() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, KeySchemaElement, KeyType, ProvisionedThroughput, ScalarAttributeType,
    };
    let server = Server::start();
    let config = server.config("not-a-quota-table");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = quota_dynamodb::connect(&config).await;
        let created = client
            .create_table()
            .table_name(&config.table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("valid"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("valid"),
            )
            .provisioned_throughput(
                ProvisionedThroughput::builder()
                    .read_capacity_units(1)
                    .write_capacity_units(1)
                    .build()
                    .expect("valid"),
            )
            .send()
            .await;
        created.expect("the other table is created");
    });
    let store = BlockingDynamoStore::connect(&config, clock()).expect("runtime");
    let error = store
        .create_table_if_missing()
        .expect_err("another key schema is not ours");
    assert_eq!(error.kind, StoreErrorKind::Rejected);
    assert!(error.message.contains("not a quota table"), "{error}");
    assert!(error.message.contains("id (HASH, S)"), "{error}");
}

#[test]
fn an_item_someone_else_mangled_is_a_clear_error_and_loses_nothing_recorded() {
    let server = Server::start();
    let clock = clock();
    let store = Arc::new(server.store("mangled", clock.clone()));
    // Another writer stored tiingo's counter as a string.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let put = store
        .inner()
        .client()
        .put_item()
        .table_name("mangled")
        .item("PK", aws_value("SYSTEM#QUOTA"))
        .item("SK", aws_value("2026-11-29"))
        .item("tiingo_used", aws_value("12"));
    runtime.block_on(put.send()).expect("written");
    drop(runtime);
    let error = store.load_day(day()).expect_err("unreadable");
    assert_eq!(error.kind, StoreErrorKind::Rejected);
    assert!(
        error
            .message
            .contains("attribute tiingo_used of item 2026-11-29 holds the string \"12\""),
        "{error}"
    );
    // A tracker on that table: its reload fails and keeps what it knew, its sync is refused
    // by the server (ADD on a string) and keeps the calls pending; nothing recorded is lost.
    let tracker = quota_tracker::Tracker::new(QuotaConfig::default(), clock.clone());
    let synced = quota_tracker::SyncedTracker::new(tracker, Arc::clone(&store));
    let tiingo = synced.tracker().service("tiingo").expect("configured");
    synced.tracker().record_call(tiingo, 3).expect("recorded");
    assert!(matches!(
        synced.reload(),
        quota_tracker::ReloadReport::Failed(_)
    ));
    assert!(matches!(
        synced.sync(),
        quota_tracker::SyncReport::Failed(_)
    ));
    assert_eq!(synced.tracker().usage(tiingo).map(|u| u.used()), Ok(3));
    assert_eq!(synced.tracker().unsynced()[0].deltas, vec![3, 0, 0]);
}

#[test]
fn answered_grant_tickets_are_removed_by_the_next_grant_and_a_late_repeat_grants_nothing() {
    // A grant leaves `grant_<instance>_<ticket>` on the lease item, so that a repeat is
    // answered rather than granted again. Kept for every grant, a long window's item would
    // grow without bound (DynamoDB refuses items past 400 KB); the next grant removes the
    // tickets already answered and raises the instance's floor, at or under which no ticket
    // is granted.
    let server = Server::start();
    let table = "ticket-pruning";
    let store = server.store(table, clock());
    let window = lease_window();
    let request = |instance, ticket| finnhub_lease(instance, ticket, 10, 1_000);
    for ticket in 1..=20 {
        assert_eq!(store.grant_lease(&request("a", ticket)), Ok(10));
    }
    let item = raw_item(&store, table, &format!("LEASE#finnhub#{window}"));
    let mut kept: Vec<&String> = item.keys().filter(|k| k.starts_with("grant_")).collect();
    kept.sort();
    assert_eq!(kept, ["grant_a_20"], "tickets already answered were kept");
    // The latest ticket is still recognised: answered, not granted again.
    assert_eq!(store.grant_lease(&request("a", 20)), Ok(10));
    // A late repeat of a removed one (an attempt the server ran after its answer) is under
    // the floor: nothing granted.
    assert_eq!(store.grant_lease(&request("a", 3)), Ok(0));
    assert_eq!(store.granted("finnhub", window), Ok(200));
    // Another instance's tickets and floor are its own.
    assert_eq!(store.grant_lease(&request("b", 3)), Ok(10));
    assert_eq!(store.granted("finnhub", window), Ok(210));
}

#[test]
fn an_instances_ticket_floor_only_rises() {
    // Two grants of one instance at once can carry different tickets to remove (here, from
    // two stores of it): the one carrying the lower floor lands second and must not lower
    // it, or a removed ticket could be granted again.
    let server = Server::start();
    let (first, second) = (
        server.store("ticket-floor", clock()),
        server.store("ticket-floor", clock()),
    );
    let window = lease_window();
    let request = |ticket| finnhub_lease("a", ticket, 10, 1_000);
    assert_eq!(first.grant_lease(&request(5)), Ok(10));
    assert_eq!(second.grant_lease(&request(19)), Ok(10));
    // Removes 19: the floor is 19.
    assert_eq!(second.grant_lease(&request(20)), Ok(10));
    // Removes 5, and must leave the floor at 19.
    assert_eq!(first.grant_lease(&request(21)), Ok(10));
    assert_eq!(first.grant_lease(&request(19)), Ok(0), "19 granted twice");
    assert_eq!(first.granted("finnhub", window), Ok(40));
}

#[test]
fn a_grant_in_doubt_that_never_landed_is_granted_when_asked_again_after_later_grants() {
    // No floor may pass a ticket in doubt: the tracker asks again with it, and if its first
    // try did not land it must be granted then, not answered 0 while the window has room.
    let server = Server::start();
    let (dropping, armed) = quota_dynamodb_tests::faults::DropUnapplied::new();
    let store = server.store_with("ticket-in-doubt", clock(), |b| b.interceptor(dropping));
    let request = |ticket| finnhub_lease("a", ticket, 10, 1_000);
    assert_eq!(store.grant_lease(&request(1)), Ok(10));
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let doubt = store
        .grant_lease(&request(2))
        .expect_err("every attempt dropped");
    armed.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(doubt.kind, StoreErrorKind::OutcomeUnknown, "{doubt}");
    // Later grants remove what is below the doubt, and nothing above it.
    assert_eq!(store.grant_lease(&request(3)), Ok(10));
    assert_eq!(store.grant_lease(&request(4)), Ok(10));
    assert_eq!(
        store.grant_lease(&request(2)),
        Ok(10),
        "asked again: granted"
    );
    assert_eq!(store.granted("finnhub", lease_window()), Ok(40));
}

/// The minute window the lease tests grant in.
fn lease_window() -> quota_tracker::Window {
    quota_tracker::Window::containing(
        quota_tracker::Period::Minute,
        Timestamp(day().start().0 + 3_600_000),
    )
}

/// A request of `instance` under `ticket` for `want` calls of finnhub's [`lease_window`].
fn finnhub_lease(
    instance: &str,
    ticket: u64,
    want: u64,
    ceiling: u64,
) -> quota_tracker::LeaseRequest {
    quota_tracker::LeaseRequest {
        instance: instance.into(),
        ticket,
        service: QuotaConfig::default()
            .service("finnhub")
            .expect("configured"),
        key: quota_tracker::WindowKey {
            service: "finnhub".to_owned(),
            window: lease_window(),
        },
        want,
        ceiling,
    }
}

#[test]
fn leases_are_granted_up_to_the_ceiling_and_returns_give_them_back() {
    let server = Server::start();
    let store = server.store("leases", clock());
    let window = lease_window();
    // Each request a new grant: a ticket of its own.
    let tickets = std::cell::Cell::new(0);
    let request = |want| {
        tickets.set(tickets.get() + 1);
        finnhub_lease("a", tickets.get(), want, 25)
    };
    // 10, 10, then the 5 left, then nothing: the window's grants never pass the ceiling.
    let grants: Vec<u64> = (0..4)
        .map(|_| store.grant_lease(&request(10)).expect("answered"))
        .collect();
    assert_eq!(grants, vec![10, 10, 5, 0]);
    assert_eq!(store.granted("finnhub", window), Ok(25));
    assert_eq!(
        store.grant_lease(&request(30)),
        Ok(0),
        "a want past the ceiling"
    );
    // A batch giving 7 back makes room for 7 more, and no more.
    let mut back = batch("a", 1, vec![0, 0, 0]);
    back.returns = vec![quota_tracker::LeaseReturn {
        service: request(0).service,
        window,
        count: 7,
    }];
    store.apply_batch(&back).expect("applied");
    assert_eq!(store.granted("finnhub", window), Ok(18));
    assert_eq!(store.grant_lease(&request(10)), Ok(7));
    assert_eq!(store.granted("finnhub", window), Ok(25));
}

#[test]
fn a_window_item_holds_its_own_services_limit_and_period() {
    let server = Server::start();
    let store = server.store("window-schema", clock());
    let config = QuotaConfig::default();
    let finnhub = config.service("finnhub").expect("configured");
    let minute = quota_tracker::Window::containing(
        quota_tracker::Period::Minute,
        Timestamp(day().start().0 + 3_600_000),
    );
    let mut with_window = batch("a", 1, vec![0, 4, 0]);
    with_window.windows = vec![quota_tracker::WindowDelta {
        service: finnhub,
        window: minute,
        delta: 4,
    }];
    store.apply_batch(&with_window).expect("applied");
    let item = raw_item(&store, "window-schema", "WINDOW#finnhub#2026-11-29T01:00");
    let n = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).cloned();
    let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    // finnhub's 60 a minute, not the first service's (tiingo, 500 a month).
    assert_eq!(n("used").as_deref(), Some("4"));
    assert_eq!(n("limit").as_deref(), Some("60"));
    assert_eq!(s("period").as_deref(), Some("minute"));
}

#[test]
fn a_table_another_creator_made_first_is_used_and_other_creation_errors_are_reported() {
    let server = Server::start();
    // Another instance creates the table between this one's describe and its create: the
    // describe is answered "not found" (as it would have been a moment earlier), and the
    // server's own answer to the create is that the table exists.
    drop(server.store("created-concurrently", clock()));
    let (not_found, answered) =
        ErrorAnswers::new("DescribeTable", 400, "ResourceNotFoundException", 1);
    let late = server.connect_with("created-concurrently", clock(), |b| {
        b.interceptor(not_found)
    });
    late.create_table_if_missing()
        .expect("a table another creator made is the table we wanted");
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A create refused for another reason is an error that names it, not a table assumed made.
    let (refused, _) = ErrorAnswers::new("CreateTable", 400, "ValidationException", 1);
    let store = server.connect_with("creation-refused", clock(), |b| b.interceptor(refused));
    let err = store
        .create_table_if_missing()
        .expect_err("the create was refused");
    assert_eq!(err.kind, StoreErrorKind::Rejected, "{err}");
    assert!(err.message.contains("ValidationException"), "{err}");
}

#[test]
fn a_describe_refused_for_another_reason_than_not_found_is_reported_not_a_reason_to_create() {
    let server = Server::start();
    let (denied, answered) = ErrorAnswers::new("DescribeTable", 400, "AccessDeniedException", 1);
    let calls = quota_dynamodb_tests::faults::CountCalls::default();
    let counted = calls.clone();
    let store = server.connect_with("describe-denied", clock(), |b| {
        b.interceptor(denied).interceptor(counted)
    });
    let err = store
        .create_table_if_missing()
        .expect_err("the describe was refused");
    assert_eq!(err.kind, StoreErrorKind::Rejected, "{err}");
    assert!(err.message.contains("AccessDeniedException"), "{err}");
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        calls.counts().get("CreateTable"),
        None,
        "{:?}",
        calls.counts()
    );
}

#[test]
fn a_table_created_whose_answer_was_lost_is_found_by_the_retry_and_used() {
    // The server creates the table; its answer is replaced by a server error (as a timeout on
    // a loaded machine would lose it). The store looks again, finds it, waits for ACTIVE.
    let server = Server::start();
    let (lost, answered) = ErrorAnswers::new("CreateTable", 500, "InternalServerError", 1);
    let store = server.connect_with("create-answer-lost", clock(), |b| b.interceptor(lost));
    store
        .create_table_if_missing()
        .expect("created, and found by the retry");
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 1);
    store
        .apply_batch(&batch("a", 1, vec![1, 0, 0]))
        .expect("the table is usable");
}

#[test]
fn compare_and_sets_failing_for_another_reason_than_their_condition_fail_the_store_check() {
    // Every conditional write answered with a validation error: `store-check` must stop with
    // that error, not count them as lost races and qualify a store it never saw compare-and-set.
    let server = Server::start();
    let config = server.config("store-check-cas-refused");
    let (refused, answered) = ErrorAnswers::new("UpdateItem", 400, "ValidationException", u64::MAX);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = runtime.block_on(async {
        let builder = quota_dynamodb::client_config(&config).await;
        let client = aws_sdk_dynamodb::Client::from_conf(
            builder.interceptor(refused.conditional_only()).build(),
        );
        quota_dynamodb::qualify_client(client, &config.table, 4, 5).await
    });
    let err = result.expect_err("no compare-and-set could be made");
    assert!(err.message.contains("conditional write"), "{err}");
    assert!(err.message.contains("ValidationException"), "{err}");
    assert!(answered.load(std::sync::atomic::Ordering::SeqCst) > 0);
}
