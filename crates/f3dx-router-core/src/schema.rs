//! What a request says its answer must be (`response_format`), and the check
//! of an answer against it.
//!
//! `{"type": "json_schema", "json_schema": {"schema": {...}}}`: the content
//! must parse as JSON and conform to the schema (JSON Schema 2020-12, as
//! OpenAI's structured outputs use it). `{"type": "json_object"}`: the
//! content must parse as a JSON object. Compiled schemas are cached, a
//! bounded number of them, so a schema sent with every call is compiled
//! once; finding it costs a walk of the schema (a hash, then an equality
//! check), no allocation.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};

/// Most compiled schemas kept.
pub const CACHE_SIZE: usize = 256;
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
    Schema(Arc<jsonschema::Validator>),
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
    /// Whether `content` (the answer's message text) is what was asked.
    pub fn check(&self, content: &str) -> bool {
        let Ok(value) = serde_json::from_str::<Value>(content) else {
            return false;
        };
        match self {
            Expect::JsonObject => value.is_object(),
            Expect::Schema(v) => v.is_valid(&value),
        }
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
    map: HashMap<u64, Vec<(Value, Arc<jsonschema::Validator>)>>,
    /// Insertion order, for eviction.
    order: VecDeque<(u64, Value)>,
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
        let Some(format) = body.get("response_format") else {
            return Ok(None);
        };
        let format = match format {
            Value::Null => return Ok(None),
            Value::Object(o) => o,
            _ => return Err("`response_format` must be an object".to_owned()),
        };
        match format.get("type").and_then(Value::as_str) {
            Some("json_object") => Ok(Some(Expect::JsonObject)),
            Some("json_schema") => {
                let schema = format
                    .get("json_schema")
                    .and_then(|j| j.get("schema"))
                    .ok_or(
                        "`response_format.json_schema.schema` is required with type json_schema",
                    )?;
                self.compile(schema).map(|v| Some(Expect::Schema(v)))
            }
            // "text", and types this router does not check.
            _ => Ok(None),
        }
    }

    fn compile(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        const WHERE: &str = "`response_format.json_schema.schema`";
        if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
            return Err(format!("{WHERE} must be a JSON Schema (an object)"));
        }
        let (deepest, bytes, key) = walk(schema);
        if deepest > MAX_SCHEMA_DEPTH {
            return Err(format!(
                "{WHERE} nests deeper than {MAX_SCHEMA_DEPTH} levels"
            ));
        }
        if bytes > MAX_SCHEMA_BYTES {
            return Err(format!("{WHERE} is over {MAX_SCHEMA_BYTES} bytes"));
        }
        if let Some(v) = self.lock().find(key, schema) {
            return Ok(v);
        }
        // Compiled outside the lock: other calls need not wait for it.
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(schema)
            .map_err(|e| format!("{WHERE} is not a valid JSON Schema: {e}"))?;
        let validator = Arc::new(validator);
        let mut inner = self.lock();
        if inner.find(key, schema).is_none() {
            if inner.order.len() >= CACHE_SIZE {
                if let Some((old, value)) = inner.order.pop_front() {
                    if let Some(list) = inner.map.get_mut(&old) {
                        list.retain(|(v, _)| *v != value);
                        if list.is_empty() {
                            inner.map.remove(&old);
                        }
                    }
                }
            }
            inner.order.push_back((key, schema.clone()));
            let entry = (schema.clone(), Arc::clone(&validator));
            inner.map.entry(key).or_default().push(entry);
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

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CacheInner {
    fn find(&self, key: u64, schema: &Value) -> Option<Arc<jsonschema::Validator>> {
        let list = self.map.get(&key)?;
        list.iter()
            .find(|(v, _)| v == schema)
            .map(|(_, validator)| Arc::clone(validator))
    }
}

/// One pass over a schema, without recursion (a hostile value may nest
/// deeper than the stack allows): its nesting depth, about its size as JSON
/// text, and a hash of its content. Stops early past the limits.
fn walk(value: &Value) -> (usize, usize, u64) {
    let mut h = DefaultHasher::new();
    let (mut deepest, mut bytes) = (0, 0);
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        if d > MAX_SCHEMA_DEPTH || bytes > MAX_SCHEMA_BYTES {
            break;
        }
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
                for (k, item) in map.iter().rev() {
                    k.hash(&mut h);
                    bytes += k.len() + 2;
                    stack.push((item, d + 1));
                }
            }
        }
    }
    (deepest, bytes, h.finish())
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
mod tests {
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
        assert!(e.check(r#"{"name": "Ada", "age": 36, "tags": ["a"], "kind": "x"}"#));
        assert!(!e.check(r#"{"name": "Ada"}"#), "required");
        assert!(!e.check(r#"{"name": "Ada", "age": -1}"#), "minimum");
        assert!(!e.check(r#"{"name": "", "age": 1}"#), "minLength");
        assert!(
            !e.check(r#"{"name": "Ada", "age": 1, "x": 1}"#),
            "additionalProperties"
        );
        assert!(
            !e.check(r#"{"name": "Ada", "age": 1, "tags": ["c"]}"#),
            "enum"
        );
        assert!(
            !e.check(r#"{"name": "Ada", "age": 1, "kind": "y"}"#),
            "$ref anyOf const"
        );
        assert!(!e.check(r#"{"name": "Ada", "age": 1"#), "not JSON");
        assert!(!e.check("Sure! Here is the JSON: {}"), "prose");
    }

    #[test]
    fn json_object_mode_and_no_check() {
        let e = expect(json!({"type": "json_object"})).unwrap().unwrap();
        assert!(e.check(r#"{"a": 1}"#));
        assert!(!e.check("[1, 2]"));
        assert!(!e.check("{"));
        assert!(expect(json!({"type": "text"})).unwrap().is_none());
        assert!(expect(Value::Null).unwrap().is_none());
    }

    #[test]
    fn bad_formats_and_schemas_are_errors_not_panics() {
        for format in [
            json!("json"),
            json!({"type": "json_schema"}),
            json!({"type": "json_schema", "json_schema": {"schema": 5}}),
            json!({"type": "json_schema", "json_schema": {"schema": {"type": "no such type"}}}),
            json!({"type": "json_schema", "json_schema": {"schema": {"$ref": "https://example.com/s.json"}}}),
            json!({"type": "json_schema", "json_schema": {"schema": {"minLength": -1}}}),
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
}
