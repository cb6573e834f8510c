//! The checker's verdict equals the brute-force checker's on thousands of small random
//! histories of every built-in model, with ok, fail and info completions.

use linearizability::models::{
    CasOp, CasRegister, Kv, KvOp, Quota, QuotaOp, QuotaOutput, Register, RegisterOp,
};
use linearizability::{Model, Operation, Outcome, Verdict, brute, check};

/// A small deterministic generator (xorshift*), so every failure names its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random interleaving of up to `max_ops` operations over 1-3 processes: each process
/// alternates invoke and complete; completions are ok (70 %), fail (15 %) or info (15 %).
fn history<I, O>(
    rng: &mut Rng,
    max_ops: u64,
    mut op: impl FnMut(&mut Rng) -> (I, O),
) -> Vec<Operation<I, O>> {
    let processes = 1 + rng.below(3);
    let total = 1 + rng.below(max_ops);
    let mut open: Vec<Option<(u64, I, O)>> = (0..processes).map(|_| None).collect();
    let (mut started, mut time, mut ops) = (0, 0u64, Vec::new());
    while started < total || open.iter().any(Option::is_some) {
        let p = rng.below(processes) as usize;
        time += 1;
        match open[p].take() {
            None if started < total => {
                let (input, output) = op(rng);
                open[p] = Some((time, input, output));
                started += 1;
            }
            None => {}
            Some((call, input, output)) => {
                let outcome = match rng.below(20) {
                    0..=13 => Outcome::Ok(output),
                    14..=16 => Outcome::Fail,
                    _ => Outcome::Info,
                };
                ops.push(Operation::new(p as u64, call, Some(time), input, outcome));
            }
        }
    }
    ops
}

fn agree<M: Model>(
    model: &M,
    name: &str,
    histories: u64,
    mut make: impl FnMut(&mut Rng) -> Vec<Operation<M::Input, M::Output>>,
) {
    let (mut yes, mut no) = (0, 0);
    for seed in 0..histories {
        let mut rng = Rng::new(seed);
        let h = make(&mut rng);
        let expected = brute::is_linearizable(model, &h);
        let result = check(model, &h, None);
        let got = result.verdict == Verdict::Linearizable;
        assert_eq!(
            got, expected,
            "{name}, seed {seed}: checker says {:?}, brute force says linearizable={expected}\n{h:#?}",
            result.verdict
        );
        if expected {
            yes += 1;
        } else {
            no += 1;
            let p = result
                .partitions
                .iter()
                .find(|p| p.verdict == Verdict::NotLinearizable)
                .expect("a failing partition");
            assert!(
                p.stuck.is_some(),
                "{name}, seed {seed}: no operation named as stuck"
            );
        }
    }
    eprintln!("{name}: {histories} histories, {yes} linearizable, {no} not");
    // Both verdicts must be well represented, or the comparison proves little.
    assert!(
        yes > histories / 10 && no > histories / 10,
        "{name}: {yes} yes / {no} no"
    );
}

#[test]
fn register_agrees_with_brute_force() {
    agree(&Register, "register", 4_000, |rng| {
        history(rng, 7, |rng| {
            if rng.below(2) == 0 {
                let v = rng.below(4);
                (RegisterOp::Read, if v == 3 { None } else { Some(v as i64) })
            } else {
                (RegisterOp::Write(rng.below(3) as i64), None)
            }
        })
    });
}

#[test]
fn cas_register_agrees_with_brute_force() {
    agree(&CasRegister, "cas-register", 4_000, |rng| {
        history(rng, 7, |rng| match rng.below(3) {
            0 => {
                let v = rng.below(4);
                (CasOp::Read, if v == 3 { None } else { Some(v as i64) })
            }
            1 => (CasOp::Write(rng.below(3) as i64), None),
            _ => (CasOp::Cas(rng.below(3) as i64, rng.below(3) as i64), None),
        })
    });
}

#[test]
fn kv_agrees_with_brute_force() {
    let values = ["", "a", "b", "ab", "ba"];
    agree(&Kv, "kv", 4_000, |rng| {
        history(rng, 7, |rng| {
            let key = if rng.below(2) == 0 { "x" } else { "y" }.to_owned();
            match rng.below(3) {
                0 => (KvOp::Get(key), values[rng.below(5) as usize].to_owned()),
                1 => (
                    KvOp::Put(key, values[1 + rng.below(2) as usize].to_owned()),
                    String::new(),
                ),
                _ => (
                    KvOp::Append(key, values[1 + rng.below(2) as usize].to_owned()),
                    String::new(),
                ),
            }
        })
    });
}

/// A random quota operation on service a (limit 5, ceiling 4), b (limit 2, ceiling 2) or c
/// (no known limit). Two times in three its output is the one a sequential run in invocation
/// order would give (`used` tracks that run), so that admits, refusals and refunds are often
/// linearizable; otherwise it is random.
fn quota_op(rng: &mut Rng, used: &mut [u64; 3]) -> (QuotaOp, QuotaOutput) {
    let i = [1, 1, 2, 0, 0, 0][rng.below(6) as usize];
    let (limit, ceiling) = [(Some(5), Some(4)), (Some(2), Some(2)), (None, None)][i];
    let service = ["a", "b", "c"][i].to_owned();
    let honest = rng.below(3) != 0;
    let u = &mut used[i];
    // `used` as reported: the sequential run's value, a random one, or not observed.
    let report = |rng: &mut Rng, u: u64| match rng.below(4) {
        0 => None,
        _ if honest => Some(u),
        _ => Some(rng.below(5)),
    };
    // An honest refund gives back only what is used.
    let kind = match rng.below(7) {
        4 if honest && *u == 0 => 2,
        kind => kind,
    };
    match kind {
        0 | 1 => {
            let count = 1 + rng.below(2);
            *u += count;
            let after = report(rng, *u);
            (
                QuotaOp::Record { service, count },
                QuotaOutput::Recorded(after),
            )
        }
        2 | 3 => {
            let count = 1 + rng.below(2);
            let fits = ceiling.is_none_or(|c| *u + count <= c);
            let admitted = if honest { fits } else { rng.below(2) == 0 };
            if admitted {
                *u += count;
            }
            let used = report(rng, *u);
            let output = QuotaOutput::Admission { admitted, used };
            (QuotaOp::Admit { service, count }, output)
        }
        4 => {
            *u = u.saturating_sub(1);
            let after = report(rng, *u);
            (
                QuotaOp::Refund { service, count: 1 },
                QuotaOutput::Refunded(after),
            )
        }
        5 => {
            let used = if honest { *u } else { rng.below(4) };
            let remaining = (rng.below(2) == 0).then(|| limit.unwrap_or(5u64).saturating_sub(used));
            (
                QuotaOp::Read { service },
                QuotaOutput::Usage { used, remaining },
            )
        }
        _ => {
            let answer = match ceiling {
                Some(c) if honest => *u < c,
                _ => rng.below(2) == 0,
            };
            (QuotaOp::CanCall { service }, QuotaOutput::CanCall(answer))
        }
    }
}

#[test]
fn quota_agrees_with_brute_force() {
    let model = Quota::with_limits([("a", 5), ("b", 2)]);
    agree(&model, "quota", 4_000, |rng| {
        let mut used = [0; 3];
        history(rng, 7, |rng| quota_op(rng, &mut used))
    });
}
