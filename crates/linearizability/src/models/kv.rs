//! A key-value store of strings: get, put, append; a missing key reads as "".

use serde_json::Value;

use super::register::outcome_without_value;
use crate::history::Outcome;
use crate::jsonl::{Completion, JsonModel};
use crate::model::{Model, Next};

/// A string key-value store, checked one key at a time. A missing key reads as "".
#[derive(Debug, Clone, Copy, Default)]
pub struct Kv;

/// A key-value operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// Read a key (output: its value).
    Get(String),
    /// Set a key.
    Put(String, String),
    /// Append to a key's value.
    Append(String, String),
}

impl KvOp {
    fn key(&self) -> &str {
        match self {
            KvOp::Get(k) | KvOp::Put(k, _) | KvOp::Append(k, _) => k,
        }
    }
}

impl Model for Kv {
    type State = String;
    type Input = KvOp;
    type Output = String;

    fn init(&self) -> String {
        String::new()
    }

    fn step(&self, state: &String, input: &KvOp, outcome: &Outcome<String>) -> Next<String> {
        match (input, outcome) {
            (KvOp::Get(_), Outcome::Ok(value)) => Next::when(value == state, || state.clone()),
            (KvOp::Get(_), _) | (_, Outcome::Fail) => Next::One(state.clone()),
            (KvOp::Put(_, v), _) => Next::One(v.clone()),
            (KvOp::Append(_, v), _) => Next::One(format!("{state}{v}")),
        }
    }

    fn is_inert(&self, input: &KvOp, outcome: &Outcome<String>) -> bool {
        matches!(
            (input, outcome),
            (KvOp::Get(_), Outcome::Fail | Outcome::Info) | (_, Outcome::Fail)
        )
    }

    fn state_heap_bytes(&self, state: &String) -> usize {
        state.capacity()
    }

    fn partition_key(&self, input: &KvOp) -> Option<String> {
        Some(input.key().to_owned())
    }

    fn describe(&self, input: &KvOp, outcome: &Outcome<String>) -> String {
        let result = match (input, outcome) {
            (KvOp::Get(_), Outcome::Ok(v)) => format!(" -> {v:?}"),
            (_, Outcome::Ok(_)) => String::new(),
            (_, Outcome::Fail) => " -> fail".to_owned(),
            (_, Outcome::Info) => " -> ?".to_owned(),
        };
        match input {
            KvOp::Get(k) => format!("get({k:?}){result}"),
            KvOp::Put(k, v) => format!("put({k:?}, {v:?}){result}"),
            KvOp::Append(k, v) => format!("append({k:?}, {v:?}){result}"),
        }
    }

    fn describe_state(&self, state: &String) -> String {
        format!("value={state:?}")
    }
}

fn string(value: &Value, what: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("{what} must be a string, got {other}")),
    }
}

impl JsonModel for Kv {
    fn encode(
        &self,
        input: &KvOp,
        outcome: &Outcome<String>,
    ) -> (String, Option<String>, Value, Value) {
        match (input, outcome) {
            (KvOp::Get(k), Outcome::Ok(v)) => (
                "get".into(),
                Some(k.clone()),
                Value::Null,
                Value::from(v.clone()),
            ),
            (KvOp::Get(k), _) => ("get".into(), Some(k.clone()), Value::Null, Value::Null),
            (KvOp::Put(k, v), _) => (
                "put".into(),
                Some(k.clone()),
                Value::from(v.clone()),
                Value::from(v.clone()),
            ),
            (KvOp::Append(k, v), _) => (
                "append".into(),
                Some(k.clone()),
                Value::from(v.clone()),
                Value::from(v.clone()),
            ),
        }
    }

    fn parse(
        &self,
        f: &str,
        key: Option<&str>,
        invoke: &Value,
        completion: Completion<'_>,
    ) -> Result<(KvOp, Outcome<String>), String> {
        let key = key
            .ok_or_else(|| format!("kv operation {f:?} needs a \"key\""))?
            .to_owned();
        match f {
            "get" => {
                let outcome = match completion {
                    Completion::Ok(v) => Outcome::Ok(string(v, "a get's value")?),
                    Completion::Fail(_) => Outcome::Fail,
                    Completion::Info => Outcome::Info,
                };
                Ok((KvOp::Get(key), outcome))
            }
            "put" => Ok((
                KvOp::Put(key, string(invoke, "a put's value")?),
                outcome_without_value(completion),
            )),
            "append" => Ok((
                KvOp::Append(key, string(invoke, "an append's value")?),
                outcome_without_value(completion),
            )),
            other => Err(format!(
                "kv has no operation {other:?}: expected get, put or append"
            )),
        }
    }
}
