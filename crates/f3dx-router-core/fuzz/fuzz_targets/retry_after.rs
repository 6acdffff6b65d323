//! `failure::retry_after` on a 429 or 503 whose `retry-after`,
//! `retry-after-ms` and `date` headers come from the input: never panics,
//! never asks for more than `MAX_COOLDOWN`.
//!
//! Input: byte 0 picks the status and which headers are present, bytes 1..5
//! the host's wall clock, the rest (lossy UTF-8) the header values,
//! separated by newlines.
#![no_main]

use f3dx_router_core::internals::failure::{retry_after, MAX_COOLDOWN};
use f3dx_router_core::ResponseHead;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 3] = ["retry-after", "retry-after-ms", "date"];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (clock, text) = rest.split_at(rest.len().min(4));
    let mut secs = [0u8; 4];
    secs[..clock.len()].copy_from_slice(clock);
    // The host's clock is its own (never the upstream's); any 32-bit value,
    // up to the year 2106, is a plausible one.
    let received_unix_secs = u64::from(u32::from_le_bytes(secs));
    let text = String::from_utf8_lossy(text);
    let mut values = text.split('\n');
    let mut headers = Vec::new();
    for (bit, name) in NAMES.iter().enumerate() {
        if let Some(value) = values.next() {
            if flags & (1 << bit) == 0 {
                // Upper case on the wire is the same header.
                let name = if flags & 0x10 != 0 {
                    name.to_ascii_uppercase()
                } else {
                    name.to_string()
                };
                headers.push((name, value.to_owned()));
            }
        }
    }
    let status = if flags & 0x08 == 0 { 429 } else { 503 };
    let head = ResponseHead {
        status,
        headers,
        received_unix_secs,
    };
    if let Some(wait) = retry_after(&head) {
        assert!(wait <= MAX_COOLDOWN, "{wait:?} for {head:?}");
    }
    // Any other status asks for nothing.
    let other = ResponseHead {
        status: 500,
        ..head
    };
    assert_eq!(retry_after(&other), None);
});
