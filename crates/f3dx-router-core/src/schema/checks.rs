//! The validator's verdicts beyond the official suite
//! (tests/json_schema_suite.rs): what is not judged, and the bounds.

use serde_json::{json, Value};

use super::{Expect, SchemaCache};

fn expect(schema: Value) -> Result<Expect, String> {
    let body =
        json!({"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}});
    SchemaCache::default()
        .expect(body.as_object().unwrap())
        .map(|e| e.expect("a schema"))
}

#[test]
fn what_is_not_supported_is_never_judged() {
    let answers = [
        r#"{"a": 1}"#,
        r#"{"a": "x", "b": []}"#,
        "[]",
        "1",
        "\"x\"",
        "not JSON at all",
    ];
    for schema in [
        json!({"$ref": "https://example.com/s.json"}),
        json!({"properties": {"a": {"$ref": "other.json#/x"}}}),
        json!({"$ref": "#/$defs/missing"}),
        json!({"$ref": "#nowhere"}),
        json!({"$dynamicRef": "#meta"}),
        json!({"$recursiveRef": "#"}),
        json!({"unevaluatedProperties": false}),
        json!({"type": "array", "unevaluatedItems": false}),
        json!({"items": [{"type": "string"}]}),
        json!({"dependencies": {"a": ["b"]}}),
        // A relative reference to a document that is not this one.
        json!({"$id": "https://example.com/a/root.json", "$ref": "b.json"}),
        // regex-lite has no Unicode classes, look-around, backreferences.
        json!({"pattern": "\\p{L}"}),
        json!({"patternProperties": {"^(?=a)": true}}),
        json!({"pattern": "(a)\\1"}),
    ] {
        let e = expect(schema.clone()).unwrap_or_else(|e| panic!("{schema}: {e}"));
        for answer in answers {
            assert_eq!(e.check(answer), None, "{schema} {answer}");
        }
    }
}

#[test]
fn local_references_resolve() {
    let e = expect(json!({
        "$id": "https://example.com/root.json",
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/a"},
            "b": {"$ref": "#/definitions/b%25c"},
            "c": {"$ref": "#named"},
            "d": {"$ref": "https://example.com/root.json#/$defs/a"},
            "e": {"$ref": "#/properties/a"},
            "tree": {"$ref": "#"}
        },
        "$defs": {"a": {"type": "integer"}, "n": {"$anchor": "named", "type": "string"}},
        "definitions": {"b%c": {"const": null}}
    }))
    .unwrap();
    assert_eq!(
        e.check(r#"{"a": 1, "b": null, "c": "x", "d": 2, "e": 3, "tree": {"tree": {"a": 4}}}"#),
        Some(true)
    );
    for wrong in [
        r#"{"a": 1.5}"#,
        r#"{"b": 0}"#,
        r#"{"c": 1}"#,
        r#"{"d": "x"}"#,
        r#"{"e": []}"#,
        r#"{"tree": {"tree": {"a": "x"}}}"#,
        r#"{"tree": 5}"#,
    ] {
        assert_eq!(e.check(wrong), Some(false), "{wrong}");
    }
}

#[test]
fn embedded_resources_resolve_against_their_own_id() {
    let e = expect(json!({
        "$id": "https://example.com/root.json",
        "properties": {
            "a": {"$ref": "item.json"},
            "b": {"$ref": "https://example.com/nested/list.json"},
            "c": {"$ref": "item.json#kind"}
        },
        "$defs": {
            "item": {"$id": "item.json", "type": "integer",
                     "$defs": {"k": {"$anchor": "kind", "enum": ["x", "y"]}}},
            "list": {"$id": "nested/list.json", "type": "array",
                     "items": {"$ref": "../item.json"}}
        }
    }))
    .unwrap();
    assert_eq!(e.check(r#"{"a": 1, "b": [2, 3], "c": "x"}"#), Some(true));
    for wrong in [r#"{"a": "1"}"#, r#"{"b": [2, "3"]}"#, r#"{"c": "z"}"#] {
        assert_eq!(e.check(wrong), Some(false), "{wrong}");
    }
}

#[test]
fn a_cycle_that_consumes_nothing_is_not_judged_and_does_not_overflow() {
    for schema in [
        json!({"$ref": "#"}),
        json!({"allOf": [{"$ref": "#"}]}),
        json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"not": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"}),
    ] {
        let e = expect(schema.clone()).unwrap();
        assert_eq!(e.check("1"), None, "{schema}");
    }
    // A recursive schema that consumes the instance is judged.
    let tree = expect(json!({"type": "array", "items": {"$ref": "#"}})).unwrap();
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(tree.check(&deep), Some(true));
    assert_eq!(tree.check("[[1]]"), Some(false));
}

#[test]
fn shared_references_cannot_make_the_work_exponential() {
    // 40 levels, each an anyOf of the next twice, the last failing: 2^40
    // evaluations unbounded.
    let mut defs = serde_json::Map::new();
    for i in 0..40 {
        let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
        defs.insert(format!("d{i}"), json!({"anyOf": [next, next]}));
    }
    defs.insert("d40".into(), json!(false));
    let e = expect(json!({"$defs": defs, "$ref": "#/$defs/d0"})).unwrap();
    let start = std::time::Instant::now();
    assert_eq!(e.check("1"), None);
    assert!(start.elapsed().as_secs() < 30, "{:?}", start.elapsed());
}

#[test]
fn a_costly_regex_on_long_text_is_not_judged() {
    let e = expect(json!({"pattern": "^(\\w{100}){90}x$"})).unwrap();
    assert_eq!(e.check(&format!("\"{}\"", "a".repeat(100_000))), None);
    assert_eq!(e.check("\"ab\""), Some(false));
    let huge = json!({"patternProperties": {"(\\w{1000}){1000}": true}});
    let err = expect(huge).unwrap_err();
    assert!(err.contains("too large"), "{err}");
}

#[test]
fn keywords_of_structured_outputs() {
    let e = expect(json!({
        "type": "object",
        "properties": {
            "n": {"type": ["integer", "null"], "multipleOf": 3, "exclusiveMaximum": 100},
            "s": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 3},
            "list": {"type": "array", "prefixItems": [{"const": 1}], "items": {"type": "string"},
                     "uniqueItems": true, "contains": {"const": "x"}, "maxContains": 1},
            "one": {"oneOf": [{"minimum": 5}, {"maximum": 10}]},
            "cond": {"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"type": "number"}}
        },
        "patternProperties": {"^x-": {"type": "boolean"}},
        "additionalProperties": false,
        "propertyNames": {"maxLength": 8},
        "dependentRequired": {"s": ["n"]},
        "dependentSchemas": {"one": {"required": ["cond"]}}
    }))
    .unwrap();
    assert_eq!(
        e.check(
            r#"{"n": 9.0, "s": "éé", "x-a": true, "list": [1.0, "x", "y"], "one": 1, "cond": "ab"}"#
        ),
        Some(false),
        "pattern is ASCII [a-z]"
    );
    assert_eq!(
        e.check(r#"{"n": 9.0, "s": "abc", "x-a": true, "list": [1.0, "x", "y"], "one": 1, "cond": "ab"}"#),
        Some(true)
    );
    for wrong in [
        r#"{"n": 4}"#,
        r#"{"n": 102}"#,
        r#"{"n": 1.5}"#,
        r#"{"s": "abcd", "n": 3}"#,
        r#"{"s": "ab"}"#,
        r#"{"list": [1, "x", "x"]}"#,
        r#"{"list": [1, "y"]}"#,
        r#"{"list": [2, "x"]}"#,
        r#"{"list": [1, "x", "x", "z"]}"#,
        r#"{"one": 7, "cond": 1}"#,
        r#"{"cond": "a"}"#,
        r#"{"cond": null}"#,
        r#"{"x-a": 1}"#,
        r#"{"other": 1}"#,
        r#"{"one": 1}"#,
    ] {
        assert_eq!(e.check(wrong), Some(false), "{wrong}");
    }
}

#[test]
fn the_depth_bound_fits_a_small_stack() {
    // 512 KiB, a quarter of a tokio worker's stack, in an unoptimized
    // build: the deepest evaluation (the depth bound) and the deepest
    // answer the parser takes, through a recursive schema.
    let run = || {
        let cycle = expect(json!({"allOf": [{"$ref": "#"}]})).unwrap();
        assert_eq!(cycle.check("1"), None);
        let tree = expect(json!({"anyOf": [
            {"type": "array", "items": {"$ref": "#"}, "uniqueItems": true},
            {"type": "object", "additionalProperties": {"$ref": "#"}},
            {"const": 1}
        ]}))
        .unwrap();
        let deep = format!("{}1{}", r#"[{"a": "#.repeat(63), "}]".repeat(63));
        assert_eq!(tree.check(&deep), Some(true));
    };
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}
