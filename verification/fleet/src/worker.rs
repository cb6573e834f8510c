//! A worker process: one tracker instance with its own sync loop and T admitting threads,
//! against the fleet's store, journaling everything ([`crate::journal`]).
//!
//! It dies with its coordinator (`PR_SET_PDEATHSIG`), and on SIGTERM or SIGINT it stops
//! admitting, gives its leases back and syncs until nothing is pending: a graceful stop
//! loses nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use quota_dynamodb::{BlockingDynamoStore, DynamoConfig, zoo::StoreVariant};
use quota_tracker::{
    Clock, NoSync, Store, SyncOutcome, SyncedTracker, SystemClock, Tracker, TrackerOptions,
};

use crate::journal::{Event, Journal};

/// What a worker is told on its command line.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The store's endpoint (`None`: AWS itself, from the standard credential chain).
    pub endpoint: Option<String>,
    /// The table.
    pub table: String,
    /// The AWS region.
    pub region: String,
    /// The tracker's instance name.
    pub instance: String,
    /// The worker's number (its own service is `steady-<index>`).
    pub index: usize,
    /// Admitting threads.
    pub threads: usize,
    /// Admissions per second per thread.
    pub rate: f64,
    /// Leases (the bounded mode) or not.
    pub bounded: bool,
    /// A historical store bug to write with (the harness's zoo), or the fixed store.
    pub store_variant: StoreVariant,
    /// The journal to write.
    pub journal: PathBuf,
    /// Between two syncs.
    pub sync_period: Duration,
    /// The coordinator's process id: a worker whose parent is already another exits.
    pub parent: Option<u32>,
}

type Synced = SyncedTracker<Arc<BlockingDynamoStore>>;

fn now_ms() -> i64 {
    SystemClock.now().0
}

/// Runs the worker until SIGTERM or SIGINT; returns the process's exit status (0 after a
/// graceful stop, 3 when it could not start).
pub fn run(config: &WorkerConfig) -> u8 {
    // Die with the coordinator, whatever ends it.
    let _ = nix::sys::prctl::set_pdeathsig(Some(nix::sys::signal::Signal::SIGKILL));
    // The coordinator may have died before that took effect.
    if config
        .parent
        .is_some_and(|parent| nix::unistd::getppid().as_raw() as u32 != parent)
    {
        return 3;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!(
                "worker {}: cannot handle signal {signal}: {e}",
                config.instance
            );
            return 3;
        }
    }
    let journal = match Journal::create(&config.journal) {
        Ok(journal) => Arc::new(journal),
        Err(e) => {
            eprintln!(
                "worker {}: cannot create {}: {e}",
                config.instance,
                config.journal.display()
            );
            return 3;
        }
    };
    let synced = match connect(config) {
        Ok(synced) => Arc::new(synced),
        Err(e) => {
            eprintln!("worker {}: {e}", config.instance);
            return 3;
        }
    };
    let start = Event::Start {
        instance: config.instance.clone(),
        pid: std::process::id(),
        at_ms: now_ms(),
    };
    if journal.write(&start).is_err() {
        return 3;
    }
    let threads: Vec<_> = (0..config.threads)
        .map(|thread| {
            let (synced, journal, stop) =
                (Arc::clone(&synced), Arc::clone(&journal), Arc::clone(&stop));
            let rate = config.rate;
            std::thread::spawn(move || admit_until(&synced, &journal, &stop, thread, rate))
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(config.sync_period);
        if sync_once(&synced, &journal).is_err() {
            // The journal cannot be written: nothing more can be accounted for.
            std::process::exit(3);
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
    synced.settle_grants_in_doubt();
    synced.tracker().release_leases();
    if !drain(&synced, &journal) {
        // Not everything reached the store: no `stopped` line, so the verdict judges this
        // worker as one that died (its unacknowledged calls may be missing).
        eprintln!("worker {}: stopped with calls not synced", config.instance);
        return 1;
    }
    let done = journal.write(&Event::Stopped { at_ms: now_ms() });
    u8::from(done.is_err()) * 3
}

/// Syncs until nothing is pending or in doubt, retrying failures for up to 20 s (the
/// coordinator waits a minute); whether it got there.
fn drain(synced: &Synced, journal: &Journal) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match sync_once(synced, journal) {
            Ok(SyncResult::Landed) => {}
            Ok(SyncResult::Nothing) => return true,
            Ok(SyncResult::Failed) => std::thread::sleep(Duration::from_millis(200)),
            Err(()) => return false,
        }
    }
    false
}

/// The worker's tracker on the fleet's store.
fn connect(config: &WorkerConfig) -> Result<Synced, String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dynamo = DynamoConfig {
        table: config.table.clone(),
        endpoint: config.endpoint.clone(),
        region: config.region.clone(),
    };
    let store = BlockingDynamoStore::connect(&dynamo, Arc::clone(&clock))
        .map_err(|e| format!("cannot start the store's runtime: {e}"))?
        .with_variant(config.store_variant);
    let quota = crate::services(config.bounded, config.index);
    let options = TrackerOptions {
        instance: config.instance.clone().into(),
        // Every sync and reload is the worker's own loop (so each landed batch is journaled).
        sync_interval_ms: i64::MAX,
        reload_interval_ms: i64::MAX,
    };
    let tracker = Tracker::with_options(quota, clock, options);
    Ok(SyncedTracker::new(tracker, Arc::new(store)))
}

/// One thread's workload: an admission to each service in turn, `rate` a second, each
/// journaled before it is asked and after it is answered.
fn admit_until(synced: &Synced, journal: &Journal, stop: &AtomicBool, thread: usize, rate: f64) {
    let services: Vec<_> = synced.tracker().config().ids().collect();
    let names: Vec<String> = synced
        .tracker()
        .config()
        .names()
        .map(str::to_owned)
        .collect();
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut next = Instant::now();
    let mut call = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let i = (call as usize + thread) % services.len();
        call += 1;
        let invoke = Event::Invoke {
            thread,
            call,
            service: names[i].clone(),
            at_ms: now_ms(),
        };
        if journal.write(&invoke).is_err() {
            std::process::exit(3);
        }
        let admitted = synced
            .admit_leasing(services[i], 1)
            .is_ok_and(|a| a.is_admitted());
        let answer = Event::Answer {
            thread,
            call,
            admitted,
            at_ms: now_ms(),
        };
        if journal.write(&answer).is_err() {
            std::process::exit(3);
        }
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// What one sync did.
enum SyncResult {
    /// A batch landed (and is journaled).
    Landed,
    /// Nothing was pending or in doubt.
    Nothing,
    /// The write failed or is in doubt; what it carried is still owed.
    Failed,
}

/// One sync (or, with nothing pending, a reload): the batch's calls journaled once it
/// landed. `Err` when the journal cannot be written.
fn sync_once(synced: &Synced, journal: &Journal) -> Result<SyncResult, ()> {
    let tracker = synced.tracker();
    let batch = match tracker.begin_sync() {
        Ok(batch) => batch,
        Err(NoSync::NothingPending) => {
            synced.reload();
            return Ok(SyncResult::Nothing);
        }
        Err(NoSync::InFlight) => return Ok(SyncResult::Failed),
    };
    let mut calls: BTreeMap<String, i64> = BTreeMap::new();
    for (_, service, delta) in batch.named_deltas() {
        *calls.entry(service.to_owned()).or_default() += delta;
    }
    let sending = Event::Sending {
        seq: batch.seq,
        at_ms: now_ms(),
    };
    if journal.write(&sending).is_err() {
        tracker.finish_sync(batch, SyncOutcome::Failed);
        return Err(());
    }
    let started = Instant::now();
    let result = synced.store().apply_batch(&batch);
    let took_ms = started.elapsed().as_millis() as u64;
    let seq = batch.seq;
    match result {
        Ok(fresh) => {
            tracker.finish_sync(batch, SyncOutcome::Applied { fresh });
            let ack = Event::Ack {
                seq,
                calls,
                took_ms,
                at_ms: now_ms(),
            };
            journal.write(&ack).map_err(|_| ())?;
            Ok(SyncResult::Landed)
        }
        Err(error) => {
            tracker.finish_sync(batch, error.sync_outcome());
            Ok(SyncResult::Failed)
        }
    }
}
