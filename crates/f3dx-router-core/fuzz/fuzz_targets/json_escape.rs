//! A secret written the way a JSON encoder may write it: each character
//! plain or escaped, as the fuzzer chooses.

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
