//! The store-level historical variants: how the original service wrote to DynamoDB wrongly,
//! re-introduced on purpose so the integration tests can show they catch each one against a
//! real server. Built only with the `zoo` cargo feature.
//!
//! A variant is chosen per store ([`crate::DynamoStore::with_variant`]) and changes only
//! [`crate::DynamoStore::apply`]; loads are the fixed store's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use quota_tracker::{DayDeltas, StoreError, StoreErrorKind, StoredDay, SyncBatch, UtcDay};

use crate::item::{TOTAL, key, number, stamps};
use crate::store::DynamoStore;

pub use quota_tracker::store_variants::{ParseStoreVariantError, StoreVariant};

/// Each instance's local view of each day (`sync-overwrite`), as the original's cached
/// tracker held it: read from the store once, then grown by the instance's own calls only.
pub(crate) type Snapshots = Arc<Mutex<HashMap<(Arc<str>, UtcDay), Vec<u64>>>>;

impl DynamoStore {
    /// `sync-overwrite`: puts the instance's snapshot (first loaded from the item, then its
    /// own deltas added locally) over the whole item.
    pub(crate) async fn apply_overwrite(
        &self,
        batch: &SyncBatch,
    ) -> Result<Option<StoredDay>, StoreError> {
        let mut fresh = None;
        for day in &batch.days {
            let snapshot = self.snapshot_after(batch, day).await?;
            let mut item = self.full_item(day.day);
            for (name, used) in batch.config.names().zip(&snapshot) {
                item.insert(format!("{name}_used"), number(*used));
            }
            item.insert(TOTAL.to_owned(), number(snapshot.iter().sum::<u64>()));
            self.put(item).await?;
            fresh = Some(StoredDay::new(
                day.day,
                batch
                    .config
                    .names()
                    .map(str::to_owned)
                    .zip(snapshot)
                    .collect(),
            ));
        }
        Ok(fresh)
    }

    /// `overwrite-erases-counters`: the fixed `ADD`, then on every third batch a save of the
    /// whole tracker (the counters the `ADD` returned, as a nested map) with a full-item
    /// `PutItem`, which drops the flat counters.
    pub(crate) async fn apply_then_save_whole(
        &self,
        batch: &SyncBatch,
    ) -> Result<Option<StoredDay>, StoreError> {
        let fresh = self.apply_fixed(batch).await?;
        if let Some(stored) = fresh.as_ref().filter(|_| batch.seq.is_multiple_of(3)) {
            let mut item = self.full_item(stored.day);
            let data = stored
                .used
                .iter()
                .map(|(name, used)| (name.clone(), number(used)))
                .collect();
            item.insert("quota_data".to_owned(), AttributeValue::M(data));
            self.put(item).await?;
        }
        Ok(fresh)
    }

    /// The instance's snapshot of `day` with `deltas` added (loading it on first use).
    async fn snapshot_after(
        &self,
        batch: &SyncBatch,
        day: &DayDeltas,
    ) -> Result<Vec<u64>, StoreError> {
        let slot = (Arc::clone(&batch.instance), day.day);
        let cached = self
            .snapshots
            .lock()
            .map_or(None, |s| s.get(&slot).cloned());
        let mut snapshot = match cached {
            Some(snapshot) => snapshot,
            None => {
                let stored = self.load(day.day).await?;
                batch
                    .config
                    .names()
                    .map(|name| stored.as_ref().map_or(0, |s| s.used(name)))
                    .collect()
            }
        };
        for (used, delta) in snapshot.iter_mut().zip(&day.deltas) {
            *used = used.saturating_add_signed(*delta);
        }
        if let Ok(mut snapshots) = self.snapshots.lock() {
            snapshots.insert(slot, snapshot.clone());
        }
        Ok(snapshot)
    }

    /// Key, timestamps and entity type of a whole item, as the original's full put wrote.
    fn full_item(&self, day: UtcDay) -> HashMap<String, AttributeValue> {
        let stamps = stamps(self.clock.now()).map(|(name, value)| (name.to_owned(), value));
        key(day).into_iter().chain(stamps).collect()
    }

    async fn put(&self, item: HashMap<String, AttributeValue>) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                StoreError::new(
                    StoreErrorKind::OutcomeUnknown,
                    "apply",
                    format!(
                        "{}",
                        aws_smithy_types::error::display::DisplayErrorContext(&e)
                    ),
                )
            })
    }
}

/// How long `ack-before-write` holds a batch before writing it: longer than a sync period,
/// so some acknowledged batch is always unwritten.
const WRITE_BEHIND: std::time::Duration = std::time::Duration::from_secs(1);

impl DynamoStore {
    /// `ack-before-write`: acknowledges `batch` now and writes it later, on this runtime.
    pub(crate) fn apply_write_behind(
        &self,
        batch: &quota_tracker::SyncBatch,
    ) -> Result<Option<quota_tracker::StoredDay>, quota_tracker::StoreError> {
        let (store, batch) = (self.clone(), batch.clone());
        tokio::spawn(async move {
            tokio::time::sleep(WRITE_BEHIND).await;
            if let Err(error) = store.apply_fixed(&batch).await {
                tracing::warn!(%error, "write-behind batch failed after its acknowledgement");
            }
        });
        Ok(None)
    }
}
