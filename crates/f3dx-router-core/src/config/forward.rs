//! `forward_headers` at the router's level and a group's: the caller's
//! headers a call copies to its attempts. A group's list replaces the
//! router's (`[]` forwards none for that group); names are HTTP header
//! names, compared without case. A name that is never forwarded
//! ([`crate::forward::NEVER_FORWARDED`]) is accepted, left out of the
//! list, and warned about.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::{err, ConfigError};
use crate::forward::{is_header_name, is_never_forwarded, MAX_NAMES, MAX_NAME_LEN};

/// The key, at both levels.
pub(super) const KEY: &str = "forward_headers";

fn path(at: &str) -> String {
    if at.is_empty() {
        KEY.to_owned()
    } else {
        format!("{at}.{KEY}")
    }
}

/// The list at `obj` (a router or a group at `at`), or `inherited` when
/// it has none: lower-case names, each once, never-forwarded ones left out.
pub(super) fn read(
    obj: &Map<String, Value>,
    at: &str,
    inherited: &Arc<[String]>,
) -> Result<Arc<[String]>, ConfigError> {
    let list = match obj.get(KEY) {
        None | Some(Value::Null) => return Ok(Arc::clone(inherited)),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(err(
                path(at),
                "must be a list of header names (e.g. [\"x-request-id\"])",
            ))
        }
    };
    if list.len() > MAX_NAMES {
        return Err(err(path(at), format!("has more than {MAX_NAMES} names")));
    }
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let at_i = format!("{}[{i}]", path(at));
        let Some(name) = v.as_str() else {
            return Err(err(at_i, "must be a header name (a string)"));
        };
        if name.len() > MAX_NAME_LEN {
            return Err(err(at_i, format!("is over {MAX_NAME_LEN} bytes")));
        }
        if !is_header_name(name) {
            return Err(err(
                at_i,
                "is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)",
            ));
        }
        let name = name.to_ascii_lowercase();
        if !is_never_forwarded(&name) && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names.into())
}

/// A warning for each never-forwarded name listed in `obj` (the router
/// at `""`, or a group at its path).
pub(super) fn warnings(obj: &Map<String, Value>, at: &str) -> Vec<ConfigError> {
    let Some(Value::Array(list)) = obj.get(KEY) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate().take(MAX_NAMES) {
        let Some(name) = v.as_str() else { continue };
        if name.len() <= MAX_NAME_LEN && is_never_forwarded(&name.to_ascii_lowercase()) {
            out.push(err(
                format!("{}[{i}]", path(at)),
                "is never forwarded (credentials, hop-by-hop, framing and x-f3dx-* \
                 headers are the router's to send): it has no effect",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_at(v: Value, at: &str) -> Result<Vec<String>, ConfigError> {
        let inherited: Arc<[String]> = vec!["x-from-router".to_owned()].into();
        read(v.as_object().unwrap(), at, &inherited).map(|l| l.to_vec())
    }

    #[test]
    fn names_lowered_once_and_never_forwarded_left_out() {
        let got = read_at(
            json!({"forward_headers": ["X-Request-Id", "x-request-id", "Authorization", "OpenAI-Organization"]}),
            "",
        )
        .unwrap();
        assert_eq!(got, ["x-request-id", "openai-organization"]);
        assert_eq!(read_at(json!({}), "").unwrap(), ["x-from-router"]);
        assert!(read_at(json!({"forward_headers": []}), "")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn bad_lists_name_the_key_path() {
        let at = "models[\"gpt\"]";
        for (v, field) in [
            (
                json!({"forward_headers": "x-a"}),
                "models[\"gpt\"].forward_headers",
            ),
            (
                json!({"forward_headers": ["ok", "a b"]}),
                "models[\"gpt\"].forward_headers[1]",
            ),
            (
                json!({"forward_headers": [7]}),
                "models[\"gpt\"].forward_headers[0]",
            ),
            (
                json!({"forward_headers": [""]}),
                "models[\"gpt\"].forward_headers[0]",
            ),
            (
                json!({"forward_headers": ["x:y"]}),
                "models[\"gpt\"].forward_headers[0]",
            ),
        ] {
            assert_eq!(read_at(v, at).unwrap_err().field, field);
        }
    }

    #[test]
    fn warns_for_never_forwarded_names() {
        let obj = json!({"forward_headers": ["x-a", "Cookie", "proxy-foo", 7]});
        let fields: Vec<String> = warnings(obj.as_object().unwrap(), "models[\"g\"]")
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "models[\"g\"].forward_headers[1]",
                "models[\"g\"].forward_headers[2]"
            ]
        );
    }
}
