//! A read/write register, initially null.

use serde_json::Value;

use crate::history::Outcome;
use crate::jsonl::{Completion, JsonModel, int};
use crate::model::{Access, Model, Next};

/// A register of integers, initially null. A failed read constrains nothing; a failed
/// write had no effect.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

/// A register operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// Read the value (output: the value, `None` for null).
    Read,
    /// Write a value.
    Write(i64),
}

impl Model for Register {
    type State = Option<i64>;
    type Input = RegisterOp;
    type Output = Option<i64>;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(
        &self,
        state: &Option<i64>,
        input: &RegisterOp,
        outcome: &Outcome<Option<i64>>,
    ) -> Next<Option<i64>> {
        match (input, outcome) {
            (RegisterOp::Read, Outcome::Ok(value)) => Next::when(value == state, || *state),
            (RegisterOp::Read, _) | (RegisterOp::Write(_), Outcome::Fail) => Next::One(*state),
            (RegisterOp::Write(v), _) => Next::One(Some(*v)),
        }
    }

    fn access(&self, input: &RegisterOp, outcome: &Outcome<Option<i64>>) -> Option<Access> {
        match (input, outcome) {
            (RegisterOp::Read, Outcome::Ok(value)) => Some(Access::Read(*value)),
            (RegisterOp::Write(v), Outcome::Ok(_) | Outcome::Info) => Some(Access::Write(*v)),
            _ => None,
        }
    }

    fn is_inert(&self, input: &RegisterOp, outcome: &Outcome<Option<i64>>) -> bool {
        matches!(
            (input, outcome),
            (RegisterOp::Read, Outcome::Fail | Outcome::Info)
                | (RegisterOp::Write(_), Outcome::Fail)
        )
    }

    fn describe(&self, input: &RegisterOp, outcome: &Outcome<Option<i64>>) -> String {
        describe(input, outcome)
    }

    fn describe_state(&self, state: &Option<i64>) -> String {
        describe_value(state)
    }
}

fn describe(input: &RegisterOp, outcome: &Outcome<Option<i64>>) -> String {
    let shown = |v: &Option<i64>| v.map_or_else(|| "null".to_owned(), |v| v.to_string());
    match (input, outcome) {
        (RegisterOp::Read, Outcome::Ok(v)) => format!("read() -> {}", shown(v)),
        (RegisterOp::Read, Outcome::Fail) => "read() -> fail".to_owned(),
        (RegisterOp::Read, Outcome::Info) => "read() -> ?".to_owned(),
        (RegisterOp::Write(v), Outcome::Ok(_)) => format!("write({v})"),
        (RegisterOp::Write(v), Outcome::Fail) => format!("write({v}) -> fail"),
        (RegisterOp::Write(v), Outcome::Info) => format!("write({v}) -> ?"),
    }
}

/// A register's value as reports show it.
pub(crate) fn describe_value(state: &Option<i64>) -> String {
    state.map_or_else(|| "value=null".to_owned(), |v| format!("value={v}"))
}

/// A read's value: an integer or null.
pub(crate) fn read_value(value: &Value) -> Result<Option<i64>, String> {
    match value {
        Value::Null => Ok(None),
        other => int(other, "a read's value").map(Some),
    }
}

impl JsonModel for Register {
    fn encode(
        &self,
        input: &RegisterOp,
        outcome: &Outcome<Option<i64>>,
    ) -> (String, Option<String>, Value, Value) {
        match (input, outcome) {
            (RegisterOp::Read, Outcome::Ok(v)) => (
                "read".into(),
                None,
                Value::Null,
                v.map_or(Value::Null, Value::from),
            ),
            (RegisterOp::Read, _) => ("read".into(), None, Value::Null, Value::Null),
            (RegisterOp::Write(v), _) => ("write".into(), None, Value::from(*v), Value::from(*v)),
        }
    }

    fn parse(
        &self,
        f: &str,
        _key: Option<&str>,
        invoke: &Value,
        completion: Completion<'_>,
    ) -> Result<(RegisterOp, Outcome<Option<i64>>), String> {
        match f {
            "read" => {
                let outcome = match completion {
                    Completion::Ok(v) => Outcome::Ok(read_value(v)?),
                    Completion::Fail(_) => Outcome::Fail,
                    Completion::Info => Outcome::Info,
                };
                Ok((RegisterOp::Read, outcome))
            }
            "write" => {
                let v = int(invoke, "a write's value")?;
                Ok((RegisterOp::Write(v), outcome_without_value(completion)))
            }
            other => Err(format!(
                "register has no operation {other:?}: expected read or write"
            )),
        }
    }
}

/// The outcome of an operation whose result carries no value.
pub(crate) fn outcome_without_value<O: Default>(completion: Completion<'_>) -> Outcome<O> {
    match completion {
        Completion::Ok(_) => Outcome::Ok(O::default()),
        Completion::Fail(_) => Outcome::Fail,
        Completion::Info => Outcome::Info,
    }
}
