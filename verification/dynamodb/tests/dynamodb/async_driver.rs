//! The tracker driven from async code against the real server: many tasks on a multi-thread
//! tokio runtime record and admit through `AsyncSyncedTracker` on the async `DynamoStore`,
//! a `SyncTask` syncs in the background, and after its shutdown the table holds exactly what
//! was recorded. The blocking store, called from inside a runtime, fails with a clear error
//! instead of tokio's panic.

use std::sync::Arc;
use std::time::Duration;

use quota_dynamodb::{DynamoStore, SyncTask};
use quota_dynamodb_tests::{Conservation, Server};
use quota_tracker::{
    AsyncStore, AsyncSyncedTracker, Clock, LeaseRequest, QuotaConfig, Store, StoreError,
    StoreErrorKind, StoredDay, StoredWindow, SyncBatch, SyncReport, SyncedTracker, TickingClock,
    Tracker, TrackerOptions, UtcDay, WindowKey,
};

const TASKS: u64 = 64;
const CALLS: u64 = 1_000;

/// Counts, per store operation, whether its future ever returned `Pending`: an operation
/// that awaits the network gives its worker back at least once; one that blocks its worker
/// until the answer comes is ready on its first poll. That is how the test knows no worker
/// was blocked: every operation of the run yielded.
#[derive(Default)]
struct Yields {
    operations: std::sync::atomic::AtomicU64,
    ready_at_once: std::sync::atomic::AtomicU64,
}

impl Yields {
    async fn watch<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        use std::sync::atomic::Ordering::Relaxed;
        let mut future = std::pin::pin!(future);
        let mut polls = 0u64;
        let out = std::future::poll_fn(|cx| {
            polls += 1;
            future.as_mut().poll(cx)
        })
        .await;
        self.operations.fetch_add(1, Relaxed);
        if polls == 1 {
            self.ready_at_once.fetch_add(1, Relaxed);
        }
        out
    }

    fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.operations.load(Relaxed),
            self.ready_at_once.load(Relaxed),
        )
    }
}

/// The emulator's store with every operation watched; `blocking`: the control, which runs
/// each write to completion on a runtime of its own before returning, as a blocking store
/// called from a task would.
struct Watched {
    store: DynamoStore,
    yields: Arc<Yields>,
    blocking: bool,
}

impl AsyncStore for Watched {
    async fn load_day(&self, day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        self.yields.watch(self.store.load(day)).await
    }

    async fn load_windows(&self, windows: &[WindowKey]) -> Result<Vec<StoredWindow>, StoreError> {
        self.yields.watch(self.store.load_windows(windows)).await
    }

    async fn apply_batch(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        if !self.blocking {
            return self.yields.watch(self.store.apply(batch)).await;
        }
        let blocked = || {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        let own = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("runtime");
                        own.block_on(self.store.apply(batch))
                    })
                    .join()
                    .expect("the blocking write ran")
            })
        };
        self.yields.watch(async { blocked() }).await
    }

    async fn grant_lease(&self, request: &LeaseRequest) -> Result<u64, StoreError> {
        self.yields.watch(self.store.grant_lease(request)).await
    }
}

/// What a run of [`run_tasks`] saw.
struct Run {
    expected: [u64; 3],
    day: UtcDay,
    /// Store operations, and those ready on their first poll (a blocked worker).
    operations: u64,
    ready_at_once: u64,
}

/// `tasks` tasks × `calls` calls (half admitting, one refund in ten; half recording) through
/// one tracker on `store`, a `SyncTask` beside them, on a 4-worker runtime.
fn run_tasks(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    table: &str,
    blocking: bool,
    instance: &str,
    tasks: u64,
    calls: u64,
) -> Run {
    let clock = TickingClock::start();
    runtime.block_on(async {
        let options = TrackerOptions {
            // Syncs due often, so tasks also await them inline beside the background task.
            sync_interval_ms: 2,
            reload_interval_ms: 5,
            instance: instance.into(),
        };
        let tracker = Tracker::with_options(roomy(), clock.clone(), options);
        let yields = Arc::new(Yields::default());
        let store = Watched {
            store: DynamoStore::connect(&server.config(table), clock.clone()).await,
            yields: Arc::clone(&yields),
            blocking,
        };
        let synced = Arc::new(AsyncSyncedTracker::new(tracker, store));
        let task = SyncTask::spawn(Arc::clone(&synced), Duration::from_millis(25))
            .expect("inside the runtime");
        let ids: Vec<_> = synced.tracker().config().ids().collect();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let synced = Arc::clone(&synced);
                let id = ids[(t % 3) as usize];
                tokio::spawn(async move {
                    let mut kept = 0u64;
                    for i in 0..calls {
                        if t % 2 == 0 {
                            let admission = synced.admit(id, 1).await.expect("admitted");
                            let reservation = admission.reservation.expect("room to spare");
                            if i % 10 == 0 {
                                synced.refund(reservation).expect("refunded");
                            } else {
                                kept += 1;
                            }
                        } else {
                            synced.record_call(id, 1).await.expect("recorded");
                            kept += 1;
                        }
                        tokio::task::yield_now().await;
                    }
                    (t % 3, kept)
                })
            })
            .collect();
        let mut expected = [0u64; 3];
        for handle in handles {
            let (service, kept) = handle.await.expect("task ran");
            expected[service as usize] += kept;
        }
        let totals = task.shutdown().await;
        // The blocking control blocks the runtime's workers, so on a loaded machine the
        // sync task may never get a turn while the tasks' own inline syncs carry every call
        // (seen once in a fresh-clone gate: applied 0); what the control shows is the
        // blocking, measured below. The real store's run must have the task syncing.
        assert!(
            blocking || totals.applied > 0,
            "the sync task synced: {totals:?}"
        );
        assert!(
            synced
                .tracker()
                .unsynced()
                .iter()
                .all(|d| d.deltas.iter().all(|&x| x == 0)),
            "nothing left unsynced after the shutdown: {:?}",
            synced.tracker().unsynced()
        );
        eprintln!("{instance}: sync task {totals:?}");
        let (operations, ready_at_once) = yields.counts();
        Run {
            expected,
            day: synced.tracker().state().day(),
            operations,
            ready_at_once,
        }
    })
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Limits far above the workload, so every admission is admitted.
fn roomy() -> QuotaConfig {
    let service = |name: &str| {
        quota_tracker::ServiceConfig::new(name, 1_000_000, quota_tracker::Period::Day)
            .expect("valid")
    };
    QuotaConfig::new(vec![
        service("tiingo"),
        service("finnhub"),
        service("sendgrid"),
    ])
    .expect("valid")
}

#[test]
fn many_tasks_on_a_multi_thread_runtime_lose_and_double_nothing() {
    let server = Server::start();
    // Created outside the runtime: the blocking store reads the table back at the end.
    let reader = server.store("async-driver", TickingClock::start());
    let run = run_tasks(
        &multi_thread(),
        &server,
        "async-driver",
        false,
        "async-driver",
        TASKS,
        CALLS,
    );
    let outcome = Conservation::read(&reader, run.day, &run.expected);
    assert!(outcome.exact(), "table vs calls kept: {outcome}");
    eprintln!(
        "{TASKS} tasks x {CALLS} calls on 4 worker threads: table holds exactly {} calls; \
         {} store operations, {} of them ready on their first poll (a blocked worker)",
        run.expected.iter().sum::<u64>(),
        run.operations,
        run.ready_at_once
    );
    assert!(run.operations > 0);
    assert_eq!(run.ready_at_once, 0, "a store operation blocked its worker");
}

#[test]
fn the_blocking_control_is_seen_blocking_its_workers() {
    let server = Server::start();
    let reader = server.store("async-control", TickingClock::start());
    let run = run_tasks(
        &multi_thread(),
        &server,
        "async-control",
        true,
        "async-control",
        16,
        200,
    );
    assert!(Conservation::read(&reader, run.day, &run.expected).exact());
    eprintln!(
        "control: {} store operations, {} ready on their first poll",
        run.operations, run.ready_at_once
    );
    // Every write of the control blocked (reads are awaited as usual): the measure sees it.
    assert!(
        run.ready_at_once > 0,
        "the measure must see a store that blocks"
    );
}

#[test]
fn a_sync_whose_task_is_cancelled_mid_write_is_retried_as_it_was() {
    let server = Server::start();
    let clock = TickingClock::start();
    let reader = server.store("async-cancel", clock.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Through a relay holding the server's answers, so the write cannot finish on the first
    // poll, however fast the server and however slow this build (it once did, under load).
    let upstream = server
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("the server's endpoint is an address");
    let relay = quota_fleet::proxy::Proxy::start(upstream).expect("the relay starts");
    let config = quota_dynamodb::DynamoConfig {
        endpoint: Some(format!("http://127.0.0.1:{}", relay.port)),
        ..server.config("async-cancel")
    };
    let day = runtime.block_on(async {
        let store = DynamoStore::connect(&config, clock.clone()).await;
        let before = clock.now().first_number();
        let tracker = Tracker::new(QuotaConfig::default(), clock.clone());
        let after = clock.now().first_number();
        let synced = AsyncSyncedTracker::new(tracker, store);
        let tiingo = synced.tracker().service("tiingo").expect("configured");
        synced.tracker().record_call(tiingo, 3).expect("recorded");
        // The sync is polled once (the batch taken, the write sent; its answer held) and
        // then dropped, as a cancelled task's future is.
        relay.hold_after_next_request(Duration::ZERO);
        let finished = tokio::select! {
            biased;
            report = synced.sync() => Some(report),
            () = std::future::ready(()) => None,
        };
        assert_eq!(
            finished, None,
            "a network write does not finish on its first poll"
        );
        relay.release();
        synced.tracker().record_call(tiingo, 2).expect("recorded");
        // The dropped batch is in doubt: resent as it was (the tracker's first sequence
        // number, so the store applies it at most once), then the calls recorded after it.
        let resent = synced.sync().await;
        let SyncReport::Applied { seq, calls: 3 } = resent else {
            panic!("the dropped batch resent: {resent:?}");
        };
        assert!(
            (before..=after).contains(&seq),
            "not the first batch: {seq}"
        );
        let next = SyncReport::Applied {
            seq: seq + 1,
            calls: 2,
        };
        assert_eq!(synced.sync().await, next);
        synced.tracker().state().day()
    });
    assert!(Conservation::read(&reader, day, &[5]).exact());
}

#[test]
fn the_blocking_store_inside_a_runtime_is_a_clear_error_not_a_panic() {
    let server = Server::start();
    let clock = TickingClock::start();
    let store = Arc::new(server.store("async-blocking", clock.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let synced = runtime.block_on(async {
        let day = quota_tracker::UtcDay::from_ymd(2026, 12, 1).expect("valid");
        let error = store.load_day(day).expect_err("refused inside a runtime");
        assert_eq!(error.kind, StoreErrorKind::Rejected);
        assert!(error.message.contains("AsyncSyncedTracker"), "{error}");
        // A handler recording through SyncedTracker: the call is recorded, the sync fails
        // (logged), nothing panics, and the deltas wait for a sync from outside.
        let tracker = Tracker::new(QuotaConfig::default(), clock.clone());
        let synced = SyncedTracker::new(tracker, Arc::clone(&store));
        let tiingo = synced.tracker().service("tiingo").expect("configured");
        synced.record_call(tiingo, 2).expect("recorded");
        assert!(matches!(synced.sync(), SyncReport::Failed(_)));
        synced
    });
    // Outside the runtime the same store syncs what was kept pending.
    assert!(matches!(
        synced.sync(),
        SyncReport::Applied { calls: 2, .. }
    ));
    let day = synced.tracker().state().day();
    assert!(Conservation::read(&store, day, &[2]).exact());
    // A connection attempt inside a runtime is refused the same way.
    let refused = runtime.block_on(async {
        quota_dynamodb::BlockingDynamoStore::connect(&server.config("async-blocking"), clock)
    });
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("inside a tokio runtime"), "{message}");
}

#[test]
fn the_dynamodb_store_drives_an_async_tracker_as_its_own_async_store() {
    // DynamoStore's own AsyncStore implementation (the test above watches its inherent
    // methods): a sync, a reload of another instance's day and window counts, a lease.
    let server = Server::start();
    let blocking = server.store("as-async-store", Arc::new(quota_tracker::SystemClock));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let instance = |name: &str, config: quota_tracker::QuotaConfig| {
        let options = quota_tracker::TrackerOptions {
            instance: name.into(),
            ..quota_tracker::TrackerOptions::for_config(&config)
        };
        let tracker = quota_tracker::Tracker::with_options(
            config,
            Arc::new(quota_tracker::SystemClock),
            options,
        );
        quota_tracker::AsyncSyncedTracker::new(tracker, blocking.inner().clone())
    };
    let config = quota_tracker::QuotaConfig::default();
    let (a, b) = (instance("a", config.clone()), instance("b", config));
    let finnhub = a.tracker().service("finnhub").expect("configured");
    let sendgrid = a.tracker().service("sendgrid").expect("configured");
    a.tracker().record_call(finnhub, 5).expect("recorded");
    a.tracker().record_call(sendgrid, 3).expect("recorded");
    runtime.block_on(async {
        assert!(matches!(
            a.sync().await,
            quota_tracker::SyncReport::Applied { calls: 8, .. }
        ));
        assert_eq!(b.reload().await, quota_tracker::ReloadReport::Loaded);
    });
    // finnhub's minute from its window item, sendgrid's day from the day item.
    assert_eq!(b.tracker().usage(finnhub).map(|u| u.used()), Ok(5));
    assert_eq!(b.tracker().usage(sendgrid).map(|u| u.used()), Ok(3));
    let bounded = quota_tracker::QuotaConfig::default()
        .with_leases(quota_tracker::LeasePolicy::new(10).expect("valid"));
    let leased = instance("c", bounded);
    let tiingo = leased.tracker().service("tiingo").expect("configured");
    let admission = runtime.block_on(leased.admit(tiingo, 1)).expect("valid");
    assert!(admission.is_admitted(), "{admission:?}");
    // A block of 10 % of tiingo's ceiling (80 % of 500): 40 granted, 1 admitted.
    assert_eq!(leased.tracker().lease_left(tiingo), 39);
    // The blocking store's own runtime, dropped from async code: let go, not a panic.
    runtime.block_on(async move { drop(blocking) });
}
