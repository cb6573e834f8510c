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

/// A sequential object: what operations do, one at a time.
pub trait Model: Sync {
    /// The object's state. Hashed for memoization, so keep it small.
    type State: Clone + Eq + Hash + Debug + Send;
    /// What an operation asks.
    type Input: Clone + Debug + Send + Sync;
    /// What an operation returns.
    type Output: Clone + Debug + Send + Sync;

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

    fn describe(&self, input: &M::Input, outcome: &Outcome<M::Output>) -> String {
        self.0.describe(input, outcome)
    }
}
