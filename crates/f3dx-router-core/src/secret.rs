//! A string that never prints, and the redaction of credentials from
//! upstream text.

use std::fmt;

/// An API key or other credential. `Debug` and `Display` print a fixed
/// placeholder, so a config or error can be logged without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself; call only where it goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a redacted credential is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Shorter values are not redacted: they would match ordinary words.
pub const MIN_REDACTED_LEN: usize = 4;

/// `text` with every occurrence of each secret replaced by [`REDACTED`],
/// however JSON escapes it: an upstream that echoes the key may write any
/// character as `\uXXXX` (either case), `/` as `\/` (PHP) and `"` as `\"`,
/// and text quoted twice doubles the backslashes; one that echoes a URL
/// writes it percent-encoded (`%2F`). Each character of a secret is matched
/// literally or by any of those escapes, so one pass over the raw text
/// covers every mix of them; the decoded text is the plain case.
///
/// Secrets shorter than [`MIN_REDACTED_LEN`] are left alone.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= MIN_REDACTED_LEN) {
        out = redact_one(&out, secret.as_bytes());
    }
    out
}

fn redact_one(text: &str, secret: &[u8]) -> String {
    let bytes = text.as_bytes();
    let first = secret[0];
    let mut out = String::new();
    let mut copied = 0; // bytes of `text` already in `out`
    let mut i = 0;
    while i < bytes.len() {
        // A match starts with the first character or an escape of it.
        if bytes[i] == first || bytes[i] == b'\\' || bytes[i] == b'%' {
            if let Some(end) = match_at(bytes, i, secret) {
                out.push_str(&text[copied..i]);
                out.push_str(REDACTED);
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    if copied == 0 {
        return text.to_owned();
    }
    out.push_str(&text[copied..]);
    out
}

/// Where a match of `secret` starting at `at` ends, if one does. A
/// character may be written several ways (a backslash of the secret as
/// `\`, `\\`, `\\\\` or `\u005c`), so this searches the ways, each
/// (character, position) pair once: at most `secret.len() * text.len()`
/// steps, and one step per character when the secret has no backslash.
fn match_at(text: &[u8], at: usize, secret: &[u8]) -> Option<usize> {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![(0usize, at)];
    while let Some((k, j)) = stack.pop() {
        if k == secret.len() {
            return Some(j);
        }
        if !seen.insert((k, j)) {
            continue;
        }
        for end in char_ends(text, j, secret[k]).into_iter().flatten() {
            stack.push((k + 1, end));
        }
    }
    None
}

/// The positions after one character `c` of a secret written at `j`:
/// literally, percent-encoded, or as a JSON escape behind one or more
/// backslashes (text quoted more than once doubles them).
fn char_ends(text: &[u8], j: usize, c: u8) -> [Option<usize>; 4] {
    let mut ends = [None; 4];
    let Some(&b) = text.get(j) else {
        return ends;
    };
    if b == c {
        ends[0] = Some(j + 1);
    }
    if b == b'%' {
        let code = text
            .get(j + 1..j + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if code == Some(c) {
            ends[1] = Some(j + 3);
        }
    }
    if b != b'\\' {
        return ends;
    }
    let run = text[j..].iter().take_while(|&&b| b == b'\\').count();
    if c == b'\\' {
        // An escaped backslash: `\\` once quoted, `\\\\` twice.
        if run >= 2 {
            ends[2] = Some(j + 2);
        }
        if run >= 4 {
            ends[3] = Some(j + 4);
        }
    }
    // An escape after the run of backslashes that quote it.
    let next = j + run;
    let escaped = match text.get(next) {
        Some(b'u') => text
            .get(next + 1..next + 5)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .is_some_and(|code| code == u32::from(c))
            .then_some(next + 5),
        Some(&e) if e == c && matches!(c, b'/' | b'"') => Some(next + 1),
        Some(b't') if c == b'\t' => Some(next + 1),
        _ => None,
    };
    if escaped.is_some() {
        ends[1] = escaped;
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-ab/cd\"ef";

    fn escaped_forms() -> Vec<String> {
        let all_u: String = KEY
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let all_u_upper: String = KEY
            .chars()
            .map(|c| format!("\\u{:04X}", c as u32))
            .collect();
        vec![
            KEY.to_owned(),
            serde_json::to_string(KEY).unwrap(),          // \"
            KEY.replace('/', "\\/").replace('"', "\\\""), // PHP
            KEY.replace('/', "\\u002f").replace('"', "\\u0022"), // Go
            all_u,
            all_u_upper,
            // Quoted twice: JSON text inside a JSON string.
            serde_json::to_string(&serde_json::to_string(KEY).unwrap()).unwrap(),
            KEY.replace('/', "\\\\\\/").replace('"', "\\\\\\\""),
            // Percent-encoded, as in an echoed URL, in either case.
            KEY.replace('/', "%2F").replace('"', "%22"),
            KEY.bytes().map(|b| format!("%{b:02x}")).collect(),
        ]
    }

    #[test]
    fn every_json_escaping_of_a_secret_is_redacted() {
        for form in escaped_forms() {
            let text = format!("{{\"error\": \"bad key {form} given\"}}");
            let out = redact(&text, &[KEY]);
            assert!(out.contains(REDACTED), "{form}: {out}");
            assert!(
                !out.contains("sk-ab") && !out.contains("cd"),
                "{form}: {out}"
            );
            assert!(out.starts_with("{\"error\": \"bad key ") && out.ends_with(" given\"}"));
        }
    }

    #[test]
    fn text_without_the_secret_is_unchanged() {
        let text = "no key here: sk-ab\\/c \\u0073k \\\\ \\";
        assert_eq!(redact(text, &[KEY]), text);
        assert_eq!(redact("sk-x", &["abc"]), "sk-x"); // too short to redact
        assert_eq!(redact("", &[KEY]), "");
    }

    #[test]
    fn backslashes_of_a_key_in_every_form() {
        let key = "ab\\\\cd\\ef"; // ab\\cd\ef: three backslashes
        for form in [
            key.to_owned(),
            serde_json::to_string(key).unwrap(),
            serde_json::to_string(&serde_json::to_string(key).unwrap()).unwrap(),
            key.replace('\\', "\\u005c"),
            key.replace('\\', "\\u005C"),
            key.replace('\\', "%5C"),
        ] {
            let out = redact(&format!("x {form} y"), &[key]);
            assert!(
                out.contains(REDACTED) && !out.contains("ab") && !out.contains("cd"),
                "{form}: {out}"
            );
        }
        // The fuzzer's cases: a backslash as \u005c right after an escaped
        // backslash, and two backslashes in a row.
        for (key, text) in [
            ("k\\\\u-0123", "k\\\\\\\\u-0123"),
            ("12345678\\\\", "12345678\\u005c\\\\"),
            ("\\\\abcdefgh", "\\\\abcdefgh"),
        ] {
            let out = redact(text, &[key]);
            assert!(
                !out.contains("abcdefgh") && !out.contains("0123") && !out.contains("5678"),
                "{key:?} in {text:?}: {out}"
            );
        }
    }

    #[test]
    fn several_occurrences_and_secrets() {
        let out = redact(
            "a sk-ab/cd\"ef b sk-ab\\/cd\\\"ef c tok-12345678",
            &[KEY, "tok-12345678"],
        );
        assert_eq!(out, "a <redacted> b <redacted> c <redacted>");
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("sk-live-123");
        assert!(!format!("{s:?}").contains("sk-live"));
        assert!(!format!("{s}").contains("sk-live"));
        assert_eq!(s.expose(), "sk-live-123");
    }
}
