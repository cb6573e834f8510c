//! The quota tracker's sequential specification, one service at a time.
//!
//! JSON events (`key` is the service):
//! - `record`: invoke value = the count (at least 1); ok value = `used` right after the call,
//!   or null if not observed. A failed record had no effect.
//! - `read`: ok value = `[used, remaining]` or just `used`.
//! - `can-call`: ok value = true or false.
//! - `sync`: no value, no effect on the counts.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::history::Outcome;
use crate::jsonl::{Completion, JsonModel, count};
use crate::model::{Model, Next};

/// Calls recorded per service, checked against what operations returned. Limits, when known
/// for a service, also check `remaining` and `can-call`.
#[derive(Debug, Clone)]
pub struct Quota {
    limits: BTreeMap<String, u64>,
}

impl Default for Quota {
    /// The original service's limits: tiingo 500, finnhub 60, sendgrid 100.
    fn default() -> Self {
        Self::with_limits([("tiingo", 500), ("finnhub", 60), ("sendgrid", 100)])
    }
}

impl Quota {
    /// A model with these per-service limits.
    pub fn with_limits<'a>(limits: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        Self {
            limits: limits.into_iter().map(|(s, l)| (s.to_owned(), l)).collect(),
        }
    }
}

/// A quota operation on one service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuotaOp {
    /// Record `count` calls.
    Record {
        /// The service.
        service: String,
        /// Calls recorded.
        count: u64,
    },
    /// Read the usage.
    Read {
        /// The service.
        service: String,
    },
    /// Ask whether another call may be made.
    CanCall {
        /// The service.
        service: String,
    },
    /// Push pending deltas to the store (no effect on the counts).
    Sync {
        /// The service, if the sync is about one.
        service: Option<String>,
    },
}

impl QuotaOp {
    fn service(&self) -> Option<&str> {
        match self {
            QuotaOp::Record { service, .. }
            | QuotaOp::Read { service }
            | QuotaOp::CanCall { service } => Some(service),
            QuotaOp::Sync { service } => service.as_deref(),
        }
    }
}

/// What a quota operation returned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuotaOutput {
    /// A record: `used` right after it, if observed.
    Recorded(Option<u64>),
    /// A read.
    Usage {
        /// Calls used.
        used: u64,
        /// Calls remaining, if reported.
        remaining: Option<u64>,
    },
    /// A can-call answer.
    CanCall(bool),
    /// A sync completed.
    Synced,
}

fn can_call(used: u64, limit: u64) -> bool {
    used < limit && u128::from(used) * 100 < u128::from(limit) * 80
}

impl Model for Quota {
    type State = u64;
    type Input = QuotaOp;
    type Output = QuotaOutput;

    fn init(&self) -> u64 {
        0
    }

    fn step(&self, used: &u64, input: &QuotaOp, outcome: &Outcome<QuotaOutput>) -> Next<u64> {
        let used = *used;
        let limit = input.service().and_then(|s| self.limits.get(s)).copied();
        match (input, outcome) {
            (QuotaOp::Record { .. }, Outcome::Fail) => Next::One(used),
            (QuotaOp::Record { count, .. }, Outcome::Ok(QuotaOutput::Recorded(Some(after)))) => {
                Next::when(used.checked_add(*count) == Some(*after), || *after)
            }
            (QuotaOp::Record { count, .. }, _) => match used.checked_add(*count) {
                Some(after) => Next::One(after),
                None => Next::Impossible,
            },
            (QuotaOp::Read { .. }, Outcome::Ok(QuotaOutput::Usage { used: u, remaining })) => {
                let remaining_ok = match (remaining, limit) {
                    (Some(r), Some(l)) => *r == l.saturating_sub(*u),
                    _ => true,
                };
                Next::when(*u == used && remaining_ok, || used)
            }
            (QuotaOp::CanCall { .. }, Outcome::Ok(QuotaOutput::CanCall(answer))) => {
                Next::when(limit.is_none_or(|l| *answer == can_call(used, l)), || used)
            }
            // Reads, can-calls and syncs that failed or are unknown constrain nothing; a
            // sync never changes the counts; an output of the wrong kind cannot happen.
            (QuotaOp::Read { .. } | QuotaOp::CanCall { .. }, Outcome::Ok(_)) => Next::Impossible,
            _ => Next::One(used),
        }
    }

    fn partition_key(&self, input: &QuotaOp) -> Option<String> {
        input.service().map(str::to_owned)
    }

    fn describe(&self, input: &QuotaOp, outcome: &Outcome<QuotaOutput>) -> String {
        let result = match outcome {
            Outcome::Ok(QuotaOutput::Recorded(Some(after))) => format!(" -> used={after}"),
            Outcome::Ok(QuotaOutput::Usage {
                used,
                remaining: Some(r),
            }) => format!(" -> used={used}, remaining={r}"),
            Outcome::Ok(QuotaOutput::Usage { used, .. }) => format!(" -> used={used}"),
            Outcome::Ok(QuotaOutput::CanCall(b)) => format!(" -> {b}"),
            Outcome::Ok(_) => String::new(),
            Outcome::Fail => " -> fail".to_owned(),
            Outcome::Info => " -> ?".to_owned(),
        };
        match input {
            QuotaOp::Record { service, count } => format!("record({service}, {count}){result}"),
            QuotaOp::Read { service } => format!("read({service}){result}"),
            QuotaOp::CanCall { service } => format!("can_call({service}){result}"),
            QuotaOp::Sync { service: Some(s) } => format!("sync({s}){result}"),
            QuotaOp::Sync { service: None } => format!("sync(){result}"),
        }
    }

    fn describe_state(&self, used: &u64) -> String {
        format!("used={used}")
    }
}

impl JsonModel for Quota {
    fn encode(
        &self,
        input: &QuotaOp,
        outcome: &Outcome<QuotaOutput>,
    ) -> (String, Option<String>, Value, Value) {
        let done = match outcome {
            Outcome::Ok(QuotaOutput::Recorded(after)) => after.map_or(Value::Null, Value::from),
            Outcome::Ok(QuotaOutput::Usage {
                used,
                remaining: Some(r),
            }) => serde_json::json!([used, r]),
            Outcome::Ok(QuotaOutput::Usage {
                used,
                remaining: None,
            }) => Value::from(*used),
            Outcome::Ok(QuotaOutput::CanCall(b)) => Value::from(*b),
            _ => Value::Null,
        };
        match input {
            QuotaOp::Record { service, count } => (
                "record".into(),
                Some(service.clone()),
                Value::from(*count),
                done,
            ),
            QuotaOp::Read { service } => ("read".into(), Some(service.clone()), Value::Null, done),
            QuotaOp::CanCall { service } => {
                ("can-call".into(), Some(service.clone()), Value::Null, done)
            }
            QuotaOp::Sync { service } => ("sync".into(), service.clone(), Value::Null, Value::Null),
        }
    }

    fn parse(
        &self,
        f: &str,
        key: Option<&str>,
        invoke: &Value,
        completion: Completion<'_>,
    ) -> Result<(QuotaOp, Outcome<QuotaOutput>), String> {
        let service = || {
            key.map(str::to_owned)
                .ok_or_else(|| format!("quota operation {f:?} needs a \"key\" (the service)"))
        };
        let outcome = |ok: &dyn Fn(&Value) -> Result<QuotaOutput, String>| match completion {
            Completion::Ok(v) => ok(v).map(Outcome::Ok),
            Completion::Fail(_) => Ok(Outcome::Fail),
            Completion::Info => Ok(Outcome::Info),
        };
        match f {
            "record" => {
                let n = count(invoke, "a record's count")?;
                if n == 0 {
                    return Err("a record's count must be at least 1, got 0".to_owned());
                }
                let op = QuotaOp::Record {
                    service: service()?,
                    count: n,
                };
                let outcome = outcome(&|v| match v {
                    Value::Null => Ok(QuotaOutput::Recorded(None)),
                    v => count(v, "a record's result (used after the call)")
                        .map(|u| QuotaOutput::Recorded(Some(u))),
                })?;
                Ok((op, outcome))
            }
            "read" => {
                let op = QuotaOp::Read {
                    service: service()?,
                };
                let outcome = outcome(&|v| match v {
                    Value::Array(pair) if pair.len() == 2 => Ok(QuotaOutput::Usage {
                        used: count(&pair[0], "a read's used")?,
                        remaining: Some(count(&pair[1], "a read's remaining")?),
                    }),
                    v => count(v, "a read's value ([used, remaining] or used)").map(|used| {
                        QuotaOutput::Usage {
                            used,
                            remaining: None,
                        }
                    }),
                })?;
                Ok((op, outcome))
            }
            "can-call" => {
                let op = QuotaOp::CanCall {
                    service: service()?,
                };
                let outcome = outcome(&|v| {
                    v.as_bool()
                        .map(QuotaOutput::CanCall)
                        .ok_or_else(|| format!("a can-call's value must be true or false, got {v}"))
                })?;
                Ok((op, outcome))
            }
            "sync" => Ok((
                QuotaOp::Sync {
                    service: key.map(str::to_owned),
                },
                outcome(&|_| Ok(QuotaOutput::Synced))?,
            )),
            other => Err(format!(
                "quota has no operation {other:?}: expected record, read, can-call or sync"
            )),
        }
    }
}
