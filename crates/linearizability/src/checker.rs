//! Checking a history: each partition on its own, in parallel, the cheapest way its
//! operations allow, with the same verdict as the brute-force checker.
//!
//! Per partition: operations that neither constrain nor change the state
//! ([`Model::is_inert`]) are dropped and placed back in the reported linearization; a
//! partition whose every operation is pinned on a count ([`Model::pin`]), or is a read or a
//! write of distinct values ([`Model::access`]), is decided in O(n log n) (`pinned`,
//! `zones`); any other goes to the search (`search`), under a time
//! limit and a memory budget ([`MemoryBudget`]) that turn an exploding search into
//! [`Verdict::Unknown`] with the longest prefix it found.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::history::Operation;
pub use crate::memo::MemoryBudget;
use crate::model::Model;
use crate::pinned::{self, Decided};
pub use crate::search::Stopped;
use crate::search::{self, Found, Limits};
use crate::zones;

/// The memory a check may take unless told otherwise: 4 GiB.
pub const DEFAULT_MAX_MEMORY: usize = 4 << 30;

/// How to run a check.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions<'a> {
    /// Give up with [`Verdict::Unknown`] after this long.
    pub timeout: Option<Duration>,
    /// The memory budget to draw on (shared by checks run at once); `None`: a budget of
    /// [`DEFAULT_MAX_MEMORY`] for this check alone.
    pub budget: Option<&'a MemoryBudget>,
    /// Threads for the partitions; 0: as many as the machine has.
    pub threads: usize,
}

/// Whether a history is linearizable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Some real-time-consistent order is a valid sequential execution.
    Linearizable,
    /// No order is.
    NotLinearizable,
    /// The search ran out of time (or stopped because another partition failed).
    Unknown,
}

/// The result for one independent part of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    /// The partition key (`None` when the model does not partition).
    pub key: Option<String>,
    /// Indexes (into the history) of the operations in this partition, in call order.
    pub operations: Vec<usize>,
    /// This partition's verdict.
    pub verdict: Verdict,
    /// A full linearization when linearizable; otherwise the longest linearizable prefix
    /// the search found. Indexes into the history.
    pub linearization: Vec<usize>,
    /// When not linearizable: an operation that cannot be placed after that prefix (it had
    /// to take effect before it returned, and no state allowed it).
    pub stuck: Option<usize>,
    /// When unknown: why the check stopped.
    pub stopped: Option<Stopped>,
}

/// The result of checking a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Linearizable only if every partition is; not linearizable if any is not.
    pub verdict: Verdict,
    /// One result per partition, largest first.
    pub partitions: Vec<PartitionResult>,
    /// Operations in the history.
    pub operations: usize,
    /// Time the check took.
    pub elapsed: Duration,
    /// The most memory the searches held at once, in bytes (of the budget they drew on).
    pub memory_peak: usize,
}

/// Checks `history` against `model`, giving up with [`Verdict::Unknown`] after `timeout` or
/// past [`DEFAULT_MAX_MEMORY`].
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    timeout: Option<Duration>,
) -> CheckResult {
    let options = CheckOptions {
        timeout,
        ..CheckOptions::default()
    };
    check_with(model, history, &options)
}

/// Checks `history` against `model` as `options` say.
pub fn check_with<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    options: &CheckOptions<'_>,
) -> CheckResult {
    let started = Instant::now();
    let own_budget;
    let budget = match options.budget {
        Some(budget) => budget,
        None => {
            own_budget = MemoryBudget::new(DEFAULT_MAX_MEMORY);
            &own_budget
        }
    };
    let stop = AtomicBool::new(false);
    let limits = Limits {
        deadline: options.timeout.map(|t| started + t),
        stop: &stop,
        budget,
    };
    let groups = partitions(model, history);
    let partitions = run_partitions(&groups, options.threads, &stop, |key, ops| {
        check_partition(model, history, key, ops, &limits)
    });
    let verdict = if partitions
        .iter()
        .any(|p| p.verdict == Verdict::NotLinearizable)
    {
        Verdict::NotLinearizable
    } else if partitions.iter().any(|p| p.verdict == Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    };
    CheckResult {
        verdict,
        partitions,
        operations: history.len(),
        elapsed: started.elapsed(),
        memory_peak: budget.peak(),
    }
}

/// The history's operations by partition key, each in call order, largest first (so the
/// longest search starts first when they run in parallel).
fn partitions<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
) -> Vec<(Option<String>, Vec<usize>)> {
    let mut groups: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        groups
            .entry(model.partition_key(&op.input))
            .or_default()
            .push(index);
    }
    let mut groups: Vec<(Option<String>, Vec<usize>)> = groups.into_iter().collect();
    for (_, ops) in &mut groups {
        ops.sort_by_key(|&i| (history[i].call, i));
    }
    groups.sort_by_key(|(_, ops)| std::cmp::Reverse(ops.len()));
    groups
}

/// Runs `check` on every group on up to `threads` threads (0: the machine's), in order of
/// the groups; once one is not linearizable the rest are skipped as unknown.
fn run_partitions(
    groups: &[(Option<String>, Vec<usize>)],
    threads: usize,
    stop: &AtomicBool,
    check: impl Fn(&Option<String>, &[usize]) -> PartitionResult + Sync,
) -> Vec<PartitionResult> {
    let next = AtomicUsize::new(0);
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        threads
    };
    let workers = threads.min(groups.len()).max(1);
    let run = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some((key, ops)) = groups.get(i) else {
                return done;
            };
            let result = if stop.load(Ordering::Relaxed) {
                PartitionResult {
                    key: key.clone(),
                    operations: ops.clone(),
                    verdict: Verdict::Unknown,
                    linearization: Vec::new(),
                    stuck: None,
                    stopped: Some(Stopped::Cancelled),
                }
            } else {
                check(key, ops)
            };
            if result.verdict == Verdict::NotLinearizable {
                stop.store(true, Ordering::Relaxed);
            }
            done.push((i, result));
        }
    };
    let mut results: Vec<(usize, PartitionResult)> = if workers == 1 {
        run()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(run)).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// One partition (`indexes`, in call order): inert operations set aside, then decided
/// from the pins or by the search.
fn check_partition<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    key: &Option<String>,
    indexes: &[usize],
    limits: &Limits<'_>,
) -> PartitionResult {
    let (inert, active): (Vec<usize>, Vec<usize>) = indexes
        .iter()
        .partition(|&&i| model.is_inert(&history[i].input, &history[i].outcome));
    let ops: Vec<&Operation<M::Input, M::Output>> = active.iter().map(|&i| &history[i]).collect();
    let decided = match pinned::pins(model, &ops) {
        Some(pins) => Some(pinned::decide(&ops, &pins)),
        None => zones::accesses(model, &ops).and_then(|a| zones::decide(&ops, &a)),
    };
    let found = match decided {
        Some(Decided::Linearizable(order)) => Found {
            verdict: Ok(()),
            prefix: order,
            stuck: None,
        },
        Some(Decided::NotLinearizable { prefix, stuck }) => Found {
            verdict: Err(None),
            prefix,
            stuck: Some(stuck),
        },
        None => search::search(model, &ops, limits),
    };
    let global = |k: usize| active[k];
    let mut linearization: Vec<usize> = found.prefix.iter().map(|&k| global(k)).collect();
    let (verdict, stopped) = match found.verdict {
        Ok(()) => {
            linearization = place_inert(history, linearization, &inert);
            (Verdict::Linearizable, None)
        }
        Err(None) => (Verdict::NotLinearizable, None),
        Err(Some(why)) => (Verdict::Unknown, Some(why)),
    };
    PartitionResult {
        key: key.clone(),
        operations: indexes.to_vec(),
        verdict,
        linearization,
        stuck: found.stuck.map(global),
        stopped,
    }
}

/// `linearization` with each `inert` operation (in call order) placed back: after every
/// operation that returned before it was called, and (so) before every one called after it
/// returned.
fn place_inert<I, O>(
    history: &[Operation<I, O>],
    linearization: Vec<usize>,
    inert: &[usize],
) -> Vec<usize> {
    if inert.is_empty() {
        return linearization;
    }
    // From each position on, the earliest return: non-decreasing, so it can be searched.
    let mut earliest_return = vec![u64::MAX; linearization.len() + 1];
    for (i, &op) in linearization.iter().enumerate().rev() {
        earliest_return[i] = earliest_return[i + 1].min(history[op].ret.unwrap_or(u64::MAX));
    }
    let mut slots: Vec<(usize, usize)> = inert
        .iter()
        .map(|&x| {
            let call = history[x].call;
            // The first position from which nothing returns before `x` was called.
            (earliest_return.partition_point(|&r| r < call), x)
        })
        .collect();
    slots.sort_by_key(|&(position, x)| (position, history[x].call, x));
    let mut out = Vec::with_capacity(linearization.len() + inert.len());
    let mut slots = slots.into_iter().peekable();
    for (i, op) in linearization.into_iter().enumerate() {
        while let Some((_, x)) = slots.next_if(|&(position, _)| position <= i) {
            out.push(x);
        }
        out.push(op);
    }
    out.extend(slots.map(|(_, x)| x));
    out
}
