//! Key paths in config errors, unknown and repeated keys.
//!
//! An error names where the problem is, never a value from the config (it
//! may be a key pasted in the wrong place). A key the schema knows is a safe
//! word and is named (`providers[1].timeout_ms`); any other key is itself a
//! value from the config, so it is named by its position in its object,
//! counting from 1 (`providers[1].#3`). The Python package's file loader
//! (`python/f3dx_router/_config.py`) writes paths and these messages the
//! same way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::error::{err, ConfigError};

/// The router-level keys (the config object's own), in the order the
/// unknown-key message lists them.
pub const ROUTER_KEYS: &[&str] = &[
    "providers",
    "policy",
    "hedge_k",
    "hedge_delay_ms",
    "hedge_delay_fallback_ms",
    "hedge_budget",
    "health",
    "quality",
    "models",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "failover_on",
    "retries",
    "backoff_ms",
    "backoff_max_ms",
    "unsupported_params",
    "forward_headers",
];

/// A model group's keys (a group given as an object).
pub const GROUP_KEYS: &[&str] = &[
    "deployments",
    "policy",
    "hedge_k",
    "hedge_delay_ms",
    "hedge_delay_fallback_ms",
    "hedge_budget",
    "quality",
    "failover_on",
    "retries",
    "backoff_ms",
    "backoff_max_ms",
    "unsupported_params",
    "forward_headers",
];

/// A deployment's keys (one entry of a model group).
pub const DEPLOYMENT_KEYS: &[&str] = &[
    "provider",
    "model",
    "weight",
    "rpm",
    "tpm",
    "timeout_ms",
    "context_window",
    "params",
    "headers",
    "failover_on",
    "retries",
    "backoff_ms",
    "backoff_max_ms",
    "structured_output",
    "unsupported_params",
];

/// A provider's keys.
pub const PROVIDER_KEYS: &[&str] = &[
    "name",
    "kind",
    "base_url",
    "api_key",
    "api_key_env",
    "timeout_ms",
    "stream_idle_timeout_ms",
    "weight",
    "model",
    "headers",
    "max_body_bytes",
    "rpm",
    "tpm",
    "azure_api",
    "api_version",
    "auth",
];

/// `health`'s keys.
pub const HEALTH_KEYS: &[&str] = &[
    "window_s",
    "buckets",
    "min_requests",
    "max_error_rate",
    "consecutive_failures",
    "ejection_s",
    "max_ejection_s",
];

/// `quality`'s keys.
pub const QUALITY_KEYS: &[&str] = &[
    "window",
    "min_samples",
    "min_pass_rate",
    "probe_after_s",
    "on_failure",
    "max_keys",
    "max_bytes",
];

/// Keys of the Python host only (refused here with their own message).
pub const HOST_KEYS: &[&str] = &["otel"];

/// The error for `otel` in a core config: the Python package's Router
/// takes it itself and never passes it here; any other host (the Worker)
/// does not trace.
pub(super) fn otel_refused() -> ConfigError {
    err(
        "config.otel",
        "OpenTelemetry tracing is an option of the Python package's Router \
         (Router(..., otel=True)); this host does not trace: remove the key",
    )
}

/// Whether an error may name `key`: it is one of the schema's own words.
pub(super) fn is_schema_key(key: &str) -> bool {
    [
        ROUTER_KEYS,
        PROVIDER_KEYS,
        GROUP_KEYS,
        DEPLOYMENT_KEYS,
        HEALTH_KEYS,
        QUALITY_KEYS,
        HOST_KEYS,
    ]
    .iter()
    .any(|keys| keys.contains(&key))
}

/// Objects whose keys are model group names, which errors name (JSON-quoted:
/// `models["gpt-4o"]`) as every table error does.
const GROUP_MAPS: &[&str] = &[
    "models",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
];

/// The path of `key`, the key at `index` (from 0) of the object at `at`
/// (`"config"` for the config itself, whose keys stand alone: `policy`).
pub(super) fn key_path(at: &str, key: &str, index: usize) -> String {
    if GROUP_MAPS.contains(&at) {
        return format!("{at}[{}]", serde_json::to_string(key).unwrap_or_default());
    }
    match (is_schema_key(key), at) {
        (true, "config") => key.to_owned(),
        (true, _) => format!("{at}.{key}"),
        (false, _) => format!("{at}.#{}", index + 1),
    }
}

/// The first key of `obj` that is not in `known`, as an error naming its
/// position and, when it is close to a known key, that key.
pub(super) fn reject_unknown(
    obj: &Map<String, Value>,
    at: &str,
    known: &[&str],
) -> Result<(), ConfigError> {
    match obj
        .keys()
        .enumerate()
        .find(|(_, k)| !known.contains(&k.as_str()))
    {
        Some((index, key)) => Err(err(
            key_path(at, key, index),
            unknown_key_message(key, known),
        )),
        None => Ok(()),
    }
}

/// `unknown key (did you mean timeout_ms?); expected one of: ...`: the
/// unknown key itself is never repeated.
pub(super) fn unknown_key_message(key: &str, known: &[&str]) -> String {
    let hint = suggestion(key, known)
        .map(|k| format!(" (did you mean {k}?)"))
        .unwrap_or_default();
    format!("unknown key{hint}; expected one of: {}", known.join(", "))
}

/// The known key `key` was probably meant to be: the same up to case and
/// `-` for `_`, else the closest within two edits (one for a known key of
/// up to 4 characters: `tim` is not `rpm`), else the first one it begins
/// (`timeout` for `timeout_ms`, at least 4 characters).
pub(super) fn suggestion<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    // A typo is short: a long key is a value pasted in the wrong place.
    if key.len() > 64 {
        return None;
    }
    let typed: Vec<char> = key.to_lowercase().replace('-', "_").chars().collect();
    let closest = known
        .iter()
        .map(|k| (edit_distance(&typed, &k.chars().collect::<Vec<_>>()), *k))
        .filter(|(d, k)| *d <= if k.len() <= 4 { 1 } else { 2 })
        .min_by_key(|(d, _)| *d);
    if let Some((_, k)) = closest {
        return Some(k);
    }
    let typed: String = typed.into_iter().collect();
    known
        .iter()
        .find(|k| typed.chars().count() >= 4 && k.starts_with(typed.as_str()))
        .copied()
}

/// Levenshtein distance (insertions, deletions, substitutions).
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The error for the key at `index` of the object at `at` that repeats the
/// one at `first`.
pub(super) fn repeated_key(at: &str, key: &str, first: usize, index: usize) -> ConfigError {
    if is_schema_key(key) || GROUP_MAPS.contains(&at) {
        err(
            key_path(at, key, first),
            format!(
                "is given twice (keys #{} and #{}); give each key once",
                first + 1,
                index + 1
            ),
        )
    } else {
        err(
            key_path(at, key, index),
            format!("repeats key #{}; give each key once", first + 1),
        )
    }
}

/// JSON text as a [`Value`], refusing an object that repeats a key
/// (`serde_json` keeps the last silently, and a config whose meaning
/// depends on which copy wins is a mistake).
pub(super) fn parse_json_text(text: &str) -> Result<Value, ConfigError> {
    let not_json = |e: serde_json::Error| err("config", format!("is not valid JSON: {e}"));
    let value: Value = serde_json::from_str(text).map_err(not_json)?;
    // A second pass over the (valid) text finds repeated keys: the first
    // one's `Value` has lost them.
    let found = RefCell::new(None);
    let seed = RepeatedKeys {
        at: "config".to_owned(),
        found: &found,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    match seed.deserialize(&mut de) {
        Ok(()) => Ok(value),
        Err(e) => Err(found.into_inner().unwrap_or_else(|| not_json(e))),
    }
}

/// Walks JSON and stops at the first object that repeats a key, leaving
/// the error in `found`.
struct RepeatedKeys<'a> {
    at: String,
    found: &'a RefCell<Option<ConfigError>>,
}

impl<'de> DeserializeSeed<'de> for RepeatedKeys<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RepeatedKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(RepeatedKeys {
                at: format!("{}[{index}]", self.at),
                found: self.found,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    // With serde_json's `arbitrary_precision` (the Python crate turns it
    // on), a number arrives as a one-key map: one key repeats nothing.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let index = seen.len();
            if let Some(&first) = seen.get(&key) {
                *self.found.borrow_mut() = Some(repeated_key(&self.at, &key, first, index));
                return Err(de::Error::custom("repeated key"));
            }
            map.next_value_seed(RepeatedKeys {
                at: key_path(&self.at, &key, index),
                found: self.found,
            })?;
            seen.insert(key, index);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_schema_keys_and_number_the_others() {
        assert_eq!(key_path("config", "policy", 3), "policy");
        assert_eq!(key_path("config", "sk-live-123", 3), "config.#4");
        assert_eq!(
            key_path("providers[0]", "timeout_ms", 0),
            "providers[0].timeout_ms"
        );
        assert_eq!(
            key_path("providers[0].headers", "x-org", 1),
            "providers[0].headers.#2"
        );
    }

    #[test]
    fn suggestions() {
        let cases = [
            ("timeout", Some("timeout_ms")),
            ("timeout_msec", Some("timeout_ms")),
            ("Timeout-MS", Some("timeout_ms")),
            ("api-key", Some("api_key")),
            ("apikey", Some("api_key")),
            ("base_uri", Some("base_url")),
            ("nme", Some("name")),
            ("tpn", Some("tpm")),
            ("sk-live-0123456789abcdef", None),
            ("x", None),
            ("tim", Some("tpm")),
            ("xyz", None),
        ];
        for (typed, want) in cases {
            assert_eq!(suggestion(typed, PROVIDER_KEYS), want, "{typed}");
        }
        assert_eq!(suggestion(&"a".repeat(100_000), PROVIDER_KEYS), None);
    }

    #[test]
    fn repeated_keys_are_refused_with_their_path() {
        let cases = [
            (
                r#"{"policy": "hedged", "policy": "sequential"}"#,
                "policy",
                "keys #1 and #2",
            ),
            (
                r#"{"providers": [{"name": "a"}, {"name": "b", "kind": "openai", "name": "c"}]}"#,
                "providers[1].name",
                "keys #1 and #3",
            ),
            (
                r#"{"providers": [{"headers": {"x-a": "1", "x-b": "2", "x-a": "sk-PLANTED"}}]}"#,
                "providers[0].headers.#3",
                "repeats key #1",
            ),
            (
                r#"{"sk-PLANTED": 1, "sk-PLANTED": 2}"#,
                "config.#2",
                "repeats key #1",
            ),
            (
                r#"{"health": {"window_s": 1.5e3, "window_s": 123456789012345678901234567890}}"#,
                "health.window_s",
                "twice",
            ),
        ];
        for (text, field, needle) in cases {
            let e = parse_json_text(text).expect_err(text);
            assert_eq!(e.field, field, "{text}");
            assert!(e.message.contains(needle), "{e}");
            assert!(!e.to_string().contains("PLANTED"), "{e}");
        }
        // Numbers of any size, strings, nesting: no repeat, no error.
        let ok = r#"{"a": [1, -2, 3.5, 1e300, 123456789012345678901234567890, "x", null, true, {"a": {}}]}"#;
        assert!(parse_json_text(ok).is_ok());
    }

    #[test]
    fn invalid_json_says_where_not_what() {
        let e = parse_json_text("{\"api_key\": \"sk-PLANTED\n").unwrap_err();
        assert_eq!(e.field, "config");
        assert!(e.message.starts_with("is not valid JSON: "), "{e}");
        assert!(e.message.contains("line"), "{e}");
        assert!(!e.message.contains("PLANTED"), "{e}");
    }
}
