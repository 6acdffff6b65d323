//! `secret::redact`: a secret drawn from the input (8 to 64 printable ASCII
//! characters), written into arbitrary text in any mix of JSON escapes
//! (plain, `\uXXXX` in either case, `\/`, `\"`, `\\`), never survives:
//! no stretch of the output between two placeholders holds the secret,
//! plain or in the form it was written. Never panics, on any text and any
//! secrets.
#![no_main]

mod json_escape;

use arbitrary::Arbitrary;
use f3dx_router_core::secret::{redact, REDACTED};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Mapped onto printable ASCII.
    secret: &'a [u8],
    /// Per character: plain or which escape (see `json_escape::escape`).
    escapes: &'a [u8],
    before: &'a str,
    after: &'a str,
    /// A second secret, redacted in the same call.
    other: &'a str,
    twice: bool,
}

fuzz_target!(|input: Input| {
    // Anything at all: no panic.
    let _ = redact(input.before, &[input.after, input.other]);
    let _ = redact(input.other, &[input.before]);

    let secret: String = input
        .secret
        .iter()
        .take(64)
        .map(|b| char::from(0x20 + b % 95))
        .collect();
    if secret.len() < 8 || secret.contains(REDACTED) {
        return;
    }
    let written = json_escape::escape(&secret, input.escapes);
    let mut text = format!("{}{written}{}", input.before, input.after);
    if input.twice {
        text.push_str(&secret);
    }
    let out = redact(&text, &[input.other, &secret]);
    for piece in out.split(REDACTED) {
        assert!(
            !piece.contains(&secret) && !piece.contains(&written),
            "secret {secret:?} written as {written:?} survives in {out:?} (from {text:?})"
        );
    }
});
