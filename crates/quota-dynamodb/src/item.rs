//! The item schema: names, keys and the conversion of stored attributes.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use quota_tracker::{StoredDay, StoredWindow, Timestamp, UtcDay, Window, WindowKey};

/// The partition key of every quota item.
pub(crate) const PK: &str = "SYSTEM#QUOTA";
/// `entity_type` of quota items.
pub(crate) const ENTITY: &str = "QUOTA_TRACKER";
/// How long an item lives after its last update.
pub(crate) const TTL_SECONDS: i64 = 7 * 24 * 3600;
/// The total counter's attribute.
pub(crate) const TOTAL: &str = "total_api_calls_today";

/// Attributes every write stamps: last update, expiry, entity type.
pub(crate) const UPDATED_AT: &str = "updated_at";
pub(crate) const TTL: &str = "ttl_timestamp";
pub(crate) const ENTITY_TYPE: &str = "entity_type";

/// A number attribute.
pub(crate) fn number(n: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The values of [`UPDATED_AT`], [`TTL`] (updated_at + 7 days) and [`ENTITY_TYPE`] for a
/// write at `now`, in that order.
pub(crate) fn stamps(now: Timestamp) -> [(&'static str, AttributeValue); 3] {
    [
        (UPDATED_AT, AttributeValue::S(iso8601(now))),
        (TTL, number(now.unix_seconds() + TTL_SECONDS)),
        (ENTITY_TYPE, AttributeValue::S(ENTITY.to_owned())),
    ]
}

/// The item key of `day`.
pub(crate) fn key(day: UtcDay) -> [(String, AttributeValue); 2] {
    [
        ("PK".to_owned(), AttributeValue::S(PK.to_owned())),
        ("SK".to_owned(), AttributeValue::S(day.to_string())),
    ]
}

/// `entity_type` of window items.
pub(crate) const WINDOW_ENTITY: &str = "QUOTA_WINDOW";
/// A window item's counter.
pub(crate) const WINDOW_USED: &str = "used";

/// The sort key of `service`'s item for `window`: `WINDOW#finnhub#2026-12-01T12:34`. Day
/// items keep the original's `YYYY-MM-DD`, so the two never collide.
pub(crate) fn window_sort_key(service: &str, window: Window) -> String {
    format!("WINDOW#{service}#{window}")
}

/// The item key of `service`'s item for `window`.
pub(crate) fn window_key(service: &str, window: Window) -> [(String, AttributeValue); 2] {
    [
        ("PK".to_owned(), AttributeValue::S(PK.to_owned())),
        (
            "SK".to_owned(),
            AttributeValue::S(window_sort_key(service, window)),
        ),
    ]
}

/// A window item's stamps: last update, expiry a week after the window ends (not after the
/// first write: a month's item must outlive its month), entity type.
pub(crate) fn window_stamps(now: Timestamp, window: Window) -> [(&'static str, AttributeValue); 3] {
    [
        (UPDATED_AT, AttributeValue::S(iso8601(now))),
        (TTL, number(window.end().unix_seconds() + TTL_SECONDS)),
        (ENTITY_TYPE, AttributeValue::S(WINDOW_ENTITY.to_owned())),
    ]
}

/// `entity_type` of lease items.
pub(crate) const LEASE_ENTITY: &str = "QUOTA_LEASE";
/// A lease item's counter: calls granted for the window, minus calls given back.
pub(crate) const LEASE_GRANTED: &str = "granted";

/// The item key of `service`'s lease item for `window` (bounded mode):
/// `LEASE#finnhub#2026-12-01T12:34`.
pub(crate) fn lease_key(service: &str, window: Window) -> [(String, AttributeValue); 2] {
    [
        ("PK".to_owned(), AttributeValue::S(PK.to_owned())),
        (
            "SK".to_owned(),
            AttributeValue::S(format!("LEASE#{service}#{window}")),
        ),
    ]
}

/// A lease item's stamps: as a window item's, with the lease entity type.
pub(crate) fn lease_stamps(now: Timestamp, window: Window) -> [(&'static str, AttributeValue); 3] {
    let [updated, ttl, _] = window_stamps(now, window);
    [
        updated,
        ttl,
        (ENTITY_TYPE, AttributeValue::S(LEASE_ENTITY.to_owned())),
    ]
}

/// A lease item's granted count (0 when missing or not a count).
pub(crate) fn granted(item: &HashMap<String, AttributeValue>) -> u64 {
    item.get(LEASE_GRANTED)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
}

/// The count of a window item (0 when the counter is missing or not a count).
pub(crate) fn stored_window(
    key: &WindowKey,
    item: &HashMap<String, AttributeValue>,
) -> StoredWindow {
    let used = item
        .get(WINDOW_USED)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    StoredWindow {
        key: key.clone(),
        used,
    }
}

/// The attribute holding the last sequence applied for `instance` (names are sanitised to
/// the characters attribute names keep simple).
pub(crate) fn seq_attribute(instance: &str) -> String {
    let clean: String = instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("sync_seq_{clean}")
}

/// `<service>_used` counters of a stored item.
pub(crate) fn stored_day(day: UtcDay, item: &HashMap<String, AttributeValue>) -> StoredDay {
    let used: BTreeMap<String, u64> = item
        .iter()
        .filter_map(|(name, value)| {
            let service = name.strip_suffix("_used")?;
            let n = value.as_n().ok()?.parse::<u64>().ok()?;
            Some((service.to_owned(), n))
        })
        .collect();
    let stored = StoredDay::new(day, used);
    match item
        .get(TOTAL)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u64>().ok())
    {
        Some(total) => stored.with_total(total),
        None => stored,
    }
}

/// ISO-8601 UTC with milliseconds, as the original's `updated_at`.
pub(crate) fn iso8601(at: Timestamp) -> String {
    let day = at.day();
    let ms = at.0.rem_euclid(86_400_000);
    format!(
        "{day}T{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_names() {
        let day = UtcDay::from_ymd(2026, 11, 29).expect("valid");
        let at = Timestamp(day.start().0 + 13 * 3_600_000 + 5 * 60_000 + 7_042);
        assert_eq!(iso8601(at), "2026-11-29T13:05:07.042Z");
        assert_eq!(seq_attribute("pid12-ab.c"), "sync_seq_pid12-ab_c");
        let item = HashMap::from([
            ("tiingo_used".to_owned(), AttributeValue::N("7".to_owned())),
            (
                "tiingo_limit".to_owned(),
                AttributeValue::N("500".to_owned()),
            ),
            (TOTAL.to_owned(), AttributeValue::N("7".to_owned())),
        ]);
        assert_eq!(stored_day(day, &item).used("tiingo"), 7);
        assert_eq!(stored_day(day, &item).used.len(), 1);
        assert_eq!(stored_day(day, &item).total, Some(7));
    }

    #[test]
    fn window_items_have_their_own_keys_and_outlive_their_window() {
        let day = UtcDay::from_ymd(2026, 12, 1).expect("valid");
        let at = Timestamp(day.start().0 + 12 * 3_600_000 + 34 * 60_000 + 59_999);
        let minute = Window::containing(quota_tracker::Period::Minute, at);
        assert_eq!(
            window_sort_key("finnhub", minute),
            "WINDOW#finnhub#2026-12-01T12:34"
        );
        let month = Window::containing(quota_tracker::Period::Month, at);
        let [_, ttl, _] = window_stamps(at, month);
        let expires = Timestamp(
            ttl.1
                .as_n()
                .expect("number")
                .parse::<i64>()
                .expect("integer")
                * 1_000,
        );
        assert_eq!(expires.day(), UtcDay::from_ymd(2027, 1, 8).expect("valid"));
    }
}
