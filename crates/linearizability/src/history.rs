//! Operations of a concurrent history.

/// How an operation completed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome<O> {
    /// It happened, with this result.
    Ok(O),
    /// It completed with a failure; what that means is up to the model (a read: no
    /// constraint; a write: no effect; a compare-and-set: the comparison did not match).
    Fail,
    /// Unknown: it may have taken effect at any point after its invocation, or not at all.
    Info,
}

/// One operation: who, when, what, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The process (client) that ran it. A process runs one operation at a time.
    pub process: u64,
    /// When it was invoked, on a clock shared by all processes.
    pub call: u64,
    /// When it completed; `None` for an unknown outcome (it may take effect any time after
    /// `call`, or never).
    pub ret: Option<u64>,
    /// What was asked.
    pub input: I,
    /// How it ended.
    pub outcome: Outcome<O>,
}

impl<I, O> Operation<I, O> {
    /// An operation of `process` over `[call, ret]`.
    pub fn new(process: u64, call: u64, ret: Option<u64>, input: I, outcome: Outcome<O>) -> Self {
        // An operation whose outcome is unknown has no meaningful return time.
        let ret = match outcome {
            Outcome::Info => None,
            _ => ret,
        };
        Self {
            process,
            call,
            ret,
            input,
            outcome,
        }
    }

    /// Whether `self` completed before `other` was invoked (so it must be ordered first).
    pub fn precedes<I2, O2>(&self, other: &Operation<I2, O2>) -> bool {
        self.ret.is_some_and(|ret| ret < other.call)
    }
}
