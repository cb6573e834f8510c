//! A DynamoDB store for the quota tracker.
//!
//! Items keep the original service's schema: `PK = "SYSTEM#QUOTA"`, `SK = "YYYY-MM-DD"` (UTC),
//! flat atomic counters `<service>_used` and `total_api_calls_today` grown with `UpdateItem …
//! ADD`, `updated_at`, `ttl_timestamp` (updated_at + 7 days) and `entity_type`. Each item also
//! stores `<service>_limit` (set once, `if_not_exists`), so an item created only by `ADD` no
//! longer reads back as "no quota left".
//!
//! Deltas, never snapshots, cross the network, and each is applied at most once: every write
//! sets `sync_seq_<instance>` to the batch's sequence number under the condition that the
//! stored one is lower. A retry of a write that already landed (a timeout after the server
//! applied it) fails that condition and is recognised as a duplicate instead of adding twice.
//!
//! In the bounded mode each service and window also has a lease item
//! (`SK = LEASE#<service>#<window>`, `granted`), granted only by a conditional write that
//! cannot pass the ceiling (see the `lease` module).
//!
//! With the `zoo` cargo feature, `zoo::StoreVariant` re-introduces the original's store-level
//! bugs (for the integration tests only).
//!
//! [`DynamoStore`] is async (the SDK is) and serves `quota_tracker::AsyncStore`, with
//! [`SyncTask`] for periodic syncs on the caller's runtime; [`BlockingDynamoStore`] wraps it
//! for the blocking [`quota_tracker::Store`] trait with a runtime of its own.
//!
//! Items are read strictly: a counter someone else stored as a string, or a negative or too
//! large number, is an [`ItemError`] naming it, never read as 0.
//!
//! ```
//! use std::collections::HashMap;
//! use aws_sdk_dynamodb::types::AttributeValue;
//! use quota_dynamodb::decode_day;
//! use quota_tracker::UtcDay;
//!
//! let day = UtcDay::from_ymd(2026, 12, 1).expect("a date");
//! let item = HashMap::from([("tiingo_used".to_owned(), AttributeValue::N("7".to_owned()))]);
//! assert_eq!(decode_day(day, &item)?.used("tiingo"), 7);
//! let mangled = HashMap::from([("tiingo_used".to_owned(), AttributeValue::S("7".to_owned()))]);
//! assert!(decode_day(day, &mangled).is_err());
//! # Ok::<(), quota_dynamodb::ItemError>(())
//! ```

mod client;
mod item;
mod lease;
mod qualify;
mod store;
mod task;
mod ticket_pruning;
#[cfg(feature = "zoo")]
pub mod zoo;

pub use client::{DynamoConfig, client_config, connect};
pub use item::{ItemError, decode_day, decode_window};
pub use qualify::{Findings, Qualification, Verdict, qualify, qualify_client};
pub use store::{BlockingDynamoStore, DynamoStore, RetryPolicy};
pub use task::{NoRuntime, SyncTask};
