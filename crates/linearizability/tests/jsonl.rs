//! Reading and writing JSON Lines histories; unusable input is explained by line.

use linearizability::jsonl::{parse, write};
use linearizability::models::{CasRegister, Kv, Quota, QuotaOp, QuotaOutput};
use linearizability::{Operation, Outcome, Verdict, check, generate};

#[test]
fn written_histories_read_back_to_the_same_verdict() {
    let history = generate::kv_history(3, 300, 5, 4, false);
    let text = write(&Kv, &history);
    let parsed = parse(&Kv, &text).expect("reads back");
    assert_eq!(parsed.operations.len(), history.len());
    assert_eq!(
        check(&Kv, &parsed.operations, None).verdict,
        Verdict::Linearizable
    );
    let bad = generate::kv_history(3, 300, 5, 4, true);
    let parsed = parse(&Kv, &write(&Kv, &bad)).expect("reads back");
    assert_eq!(
        check(&Kv, &parsed.operations, None).verdict,
        Verdict::NotLinearizable
    );
}

#[test]
fn etcd_style_cas_history_with_fail_and_info() {
    let text = r#"
{"process": 0, "type": "invoke", "f": "write", "value": 1}
{"process": 0, "type": "ok", "f": "write", "value": 1}
{"process": 1, "type": "invoke", "f": "cas", "value": [2, 3]}
{"process": 1, "type": "fail", "f": "cas", "value": [2, 3]}
{"process": 2, "type": "invoke", "f": "cas", "value": [1, 5]}
{"process": 0, "type": "invoke", "f": "read", "value": null}
{"process": 0, "type": "ok", "f": "read", "value": 5}
"#;
    // p2's cas never completed (info): it may have happened, and the read says it did.
    let parsed = parse(&CasRegister, text).expect("usable");
    assert_eq!(parsed.operations.len(), 4);
    assert_eq!(parsed.operations[2].ret, None);
    assert_eq!(
        check(&CasRegister, &parsed.operations, None).verdict,
        Verdict::Linearizable
    );
}

#[test]
fn unusable_input_names_the_line_and_what_was_expected() {
    let cases = [
        ("{\"process\": 0", "line 1: not valid JSON"),
        ("[1, 2]", "line 1: expected a JSON object per line"),
        (
            "{\"type\": \"invoke\", \"f\": \"read\"}",
            "line 1: missing \"process\"",
        ),
        (
            "{\"process\": -1, \"type\": \"invoke\", \"f\": \"read\"}",
            "\"process\" must be a non-negative integer",
        ),
        (
            "{\"process\": 0, \"type\": \"start\", \"f\": \"read\"}",
            "\"type\" must be one of invoke, ok, fail, info",
        ),
        (
            "{\"process\": 0, \"type\": \"ok\", \"f\": \"record\", \"key\": \"a\"}",
            "line 1: process 0 completes \"record\" without an invocation",
        ),
        (
            "{\"process\": 0, \"type\": \"invoke\", \"f\": \"read\", \"key\": \"a\"}\n{\"process\": 0, \"type\": \"invoke\", \"f\": \"read\", \"key\": \"a\"}",
            "line 2: process 0 invokes \"read\" while its \"read\" from line 1 has not completed",
        ),
        (
            "{\"process\": 0, \"type\": \"invoke\", \"f\": \"read\", \"key\": \"a\"}\n{\"process\": 0, \"type\": \"ok\", \"f\": \"record\", \"key\": \"a\"}",
            "line 2: process 0 completes \"record\" but invoked \"read\" on line 1",
        ),
        (
            "{\"process\": 0, \"type\": \"invoke\", \"f\": \"record\", \"key\": \"a\", \"value\": 0}",
            "line 1: a record's count must be at least 1",
        ),
        (
            "{\"process\": 0, \"type\": \"invoke\", \"f\": \"frob\", \"key\": \"a\"}",
            "quota has no operation \"frob\": expected record, admit, refund, read, can-call or sync",
        ),
        (
            "{\"process\": 0, \"type\": \"invoke\", \"f\": \"read\"}",
            "needs a \"key\" (the service)",
        ),
    ];
    for (text, expected) in cases {
        let err = parse(&Quota::default(), text).expect_err(text).to_string();
        assert!(
            err.contains(expected),
            "{text}\n  gave: {err}\n  expected: {expected}"
        );
    }
}

fn quota_op(
    process: u64,
    (call, ret): (u64, u64),
    input: QuotaOp,
    outcome: Outcome<QuotaOutput>,
) -> Operation<QuotaOp, QuotaOutput> {
    Operation::new(process, call, Some(ret), input, outcome)
}

#[test]
fn admits_and_refunds_read_back_as_written() {
    let admit = |count| QuotaOp::Admit {
        service: "sendgrid".into(),
        count,
    };
    let refund = |count| QuotaOp::Refund {
        service: "sendgrid".into(),
        count,
    };
    let admission = |admitted, used| Outcome::Ok(QuotaOutput::Admission { admitted, used });
    let history = vec![
        quota_op(0, (0, 1), admit(79), admission(true, Some(79))),
        quota_op(0, (2, 5), admit(1), admission(true, None)),
        quota_op(1, (3, 4), admit(1), admission(false, Some(80))),
        quota_op(
            1,
            (6, 7),
            refund(1),
            Outcome::Ok(QuotaOutput::Refunded(Some(79))),
        ),
        quota_op(
            0,
            (8, 9),
            refund(2),
            Outcome::Ok(QuotaOutput::Refunded(None)),
        ),
        quota_op(0, (10, 11), admit(3), Outcome::Fail),
        quota_op(0, (12, 13), refund(1), Outcome::Fail),
        quota_op(1, (14, 15), admit(1), Outcome::Info),
        quota_op(0, (16, 17), refund(1), Outcome::Info),
    ];
    let text = write(&Quota::default(), &history);
    assert!(
        text.contains(r#""value":{"admitted":false,"used":80}"#),
        "{text}"
    );
    let parsed = parse(&Quota::default(), &text).expect("reads back");
    let read: Vec<_> = parsed
        .operations
        .iter()
        .map(|op| (op.process, &op.input, &op.outcome))
        .collect();
    let wrote: Vec<_> = history
        .iter()
        .map(|op| (op.process, &op.input, &op.outcome))
        .collect();
    assert_eq!(read, wrote);
    assert_eq!(
        check(&Quota::default(), &parsed.operations, None).verdict,
        Verdict::Linearizable
    );
}

#[test]
fn an_admit_result_may_be_a_bare_decision_or_omit_used() {
    // Limit 60, ceiling 48: with 47 used, only one of the concurrent admits fits.
    let text = r#"
{"process": 0, "type": "invoke", "f": "record", "key": "finnhub", "value": 47}
{"process": 0, "type": "ok", "f": "record", "key": "finnhub", "value": 47}
{"process": 0, "type": "invoke", "f": "admit", "key": "finnhub", "value": 1}
{"process": 1, "type": "invoke", "f": "admit", "key": "finnhub", "value": 1}
{"process": 0, "type": "ok", "f": "admit", "key": "finnhub", "value": true}
{"process": 1, "type": "ok", "f": "admit", "key": "finnhub", "value": {"admitted": false, "used": null}}
{"process": 0, "type": "invoke", "f": "refund", "key": "finnhub", "value": 1}
{"process": 0, "type": "ok", "f": "refund", "key": "finnhub", "value": null}
{"process": 1, "type": "invoke", "f": "admit", "key": "finnhub", "value": 1}
{"process": 1, "type": "ok", "f": "admit", "key": "finnhub", "value": {"admitted": true}}
"#;
    let parsed = parse(&Quota::default(), text).expect("usable");
    let outcomes: Vec<_> = parsed.operations.iter().map(|op| &op.outcome).collect();
    let decision = |admitted| {
        Outcome::Ok(QuotaOutput::Admission {
            admitted,
            used: None,
        })
    };
    assert_eq!(outcomes[1], &decision(true));
    assert_eq!(outcomes[2], &decision(false));
    assert_eq!(outcomes[3], &Outcome::Ok(QuotaOutput::Refunded(None)));
    assert_eq!(outcomes[4], &decision(true));
    assert_eq!(
        check(&Quota::default(), &parsed.operations, None).verdict,
        Verdict::Linearizable
    );
    // Both admitted: one of them went past the ceiling.
    let both = text.replace(
        r#"{"admitted": false, "used": null}"#,
        r#"{"admitted": true, "used": null}"#,
    );
    let parsed = parse(&Quota::default(), &both).expect("usable");
    assert_eq!(
        check(&Quota::default(), &parsed.operations, None).verdict,
        Verdict::NotLinearizable
    );
}

#[test]
fn bad_admit_and_refund_values_say_what_was_expected() {
    let invoke = |f: &str, value: &str| {
        format!(r#"{{"process": 0, "type": "invoke", "f": "{f}", "key": "a", "value": {value}}}"#)
    };
    let done = |f: &str, value: &str| {
        format!(
            "{}\n{{\"process\": 0, \"type\": \"ok\", \"f\": \"{f}\", \"key\": \"a\", \"value\": {value}}}",
            invoke(f, "1")
        )
    };
    let admit_shape =
        r#"an admit's result must be true, false or {"admitted": true|false, "used": n}"#;
    let cases = [
        (invoke("admit", "0"), "line 1: an admit's count must be at least 1, got 0".to_owned()),
        (invoke("admit", "\"x\""), "line 1: an admit's count must be a non-negative integer, got \"x\"".to_owned()),
        (invoke("refund", "0"), "line 1: a refund's count must be at least 1, got 0".to_owned()),
        (invoke("refund", "-2"), "line 1: a refund's count must be a non-negative integer, got -2".to_owned()),
        (done("admit", "\"yes\""), format!("line 2: {admit_shape}, got \"yes\"")),
        (done("admit", "null"), format!("line 2: {admit_shape}, got null")),
        (done("admit", r#"{"used": 3}"#), format!(r#"line 2: {admit_shape}, got {{"used":3}}"#)),
        (
            done("admit", r#"{"admitted": true, "used": -1}"#),
            "line 2: an admit's \"used\" (used after the decision) must be a non-negative integer, got -1".to_owned(),
        ),
        (
            done("refund", "[1]"),
            "line 2: a refund's result (used after the call) must be a non-negative integer, got [1]".to_owned(),
        ),
    ];
    for (text, expected) in cases {
        let err = parse(&Quota::default(), &text)
            .expect_err(&text)
            .to_string();
        assert_eq!(err, expected, "{text}");
    }
}

#[test]
fn an_empty_history_and_a_completion_on_another_key_are_unusable() {
    for text in ["", "\n\n"] {
        let err = parse(&Quota::default(), text)
            .expect_err("empty")
            .to_string();
        assert!(err.contains("no operations"), "{err}");
    }
    let text = r#"{"process": 0, "type": "invoke", "f": "record", "key": "tiingo", "value": 1}
{"process": 0, "type": "ok", "f": "record", "key": "finnhub", "value": 1}"#;
    let err = parse(&Quota::default(), text)
        .expect_err("key mismatch")
        .to_string();
    assert!(err.contains("line 2"), "{err}");
    assert!(
        err.contains("on key \"finnhub\" but invoked it on \"tiingo\""),
        "{err}"
    );
}
