//! A DynamoDB-compatible server for the integration tests.
//!
//! With `QUOTA_DYNAMODB_ENDPOINT` set (the gate sets it to its shared emulator), tests run
//! against that endpoint (DynamoDB Local, a real test table) and start no container.
//! Otherwise each test suite starts the emulator image built by `scripts/dynamodb-setup` in a
//! container of its own (`quota_fleet::emulator::Emulator`, through the docker CLI: a
//! container library would cost this crate's build about 100 core-seconds on 2 cores, for a
//! `docker run`). A missing engine or image fails with the command that fixes it.

use std::sync::Arc;

use quota_dynamodb::{BlockingDynamoStore, DynamoConfig};
use quota_fleet::emulator::Emulator;
use quota_tracker::Clock;

pub mod faults;

/// A running server (a container, or the endpoint from the environment).
pub struct Server {
    /// `http://127.0.0.1:PORT` or `QUOTA_DYNAMODB_ENDPOINT`.
    pub endpoint: String,
    /// The container, when this suite started one (removed on drop).
    pub container: Option<Emulator>,
}

impl Server {
    /// Starts the emulator, or uses `QUOTA_DYNAMODB_ENDPOINT`.
    pub fn start() -> Self {
        if let Ok(endpoint) = std::env::var("QUOTA_DYNAMODB_ENDPOINT") {
            return Self {
                endpoint,
                container: None,
            };
        }
        Self::container()
    }

    /// Starts the emulator in a container of its own, whatever `QUOTA_DYNAMODB_ENDPOINT`
    /// says: for tests that do things to the server process (pause it) that an endpoint
    /// from outside cannot be made to do. Fails, naming the fix, without an engine or image.
    pub fn container() -> Self {
        let emulator = Emulator::in_memory().unwrap_or_else(|e| panic!("{e}"));
        Self {
            endpoint: emulator.endpoint.clone(),
            container: Some(emulator),
        }
    }

    /// A store on a fresh table of this server (created if missing).
    pub fn store(&self, table: &str, clock: Arc<dyn Clock>) -> BlockingDynamoStore {
        self.store_with(table, clock, |builder| builder)
    }

    /// A store whose SDK client configuration `customize` changes (fault interceptors).
    pub fn store_with(
        &self,
        table: &str,
        clock: Arc<dyn Clock>,
        customize: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
    ) -> BlockingDynamoStore {
        let store = self.connect_with(table, clock, customize);
        // The store already retries five times; a shared emulator starved by a cold build
        // beside it once outlasted that (three 3 s timeouts in a fresh-clone gate). Creating
        // is idempotent, and this is the fixture, not the check: try twice more, loudly.
        for attempt in 1.. {
            match store.create_table_if_missing() {
                Ok(_) => break,
                Err(e) if attempt < 3 => {
                    eprintln!("creating table {table} failed ({e}); trying again");
                }
                Err(e) => panic!("cannot create table {table}: {e}"),
            }
        }
        store
    }

    /// The store configuration for `table` on this server (the region the emulator accepts).
    pub fn config(&self, table: &str) -> DynamoConfig {
        DynamoConfig {
            table: table.to_owned(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".to_owned(),
        }
    }

    /// A store on `table` of this server, which may not exist yet: for tests of the table's
    /// creation itself.
    pub fn connect_with(
        &self,
        table: &str,
        clock: Arc<dyn Clock>,
        customize: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
    ) -> BlockingDynamoStore {
        BlockingDynamoStore::connect_with(&self.config(table), clock, customize)
            .unwrap_or_else(|e| panic!("cannot start the store's runtime: {e}"))
    }
}

/// Tracker instances sharing one store, as several Lambda containers or pods would.
pub type Instance = quota_tracker::SyncedTracker<Arc<BlockingDynamoStore>>;

/// An instance called `name` on `store` that syncs and reloads only when its test says so
/// (neither interval ever falls due).
pub fn by_hand(
    name: &str,
    config: quota_tracker::QuotaConfig,
    clock: Arc<dyn Clock>,
    store: &Arc<BlockingDynamoStore>,
) -> Instance {
    let options = quota_tracker::TrackerOptions {
        instance: name.into(),
        sync_interval_ms: i64::MAX,
        reload_interval_ms: i64::MAX,
    };
    let tracker = quota_tracker::Tracker::with_options(config, clock, options);
    quota_tracker::SyncedTracker::new(tracker, Arc::clone(store))
}

/// Starts `instances` trackers on `store` (syncing whenever no sync is in flight) and runs
/// `threads` recorder threads per instance, thread `n` recording `calls` single calls on
/// service `n mod services`. Returns the instances and the calls recorded per service.
pub fn record_concurrently(
    store: &Arc<BlockingDynamoStore>,
    clock: &Arc<quota_tracker::TickingClock>,
    name: &str,
    instances: usize,
    threads: usize,
    calls: u64,
    services: usize,
) -> (Vec<Arc<Instance>>, Vec<u64>) {
    let instances: Vec<Arc<Instance>> = (0..instances)
        .map(|i| {
            let options = quota_tracker::TrackerOptions {
                instance: format!("{name}-{i}").into(),
                sync_interval_ms: 0,
                ..quota_tracker::TrackerOptions::default()
            };
            let clock: Arc<dyn Clock> = clock.clone();
            let tracker = quota_tracker::Tracker::with_options(
                quota_tracker::QuotaConfig::default(),
                clock,
                options,
            );
            Arc::new(quota_tracker::SyncedTracker::new(
                tracker,
                Arc::clone(store),
            ))
        })
        .collect();
    let mut expected = vec![0; services];
    let handles: Vec<_> = (0..instances.len() * threads)
        .map(|n| {
            expected[n % services] += calls;
            let instance = Arc::clone(&instances[n % instances.len()]);
            std::thread::spawn(move || {
                let service = instance
                    .tracker()
                    .config()
                    .ids()
                    .nth(n % services)
                    .unwrap_or_else(|| panic!("no service {}", n % services));
                for _ in 0..calls {
                    if let Err(e) = instance.record_call(service, 1) {
                        panic!("a valid call was refused: {e}");
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
    (instances, expected)
}

/// Syncs every instance until nothing is pending or in doubt (the store being healthy).
pub fn flush(instances: &[Arc<Instance>]) {
    for instance in instances {
        for _ in 0..20 {
            if let quota_tracker::SyncReport::NothingPending = instance.sync() {
                break;
            }
        }
        assert!(
            instance.tracker().unsynced().is_empty(),
            "{}: deltas left after flushing",
            instance.tracker().instance()
        );
    }
}

/// The table's counters of one day against the calls recorded: every configured service,
/// and `total_api_calls_today`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conservation {
    /// Service names, in the order of the counts.
    pub services: Vec<String>,
    /// Calls recorded per service (0 for a service the workload did not call).
    pub expected: Vec<u64>,
    /// `<service>_used` in the table per service.
    pub observed: Vec<u64>,
    /// `total_api_calls_today` in the table (0 when absent).
    pub observed_total: u64,
}

impl Conservation {
    /// Reads `day`'s item from `store` (with a consistent read) and pairs it with `expected`
    /// (calls per service of the default configuration, in order; services past its end
    /// expect 0).
    pub fn read(store: &BlockingDynamoStore, day: quota_tracker::UtcDay, expected: &[u64]) -> Self {
        use quota_tracker::Store as _;
        let stored = store
            .load_day(day)
            .unwrap_or_else(|e| panic!("cannot read {day}'s item: {e}"));
        let services: Vec<String> = quota_tracker::QuotaConfig::default()
            .names()
            .map(str::to_owned)
            .collect();
        let expected = (0..services.len())
            .map(|i| expected.get(i).copied().unwrap_or(0))
            .collect();
        let observed = services
            .iter()
            .map(|name| stored.as_ref().map_or(0, |s| s.used(name)))
            .collect();
        let observed_total = stored.as_ref().and_then(|s| s.total).unwrap_or(0);
        Self {
            services,
            expected,
            observed,
            observed_total,
        }
    }

    /// Calls recorded but missing from the table (per service, or from the total).
    pub fn lost(&self) -> u64 {
        let per_service: u64 = self.pairs().map(|(e, o)| e.saturating_sub(o)).sum();
        per_service.max(self.expected_total().saturating_sub(self.observed_total))
    }

    /// Calls in the table beyond those recorded (per service, or in the total).
    pub fn doubled(&self) -> u64 {
        let per_service: u64 = self.pairs().map(|(e, o)| o.saturating_sub(e)).sum();
        per_service.max(self.observed_total.saturating_sub(self.expected_total()))
    }

    /// Whether every service's counter, and the total, equal the calls recorded.
    pub fn exact(&self) -> bool {
        self.expected == self.observed && self.observed_total == self.expected_total()
    }

    fn expected_total(&self) -> u64 {
        self.expected.iter().sum()
    }

    fn pairs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.expected
            .iter()
            .copied()
            .zip(self.observed.iter().copied())
    }
}

impl std::fmt::Display for Conservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, name) in self.services.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(
                f,
                "{name}_used={} of {} recorded",
                self.observed[i], self.expected[i]
            )?;
        }
        write!(
            f,
            ", total_api_calls_today={} of {} (lost {}, doubled {})",
            self.observed_total,
            self.expected_total(),
            self.lost(),
            self.doubled()
        )
    }
}
