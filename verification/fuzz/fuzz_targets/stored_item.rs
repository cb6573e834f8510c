//! Decoding a stored DynamoDB day or window item that someone else wrote: any attribute
//! names and values (counters as strings, negative, fractional or huge numbers, other
//! types). The decoder must answer, never panic, and answer exactly: a readable item when
//! every counter it reads is a count, the error naming a bad one otherwise, and the counts it
//! returns equal to what the item holds.

#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use libfuzzer_sys::fuzz_target;
use quota_dynamodb::{decode_day, decode_window};
use quota_tracker::{Period, Timestamp, UtcDay, Window, WindowKey};

#[derive(Arbitrary, Debug)]
enum Name {
    Used(u8),
    Limit(u8),
    Total,
    WindowUsed,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Number {
    Count(u64),
    Signed(i128),
    Float(f64),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Value {
    N(Number),
    S(String),
    Bool(bool),
    Null,
    L(Vec<bool>),
    B(Vec<u8>),
}

const SERVICES: [&str; 4] = ["tiingo", "finnhub", "sendgrid", "other"];

fn name(name: &Name) -> String {
    match name {
        Name::Used(i) => format!("{}_used", SERVICES[usize::from(*i) % SERVICES.len()]),
        Name::Limit(i) => format!("{}_limit", SERVICES[usize::from(*i) % SERVICES.len()]),
        Name::Total => "total_api_calls_today".to_owned(),
        Name::WindowUsed => "used".to_owned(),
        Name::Other(name) => name.clone(),
    }
}

fn value(value: &Value) -> AttributeValue {
    match value {
        Value::N(Number::Count(n)) => AttributeValue::N(n.to_string()),
        Value::N(Number::Signed(n)) => AttributeValue::N(n.to_string()),
        Value::N(Number::Float(n)) => AttributeValue::N(n.to_string()),
        Value::N(Number::Text(text)) => AttributeValue::N(text.clone()),
        Value::S(text) => AttributeValue::S(text.clone()),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Null => AttributeValue::Null(true),
        Value::L(items) => {
            AttributeValue::L(items.iter().map(|b| AttributeValue::Bool(*b)).collect())
        }
        Value::B(bytes) => AttributeValue::B(Blob::new(bytes.clone())),
    }
}

/// What the decoder must read for `attribute`: its count, or `None` for "unreadable".
fn expected(attribute: &AttributeValue) -> Option<u64> {
    attribute.as_n().ok()?.trim().parse().ok()
}

fuzz_target!(|input: Vec<(Name, Value)>| {
    let item: HashMap<String, AttributeValue> =
        input.iter().map(|(n, v)| (name(n), value(v))).collect();
    let day = UtcDay::from_ymd(2026, 12, 1).expect("valid");
    let counted =
        |attribute: &str| attribute.ends_with("_used") || attribute == "total_api_calls_today";
    let readable = item
        .iter()
        .filter(|(attribute, _)| counted(attribute))
        .all(|(_, v)| expected(v).is_some());
    match decode_day(day, &item) {
        Ok(stored) => {
            assert!(readable, "accepted an unreadable item: {item:?}");
            for (attribute, v) in &item {
                if let Some(service) = attribute.strip_suffix("_used") {
                    assert_eq!(Some(stored.used(service)), expected(v), "{attribute}");
                }
            }
            let total = item.get("total_api_calls_today").and_then(expected);
            assert_eq!(stored.total, total);
        }
        Err(error) => {
            assert!(!readable, "refused a readable item: {error}");
            let bad = &item[&error.attribute];
            assert!(
                counted(&error.attribute) && expected(bad).is_none(),
                "{error}"
            );
        }
    }
    let window = Window::containing(Period::Minute, Timestamp(day.start().0));
    let key = WindowKey {
        service: "finnhub".to_owned(),
        window,
    };
    let used = item.get("used");
    match decode_window(&key, &item) {
        Ok(stored) => assert_eq!(Some(stored.used), used.map_or(Some(0), expected)),
        Err(error) => assert!(used.is_some_and(|v| expected(v).is_none()), "{error}"),
    }
});
