//! The sequential specification a history is checked against.

use std::fmt::Debug;
use std::hash::Hash;

use crate::history::Outcome;

/// The states an operation can lead to from one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<S> {
    /// The operation cannot have happened here with that outcome.
    Impossible,
    /// It leads to exactly this state.
    One(S),
    /// Either of two states (an unknown outcome that may or may not have changed the state).
    Either(S, S),
}

impl<S> Next<S> {
    /// `One(state)` if `possible`, else `Impossible`.
    pub fn when(possible: bool, state: impl FnOnce() -> S) -> Self {
        if possible {
            Next::One(state())
        } else {
            Next::Impossible
        }
    }
}

/// Where an operation's output places it on a count that starts at 0 (the quota model's
/// `used`): the promise a model makes with [`Model::pin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// The operation is possible exactly when the count is `from`, and leaves it at `to`
    /// (`to > from`: a step, like a record returning `used` after it; `to == from`: an
    /// observation, like a read). `to < from` is not allowed: pinned counts only grow.
    At {
        /// The count the operation needs.
        from: u64,
        /// The count it leaves.
        to: u64,
    },
    /// Possible in no state (a record reporting less than its own count).
    Never,
}

/// A plain register access, the promise a model makes with [`Model::access`]: the state is
/// the register's value, initially `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Sets the value (it took effect, or its outcome is unknown).
    Write(i64),
    /// Returned the value (it completed).
    Read(Option<i64>),
}

/// A sequential object: what operations do, one at a time.
pub trait Model: Sync {
    /// The object's state. Hashed for memoization, so keep it small.
    type State: Clone + Eq + Hash + Debug + Send;
    /// What an operation asks. Compared and hashed to find identical operations, which the
    /// search need not try in every order.
    type Input: Clone + Debug + Eq + Hash + Send + Sync;
    /// What an operation returns.
    type Output: Clone + Debug + Eq + Hash + Send + Sync;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The states `input` with `outcome` can lead to from `state`.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        outcome: &Outcome<Self::Output>,
    ) -> Next<Self::State>;

    /// The independent part of the object an operation touches (a key, a service), if the
    /// model can be checked one part at a time (P-compositionality). `None`: one part.
    fn partition_key(&self, input: &Self::Input) -> Option<String> {
        let _ = input;
        None
    }

    /// Whether `input` with `outcome` neither constrains nor changes the state, whatever the
    /// state (a read whose outcome is unknown, a failed write): the checker drops such
    /// operations before the search and places them back in the linearization it reports.
    /// The default, `false`, is always correct; `true` must mean `step` gives
    /// `Next::One(state)` for every state.
    fn is_inert(&self, input: &Self::Input, outcome: &Outcome<Self::Output>) -> bool {
        let _ = (input, outcome);
        false
    }

    /// Where the output of `input` pins it, for models whose state is a count that starts at
    /// 0 (see [`Pin`]). When every operation of a partition is pinned (or inert), the
    /// checker decides it in O(n log n) without searching. `None` (the default): not
    /// pinned, search.
    fn pin(&self, input: &Self::Input, outcome: &Outcome<Self::Output>) -> Option<Pin> {
        let _ = (input, outcome);
        None
    }

    /// What `input` does to a register, for models that are one (see [`Access`]): when every
    /// operation of a partition is a plain read or write and the writes carry distinct
    /// values, the checker decides it in O(n log n) without searching. `None` (the
    /// default): not a plain access, search.
    fn access(&self, input: &Self::Input, outcome: &Outcome<Self::Output>) -> Option<Access> {
        let _ = (input, outcome);
        None
    }

    /// Heap bytes `state` owns beyond its own size, counted against the memory limit.
    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        let _ = state;
        0
    }

    /// How an operation reads in reports, e.g. `write(3)` or `read() -> 3`.
    fn describe(&self, input: &Self::Input, outcome: &Outcome<Self::Output>) -> String {
        let outcome = match outcome {
            Outcome::Ok(output) => format!("{output:?}"),
            Outcome::Fail => "fail".to_owned(),
            Outcome::Info => "?".to_owned(),
        };
        format!("{input:?} -> {outcome}")
    }

    /// How a state reads in reports.
    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}

/// A model checked as one whole, without partitions: its state is every key's state. For
/// measuring what partitioning buys, and for checking that it changes no verdict.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unpartitioned<M>(pub M);

impl<M: Model> Model for Unpartitioned<M> {
    type State = Vec<(Option<String>, M::State)>;
    type Input = M::Input;
    type Output = M::Output;

    fn init(&self) -> Self::State {
        Vec::new()
    }

    fn step(
        &self,
        state: &Self::State,
        input: &M::Input,
        outcome: &Outcome<M::Output>,
    ) -> Next<Self::State> {
        let key = self.0.partition_key(input);
        let position = state.binary_search_by(|(k, _)| k.cmp(&key));
        let current = match position {
            Ok(i) => state[i].1.clone(),
            Err(_) => self.0.init(),
        };
        let with = |s: M::State| {
            let mut next = state.clone();
            match position {
                Ok(i) => next[i].1 = s,
                Err(i) => next.insert(i, (key.clone(), s)),
            }
            next
        };
        match self.0.step(&current, input, outcome) {
            Next::Impossible => Next::Impossible,
            Next::One(s) => Next::One(with(s)),
            Next::Either(a, b) => Next::Either(with(a), with(b)),
        }
    }

    fn is_inert(&self, input: &M::Input, outcome: &Outcome<M::Output>) -> bool {
        self.0.is_inert(input, outcome)
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.capacity() * std::mem::size_of::<(Option<String>, M::State)>()
            + state
                .iter()
                .map(|(k, s)| k.as_ref().map_or(0, String::capacity) + self.0.state_heap_bytes(s))
                .sum::<usize>()
    }

    fn describe(&self, input: &M::Input, outcome: &Outcome<M::Output>) -> String {
        self.0.describe(input, outcome)
    }
}
