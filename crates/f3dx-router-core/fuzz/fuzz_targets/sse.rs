//! The SSE parser: any bytes, split anywhere, give the same events as the
//! whole; nothing panics; an event's data never passes the cap.
#![no_main]

use f3dx_router_core::internals::sse::{SseEvent, SseParser};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 4096;

fn parse(pieces: &[&[u8]]) -> Result<Vec<SseEvent>, ()> {
    let mut parser = SseParser::new(LIMIT);
    let mut out = Vec::new();
    for piece in pieces {
        parser.feed(piece, &mut out).map_err(|_| ())?;
    }
    parser.finish(&mut out).map_err(|_| ())?;
    Ok(out)
}

fuzz_target!(|input: &[u8]| {
    // The first two bytes choose two split points in the rest.
    let (cuts, bytes) = input.split_at(input.len().min(2));
    let whole = parse(&[bytes]);
    let n = bytes.len();
    let a = cuts.first().map_or(0, |&c| c as usize * n / 256);
    let b = cuts.get(1).map_or(n, |&c| (c as usize * n / 256).max(a));
    let split = parse(&[&bytes[..a], &bytes[a..b], &bytes[b..]]);
    let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(whole, split, "a split at {a} and {b} changed the events");
    assert_eq!(
        whole,
        parse(&bytewise),
        "byte-by-byte feeding changed the events"
    );
    if let Ok(events) = whole {
        for e in events {
            assert!(e.data.len() <= LIMIT);
        }
    }
});
