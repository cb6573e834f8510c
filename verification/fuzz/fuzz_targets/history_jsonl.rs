//! The JSON Lines reader of `check-history`, on any bytes: it must answer (a history or an
//! error naming the line), never panic; a history it accepts must read back the same after
//! being written out again; and a small one must be judged (within a time limit) without
//! a panic.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use linearizability::jsonl::{self, JsonModel};
use linearizability::models::{CasRegister, Kv, Quota, Register};
use linearizability::{Outcome, check};

fn read_back<M: JsonModel>(model: &M, text: &str)
where
    M::Input: PartialEq + std::fmt::Debug,
    M::Output: PartialEq + std::fmt::Debug,
{
    let Ok(parsed) = jsonl::parse(model, text) else {
        return;
    };
    let ops = &parsed.operations;
    let again = jsonl::parse(model, &jsonl::write(model, ops))
        .unwrap_or_else(|e| panic!("a history written out does not read back: {e}"));
    let shape = |ops: &[linearizability::Operation<M::Input, M::Output>]| {
        ops.iter()
            .map(|op| {
                (
                    op.process,
                    op.ret.is_some(),
                    matches!(op.outcome, Outcome::Info),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        shape(ops),
        shape(&again.operations),
        "processes and completions"
    );
    for (a, b) in ops.iter().zip(&again.operations) {
        assert_eq!(a.input, b.input);
        assert_eq!(a.outcome, b.outcome);
    }
    if ops.len() <= 12 {
        let _ = check(model, ops, Some(Duration::from_millis(50)));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    read_back(&Quota::default(), text);
    read_back(&Register, text);
    read_back(&CasRegister, text);
    read_back(&Kv, text);
});
