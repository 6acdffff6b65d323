//! A stream's body: OpenAI server-sent events, `data: {chunk}\n\n` each
//! (an OpenAI provider's chunk as its text came: see `Chunk::write_event`),
//! then `data: [DONE]\n\n`; a failure after the commit point ends it with
//! one error event and no `[DONE]` (the openai SDK raises it as an
//! `APIError`, with its message).

use serde_json::{json, Value};

use crate::driver::Output;
use crate::error::RouteError;

/// The event that ends a stream that completed.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Append one event carrying `value` to `out`.
pub fn write_event(out: &mut Vec<u8>, value: &Value) {
    out.extend_from_slice(b"data: ");
    // A JSON value always serializes.
    serde_json::to_writer(&mut *out, value).unwrap_or_default();
    out.extend_from_slice(b"\n\n");
}

/// The event that ends a stream broken after its commit point.
pub fn interrupted_event(e: &RouteError) -> Vec<u8> {
    let mut out = Vec::new();
    let error = json!({"error": {
        "message": e.to_string(), "type": "server_error", "code": "stream_interrupted",
    }});
    write_event(&mut out, &error);
    out
}

/// Append what a committed stream's next output (from
/// [`crate::Driver::next`]) sends to `out`; whether it was the last.
pub fn write_output(out: &mut Vec<u8>, output: Option<Output>) -> bool {
    match output {
        Some(Output::Chunk(chunk)) => {
            chunk.write_event(out);
            false
        }
        Some(Output::Complete(Ok(_))) => {
            out.extend_from_slice(DONE);
            true
        }
        Some(Output::Complete(Err(e))) => {
            out.extend_from_slice(&interrupted_event(&e));
            true
        }
        Some(Output::Commit { .. }) => false,
        None => true,
    }
}
