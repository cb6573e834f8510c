//! The quota tracker's sequential specification, one service at a time.
//!
//! The state of a service is `used`, the calls counted against it. A service may have a
//! known limit; its ceiling is `ceil(limit * percent / 100)` for the model's ceiling percent
//! (80 by default, the critical threshold). Admissions and can-call answers are checked
//! against the ceiling, reads' `remaining` against the limit. For a service with no known
//! limit those answers are unchecked, but their effects on `used` still are.
//!
//! JSON events (`key` is the service):
//! - `record`: invoke value = the count (at least 1); ok value = `used` right after the call,
//!   or null if not observed. A failed record had no effect.
//! - `admit` (check and record in one step): invoke value = the count (at least 1); ok value
//!   = `{"admitted": true|false, "used": n}`, `used` right after the decision (absent or
//!   null if not observed), or a bare `true`/`false`. Correct iff admitted exactly when
//!   `used + count <= ceiling`; admitted adds the count, refused adds nothing. Other fields
//!   of the object are ignored. A failed admit had no effect.
//! - `refund` (give a reservation back): invoke value = the count (at least 1); ok value =
//!   `used` right after the call, or null. Refunding more than is used cannot happen. A
//!   failed refund had no effect.
//! - `read`: ok value = `[used, remaining]` or just `used`.
//! - `can-call`: ok value = true or false; correct iff `used < ceiling`.
//! - `sync`: no value, no effect on the counts.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::history::Outcome;
use crate::jsonl::{Completion, JsonModel, count};
use crate::model::{Model, Next, Pin};

/// Calls recorded per service, checked against what operations returned. Limits, when known
/// for a service, also check `remaining`, `can-call` and admissions.
#[derive(Debug, Clone)]
pub struct Quota {
    limits: BTreeMap<String, u64>,
    ceiling_percent: u8,
}

impl Default for Quota {
    /// The original service's limits: tiingo 500, finnhub 60, sendgrid 100; ceiling 80 %.
    fn default() -> Self {
        Self::with_limits([("tiingo", 500), ("finnhub", 60), ("sendgrid", 100)])
    }
}

impl Quota {
    /// The ceiling percent unless set: the critical threshold.
    pub const DEFAULT_CEILING_PERCENT: u8 = 80;

    /// A model with these per-service limits and the default ceiling percent.
    pub fn with_limits<'a>(limits: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        Self {
            limits: limits.into_iter().map(|(s, l)| (s.to_owned(), l)).collect(),
            ceiling_percent: Self::DEFAULT_CEILING_PERCENT,
        }
    }

    /// The same model with admissions and can-call checked against `percent` % of each
    /// limit. An error (and no model) unless `percent` is in 1..=100.
    pub fn with_ceiling_percent(self, percent: u8) -> Result<Self, String> {
        if !(1..=100).contains(&percent) {
            return Err(format!(
                "a quota ceiling percent must be in 1..=100, got {percent}"
            ));
        }
        Ok(Self {
            ceiling_percent: percent,
            ..self
        })
    }

    /// The ceiling percent admissions and can-call are checked against.
    pub fn ceiling_percent(&self) -> u8 {
        self.ceiling_percent
    }

    /// The services with a known limit.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.limits.keys().map(String::as_str)
    }

    /// The services `ops` name that have no limit here, in order, each once.
    pub fn unknown_services<'a>(&self, ops: impl IntoIterator<Item = &'a QuotaOp>) -> Vec<String> {
        let unknown: std::collections::BTreeSet<&str> = ops
            .into_iter()
            .filter_map(QuotaOp::service)
            .filter(|s| !self.limits.contains_key(*s))
            .collect();
        unknown.into_iter().map(str::to_owned).collect()
    }

    /// A service's ceiling, `ceil(limit * percent / 100)`, if its limit is known.
    pub fn ceiling(&self, service: &str) -> Option<u64> {
        let limit = *self.limits.get(service)?;
        let scaled = u128::from(limit) * u128::from(self.ceiling_percent);
        // Never above `limit` (percent <= 100), so it fits.
        Some(u64::try_from(scaled.div_ceil(100)).unwrap_or(limit))
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
    /// Admit `count` calls if they fit under the ceiling, recording them, in one step.
    Admit {
        /// The service.
        service: String,
        /// Calls asked for (at least 1).
        count: u64,
    },
    /// Give back `count` calls recorded before (a reservation not used).
    Refund {
        /// The service.
        service: String,
        /// Calls given back (at least 1).
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
    /// The service this operation is about (`None` for a sync of every service).
    pub fn service(&self) -> Option<&str> {
        match self {
            QuotaOp::Record { service, .. }
            | QuotaOp::Admit { service, .. }
            | QuotaOp::Refund { service, .. }
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
    /// An admission decision.
    Admission {
        /// Whether the calls were admitted (and recorded).
        admitted: bool,
        /// `used` right after the decision (changed only if admitted), if observed.
        used: Option<u64>,
    },
    /// A refund: `used` right after it, if observed.
    Refunded(Option<u64>),
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

/// An admit of `count` at `used`: admitted iff `used + count <= ceiling` (unchecked when the
/// ceiling is unknown, but an admission that would overflow is always refused).
fn admit(used: u64, count: u64, ceiling: Option<u64>, outcome: &Outcome<QuotaOutput>) -> Next<u64> {
    let after = used.checked_add(count);
    let may_admit = after.is_some_and(|a| ceiling.is_none_or(|c| a <= c));
    let may_refuse = ceiling.is_none() || !may_admit;
    match (outcome, after) {
        (Outcome::Fail, _) => Next::One(used),
        // Unknown: admitted (if it could be) or no effect; a refusal changes nothing either.
        (Outcome::Info, Some(a)) if may_admit => Next::Either(used, a),
        (Outcome::Info, _) => Next::One(used),
        (
            Outcome::Ok(QuotaOutput::Admission {
                admitted: true,
                used: reported,
            }),
            Some(a),
        ) => Next::when(may_admit && reported.is_none_or(|r| r == a), || a),
        (
            Outcome::Ok(QuotaOutput::Admission {
                admitted: false,
                used: reported,
            }),
            _,
        ) => Next::when(may_refuse && reported.is_none_or(|r| r == used), || used),
        // Admitted past u64::MAX, or an output of the wrong kind.
        (Outcome::Ok(_), _) => Next::Impossible,
    }
}

/// A refund of `count` at `used`: cannot give back more than is used.
/// Whether a read's `remaining` (if reported) is what `limit` (if known) leaves after `used`.
fn remaining_fits(remaining: Option<u64>, limit: Option<u64>, used: u64) -> bool {
    match (remaining, limit) {
        (Some(r), Some(l)) => r == l.saturating_sub(used),
        _ => true,
    }
}

fn refund(used: u64, count: u64, outcome: &Outcome<QuotaOutput>) -> Next<u64> {
    let after = used.checked_sub(count);
    match (outcome, after) {
        (Outcome::Fail, _) | (Outcome::Info, None) => Next::One(used),
        (Outcome::Info, Some(a)) => Next::Either(used, a),
        (Outcome::Ok(QuotaOutput::Refunded(reported)), Some(a)) => {
            Next::when(reported.is_none_or(|r| r == a), || a)
        }
        (Outcome::Ok(_), _) => Next::Impossible,
    }
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
        let service = input.service();
        let limit = service.and_then(|s| self.limits.get(s)).copied();
        let ceiling = service.and_then(|s| self.ceiling(s));
        match (input, outcome) {
            (QuotaOp::Admit { count, .. }, _) => admit(used, *count, ceiling, outcome),
            (QuotaOp::Refund { count, .. }, _) => refund(used, *count, outcome),
            (QuotaOp::Record { .. }, Outcome::Fail) => Next::One(used),
            (QuotaOp::Record { count, .. }, Outcome::Ok(QuotaOutput::Recorded(Some(after)))) => {
                Next::when(used.checked_add(*count) == Some(*after), || *after)
            }
            (QuotaOp::Record { count, .. }, _) => match used.checked_add(*count) {
                Some(after) => Next::One(after),
                None => Next::Impossible,
            },
            (QuotaOp::Read { .. }, Outcome::Ok(QuotaOutput::Usage { used: u, remaining })) => {
                Next::when(*u == used && remaining_fits(*remaining, limit, *u), || used)
            }
            (QuotaOp::CanCall { .. }, Outcome::Ok(QuotaOutput::CanCall(answer))) => {
                Next::when(ceiling.is_none_or(|c| *answer == (used < c)), || used)
            }
            // Reads, can-calls and syncs that failed or are unknown constrain nothing; a
            // sync never changes the counts; an output of the wrong kind cannot happen.
            (QuotaOp::Read { .. } | QuotaOp::CanCall { .. }, Outcome::Ok(_)) => Next::Impossible,
            _ => Next::One(used),
        }
    }

    fn is_inert(&self, input: &QuotaOp, outcome: &Outcome<QuotaOutput>) -> bool {
        match (input, outcome) {
            // A failed operation had no effect; a sync never changes the counts.
            (_, Outcome::Fail) | (QuotaOp::Sync { .. }, _) => true,
            (QuotaOp::Read { .. } | QuotaOp::CanCall { .. }, Outcome::Info) => true,
            _ => false,
        }
    }

    fn pin(&self, input: &QuotaOp, outcome: &Outcome<QuotaOutput>) -> Option<Pin> {
        let ceiling = input.service().and_then(|s| self.ceiling(s));
        let limit = input.service().and_then(|s| self.limits.get(s)).copied();
        let step = |count: u64, after: u64| match after.checked_sub(count) {
            Some(from) => Pin::At { from, to: after },
            None => Pin::Never,
        };
        let Outcome::Ok(output) = outcome else {
            return None;
        };
        Some(match (input, output) {
            (QuotaOp::Record { count, .. }, QuotaOutput::Recorded(Some(after))) => {
                step(*count, *after)
            }
            (
                QuotaOp::Admit { count, .. },
                QuotaOutput::Admission {
                    admitted: true,
                    used: Some(after),
                },
            ) if ceiling.is_none_or(|c| *after <= c) => step(*count, *after),
            (
                QuotaOp::Admit { .. },
                QuotaOutput::Admission {
                    admitted: true,
                    used: Some(_),
                },
            ) => Pin::Never,
            (
                QuotaOp::Admit { count, .. },
                QuotaOutput::Admission {
                    admitted: false,
                    used: Some(used),
                },
            ) => {
                let refusable =
                    ceiling.is_none_or(|c| used.checked_add(*count).is_none_or(|a| a > c));
                if refusable {
                    Pin::At {
                        from: *used,
                        to: *used,
                    }
                } else {
                    Pin::Never
                }
            }
            (QuotaOp::Read { .. }, QuotaOutput::Usage { used, remaining }) => {
                if remaining_fits(*remaining, limit, *used) {
                    Pin::At {
                        from: *used,
                        to: *used,
                    }
                } else {
                    Pin::Never
                }
            }
            // Refunds lower the count; can-call answers and unreported counts fit many
            // places: the search decides those.
            _ => return None,
        })
    }

    fn partition_key(&self, input: &QuotaOp) -> Option<String> {
        input.service().map(str::to_owned)
    }

    fn describe(&self, input: &QuotaOp, outcome: &Outcome<QuotaOutput>) -> String {
        let result = describe_outcome(outcome);
        match input {
            QuotaOp::Record { service, count } => format!("record({service}, {count}){result}"),
            QuotaOp::Admit { service, count } => format!("admit({service}, {count}){result}"),
            QuotaOp::Refund { service, count } => format!("refund({service}, {count}){result}"),
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

/// ` -> ...` for a report line, or nothing when nothing was observed.
fn describe_outcome(outcome: &Outcome<QuotaOutput>) -> String {
    match outcome {
        Outcome::Ok(QuotaOutput::Recorded(Some(after)) | QuotaOutput::Refunded(Some(after))) => {
            format!(" -> used={after}")
        }
        Outcome::Ok(QuotaOutput::Admission { admitted, used }) => {
            let decision = if *admitted { "admitted" } else { "refused" };
            match used {
                Some(u) => format!(" -> {decision}, used={u}"),
                None => format!(" -> {decision}"),
            }
        }
        Outcome::Ok(QuotaOutput::Usage {
            used,
            remaining: Some(r),
        }) => format!(" -> used={used}, remaining={r}"),
        Outcome::Ok(QuotaOutput::Usage { used, .. }) => format!(" -> used={used}"),
        Outcome::Ok(QuotaOutput::CanCall(b)) => format!(" -> {b}"),
        Outcome::Ok(_) => String::new(),
        Outcome::Fail => " -> fail".to_owned(),
        Outcome::Info => " -> ?".to_owned(),
    }
}

/// An ok completion's JSON value (what [`Quota::parse`] reads back).
fn encode_output(output: &QuotaOutput) -> Value {
    match output {
        QuotaOutput::Recorded(after) | QuotaOutput::Refunded(after) => {
            after.map_or(Value::Null, Value::from)
        }
        QuotaOutput::Admission {
            admitted,
            used: Some(u),
        } => serde_json::json!({"admitted": admitted, "used": u}),
        QuotaOutput::Admission {
            admitted,
            used: None,
        } => serde_json::json!({ "admitted": admitted }),
        QuotaOutput::Usage {
            used,
            remaining: Some(r),
        } => serde_json::json!([used, r]),
        QuotaOutput::Usage {
            used,
            remaining: None,
        } => Value::from(*used),
        QuotaOutput::CanCall(b) => Value::from(*b),
        QuotaOutput::Synced => Value::Null,
    }
}

/// An invocation's count, which must be at least 1; `what` is e.g. "a record's".
fn positive_count(invoke: &Value, what: &str) -> Result<u64, String> {
    match count(invoke, &format!("{what} count"))? {
        0 => Err(format!("{what} count must be at least 1, got 0")),
        n => Ok(n),
    }
}

fn recorded(v: &Value) -> Result<QuotaOutput, String> {
    match v {
        Value::Null => Ok(QuotaOutput::Recorded(None)),
        v => count(v, "a record's result (used after the call)")
            .map(|u| QuotaOutput::Recorded(Some(u))),
    }
}

fn refunded(v: &Value) -> Result<QuotaOutput, String> {
    match v {
        Value::Null => Ok(QuotaOutput::Refunded(None)),
        v => count(v, "a refund's result (used after the call)")
            .map(|u| QuotaOutput::Refunded(Some(u))),
    }
}

fn admission(v: &Value) -> Result<QuotaOutput, String> {
    let expected = || {
        format!(
            "an admit's result must be true, false or {{\"admitted\": true|false, \"used\": n}}, \
             got {v}"
        )
    };
    match v {
        Value::Bool(admitted) => Ok(QuotaOutput::Admission {
            admitted: *admitted,
            used: None,
        }),
        Value::Object(fields) => {
            let admitted = fields
                .get("admitted")
                .and_then(Value::as_bool)
                .ok_or_else(expected)?;
            let used = match fields.get("used") {
                None | Some(Value::Null) => None,
                Some(u) => Some(count(u, "an admit's \"used\" (used after the decision)")?),
            };
            Ok(QuotaOutput::Admission { admitted, used })
        }
        _ => Err(expected()),
    }
}

fn usage(v: &Value) -> Result<QuotaOutput, String> {
    match v {
        Value::Array(pair) if pair.len() == 2 => Ok(QuotaOutput::Usage {
            used: count(&pair[0], "a read's used")?,
            remaining: Some(count(&pair[1], "a read's remaining")?),
        }),
        v => {
            count(v, "a read's value ([used, remaining] or used)").map(|used| QuotaOutput::Usage {
                used,
                remaining: None,
            })
        }
    }
}

fn can_call_answer(v: &Value) -> Result<QuotaOutput, String> {
    v.as_bool()
        .map(QuotaOutput::CanCall)
        .ok_or_else(|| format!("a can-call's value must be true or false, got {v}"))
}

/// Reads an ok completion's value.
type ParseOutput = fn(&Value) -> Result<QuotaOutput, String>;

impl JsonModel for Quota {
    fn encode(
        &self,
        input: &QuotaOp,
        outcome: &Outcome<QuotaOutput>,
    ) -> (String, Option<String>, Value, Value) {
        let done = match outcome {
            Outcome::Ok(output) => encode_output(output),
            _ => Value::Null,
        };
        let (f, invoke) = match input {
            QuotaOp::Record { count, .. } => ("record", Value::from(*count)),
            QuotaOp::Admit { count, .. } => ("admit", Value::from(*count)),
            QuotaOp::Refund { count, .. } => ("refund", Value::from(*count)),
            QuotaOp::Read { .. } => ("read", Value::Null),
            QuotaOp::CanCall { .. } => ("can-call", Value::Null),
            QuotaOp::Sync { .. } => ("sync", Value::Null),
        };
        (
            f.to_owned(),
            input.service().map(str::to_owned),
            invoke,
            done,
        )
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
        let (op, ok): (QuotaOp, ParseOutput) = match f {
            "record" => {
                let count = positive_count(invoke, "a record's")?;
                let service = service()?;
                (QuotaOp::Record { service, count }, recorded)
            }
            "admit" => {
                let count = positive_count(invoke, "an admit's")?;
                let service = service()?;
                (QuotaOp::Admit { service, count }, admission)
            }
            "refund" => {
                let count = positive_count(invoke, "a refund's")?;
                let service = service()?;
                (QuotaOp::Refund { service, count }, refunded)
            }
            "read" => (
                QuotaOp::Read {
                    service: service()?,
                },
                usage,
            ),
            "can-call" => (
                QuotaOp::CanCall {
                    service: service()?,
                },
                can_call_answer,
            ),
            "sync" => (
                QuotaOp::Sync {
                    service: key.map(str::to_owned),
                },
                |_| Ok(QuotaOutput::Synced),
            ),
            other => {
                return Err(format!(
                    "quota has no operation {other:?}: expected record, admit, refund, read, \
                     can-call or sync"
                ));
            }
        };
        let outcome = match completion {
            Completion::Ok(v) => Outcome::Ok(ok(v)?),
            Completion::Fail(_) => Outcome::Fail,
            Completion::Info => Outcome::Info,
        };
        Ok((op, outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Operation, Verdict, check};

    type Op = Operation<QuotaOp, QuotaOutput>;

    /// A model whose service `s` has limit 60, so ceiling 48 at 80 %.
    fn model() -> Quota {
        Quota::with_limits([("s", 60)])
    }

    fn record(process: u64, call: u64, ret: u64, count: u64) -> Op {
        let input = QuotaOp::Record {
            service: "s".into(),
            count,
        };
        let output = Outcome::Ok(QuotaOutput::Recorded(Some(count)));
        Operation::new(process, call, Some(ret), input, output)
    }

    fn admit(process: u64, span: (u64, u64), count: u64, outcome: Outcome<QuotaOutput>) -> Op {
        let input = QuotaOp::Admit {
            service: "s".into(),
            count,
        };
        Operation::new(process, span.0, Some(span.1), input, outcome)
    }

    fn admitted(admitted: bool, used: u64) -> Outcome<QuotaOutput> {
        Outcome::Ok(QuotaOutput::Admission {
            admitted,
            used: Some(used),
        })
    }

    fn refund(process: u64, span: (u64, u64), count: u64, after: Option<u64>) -> Op {
        let input = QuotaOp::Refund {
            service: "s".into(),
            count,
        };
        let output = Outcome::Ok(QuotaOutput::Refunded(after));
        Operation::new(process, span.0, Some(span.1), input, output)
    }

    fn read(process: u64, span: (u64, u64), used: u64) -> Op {
        let input = QuotaOp::Read {
            service: "s".into(),
        };
        let output = Outcome::Ok(QuotaOutput::Usage {
            used,
            remaining: None,
        });
        Operation::new(process, span.0, Some(span.1), input, output)
    }

    fn verdict(model: &Quota, history: &[Op]) -> Verdict {
        let verdict = check(model, history, None).verdict;
        assert_eq!(
            verdict == Verdict::Linearizable,
            crate::brute::is_linearizable(model, history),
            "checker and brute force disagree on {history:#?}"
        );
        verdict
    }

    #[test]
    fn ceiling_rounds_up_and_follows_the_percent() {
        let m = Quota::with_limits([("a", 100), ("b", 7), ("c", 1), ("d", 0), ("e", u64::MAX)]);
        let ceilings: Vec<_> = ["a", "b", "c", "d", "e", "x"]
            .iter()
            .map(|s| m.ceiling(s))
            .collect();
        // (2^64 - 1) * 80 is a multiple of 100: no rounding, and no overflow in u128.
        let max = 14_757_395_258_967_641_292;
        assert_eq!(
            ceilings,
            [Some(80), Some(6), Some(1), Some(0), Some(max), None]
        );
        assert_eq!(m.ceiling_percent(), 80);
        let full = m.clone().with_ceiling_percent(100).unwrap();
        assert_eq!(full.ceiling("b"), Some(7));
        assert_eq!(full.ceiling("e"), Some(u64::MAX));
        assert_eq!(
            m.clone().with_ceiling_percent(1).unwrap().ceiling("a"),
            Some(1)
        );
        for bad in [0, 101, 255] {
            let err = m.clone().with_ceiling_percent(bad).unwrap_err();
            assert!(err.contains("must be in 1..=100"), "{err}");
        }
    }

    #[test]
    fn can_call_at_80_percent_is_the_old_rule() {
        // The rule before ceilings existed.
        let old =
            |used: u64, limit: u64| used < limit && u128::from(used) * 100 < u128::from(limit) * 80;
        let m = Quota::default();
        for limit in 1..=1000 {
            let ceiling = Quota::with_limits([("s", limit)]).ceiling("s").unwrap();
            for used in 0..=limit + 1 {
                assert_eq!(
                    used < ceiling,
                    old(used, limit),
                    "used {used}, limit {limit}"
                );
            }
        }
        // And the model answers by it: sendgrid's ceiling is 80.
        let ask = |used, answer| {
            let op = QuotaOp::CanCall {
                service: "sendgrid".into(),
            };
            m.step(&used, &op, &Outcome::Ok(QuotaOutput::CanCall(answer)))
        };
        assert_eq!(ask(79, true), Next::One(79));
        assert_eq!(ask(80, true), Next::Impossible);
        assert_eq!(ask(80, false), Next::One(80));
    }

    #[test]
    fn two_admits_past_the_ceiling_are_not_linearizable() {
        // At used=47 with ceiling 48, only one of two concurrent admits fits.
        let h = [
            record(0, 0, 1, 47),
            admit(0, (2, 5), 1, admitted(true, 48)),
            admit(1, (3, 4), 1, admitted(true, 49)),
        ];
        assert_eq!(verdict(&model(), &h), Verdict::NotLinearizable);
        // Unobserved `used` does not hide it.
        let blind = Outcome::Ok(QuotaOutput::Admission {
            admitted: true,
            used: None,
        });
        let h = [
            record(0, 0, 1, 47),
            admit(0, (2, 5), 1, blind.clone()),
            admit(1, (3, 4), 1, blind),
        ];
        assert_eq!(verdict(&model(), &h), Verdict::NotLinearizable);
    }

    #[test]
    fn one_admitted_one_refused_is_linearizable() {
        let h = [
            record(0, 0, 1, 47),
            admit(0, (2, 5), 1, admitted(false, 48)),
            admit(1, (3, 4), 1, admitted(true, 48)),
        ];
        assert_eq!(verdict(&model(), &h), Verdict::Linearizable);
        // But a refusal must report the usage it saw.
        let h = [
            record(0, 0, 1, 47),
            admit(0, (2, 5), 1, admitted(false, 49)),
            admit(1, (3, 4), 1, admitted(true, 48)),
        ];
        assert_eq!(verdict(&model(), &h), Verdict::NotLinearizable);
    }

    #[test]
    fn refused_with_room_left_is_not_linearizable() {
        let h = [
            record(0, 0, 1, 47),
            admit(0, (2, 3), 1, admitted(false, 47)),
        ];
        assert_eq!(verdict(&model(), &h), Verdict::NotLinearizable);
        // Two calls at 47 do not fit under 48: refusing is right.
        let h = [
            record(0, 0, 1, 47),
            admit(0, (2, 3), 2, admitted(false, 47)),
        ];
        assert_eq!(verdict(&model(), &h), Verdict::Linearizable);
        // A failed admit had no effect.
        let h = [
            record(0, 0, 1, 47),
            admit(0, (2, 3), 1, Outcome::Fail),
            read(0, (4, 5), 47),
        ];
        assert_eq!(verdict(&model(), &h), Verdict::Linearizable);
    }

    #[test]
    fn refunds_cannot_go_below_zero_and_report_what_is_left() {
        let h = [record(0, 0, 1, 2), refund(0, (2, 3), 3, None)];
        assert_eq!(verdict(&model(), &h), Verdict::NotLinearizable);
        let h = [record(0, 0, 1, 2), refund(0, (2, 3), 2, Some(1))];
        assert_eq!(verdict(&model(), &h), Verdict::NotLinearizable);
        let h = [
            record(0, 0, 1, 48),
            refund(0, (2, 3), 1, Some(47)),
            admit(0, (4, 5), 1, admitted(true, 48)),
        ];
        assert_eq!(verdict(&model(), &h), Verdict::Linearizable);
        // An unknown refund may or may not have happened; one too large cannot have.
        let info = |count| {
            let input = QuotaOp::Refund {
                service: "s".into(),
                count,
            };
            model().step(&2, &input, &Outcome::Info)
        };
        assert_eq!(info(1), Next::Either(2, 1));
        assert_eq!(info(3), Next::One(2));
    }

    #[test]
    fn an_unknown_admit_near_the_ceiling() {
        let unknown = |count| {
            let input = QuotaOp::Admit {
                service: "s".into(),
                count,
            };
            Operation::new(1, 2, None, input, Outcome::Info)
        };
        // It may have taken the last call: a later refusal at 48 is explained by it.
        let h = [
            record(0, 0, 1, 47),
            unknown(1),
            admit(0, (3, 4), 1, admitted(false, 48)),
        ];
        assert_eq!(verdict(&model(), &h), Verdict::Linearizable);
        // Or not: a later read of 47 is fine too, but not both.
        let h = [record(0, 0, 1, 47), unknown(1), read(0, (3, 4), 47)];
        assert_eq!(verdict(&model(), &h), Verdict::Linearizable);
        let h = [
            record(0, 0, 1, 47),
            unknown(1),
            admit(0, (3, 4), 1, admitted(false, 48)),
            read(0, (5, 6), 47),
        ];
        assert_eq!(verdict(&model(), &h), Verdict::NotLinearizable);
        // Two calls would not have fitted, so it cannot have recorded them.
        let h = [record(0, 0, 1, 47), unknown(2), read(0, (3, 4), 49)];
        assert_eq!(verdict(&model(), &h), Verdict::NotLinearizable);
        assert_eq!(
            model().step(&47, &unknown(1).input, &Outcome::Info),
            Next::Either(47, 48)
        );
        assert_eq!(
            model().step(&47, &unknown(2).input, &Outcome::Info),
            Next::One(47)
        );
    }

    #[test]
    fn admits_without_a_known_limit_are_unchecked_but_still_count() {
        let m = Quota::with_limits([]);
        let step = |used, count, outcome: Outcome<QuotaOutput>| {
            let input = QuotaOp::Admit {
                service: "s".into(),
                count,
            };
            m.step(&used, &input, &outcome)
        };
        assert_eq!(step(1000, 5, admitted(true, 1005)), Next::One(1005));
        assert_eq!(step(1000, 5, admitted(true, 1000)), Next::Impossible);
        assert_eq!(step(0, 5, admitted(false, 0)), Next::One(0));
        assert_eq!(step(0, 5, admitted(false, 5)), Next::Impossible);
        assert_eq!(step(3, 2, Outcome::Info), Next::Either(3, 5));
        // Past u64::MAX nothing can be admitted.
        assert_eq!(step(u64::MAX, 1, admitted(true, 0)), Next::Impossible);
        assert_eq!(step(u64::MAX, 1, Outcome::Info), Next::One(u64::MAX));
        assert_eq!(
            step(u64::MAX, 1, admitted(false, u64::MAX)),
            Next::One(u64::MAX)
        );
        // An output of another operation's kind cannot be an admit's.
        let wrong = Outcome::Ok(QuotaOutput::Recorded(Some(6)));
        assert_eq!(step(5, 1, wrong), Next::Impossible);
    }

    #[test]
    fn a_lower_ceiling_percent_refuses_sooner() {
        // Limit 60 at 50 %: ceiling 30.
        let m = model().with_ceiling_percent(50).unwrap();
        let h = [
            record(0, 0, 1, 30),
            admit(0, (2, 3), 1, admitted(false, 30)),
        ];
        assert_eq!(verdict(&m, &h), Verdict::Linearizable);
        assert_eq!(verdict(&model(), &h), Verdict::NotLinearizable);
    }

    #[test]
    fn admissions_and_refunds_read_well_in_reports() {
        let m = Quota::default();
        let admit = QuotaOp::Admit {
            service: "sendgrid".into(),
            count: 1,
        };
        let refund = QuotaOp::Refund {
            service: "sendgrid".into(),
            count: 1,
        };
        let cases = [
            (
                &admit,
                admitted(true, 48),
                "admit(sendgrid, 1) -> admitted, used=48",
            ),
            (
                &admit,
                admitted(false, 48),
                "admit(sendgrid, 1) -> refused, used=48",
            ),
            (
                &admit,
                Outcome::Ok(QuotaOutput::Admission {
                    admitted: false,
                    used: None,
                }),
                "admit(sendgrid, 1) -> refused",
            ),
            (&admit, Outcome::Info, "admit(sendgrid, 1) -> ?"),
            (
                &refund,
                Outcome::Ok(QuotaOutput::Refunded(Some(47))),
                "refund(sendgrid, 1) -> used=47",
            ),
            (&refund, Outcome::Fail, "refund(sendgrid, 1) -> fail"),
        ];
        for (input, outcome, expected) in cases {
            assert_eq!(m.describe(input, &outcome), expected);
        }
    }
}
