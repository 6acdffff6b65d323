//! What a streamed attempt holds: its parser and decoder, the chunks held
//! back before its commit point, and a committed stream's backlog.

use std::collections::VecDeque;

use super::request::StreamMode;
use crate::codec::chunk::Chunk;
use crate::codec::stream::StreamDecoder;
use crate::config::ProviderConfig;
use crate::http::{ResponseHead, TransportFault};
use crate::sse::{SseEvent, SseParser};
use crate::time::Instant;

/// What a streamed attempt needs between its chunks.
#[derive(Debug)]
pub(super) struct StreamState {
    pub(super) parser: SseParser,
    pub(super) decoder: StreamDecoder,
    /// Chunks before the commit point (the role chunk...), held back.
    pub(super) held: Vec<Chunk>,
    /// The bytes of the events held back. With the parser's buffer, what
    /// a stream without output makes the router hold: counted against
    /// `max_body_bytes`, as a buffered body is.
    pub(super) held_bytes: usize,
    /// The protocol's end marker was seen.
    pub(super) done: bool,
    /// A chunk with a finish reason was seen: a clean end after it is a
    /// complete stream, even without the end marker.
    pub(super) finished: bool,
    /// After the commit point, events are parsed and decoded as the host
    /// asks for output, not as they arrive: a read that brings 200 events
    /// gives the caller its first chunk after one decode, not 200. The
    /// rest of the read that committed, not yet parsed (from `raw_at`)...
    pub(super) raw: Vec<u8>,
    pub(super) raw_at: usize,
    /// ...and events of later reads, parsed (to know the stream is not
    /// idle) but not yet decoded, in order after `raw`.
    pub(super) backlog: VecDeque<SseEvent>,
    /// What ends the stream once the backlog is through, if known yet.
    pub(super) tail: Option<StreamTail>,
    /// When the backlog's bytes arrived: the time its events happened.
    pub(super) arrived: Instant,
}

/// Held chunks a translated stream keeps as values; past them, as JSON
/// text, several times smaller, so that what is held stays close to the
/// bytes counted for it (an unchanged chunk is text already).
const HELD_DECODED: usize = 4;

impl StreamState {
    /// The state of a stream whose 2xx `head` from provider `p` arrived
    /// at `now`.
    pub(super) fn new(
        p: &ProviderConfig,
        mode: StreamMode,
        head: &ResponseHead,
        now: Instant,
    ) -> Self {
        StreamState {
            parser: SseParser::new(p.max_body_bytes),
            decoder: StreamDecoder::new(p.kind, mode.include_usage, head.received_unix_secs),
            held: Vec::new(),
            held_bytes: 0,
            done: false,
            finished: false,
            raw: Vec::new(),
            raw_at: 0,
            backlog: VecDeque::new(),
            tail: None,
            arrived: now,
        }
    }

    /// Hold `chunk`, which came from an event of `event_bytes` bytes.
    pub(super) fn hold(&mut self, chunk: Chunk, event_bytes: usize) {
        self.held_bytes = self.held_bytes.saturating_add(event_bytes);
        if self.held.len() < HELD_DECODED {
            return self.held.push(chunk);
        }
        self.held.push(chunk.into_text());
    }

    /// What the attempt holds before its commit point, in bytes.
    pub(super) fn holding(&self) -> usize {
        self.held_bytes.saturating_add(self.parser.buffered())
    }
}

/// How a committed stream's bytes ended, acted on after its backlog.
#[derive(Debug)]
pub(super) enum StreamTail {
    /// The body ended.
    End,
    /// The bytes broke the event-stream syntax or limits.
    Unparsable(String),
    /// The transport failed.
    Fault(TransportFault),
    /// The idle timeout passed while events were still waiting.
    Idle,
}
