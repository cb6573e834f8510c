//! A linearizability checker.
//!
//! A history is a set of [`Operation`]s, each with a process, an invocation time, a return
//! time (none when the outcome is unknown) and a [`Model`]'s input and outcome. The checker
//! decides whether some order of the operations, consistent with real time, is a valid
//! sequential execution of the model:
//!
//! - [`model`]: the [`Model`] trait (initial state, step, partition key, descriptions);
//! - [`models`]: built-in models: `quota`, `register`, `cas-register`, `kv`;
//! - [`checker`]: the Wing–Gong search with Lowe's memoization on (linearized set, state),
//!   partitions checked independently and in parallel, a time limit that yields `Unknown`;
//! - [`brute`]: an independent brute-force checker, to test the real one against;
//! - [`jsonl`]: histories as Jepsen-style JSON Lines;
//! - [`report`]: text and self-contained HTML renderings of a result.
//!
//! ```
//! use linearizability::{check, models::Register, Operation, Outcome, Verdict};
//! use linearizability::models::RegisterOp;
//!
//! // p0 writes 1 over [0, 3]; p1 reads 1 over [1, 2]: linearizable (the write comes first).
//! let history = vec![
//!     Operation::new(0, 0, Some(3), RegisterOp::Write(1), Outcome::Ok(None)),
//!     Operation::new(1, 1, Some(2), RegisterOp::Read, Outcome::Ok(Some(1))),
//! ];
//! let result = check(&Register, &history, None);
//! assert_eq!(result.verdict, Verdict::Linearizable);
//! ```

pub mod brute;
pub mod checker;
pub mod generate;
pub mod history;
pub mod jsonl;
mod memo;
pub mod model;
pub mod models;
mod pinned;
pub mod report;
mod search;
mod zones;

pub use checker::{
    CheckOptions, CheckResult, DEFAULT_MAX_MEMORY, MemoryBudget, PartitionResult, Stopped, Verdict,
    check, check_with,
};
pub use history::{Operation, Outcome};
pub use model::{Access, Model, Next, Pin, Unpartitioned};
