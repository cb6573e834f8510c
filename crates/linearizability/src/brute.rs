//! A brute-force checker, written apart from [`crate::checker`] to test it.
//!
//! It tries every order of the operations consistent with real time, straight from the
//! definition: an operation that completed before another was invoked comes first; an
//! operation with an unknown outcome is either placed anywhere after its call or left out.
//! Exponential: for histories of a handful of operations only.
//!
//! It does not split the history into partitions: its state is the whole object (the
//! state of every partition key at once), so it also checks that checking partitions apart
//! is sound.

use crate::history::Operation;
use crate::model::{Model, Next};

/// Whether some order of `history` is a valid sequential execution of `model`.
pub fn is_linearizable<M: Model>(model: &M, history: &[Operation<M::Input, M::Output>]) -> bool {
    let mut placed = vec![false; history.len()];
    place(model, history, &mut placed, vec![Vec::new()])
}

/// The whole object: each partition key's state (keys absent are in the initial state).
type Whole<S> = Vec<(Option<String>, S)>;

fn step_whole<M: Model>(
    model: &M,
    whole: &Whole<M::State>,
    op: &Operation<M::Input, M::Output>,
) -> Vec<Whole<M::State>> {
    let key = model.partition_key(&op.input);
    let current = whole
        .iter()
        .find(|(k, _)| *k == key)
        .map_or_else(|| model.init(), |(_, s)| s.clone());
    let with = |s: M::State| {
        let mut next: Whole<M::State> = whole.iter().filter(|(k, _)| *k != key).cloned().collect();
        next.push((key.clone(), s));
        next.sort_by(|a, b| a.0.cmp(&b.0));
        next
    };
    match model.step(&current, &op.input, &op.outcome) {
        Next::Impossible => Vec::new(),
        Next::One(s) => vec![with(s)],
        Next::Either(a, b) => vec![with(a), with(b)],
    }
}

fn place<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    placed: &mut [bool],
    states: Vec<Whole<M::State>>,
) -> bool {
    let open: Vec<usize> = (0..history.len()).filter(|&i| !placed[i]).collect();
    // Done when only operations that may never have happened are left.
    if open.iter().all(|&i| history[i].ret.is_none()) {
        return true;
    }
    for &i in &open {
        // `i` can go next only if no other open operation had to come before it.
        if open
            .iter()
            .any(|&j| j != i && history[j].precedes(&history[i]))
        {
            continue;
        }
        let mut next: Vec<Whole<M::State>> = Vec::new();
        for state in &states {
            for s in step_whole(model, state, &history[i]) {
                if !next.contains(&s) {
                    next.push(s);
                }
            }
        }
        if next.is_empty() {
            continue;
        }
        placed[i] = true;
        let found = place(model, history, placed, next);
        placed[i] = false;
        if found {
            return true;
        }
    }
    false
}
