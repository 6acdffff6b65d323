//! The core's validator against the `jsonschema` crate (what it replaced)
//! on a typical structured-output schema: the same verdicts on a set of
//! answers (asserted), and the time to compile the schema and to check an
//! answer (printed, not asserted: timing on a shared machine is no test).
//!
//! `cargo test -p f3dx-router-core --release --test schema_speed -- --nocapture`

use std::hint::black_box;
use std::time::{Duration, Instant};

use f3dx_router_core::internals::schema::SchemaCache;
use serde_json::{json, Value};

/// An OpenAI-style structured-output schema: strict objects, enums, an
/// array of objects, a `$ref`, a nullable field, a pattern.
fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "priority": {"type": "string", "enum": ["low", "medium", "high", "urgent"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "due": {"type": ["string", "null"], "format": "date"},
            "assignee": {"$ref": "#/$defs/person"},
            "steps": {
                "type": "array",
                "maxItems": 50,
                "items": {
                    "type": "object",
                    "properties": {
                        "n": {"type": "integer", "minimum": 1},
                        "text": {"type": "string"},
                        "done": {"type": "boolean"}
                    },
                    "required": ["n", "text", "done"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["id", "title", "priority", "score", "due", "assignee", "steps"],
        "additionalProperties": false,
        "$defs": {
            "person": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                    "role": {"anyOf": [{"const": "owner"}, {"const": "member"}]}
                },
                "required": ["name", "email", "role"],
                "additionalProperties": false
            }
        }
    })
}

fn answers() -> Vec<String> {
    let step = |n: usize| json!({"n": n, "text": format!("do thing {n}"), "done": n % 2 == 0});
    let good = json!({
        "id": "ABC-1234", "title": "Fix the router", "priority": "high", "score": 0.75,
        "due": null, "assignee": {"name": "Ada", "email": "ada@example.com", "role": "owner"},
        "steps": (1..=10).map(step).collect::<Vec<_>>()
    });
    let mut out = vec![good.to_string()];
    for (key, bad) in [
        ("id", json!("abc-1234")),
        ("priority", json!("whenever")),
        ("score", json!(1.5)),
        (
            "assignee",
            json!({"name": "Ada", "email": "a@b.c", "role": "guest"}),
        ),
        ("steps", json!([{"n": 0, "text": "x", "done": true}])),
        ("extra", json!(1)),
    ] {
        let mut answer = good.clone();
        answer[key] = bad;
        out.push(answer.to_string());
    }
    out
}

/// The mean time of `f` over enough runs to take about `budget`.
fn time(budget: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < budget && runs < 1_000_000 {
        f();
        runs += 1;
    }
    start.elapsed() / runs.max(1)
}

#[test]
fn same_verdicts_as_jsonschema_and_the_times() {
    let schema = schema();
    let body =
        json!({"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}});
    let body = body.as_object().unwrap();
    let ours = SchemaCache::default().expect(body).unwrap().unwrap();
    let theirs = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .unwrap();
    let answers = answers();
    for answer in &answers {
        let value: Value = serde_json::from_str(answer).unwrap();
        assert_eq!(
            ours.check(answer),
            Some(theirs.is_valid(&value)),
            "{answer}"
        );
    }
    assert_eq!(ours.check(&answers[0]), Some(true));

    // Rounds in turn, the fastest of each kept: a loaded machine's noise
    // is mostly added time.
    let budget = Duration::from_millis(40);
    let mut best = [Duration::MAX; 5];
    for _ in 0..8 {
        let times = [
            time(budget, || {
                black_box(SchemaCache::default().expect(black_box(body)).unwrap());
            }),
            time(budget, || {
                black_box(jsonschema::validator_for(black_box(&schema)).unwrap());
            }),
            time(budget, || {
                black_box(ours.check(black_box(&answers[0])));
            }),
            time(budget, || {
                let value: Value = serde_json::from_str(black_box(&answers[0])).unwrap();
                black_box(theirs.is_valid(&value));
            }),
            time(budget, || {
                black_box(serde_json::from_str::<Value>(black_box(&answers[0])).unwrap());
            }),
        ];
        for (b, t) in best.iter_mut().zip(times) {
            *b = (*b).min(t);
        }
    }
    let [compile_ours, compile_theirs, check_ours, check_theirs, parse] = best;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "compile: ours {compile_ours:?}, jsonschema {compile_theirs:?} ({:.2}x)",
        ratio(compile_ours, compile_theirs)
    );
    println!(
        "check a {} B answer (parse included): ours {check_ours:?}, jsonschema {check_theirs:?} ({:.2}x)",
        answers[0].len(),
        ratio(check_ours, check_theirs)
    );
    println!(
        "of which parsing the answer: {parse:?}; checking alone: ours {:?}, jsonschema {:?} ({:.2}x)",
        check_ours.saturating_sub(parse),
        check_theirs.saturating_sub(parse),
        ratio(
            check_ours.saturating_sub(parse),
            check_theirs.saturating_sub(parse)
        )
    );
}
