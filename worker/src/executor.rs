//! The runtime's `fetch` behind the core's `Executor`: one `AbortController`
//! per attempt, a `Delay` for the core's deadlines, and the request, the
//! response head and the body each crossing the wasm boundary once (see
//! [`crate::host`]).

use std::future::Future;

use futures::stream::{self, Stream};
use std::pin::Pin;
use std::time::Duration;

use f3dx_router_core::{Executor, HttpRequest, Instant, ResponseHead, TransportFault};
use wasm_bindgen::JsCast;
use worker::worker_sys::web_sys;
use worker::Delay;

use crate::host::{self, Body, ChunkReader, SendError};
use crate::promise::Settled;

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;
type LocalStream<T> = Pin<Box<dyn Stream<Item = T>>>;

/// Sends with the runtime's `fetch`. Stateless: one per isolate is enough.
#[derive(Clone, Copy, Debug, Default)]
pub struct FetchExecutor;

/// Aborts its attempt's fetch when dropped before the body was read: a
/// dropped JS promise does not cancel anything by itself, the controller does.
struct AbortOnDrop(Option<web_sys::AbortController>);

impl AbortOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(controller) = self.0.take() {
            controller.abort();
        }
    }
}

impl Executor for FetchExecutor {
    /// A whole answer's body in one piece: read in one call where its length
    /// is known (the fast path), else by a counted loop that stops at the
    /// cap, so a huge body never fills the isolate's memory. A streamed
    /// answer's (the core asked for `text/event-stream`) chunk by chunk, as
    /// the runtime delivers them.
    type Body = LocalStream<Result<Vec<u8>, TransportFault>>;
    type Response = LocalFuture<Result<(ResponseHead, Self::Body), TransportFault>>;
    type Sleep = Delay;

    fn send(&self, request: HttpRequest) -> Self::Response {
        Box::pin(async move {
            let max = request.max_body_bytes;
            let controller = web_sys::AbortController::new()
                .map_err(|e| TransportFault::Other(worker::Error::from(e).to_string()))?;
            let pending = host::send(
                &request.url,
                &request.headers,
                &request.body,
                &controller.signal(),
            )
            .map_err(|e| match e {
                // Never echo the value: it may be a key.
                SendError::Header(i) => {
                    let name = request.headers.get(i).map_or("", |(n, _)| n.as_str());
                    TransportFault::Other(format!("invalid header {name:?}"))
                }
                SendError::Request => TransportFault::Other(
                    "cannot build the request: invalid URL or options for Request".to_owned(),
                ),
            })?;
            let mut guard = AbortOnDrop(Some(controller));
            let response: web_sys::Response = pending
                .await
                .map_err(|e| classify(&worker::Error::from(e)))?
                .unchecked_into();
            let headers = host::header_list(&response.headers());
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            let declared = header("content-length");
            let too_large = declared
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n > max as u64);
            let whole = host::fits(declared, header("content-encoding"), max);
            let head = ResponseHead {
                status: response.status(),
                headers,
                received_unix_secs: (js_sys::Date::now() / 1000.0) as u64,
            };
            let streamed = request.header("accept") == Some("text/event-stream")
                && (200..300).contains(&head.status);
            if streamed {
                let body: Self::Body = match ChunkReader::of(response.as_ref()) {
                    Some(reader) => Box::pin(StreamedBody {
                        reader,
                        wait: None,
                        unpaused: 0,
                        guard,
                        done: false,
                    }),
                    None => Box::pin(stream::empty()),
                };
                return Ok((head, body));
            }
            let body = stream::once(async move {
                let body = if too_large {
                    Err(TransportFault::BodyTooLarge)
                } else {
                    read_body(&response, max, whole).await
                };
                guard.disarm();
                body
            });
            let body: Self::Body = Box::pin(body);
            Ok((head, body))
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        let wait =
            Duration::from_micros(deadline.as_micros().saturating_sub(self.now().as_micros()));
        Delay::from(wait)
    }

    fn now(&self) -> Instant {
        // Workers advance the clock only across I/O; the core only needs it
        // monotonic and consistent with the timers, which it is.
        Instant::from_micros((js_sys::Date::now() * 1000.0) as u64)
    }
}

/// The whole body, at most `max` bytes; `whole`: its Content-Length says it
/// fits, so it is read in one call.
async fn read_body(
    response: &web_sys::Response,
    max: usize,
    whole: bool,
) -> Result<Vec<u8>, TransportFault> {
    match host::read_body(response.as_ref(), max, whole).await {
        Ok(Body::Bytes(bytes)) => Ok(bytes),
        Ok(Body::TooLarge) => Err(TransportFault::BodyTooLarge),
        // What workers-rs says of a response without a body (a 204).
        Ok(Body::None) => Err(classify(&worker::Error::RustError(
            "body is not streamable".into(),
        ))),
        Err(_) => Err(TransportFault::Truncated),
    }
}

/// Workers report network failures as `TypeError`s with a message only.
fn classify(error: &worker::Error) -> TransportFault {
    let message = error.to_string();
    let lower = message.to_ascii_lowercase();
    if lower.contains("refused") {
        TransportFault::ConnectionRefused
    } else if lower.contains("dns") || lower.contains("resolve") {
        TransportFault::Dns
    } else if lower.contains("reset")
        || lower.contains("connection lost")
        || lower.contains("closed")
    {
        TransportFault::ConnectionReset
    } else {
        TransportFault::Other(message)
    }
}

/// Bytes a streamed body reads before it pauses for a turn of the event
/// loop (see [`StreamedBody`]).
const BYTES_PER_TURN: usize = 256 * 1024;

/// A streamed answer's body, a chunk per read. Dropped before its end (the
/// caller went away, a hedge lost), it aborts its fetch.
///
/// The runtime runs no timer while a body's chunks keep arriving: an
/// upstream sending as fast as it can would hold off every timer of the
/// isolate (the call's deadline, a hedge's delay, other requests' own) for
/// as long as it sends. So every [`BYTES_PER_TURN`] bytes the body waits for
/// a timer of its own before it reads on, and the timers due run first.
struct StreamedBody {
    reader: ChunkReader,
    wait: Option<Wait>,
    /// Bytes read since the last pause.
    unpaused: usize,
    guard: AbortOnDrop,
    done: bool,
}

/// What a streamed body waits for.
enum Wait {
    Read(Settled),
    Pause(Settled),
}

impl Stream for StreamedBody {
    type Item = Result<Vec<u8>, TransportFault>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let read = loop {
            let wait = this.wait.get_or_insert_with(|| {
                if this.unpaused >= BYTES_PER_TURN {
                    this.unpaused = 0;
                    Wait::Pause(host::next_turn())
                } else {
                    Wait::Read(this.reader.next())
                }
            });
            match wait {
                Wait::Pause(pause) => match Pin::new(pause).poll(cx) {
                    Poll::Ready(_) => this.wait = None,
                    Poll::Pending => return Poll::Pending,
                },
                Wait::Read(read) => match Pin::new(read).poll(cx) {
                    Poll::Ready(read) => break read,
                    Poll::Pending => return Poll::Pending,
                },
            }
        };
        this.wait = None;
        match read {
            Ok(chunk) if chunk.is_null() || chunk.is_undefined() => {
                this.done = true;
                this.guard.disarm();
                Poll::Ready(None)
            }
            Ok(chunk) => {
                let bytes = chunk.unchecked_into::<js_sys::Uint8Array>().to_vec();
                this.unpaused += bytes.len();
                Poll::Ready(Some(Ok(bytes)))
            }
            Err(_) => {
                this.done = true;
                Poll::Ready(Some(Err(TransportFault::Truncated)))
            }
        }
    }
}

impl Drop for StreamedBody {
    fn drop(&mut self) {
        if !self.done {
            self.reader.cancel();
        }
    }
}
