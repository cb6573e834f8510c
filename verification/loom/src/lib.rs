//! Exhaustive loom models of the quota tracker.
//!
//! The models run the real core (`quota_tracker::Tracker` and `SyncedTracker`, through the
//! `sync` facade, which is loom's mutex under `--cfg loom`). Only the store is an in-memory
//! fake (`MemoryStore` on the loom backend), because loom cannot run I/O.
//!
//! - `checker`: runs a model, counts executions, and tells a proof from a caught bug;
//! - `trace`: the per-execution event log that turns a failure into a readable interleaving;
//! - `fixture`: trackers, stores and the invariant checks the models share;
//! - `report`: one line per model, printed and appended as JSON for the gate.
//!
//! Build and run with `scripts/loom`; in a normal build this crate is empty.
#![cfg(loom)]

pub mod checker;
pub mod fixture;
pub mod report;
pub mod trace;

pub use checker::{Bound, Model, Reason, expect_caught, prove};
pub use report::Kind;
