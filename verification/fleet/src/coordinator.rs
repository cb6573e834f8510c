//! The coordinator: starts the store (or uses an endpoint), N worker processes, injects the
//! faults on schedule, stops the survivors with SIGTERM, then judges the store against the
//! journals. Every worker and the emulator are gone when it returns, whatever happened.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use quota_dynamodb::zoo::StoreVariant;
use quota_dynamodb::{BlockingDynamoStore, DynamoConfig};
use quota_tracker::{Clock, Store, SystemClock, UtcDay};
use serde::Serialize;

use crate::emulator::Emulator;
use crate::faults::{Fault, FaultKind};
use crate::journal;
use crate::proxy::Proxy;
use crate::verdict::{self, Fate, ServiceVerdict, WorkerReport};

/// A fleet run's settings.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Worker processes.
    pub instances: usize,
    /// Admitting threads per worker.
    pub threads: usize,
    /// How long the workers admit.
    pub duration: Duration,
    /// Admissions per second per thread.
    pub rate: f64,
    /// The faults to inject, each once.
    pub faults: Vec<FaultKind>,
    /// Draws the fault schedule.
    pub seed: u64,
    /// A store to use instead of starting the emulator (store faults need the emulator).
    pub endpoint: Option<String>,
    /// The AWS region.
    pub region: String,
    /// The table (default: a fresh one per run).
    pub table: Option<String>,
    /// Leases (the bounded mode).
    pub bounded: bool,
    /// A historical store bug for the workers to write with.
    pub store_variant: StoreVariant,
    /// Where the journals go.
    pub out: PathBuf,
    /// The binary to start workers from (`quota-verify`, run as `fleet-worker`).
    pub exe: PathBuf,
    /// Between two syncs of a worker.
    pub sync_period: Duration,
}

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// Worker processes.
    pub instances: usize,
    /// Threads per worker.
    pub threads: usize,
    /// Seconds the workers admitted.
    pub duration_s: f64,
    /// `bounded` or `default`.
    pub admission: &'static str,
    /// The store variant the workers wrote with.
    pub store_variant: String,
    /// The schedule's seed.
    pub seed: u64,
    /// What was injected when.
    pub faults: Vec<Fault>,
    /// Per service.
    pub services: Vec<ServiceVerdict>,
    /// Per worker.
    pub workers: Vec<WorkerReport>,
    /// Where the journals are.
    pub out: PathBuf,
    /// Whether every service passed.
    pub pass: bool,
}

/// Why a run did not produce a verdict.
#[derive(Debug)]
pub enum FleetError {
    /// The arguments or the endpoint cannot work (exit 3).
    BadInput(String),
    /// Something needed to run failed (exit 3).
    CannotRun(String),
    /// Ctrl-C (exit 130).
    Interrupted,
}

impl std::fmt::Display for FleetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FleetError::BadInput(m) | FleetError::CannotRun(m) => f.write_str(m),
            FleetError::Interrupted => f.write_str("interrupted: every worker was stopped"),
        }
    }
}

/// The worker processes; any still running are killed (and reaped) on drop.
struct Workers {
    children: Vec<Child>,
    fates: Vec<Fate>,
    /// Each worker's relay to the emulator (none with `--endpoint`).
    proxies: Vec<Proxy>,
    journals: Vec<PathBuf>,
}

impl Workers {
    fn pid(&self, i: usize) -> Pid {
        Pid::from_raw(self.children[i].id() as i32)
    }

    fn signal(&self, i: usize, signal: Signal) {
        let _ = kill(self.pid(i), signal);
    }

    /// Waits (up to 2 s) until worker `i` journals that it is sending a batch, so a freeze
    /// lands mid-write.
    fn await_sending(&self, i: usize) {
        let path = &self.journals[i];
        let seen = std::fs::metadata(path).map_or(0, |m| m.len());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(text) = std::fs::read(path)
                && text.len() as u64 > seen
                && String::from_utf8_lossy(&text[seen as usize..]).contains("\"op\":\"sending\"")
            {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Waits up to `patience` for worker `i` to exit; kills it after that. Whether it
    /// exited by itself.
    fn reap(&mut self, i: usize, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.children[i].try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
        false
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.children {
            if let Ok(None) = child.try_wait() {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Runs the fleet. `interrupted` is raised by Ctrl-C; `progress` hears what happens.
pub fn run(
    config: &FleetConfig,
    interrupted: &Arc<AtomicBool>,
    progress: &dyn Fn(&str),
) -> Result<FleetReport, FleetError> {
    let duration_ms = config.duration.as_millis() as u64;
    let faults = crate::faults::plan(&config.faults, config.instances, duration_ms, config.seed)
        .map_err(FleetError::BadInput)?;
    let store_faults = faults.iter().any(|f| !f.kind.on_worker());
    if store_faults && config.endpoint.is_some() {
        return Err(FleetError::BadInput(
            "store-restart and store-pause need the emulator this command starts: leave out \
             --endpoint, or those faults"
                .to_owned(),
        ));
    }
    std::fs::create_dir_all(&config.out).map_err(|e| {
        FleetError::CannotRun(format!("cannot create --out {}: {e}", config.out.display()))
    })?;
    let emulator = match &config.endpoint {
        Some(_) => None,
        None => {
            progress("starting the emulator (dynalite on a volume)");
            Some(Emulator::start().map_err(FleetError::CannotRun)?)
        }
    };
    let endpoint = config
        .endpoint
        .clone()
        .or_else(|| emulator.as_ref().map(|e| e.endpoint.clone()));
    let table = config
        .table
        .clone()
        .unwrap_or_else(|| format!("quota-fleet-{}-{}", std::process::id(), SystemClock.now().0));
    let store = open_table(&endpoint, &config.region, &table)?;
    let started = SystemClock.now();
    let mut workers = spawn(config, &endpoint, &table)?;
    progress(&format!(
        "{} workers x {} threads for {} s",
        config.instances,
        config.threads,
        config.duration.as_secs()
    ));
    inject(
        config,
        &faults,
        &mut workers,
        emulator.as_ref(),
        interrupted,
        progress,
    )?;
    progress("stopping the workers (SIGTERM: a last sync each)");
    stop(&mut workers);
    if interrupted.load(Ordering::Relaxed) {
        return Err(FleetError::Interrupted);
    }
    let ended = SystemClock.now();
    let accounts = read_journals(config)?;
    let services = judge(
        config,
        &store,
        &accounts,
        &workers.fates,
        started.day(),
        ended.day(),
    )?;
    let pass = services.iter().all(|s| s.pass);
    let reports = accounts
        .iter()
        .zip(&workers.fates)
        .enumerate()
        .map(|(i, (account, fate))| WorkerReport {
            instance: instance(i),
            fate: *fate,
            admitted: account.admitted.clone(),
            unanswered: account.unanswered.clone(),
            acked: account.acked.clone(),
        })
        .collect();
    Ok(FleetReport {
        instances: config.instances,
        threads: config.threads,
        duration_s: config.duration.as_secs_f64(),
        admission: if config.bounded { "bounded" } else { "default" },
        store_variant: config.store_variant.id().to_owned(),
        seed: config.seed,
        faults,
        services,
        workers: reports,
        out: config.out.clone(),
        pass,
    })
}

fn instance(i: usize) -> String {
    format!("worker-{i}")
}

/// A store on the run's table, created if missing; an unreachable endpoint or a table that
/// is not a quota table is bad input.
fn open_table(
    endpoint: &Option<String>,
    region: &str,
    table: &str,
) -> Result<BlockingDynamoStore, FleetError> {
    let dynamo = DynamoConfig {
        table: table.to_owned(),
        endpoint: endpoint.clone(),
        region: region.to_owned(),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = BlockingDynamoStore::connect(&dynamo, clock)
        .map_err(|e| FleetError::CannotRun(format!("cannot start the store's runtime: {e}")))?;
    store.create_table_if_missing().map_err(|e| {
        FleetError::BadInput(format!(
            "cannot use table {table:?} at {}: {e}",
            endpoint.as_deref().unwrap_or("AWS")
        ))
    })?;
    // The verdict compares the store with this run's journals: counts already there today
    // would read as doubled.
    let today = SystemClock.now().day();
    match store.load_day(today) {
        Ok(None) => Ok(store),
        Ok(Some(_)) => Err(FleetError::BadInput(format!(
            "table {table:?} already holds counts for {today}: give a fresh --table (or none: \
             a new one per run)"
        ))),
        Err(e) => Err(FleetError::BadInput(format!(
            "cannot read table {table:?}: {e}"
        ))),
    }
}

fn spawn(
    config: &FleetConfig,
    endpoint: &Option<String>,
    table: &str,
) -> Result<Workers, FleetError> {
    let run = format!("{:x}-{:x}", std::process::id(), SystemClock.now().0);
    let mut workers = Workers {
        children: Vec::new(),
        fates: vec![Fate::Survived; config.instances],
        proxies: Vec::new(),
        journals: (0..config.instances)
            .map(|i| config.out.join(format!("{}.jsonl", instance(i))))
            .collect(),
    };
    // Relays only in front of our own emulator (a plain http://127.0.0.1:PORT).
    let upstream = relay_target(config, endpoint);
    for i in 0..config.instances {
        let endpoint = match upstream {
            Some(address) => {
                let proxy = Proxy::start(address).map_err(|e| {
                    FleetError::CannotRun(format!("cannot start worker {i}'s relay: {e}"))
                })?;
                let relayed = format!("http://127.0.0.1:{}", proxy.port);
                workers.proxies.push(proxy);
                Some(relayed)
            }
            None => endpoint.clone(),
        };
        let mut command = Command::new(&config.exe);
        command
            .arg("fleet-worker")
            .args(["--table", table, "--region", &config.region])
            // The tracker's instance name is the run's own: a reused table's sequence
            // numbers from an earlier run must not make this run's writes look duplicated.
            .args([
                "--instance",
                &format!("{}-{run}", instance(i)),
                "--index",
                &i.to_string(),
            ])
            .args(["--parent", &std::process::id().to_string()])
            .args(["--threads", &config.threads.to_string()])
            .args(["--rate", &config.rate.to_string()])
            .args(["--store-variant", config.store_variant.id()])
            .args(["--sync-ms", &config.sync_period.as_millis().to_string()])
            .arg("--journal")
            .arg(&workers.journals[i])
            .stdin(Stdio::null());
        if let Some(endpoint) = &endpoint {
            command.args(["--endpoint", endpoint]);
        }
        if config.bounded {
            command.arg("--bounded");
        }
        let child = command.spawn().map_err(|e| {
            FleetError::CannotRun(format!(
                "cannot start worker {i} ({}): {e}",
                config.exe.display()
            ))
        })?;
        workers.children.push(child);
    }
    Ok(workers)
}

/// Where the relays forward to: our emulator's port, when the run started it.
fn relay_target(config: &FleetConfig, endpoint: &Option<String>) -> Option<SocketAddr> {
    if config.endpoint.is_some() {
        return None;
    }
    let port = endpoint
        .as_deref()?
        .rsplit(':')
        .next()?
        .parse::<u16>()
        .ok()?;
    Some(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Injects the schedule while the workers admit; returns at the end of the run.
fn inject(
    config: &FleetConfig,
    faults: &[Fault],
    workers: &mut Workers,
    emulator: Option<&Emulator>,
    interrupted: &AtomicBool,
    progress: &dyn Fn(&str),
) -> Result<(), FleetError> {
    let start = Instant::now();
    let (mut begun, mut ended) = (vec![false; faults.len()], vec![false; faults.len()]);
    while start.elapsed() < config.duration {
        if interrupted.load(Ordering::Relaxed) {
            return Err(FleetError::Interrupted);
        }
        let now = start.elapsed().as_millis() as u64;
        for (i, fault) in faults.iter().enumerate() {
            if !begun[i] && now >= fault.at_ms {
                begun[i] = true;
                progress(&format!("{} s: {}{}", now / 1000, fault.kind, on(fault)));
                begin(fault, workers, emulator)?;
            }
            if begun[i] && !ended[i] && fault.until_ms.is_some_and(|until| now >= until) {
                ended[i] = true;
                end(fault, workers, emulator)?;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, fault) in faults.iter().enumerate() {
        if begun[i] && !ended[i] && fault.until_ms.is_some() {
            end(fault, workers, emulator)?;
        }
    }
    Ok(())
}

fn on(fault: &Fault) -> String {
    fault
        .worker
        .map_or_else(String::new, |w| format!(" {}", instance(w)))
}

fn begin(
    fault: &Fault,
    workers: &mut Workers,
    emulator: Option<&Emulator>,
) -> Result<(), FleetError> {
    let store =
        || emulator.ok_or_else(|| FleetError::BadInput("store faults need the emulator".into()));
    match (fault.kind, fault.worker) {
        (FaultKind::Kill, Some(w)) => {
            workers.signal(w, Signal::SIGKILL);
            workers.reap(w, Duration::from_secs(5));
            workers.fates[w] = Fate::Killed;
        }
        (FaultKind::Freeze, Some(w)) => {
            // Mid-write, its answer dropped: on thaw its connection is gone and the write's
            // outcome unknown (the store may have applied it).
            workers.await_sending(w);
            if let Some(proxy) = workers.proxies.get(w) {
                proxy.hold_after_next_request(Duration::from_secs(1));
            }
            workers.signal(w, Signal::SIGSTOP);
            workers.fates[w] = Fate::Thawed;
        }
        (FaultKind::Term, Some(w)) => {
            workers.signal(w, Signal::SIGTERM);
            workers.fates[w] = Fate::Terminated;
        }
        (FaultKind::StoreRestart, _) => store()?.restart().map_err(FleetError::CannotRun)?,
        (FaultKind::StorePause, _) => store()?.pause().map_err(FleetError::CannotRun)?,
        _ => {}
    }
    Ok(())
}

fn end(
    fault: &Fault,
    workers: &mut Workers,
    emulator: Option<&Emulator>,
) -> Result<(), FleetError> {
    match (fault.kind, fault.worker, emulator) {
        (FaultKind::Freeze, Some(w), _) => {
            if let Some(proxy) = workers.proxies.get(w) {
                proxy.release();
            }
            workers.signal(w, Signal::SIGCONT);
        }
        (FaultKind::StorePause, _, Some(e)) => e.unpause().map_err(FleetError::CannotRun)?,
        _ => {}
    }
    Ok(())
}

/// SIGTERM to every worker still running, then waits for each (a worker that does not stop
/// within a minute is killed, and counts as killed).
fn stop(workers: &mut Workers) {
    for i in 0..workers.children.len() {
        if workers.fates[i] != Fate::Killed {
            workers.signal(i, Signal::SIGCONT);
            workers.signal(i, Signal::SIGTERM);
        }
    }
    for i in 0..workers.children.len() {
        if workers.fates[i] != Fate::Killed && !workers.reap(i, Duration::from_secs(60)) {
            workers.fates[i] = Fate::Killed;
        }
    }
}

fn read_journals(config: &FleetConfig) -> Result<Vec<journal::Account>, FleetError> {
    (0..config.instances)
        .map(|i| {
            let path = config.out.join(format!("{}.jsonl", instance(i)));
            journal::read(&path)
                .map(|events| journal::account(&events))
                .map_err(FleetError::CannotRun)
        })
        .collect()
}

/// Every service's verdict: the day items of the run's days summed, against the journals:
/// `capped` against every worker, each `steady-<i>` against worker `i` alone.
fn judge(
    config: &FleetConfig,
    store: &BlockingDynamoStore,
    accounts: &[journal::Account],
    fates: &[Fate],
    first: UtcDay,
    last: UtcDay,
) -> Result<Vec<ServiceVerdict>, FleetError> {
    let workers: Vec<(Fate, &journal::Account)> = fates
        .iter()
        .zip(accounts)
        .map(|(fate, account)| {
            // A journal without a graceful stop is a worker that died, however it ended.
            let fate = if account.stopped { *fate } else { Fate::Killed };
            (fate, account)
        })
        .collect();
    let mut rows = Vec::new();
    for i in 0..config.instances {
        let quota = crate::services(config.bounded, i);
        for service in quota.services() {
            let shared = service.name() == "capped";
            if shared && i > 0 {
                continue;
            }
            let stored = stored(store, service.name(), first, last)?;
            let ceiling = crate::ceiling(service.limit(), quota.admission_ceiling_percent());
            let judged = if shared {
                &workers[..]
            } else {
                &workers[i..=i]
            };
            rows.push(verdict::judge(
                service.name(),
                judged,
                stored,
                ceiling,
                config.bounded,
            ));
        }
    }
    Ok(rows)
}

/// What the store holds of `service` over the days of the run.
fn stored(
    store: &BlockingDynamoStore,
    service: &str,
    first: UtcDay,
    last: UtcDay,
) -> Result<u64, FleetError> {
    let mut total = 0;
    let mut day = first;
    loop {
        let item = store
            .load_day(day)
            .map_err(|e| FleetError::CannotRun(format!("cannot read the store's totals: {e}")))?;
        total += item.as_ref().map_or(0, |d| d.used(service));
        if day >= last {
            return Ok(total);
        }
        day = day.next();
    }
}
