//! A register partition whose writes all carry distinct values is decided in O(n log n),
//! with the same verdict the search would give.
//!
//! Distinct values tell each read which write it saw (the initial value is a write before
//! everything). A write and its reads form a cluster, which a linearization must place as
//! one block: the write, then its reads, before the next write. Of a cluster's operations,
//! let `f` be the earliest return and `s` the latest call. If `f < s` the block must cover
//! all of `(f, s)` (its *forward zone*); otherwise all its operations overlap `[s, f]` and
//! the block fits at any instant there (a *backward zone*). Gibbons and Korach showed that
//! such a history is linearizable exactly when no read returns before its write is called,
//! no two forward zones overlap, and no backward zone lies inside a forward zone; a
//! linearization then follows from placing each block at its zone.

use std::collections::HashMap;

use crate::history::Operation;
use crate::model::Access;
use crate::pinned::Decided;

/// Before every operation (the initial value's write).
const BEFORE: i128 = i128::MIN;
/// After every operation (the return of an unknown outcome).
const AFTER: i128 = i128::MAX;

/// A write and the reads that saw it.
struct Cluster {
    /// The write (`None`: the initial value).
    write: Option<usize>,
    reads: Vec<usize>,
    /// The earliest return and the latest call of its operations.
    first_return: i128,
    last_call: i128,
}

impl Cluster {
    fn forward(&self) -> bool {
        self.first_return < self.last_call
    }
}

fn call<I, O>(op: &Operation<I, O>) -> i128 {
    i128::from(op.call)
}

fn ret<I, O>(op: &Operation<I, O>) -> i128 {
    op.ret.map_or(AFTER, i128::from)
}

/// The accesses of a partition's operations, or `None` if one is not a plain read or write.
pub(crate) fn accesses<M: crate::Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
) -> Option<Vec<Access>> {
    ops.iter()
        .map(|op| model.access(&op.input, &op.outcome))
        .collect()
}

/// Decides a register partition (operations in call order, their `accesses`), or `None`
/// if two writes share a value (the search must decide which one a read saw).
pub(crate) fn decide<I, O>(ops: &[&Operation<I, O>], accesses: &[Access]) -> Option<Decided> {
    let mut by_value: HashMap<i64, usize> = HashMap::new();
    let mut clusters = vec![Cluster {
        write: None,
        reads: Vec::new(),
        first_return: BEFORE,
        last_call: BEFORE,
    }];
    for (k, access) in accesses.iter().enumerate() {
        if let Access::Write(v) = access {
            if by_value.insert(*v, clusters.len()).is_some() {
                return None;
            }
            clusters.push(Cluster {
                write: Some(k),
                reads: Vec::new(),
                first_return: ret(ops[k]),
                last_call: call(ops[k]),
            });
        }
    }
    for (k, access) in accesses.iter().enumerate() {
        let Access::Read(value) = access else {
            continue;
        };
        let cluster = match value {
            None => 0,
            Some(v) => match by_value.get(v) {
                Some(&c) => c,
                None => return Some(stuck(ops, &clusters, k)),
            },
        };
        let c = &mut clusters[cluster];
        if c.write.is_some_and(|w| ret(ops[k]) < call(ops[w])) {
            // The read was over before its write began.
            return Some(stuck(ops, &clusters, k));
        }
        c.reads.push(k);
        c.first_return = c.first_return.min(ret(ops[k]));
        c.last_call = c.last_call.max(call(ops[k]));
    }
    let forward = forward_zones(&clusters);
    for pair in forward.windows(2) {
        let (a, b) = (&clusters[pair[0]], &clusters[pair[1]]);
        if b.first_return < a.last_call {
            // b's block had begun (one of its operations returned) before a's was done.
            return Some(stuck(ops, &clusters, first_returning(ops, b)));
        }
    }
    for cluster in &clusters {
        if cluster.forward() || cluster.write.is_none() && cluster.reads.is_empty() {
            continue;
        }
        if enclosing(&clusters, &forward, cluster.last_call)
            .is_some_and(|zone| cluster.first_return < clusters[zone].last_call)
        {
            let op = cluster.write.or(cluster.reads.first().copied());
            return Some(stuck(ops, &clusters, op.unwrap_or_default()));
        }
    }
    Some(Decided::Linearizable(order(&clusters, &forward, ops, None)))
}

/// The clusters with a forward zone, by the zone's start.
fn forward_zones(clusters: &[Cluster]) -> Vec<usize> {
    let mut forward: Vec<usize> = (0..clusters.len())
        .filter(|&c| clusters[c].forward())
        .collect();
    forward.sort_by_key(|&c| clusters[c].first_return);
    forward
}

/// The forward zone (of the sorted, disjoint `forward`) whose open interval holds the
/// instant `at`, if one does.
fn enclosing(clusters: &[Cluster], forward: &[usize], at: i128) -> Option<usize> {
    let i = forward.partition_point(|&z| clusters[z].first_return < at);
    let zone = *forward[..i].last()?;
    (at < clusters[zone].last_call).then_some(zone)
}

/// The operation of `cluster` that returns first.
fn first_returning<I, O>(ops: &[&Operation<I, O>], cluster: &Cluster) -> usize {
    cluster
        .write
        .into_iter()
        .chain(cluster.reads.iter().copied())
        .min_by_key(|&k| (ret(ops[k]), k))
        .unwrap_or_default()
}

/// Not linearizable at `op`: the prefix is what a linearization of the other clusters
/// places before `op` was called.
fn stuck<I, O>(ops: &[&Operation<I, O>], clusters: &[Cluster], op: usize) -> Decided {
    let forward = forward_zones(clusters);
    Decided::NotLinearizable {
        prefix: order(clusters, &forward, ops, Some(call(ops[op]))),
        stuck: op,
    }
}

/// The blocks in zone order, each its write then its reads (only operations placed before
/// `before`, if given): a linearization when the zones are consistent.
fn order<I, O>(
    clusters: &[Cluster],
    forward: &[usize],
    ops: &[&Operation<I, O>],
    before: Option<i128>,
) -> Vec<usize> {
    // Each block's place: a forward block spans its zone; a backward one sits at the first
    // instant of its zone outside every forward zone: its start, or the end of the forward
    // zone its start falls in. Sorting by the start alone gives the same order (nothing else
    // begins inside a forward zone), so only the reads' instants use the true place.
    let mut blocks: Vec<(i128, i128, usize)> = clusters
        .iter()
        .enumerate()
        .filter(|(_, c)| c.write.is_some() || !c.reads.is_empty())
        .map(|(i, c)| {
            if c.forward() {
                return (c.first_return, c.last_call, i);
            }
            let at = enclosing(clusters, forward, c.last_call)
                .map_or(c.last_call, |z| clusters[z].last_call);
            (at, at, i)
        })
        .collect();
    blocks.sort_unstable();
    let mut out = Vec::new();
    for (start, _, i) in blocks {
        let c = &clusters[i];
        let mut reads: Vec<(i128, usize)> = c
            .reads
            .iter()
            .map(|&k| (start.max(call(ops[k])), k))
            .collect();
        reads.sort_unstable();
        let placed = c.write.map(|w| (start, w)).into_iter().chain(reads);
        for (point, k) in placed {
            if before.is_some_and(|b| point >= b) {
                continue;
            }
            out.push(k);
        }
    }
    out
}
