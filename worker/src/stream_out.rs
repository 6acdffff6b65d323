//! A streamed call, from the core's outputs to the client's stream (framed
//! by the core's endpoint): what the standalone endpoint and the embedded
//! API share. This is the worker's I/O only: the pump and its batching.
//!
//! The call runs to its commit point before anything is answered (so a
//! failure before it is an ordinary error reply); then the client gets a
//! stream whose bytes a pump writes as the chunks arrive. A failure after
//! the commit point ends the stream with one OpenAI-shaped error event and
//! no `[DONE]`. A client that goes away stops the pump, which drops the
//! call and so aborts the upstream fetch.

use std::future::{poll_fn, Future};
use std::task::Poll;

use f3dx_router_core::endpoint;
use f3dx_router_core::{Attempt, Driver, RouteError};
use futures::future::{select, Either};
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
    let commit = driver.commit().await?;
    let (readable, writer) = host::channel();
    Ok(Committed {
        provider: commit.provider,
        attempts: commit.attempts,
        readable,
        pump: Box::pin(pump(driver, writer)),
    })
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
        let mut last = endpoint::write_output(&mut batch, next);
        // Every event already at hand (a read from upstream often brings
        // many) goes out in one write: a write crosses into JavaScript and
        // waits for the stream, which costs far more than an event.
        while !last && batch.len() < BATCH_BYTES {
            // Polled with this task's own waker (never a no-op one: a
            // timer that keeps the first waker it sees would then wake no
            // one).
            match poll_fn(|cx| Poll::Ready(driver.poll_next(cx))).await {
                Poll::Ready(next) => last = endpoint::write_output(&mut batch, next),
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
