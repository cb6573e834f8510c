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

/// A stored item this store cannot read: an attribute (written by someone else, or by hand)
/// that is not the count this store writes there. Reading such an item fails with this
/// error rather than guess: the tracker keeps what it knew, and nothing recorded is lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "attribute {attribute} of item {item} holds {found}: expected a count of calls (a whole number from 0 to 18446744073709551615, stored as a number)"
)]
pub struct ItemError {
    /// The item's sort key.
    pub item: String,
    /// The attribute.
    pub attribute: String,
    /// What it holds, described.
    pub found: String,
}

/// The count in `value`, or what is wrong with it.
fn count(item: &str, attribute: &str, value: &AttributeValue) -> Result<u64, ItemError> {
    let wrong = |found: String| ItemError {
        item: item.to_owned(),
        attribute: attribute.to_owned(),
        found,
    };
    let text = match value {
        AttributeValue::N(text) => text,
        AttributeValue::S(text) => return Err(wrong(format!("the string {}", shown(text)))),
        AttributeValue::Bool(b) => return Err(wrong(format!("the boolean {b}"))),
        AttributeValue::Null(_) => return Err(wrong("null".to_owned())),
        other => return Err(wrong(format!("a value of another type ({})", kind(other)))),
    };
    text.trim().parse::<u64>().map_err(|_| {
        let why = match text.trim().parse::<f64>() {
            Ok(n) if n < 0.0 => "below 0",
            Ok(n) if n.is_finite() && n.fract() != 0.0 => "not a whole number",
            Ok(n) if n >= u64::MAX as f64 => "past the largest count",
            Ok(_) => "not written as a plain whole number",
            Err(_) => "not a number",
        };
        wrong(format!("the number {} ({why})", shown(text)))
    })
}

/// `text` quoted, cut short if long.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(40).collect();
    if cut.len() < text.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

fn kind(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::B(_) => "binary",
        AttributeValue::Bs(_) => "binary set",
        AttributeValue::L(_) => "list",
        AttributeValue::M(_) => "map",
        AttributeValue::Ns(_) => "number set",
        AttributeValue::Ss(_) => "string set",
        _ => "unknown",
    }
}

/// The count of `attribute` in `item` (0 when absent).
fn count_of(item: &HashMap<String, AttributeValue>, attribute: &str) -> Result<u64, ItemError> {
    item.get(attribute)
        .map_or(Ok(0), |value| count(&sort_key_of(item), attribute, value))
}

/// The item's sort key, for errors.
fn sort_key_of(item: &HashMap<String, AttributeValue>) -> String {
    item.get("SK")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_else(|| "(no SK)".to_owned())
}

/// A lease item's granted count (0 when missing).
pub(crate) fn granted(item: &HashMap<String, AttributeValue>) -> Result<u64, ItemError> {
    count_of(item, LEASE_GRANTED)
}

/// The attribute of a lease item that holds what one grant of `instance` got:
/// `grant_<instance>_<ticket>` (one per grant, so a repeat of the ticket is recognised,
/// until a later grant removes it under the instance's floor).
pub(crate) fn grant_attribute(instance: &str, ticket: u64) -> String {
    format!("grant_{instance}_{ticket}")
}

/// The attribute of a lease item that holds `instance`'s ticket floor: the highest of its
/// tickets whose `grant_` attribute was removed. No ticket at or under it is granted.
/// (`ticket_` starts no other attribute, whatever the instance is called.)
pub(crate) fn floor_attribute(instance: &str) -> String {
    format!("ticket_floor_{instance}")
}

/// The count `attribute` holds, if the item has it: what the grant it names got, or a
/// ticket floor.
pub(crate) fn optional_count(
    item: &HashMap<String, AttributeValue>,
    attribute: &str,
) -> Result<Option<u64>, ItemError> {
    item.get(attribute)
        .map(|value| count(&sort_key_of(item), attribute, value))
        .transpose()
}

/// The count of a window item (0 when the counter is missing).
pub fn decode_window(
    key: &WindowKey,
    item: &HashMap<String, AttributeValue>,
) -> Result<StoredWindow, ItemError> {
    Ok(StoredWindow {
        key: key.clone(),
        used: count_of(item, WINDOW_USED)?,
    })
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

/// The `<service>_used` counters and the total of a stored day item. Every other attribute
/// (limits, stamps, sequences) is left alone: the configuration, not the item, holds the
/// limits, so a missing or odd `<service>_limit` is no error.
pub fn decode_day(
    day: UtcDay,
    item: &HashMap<String, AttributeValue>,
) -> Result<StoredDay, ItemError> {
    let sort_key = sort_key_of(item);
    let mut used = BTreeMap::new();
    for (name, value) in item {
        if let Some(service) = name.strip_suffix("_used") {
            used.insert(service.to_owned(), count(&sort_key, name, value)?);
        }
    }
    let stored = StoredDay::new(day, used);
    Ok(match item.get(TOTAL) {
        Some(value) => stored.with_total(count(&sort_key, TOTAL, value)?),
        None => stored,
    })
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
        let stored = decode_day(day, &item).expect("readable");
        assert_eq!(stored.used("tiingo"), 7);
        assert_eq!(stored.used.len(), 1);
        assert_eq!(stored.total, Some(7));
    }

    #[test]
    fn items_someone_else_wrote_are_clear_errors_not_guesses() {
        let day = UtcDay::from_ymd(2026, 12, 1).expect("valid");
        let with = |attribute: &str, value: AttributeValue| {
            HashMap::from([
                (
                    "SK".to_owned(),
                    AttributeValue::S("DATE#2026-12-01".to_owned()),
                ),
                (attribute.to_owned(), value),
            ])
        };
        let n = |text: &str| AttributeValue::N(text.to_owned());
        for (value, says) in [
            (AttributeValue::S("12".to_owned()), "the string \"12\""),
            (n("-5"), "the number \"-5\" (below 0)"),
            (n("1.5"), "(not a whole number)"),
            (n("184467440737095516160"), "(past the largest count)"),
            (n("1e400"), "(past the largest count)"),
            (n("1e3"), "(not written as a plain whole number)"),
            (AttributeValue::Bool(true), "the boolean true"),
            (AttributeValue::L(vec![]), "another type (list)"),
        ] {
            let error = decode_day(day, &with("tiingo_used", value)).expect_err("unreadable");
            let text = error.to_string();
            assert!(
                text.contains("attribute tiingo_used of item DATE#2026-12-01"),
                "{text}"
            );
            assert!(text.contains(says), "{text}");
        }
        let error = decode_day(day, &with(TOTAL, n("x"))).expect_err("unreadable total");
        assert!(error.to_string().contains("(not a number)"), "{error}");
        // A limit is the configuration's: an odd one is left alone, and a missing counter is 0.
        let odd_limit = with("tiingo_limit", AttributeValue::S("lots".to_owned()));
        assert_eq!(decode_day(day, &odd_limit).map(|d| d.used("tiingo")), Ok(0));
        assert_eq!(
            decode_day(day, &with("tiingo_used", n(" 18446744073709551615 ")))
                .map(|d| d.used("tiingo")),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn a_day_item_expires_a_week_after_its_last_write() {
        let at = Timestamp(1_764_590_400_123); // 2025-12-01T12:00:00.123Z
        let [(updated, when), (ttl, expires), (entity, kind)] = stamps(at);
        assert_eq!(
            (updated, when.as_s().map(String::as_str)),
            (UPDATED_AT, Ok("2025-12-01T12:00:00.123Z"))
        );
        let expires: i64 = expires.as_n().expect("number").parse().expect("integer");
        assert_eq!((ttl, expires), (TTL, 1_764_590_400 + 7 * 24 * 3600));
        assert_eq!(
            (entity, kind.as_s().map(String::as_str)),
            (ENTITY_TYPE, Ok(ENTITY))
        );
    }

    #[test]
    fn every_unreadable_kind_is_named_and_long_text_cut_short() {
        let day = UtcDay::from_ymd(2026, 12, 1).expect("valid");
        let blob = || aws_sdk_dynamodb::primitives::Blob::new(vec![1u8]);
        let n = |text: &str| AttributeValue::N(text.to_owned());
        for (value, says) in [
            (AttributeValue::B(blob()), "(binary)"),
            (AttributeValue::Bs(vec![blob()]), "(binary set)"),
            (AttributeValue::M(HashMap::new()), "(map)"),
            (AttributeValue::Ns(vec!["1".to_owned()]), "(number set)"),
            (AttributeValue::Ss(vec!["1".to_owned()]), "(string set)"),
            // Zero written with a sign or a point is a zero, not a count below it.
            (n("-0"), "(not written as a plain whole number)"),
            (n("0.0"), "(not written as a plain whole number)"),
            (
                AttributeValue::S("x".repeat(41)),
                &format!("\"{}\"...", "x".repeat(40)),
            ),
            (
                AttributeValue::S("y".repeat(40)),
                &format!("\"{}\":", "y".repeat(40)),
            ),
        ] {
            let item = HashMap::from([("finnhub_used".to_owned(), value)]);
            let text = decode_day(day, &item).expect_err("unreadable").to_string();
            assert!(text.contains(says), "{text} does not say {says}");
        }
    }

    #[test]
    fn window_and_lease_counts_are_read_not_assumed() {
        let at = Timestamp(1_764_590_400_000);
        let key = WindowKey {
            service: "finnhub".to_owned(),
            window: Window::containing(quota_tracker::Period::Minute, at),
        };
        let item = |attribute: &str, n: &str| {
            HashMap::from([(attribute.to_owned(), AttributeValue::N(n.to_owned()))])
        };
        let window = |item| decode_window(&key, &item).map(|w| w.used);
        assert_eq!(window(item(WINDOW_USED, "17")), Ok(17));
        assert_eq!(window(HashMap::new()), Ok(0));
        assert_eq!(granted(&item(LEASE_GRANTED, "250")), Ok(250));
        assert_eq!(granted(&HashMap::new()), Ok(0));
        assert!(granted(&item(LEASE_GRANTED, "-1")).is_err());
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
