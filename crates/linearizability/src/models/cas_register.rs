//! A register with compare-and-set, initially null (etcd's semantics for failures).

use serde_json::Value;

use super::register::{outcome_without_value, read_value};
use crate::history::Outcome;
use crate::jsonl::{Completion, JsonModel, int};
use crate::model::{Access, Model, Next};

/// A compare-and-set register of integers, initially null. A failed read constrains
/// nothing; a failed write had no effect; a failed compare-and-set saw a value other than
/// the one it expected (as etcd reports it).
#[derive(Debug, Clone, Copy, Default)]
pub struct CasRegister;

/// A compare-and-set register operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CasOp {
    /// Read the value.
    Read,
    /// Write a value.
    Write(i64),
    /// If the value is `.0`, set it to `.1`.
    Cas(i64, i64),
}

impl Model for CasRegister {
    type State = Option<i64>;
    type Input = CasOp;
    type Output = Option<i64>;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(
        &self,
        state: &Option<i64>,
        input: &CasOp,
        outcome: &Outcome<Option<i64>>,
    ) -> Next<Option<i64>> {
        match (input, outcome) {
            (CasOp::Read, Outcome::Ok(value)) => Next::when(value == state, || *state),
            (CasOp::Read, _) | (CasOp::Write(_), Outcome::Fail) => Next::One(*state),
            (CasOp::Write(v), _) => Next::One(Some(*v)),
            (CasOp::Cas(from, to), Outcome::Ok(_)) => {
                Next::when(*state == Some(*from), || Some(*to))
            }
            (CasOp::Cas(from, _), Outcome::Fail) => Next::when(*state != Some(*from), || *state),
            (CasOp::Cas(from, to), Outcome::Info) if *state == Some(*from) => {
                Next::Either(Some(*to), *state)
            }
            (CasOp::Cas(..), Outcome::Info) => Next::One(*state),
        }
    }

    fn access(&self, input: &CasOp, outcome: &Outcome<Option<i64>>) -> Option<Access> {
        match (input, outcome) {
            (CasOp::Read, Outcome::Ok(value)) => Some(Access::Read(*value)),
            (CasOp::Write(v), Outcome::Ok(_) | Outcome::Info) => Some(Access::Write(*v)),
            _ => None,
        }
    }

    fn is_inert(&self, input: &CasOp, outcome: &Outcome<Option<i64>>) -> bool {
        match (input, outcome) {
            (CasOp::Read, Outcome::Fail | Outcome::Info) | (CasOp::Write(_), Outcome::Fail) => true,
            // Setting a value to itself, or not: the same state either way.
            (CasOp::Cas(from, to), Outcome::Info) => from == to,
            _ => false,
        }
    }

    fn describe(&self, input: &CasOp, outcome: &Outcome<Option<i64>>) -> String {
        let result = match outcome {
            Outcome::Ok(Some(v)) if *input == CasOp::Read => format!(" -> {v}"),
            Outcome::Ok(None) if *input == CasOp::Read => " -> null".to_owned(),
            Outcome::Ok(_) => String::new(),
            Outcome::Fail => " -> fail".to_owned(),
            Outcome::Info => " -> ?".to_owned(),
        };
        match input {
            CasOp::Read => format!("read(){result}"),
            CasOp::Write(v) => format!("write({v}){result}"),
            CasOp::Cas(from, to) => format!("cas({from}, {to}){result}"),
        }
    }

    fn describe_state(&self, state: &Option<i64>) -> String {
        super::register::describe_value(state)
    }
}

impl JsonModel for CasRegister {
    fn encode(
        &self,
        input: &CasOp,
        outcome: &Outcome<Option<i64>>,
    ) -> (String, Option<String>, Value, Value) {
        match (input, outcome) {
            (CasOp::Read, Outcome::Ok(v)) => (
                "read".into(),
                None,
                Value::Null,
                v.map_or(Value::Null, Value::from),
            ),
            (CasOp::Read, _) => ("read".into(), None, Value::Null, Value::Null),
            (CasOp::Write(v), _) => ("write".into(), None, Value::from(*v), Value::from(*v)),
            (CasOp::Cas(a, b), _) => (
                "cas".into(),
                None,
                serde_json::json!([a, b]),
                serde_json::json!([a, b]),
            ),
        }
    }

    fn parse(
        &self,
        f: &str,
        _key: Option<&str>,
        invoke: &Value,
        completion: Completion<'_>,
    ) -> Result<(CasOp, Outcome<Option<i64>>), String> {
        match f {
            "read" => {
                let outcome = match completion {
                    Completion::Ok(v) => Outcome::Ok(read_value(v)?),
                    Completion::Fail(_) => Outcome::Fail,
                    Completion::Info => Outcome::Info,
                };
                Ok((CasOp::Read, outcome))
            }
            "write" => Ok((
                CasOp::Write(int(invoke, "a write's value")?),
                outcome_without_value(completion),
            )),
            "cas" => {
                let pair = invoke.as_array().filter(|a| a.len() == 2).ok_or_else(|| {
                    format!("a cas's value must be [expected, new], got {invoke}")
                })?;
                let from = int(&pair[0], "a cas's expected value")?;
                let to = int(&pair[1], "a cas's new value")?;
                Ok((CasOp::Cas(from, to), outcome_without_value(completion)))
            }
            other => Err(format!(
                "cas-register has no operation {other:?}: expected read, write or cas"
            )),
        }
    }
}
