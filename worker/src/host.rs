//! The few JavaScript helpers of the hot path (`host.js`), and their Rust
//! faces.
//!
//! Crossing the wasm boundary is what a call through this worker mostly
//! costs, not the routing: a header set one at a time is a call and two
//! string copies, a body streamed chunk by chunk is a promise, a waker and a
//! reader lock per chunk. So headers cross as one JSON string and bodies as
//! one `Uint8Array`, each way, and the promises of a fetch and of a body are
//! awaited through [`crate::promise`].

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::worker_sys::web_sys;

use crate::promise::{self, Settled};

#[wasm_bindgen(module = "/src/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = readBody)]
    fn read_body_js(message: &JsValue, max: f64, whole: bool, id: u32, settle: &JsValue);

    #[wasm_bindgen(js_name = headersJson)]
    fn headers_json(headers: &web_sys::Headers) -> String;

    #[wasm_bindgen(js_name = send)]
    fn send_js(
        url: &str,
        headers: &str,
        body: &Uint8Array,
        signal: &web_sys::AbortSignal,
        id: u32,
        settle: &JsValue,
    ) -> JsValue;

    #[wasm_bindgen(js_name = respond, catch)]
    fn respond_js(
        body: &Uint8Array,
        status: u16,
        headers: &str,
    ) -> Result<web_sys::Response, JsValue>;

    #[wasm_bindgen(js_name = bodyReader)]
    fn body_reader_js(message: &JsValue) -> JsValue;

    #[wasm_bindgen(js_name = readChunk)]
    fn read_chunk_js(reader: &JsValue, id: u32, settle: &JsValue);

    #[wasm_bindgen(js_name = cancelReader)]
    fn cancel_reader_js(reader: &JsValue);

    #[wasm_bindgen(js_name = nextTurn)]
    fn next_turn_js(id: u32, settle: &JsValue);

    #[wasm_bindgen(js_name = channel)]
    fn channel_js() -> js_sys::Array;

    #[wasm_bindgen(js_name = write)]
    fn write_js(writer: &JsValue, bytes: &Uint8Array, id: u32, settle: &JsValue);

    #[wasm_bindgen(js_name = whenClosed)]
    fn when_closed_js(writer: &JsValue, id: u32, settle: &JsValue);

    #[wasm_bindgen(js_name = closeWriter)]
    fn close_writer_js(writer: &JsValue);

    #[wasm_bindgen(js_name = respondStream, catch)]
    fn respond_stream_js(
        readable: &JsValue,
        status: u16,
        headers: &str,
    ) -> Result<web_sys::Response, JsValue>;
}

// `readBody`'s answers other than the bytes (the same numbers as host.js).
const TOO_LARGE: f64 = 1.0;
const NO_BODY: f64 = 2.0;

/// How reading a whole body ended.
pub enum Body {
    /// All of it.
    Bytes(Vec<u8>),
    /// It passed the cap (and the rest was cancelled).
    TooLarge,
    /// The message has no body.
    None,
}

/// Read the whole body of a `Request` or `Response`, at most `max` bytes;
/// `whole`: [`fits`] said it cannot be larger. An error is the runtime's:
/// the body failed mid-way.
pub async fn read_body(message: &JsValue, max: usize, whole: bool) -> Result<Body, JsValue> {
    let ((), settled) =
        promise::watch(|id, settle| read_body_js(message, max as f64, whole, id, settle));
    let value = settled.await?;
    if let Some(code) = value.as_f64() {
        return Ok(if code == TOO_LARGE {
            Body::TooLarge
        } else {
            debug_assert_eq!(code, NO_BODY);
            Body::None
        });
    }
    if let Some(pieces) = value.dyn_ref::<js_sys::Array>() {
        return Ok(Body::Bytes(joined(pieces)));
    }
    Ok(Body::Bytes(value.unchecked_into::<Uint8Array>().to_vec()))
}

/// The `Uint8Array`s of `pieces`, one after another, in one `Vec` of
/// exactly their length.
fn joined(pieces: &js_sys::Array) -> Vec<u8> {
    let pieces: Vec<Uint8Array> = pieces.iter().map(JsCast::unchecked_into).collect();
    let total = pieces.iter().map(|p| p.length() as usize).sum();
    let mut out = vec![0; total];
    let mut at = 0;
    for piece in &pieces {
        let end = at + piece.length() as usize;
        piece.copy_to(&mut out[at..end]);
        at = end;
    }
    out
}

/// Whether a body is known not to outgrow `max`, so it can be read in one
/// call: a valid Content-Length of at most `max`, and no Content-Encoding
/// (the runtime decodes one, and the decoded body may be larger).
pub fn fits(content_length: Option<&str>, content_encoding: Option<&str>, max: usize) -> bool {
    content_encoding.is_none()
        && content_length
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n <= max as u64)
}

/// Every header, in the runtime's iteration order (names in lower case).
pub fn header_list(headers: &web_sys::Headers) -> Vec<(String, String)> {
    serde_json::from_str(&headers_json(headers)).unwrap_or_default()
}

/// Why a request could not be sent at all.
pub enum SendError {
    /// The runtime refused the header at this index (its value is never shown).
    Header(usize),
    /// The Request could not be built (a bad URL).
    Request,
}

/// Start a POST; resolves at the response head (a `Response`, or the
/// runtime's fetch error). The signal aborts it.
pub fn send(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    signal: &web_sys::AbortSignal,
) -> Result<Settled, SendError> {
    let headers = serde_json::to_string(headers).unwrap_or_default();
    let body = Uint8Array::from(body);
    let (refused, settled) =
        promise::watch(|id, settle| send_js(url, &headers, &body, signal, id, settle));
    match refused.as_f64() {
        Some(i) if i >= 0.0 => Err(SendError::Header(i as usize)),
        Some(_) => Err(SendError::Request),
        None => Ok(settled),
    }
}

/// A Response with `body`, `status` and `headers` (a header the runtime
/// refuses is left out).
pub fn respond(
    body: &[u8],
    status: u16,
    headers: &[(&str, String)],
) -> Result<web_sys::Response, JsValue> {
    let headers = serde_json::to_string(headers).unwrap_or_default();
    respond_js(&Uint8Array::from(body), status, &headers)
}

// --- streams ---------------------------------------------------------------

/// A reader over a `Response`'s body, chunk by chunk.
pub struct ChunkReader {
    reader: JsValue,
}

impl ChunkReader {
    /// The reader of `message`'s body; `None` when it has no body.
    pub fn of(message: &JsValue) -> Option<Self> {
        let reader = body_reader_js(message);
        (!reader.is_null()).then_some(ChunkReader { reader })
    }

    /// Resolves with the next chunk (`null` at the end) or the runtime's
    /// error.
    pub fn next(&self) -> Settled {
        let ((), settled) = promise::watch(|id, settle| read_chunk_js(&self.reader, id, settle));
        settled
    }

    /// Stop reading: the rest of the body is cancelled.
    pub fn cancel(&self) {
        cancel_reader_js(&self.reader);
    }
}

/// Settles from a timer of its own, on a later turn of the event loop: the
/// timers due by then (and other work waiting for the isolate) run first.
pub fn next_turn() -> Settled {
    let ((), settled) = promise::watch(next_turn_js);
    settled
}

/// The writing end of a streamed answer.
pub struct Writer {
    writer: JsValue,
}

impl Writer {
    /// Write `bytes`; resolves when the client took them, fails when it has
    /// gone.
    pub fn write(&self, bytes: &[u8]) -> Settled {
        let bytes = Uint8Array::from(bytes);
        let ((), settled) = promise::watch(|id, settle| write_js(&self.writer, &bytes, id, settle));
        settled
    }

    /// Settles when the stream is closed, or fails when the client went away.
    pub fn closed(&self) -> Settled {
        let ((), settled) = promise::watch(|id, settle| when_closed_js(&self.writer, id, settle));
        settled
    }

    /// End the stream.
    pub fn close(&self) {
        close_writer_js(&self.writer);
    }
}

/// A streamed answer's two ends: the readable for the `Response`, and the
/// writer.
pub fn channel() -> (JsValue, Writer) {
    let pair = channel_js();
    (
        pair.get(0),
        Writer {
            writer: pair.get(1),
        },
    )
}

/// A Response streaming `readable`.
pub fn respond_stream(
    readable: &JsValue,
    status: u16,
    headers: &[(&str, String)],
) -> Result<web_sys::Response, JsValue> {
    let headers = serde_json::to_string(headers).unwrap_or_default();
    respond_stream_js(readable, status, &headers)
}
