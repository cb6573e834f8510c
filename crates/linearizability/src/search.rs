//! The Wing–Gong search of one partition with Lowe's memoization: a linearization is found
//! if one exists, no (linearized set, state) pair is explored twice, and of identical
//! operations the search only tries the one that must come first.
//!
//! The call and return events are a doubly linked list in time order. The search walks it
//! from the front: at a call, it tries to linearize that operation next (the model must
//! accept it); at a return, the operation that returns was not linearized in time, so it
//! backtracks. An operation with an unknown outcome returns "at infinity", so it can be
//! placed anywhere after its call, including after everything (the same as never happening).
//!
//! Identical operations (same input and outcome) `i` and `j`, with `i` called no later and
//! returning no later than `j`, are interchangeable: any linearization placing `j` before
//! `i` stays valid with the two swapped. So `j` is only tried once `i` is linearized
//! ([`twins`]); with many identical unknown writes, as Jepsen's histories have, this cuts
//! the orders to try by the factorial of their number.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::history::{Operation, Outcome};
use crate::memo::{Insert, Linearized, Memo, MemoryBudget};
use crate::model::{Model, Next};

/// No node, no operation.
pub(crate) const NONE: usize = usize::MAX;

/// Why a search stopped without a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The time limit was reached.
    TimeLimit,
    /// The memory limit was reached.
    MemoryLimit,
    /// Another partition (or history) was found not linearizable first.
    Cancelled,
}

/// How a search ended, in partition-local operation indexes.
pub(crate) struct Found {
    /// `Ok(())`: linearizable; `Err(None)`: not; `Err(Some(why))`: stopped.
    pub(crate) verdict: Result<(), Option<Stopped>>,
    /// The full linearization, or the longest prefix reached.
    pub(crate) prefix: Vec<usize>,
    /// When not linearizable: an operation that cannot follow that prefix.
    pub(crate) stuck: Option<usize>,
}

/// For each operation, the identical one that must be linearized before it may be tried
/// (the latest earlier-called identical operation, if it returns no later), or [`NONE`].
pub(crate) fn twins<I: Eq + std::hash::Hash, O: Eq + std::hash::Hash>(
    ops: &[&Operation<I, O>],
) -> Vec<usize> {
    let mut last: HashMap<(&I, &Outcome<O>), usize> = HashMap::new();
    let mut twins = vec![NONE; ops.len()];
    // `ops` is in call order, so an earlier index was called no later.
    for (k, op) in ops.iter().enumerate() {
        if let Some(previous) = last.insert((&op.input, &op.outcome), k) {
            let returns_no_later = match (ops[previous].ret, op.ret) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(a), Some(b)) => a <= b,
            };
            if returns_no_later {
                twins[k] = previous;
            }
        }
    }
    twins
}

/// The call and return events of one partition, as a doubly linked list in time order
/// that operations are lifted out of (when linearized) and put back into (on backtrack).
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Node `2k` is op `k`'s call, node `2k + 1` its return; `head` is a sentinel.
    head: usize,
}

impl Events {
    fn new<I, O>(ops: &[&Operation<I, O>]) -> Self {
        let n = ops.len();
        let mut order: Vec<usize> = (0..2 * n).collect();
        // Time order; at equal times calls before returns (such operations overlap), and
        // returns "at infinity" last.
        order.sort_by_key(|&node| {
            let k = node / 2;
            if node.is_multiple_of(2) {
                (ops[k].call, 0, k)
            } else {
                (ops[k].ret.unwrap_or(u64::MAX), 1, k)
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

    fn first(&self) -> usize {
        self.next[self.head]
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

struct Frame<S> {
    op: usize,
    previous: S,
    /// A second state the operation could lead to, tried on backtrack.
    alternative: Option<S>,
    /// This frame's node in the prefix arena.
    node: usize,
}

/// When to give up: a deadline, a flag another search raises, a memory budget.
pub(crate) struct Limits<'a> {
    pub(crate) deadline: Option<Instant>,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) budget: &'a MemoryBudget,
}

/// One partition's search in progress.
struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [&'a Operation<M::Input, M::Output>],
    twins: &'a [usize],
    events: Events,
    linearized: Linearized,
    memo: Memo<'a, M::State>,
    stack: Vec<Frame<M::State>>,
    /// Every prefix ever reached, as (op, parent) nodes: the longest one survives backtracking.
    arena: Vec<(usize, usize)>,
    best_node: usize,
    best_depth: usize,
    stuck: Option<usize>,
    state: M::State,
    entry: usize,
}

/// Searches for a linearization of `ops` (one partition, in call order).
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    limits: &Limits<'_>,
) -> Found {
    let twins = twins(ops);
    let events = Events::new(ops);
    let entry = events.first();
    let heap = |state: &M::State| model.state_heap_bytes(state);
    let search = Search {
        model,
        ops,
        twins: &twins,
        events,
        linearized: Linearized::new(ops.len()),
        memo: Memo::new(limits.budget, &heap),
        stack: Vec::new(),
        arena: Vec::new(),
        best_node: NONE,
        best_depth: 0,
        stuck: None,
        state: model.init(),
        entry,
    };
    search.run(limits)
}

impl<'a, M: Model> Search<'a, M> {
    fn run(mut self, limits: &Limits<'_>) -> Found {
        let mut steps = 0u64;
        while self.events.first() != NONE {
            steps += 1;
            if steps.is_multiple_of(4096) {
                if limits.stop.load(Ordering::Relaxed) {
                    return self.found(Err(Some(Stopped::Cancelled)));
                }
                if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                    return self.found(Err(Some(Stopped::TimeLimit)));
                }
            }
            let k = self.entry / 2;
            let outcome = if self.entry.is_multiple_of(2) {
                self.at_call(k)
            } else {
                self.at_return(k)
            };
            if let Err(verdict) = outcome {
                return self.found(Err(verdict));
            }
        }
        self.found(Ok(()))
    }

    /// At op `k`'s call: linearize it next if the model allows and the pair is new;
    /// otherwise move on to the next event.
    fn at_call(&mut self, k: usize) -> Result<(), Option<Stopped>> {
        let twin = self.twins[k];
        if twin != NONE && !self.linearized.contains(twin) {
            self.entry = self.events.next[self.entry];
            return Ok(());
        }
        let op = self.ops[k];
        let (first, second) = match self.model.step(&self.state, &op.input, &op.outcome) {
            Next::Impossible => (None, None),
            Next::One(s) => (Some(s), None),
            Next::Either(a, b) => (Some(a), Some(b)),
        };
        for (candidate, alternative) in [(first, second.clone()), (second, None)] {
            let Some(candidate) = candidate else { continue };
            match self.place(k, candidate, alternative) {
                Insert::New => return Ok(()),
                Insert::Full => return Err(Some(Stopped::MemoryLimit)),
                Insert::Seen => {}
            }
        }
        self.entry = self.events.next[self.entry];
        Ok(())
    }

    /// Linearizes op `k` into `state` if that pair is new (`alternative`: the other state
    /// it could lead to, tried on backtrack).
    fn place(&mut self, k: usize, state: M::State, alternative: Option<M::State>) -> Insert {
        self.linearized.insert(k);
        let insert = self.memo.insert(&self.linearized, &state);
        if insert != Insert::New {
            self.linearized.remove(k);
            return insert;
        }
        let parent = self.stack.last().map_or(NONE, |f| f.node);
        self.arena.push((k, parent));
        let node = self.arena.len() - 1;
        self.stack.push(Frame {
            op: k,
            previous: std::mem::replace(&mut self.state, state),
            alternative,
            node,
        });
        if self.stack.len() > self.best_depth {
            self.best_depth = self.stack.len();
            self.best_node = node;
            self.stuck = None;
        }
        self.events.lift(k);
        self.entry = self.events.first();
        Insert::New
    }

    /// At op `k`'s return: it was not linearized in time. Backtrack.
    fn at_return(&mut self, k: usize) -> Result<(), Option<Stopped>> {
        // At the deepest point reached (by this or another branch), report this prefix
        // and the operation that could not follow it, as a pair.
        if self.stack.len() >= self.best_depth {
            self.best_depth = self.stack.len();
            self.best_node = self.stack.last().map_or(NONE, |f| f.node);
            self.stuck = Some(k);
        }
        let Some(mut frame) = self.stack.pop() else {
            return Err(None);
        };
        self.events.unlift(frame.op);
        self.linearized.remove(frame.op);
        self.state = frame.previous;
        self.entry = self.events.next[2 * frame.op];
        // The other state this operation could lead to, if any, before moving on.
        if let Some(alternative) = frame.alternative.take()
            && self.place(frame.op, alternative, None) == Insert::Full
        {
            return Err(Some(Stopped::MemoryLimit));
        }
        Ok(())
    }

    fn found(&self, verdict: Result<(), Option<Stopped>>) -> Found {
        let mut prefix = Vec::new();
        let mut at = self.best_node;
        while at != NONE {
            prefix.push(self.arena[at].0);
            at = self.arena[at].1;
        }
        prefix.reverse();
        let stuck = if verdict == Err(None) {
            self.stuck
        } else {
            None
        };
        Found {
            verdict,
            prefix,
            stuck,
        }
    }
}
