//! What a request says its answer must be (`response_format`), and the check
//! of an answer against it.
//!
//! `{"type": "json_schema", "json_schema": {"schema": {...}}}`: the content
//! must parse as JSON and conform to the schema (JSON Schema 2020-12, as
//! OpenAI's structured outputs use it). `{"type": "json_object"}`: the
//! content must parse as a JSON object. Compiled schemas are cached, a
//! bounded number of them and of bytes (estimated: [`COST_PER_NODE`]), so a
//! schema sent with every call is compiled once; finding it costs a walk of
//! the schema (a hash, then an equality check), no allocation.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};

mod compile;
mod eval;
mod regex;
mod resources;
mod tree;

use regex::regex_cost;

pub use tree::Validator;

/// Most compiled schemas kept.
pub const CACHE_SIZE: usize = 256;
/// Most bytes the kept schemas may hold, by their estimate
/// ([`COST_PER_NODE`]); a schema reckoned larger is refused (it would take
/// that much to compile at each call).
pub const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// The estimate of the bytes a kept schema holds (its validator and its own
/// value): this much per value or object key in it, plus
/// [`COST_PER_BYTE`] per byte of its JSON text, plus the estimate of each
/// regular expression in it (at most [`COST_PER_REGEX`](regex::COST_PER_REGEX) each). Measured with a counting allocator over many shapes
/// (`tests/schema_memory.rs`: big enums, many properties, `$ref`s, `anyOf`s
/// of small schemas, `true` repeated), which checks that the estimate stays
/// above what the cache really holds: about 200 to 600 bytes per node were
/// measured, and 1 to 4 per byte of long strings.
pub const COST_PER_NODE: u64 = 512;
/// See [`COST_PER_NODE`].
pub const COST_PER_BYTE: u64 = 8;
/// Largest schema accepted, as JSON text: a schema is compiled and kept.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
/// Deepest nesting accepted in a schema: compiling recurses.
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// What a request's answer must be.
#[derive(Clone)]
pub enum Expect {
    /// A JSON object.
    JsonObject,
    /// A JSON document conforming to a schema.
    Schema(Arc<Validator>),
}

impl std::fmt::Debug for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::JsonObject => f.write_str("JsonObject"),
            Expect::Schema(_) => f.write_str("Schema(..)"),
        }
    }
}

impl Expect {
    /// Whether `content` (the answer's message text) is what was asked:
    /// `None` when it is JSON the validator cannot judge (nested deeper
    /// than the parser goes, or a number out of a double's range, or
    /// checking it would pass the evaluation's bounds), or the schema uses
    /// what the validator does not support (then for every answer), which
    /// says nothing of the provider either way.
    pub fn check(&self, content: &str) -> Option<bool> {
        if let Expect::Schema(v) = self {
            if !v.judges() {
                return None;
            }
        }
        let value = match serde_json::from_str::<Value>(content) {
            Ok(value) => value,
            // Not JSON fails; JSON the parser refused is not judged.
            Err(_) => return (!is_json(content)).then_some(false),
        };
        if !numbers_fit(&value) {
            return None;
        }
        match self {
            Expect::JsonObject => Some(value.is_object()),
            Expect::Schema(v) => v.check(&value),
        }
    }
}

/// Whether every number of `value` has a double's value (a build with
/// arbitrary-precision numbers parses `1e100000`; the checks compare
/// doubles). One pass, without recursion.
fn numbers_fit(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Number(n) if n.as_f64().is_none_or(|f| !f.is_finite()) => return false,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    true
}

/// Whether `text` is one JSON value by the grammar (RFC 8259), whatever its
/// depth and the size of its numbers: what the parser refuses for its own
/// limits. A scan with a stack of open containers, no recursion.
fn is_json(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    // Open containers: b'[' or b'{'.
    let mut open: Vec<u8> = Vec::new();
    let ws = |i: &mut usize| {
        while matches!(b.get(*i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            *i += 1;
        }
    };
    loop {
        // A value.
        ws(&mut i);
        match b.get(i) {
            Some(b'[') => {
                i += 1;
                ws(&mut i);
                if b.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    open.push(b'[');
                    continue;
                }
            }
            Some(b'{') => {
                i += 1;
                ws(&mut i);
                if b.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    open.push(b'{');
                    match json_key(b, &mut i) {
                        true => continue,
                        false => return false,
                    }
                }
            }
            Some(b'"') => {
                if !json_string(b, &mut i) {
                    return false;
                }
            }
            Some(b't') if b[i..].starts_with(b"true") => i += 4,
            Some(b'f') if b[i..].starts_with(b"false") => i += 5,
            Some(b'n') if b[i..].starts_with(b"null") => i += 4,
            Some(b'-' | b'0'..=b'9') => {
                if !json_number(b, &mut i) {
                    return false;
                }
            }
            _ => return false,
        }
        // After a value: close containers, or the next item.
        loop {
            ws(&mut i);
            match (open.last(), b.get(i)) {
                (None, None) => return true,
                (None, Some(_)) => return false,
                (Some(_), Some(b',')) => {
                    i += 1;
                    if open.last() == Some(&b'{') && !json_key(b, &mut i) {
                        return false;
                    }
                    break;
                }
                (Some(b'['), Some(b']')) | (Some(b'{'), Some(b'}')) => {
                    i += 1;
                    open.pop();
                }
                _ => return false,
            }
        }
    }
}

/// An object's key and its colon, from `*i` (white space first).
fn json_key(b: &[u8], i: &mut usize) -> bool {
    while matches!(b.get(*i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        *i += 1;
    }
    if b.get(*i) != Some(&b'"') || !json_string(b, i) {
        return false;
    }
    while matches!(b.get(*i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        *i += 1;
    }
    if b.get(*i) != Some(&b':') {
        return false;
    }
    *i += 1;
    true
}

/// A string from its opening quote at `*i`; `*i` ends after its closing one.
fn json_string(b: &[u8], i: &mut usize) -> bool {
    *i += 1;
    loop {
        match b.get(*i) {
            None | Some(0..=0x1f) => return false,
            Some(b'"') => {
                *i += 1;
                return true;
            }
            Some(b'\\') => match b.get(*i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => *i += 2,
                Some(b'u') => {
                    let hex = b.get(*i + 2..*i + 6);
                    if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                        return false;
                    }
                    *i += 6;
                }
                _ => return false,
            },
            Some(_) => *i += 1,
        }
    }
}

/// A number from `*i`: `-`? int frac? exp?.
fn json_number(b: &[u8], i: &mut usize) -> bool {
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if b.get(*i) == Some(&b'-') {
        *i += 1;
    }
    match b.get(*i) {
        Some(b'0') => *i += 1,
        Some(b'1'..=b'9') => {
            digits(i);
        }
        _ => return false,
    }
    if b.get(*i) == Some(&b'.') {
        *i += 1;
        if !digits(i) {
            return false;
        }
    }
    if matches!(b.get(*i), Some(b'e' | b'E')) {
        *i += 1;
        if matches!(b.get(*i), Some(b'+' | b'-')) {
            *i += 1;
        }
        if !digits(i) {
            return false;
        }
    }
    true
}

/// The `response_format` types a request may give: an unknown one (a typo,
/// a format of another API) would otherwise be forwarded and its answer go
/// unchecked.
pub const FORMAT_TYPES: [&str; 3] = ["text", "json_object", "json_schema"];

/// A request's `response_format`: its type (one of [`FORMAT_TYPES`]) and
/// the whole object.
pub type Format<'a> = (&'static str, &'a Map<String, Value>);

/// `body`'s `response_format`, if it has one. An error message for the
/// caller when it is no object or its type is missing or unknown; the
/// message never repeats the value.
pub fn response_format(body: &Map<String, Value>) -> Result<Option<Format<'_>>, String> {
    let format = match body.get("response_format") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => return Err("`response_format` must be an object".to_owned()),
    };
    match format.get("type").and_then(Value::as_str) {
        Some(kind) => match FORMAT_TYPES.iter().find(|&&t| t == kind) {
            Some(kind) => Ok(Some((kind, format))),
            None => Err(
                "`response_format.type` must be \"text\", \"json_object\" or \"json_schema\""
                    .to_owned(),
            ),
        },
        None => Err(
            "`response_format.type` is required: \"text\", \"json_object\" or \"json_schema\""
                .to_owned(),
        ),
    }
}

/// Compiled schemas by their hash (then compared whole), oldest dropped
/// first.
#[derive(Debug, Default)]
pub struct SchemaCache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<u64, Vec<Entry>>,
    /// Insertion order, for eviction.
    order: VecDeque<(u64, Arc<Value>)>,
    /// The estimated bytes of every entry.
    bytes: u64,
}

/// A compiled schema and its source.
struct Entry {
    schema: Arc<Value>,
    validator: Arc<Validator>,
    cost: u64,
}

impl std::fmt::Debug for CacheInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} schemas", self.map.len())
    }
}

impl SchemaCache {
    /// What `body`'s `response_format` asks of the answer: `None` when it
    /// asks nothing checkable (absent, `text`); an error message for the
    /// caller when it is malformed or its schema does not compile.
    pub fn expect(&self, body: &Map<String, Value>) -> Result<Option<Expect>, String> {
        let Some((kind, format)) = response_format(body)? else {
            return Ok(None);
        };
        match kind {
            "json_object" => Ok(Some(Expect::JsonObject)),
            "json_schema" => {
                let schema = format
                    .get("json_schema")
                    .and_then(|j| j.get("schema"))
                    .ok_or(
                        "`response_format.json_schema.schema` is required with type json_schema",
                    )?;
                self.compile(schema).map(|v| Some(Expect::Schema(v)))
            }
            // "text" asks nothing checkable.
            _ => Ok(None),
        }
    }

    fn compile(&self, schema: &Value) -> Result<Arc<Validator>, String> {
        const WHERE: &str = "`response_format.json_schema.schema`";
        if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
            return Err(format!("{WHERE} must be a JSON Schema (an object)"));
        }
        let shape = walk(schema);
        if shape.depth > MAX_SCHEMA_DEPTH {
            return Err(format!(
                "{WHERE} nests deeper than {MAX_SCHEMA_DEPTH} levels"
            ));
        }
        if shape.bytes > MAX_SCHEMA_BYTES {
            return Err(format!("{WHERE} is over {MAX_SCHEMA_BYTES} bytes"));
        }
        let (key, cost) = (shape.hash, shape.cost());
        if cost > CACHE_BYTES {
            return Err(format!(
                "{WHERE} would compile to more than {} MiB (it has {} regular expressions)",
                CACHE_BYTES >> 20,
                shape.regexes
            ));
        }
        if let Some(v) = self.lock().find(key, schema) {
            return Ok(v);
        }
        // Compiled outside the lock: other calls need not wait for it.
        // Each regex's compiled size is bounded, so COST_PER_REGEX is too.
        let validator = Validator::new(schema)
            .map_err(|e| format!("{WHERE} is not a valid JSON Schema: {e}"))?;
        let validator = Arc::new(validator);
        let mut inner = self.lock();
        if inner.find(key, schema).is_none() {
            while inner.order.len() >= CACHE_SIZE || inner.bytes + cost > CACHE_BYTES {
                if !inner.evict_oldest() {
                    break;
                }
            }
            let schema = Arc::new(schema.clone());
            inner.order.push_back((key, Arc::clone(&schema)));
            inner.bytes += cost;
            inner.map.entry(key).or_default().push(Entry {
                schema,
                validator: Arc::clone(&validator),
                cost,
            });
        }
        Ok(validator)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Schemas held.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// The estimated bytes they hold (what [`CACHE_BYTES`] bounds).
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CacheInner {
    fn find(&self, key: u64, schema: &Value) -> Option<Arc<Validator>> {
        let list = self.map.get(&key)?;
        list.iter()
            .find(|e| *e.schema == *schema)
            .map(|e| Arc::clone(&e.validator))
    }

    /// Drop the oldest schema; `false` when none is left.
    fn evict_oldest(&mut self) -> bool {
        let Some((key, schema)) = self.order.pop_front() else {
            return false;
        };
        if let Some(list) = self.map.get_mut(&key) {
            if let Some(at) = list.iter().position(|e| Arc::ptr_eq(&e.schema, &schema)) {
                self.bytes -= list.swap_remove(at).cost;
            }
            if list.is_empty() {
                self.map.remove(&key);
            }
        }
        true
    }
}

/// What one pass over a schema learns.
struct Shape {
    /// Nesting depth.
    depth: usize,
    /// About its size as JSON text.
    bytes: usize,
    /// Values and object keys: each becomes some part of the validator.
    nodes: usize,
    /// Regular expressions (`pattern` values, `patternProperties` keys).
    regexes: usize,
    /// Their estimated bytes, compiled ([`regex_cost`]).
    regex_bytes: u64,
    /// A hash of its content.
    hash: u64,
}

impl Shape {
    /// The bytes a kept schema is reckoned to hold: the validator and the
    /// schema's own value (see [`COST_PER_NODE`]).
    fn cost(&self) -> u64 {
        self.nodes as u64 * COST_PER_NODE + self.bytes as u64 * COST_PER_BYTE + self.regex_bytes
    }
}

/// One pass over a schema, without recursion (a hostile value may nest
/// deeper than the stack allows). Stops early past the limits.
fn walk(value: &Value) -> Shape {
    let mut h = DefaultHasher::new();
    let (mut depth, mut bytes, mut nodes) = (0, 0, 0);
    let mut regexes = Vec::new();
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        depth = depth.max(d);
        if d > MAX_SCHEMA_DEPTH || bytes > MAX_SCHEMA_BYTES {
            break;
        }
        nodes += 1;
        match v {
            Value::Null => 0u8.hash(&mut h),
            Value::Bool(b) => (1u8, b).hash(&mut h),
            Value::Number(n) => {
                2u8.hash(&mut h);
                n.as_f64().map(f64::to_bits).hash(&mut h);
                bytes += 8;
            }
            Value::String(s) => {
                (3u8, s).hash(&mut h);
                bytes += s.len() + 2;
            }
            Value::Array(items) => {
                (4u8, items.len()).hash(&mut h);
                bytes += 2 + items.len();
                stack.extend(items.iter().rev().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                (5u8, map.len()).hash(&mut h);
                bytes += 2 + map.len() * 2;
                nodes += map.len();
                for (k, item) in map.iter().rev() {
                    k.hash(&mut h);
                    bytes += k.len() + 2;
                    stack.push((item, d + 1));
                    match (k.as_str(), item) {
                        ("pattern", Value::String(p)) => regexes.push(p.as_str()),
                        ("patternProperties", Value::Object(o)) => {
                            regexes.extend(o.keys().map(String::as_str));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    Shape {
        depth,
        bytes,
        nodes,
        regexes: regexes.len(),
        regex_bytes: regexes.iter().map(|p| regex_cost(p)).sum(),
        hash: h.finish(),
    }
}

/// The text of an OpenAI-shaped answer's first message, if it has one.
pub fn content(response: &Value) -> Option<&str> {
    response
        .get("choices")?
        .get(0)?
        .get("message")?
        .get("content")?
        .as_str()
}

#[cfg(test)]
mod checks;

#[cfg(test)]
mod tests {
    use super::regex::{regex_states, BYTES_PER_STATE, COST_PER_REGEX};
    use super::*;
    use serde_json::json;

    fn expect(format: Value) -> Result<Option<Expect>, String> {
        let body = json!({"response_format": format});
        SchemaCache::default().expect(body.as_object().unwrap())
    }

    #[test]
    fn a_schema_checks_types_required_and_extra_properties() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "age": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
                "kind": {"$ref": "#/$defs/kind"}
            },
            "required": ["name", "age"],
            "additionalProperties": false,
            "$defs": {"kind": {"anyOf": [{"const": "x"}, {"type": "null"}]}}
        });
        let e =
            expect(json!({"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}))
                .unwrap()
                .unwrap();
        assert_eq!(
            e.check(r#"{"name": "Ada", "age": 36, "tags": ["a"], "kind": "x"}"#),
            Some(true)
        );
        assert_eq!(e.check(r#"{"name": "Ada"}"#), Some(false), "required");
        assert_eq!(
            e.check(r#"{"name": "Ada", "age": -1}"#),
            Some(false),
            "minimum"
        );
        assert_eq!(
            e.check(r#"{"name": "", "age": 1}"#),
            Some(false),
            "minLength"
        );
        assert_eq!(
            e.check(r#"{"name": "Ada", "age": 1, "x": 1}"#),
            Some(false),
            "additionalProperties"
        );
        assert_eq!(
            e.check(r#"{"name": "Ada", "age": 1, "tags": ["c"]}"#),
            Some(false),
            "enum"
        );
        assert_eq!(
            e.check(r#"{"name": "Ada", "age": 1, "kind": "y"}"#),
            Some(false),
            "$ref anyOf const"
        );
        assert_eq!(
            e.check(r#"{"name": "Ada", "age": 1"#),
            Some(false),
            "not JSON"
        );
        assert_eq!(e.check("Sure! Here is the JSON: {}"), Some(false), "prose");
    }

    #[test]
    fn json_object_mode_and_no_check() {
        let e = expect(json!({"type": "json_object"})).unwrap().unwrap();
        assert_eq!(e.check(r#"{"a": 1}"#), Some(true));
        assert_eq!(e.check("[1, 2]"), Some(false));
        assert_eq!(e.check("{"), Some(false));
        assert!(expect(json!({"type": "text"})).unwrap().is_none());
        assert!(expect(Value::Null).unwrap().is_none());
    }

    #[test]
    fn unknown_or_missing_types_are_errors_that_do_not_repeat_them() {
        for format in [
            json!({"type": "xml"}),
            json!({"type": "JSON_OBJECT"}),
            json!({"type": 5}),
            json!({}),
            json!({"type": "x".repeat(10_000)}),
        ] {
            let e = expect(format.clone()).unwrap_err();
            assert!(
                e.contains("response_format.type") && e.len() < 100,
                "{format}: {e}"
            );
        }
    }

    #[test]
    fn json_the_parser_cannot_take_is_not_judged_other_text_fails() {
        let e = expect(json!({"type": "json_object"})).unwrap().unwrap();
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let deep_object = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        for unjudged in [
            deep.as_str(),
            deep_object.as_str(),
            "1e100000",
            r#"{"n": -1E+99999}"#,
            r#"{"big": [1, 2, 1e400]}"#,
        ] {
            assert_eq!(e.check(unjudged), None, "{unjudged:.40}");
        }
        let broken_deep = format!("{}{}", "[".repeat(10_000), "]".repeat(9_999));
        for broken in [
            broken_deep.as_str(),
            "1e",
            "01",
            "[1,]",
            r#"{"a" 1}"#,
            r#"{"a": 1,}"#,
            "\"\\x\"",
            "\"tab\there\"",
            "[1] [2]",
            "",
            "nul",
        ] {
            assert_eq!(e.check(broken), Some(false), "{broken:.40}");
        }
    }

    #[test]
    fn the_json_grammar_scan_agrees_with_the_parser_where_it_parses() {
        for text in [
            r#"{"a": [1, -2.5e3, true, false, null, "x\"\u00e9\n", {}, []], "b": {"c": 0}}"#,
            " [ ] ",
            "\"\"",
            "-0",
            "0.0e-0",
            "{\"k\":\"\\/\"}",
        ] {
            assert!(serde_json::from_str::<Value>(text).is_ok(), "{text}");
            assert!(is_json(text), "{text}");
        }
        for text in [
            "[",
            "]",
            "{]",
            "[}",
            "{\"a\"}",
            "{1: 2}",
            "\"\\u12\"",
            "+1",
            ".5",
            "1.",
            "tru",
        ] {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
            assert!(!is_json(text), "{text}");
        }
    }

    #[test]
    fn bad_formats_and_schemas_are_errors_not_panics() {
        for format in [
            json!("json"),
            json!({"type": "json_schema"}),
            json!({"type": "json_schema", "json_schema": {"schema": 5}}),
            json!({"type": "json_schema", "json_schema": {"schema": {"type": "no such type"}}}),
            json!({"type": "json_schema", "json_schema": {"schema": {"minLength": -1}}}),
            json!({"type": "json_schema", "json_schema": {"schema": {"properties": {"a": 5}}}}),
            json!({"type": "json_schema", "json_schema": {"schema": {"anyOf": []}}}),
            json!({"type": "json_schema", "json_schema": {"schema": {"multipleOf": 0}}}),
            json!({"type": "json_schema", "json_schema": {"schema": {"required": [1]}}}),
        ] {
            assert!(expect(format.clone()).is_err(), "{format}");
        }
        let mut deep = json!({"type": "string"});
        for _ in 0..100 {
            deep = json!({"type": "object", "properties": {"a": deep}});
        }
        let e =
            expect(json!({"type": "json_schema", "json_schema": {"schema": deep}})).unwrap_err();
        assert!(e.contains("deeper"), "{e}");
    }

    #[test]
    fn compiled_once_and_bounded() {
        let cache = SchemaCache::default();
        for i in 0..CACHE_SIZE + 10 {
            let schema =
                json!({"type": "object", "properties": {format!("p{i}"): {"type": "string"}}});
            let body = json!({"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}});
            cache.expect(body.as_object().unwrap()).unwrap();
            cache.expect(body.as_object().unwrap()).unwrap();
        }
        assert_eq!(cache.len(), CACHE_SIZE);
    }

    #[test]
    fn regex_sizes_are_read_from_their_text() {
        for (pattern, states) in [
            ("^\\w{1,64}$", 256),
            ("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{12}$", 4 * 24 + 2),
            ("(\\w{100}){100}", 40_100),
            ("(a(b{3}){2}){10}", 10 * (1 + 2 * 4 + 1)),
            ("\\p{L}{4}", 4096),
            ("[\\p{L}\\d]x", 1025),
            (".{8,}", 16 * 9),
            ("a{99999999999}{99999999999}", u64::MAX),
            // Not repetitions, unbalanced, cut short: no panic.
            ("a{b}c{", 6),
            ("))((a", 3),
            ("[abc", 4),
            ("\\", 1),
            ("\\p", 1024),
            ("", 0),
        ] {
            assert_eq!(regex_states(pattern), states, "{pattern}");
        }
        assert_eq!(regex_cost("^(?=.*\\d).{8}$"), COST_PER_REGEX);
        assert_eq!(regex_cost("(a)\\1"), COST_PER_REGEX);
        assert_eq!(regex_cost("^[a-z]+$"), 16 * 1024 + 4 * BYTES_PER_STATE);
        assert_eq!(regex_cost("(\\w{1000}){1000}"), COST_PER_REGEX);
    }

    #[test]
    fn schemas_reckoned_over_the_cache_or_with_huge_regexes_are_refused() {
        let many: Vec<Value> = (0..40)
            .map(|i| json!({"pattern": format!("^(?=.*\\d){i}$")}))
            .collect();
        let e = expect(json!({"type": "json_schema", "json_schema": {"schema": {"allOf": many}}}))
            .unwrap_err();
        assert!(
            e.contains("more than 64 MiB") && e.contains("40 regular"),
            "{e}"
        );
        let huge = json!({"pattern": "^(\\w{1000}){1000}$"});
        let e =
            expect(json!({"type": "json_schema", "json_schema": {"schema": huge}})).unwrap_err();
        assert!(e.contains("not a valid JSON Schema"), "{e}");
    }

    #[test]
    fn big_schemas_are_bounded_by_their_bytes() {
        let cache = SchemaCache::default();
        // About 229 KB each, as JSON text: a 20,000-value enum.
        let big = |i: usize| {
            let values: Vec<Value> = (0..20_000).map(|v| json!(format!("{i}-{v:05}"))).collect();
            json!({"response_format": {"type": "json_schema", "json_schema": {"schema": {"enum": values}}}})
        };
        for i in 0..12 {
            let body = big(i);
            let e = cache.expect(body.as_object().unwrap()).unwrap().unwrap();
            assert_eq!(e.check(&format!("\"{i}-00042\"")), Some(true));
            assert!(cache.bytes() <= CACHE_BYTES, "{} bytes", cache.bytes());
        }
        let one = cache.bytes() / cache.len() as u64;
        assert!(one > 8 << 20, "a big schema is costed at {one} bytes");
        assert_eq!(cache.len() as u64, CACHE_BYTES / one, "as many as fit");
        // The newest are kept: the last one is found, not compiled again.
        let body = big(11);
        let (before, len) = (cache.bytes(), cache.len());
        cache.expect(body.as_object().unwrap()).unwrap();
        assert_eq!((cache.bytes(), cache.len()), (before, len));
    }
}
