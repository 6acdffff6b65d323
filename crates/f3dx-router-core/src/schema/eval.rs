//! An answer checked against a compiled schema ([`super::compile`]), within
//! bounds: a depth (a `$ref` cycle that consumes no instance depth, like
//! `{"$ref": "#"}`, would recurse forever) and an amount of work (`$ref`s
//! shared by `anyOf`s can make the checks exponential; a large regex is
//! slow per byte). Past either, the answer is not judged.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Number, Value};

use super::tree::{types, Check, Id, Node, Pattern, Validator};

/// Deepest nesting of subschemas evaluated (each a few call frames: 512
/// fit in 512 KiB unoptimized, `checks.rs` tests it; the deepest answer the
/// parser takes, 128 levels, may use about 3 per level).
pub(super) const MAX_EVAL_DEPTH: u32 = 512;
/// Most work one answer's check may take, in steps: a subschema is
/// [`NODE_STEPS`], a regex match its states times the bytes of text, an
/// `enum` its values, `uniqueItems` its items.
pub(super) const MAX_EVAL_STEPS: u64 = 100_000_000;
/// The steps of evaluating one subschema.
const NODE_STEPS: u64 = 16;

impl Validator {
    /// Whether `value` conforms: `None` when the schema cannot be judged,
    /// or judging this value would take more than the evaluation's bounds
    /// (depth, work).
    pub fn check(&self, value: &Value) -> Option<bool> {
        let nodes = self.nodes.as_deref()?;
        Eval::new(nodes, &self.patterns).node(0, value).ok()
    }
}

/// Why an answer was not judged.
#[derive(Debug)]
pub(super) struct Unjudged;

/// One answer's evaluation.
pub(super) struct Eval<'s> {
    nodes: &'s [Node],
    patterns: &'s [Pattern],
    depth: u32,
    steps: u64,
}

type Verdict = Result<bool, Unjudged>;

impl<'s> Eval<'s> {
    pub(super) fn new(nodes: &'s [Node], patterns: &'s [Pattern]) -> Self {
        Eval {
            nodes,
            patterns,
            depth: 0,
            steps: 0,
        }
    }

    fn spend(&mut self, steps: u64) -> Result<(), Unjudged> {
        self.steps = self.steps.saturating_add(steps);
        match self.steps > MAX_EVAL_STEPS {
            true => Err(Unjudged),
            false => Ok(()),
        }
    }

    /// Whether `value` meets node `id`.
    pub(super) fn node(&mut self, id: Id, value: &Value) -> Verdict {
        self.spend(NODE_STEPS)?;
        let checks = match &self.nodes[id as usize] {
            Node::Never => return Ok(false),
            Node::All(checks) => checks,
        };
        if self.depth >= MAX_EVAL_DEPTH {
            return Err(Unjudged);
        }
        self.depth += 1;
        let mut verdict = Ok(true);
        for check in checks {
            verdict = self.check(check, value);
            if verdict.as_ref().is_ok_and(|ok| *ok) {
                continue;
            }
            break;
        }
        self.depth -= 1;
        verdict
    }

    /// One check. Those that evaluate subschemas go to small functions of
    /// their own: the recursion passes through them, and each call frame
    /// stays small (an unoptimized build gives a large match one frame
    /// with every arm's locals).
    fn check(&mut self, check: &Check, value: &Value) -> Verdict {
        match (check, value) {
            (Check::AllOf(ids), _) => self.all_of(ids, value),
            (Check::AnyOf(ids), _) => self.any_of(ids, value),
            (Check::OneOf(ids), _) => self.one_of(ids, value),
            (Check::Not(id), _) => Ok(!self.node(*id, value)?),
            (Check::IfThenElse { .. }, _) => self.if_then_else(check, value),
            (Check::Ref(id), _) => self.node(*id, value),
            (Check::Properties { .. }, Value::Object(map)) => self.properties(check, map),
            (Check::PropertyNames(id), Value::Object(map)) => self.property_names(*id, map),
            (Check::DependentSchemas(all), Value::Object(map)) => {
                self.dependent_schemas(all, map, value)
            }
            (Check::Items { prefix, rest }, Value::Array(items)) => {
                self.items(prefix, *rest, items)
            }
            (Check::Contains { .. }, Value::Array(items)) => self.contains(check, items),
            _ => self.assertion(check, value),
        }
    }

    /// A check that evaluates no subschema.
    fn assertion(&mut self, check: &Check, value: &Value) -> Verdict {
        match (check, value) {
            (Check::Type(bits), _) => Ok(type_bits(value) & bits != 0),
            (Check::Const(c), _) => Ok(equal(c, value)),
            (Check::Enum(all), _) => {
                self.spend(all.len() as u64)?;
                Ok(all.iter().any(|c| equal(c, value)))
            }
            (Check::Required(names), Value::Object(map)) => {
                Ok(names.iter().all(|n| map.contains_key(n)))
            }
            (Check::MinProperties(n), Value::Object(map)) => Ok(map.len() as u64 >= *n),
            (Check::MaxProperties(n), Value::Object(map)) => Ok(map.len() as u64 <= *n),
            (Check::DependentRequired(all), Value::Object(map)) => Ok(all
                .iter()
                .filter(|(name, _)| map.contains_key(name))
                .all(|(_, needs)| needs.iter().all(|n| map.contains_key(n)))),
            (Check::MinItems(n), Value::Array(items)) => Ok(items.len() as u64 >= *n),
            (Check::MaxItems(n), Value::Array(items)) => Ok(items.len() as u64 <= *n),
            (Check::UniqueItems, Value::Array(items)) => {
                self.spend(items.len() as u64)?;
                Ok(all_unique(items))
            }
            (Check::MinLength(n), Value::String(s)) => Ok(s.chars().count() as u64 >= *n),
            (Check::MaxLength(n), Value::String(s)) => Ok(s.chars().count() as u64 <= *n),
            (Check::Pattern(at), Value::String(s)) => self.matches(*at, s),
            (Check::Minimum(m), Value::Number(n)) => Ok(compare(n, m).is_some_and(Ordering::is_ge)),
            (Check::Maximum(m), Value::Number(n)) => Ok(compare(n, m).is_some_and(Ordering::is_le)),
            (Check::ExclusiveMinimum(m), Value::Number(n)) => {
                Ok(compare(n, m).is_some_and(Ordering::is_gt))
            }
            (Check::ExclusiveMaximum(m), Value::Number(n)) => {
                Ok(compare(n, m).is_some_and(Ordering::is_lt))
            }
            (Check::MultipleOf(m), Value::Number(n)) => Ok(multiple_of(n, m)),
            // A keyword of another type's values holds for this one.
            _ => Ok(true),
        }
    }

    fn all_of(&mut self, ids: &[Id], value: &Value) -> Verdict {
        for id in ids {
            if !self.node(*id, value)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn any_of(&mut self, ids: &[Id], value: &Value) -> Verdict {
        for id in ids {
            if self.node(*id, value)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Exactly one passes (stops at the second).
    fn one_of(&mut self, ids: &[Id], value: &Value) -> Verdict {
        let mut passed = 0;
        for id in ids {
            if self.node(*id, value)? {
                passed += 1;
                if passed > 1 {
                    return Ok(false);
                }
            }
        }
        Ok(passed == 1)
    }

    fn if_then_else(&mut self, check: &Check, value: &Value) -> Verdict {
        let Check::IfThenElse {
            test,
            then,
            otherwise,
        } = check
        else {
            return Ok(true);
        };
        let branch = match self.node(*test, value)? {
            true => then,
            false => otherwise,
        };
        match branch {
            Some(id) => self.node(*id, value),
            None => Ok(true),
        }
    }

    fn property_names(&mut self, id: Id, map: &Map<String, Value>) -> Verdict {
        for name in map.keys() {
            if !self.node(id, &Value::String(name.clone()))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn dependent_schemas(
        &mut self,
        all: &[(String, Id)],
        map: &Map<String, Value>,
        value: &Value,
    ) -> Verdict {
        for (name, id) in all {
            if map.contains_key(name) && !self.node(*id, value)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `prefixItems` by position, then `items` for the rest.
    fn items(&mut self, prefix: &[Id], rest: Option<Id>, items: &[Value]) -> Verdict {
        for (i, item) in items.iter().enumerate() {
            let Some(id) = prefix.get(i).copied().or(rest) else {
                break;
            };
            if !self.node(id, item)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `contains`, within `minContains` and `maxContains`.
    fn contains(&mut self, check: &Check, items: &[Value]) -> Verdict {
        let Check::Contains { schema, min, max } = check else {
            return Ok(true);
        };
        let mut found = 0u64;
        for item in items {
            if self.node(*schema, item)? {
                found += 1;
            }
        }
        Ok(found >= *min && max.is_none_or(|max| found <= max))
    }

    /// `properties`, `patternProperties`, `additionalProperties`: each
    /// member against the schemas its name selects.
    fn properties(&mut self, check: &Check, map: &Map<String, Value>) -> Verdict {
        let Check::Properties {
            named,
            patterns,
            additional,
        } = check
        else {
            return Ok(true);
        };
        for (name, member) in map {
            let mut selected = false;
            if let Some(id) = named.get(name) {
                selected = true;
                if !self.node(id, member)? {
                    return Ok(false);
                }
            }
            for (at, id) in patterns {
                if self.matches(*at, name)? {
                    selected = true;
                    if !self.node(*id, member)? {
                        return Ok(false);
                    }
                }
            }
            if let (false, Some(id)) = (selected, additional) {
                if !self.node(*id, member)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Whether regex `at` matches somewhere in `text` (JSON Schema patterns
    /// are not anchored), its cost spent first.
    fn matches(&mut self, at: usize, text: &str) -> Verdict {
        let pattern = &self.patterns[at];
        self.spend(pattern.states.saturating_mul(text.len() as u64 + 1))?;
        Ok(pattern.regex.is_match(text))
    }
}

fn type_bits(value: &Value) -> u8 {
    match value {
        Value::Null => types::NULL,
        Value::Bool(_) => types::BOOLEAN,
        Value::Object(_) => types::OBJECT,
        Value::Array(_) => types::ARRAY,
        Value::String(_) => types::STRING,
        Value::Number(n) if is_integer(n) => types::NUMBER | types::INTEGER,
        Value::Number(_) => types::NUMBER,
    }
}

fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

/// Two numbers' order: exact between integers, by their doubles otherwise.
fn compare(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Whether `n` is an integer multiple of `m` (> 0): exactly between
/// integers; between doubles, when the quotient is within rounding of an
/// integer (0.0075 is a multiple of 0.0001). A quotient past a double's
/// range is no multiple.
fn multiple_of(n: &Number, m: &Number) -> bool {
    if let (Some(n), Some(m)) = (n.as_i64(), m.as_i64()) {
        return m != 0 && n % m == 0;
    }
    let (Some(n), Some(m)) = (n.as_f64(), m.as_f64()) else {
        return false;
    };
    let q = n / m;
    if !q.is_finite() {
        return false;
    }
    (q - q.round()).abs() <= q.abs().max(1.0) * 4.0 * f64::EPSILON
}

/// JSON equality: numbers by value (`1 == 1.0`), objects whatever their
/// order.
pub(super) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| equal(a, b)))
        }
        _ => a == b,
    }
}

/// Whether no two items are [`equal`]: items grouped by a hash that equal
/// values share, compared within a group.
fn all_unique(items: &[Value]) -> bool {
    let mut groups: HashMap<u64, Vec<&Value>> = HashMap::new();
    for item in items {
        let group = groups.entry(hash_of(item)).or_default();
        if group.iter().any(|seen| equal(seen, item)) {
            return false;
        }
        group.push(item);
    }
    true
}

/// A hash under which [`equal`] values agree: numbers by their double,
/// object members whatever their order.
fn hash_of(value: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    match value {
        Value::Null => 0u8.hash(&mut h),
        Value::Bool(b) => (1u8, b).hash(&mut h),
        Value::Number(n) => {
            // -0.0 == 0.0: one hash.
            let f = n.as_f64().map(|f| if f == 0.0 { 0.0 } else { f });
            (2u8, f.map(f64::to_bits)).hash(&mut h);
        }
        Value::String(s) => (3u8, s).hash(&mut h),
        Value::Array(items) => {
            4u8.hash(&mut h);
            for item in items {
                hash_of(item).hash(&mut h);
            }
        }
        Value::Object(map) => {
            let members = map.iter().fold(0u64, |sum, (k, v)| {
                let mut m = DefaultHasher::new();
                (k, hash_of(v)).hash(&mut m);
                sum.wrapping_add(m.finish())
            });
            (5u8, map.len(), members).hash(&mut h);
        }
    }
    h.finish()
}
