//! The faults of a run and when they happen: each kind asked for once, at a time and on a
//! worker drawn from the seed, so a seed replays the same schedule.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A fault the coordinator injects from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL a worker: its unsynced calls are lost (within the bound).
    Kill,
    /// SIGSTOP a worker for a while, then SIGCONT: its write in flight times out meanwhile.
    Freeze,
    /// SIGTERM a worker mid-run: it stops gracefully and must lose nothing.
    Term,
    /// Kill the store's server process and start it again on its volume.
    StoreRestart,
    /// Pause the store's server for a while (every request waits, then times out).
    StorePause,
}

impl FaultKind {
    /// Every kind, in the order of the `--faults` list.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Kill,
        FaultKind::Freeze,
        FaultKind::Term,
        FaultKind::StoreRestart,
        FaultKind::StorePause,
    ];

    /// The name on the command line.
    pub fn id(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Freeze => "freeze",
            FaultKind::Term => "term",
            FaultKind::StoreRestart => "store-restart",
            FaultKind::StorePause => "store-pause",
        }
    }

    /// Whether it is done to a worker (rather than to the store).
    pub fn on_worker(self) -> bool {
        matches!(self, FaultKind::Kill | FaultKind::Freeze | FaultKind::Term)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .iter()
            .copied()
            .find(|k| k.id() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = FaultKind::ALL.iter().map(|k| k.id()).collect();
                format!("unknown fault {s:?}: expected one of {}", known.join(", "))
            })
    }
}

/// One fault of the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// What.
    pub kind: FaultKind,
    /// On which worker (index), for a worker's fault.
    pub worker: Option<usize>,
    /// When, in ms after the workers started.
    pub at_ms: u64,
    /// When a freeze or a pause ends.
    pub until_ms: Option<u64>,
}

/// How long a freeze or a pause lasts: past the store's 3 s attempt timeout, so a write in
/// flight ends in doubt.
pub const HOLD_MS: u64 = 4_000;

/// A small xorshift: the schedule must replay from the seed, not be good randomness.
struct Draw(u64);

impl Draw {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

/// The schedule of `kinds` (each once) over a run of `duration_ms` with `instances`
/// workers: worker faults on distinct workers, every fault between 15 % and 65 % of the run
/// (so its effects are over before the end). An error when there are more worker faults
/// than workers, or the run is too short to hold a freeze or a pause.
pub fn plan(
    kinds: &[FaultKind],
    instances: usize,
    duration_ms: u64,
    seed: u64,
) -> Result<Vec<Fault>, String> {
    let on_workers = kinds.iter().filter(|k| k.on_worker()).count();
    if on_workers > instances {
        return Err(format!(
            "{on_workers} worker faults need as many workers, there are {instances}: ask for \
             more --instances or fewer --faults"
        ));
    }
    let holds = kinds
        .iter()
        .any(|k| matches!(k, FaultKind::Freeze | FaultKind::StorePause));
    if holds && duration_ms < 3 * HOLD_MS {
        return Err(format!(
            "a freeze or a pause lasts {} s: a run with one needs --duration of at least {} s",
            HOLD_MS / 1000,
            3 * HOLD_MS / 1000
        ));
    }
    let mut draw = Draw(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut workers: Vec<usize> = (0..instances).collect();
    for i in (1..workers.len()).rev() {
        let j = draw.next(i as u64 + 1) as usize;
        workers.swap(i, j);
    }
    let (from, span) = (duration_ms * 15 / 100, duration_ms / 2);
    let mut faults: Vec<Fault> = Vec::new();
    let mut next_worker = workers.into_iter();
    for kind in kinds {
        let at_ms = from + draw.next(span);
        let until_ms =
            matches!(kind, FaultKind::Freeze | FaultKind::StorePause).then_some(at_ms + HOLD_MS);
        let worker = if kind.on_worker() {
            next_worker.next()
        } else {
            None
        };
        faults.push(Fault {
            kind: *kind,
            worker,
            at_ms,
            until_ms,
        });
    }
    // The store is restarted outside a pause (a restart would end the pause early).
    let pause = faults
        .iter()
        .find(|f| f.kind == FaultKind::StorePause)
        .map(|f| (f.at_ms, f.until_ms.unwrap_or(f.at_ms)));
    if let (Some((from, until)), Some(restart)) = (
        pause,
        faults
            .iter_mut()
            .find(|f| f.kind == FaultKind::StoreRestart),
    ) && (from..=until + 1_000).contains(&restart.at_ms)
    {
        restart.at_ms = until + 1_000;
    }
    faults.sort_by_key(|f| f.at_ms);
    Ok(faults)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_its_schedule_on_distinct_workers_inside_the_run() {
        let kinds = FaultKind::ALL;
        let a = plan(&kinds, 4, 60_000, 7).expect("fits");
        assert_eq!(a, plan(&kinds, 4, 60_000, 7).expect("fits"));
        assert_ne!(a, plan(&kinds, 4, 60_000, 8).expect("fits"));
        let mut on: Vec<usize> = a.iter().filter_map(|f| f.worker).collect();
        on.sort_unstable();
        on.dedup();
        assert_eq!(on.len(), 3, "kill, freeze and term on three workers");
        assert!(
            a.iter()
                .all(|f| f.at_ms >= 9_000 && f.until_ms.unwrap_or(f.at_ms) <= 43_000)
        );
    }

    #[test]
    fn the_store_is_never_restarted_during_its_pause() {
        for seed in 0..200 {
            let faults = plan(&FaultKind::ALL, 4, 40_000, seed).expect("fits");
            let at = |kind| faults.iter().find(|f| f.kind == kind).expect("planned");
            let (pause, restart) = (at(FaultKind::StorePause), at(FaultKind::StoreRestart));
            let until = pause.until_ms.expect("a pause ends");
            assert!(
                !(pause.at_ms..=until).contains(&restart.at_ms),
                "seed {seed}: {faults:?}"
            );
        }
    }

    #[test]
    fn more_worker_faults_than_workers_or_a_run_too_short_is_refused() {
        let error = plan(&FaultKind::ALL, 2, 60_000, 1).expect_err("3 worker faults, 2 workers");
        assert!(error.contains("--instances"), "{error}");
        let error = plan(&[FaultKind::Freeze], 4, 5_000, 1).expect_err("too short");
        assert!(error.contains("--duration"), "{error}");
        assert!("stop".parse::<FaultKind>().is_err());
    }
}
