//! `secret::redact`: a secret drawn from the input (8 to 64 printable ASCII
//! characters) never survives, written into arbitrary text in any of these
//! ways: each character plain, JSON-escaped (`\uXXXX` in either case, `\/`,
//! `\"`, `\\`), percent-encoded once or twice, or as an HTML character
//! reference (decimal, hex, named), in any mix; a run of 16 or more of its
//! consecutive characters (a prefix, a suffix, a middle part) written the
//! same ways; or its base64 encoding, standard or URL-safe, after 0 to 2
//! other bytes (the three alignments). No stretch of the output between two
//! placeholders holds the secret (or the run) plain or in the form it was
//! written, nor the base64 characters that encode only the secret. Never
//! panics, on any text and any secrets.
#![no_main]

mod json_escape;

use arbitrary::Arbitrary;
use f3dx_router_core::internals::secret::{redact, REDACTED};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Mapped onto printable ASCII.
    secret: &'a [u8],
    /// Per character: plain or which escape (see `json_escape::escape_any`).
    escapes: &'a [u8],
    before: &'a str,
    after: &'a str,
    /// A second secret, redacted in the same call.
    other: &'a str,
    twice: bool,
    /// What is written: the whole secret, a run of it, or its base64.
    shape: Shape,
}

#[derive(Arbitrary, Debug)]
enum Shape {
    Whole,
    /// A run from `start` of `len` characters (both wrapped into range, at
    /// least 16 long).
    Run {
        start: u8,
        len: u8,
    },
    /// `align` bytes (0 to 2) before the secret, `tail` after it, in
    /// base64 (URL-safe when `url`).
    Base64 {
        align: u8,
        tail: u8,
        url: bool,
    },
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
    // What is written, and what must not survive of it.
    let (written, kept) = match input.shape {
        Shape::Whole => {
            let written = json_escape::escape_any(&secret, input.escapes);
            (written.clone(), vec![secret.clone(), written])
        }
        Shape::Run { start, len } => {
            if secret.len() < 16 {
                return;
            }
            let len = 16 + usize::from(len) % (secret.len() - 15);
            let start = usize::from(start) % (secret.len() - len + 1);
            let run = &secret[start..start + len];
            let written = json_escape::escape_any(run, input.escapes);
            (written.clone(), vec![run.to_owned(), written])
        }
        Shape::Base64 { align, tail, url } => {
            let align = usize::from(align % 3);
            let mut bytes = vec![b'u'; align];
            bytes.extend_from_slice(secret.as_bytes());
            bytes.extend(std::iter::repeat_n(b't', usize::from(tail % 4)));
            let written = json_escape::base64(&bytes, url);
            let core = json_escape::base64_core(secret.as_bytes(), align, url);
            (written, vec![core])
        }
    };
    let mut text = format!("{}{written}{}", input.before, input.after);
    if input.twice {
        text.push_str(&secret);
    }
    let out = redact(&text, &[input.other, &secret]);
    for piece in out.split(REDACTED) {
        for form in &kept {
            assert!(
                !piece.contains(form.as_str()),
                "secret {secret:?} written as {written:?}: {form:?} survives in {out:?} (from {text:?})"
            );
        }
    }
});
