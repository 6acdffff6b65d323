//! A streamed call, from the core's outputs to OpenAI server-sent events
//! for the client: what the standalone endpoint and the embedded API share.
//!
//! The call runs to its commit point before anything is answered (so a
//! failure before it is an ordinary error reply); then the client gets a
//! stream whose bytes a pump writes as the chunks arrive. A failure after
//! the commit point ends the stream with one OpenAI-shaped error event and
//! no `[DONE]`. A client that goes away stops the pump, which drops the
//! call and so aborts the upstream fetch.

use std::future::{poll_fn, Future};
use std::task::Poll;

use f3dx_router_core::{Attempt, Driver, Output, RouteError};
use futures::future::{select, Either};
use serde_json::{json, Value};
use wasm_bindgen::JsValue;

use crate::executor::FetchExecutor;
use crate::host::{self, Writer};

/// A streamed call at its commit point.
pub struct Committed {
    /// The committed provider.
    pub provider: String,
    /// The attempts so far.
    pub attempts: Vec<Attempt>,
    /// The body for the client (a `ReadableStream` of SSE bytes).
    pub readable: JsValue,
    /// Writes the stream; run it to its end (`ctx.wait_until`).
    pub pump: std::pin::Pin<Box<dyn Future<Output = ()>>>,
}

/// Run `driver` to its commit point; a failure before it is the call's
/// error, as for a whole answer.
pub async fn commit(mut driver: Driver<FetchExecutor>) -> Result<Committed, RouteError> {
    match driver.next().await {
        Some(Output::Commit {
            provider, attempts, ..
        }) => {
            let (readable, writer) = host::channel();
            Ok(Committed {
                provider,
                attempts,
                readable,
                pump: Box::pin(pump(driver, writer)),
            })
        }
        Some(Output::Complete(Err(e))) => Err(e),
        // The first output of a streamed call is its commit point or its
        // failure.
        Some(Output::Chunk(_) | Output::Complete(Ok(_))) | None => Err(RouteError::AllFailed {
            attempts: Vec::new(),
        }),
    }
}

/// One SSE event carrying `value`.
pub fn event(value: &Value) -> Vec<u8> {
    let mut line = Vec::new();
    write_event(&mut line, value);
    line
}

/// Append one SSE event carrying `value` to `out`.
fn write_event(out: &mut Vec<u8>, value: &Value) {
    out.extend_from_slice(b"data: ");
    // A JSON value always serializes.
    serde_json::to_writer(&mut *out, value).unwrap_or_default();
    out.extend_from_slice(b"\n\n");
}

/// The event that ends a stream broken after its commit point.
pub fn interrupted_event(e: &RouteError) -> Vec<u8> {
    event(&json!({"error": {
        "message": e.to_string(), "type": "server_error", "code": "stream_interrupted",
    }}))
}

/// Most bytes of events gathered into one write.
const BATCH_BYTES: usize = 64 * 1024;

async fn pump(mut driver: Driver<FetchExecutor>, writer: Writer) {
    // Settles when the client goes away (its side of the stream cancelled).
    let mut gone = writer.closed();
    let mut batch = Vec::new();
    loop {
        let next = match select(Box::pin(driver.next()), &mut gone).await {
            Either::Left((next, _)) => next,
            // The client left: dropping the driver aborts the upstream.
            Either::Right(_) => return,
        };
        let mut last = add(&mut batch, next);
        // Every event already at hand (a read from upstream often brings
        // many) goes out in one write: a write crosses into JavaScript and
        // waits for the stream, which costs far more than an event.
        while !last && batch.len() < BATCH_BYTES {
            // Polled with this task's own waker (never a no-op one: a
            // timer that keeps the first waker it sees would then wake no
            // one).
            match poll_fn(|cx| Poll::Ready(driver.poll_next(cx))).await {
                Poll::Ready(next) => last = add(&mut batch, next),
                Poll::Pending => break,
            }
        }
        if !batch.is_empty() && writer.write(&batch).await.is_err() {
            return;
        }
        batch.clear();
        if last {
            break;
        }
    }
    writer.close();
}

/// Append the bytes of one output to `batch`; whether it was the last.
fn add(batch: &mut Vec<u8>, next: Option<Output>) -> bool {
    match next {
        Some(Output::Chunk(chunk)) => {
            write_event(batch, &chunk);
            false
        }
        Some(Output::Complete(Ok(_))) => {
            batch.extend_from_slice(b"data: [DONE]\n\n");
            true
        }
        Some(Output::Complete(Err(e))) => {
            batch.extend_from_slice(&interrupted_event(&e));
            true
        }
        Some(Output::Commit { .. }) => false,
        None => true,
    }
}
