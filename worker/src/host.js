// The worker's hot path on the JavaScript side of the wasm boundary (see
// host.rs). Each crossing of the boundary costs a call, and each string a
// copy and a UTF-8 transcoding, so what Rust would do in many small calls
// (a header at a time, a body chunk at a time, each chunk a promise) is done
// here in one: Rust passes and receives headers as one JSON string, and
// bodies as one Uint8Array.

// `readBody`'s answers other than the bytes (host.rs has the same numbers).
/** The body was over the cap. */
const TOO_LARGE = 1;
/** The message has no body at all (a 204, a body-less request). */
const NO_BODY = 2;

/**
 * Report how `promise` settles as `settle(id, ok, value)` (promise.rs:
 * one Rust callback for every promise, rather than two per promise).
 */
function watch(promise, id, settle) {
  promise.then(
    (value) => settle(id, true, value),
    (reason) => settle(id, false, reason),
  );
}

/**
 * Read the whole body of a Request or Response, at most `max` bytes, and
 * report it as `settle(id, ...)`: a Uint8Array, or an Array of them (its
 * pieces, in order: Rust joins them, so the body is never held twice here),
 * or TOO_LARGE (the rest of the body is cancelled), or NO_BODY; a rejection
 * when the body fails mid-way (the connection dropped).
 *
 * `whole`: the caller saw a Content-Length of at most `max` and no
 * Content-Encoding, so the body cannot outgrow it and is read in one call
 * (`arrayBuffer()`, no chunk loop at all).
 */
export function readBody(message, max, whole, id, settle) {
  watch(bodyOf(message, max, whole), id, settle);
}

async function bodyOf(message, max, whole) {
  const body = message.body;
  if (body === null) return NO_BODY;
  if (whole) return new Uint8Array(await message.arrayBuffer());
  // Unknown length (chunked, or decoded from a Content-Encoding): count, and
  // stop as soon as the cap is passed rather than after it is all in memory.
  const reader = body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      reader.cancel().catch(() => {});
      return TOO_LARGE;
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0] : chunks;
}

/** A Headers object as JSON: `[[name, value], ...]`, in iteration order. */
export function headersJson(headers) {
  return JSON.stringify([...headers]);
}

/**
 * POST `body` (a Uint8Array) to `url` with the headers of `headers` (JSON
 * `[[name, value], ...]`), redirects not followed, aborted by `signal`; the
 * Response (or the fetch error) is reported as `settle(id, ...)`. Returns,
 * when nothing could be sent, the index of the first header the runtime
 * refused, or -1 when the Request itself could not be built (a bad URL);
 * else undefined.
 */
export function send(url, headers, body, signal, id, settle) {
  const list = JSON.parse(headers);
  const h = new Headers();
  for (let i = 0; i < list.length; i++) {
    try {
      h.set(list[i][0], list[i][1]);
    } catch {
      return i;
    }
  }
  let request;
  try {
    request = new Request(url, { headers: h, method: "POST", redirect: "manual", body });
  } catch {
    return -1;
  }
  watch(fetch(request, { signal }), id, settle);
}

/**
 * A Response with `body` (a Uint8Array), `status`, and the headers of
 * `headers` (JSON `[[name, value], ...]`); a header the runtime refuses is
 * left out.
 */
export function respond(body, status, headers) {
  const h = new Headers();
  for (const [name, value] of JSON.parse(headers)) {
    try {
      h.set(name, value);
    } catch {
      // left out, as Headers::set's error is ignored elsewhere
    }
  }
  return new Response(body, { status, headers: h });
}

// --- streams --------------------------------------------------------------
// A streamed answer crosses the boundary a chunk at a time: that is its
// point, so here each chunk is one promise.

/** Bytes a streamed body's read may take at once. */
const READ_BYTES = 64 * 1024;

/**
 * A reader of a Response's body, or null when it has none. A byte stream
 * (a fetch's body) is read into a buffer of our own: the runtime then hands
 * over everything that has arrived, where a default reader gives 4 KiB a
 * read (a 48 KiB stream sent at once: 13 reads, against 6), and each read
 * costs a promise, a crossing into wasm and a poll of the call.
 */
export function bodyReader(message) {
  const body = message.body;
  if (body === null) return null;
  try {
    return { reader: body.getReader({ mode: "byob" }), buffer: new ArrayBuffer(READ_BYTES) };
  } catch {
    // Not a byte stream (a stream a script made): chunks as they come.
    return { reader: body.getReader(), buffer: null };
  }
}

/**
 * Report the reader's next chunk as `settle(id, ...)`: a Uint8Array, or
 * null at the end; a rejection when the body fails mid-way. Rust copies a
 * chunk out before it asks for the next, so its buffer is read into again.
 */
export function readChunk(state, id, settle) {
  const { reader, buffer } = state;
  let read;
  if (buffer === null) {
    read = reader.read();
  } else {
    const view = new Uint8Array(buffer);
    // workerd's readAtLeast(1, ...) takes all that is buffered; a plain
    // BYOB read stops at the first piece.
    read = reader.readAtLeast ? reader.readAtLeast(1, view) : reader.read(view);
  }
  watch(
    read.then(({ done, value }) => {
      if (done) return null;
      // The next read reuses the buffer the runtime handed back.
      if (buffer !== null) state.buffer = value.buffer;
      return value;
    }),
    id,
    settle,
  );
}

/** Stop reading a body (the rest is not wanted): releases its connection. */
export function cancelReader(state) {
  state.reader.cancel().catch(() => {});
}

/** `settle(id, true)` from a timer: after the timers already due. */
export function nextTurn(id, settle) {
  setTimeout(() => settle(id, true, undefined), 0);
}

/**
 * A channel for a streamed answer: `[readable, writer]`. The readable is
 * the Response body; what is written to the writer reaches the client.
 * (workerd's IdentityTransformStream was tried in its place: less CPU a
 * stream, but first chunks 1.3-3x later than with this one in the stream
 * benchmark: docs/benchmarks.md.)
 */
export function channel() {
  const { readable, writable } = new TransformStream();
  return [readable, writable.getWriter()];
}

/** Write `bytes`; `settle(id, ...)` when the client took them (a rejection
 *  when it has gone). */
export function write(writer, bytes, id, settle) {
  watch(writer.write(bytes), id, settle);
}

/** `settle(id, ...)` when the writer's stream is closed or errored: a
 *  client that went away rejects it. */
export function whenClosed(writer, id, settle) {
  watch(writer.closed, id, settle);
}

/** End the stream (harmless when the client has gone). */
export function closeWriter(writer) {
  writer.close().catch(() => {});
}

/** A Response streaming `readable`, with `status` and the headers of
 *  `headers` (JSON `[[name, value], ...]`). */
export function respondStream(readable, status, headers) {
  const h = new Headers();
  for (const [name, value] of JSON.parse(headers)) {
    try {
      h.set(name, value);
    } catch {
      // left out, as in respond()
    }
  }
  return new Response(readable, { status, headers: h });
}
