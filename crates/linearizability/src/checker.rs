//! The Wing–Gong linearizability search with Lowe's memoization, per partition.
//!
//! The history becomes a list of call and return events in time order. The search walks it
//! from the front: at a call, it tries to linearize that operation next (the model must
//! accept it); at a return, the operation that returns was not linearized in time, so it
//! backtracks. A (linearized set, state) pair already seen is never explored again. An
//! operation with an unknown outcome returns "at infinity", so it can be placed anywhere
//! after its call, including after everything (which is the same as never happening).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::history::Operation;
use crate::model::{Model, Next};

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
}

/// Checks `history` against `model`, giving up with [`Verdict::Unknown`] after `timeout`.
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    timeout: Option<Duration>,
) -> CheckResult {
    let started = Instant::now();
    let deadline = timeout.map(|t| started + t);
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
    // Largest first, so the longest search starts first when they run in parallel.
    groups.sort_by_key(|(_, ops)| std::cmp::Reverse(ops.len()));

    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(groups.len())
        .max(1);
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
                }
            } else {
                search(model, history, key.clone(), ops, deadline, &stop)
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
    let partitions: Vec<PartitionResult> = results.into_iter().map(|(_, r)| r).collect();
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
    }
}

const NONE: usize = usize::MAX;

/// The call and return events of one partition, as a doubly linked list in time order
/// that operations are lifted out of (when linearized) and put back into (on backtrack).
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Node `2k` is op `k`'s call, node `2k + 1` its return; `head` is a sentinel.
    head: usize,
}

impl Events {
    fn new(calls: &[u64], rets: &[Option<u64>]) -> Self {
        let n = calls.len();
        let mut order: Vec<usize> = (0..2 * n).collect();
        // Time order; at equal times calls before returns (such operations overlap), and
        // returns "at infinity" last.
        order.sort_by_key(|&node| {
            let k = node / 2;
            if node.is_multiple_of(2) {
                (calls[k], 0, k)
            } else {
                (rets[k].unwrap_or(u64::MAX), 1, k)
            }
        });
        let head = 2 * n;
        let mut next = vec![NONE; 2 * n + 1];
        let mut prev = vec![NONE; 2 * n + 1];
        let mut last = head;
        for node in order {
            next[last] = node;
            prev[node] = last;
            last = node;
        }
        Self { next, prev, head }
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NONE {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NONE {
            self.prev[n] = node;
        }
    }

    /// Removes op `k` (call and return) from the list.
    fn lift(&mut self, k: usize) {
        self.unlink(2 * k);
        self.unlink(2 * k + 1);
    }

    /// Puts op `k` back; valid in the reverse order of lifts.
    fn unlift(&mut self, k: usize) {
        self.relink(2 * k + 1);
        self.relink(2 * k);
    }
}

/// A linearized set in the memo: `low` and the words from `low` up to the highest op set.
type MemoKey = (usize, Box<[u64]>);

/// The linearized set, kept so that its memo key stays small: every op below `low` is
/// linearized, so the key is `low` plus the words from `low` up to the highest op set.
struct Linearized {
    words: Vec<u64>,
    low: usize,
}

impl Linearized {
    fn new(n: usize) -> Self {
        Self {
            words: vec![0; n.div_ceil(64) + 1],
            low: 0,
        }
    }

    fn contains(&self, k: usize) -> bool {
        self.words[k / 64] & (1 << (k % 64)) != 0
    }

    fn insert(&mut self, k: usize) {
        self.words[k / 64] |= 1 << (k % 64);
        while self.contains(self.low) {
            self.low += 1;
        }
    }

    fn remove(&mut self, k: usize) {
        self.words[k / 64] &= !(1 << (k % 64));
        self.low = self.low.min(k);
    }

    fn key(&self, high: usize) -> MemoKey {
        let from = self.low / 64;
        let to = (high / 64).max(from);
        let mut words = &self.words[from..=to];
        while let [rest @ .., 0] = words {
            words = rest;
        }
        (self.low, words.into())
    }
}

struct Frame<S> {
    op: usize,
    previous: S,
    /// A second state the operation could lead to, tried on backtrack.
    alternative: Option<S>,
    /// The highest op linearized before this frame.
    previous_high: usize,
    /// This frame's node in the prefix arena.
    node: usize,
}

fn search<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    key: Option<String>,
    ops: &[usize],
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> PartitionResult {
    let n = ops.len();
    let calls: Vec<u64> = ops.iter().map(|&i| history[i].call).collect();
    let rets: Vec<Option<u64>> = ops.iter().map(|&i| history[i].ret).collect();
    let mut events = Events::new(&calls, &rets);
    let mut linearized = Linearized::new(n);
    let mut seen: HashSet<(MemoKey, M::State)> = HashSet::new();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    // Every prefix ever reached, as (op, parent) nodes: the longest one survives backtracking.
    let mut arena: Vec<(usize, usize)> = Vec::new();
    let (mut best_node, mut best_depth, mut stuck) = (NONE, 0usize, None);
    let mut state = model.init();
    let mut high = 0usize;
    let mut entry = events.next[events.head];
    let mut steps = 0u64;

    let result = |verdict, node: usize, stuck: Option<usize>, arena: &[(usize, usize)]| {
        let mut prefix = Vec::new();
        let mut at = node;
        while at != NONE {
            prefix.push(ops[arena[at].0]);
            at = arena[at].1;
        }
        prefix.reverse();
        PartitionResult {
            key: key.clone(),
            operations: ops.to_vec(),
            verdict,
            linearization: prefix,
            stuck: stuck.map(|k: usize| ops[k]),
        }
    };

    while events.next[events.head] != NONE {
        steps += 1;
        if steps.is_multiple_of(4096)
            && (stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d))
        {
            return result(Verdict::Unknown, best_node, None, &arena);
        }
        if entry.is_multiple_of(2) {
            // A call: try to linearize its operation now.
            let k = entry / 2;
            let op = &history[ops[k]];
            let (first, second) = match model.step(&state, &op.input, &op.outcome) {
                Next::Impossible => (None, None),
                Next::One(s) => (Some(s), None),
                Next::Either(a, b) => (Some(a), Some(b)),
            };
            let mut candidates = [first, second].into_iter().flatten();
            let mut placed = false;
            while let Some(candidate) = candidates.next() {
                linearized.insert(k);
                let new_high = high.max(k);
                if seen.insert((linearized.key(new_high), candidate.clone())) {
                    let parent = stack.last().map_or(NONE, |f| f.node);
                    arena.push((k, parent));
                    let node = arena.len() - 1;
                    stack.push(Frame {
                        op: k,
                        previous: std::mem::replace(&mut state, candidate),
                        alternative: candidates.next(),
                        previous_high: high,
                        node,
                    });
                    high = new_high;
                    if stack.len() > best_depth {
                        best_depth = stack.len();
                        best_node = node;
                        stuck = None;
                    }
                    events.lift(k);
                    entry = events.next[events.head];
                    placed = true;
                    break;
                }
                linearized.remove(k);
            }
            if !placed {
                entry = events.next[entry];
            }
        } else {
            // A return: its operation was not linearized in time. Backtrack.
            let k = entry / 2;
            // At the deepest point reached (by this or another branch), report this prefix
            // and the operation that could not follow it, as a pair.
            if stack.len() >= best_depth {
                best_depth = stack.len();
                best_node = stack.last().map_or(NONE, |f| f.node);
                stuck = Some(k);
            }
            let Some(mut frame) = stack.pop() else {
                return result(Verdict::NotLinearizable, best_node, stuck, &arena);
            };
            events.unlift(frame.op);
            linearized.remove(frame.op);
            state = frame.previous;
            high = frame.previous_high;
            entry = events.next[2 * frame.op];
            // The other state this operation could lead to, if any, before moving on.
            if let Some(alternative) = frame.alternative.take() {
                linearized.insert(frame.op);
                let new_high = high.max(frame.op);
                if seen.insert((linearized.key(new_high), alternative.clone())) {
                    let parent = stack.last().map_or(NONE, |f| f.node);
                    arena.push((frame.op, parent));
                    stack.push(Frame {
                        op: frame.op,
                        previous: std::mem::replace(&mut state, alternative),
                        alternative: None,
                        previous_high: high,
                        node: arena.len() - 1,
                    });
                    high = new_high;
                    events.lift(frame.op);
                    entry = events.next[events.head];
                } else {
                    linearized.remove(frame.op);
                }
            }
        }
    }
    result(Verdict::Linearizable, best_node, None, &arena)
}
