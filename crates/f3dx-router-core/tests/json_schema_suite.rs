//! The official JSON Schema Test Suite (draft 2020-12, the files of the
//! keywords the validator supports: tests/data/json-schema-test-suite/)
//! against the core's validator, through the schema cache as a request's
//! `response_format` would use it. Every case must give the suite's
//! verdict, except those in [`SKIPPED`], each with why; a skipped case
//! must not be judged wrongly either: it is not judged at all (`None`).

use std::path::Path;

use f3dx_router_core::internals::schema::SchemaCache;
use serde_json::{json, Value};

/// (file, case description, why it is skipped). A case skipped here is one
/// the validator declines to judge (`None`), never one it gets wrong.
const SKIPPED: &[(&str, &str, &str)] = &[
    (
        "not.json",
        "collect annotations inside a 'not', even if collection is disabled",
        "`unevaluatedProperties` is not supported",
    ),
    (
        "pattern.json",
        "pattern with Unicode property escape requires unicode mode",
        "regex-lite has no Unicode classes (`\\p{..}`)",
    ),
    (
        "patternProperties.json",
        "patternProperties with Unicode property escape",
        "regex-lite has no Unicode classes (`\\p{..}`)",
    ),
    (
        "ref.json",
        "remote ref, containing refs itself",
        "a remote `$ref` (the meta-schema) is never fetched",
    ),
    (
        "ref.json",
        "ref creates new scope when adjacent to keywords",
        "`unevaluatedProperties` is not supported",
    ),
];

fn suite_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/json-schema-test-suite/draft2020-12")
}

#[test]
fn the_official_suite_passes() {
    let mut files: Vec<_> = std::fs::read_dir(suite_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let (mut passed, mut skipped, mut wrong) = (0, 0, Vec::new());
    let mut unused_skips: Vec<_> = SKIPPED.iter().map(|s| (s.0, s.1)).collect();
    for path in files {
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let cases: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for case in cases.as_array().unwrap() {
            let description = case["description"].as_str().unwrap();
            let skip = SKIPPED.iter().find(|s| file == s.0 && description == s.1);
            unused_skips.retain(|s| !(s.0 == file && s.1 == description));
            let body = json!({"response_format": {"type": "json_schema",
                "json_schema": {"schema": case["schema"]}}});
            let expect = SchemaCache::default().expect(body.as_object().unwrap());
            for test in case["tests"].as_array().unwrap() {
                let valid = test["valid"].as_bool().unwrap();
                let got = match &expect {
                    Ok(Some(e)) => e.check(&test["data"].to_string()),
                    Ok(None) => None,
                    Err(e) => {
                        wrong.push(format!("{file}: {description}: not compiled: {e}"));
                        break;
                    }
                };
                match (skip, got) {
                    (Some(_), None) => skipped += 1,
                    (None, Some(got)) if got == valid => passed += 1,
                    (_, got) => wrong.push(format!(
                        "{file}: {description}: {}: got {got:?}, valid is {valid}",
                        test["description"].as_str().unwrap()
                    )),
                }
            }
        }
    }
    println!("{passed} passed, {skipped} skipped");
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        unused_skips.is_empty(),
        "skips that match no case: {unused_skips:?}"
    );
    assert!(passed > 900, "only {passed} cases ran");
}
