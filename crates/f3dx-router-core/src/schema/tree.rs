//! A compiled schema: an arena of nodes, one per subschema, each a list of
//! checks ([`super::compile`] builds it, [`super::eval`] reads it).

use std::collections::HashMap;

use serde_json::{Number, Value};

/// A node's index in [`Validator::nodes`].
pub(super) type Id = u32;

/// A compiled schema, or the knowledge that it cannot be judged.
#[derive(Debug)]
pub struct Validator {
    /// `None`: the schema uses something this validator does not support
    /// and that could change a verdict (a remote `$ref`, `$dynamicRef`,
    /// `unevaluatedProperties`, ...): no answer is judged against it.
    pub(super) nodes: Option<Vec<Node>>,
    /// Regular expressions, referred to by index.
    pub(super) patterns: Vec<Pattern>,
}

/// A compiled regular expression, and its estimated automaton states (what
/// a match costs per byte of text).
#[derive(Debug)]
pub(super) struct Pattern {
    pub(super) regex: regex_lite::Regex,
    pub(super) states: u64,
}

/// A subschema.
#[derive(Debug)]
pub(super) enum Node {
    /// `false`, or a schema no value meets.
    Never,
    /// Checks that must all pass (`true` and `{}` have none).
    All(Vec<Check>),
}

/// The JSON types, one bit each.
pub(super) mod types {
    pub const NULL: u8 = 1;
    pub const BOOLEAN: u8 = 2;
    pub const OBJECT: u8 = 4;
    pub const ARRAY: u8 = 8;
    pub const NUMBER: u8 = 16;
    pub const STRING: u8 = 32;
    /// A number with a zero fraction.
    pub const INTEGER: u8 = 64;
}

/// One keyword's check (or a few keywords read together).
#[derive(Debug)]
pub(super) enum Check {
    /// `type`: the instance's type is one of these bits.
    Type(u8),
    Const(Value),
    Enum(Vec<Value>),
    /// `properties`, `patternProperties` and `additionalProperties` of one
    /// schema (the last applies to what the first two do not name).
    Properties {
        named: Names,
        patterns: Vec<(usize, Id)>,
        additional: Option<Id>,
    },
    Required(Vec<String>),
    PropertyNames(Id),
    MinProperties(u64),
    MaxProperties(u64),
    DependentRequired(Vec<(String, Vec<String>)>),
    DependentSchemas(Vec<(String, Id)>),
    /// `prefixItems`, then `items` for the rest.
    Items {
        prefix: Vec<Id>,
        rest: Option<Id>,
    },
    Contains {
        schema: Id,
        min: u64,
        max: Option<u64>,
    },
    MinItems(u64),
    MaxItems(u64),
    UniqueItems,
    /// In code points.
    MinLength(u64),
    MaxLength(u64),
    /// An index in [`Validator::patterns`].
    Pattern(usize),
    Minimum(Number),
    Maximum(Number),
    ExclusiveMinimum(Number),
    ExclusiveMaximum(Number),
    MultipleOf(Number),
    AllOf(Vec<Id>),
    AnyOf(Vec<Id>),
    OneOf(Vec<Id>),
    Not(Id),
    IfThenElse {
        test: Id,
        then: Option<Id>,
        otherwise: Option<Id>,
    },
    Ref(Id),
}

/// The subschemas of `properties` by name: a few are found faster by a
/// scan than by hashing the name.
#[derive(Debug)]
pub(super) struct Names {
    list: Vec<(String, Id)>,
    /// Positions in `list` by name, when it is long.
    index: Option<HashMap<String, usize>>,
}

impl Names {
    /// Past this many names, a hash table.
    const SCAN: usize = 12;

    pub(super) fn new(list: Vec<(String, Id)>) -> Names {
        let index = (list.len() > Self::SCAN).then(|| {
            let pairs = list
                .iter()
                .enumerate()
                .map(|(at, (name, _))| (name.clone(), at));
            pairs.collect()
        });
        Names { list, index }
    }

    /// The subschema of property `name`, if it has one.
    pub(super) fn get(&self, name: &str) -> Option<Id> {
        match &self.index {
            Some(index) => index.get(name).map(|&at| self.list[at].1),
            None => self.list.iter().find(|(n, _)| n == name).map(|(_, id)| *id),
        }
    }
}

impl Validator {
    /// Whether answers are judged against it at all.
    pub fn judges(&self) -> bool {
        self.nodes.is_some()
    }
}

impl Default for Node {
    fn default() -> Self {
        Node::All(Vec::new())
    }
}
