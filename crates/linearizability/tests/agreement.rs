//! The checker's verdict equals the brute-force checker's on thousands of small random
//! histories of every built-in model, with ok, fail and info completions.

use linearizability::models::{
    CasOp, CasRegister, Kv, KvOp, Quota, QuotaOp, QuotaOutput, Register, RegisterOp,
};
use linearizability::{CheckResult, Model, Next, Operation, Outcome, Verdict, brute, check};

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
    op: impl FnMut(&mut Rng) -> (I, O),
) -> Vec<Operation<I, O>> {
    history_of(rng, max_ops, true, op)
}

/// As [`history`]; without `info`, the 15 % of info completions are ok instead.
fn history_of<I, O>(
    rng: &mut Rng,
    max_ops: u64,
    info: bool,
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
                    _ if !info => Outcome::Ok(output),
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
            if let Err(e) = valid_linearization(model, &h, &result) {
                panic!("{name}, seed {seed}: {e}\n{h:#?}\n{result:#?}");
            }
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

/// Whether each partition's reported linearization holds every one of its operations once,
/// in an order real time allows, that the model can run (some choice of states).
fn valid_linearization<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    result: &CheckResult,
) -> Result<(), String> {
    for p in &result.partitions {
        let mut order = p.linearization.clone();
        order.sort_unstable();
        let mut expected = p.operations.clone();
        expected.sort_unstable();
        if order != expected {
            return Err(format!(
                "linearization {:?} is not the partition's operations {:?}",
                p.linearization, p.operations
            ));
        }
        for (i, &a) in p.linearization.iter().enumerate() {
            if let Some(&b) = p.linearization[..i]
                .iter()
                .find(|&&b| history[a].precedes(&history[b]))
            {
                return Err(format!(
                    "op {a} returned before op {b} began but is placed after it"
                ));
            }
        }
        let mut states = vec![model.init()];
        for &k in &p.linearization {
            let op = &history[k];
            let mut next = Vec::new();
            for s in &states {
                match model.step(s, &op.input, &op.outcome) {
                    Next::Impossible => {}
                    Next::One(a) => next.push(a),
                    Next::Either(a, b) => next.extend([a, b]),
                }
            }
            next.dedup();
            if next.is_empty() {
                return Err(format!(
                    "the model cannot run op {k} where the linearization puts it"
                ));
            }
            states = next;
        }
    }
    Ok(())
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

/// A model exactly as `M`, except that it pins nothing: every partition goes to the search.
struct Searched<M>(M);

impl<M: Model> Model for Searched<M> {
    type State = M::State;
    type Input = M::Input;
    type Output = M::Output;
    fn init(&self) -> M::State {
        self.0.init()
    }
    fn step(&self, s: &M::State, i: &M::Input, o: &Outcome<M::Output>) -> Next<M::State> {
        self.0.step(s, i, o)
    }
    fn partition_key(&self, input: &M::Input) -> Option<String> {
        self.0.partition_key(input)
    }
}

/// A quota operation whose output pins it (a record or admission reporting `used`, a read)
/// three times in four; `used` tracks a sequential run in invocation order, and one output
/// in `off_one_in` is off by one.
fn pinned_quota_op(rng: &mut Rng, used: &mut [u64; 2], off_one_in: u64) -> (QuotaOp, QuotaOutput) {
    let i = rng.below(2) as usize;
    let service = ["a", "b"][i].to_owned();
    let u = &mut used[i];
    let off = |rng: &mut Rng, v: u64| {
        if rng.below(off_one_in) == 0 {
            v.saturating_add(1).saturating_sub(2 * rng.below(2))
        } else {
            v
        }
    };
    match rng.below(8) {
        0..=2 => {
            let count = 1 + rng.below(2);
            *u += count;
            let after = off(rng, *u);
            (
                QuotaOp::Record { service, count },
                QuotaOutput::Recorded(Some(after)),
            )
        }
        3 | 4 => {
            let count = 1 + rng.below(2);
            let admitted = *u + count <= 4 || i == 1;
            if admitted {
                *u += count;
            }
            let used = Some(off(rng, *u));
            (
                QuotaOp::Admit { service, count },
                QuotaOutput::Admission { admitted, used },
            )
        }
        5 | 6 => {
            let used = off(rng, *u);
            (
                QuotaOp::Read { service },
                QuotaOutput::Usage {
                    used,
                    remaining: None,
                },
            )
        }
        _ => (
            QuotaOp::Record { service, count: 1 },
            QuotaOutput::Recorded(None),
        ),
    }
}

#[test]
fn pinned_quota_histories_agree_with_brute_force() {
    // Service a has a ceiling of 4 (limit 5); b has no known limit.
    let model = Quota::with_limits([("a", 5)]);
    agree(&model, "pinned quota", 6_000, |rng| {
        let mut used = [0; 2];
        history(rng, 7, |rng| pinned_quota_op(rng, &mut used, 5))
    });
}

#[test]
fn pinned_quota_histories_agree_with_the_search_at_scale() {
    let model = Quota::with_limits([("a", 5)]);
    let (mut yes, mut no) = (0, 0);
    for seed in 0..400 {
        let mut rng = Rng::new(seed);
        let mut used = [0; 2];
        // Longer than brute force can check: 40 operations over up to 3 processes, every
        // one pinned (or failed: inert), so that partitions take the pinned path.
        let h = history_of(&mut rng, 40, false, |rng| {
            let mut op = pinned_quota_op(rng, &mut used, 80);
            while op.1 == QuotaOutput::Recorded(None) {
                op = pinned_quota_op(rng, &mut used, 80);
            }
            op
        });
        let pinned = check(&model, &h, None);
        let searched = check(&Searched(model.clone()), &h, None);
        assert_eq!(pinned.verdict, searched.verdict, "seed {seed}\n{h:#?}");
        if pinned.verdict == Verdict::Linearizable {
            valid_linearization(&model, &h, &pinned).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(yes > 40 && no > 40, "{yes} yes / {no} no");
}

/// A register operation: a write of a value never written before (`next`), or a read of
/// one of the values written so far (or null), the latest one two times in three.
fn unique_register_op(rng: &mut Rng, next: &mut i64) -> (RegisterOp, Option<i64>) {
    if rng.below(2) == 0 {
        *next += 1;
        (RegisterOp::Write(*next), None)
    } else {
        let value = match rng.below(3) {
            0 => rng.below(*next as u64 + 1) as i64,
            _ => *next,
        };
        (RegisterOp::Read, (value > 0).then_some(value))
    }
}

#[test]
fn registers_of_distinct_writes_agree_with_brute_force() {
    agree(&Register, "register, distinct writes", 6_000, |rng| {
        let mut next = 0;
        history(rng, 7, |rng| unique_register_op(rng, &mut next))
    });
}

#[test]
fn registers_of_distinct_writes_agree_with_the_search_at_scale() {
    let (mut yes, mut no) = (0, 0);
    for seed in 0..400 {
        let mut rng = Rng::new(seed);
        let mut next = 0;
        // 40 operations over up to 3 processes, reads mostly of the latest write.
        let h = history(&mut rng, 40, |rng| {
            let (op, value) = unique_register_op(rng, &mut next);
            let value = if rng.below(8) == 0 {
                value
            } else {
                (next > 0).then_some(next)
            };
            (op, value)
        });
        let zoned = check(&Register, &h, None);
        let searched = check(&Searched(Register), &h, None);
        assert_eq!(zoned.verdict, searched.verdict, "seed {seed}\n{h:#?}");
        if zoned.verdict == Verdict::Linearizable {
            valid_linearization(&Register, &h, &zoned)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(yes > 40 && no > 40, "{yes} yes / {no} no");
}
