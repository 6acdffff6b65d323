//! A secret written the way a JSON encoder may write it: each character
//! plain or escaped, as the fuzzer chooses; and (for `redact`) the other
//! ways upstreams echo one: percent-encoded, HTML references, base64.

/// `secret` with character `i` written in the form `choices[i]` picks
/// (cycled; plain when there are no choices): plain, `\uXXXX` in lower or
/// upper case hex, or the short escape (`\/`, `\"`, `\\`) where there is one.
pub fn escape(secret: &str, choices: &[u8]) -> String {
    let mut out = String::with_capacity(secret.len() * 6);
    for (i, c) in secret.chars().enumerate() {
        let choice = if choices.is_empty() {
            0
        } else {
            choices[i % choices.len()]
        };
        let short = match c {
            '/' => Some("\\/"),
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            _ => None,
        };
        match (choice % 4, short) {
            (1, _) => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            (2, _) => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            (3, Some(s)) => out.push_str(s),
            _ => out.push(c),
        }
    }
    out
}

/// As [`escape`], with more ways to write a character (`choices[i] % 9`):
/// those four, then percent-encoded (upper, then lower case hex),
/// percent-encoded twice (`%252F`), an HTML decimal reference (`&#47;`), a
/// hex one (`&#x2F;`), or a named one where HTML has a name (else plain).
#[allow(dead_code)] // the redact target's only
pub fn escape_any(secret: &str, choices: &[u8]) -> String {
    let mut out = String::with_capacity(secret.len() * 6);
    for (i, c) in secret.chars().enumerate() {
        let choice = if choices.is_empty() {
            0
        } else {
            choices[i % choices.len()]
        };
        let code = u32::from(c);
        match choice % 9 {
            4 => out.push_str(&format!("%{code:02X}")),
            5 => out.push_str(&format!("%25{code:02x}")),
            6 => out.push_str(&format!("&#{code};")),
            7 => out.push_str(&format!("&#x{code:X};")),
            8 => match html_name(c) {
                Some(name) => out.push_str(&format!("&{name};")),
                None => out.push(c),
            },
            n => out.push_str(&escape(&c.to_string(), &[n])),
        }
    }
    out
}

/// HTML's name for some ASCII punctuation.
fn html_name(c: char) -> Option<&'static str> {
    Some(match c {
        '&' => "amp",
        '<' => "lt",
        '>' => "gt",
        '"' => "quot",
        '\'' => "apos",
        '/' => "sol",
        '-' => "minus",
        '_' => "lowbar",
        '.' => "period",
        '=' => "equals",
        '+' => "plus",
        ':' => "colon",
        _ => return None,
    })
}

/// `bytes` in base64 with padding (URL-safe alphabet when `url`).
#[allow(dead_code)] // the redact target's only
pub fn base64(bytes: &[u8], url: bool) -> String {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use base64::Engine as _;
    if url {
        URL_SAFE.encode(bytes)
    } else {
        STANDARD.encode(bytes)
    }
}

/// The characters of `secret`'s base64 (after `align` other bytes) that
/// encode only its bits, computed from a whole encoding.
#[allow(dead_code)] // the redact target's only
pub fn base64_core(secret: &[u8], align: usize, url: bool) -> String {
    let mut bytes = vec![0u8; align];
    bytes.extend_from_slice(secret);
    let encoded = base64(&bytes, url);
    // Character t holds bits 6t..6t+6; the secret's are 8 align..8 (align + len).
    let first = (8 * align).div_ceil(6);
    let last = 8 * (align + secret.len()) / 6;
    encoded[first..last].to_owned()
}
