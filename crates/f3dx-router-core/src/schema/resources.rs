//! Where a schema's `$ref`s lead: each subschema's base URI (the nearest
//! `$id` up its path, resolved against the one above), the resources
//! (`$id`s) and anchors of the document, and the resolution of a reference
//! against a base (RFC 3986, section 5.2, for the shapes schemas use).
//! Nothing is fetched: a reference to a resource not in the document does
//! not resolve.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;

/// The base of a document with no `$id`: relative references resolve
/// against it to URIs no resource has.
const DEFAULT_BASE: &str = "f3dx-schema:/root.json";

/// The resources, anchors and bases of one schema document.
pub(super) struct Resources<'a> {
    root: &'a Value,
    /// Each subschema's base URI, by its address.
    bases: HashMap<*const Value, Rc<str>>,
    /// Schemas by their absolute URI (no fragment).
    resources: HashMap<Rc<str>, &'a Value>,
    /// (resource URI, anchor name) to the schema that declares it.
    anchors: HashMap<(Rc<str>, &'a str), &'a Value>,
}

/// Keywords whose value is a subschema.
const ONE: [&str; 11] = [
    "additionalProperties",
    "propertyNames",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
];
/// Keywords whose value is an object of subschemas.
const BY_NAME: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Keywords whose value is an array of subschemas.
const LIST: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];

impl<'a> Resources<'a> {
    /// One pass over the schema positions of `root` (values of `enum`,
    /// `const`, unknown keywords are data: an `$id` there is no
    /// identifier), without recursion.
    pub(super) fn new(root: &'a Value) -> Self {
        let mut found = Resources {
            root,
            bases: HashMap::new(),
            resources: HashMap::new(),
            anchors: HashMap::new(),
        };
        let mut stack: Vec<(&'a Value, Rc<str>)> = vec![(root, Rc::from(DEFAULT_BASE))];
        while let Some((schema, outer)) = stack.pop() {
            let Value::Object(map) = schema else {
                continue;
            };
            let base = match map.get("$id").and_then(Value::as_str) {
                Some(id) => {
                    let uri: Rc<str> = Rc::from(without_fragment(&resolve(&outer, id)));
                    found.resources.entry(Rc::clone(&uri)).or_insert(schema);
                    uri
                }
                None => outer,
            };
            if std::ptr::eq(schema, root) {
                found.resources.entry(Rc::clone(&base)).or_insert(schema);
            }
            for key in ["$anchor", "$dynamicAnchor"] {
                if let Some(name) = map.get(key).and_then(Value::as_str) {
                    found
                        .anchors
                        .entry((Rc::clone(&base), name))
                        .or_insert(schema);
                }
            }
            found.bases.insert(schema as *const Value, Rc::clone(&base));
            for (key, value) in map {
                let key = key.as_str();
                if ONE.contains(&key) {
                    stack.push((value, Rc::clone(&base)));
                } else if BY_NAME.contains(&key) {
                    if let Value::Object(all) = value {
                        stack.extend(all.values().map(|s| (s, Rc::clone(&base))));
                    }
                } else if LIST.contains(&key) {
                    if let Value::Array(all) = value {
                        stack.extend(all.iter().map(|s| (s, Rc::clone(&base))));
                    }
                }
            }
        }
        found
    }

    /// The schema `reference` leads to from `from` (a subschema of the
    /// document), if it is in the document.
    pub(super) fn resolve(&self, from: &Value, reference: &str) -> Option<&'a Value> {
        let base = self
            .bases
            .get(&(from as *const Value))
            .map_or(DEFAULT_BASE, |b| b);
        let target = resolve(base, reference);
        let (uri, fragment) = target.split_once('#').unwrap_or((&target, ""));
        let resource = *self.resources.get(uri)?;
        match fragment {
            "" => Some(resource),
            pointer if pointer.starts_with('/') => resource.pointer(&percent_decoded(pointer)?),
            anchor => self
                .anchors
                .get(&(Rc::from(uri), percent_decoded(anchor)?.as_str()))
                .copied(),
        }
    }

    /// The document's root.
    pub(super) fn root(&self) -> &'a Value {
        self.root
    }
}

fn without_fragment(uri: &str) -> &str {
    uri.split('#').next().unwrap_or(uri)
}

/// `reference` resolved against the absolute URI `base`.
fn resolve(base: &str, reference: &str) -> String {
    if has_scheme(reference) {
        return reference.to_owned();
    }
    let base = without_fragment(base);
    if reference.is_empty() {
        return base.to_owned();
    }
    if reference.starts_with('#') {
        return format!("{base}{reference}");
    }
    let scheme_end = base.find(':').map_or(0, |i| i + 1);
    let (scheme, rest) = base.split_at(scheme_end);
    if reference.starts_with("//") {
        return format!("{scheme}{reference}");
    }
    // The authority, if the base has one, and the path after it.
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (&rest[..end + 2], &after[end..])
        }
        None => ("", rest),
    };
    let path = match reference.strip_prefix('/') {
        Some(_) => reference.to_owned(),
        None => match path.rfind('/') {
            Some(i) => format!("{}{reference}", &path[..=i]),
            None if authority.is_empty() => reference.to_owned(),
            None => format!("/{reference}"),
        },
    };
    format!("{scheme}{authority}{}", without_dot_segments(&path))
}

/// Whether `reference` starts with a URI scheme (`https:`, `urn:`).
fn has_scheme(reference: &str) -> bool {
    let Some(colon) = reference.find(':') else {
        return false;
    };
    let scheme = &reference[..colon];
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// A path's `.` and `..` segments applied (the query and fragment kept).
fn without_dot_segments(path: &str) -> String {
    let split = path.find(['?', '#']).unwrap_or(path.len());
    let (path, tail) = path.split_at(split);
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("{}{tail}", out.join("/"))
}

/// A URI fragment's percent-escapes decoded (`None` when they are not
/// UTF-8 or malformed).
pub(super) fn percent_decoded(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_against_a_base() {
        let base = "http://example.com/schemas/root.json";
        for (reference, absolute) in [
            ("#/a", "http://example.com/schemas/root.json#/a"),
            ("other.json", "http://example.com/schemas/other.json"),
            ("other.json#x", "http://example.com/schemas/other.json#x"),
            ("../up.json", "http://example.com/up.json"),
            ("./same.json", "http://example.com/schemas/same.json"),
            ("/abs.json", "http://example.com/abs.json"),
            ("//other.org/x", "http://other.org/x"),
            ("urn:uuid:1234#/a", "urn:uuid:1234#/a"),
            ("", "http://example.com/schemas/root.json"),
        ] {
            assert_eq!(resolve(base, reference), absolute, "{reference}");
        }
        assert_eq!(resolve("urn:x:y", "#/a"), "urn:x:y#/a");
        assert_eq!(resolve(DEFAULT_BASE, "a.json"), "f3dx-schema:/a.json");
    }
}
