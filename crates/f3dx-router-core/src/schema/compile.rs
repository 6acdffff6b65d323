//! A JSON Schema (2020-12) compiled into its tree ([`super::tree`]).
//! `$ref`s become node ids, resolved once here, so cycles cost nothing to
//! build. Compiling never recurses (a queue of subschemas to compile), and
//! subschemas are found by address in the schema value, not by pointer
//! text (a hostile schema's pointers could be long).

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::regex::{regex_states, REGEX_SIZE_LIMIT};
use super::resources::Resources;
use super::tree::{types, Check, Id, Names, Node, Pattern, Validator};

/// Keywords whose meaning this validator does not implement and that can
/// change a verdict: a schema using one is not judged.
const UNSUPPORTED: [&str; 7] = [
    "$dynamicRef",
    "$recursiveRef",
    "unevaluatedProperties",
    "unevaluatedItems",
    // Earlier drafts' assertions that 2020-12 dropped: a schema that uses
    // them means an earlier draft.
    "dependencies",
    "additionalItems",
    "$vocabulary",
];

/// Why a schema was not compiled.
pub(super) enum Refusal {
    /// It is not a valid schema: the message says why.
    Invalid(String),
    /// It uses something not supported: it cannot be judged.
    Unsupported,
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Refusal::Invalid(message)
    }
}

impl Validator {
    /// Compiles `schema`: an error message when it is not a valid schema;
    /// a validator that judges nothing when it is valid but uses what is
    /// not supported.
    pub fn new(schema: &Value) -> Result<Validator, String> {
        let mut compiler = Compiler::new(schema);
        match compiler.run() {
            Ok(()) => Ok(Validator {
                nodes: Some(
                    compiler
                        .nodes
                        .into_iter()
                        .map(Option::unwrap_or_default)
                        .collect(),
                ),
                patterns: compiler.patterns,
            }),
            Err(Refusal::Unsupported) => Ok(Validator {
                nodes: None,
                patterns: Vec::new(),
            }),
            Err(Refusal::Invalid(message)) => Err(message),
        }
    }
}

/// Compiles subschemas from a queue, each once (by address).
struct Compiler<'a> {
    /// Where `$ref`s lead.
    resources: Resources<'a>,
    /// The subschema being compiled (its `$ref`s resolve against its base).
    current: &'a Value,
    nodes: Vec<Option<Node>>,
    ids: HashMap<*const Value, Id>,
    queue: Vec<&'a Value>,
    patterns: Vec<Pattern>,
    regex_ids: HashMap<&'a str, usize>,
}

impl<'a> Compiler<'a> {
    fn new(root: &'a Value) -> Self {
        Compiler {
            resources: Resources::new(root),
            current: root,
            nodes: Vec::new(),
            ids: HashMap::new(),
            queue: Vec::new(),
            patterns: Vec::new(),
            regex_ids: HashMap::new(),
        }
    }

    fn run(&mut self) -> Result<(), Refusal> {
        self.id_of(self.resources.root());
        while let Some(schema) = self.queue.pop() {
            let id = self.ids[&(schema as *const Value)];
            self.current = schema;
            let node = self.compile(schema)?;
            self.nodes[id as usize] = Some(node);
        }
        Ok(())
    }

    /// The node of `schema`, queued for compiling the first time it is met.
    fn id_of(&mut self, schema: &'a Value) -> Id {
        let key = schema as *const Value;
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.nodes.len() as Id;
        self.nodes.push(None);
        self.ids.insert(key, id);
        self.queue.push(schema);
        id
    }

    fn compile(&mut self, schema: &'a Value) -> Result<Node, Refusal> {
        let map = match schema {
            Value::Bool(true) => return Ok(Node::All(Vec::new())),
            Value::Bool(false) => return Ok(Node::Never),
            Value::Object(map) => map,
            _ => return Err(invalid("a subschema is neither an object nor a boolean")),
        };
        if UNSUPPORTED.iter().any(|k| map.contains_key(*k)) {
            return Err(Refusal::Unsupported);
        }
        let mut checks = Vec::new();
        self.properties(map, &mut checks)?;
        for (key, value) in map {
            if let Some(check) = self.keyword(map, key, value)? {
                checks.push(check);
            }
        }
        Ok(Node::All(checks))
    }

    /// The check of one keyword (`None`: an annotation, an unknown keyword,
    /// or one read with another).
    fn keyword(
        &mut self,
        map: &'a Map<String, Value>,
        key: &str,
        value: &'a Value,
    ) -> Result<Option<Check>, Refusal> {
        Ok(Some(match key {
            "type" => Check::Type(type_bits(value)?),
            "const" => Check::Const(value.clone()),
            "enum" => match value {
                Value::Array(items) => Check::Enum(items.clone()),
                _ => return Err(invalid("`enum` must be an array")),
            },
            "required" => Check::Required(strings(value, "required")?),
            "propertyNames" => Check::PropertyNames(self.id_of(value)),
            "minProperties" => Check::MinProperties(count(value, key)?),
            "maxProperties" => Check::MaxProperties(count(value, key)?),
            "dependentRequired" => {
                let mut all = Vec::new();
                for (name, list) in object(value, key)? {
                    all.push((name.clone(), strings(list, key)?));
                }
                Check::DependentRequired(all)
            }
            "dependentSchemas" => {
                let mut all = Vec::new();
                for (name, schema) in object(value, key)? {
                    all.push((name.clone(), self.id_of(schema)));
                }
                Check::DependentSchemas(all)
            }
            "prefixItems" | "items" => return self.items(map, key),
            "contains" => {
                let min = match map.get("minContains") {
                    Some(v) => count(v, "minContains")?,
                    None => 1,
                };
                let max = map
                    .get("maxContains")
                    .map(|v| count(v, "maxContains"))
                    .transpose()?;
                Check::Contains {
                    schema: self.id_of(value),
                    min,
                    max,
                }
            }
            "minItems" => Check::MinItems(count(value, key)?),
            "maxItems" => Check::MaxItems(count(value, key)?),
            "uniqueItems" => match value {
                Value::Bool(true) => Check::UniqueItems,
                Value::Bool(false) => return Ok(None),
                _ => return Err(invalid("`uniqueItems` must be a boolean")),
            },
            "minLength" => Check::MinLength(count(value, key)?),
            "maxLength" => Check::MaxLength(count(value, key)?),
            "pattern" => match value {
                Value::String(p) => Check::Pattern(self.pattern(p)?),
                _ => return Err(invalid("`pattern` must be a string")),
            },
            "minimum" => Check::Minimum(number(value, key)?),
            "maximum" => Check::Maximum(number(value, key)?),
            "exclusiveMinimum" => Check::ExclusiveMinimum(number(value, key)?),
            "exclusiveMaximum" => Check::ExclusiveMaximum(number(value, key)?),
            "multipleOf" => {
                let n = number(value, key)?;
                if n.as_f64().is_none_or(|f| f <= 0.0) {
                    return Err(invalid("`multipleOf` must be above 0"));
                }
                Check::MultipleOf(n)
            }
            "allOf" => Check::AllOf(self.list(value, key)?),
            "anyOf" => Check::AnyOf(self.list(value, key)?),
            "oneOf" => Check::OneOf(self.list(value, key)?),
            "not" => Check::Not(self.id_of(value)),
            "if" => Check::IfThenElse {
                test: self.id_of(value),
                then: map.get("then").map(|s| self.id_of(s)),
                otherwise: map.get("else").map(|s| self.id_of(s)),
            },
            "$ref" => match value {
                Value::String(r) => Check::Ref(self.reference(r)?),
                _ => return Err(invalid("`$ref` must be a string")),
            },
            // Annotations (`format` included: 2020-12 does not assert it),
            // keywords read with others, and unknown keywords.
            _ => return Ok(None),
        }))
    }

    /// `properties`, `patternProperties` and `additionalProperties`, read
    /// together: the last needs the names and patterns of the first two.
    fn properties(
        &mut self,
        map: &'a Map<String, Value>,
        checks: &mut Vec<Check>,
    ) -> Result<(), Refusal> {
        let (named, patterns, additional) = (
            map.get("properties"),
            map.get("patternProperties"),
            map.get("additionalProperties"),
        );
        if named.is_none() && patterns.is_none() && additional.is_none() {
            return Ok(());
        }
        let mut check_named = Vec::new();
        if let Some(named) = named {
            for (name, schema) in object(named, "properties")? {
                check_named.push((name.clone(), self.id_of(schema)));
            }
        }
        let mut check_patterns = Vec::new();
        if let Some(patterns) = patterns {
            for (pattern, schema) in object(patterns, "patternProperties")? {
                check_patterns.push((self.pattern(pattern)?, self.id_of(schema)));
            }
        }
        checks.push(Check::Properties {
            named: Names::new(check_named),
            patterns: check_patterns,
            additional: additional.map(|s| self.id_of(s)),
        });
        Ok(())
    }

    /// `prefixItems` and `items`, read together (once, at `items` or at
    /// `prefixItems` when there is no `items`).
    fn items(&mut self, map: &'a Map<String, Value>, key: &str) -> Result<Option<Check>, Refusal> {
        if key == "prefixItems" && map.contains_key("items") {
            return Ok(None);
        }
        let rest = match map.get("items") {
            // Earlier drafts' tuple form.
            Some(Value::Array(_)) => return Err(Refusal::Unsupported),
            Some(schema) => Some(self.id_of(schema)),
            None => None,
        };
        let prefix = match map.get("prefixItems") {
            Some(list) => self.list(list, "prefixItems")?,
            None => Vec::new(),
        };
        Ok(Some(Check::Items { prefix, rest }))
    }

    /// A non-empty array of subschemas.
    fn list(&mut self, value: &'a Value, key: &str) -> Result<Vec<Id>, Refusal> {
        match value {
            Value::Array(items) if !items.is_empty() => {
                Ok(items.iter().map(|s| self.id_of(s)).collect())
            }
            _ => Err(invalid(&format!("`{key}` must be a non-empty array"))),
        }
    }

    /// The regex of `pattern`, compiled once per schema. Too large or too
    /// nested is invalid (the bound of what a schema holds); a syntax
    /// regex-lite does not take (Unicode classes, look-around,
    /// backreferences) makes the schema not judged.
    fn pattern(&mut self, pattern: &'a str) -> Result<usize, Refusal> {
        if let Some(&at) = self.regex_ids.get(pattern) {
            return Ok(at);
        }
        let built = regex_lite::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build();
        let regex = match built {
            Ok(regex) => regex,
            Err(e) => {
                let message = e.to_string();
                return Err(
                    if message.contains("size limit") || message.contains("nesting") {
                        invalid("a regular expression is too large")
                    } else {
                        Refusal::Unsupported
                    },
                );
            }
        };
        self.patterns.push(Pattern {
            regex,
            states: regex_states(pattern).max(1),
        });
        self.regex_ids.insert(pattern, self.patterns.len() - 1);
        Ok(self.patterns.len() - 1)
    }

    /// The node a `$ref` names: a resource of this document (the root, or
    /// a subschema with an `$id`), with a JSON pointer or an anchor as its
    /// fragment. Any other (remote, or not found) is unsupported.
    fn reference(&mut self, reference: &str) -> Result<Id, Refusal> {
        match self.resources.resolve(self.current, reference) {
            Some(schema) => Ok(self.id_of(schema)),
            None => Err(Refusal::Unsupported),
        }
    }
}

/// The deepest nesting of groups in a pattern (regex-lite's default: 50).
const REGEX_NEST_LIMIT: u32 = 50;

fn invalid(why: &str) -> Refusal {
    Refusal::Invalid(why.to_owned())
}

/// `type`: one name or a non-empty list of names.
fn type_bits(value: &Value) -> Result<u8, Refusal> {
    let one = |v: &Value| -> Result<u8, Refusal> {
        Ok(match v.as_str() {
            Some("null") => types::NULL,
            Some("boolean") => types::BOOLEAN,
            Some("object") => types::OBJECT,
            Some("array") => types::ARRAY,
            Some("number") => types::NUMBER,
            Some("string") => types::STRING,
            Some("integer") => types::INTEGER,
            _ => return Err(invalid("`type` names an unknown type")),
        })
    };
    match value {
        Value::Array(names) => names.iter().try_fold(0, |bits, v| Ok(bits | one(v)?)),
        single => one(single),
    }
}

fn strings(value: &Value, key: &str) -> Result<Vec<String>, Refusal> {
    let list = value.as_array().map(|items| {
        items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
    });
    list.flatten()
        .ok_or_else(|| invalid(&format!("`{key}` must be an array of strings")))
}

fn object<'v>(value: &'v Value, key: &str) -> Result<&'v Map<String, Value>, Refusal> {
    value
        .as_object()
        .ok_or_else(|| invalid(&format!("`{key}` must be an object")))
}

/// A non-negative integer (`1.0` too).
fn count(value: &Value, key: &str) -> Result<u64, Refusal> {
    let n = value.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0);
    match (value.as_u64(), n) {
        (Some(n), _) => Ok(n),
        (None, Some(f)) => Ok(f as u64),
        _ => Err(invalid(&format!("`{key}` must be a non-negative integer"))),
    }
}

fn number(value: &Value, key: &str) -> Result<Number, Refusal> {
    match value {
        Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(n.clone()),
        _ => Err(invalid(&format!("`{key}` must be a number"))),
    }
}
