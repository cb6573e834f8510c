//! Histories generated from a known linearization, for tests and benchmarks.
//!
//! Each process runs operations one after another with random durations; each operation
//! takes effect at a random instant inside its interval, and outputs are computed by
//! applying the operations in the order of those instants. The result is linearizable by
//! construction; `corrupt` changes one read's output to a value never written, which makes
//! it not linearizable.

use crate::history::{Operation, Outcome};
use crate::models::{CasOp, KvOp, QuotaOp, QuotaOutput, RegisterOp};

/// A small deterministic generator (xorshift*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Intervals and linearization points: `(process, call, ret, point)` for `ops` operations
/// over `processes` processes, sorted by call.
fn schedule(rng: &mut Rng, ops: usize, processes: usize) -> Vec<(u64, u64, u64, u64)> {
    let processes = processes.max(1);
    let mut clock: Vec<u64> = (0..processes).map(|_| rng.below(1_000)).collect();
    let mut out = Vec::with_capacity(ops);
    for i in 0..ops {
        let p = i % processes;
        let call = clock[p] + 1 + rng.below(1_000);
        let duration = 2 + rng.below(1_000 * processes as u64);
        let ret = call + duration;
        let point = call + 1 + rng.below(duration - 1);
        clock[p] = ret;
        out.push((p as u64, call, ret, point));
    }
    out.sort_by_key(|&(_, call, _, _)| call);
    out
}

/// A key-value history of puts and gets over `keys` keys.
pub fn kv_history(
    seed: u64,
    ops: usize,
    processes: usize,
    keys: usize,
    corrupt: bool,
) -> Vec<Operation<KvOp, String>> {
    let mut rng = Rng::new(seed);
    let slots = schedule(&mut rng, ops, processes);
    let inputs: Vec<KvOp> = (0..ops)
        .map(|i| {
            let key = format!("k{}", rng.below(keys.max(1) as u64));
            if rng.below(2) == 0 {
                KvOp::Get(key)
            } else {
                KvOp::Put(key, format!("v{i}"))
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..ops).collect();
    order.sort_by_key(|&i| slots[i].3);
    let mut values = std::collections::HashMap::new();
    let mut outputs = vec![String::new(); ops];
    for i in order {
        match &inputs[i] {
            KvOp::Get(k) => outputs[i] = values.get(k).cloned().unwrap_or_default(),
            KvOp::Put(k, v) | KvOp::Append(k, v) => {
                values.insert(k.clone(), v.clone());
            }
        }
    }
    if corrupt && let Some(i) = middle_read(&inputs, |op| matches!(op, KvOp::Get(_))) {
        outputs[i] = "never-written".to_owned();
    }
    build(&slots, inputs, outputs)
}

/// A single-register history of writes and reads (not partitionable).
pub fn register_history(
    seed: u64,
    ops: usize,
    processes: usize,
    corrupt: bool,
) -> Vec<Operation<RegisterOp, Option<i64>>> {
    let mut rng = Rng::new(seed);
    let slots = schedule(&mut rng, ops, processes);
    let inputs: Vec<RegisterOp> = (0..ops)
        .map(|i| {
            if rng.below(2) == 0 {
                RegisterOp::Read
            } else {
                RegisterOp::Write(i as i64)
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..ops).collect();
    order.sort_by_key(|&i| slots[i].3);
    let mut value = None;
    let mut outputs = vec![None; ops];
    for i in order {
        match inputs[i] {
            RegisterOp::Read => outputs[i] = value,
            RegisterOp::Write(v) => value = Some(v),
        }
    }
    if corrupt && let Some(i) = middle_read(&inputs, |op| *op == RegisterOp::Read) {
        outputs[i] = Some(-1);
    }
    build(&slots, inputs, outputs)
}

/// A compare-and-set register history in the shape of Jepsen's etcd tests: reads, writes
/// and compare-and-sets of small values over `processes` clients; one operation in
/// `info_every` ends with an unknown outcome (it took effect or not, at random), and
/// compare-and-sets whose comparison did not match end as `fail`.
pub fn cas_register_history(
    seed: u64,
    ops: usize,
    processes: usize,
    info_every: u64,
    corrupt: bool,
) -> Vec<Operation<CasOp, Option<i64>>> {
    let mut rng = Rng::new(seed);
    let slots = schedule(&mut rng, ops, processes);
    let inputs: Vec<CasOp> = (0..ops)
        .map(|_| match rng.below(3) {
            0 => CasOp::Read,
            1 => CasOp::Write(rng.below(5) as i64),
            _ => CasOp::Cas(rng.below(5) as i64, rng.below(5) as i64),
        })
        .collect();
    let unknown: Vec<bool> = (0..ops)
        .map(|_| rng.below(info_every.max(1)) == 0)
        .collect();
    let took_effect: Vec<bool> = (0..ops).map(|_| rng.below(2) == 0).collect();
    let mut order: Vec<usize> = (0..ops).collect();
    order.sort_by_key(|&i| slots[i].3);
    let mut value = None;
    let mut outcomes: Vec<Outcome<Option<i64>>> = vec![Outcome::Ok(None); ops];
    for i in order {
        if unknown[i] {
            outcomes[i] = Outcome::Info;
            if !took_effect[i] {
                continue;
            }
        }
        let ok = match inputs[i] {
            CasOp::Read => {
                if !unknown[i] {
                    outcomes[i] = Outcome::Ok(value);
                }
                true
            }
            CasOp::Write(v) => {
                value = Some(v);
                true
            }
            CasOp::Cas(from, to) => {
                let matched = value == Some(from);
                if matched {
                    value = Some(to);
                }
                matched
            }
        };
        if !ok && !unknown[i] {
            outcomes[i] = Outcome::Fail;
        }
    }
    if corrupt
        && let Some(i) = (ops / 2..ops)
            .chain(0..ops / 2)
            .find(|&i| inputs[i] == CasOp::Read && !unknown[i])
    {
        outcomes[i] = Outcome::Ok(Some(-1));
    }
    slots
        .iter()
        .zip(inputs.into_iter().zip(outcomes))
        .map(|(&(process, call, ret, _), (input, outcome))| {
            Operation::new(process, call, Some(ret), input, outcome)
        })
        .collect()
}

/// A quota history of one service (`"api"`, no known limit): records of 1 to 3 calls, each
/// reporting `used` after it, and one read in ten. `corrupt` makes one record in the middle
/// report one call more than it made (a count nobody else's record can explain).
pub fn quota_history(
    seed: u64,
    ops: usize,
    processes: usize,
    corrupt: bool,
) -> Vec<Operation<QuotaOp, QuotaOutput>> {
    let mut rng = Rng::new(seed);
    let slots = schedule(&mut rng, ops, processes);
    let service = || "api".to_owned();
    let inputs: Vec<QuotaOp> = (0..ops)
        .map(|_| {
            if rng.below(10) == 0 {
                QuotaOp::Read { service: service() }
            } else {
                QuotaOp::Record {
                    service: service(),
                    count: 1 + rng.below(3),
                }
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..ops).collect();
    order.sort_by_key(|&i| slots[i].3);
    let mut used = 0;
    let mut outputs = vec![QuotaOutput::Synced; ops];
    for i in order {
        outputs[i] = match inputs[i] {
            QuotaOp::Record { count, .. } => {
                used += count;
                QuotaOutput::Recorded(Some(used))
            }
            _ => QuotaOutput::Usage {
                used,
                remaining: None,
            },
        };
    }
    let is_record = |op: &QuotaOp| matches!(op, QuotaOp::Record { .. });
    if corrupt
        && let Some(i) = middle_read(&inputs, is_record)
        && let QuotaOutput::Recorded(Some(after)) = &mut outputs[i]
    {
        *after += 1;
    }
    build(&slots, inputs, outputs)
}

fn middle_read<I>(inputs: &[I], is_read: impl Fn(&I) -> bool) -> Option<usize> {
    let middle = inputs.len() / 2;
    (middle..inputs.len())
        .chain(0..middle)
        .find(|&i| is_read(&inputs[i]))
}

fn build<I, O>(
    slots: &[(u64, u64, u64, u64)],
    inputs: Vec<I>,
    outputs: Vec<O>,
) -> Vec<Operation<I, O>> {
    slots
        .iter()
        .zip(inputs.into_iter().zip(outputs))
        .map(|(&(process, call, ret, _), (input, output))| {
            Operation::new(process, call, Some(ret), input, Outcome::Ok(output))
        })
        .collect()
}
