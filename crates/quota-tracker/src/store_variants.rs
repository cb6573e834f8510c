//! The catalogue of the store-level historical variants: their names, what each gets wrong
//! and which way it leaves the counts. Built only with the `zoo` cargo feature.
//!
//! What each variant does lives with the store that re-introduces it
//! (`quota_dynamodb::zoo`); the catalogue is here so that tools that only need the names
//! (the gate, reports) need not build the AWS SDK.

use std::fmt;
use std::str::FromStr;

/// A way of writing a batch: the fixed one or a historical bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreVariant {
    /// Deltas added with `ADD`, at most once per batch (the sequence condition).
    Fixed,
    /// The instance's whole local snapshot written with an unconditional `PutItem`: the last
    /// writer wins across instances.
    SyncOverwrite,
    /// Deltas added with `ADD`, but every third batch of an instance also saves the whole
    /// tracker with a full-item `PutItem` that has no flat `<service>_used` counters, so it
    /// erases what the `ADD`s wrote.
    OverwriteErasesCounters,
    /// Deltas added with `ADD` and no sequence condition: a retry after a timeout whose
    /// first attempt landed adds them again.
    RetryDoubleApply,
    /// A write-behind store: a batch is acknowledged at once and written a second later
    /// (the fixed write, on the store's runtime). Within one process every call lands in the
    /// end; a process killed in that second loses calls it saw acknowledged.
    AckBeforeWrite,
}

impl StoreVariant {
    /// Every variant, the fixed one first.
    pub const ALL: &'static [StoreVariant] = &[
        StoreVariant::Fixed,
        StoreVariant::SyncOverwrite,
        StoreVariant::OverwriteErasesCounters,
        StoreVariant::RetryDoubleApply,
        StoreVariant::AckBeforeWrite,
    ];

    /// The id used on the command line and in reports (as in `original-service.md`).
    pub fn id(self) -> &'static str {
        match self {
            StoreVariant::Fixed => "fixed",
            StoreVariant::SyncOverwrite => "sync-overwrite",
            StoreVariant::OverwriteErasesCounters => "overwrite-erases-counters",
            StoreVariant::RetryDoubleApply => "retry-double-apply",
            StoreVariant::AckBeforeWrite => "ack-before-write",
        }
    }

    /// One line on what the variant does.
    pub fn description(self) -> &'static str {
        match self {
            StoreVariant::Fixed => "ADD deltas, at most once per batch",
            StoreVariant::SyncOverwrite => "PutItem of the local snapshot: last writer wins",
            StoreVariant::OverwriteErasesCounters => {
                "a periodic full-item PutItem erases the ADDed counters"
            }
            StoreVariant::RetryDoubleApply => "ADD without the sequence condition: retries double",
            StoreVariant::AckBeforeWrite => {
                "acknowledged before it is written: a crash loses acknowledged calls"
            }
        }
    }

    /// Which way the variant leaves the counts wrong, as its checks must report it: `lost`
    /// (an overwrite erases other calls) or `doubled` (a retry applied twice).
    pub fn shows_as(self) -> Option<&'static str> {
        match self {
            StoreVariant::Fixed => None,
            StoreVariant::SyncOverwrite
            | StoreVariant::OverwriteErasesCounters
            | StoreVariant::AckBeforeWrite => Some("lost"),
            StoreVariant::RetryDoubleApply => Some("doubled"),
        }
    }

    /// Whether this is a historical bug (everything but [`StoreVariant::Fixed`]).
    pub fn is_buggy(self) -> bool {
        self != StoreVariant::Fixed
    }
}

impl fmt::Display for StoreVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A store variant id that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown store variant {input:?}: expected one of {}", StoreVariant::ALL.iter().map(|v| v.id()).collect::<Vec<_>>().join(", "))]
pub struct ParseStoreVariantError {
    input: String,
}

impl FromStr for StoreVariant {
    type Err = ParseStoreVariantError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreVariant::ALL
            .iter()
            .copied()
            .find(|v| v.id() == s)
            .ok_or_else(|| ParseStoreVariantError {
                input: s.to_owned(),
            })
    }
}
