//! Partitions whose every operation is pinned on a growing count are decided in
//! O(n log n), with the same verdict the search would give.
//!
//! A pinned operation ([`Pin::At`]) is possible exactly when the count is `from` and leaves
//! it at `to >= from`. Counts only grow, so the steps (`to > from`) must form one chain
//! `0 → a → b → …`, each starting where the previous ended, and each observation
//! (`to == from`) must see a count on that chain: the order of the steps is fixed, and each
//! observation belongs between the step that reached its count and the next one. What is
//! left is time: each operation needs a linearization point inside its interval, in chain
//! order. Giving every operation the earliest point allowed (its call, or the point of what
//! must precede it, whichever is later) is optimal, so the partition is linearizable
//! exactly when no operation's earliest point falls after its return.

use crate::history::Operation;
use crate::model::{Model, Pin};

/// Why a pinned partition is not linearizable, or its linearization.
pub(crate) enum Decided {
    /// A linearization, in partition-local indexes.
    Linearizable(Vec<usize>),
    /// The longest prefix placed, and an operation that cannot follow it.
    NotLinearizable { prefix: Vec<usize>, stuck: usize },
}

/// The pins of a partition's operations, or `None` if some operation is not pinned.
pub(crate) fn pins<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
) -> Option<Vec<Pin>> {
    ops.iter()
        .map(|op| model.pin(&op.input, &op.outcome))
        .collect()
}

/// Decides a partition whose operations (in call order) have `pins`.
pub(crate) fn decide<I, O>(ops: &[&Operation<I, O>], pins: &[Pin]) -> Decided {
    if let Some(never) = pins.iter().position(|p| *p == Pin::Never) {
        return Decided::NotLinearizable {
            prefix: Vec::new(),
            stuck: never,
        };
    }
    let at = |k: usize| match pins[k] {
        Pin::At { from, to } => (from, to),
        Pin::Never => unreachable!("handled above"),
    };
    // Chain order: by the count needed; at one count, observations before the step that
    // leaves it.
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&k| {
        let (from, to) = at(k);
        (from, to != from, k)
    });
    let mut placed = Vec::with_capacity(ops.len());
    let mut count = 0u64;
    // The latest point given so far (linearization points are non-decreasing in order).
    let mut point = 0u64;
    for &k in &order {
        let (from, to) = at(k);
        // A second step from one count finds the count moved on.
        let fits_chain = from == count;
        let earliest = point.max(ops[k].call);
        let in_time = ops[k].ret.is_none_or(|ret| earliest <= ret);
        if !fits_chain || !in_time {
            return Decided::NotLinearizable {
                prefix: placed,
                stuck: k,
            };
        }
        point = earliest;
        count = to;
        placed.push(k);
    }
    Decided::Linearizable(placed)
}
