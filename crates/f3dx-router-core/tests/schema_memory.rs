//! The schema cache's byte estimate (`schema::COST_PER_NODE` and its
//! siblings) against what the cache really holds, measured with a counting
//! allocator: for every shape here, the estimate must be the larger. One
//! test in this binary, so no other thread allocates meanwhile.
//!
//! `cargo test -p f3dx-router-core --release --test schema_memory -- --nocapture`
//! prints the table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use f3dx_router_core::internals::schema::SchemaCache;
use serde_json::{json, Map, Value};

/// Counts the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        LIVE.fetch_add(size as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(ptr, layout, size)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// What the cache holds for `schema` after checking answers against it
/// (lazy parts, such as a regex's DFA cache, grow then), and its estimate.
fn held_and_estimate(schema: &Value, answers: &[Value]) -> Result<(i64, u64), String> {
    let body =
        json!({"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}});
    let cache = SchemaCache::default();
    let before = LIVE.load(Ordering::Relaxed);
    let expect = cache.expect(body.as_object().unwrap())?.expect("a schema");
    for answer in answers {
        expect.check(&answer.to_string());
    }
    drop(expect);
    let held = LIVE.load(Ordering::Relaxed) - before;
    Ok((held as i64, cache.bytes()))
}

fn object(pairs: impl Iterator<Item = (String, Value)>) -> Value {
    Value::Object(pairs.collect::<Map<String, Value>>())
}

fn shapes() -> Vec<(&'static str, Value, Vec<Value>)> {
    // 16k strings: 224 KB of JSON, near the largest schema accepted.
    let n = 16_000;
    let strings: Vec<Value> = (0..n).map(|i| json!(format!("value-{i:05}"))).collect();
    let numbers: Vec<Value> = (0..n).map(|i| json!(i)).collect();
    let some = |k: usize, f: &dyn Fn(usize) -> Value| (0..k).map(f).collect::<Vec<Value>>();
    let text = |s: &str| vec![json!(s), json!(s.repeat(300))];
    vec![
        (
            "enum of 16k strings",
            json!({"enum": strings}),
            vec![json!("value-00042")],
        ),
        (
            "enum of 16k numbers",
            json!({"enum": numbers}),
            vec![json!(42)],
        ),
        (
            "5k properties",
            object((0..5000).map(|i| (format!("p{i}"), json!({"type": "string"})))),
            vec![],
        ),
        (
            "2k properties, required",
            json!({"type": "object", "required": some(2000, &|i| json!(format!("p{i}"))),
                   "properties": object((0..2000).map(|i| (format!("p{i}"), json!({"type": "string", "maxLength": 10}))))}),
            vec![json!({"p1": "x"})],
        ),
        (
            "anyOf 3k const",
            json!({"anyOf": some(3000, &|i| json!({"const": i}))}),
            vec![json!(5)],
        ),
        (
            "oneOf 3k objects",
            json!({"oneOf": some(3000, &|i| json!({"properties": {format!("k{i}"): {"type": "integer"}}}))}),
            vec![json!({"k1": 1})],
        ),
        (
            "allOf 20k true",
            json!({"allOf": some(20_000, &|_| json!(true))}),
            vec![json!(1)],
        ),
        (
            "anyOf 10k {}",
            json!({"anyOf": some(10_000, &|_| json!({}))}),
            vec![json!(1)],
        ),
        (
            "anyOf 10k not {}",
            json!({"anyOf": some(10_000, &|_| json!({"not": {}}))}),
            vec![json!(1)],
        ),
        (
            "anyOf 10k minimum",
            json!({"anyOf": some(10_000, &|i| json!({"minimum": i}))}),
            vec![json!(1)],
        ),
        (
            "5k properties $ref #",
            object((0..5000).map(|i| (format!("{i}"), json!({"$ref": "#"})))),
            vec![],
        ),
        (
            "5k $refs to a 2k enum",
            json!({"$defs": {"big": {"enum": some(2000, &|i| json!(format!("v{i}")))}},
                   "anyOf": some(5000, &|_| json!({"$ref": "#/$defs/big"}))}),
            vec![json!("v7")],
        ),
        (
            "prefixItems 5k",
            json!({"prefixItems": some(5000, &|_| json!({"type": "integer"}))}),
            vec![json!([1, 2])],
        ),
        (
            "3k formats",
            json!({"allOf": some(3000, &|_| json!({"format": "email"}))}),
            text("a@b.c"),
        ),
        (
            "1k if/then/else",
            json!({"allOf": some(1000, &|i| json!({"if": {"const": i}, "then": {"minimum": i}, "else": {"maximum": i}}))}),
            vec![json!(3)],
        ),
        (
            "1k small patterns",
            json!({"allOf": some(1000, &|i| json!({"pattern": format!("^a{i}b+$")}))}),
            text("a1bb"),
        ),
        (
            "100 \\w{1,64} patterns",
            json!({"allOf": some(100, &|i| json!({"pattern": format!("^\\w{{1,64}}x{i}$")}))}),
            text("abcx1"),
        ),
        (
            "20 large patterns",
            json!({"allOf": some(20, &|i| json!({"pattern": format!("^(\\w{{10}}[a-f]{{5}}\\d{{5}}){{40}}{i}$")}))}),
            text("aB3_xY9-"),
        ),
        (
            "10 patterns near the limit",
            json!({"allOf": some(10, &|i| json!({"pattern": format!("^(\\w{{100}}){{90}}{i}$")}))}),
            text("aB3_xY9-"),
        ),
        (
            "10 Unicode near the limit",
            json!({"allOf": some(10, &|i| json!({"pattern": format!("(\\p{{L}}\\p{{N}}){{12}}x{i}")}))}),
            text("éa1ü2x"),
        ),
        (
            "20 Unicode patterns",
            json!({"allOf": some(20, &|i| json!({"pattern": format!("(\\p{{L}}\\p{{N}}){{4}}x{i}")}))}),
            text("éa1ü2x"),
        ),
        (
            "20 lookaround patterns",
            json!({"allOf": some(20, &|i| json!({"pattern": format!("^(?=.*[A-Z])(?=.*\\d)(?=\\w{{20}})(?!x{{30}}).{{8,64}}{i}$")}))}),
            text("aB3_xY9-aaaaaaaaaaaaaaaaaaaaaaaa"),
        ),
        (
            "500 patternProperties",
            json!({"patternProperties": object((0..500).map(|i| (format!("^x{i}_[a-z]+$"), json!({"type": "string"}))))}),
            vec![json!({"x1_ab": "c"})],
        ),
    ]
}

#[test]
fn the_estimate_stays_above_what_a_schema_holds() {
    // Warm up what is allocated once per process (regex tables).
    held_and_estimate(&json!({"pattern": "^(?=a)\\p{L}\\w+$"}), &[json!("ab")]).unwrap();
    let mut under = Vec::new();
    for (name, schema, answers) in shapes() {
        let (held, estimate) =
            held_and_estimate(&schema, &answers).unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = schema.to_string().len();
        println!(
            "{name:28} text {text:>7} B  held {held:>9} B ({:>5.1} per text byte)  estimate {estimate:>9} B ({:.2}x)",
            held as f64 / text as f64,
            estimate as f64 / held as f64
        );
        if (estimate as i64) < held {
            under.push(name);
        }
    }
    assert!(
        under.is_empty(),
        "the estimate is under what is held for {under:?}"
    );
}
