//! Histories as JSON Lines with Jepsen's field names.
//!
//! One event per line, in real-time order:
//! `{"process": 3, "type": "invoke"|"ok"|"fail"|"info", "f": "cas", "key": "k1", "value": [1, 4]}`.
//! `key` is optional (partitioned models use it); other fields are ignored. A process invokes
//! its next operation only after the previous one completed; an invocation with no completion
//! by the end of the file counts as `info`. Event times are line numbers.

use std::fmt;

use serde_json::Value;

use crate::history::{Operation, Outcome};
use crate::model::Model;

/// How a completion event ended, with its value.
#[derive(Debug, Clone, Copy)]
pub enum Completion<'a> {
    /// `type: ok`.
    Ok(&'a Value),
    /// `type: fail`.
    Fail(&'a Value),
    /// `type: info`, or no completion at all.
    Info,
}

/// A model whose operations can be read from JSON events.
pub trait JsonModel: Model {
    /// The input and outcome of an operation from its invocation and completion.
    fn parse(
        &self,
        f: &str,
        key: Option<&str>,
        invoke: &Value,
        completion: Completion<'_>,
    ) -> Result<(Self::Input, Outcome<Self::Output>), String>;

    /// The events of an operation: `(f, key, invocation value, completion value)`, so that
    /// `parse` reads back what [`write()`] wrote.
    fn encode(
        &self,
        input: &Self::Input,
        outcome: &Outcome<Self::Output>,
    ) -> (String, Option<String>, Value, Value);
}

/// Writes `history` as JSON Lines: every invocation and completion, in time order
/// (invocations first at equal times; unknown outcomes get no completion line).
pub fn write<M: JsonModel>(model: &M, history: &[Operation<M::Input, M::Output>]) -> String {
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(history.len() * 2);
    for (i, op) in history.iter().enumerate() {
        events.push((op.call, 0, i));
        if let Some(ret) = op.ret {
            events.push((ret, 1, i));
        }
    }
    events.sort_unstable();
    let mut out = String::new();
    for (_, kind, i) in events {
        let op = &history[i];
        let (f, key, invoke, done) = model.encode(&op.input, &op.outcome);
        let (kind, value) = match (kind, &op.outcome) {
            (0, _) => ("invoke", invoke),
            (_, Outcome::Ok(_)) => ("ok", done),
            (_, Outcome::Fail) => ("fail", done),
            (_, Outcome::Info) => ("info", done),
        };
        let mut line =
            serde_json::json!({"process": op.process, "type": kind, "f": f, "value": value});
        if let Some(key) = key {
            line["key"] = Value::String(key);
        }
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// An unusable history: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct HistoryError {
    /// 1-based line number (0 when the problem is the file as a whole).
    pub line: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

/// A parsed history: the operations and the lines they came from.
#[derive(Debug, Clone)]
pub struct ParsedHistory<I, O> {
    /// The operations, in invocation order.
    pub operations: Vec<Operation<I, O>>,
    /// Per operation: (invocation line, completion line if any).
    pub lines: Vec<(usize, Option<usize>)>,
}

struct Event {
    line: usize,
    process: u64,
    kind: Kind,
    f: String,
    key: Option<String>,
    value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

fn event(line: usize, text: &str) -> Result<Option<Event>, HistoryError> {
    let err = |message: String| HistoryError { line, message };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(err("expected a JSON object per line".to_owned()));
    };
    let process = match fields.get("process") {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            err(format!(
                "\"process\" must be a non-negative integer, got {n}"
            ))
        })?,
        Some(other) => {
            return Err(err(format!(
                "\"process\" must be a non-negative integer, got {other}"
            )));
        }
        None => return Err(err("missing \"process\"".to_owned())),
    };
    let kind = match fields.get("type").and_then(Value::as_str) {
        Some("invoke") => Kind::Invoke,
        Some("ok") => Kind::Ok,
        Some("fail") => Kind::Fail,
        Some("info") => Kind::Info,
        Some(other) => {
            return Err(err(format!(
                "\"type\" must be one of invoke, ok, fail, info; got {other:?}"
            )));
        }
        None => {
            return Err(err(
                "missing \"type\" (one of invoke, ok, fail, info)".to_owned()
            ));
        }
    };
    let f = match fields.get("f") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(err(format!("\"f\" must be a string, got {other}"))),
        None => return Err(err("missing \"f\" (the operation's function)".to_owned())),
    };
    let key = match fields.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(err(format!(
                "\"key\" must be a string or a number, got {other}"
            )));
        }
    };
    let value = fields.get("value").cloned().unwrap_or(Value::Null);
    Ok(Some(Event {
        line,
        process,
        kind,
        f,
        key,
        value,
    }))
}

/// Parses a JSON Lines history for `model`.
pub fn parse<M: JsonModel>(
    model: &M,
    text: &str,
) -> Result<ParsedHistory<M::Input, M::Output>, HistoryError> {
    let mut pending: std::collections::HashMap<u64, (usize, Event)> = Default::default();
    // (call time, invocation, completion)
    let mut pairs: Vec<(Event, Option<Event>)> = Vec::new();
    for (i, text) in text.lines().enumerate() {
        let Some(event) = event(i + 1, text)? else {
            continue;
        };
        match event.kind {
            Kind::Invoke => {
                if let Some((_, open)) = pending.get(&event.process) {
                    return Err(HistoryError {
                        line: event.line,
                        message: format!(
                            "process {} invokes {:?} while its {:?} from line {} has not completed",
                            event.process, event.f, open.f, open.line
                        ),
                    });
                }
                let slot = pairs.len();
                pairs.push((
                    Event {
                        line: 0,
                        process: 0,
                        kind: Kind::Invoke,
                        f: String::new(),
                        key: None,
                        value: Value::Null,
                    },
                    None,
                ));
                pending.insert(event.process, (slot, event));
            }
            _ => {
                let Some((slot, invoke)) = pending.remove(&event.process) else {
                    return Err(HistoryError {
                        line: event.line,
                        message: format!(
                            "process {} completes {:?} without an invocation",
                            event.process, event.f
                        ),
                    });
                };
                if invoke.f != event.f {
                    return Err(HistoryError {
                        line: event.line,
                        message: format!(
                            "process {} completes {:?} but invoked {:?} on line {}",
                            event.process, event.f, invoke.f, invoke.line
                        ),
                    });
                }
                if let (Some(called), Some(completed)) = (&invoke.key, &event.key)
                    && called != completed
                {
                    return Err(HistoryError {
                        line: event.line,
                        message: format!(
                            "process {} completes {:?} on key {completed:?} but invoked it on \
                             {called:?} on line {}",
                            event.process, event.f, invoke.line
                        ),
                    });
                }
                pairs[slot] = (invoke, Some(event));
            }
        }
    }
    if pairs.is_empty() {
        return Err(HistoryError {
            line: text.lines().count().max(1),
            message: "no operations: expected at least one invocation (a history with none \
                      proves nothing)"
                .to_owned(),
        });
    }
    for (_, (slot, invoke)) in pending {
        pairs[slot] = (invoke, None);
    }
    let mut operations = Vec::with_capacity(pairs.len());
    let mut lines = Vec::with_capacity(pairs.len());
    for (invoke, done) in &pairs {
        let completion = match done {
            Some(e) if e.kind == Kind::Ok => Completion::Ok(&e.value),
            Some(e) if e.kind == Kind::Fail => Completion::Fail(&e.value),
            _ => Completion::Info,
        };
        let key = invoke
            .key
            .as_deref()
            .or(done.as_ref().and_then(|d| d.key.as_deref()));
        let (input, outcome) = model
            .parse(&invoke.f, key, &invoke.value, completion)
            .map_err(|message| HistoryError {
                line: done.as_ref().map_or(invoke.line, |d| d.line),
                message,
            })?;
        let ret = done
            .as_ref()
            .filter(|d| d.kind != Kind::Info)
            .map(|d| d.line as u64);
        operations.push(Operation::new(
            invoke.process,
            invoke.line as u64,
            ret,
            input,
            outcome,
        ));
        lines.push((invoke.line, done.as_ref().map(|d| d.line)));
    }
    Ok(ParsedHistory { operations, lines })
}

/// A value as an integer, or an error naming what it is.
pub(crate) fn int(value: &Value, what: &str) -> Result<i64, String> {
    value
        .as_i64()
        .ok_or_else(|| format!("{what} must be an integer, got {value}"))
}

/// A value as a non-negative integer, or an error naming what it is.
pub(crate) fn count(value: &Value, what: &str) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("{what} must be a non-negative integer, got {value}"))
}
