//! Reading and writing JSON Lines histories; unusable input is explained by line.

use linearizability::jsonl::{parse, write};
use linearizability::models::{CasRegister, Kv, Quota};
use linearizability::{Verdict, check, generate};

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
            "quota has no operation \"frob\"",
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
