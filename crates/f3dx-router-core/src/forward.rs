//! Caller headers (`forward_headers`): which of a call's own headers go to
//! its providers, the names never forwarded whatever a config says, and
//! the checks a forwarded value passes before anything is sent. One place
//! for every host: the Python call methods, the Python transports and the
//! Worker only hand the caller's headers over.

use std::fmt;

/// Header names never forwarded, whatever `forward_headers` lists:
/// credentials (the provider's own auth is the router's to send, and a
/// caller's cookie is not the provider's), hop-by-hop headers (they belong
/// to the caller's connection, not to the router's), and framing (the
/// router writes the body, so it says how long it is and what it is).
pub const NEVER_FORWARDED: &[&str] = &[
    // Credentials.
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "set-cookie",
    // Hop-by-hop (RFC 9110 7.6.1).
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    // Framing and the connection's own.
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "accept-encoding",
    "expect",
];

/// Name prefixes never forwarded: `proxy-*` (hop-by-hop) and `x-f3dx-*`
/// (the router's own headers, which speak to the router, not upstream).
pub const NEVER_FORWARDED_PREFIXES: &[&str] = &["proxy-", "x-f3dx-"];

/// Longest forwarded value, in bytes.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// Most names one `forward_headers` list may hold.
pub const MAX_NAMES: usize = 64;

/// Longest name in a `forward_headers` list.
pub const MAX_NAME_LEN: usize = 128;

/// Whether `name` (lower case) is never forwarded.
pub fn is_never_forwarded(name: &str) -> bool {
    NEVER_FORWARDED.contains(&name) || NEVER_FORWARDED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Whether `name` is an HTTP header name (RFC 9110 token characters).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The headers a caller gave with a call, as given (any case, repeats
/// kept). Only those the call's `forward_headers` list names are read;
/// the rest cost nothing. `Debug` lists names only: a value may be a
/// secret of the caller's.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallerHeaders(Vec<(String, String)>);

impl CallerHeaders {
    /// No headers.
    pub fn new() -> CallerHeaders {
        CallerHeaders(Vec::new())
    }

    /// Add one header (a repeated name adds a value).
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many (name, value) pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for CallerHeaders {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        CallerHeaders(
            iter.into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for CallerHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// The caller's headers that `allowed` (lower-case names, none of them
/// never forwarded) lets through, in the list's order, lower-cased. A name
/// the caller gave more than once goes once, its values joined by `", "`
/// (as HTTP reads a repeated field). `Err` names the first header whose
/// value cannot be sent: a line break or another byte that is not
/// printable ASCII, space or tab, or more than [`MAX_VALUE_BYTES`]. The
/// message never holds the value.
pub(crate) fn select(
    caller: &CallerHeaders,
    allowed: &[String],
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for name in allowed {
        let mut value: Option<String> = None;
        for (n, v) in &caller.0 {
            if n.eq_ignore_ascii_case(name) {
                match &mut value {
                    Some(joined) => {
                        joined.push_str(", ");
                        joined.push_str(v);
                    }
                    None => value = Some(v.clone()),
                }
            }
        }
        if let Some(value) = value {
            check_value(name, &value)?;
            out.push((name.clone(), value));
        }
    }
    Ok(out)
}

fn check_value(name: &str, value: &str) -> Result<(), String> {
    let refuse = |why: &str| {
        Err(format!(
            "the forwarded header {name:?} {why}; nothing was sent"
        ))
    };
    if value.len() > MAX_VALUE_BYTES {
        return refuse(&format!(
            "has a value over {MAX_VALUE_BYTES} bytes ({} bytes)",
            value.len()
        ));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return refuse("has a line break (CR or LF) in its value");
    }
    if value
        .bytes()
        .any(|b| !(b == b'\t' || (b' '..=b'~').contains(&b)))
    {
        return refuse(
            "has a character in its value that is not printable ASCII, a space or a tab",
        );
    }
    Ok(())
}

/// Add `forwarded` to a request's `headers`: a name the request has
/// already (the router's own, the provider's or the deployment's
/// configured `headers`) keeps its value.
pub(crate) fn add(headers: &mut Vec<(String, String)>, forwarded: &[(String, String)]) {
    for (name, value) in forwarded {
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            headers.push((name.clone(), value.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn only_listed_names_go_case_insensitively_and_repeats_join() {
        let caller: CallerHeaders = [
            ("X-Request-Id", "r1"),
            ("x-other", "no"),
            ("Anthropic-Beta", "a"),
            ("anthropic-beta", "b"),
        ]
        .into_iter()
        .collect();
        let out = select(
            &caller,
            &names(&["x-request-id", "anthropic-beta", "x-absent"]),
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                ("x-request-id".to_owned(), "r1".to_owned()),
                ("anthropic-beta".to_owned(), "a, b".to_owned()),
            ]
        );
        assert!(select(&caller, &[]).unwrap().is_empty());
    }

    #[test]
    fn bad_values_are_refused_naming_the_header_not_the_value() {
        for bad in [
            "secret\r\nx-evil: 1".to_owned(),
            "secret\nline".to_owned(),
            "secret\u{0}".to_owned(),
            "s\u{e9}cret".to_owned(),
            "s".repeat(MAX_VALUE_BYTES + 1),
        ] {
            let caller: CallerHeaders = [("x-request-id", bad.as_str())].into_iter().collect();
            let e = select(&caller, &names(&["x-request-id"])).unwrap_err();
            assert!(e.contains("\"x-request-id\""), "{e}");
            assert!(!e.contains("secret") && !e.contains("sss"), "{e}");
        }
        // Not listed: not read, so not refused.
        let caller: CallerHeaders = [("x-other", "a\nb")].into_iter().collect();
        assert!(select(&caller, &names(&["x-request-id"]))
            .unwrap()
            .is_empty());
        // The largest value and a tab pass.
        let ok = format!("a\t{}", "b".repeat(MAX_VALUE_BYTES - 2));
        let caller: CallerHeaders = [("x-request-id", ok.as_str())].into_iter().collect();
        assert_eq!(select(&caller, &names(&["x-request-id"])).unwrap().len(), 1);
    }

    #[test]
    fn configured_headers_keep_their_value() {
        let mut headers = vec![("x-org".to_owned(), "configured".to_owned())];
        add(
            &mut headers,
            &[
                ("x-org".to_owned(), "caller".to_owned()),
                ("x-request-id".to_owned(), "r1".to_owned()),
            ],
        );
        assert_eq!(
            headers,
            vec![
                ("x-org".to_owned(), "configured".to_owned()),
                ("x-request-id".to_owned(), "r1".to_owned()),
            ]
        );
    }

    #[test]
    fn never_forwarded_and_names() {
        for name in [
            "authorization",
            "proxy-connection",
            "x-f3dx-tenant",
            "cookie",
            "host",
        ] {
            assert!(is_never_forwarded(name), "{name}");
        }
        assert!(!is_never_forwarded("x-request-id"));
        assert!(is_header_name("OpenAI-Organization"));
        for bad in ["", "a b", "a:b", "é", "a\n"] {
            assert!(!is_header_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn debug_shows_names_only() {
        let caller: CallerHeaders = [("x-token", "hunter2")].into_iter().collect();
        let shown = format!("{caller:?}");
        assert!(shown.contains("x-token") && !shown.contains("hunter2"));
    }
}
