//! One routed call as a state machine: events in, actions out, time as a
//! value.
//!
//! Methods come in three kinds, called in this order by a host's loop:
//!
//! 1. `poll_*` (output): drain [`Call::poll_action`] until `None` and carry out
//!    each [`Action`]; ask [`Call::poll_timeout`] when to wake up next.
//! 2. `handle_*` (input from the world): a response head, body bytes as they
//!    arrive and the body's end, a transport fault, or the passing of time.
//!    Events for an attempt that was already cancelled or ended are ignored,
//!    so a host never has to race them; an event whose `now` is past a
//!    deadline before the commit point comes after that deadline, so a
//!    host's timer need not win a race against a busy body either.
//! 3. Back to 1, until an [`Action::Complete`] arrives; after it the call is
//!    finished and every later call is harmless and does nothing.
//!
//! A streamed request (`"stream": true`) adds two actions. An attempt
//! *commits* at its first event that carries output (text, a tool call, a
//! refusal, a finish reason): the call then emits [`Action::Commit`], every
//! chunk held back so far and each later one as [`Action::Chunk`], and
//! finally [`Action::Complete`]. Before the commit point a streamed attempt
//! fails over and loses hedge races like any other, and holds at most its
//! provider's `max_body_bytes`; after it the stream is the caller's, and a
//! failure ends it with [`RouteError::StreamInterrupted`] (a clean end after
//! a finish reason is complete, with or without the end marker).
//!
//! `now` never goes backwards between calls. Calling
//! [`Call::handle_timeout`] early or often is harmless.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::attempt::{Attempt, AttemptId, AttemptOutcome, Fault};
use crate::budget;
use crate::codec;
use crate::codec::stream::{StreamDecoder, StreamItem};
use crate::config::{HedgeDelay, OnFailure, ProviderConfig};
use crate::error::{RouteError, Routed};
use crate::events::CoolingCause;
use crate::failure::{classify_status, retry_after, StatusClass};
use crate::health::Verdict;
use crate::http::{HttpRequest, ResponseHead, TransportFault};
use crate::quality;
use crate::ratelimit;
use crate::router::Shared;
use crate::schema::{self, Expect};
use crate::secret;
use crate::sse::{SseEvent, SseParser};
use crate::time::Instant;

/// What the call asks its host to do.
#[must_use]
#[derive(Debug)]
pub enum Action {
    /// Send this request; report its head, body or fault with this id.
    Send {
        /// The attempt the request belongs to.
        attempt: AttemptId,
        /// Index of the provider in the config.
        provider: usize,
        /// The request to send.
        request: HttpRequest,
    },
    /// Stop the attempt: drop its request, close its connection.
    Cancel {
        /// The attempt to stop.
        attempt: AttemptId,
    },
    /// A streamed call reached its commit point on this provider: the
    /// caller's stream starts now, [`Action::Chunk`]s follow, then
    /// [`Action::Complete`]. Emitted at most once, before any chunk.
    Commit {
        /// The committed provider's name.
        provider: String,
        /// Its index in the config.
        provider_index: usize,
        /// Every attempt so far, in start order (the committed one last
        /// among those that ended or were cancelled).
        attempts: Vec<Attempt>,
    },
    /// The next `chat.completion.chunk` of a committed stream, in order.
    Chunk(Value),
    /// The call is over; this is its result. Emitted exactly once, last.
    Complete(Result<Routed, RouteError>),
}

/// Where an attempt is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Sent; waiting for the response head.
    AwaitingHead,
    /// A 2xx head arrived; the body decides success.
    ReadingBody,
    /// A 2xx head of a streamed attempt arrived; no output yet.
    Streaming,
    /// The streamed attempt committed: its chunks are the caller's.
    Committed,
    /// A failure status arrived and the outcome is decided; the body is read
    /// only for the error message.
    Draining,
    /// Nothing more to hear.
    Ended,
}

#[derive(Debug)]
struct AttemptState {
    record: Attempt,
    phase: Phase,
    deadline: Instant,
    /// A hard failure's body (redacted), for the caller.
    hard_body: Option<String>,
    /// The body read so far (buffered answers and error bodies).
    body: Vec<u8>,
    /// A streamed attempt's parser and decoder, once its head arrived.
    stream: Option<Box<StreamState>>,
    /// It holds its provider's half-open probe (its end is reported).
    probe: bool,
    /// It started while another leg was in flight: a hedge.
    hedge: bool,
    /// Tokens it reserved in its provider's `tpm` budget.
    tokens: u64,
    /// A stream's time to its commit point: its latency sample.
    time_to_commit: Option<Duration>,
    /// It holds its provider's quality probe for the call's tenant and
    /// model: it records a result, or gives the probe back.
    quality_probe: bool,
}

/// What a streamed attempt needs between its chunks.
#[derive(Debug)]
struct StreamState {
    parser: SseParser,
    decoder: StreamDecoder,
    /// Chunks before the commit point (the role chunk...), held back.
    held: Vec<HeldChunk>,
    /// The bytes of the events held back. With the parser's buffer, what
    /// a stream without output makes the router hold: counted against
    /// `max_body_bytes`, as a buffered body is.
    held_bytes: usize,
    /// The protocol's end marker was seen.
    done: bool,
    /// A chunk with a finish reason was seen: a clean end after it is a
    /// complete stream, even without the end marker.
    finished: bool,
    /// After the commit point, events are parsed and decoded as the host
    /// asks for output, not as they arrive: a read that brings 200 events
    /// gives the caller its first chunk after one decode, not 200. The
    /// rest of the read that committed, not yet parsed (from `raw_at`)...
    raw: Vec<u8>,
    raw_at: usize,
    /// ...and events of later reads, parsed (to know the stream is not
    /// idle) but not yet decoded, in order after `raw`.
    backlog: VecDeque<SseEvent>,
    /// What ends the stream once the backlog is through, if known yet.
    tail: Option<StreamTail>,
    /// When the backlog's bytes arrived: the time its events happened.
    arrived: Instant,
}

/// A chunk held back before the commit point. The first few stay decoded
/// (the usual role chunk costs nothing more); later ones, which only a
/// stream that keeps sending no output has, are kept as JSON text, several
/// times smaller than a decoded value, so what is held stays close to the
/// bytes counted for it.
#[derive(Debug)]
enum HeldChunk {
    Decoded(Value),
    Encoded(String),
}

/// Held chunks kept decoded; past them, encoded.
const HELD_DECODED: usize = 4;

impl StreamState {
    /// Hold `chunk`, which came from an event of `event_bytes` bytes.
    fn hold(&mut self, chunk: Value, event_bytes: usize) {
        self.held_bytes = self.held_bytes.saturating_add(event_bytes);
        if self.held.len() < HELD_DECODED {
            return self.held.push(HeldChunk::Decoded(chunk));
        }
        if let Ok(text) = serde_json::to_string(&chunk) {
            self.held.push(HeldChunk::Encoded(text));
        }
    }

    /// What the attempt holds before its commit point, in bytes.
    fn holding(&self) -> usize {
        self.held_bytes.saturating_add(self.parser.buffered())
    }
}

/// How a committed stream's bytes ended, acted on after its backlog.
#[derive(Debug)]
enum StreamTail {
    /// The body ended.
    End,
    /// The bytes broke the event-stream syntax or limits.
    Unparsable(String),
    /// The transport failed.
    Fault(TransportFault),
    /// The idle timeout passed while events were still waiting.
    Idle,
}

/// How the caller asked to stream.
#[derive(Clone, Copy, Debug)]
struct StreamMode {
    include_usage: bool,
}

/// How long a failed attempt's error body may take after its head: the
/// outcome is already decided, so a stalled body must not hold the call.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Most of an error body kept for its message: past this it is cut.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Per-call options beside the request body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Who the call is for, in quality-aware routing: pass rates are kept
    /// per (provider, tenant, model). Empty: the empty tenant.
    pub tenant: String,
}

/// What a call checks its answer against, and for whom.
#[derive(Debug)]
struct QualityCheck {
    expect: Expect,
    tenant: String,
    model: String,
    /// A streamed answer's text so far.
    text: String,
    /// Most text kept for the check: the committed provider's
    /// `max_body_bytes`, as for an answer that is not streamed.
    text_cap: usize,
    /// The text passed the cap: the answer fails its check, and no more
    /// text is kept.
    text_over: bool,
}

impl QualityCheck {
    /// Keep a streamed answer's `text` for the check at its end.
    fn keep(&mut self, text: &str) {
        if self.text_over {
            return;
        }
        if self.text.len().saturating_add(text.len()) > self.text_cap {
            self.text_over = true;
            self.text = String::new();
            return;
        }
        self.text.push_str(text);
    }

    /// Whether the streamed answer passes its check (`None`: the
    /// validator cannot judge it). Text past the cap fails.
    fn check_text(&self) -> Option<bool> {
        if self.text_over {
            return Some(false);
        }
        self.expect.check(&self.text)
    }
}

/// A routed call in progress. Built by [`crate::Router::start_call`].
#[derive(Debug)]
pub struct Call {
    shared: Arc<Shared>,
    started: Instant,
    candidates: Vec<usize>,
    /// The request for each candidate, encoded up front so a request some
    /// provider cannot carry is refused before anything is sent.
    requests: Vec<Option<HttpRequest>>,
    next_candidate: usize,
    attempts: Vec<AttemptState>,
    /// When the next delayed hedge leg fires.
    hedge_at: Option<Instant>,
    /// The hedge budget refused an extra leg: this call hedges no more.
    hedge_refused: bool,
    last_dispatch: Instant,
    /// A hard failure (or an untranslatable request) stops new attempts.
    stopped: bool,
    /// Set for a streamed request.
    stream: Option<StreamMode>,
    /// The attempt a streamed call committed to.
    committed: Option<AttemptId>,
    /// The request's `tpm` estimate (0 when no provider has a budget).
    tokens: u64,
    /// No provider was usable: the candidates are tried all the same.
    last_resort: bool,
    invalid: Option<String>,
    actions: VecDeque<Action>,
    finished: bool,
    /// Set when the request has a checkable `response_format` and quality
    /// tracking is on.
    quality: Option<Box<QualityCheck>>,
    /// The call's tenant and model, when quality tracking may exclude
    /// providers for them.
    quality_key: Option<(String, String)>,
}

/// Why `fill` runs: only a start, a failure or a hedge timer may add a leg in
/// delayed mode.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Start,
    Failure,
    HedgeTimer,
}

impl Call {
    pub(crate) fn new(shared: Arc<Shared>, body: Value, now: Instant) -> Call {
        Call::with_options(shared, body, CallOptions::default(), now)
    }

    pub(crate) fn with_options(
        shared: Arc<Shared>,
        body: Value,
        options: CallOptions,
        now: Instant,
    ) -> Call {
        let checked = validate(body)
            .and_then(|checked| quality::check_tenant(&options.tenant).map(|()| checked));
        // What the answer must be, and whose pass rates the call reads.
        let mut quality = None;
        let mut quality_key = None;
        let checked = checked.and_then(|(body, stream)| {
            if shared.config.quality.is_some() {
                let model = body.get("model").and_then(Value::as_str).unwrap_or("");
                let key = (options.tenant, model.to_owned());
                if let Some(expect) = shared.schemas.expect(&body)? {
                    quality = Some(Box::new(QualityCheck {
                        expect,
                        tenant: key.0.clone(),
                        model: key.1.clone(),
                        text: String::new(),
                        text_cap: 0,
                        text_over: false,
                    }));
                }
                quality_key = Some(key);
            }
            Ok((body, stream))
        });
        // The `tpm` estimate, only where a provider has a tokens budget.
        let tokens = match &checked {
            Ok((body, _)) if shared.config.providers.iter().any(|p| p.tpm.is_some()) => {
                budget::estimate_tokens(body)
            }
            _ => 0,
        };
        let (mut candidates, last_resort) = match &checked {
            Ok(_) => shared.candidates(now, tokens),
            Err(_) => (Vec::new(), false),
        };
        if let Some((tenant, model)) = &quality_key {
            shared.quality_filter(&mut candidates, tenant, model, now);
        }
        let mut call = Call {
            shared,
            started: now,
            candidates,
            requests: Vec::new(),
            next_candidate: 0,
            attempts: Vec::new(),
            hedge_at: None,
            hedge_refused: false,
            last_dispatch: now,
            stopped: false,
            stream: None,
            committed: None,
            tokens: 0,
            last_resort: false,
            invalid: None,
            actions: VecDeque::new(),
            finished: false,
            quality,
            quality_key,
        };
        call.tokens = tokens;
        call.last_resort = last_resort;
        let checked = checked.and_then(|(body, stream)| {
            call.stream = stream;
            call.encode_all(&body)
        });
        match checked {
            Ok(()) => {
                call.shared.fund_hedges();
                call.fill(now, Trigger::Start);
            }
            Err(message) => {
                call.stopped = true;
                call.invalid = Some(message);
            }
        }
        call.check_done(now);
        call
    }

    /// Translate the request for every provider, cooling ones included, so
    /// whether a request is accepted never depends on provider health; keep
    /// the requests of this call's candidates.
    fn encode_all(&mut self, body: &Map<String, Value>) -> Result<(), String> {
        let providers = &self.shared.config.providers;
        let mut encoded = Vec::with_capacity(providers.len());
        for p in providers {
            let request = codec::encode_request(p, body).map_err(|m| {
                let kind = p.kind.as_str();
                format!("cannot send to provider {:?} ({kind}): {m}", p.name)
            })?;
            encoded.push(Some(request));
        }
        self.requests = self.candidates.iter().map(|&i| encoded[i].take()).collect();
        Ok(())
    }

    // ---- output ---------------------------------------------------------

    /// The next thing the host must do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        if self.actions.is_empty() && self.committed.is_some() {
            self.pump();
        }
        self.actions.pop_front()
    }

    /// When the host must call [`Call::handle_timeout`] next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let deadlines = self
            .attempts
            .iter()
            .filter(|a| a.phase != Phase::Ended)
            .map(|a| a.deadline);
        deadlines.chain(self.hedge_at).min()
    }

    /// Whether the request streams (`"stream": true`).
    pub fn is_streamed(&self) -> bool {
        self.stream.is_some()
    }

    /// Whether the call has produced its result.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    // ---- input ----------------------------------------------------------

    /// A response head arrived for `id`.
    pub fn handle_head(&mut self, id: AttemptId, head: ResponseHead, now: Instant) {
        self.catch_up(now);
        if self.finished || self.phase(id) != Some(Phase::AwaitingHead) {
            return;
        }
        let class = classify_status(head.status);
        let provider = self.attempts[id.0 as usize].record.provider_index;
        if class == StatusClass::Soft {
            if let Some(wait) = retry_after(&head) {
                self.shared
                    .cool(provider, CoolingCause::RetryAfter, now + wait, now);
            }
        }
        // Any answer may say a rate limit is spent: wait for its reset
        // rather than for the 429.
        if let Some(wait) = ratelimit::exhausted_for(&head) {
            self.shared
                .cool(provider, CoolingCause::RateLimitHeaders, now + wait, now);
        }
        self.attempts[id.0 as usize].record.status = Some(head.status);
        match class {
            StatusClass::Success => {
                let p = &self.shared.config.providers[provider];
                let declared = head
                    .header("content-length")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let a = &mut self.attempts[id.0 as usize];
                match self.stream {
                    Some(mode) => {
                        a.phase = Phase::Streaming;
                        a.stream = Some(Box::new(StreamState {
                            parser: SseParser::new(p.max_body_bytes),
                            decoder: StreamDecoder::new(
                                p.kind,
                                mode.include_usage,
                                head.received_unix_secs,
                            ),
                            held: Vec::new(),
                            held_bytes: 0,
                            done: false,
                            finished: false,
                            raw: Vec::new(),
                            raw_at: 0,
                            backlog: VecDeque::new(),
                            tail: None,
                            arrived: now,
                        }));
                    }
                    // A body the head says is over the cap is refused now,
                    // without reading it.
                    None if declared.is_some_and(|n| n > p.max_body_bytes as u64) => {
                        self.fail_transport(id, TransportFault::BodyTooLarge, now);
                    }
                    None => a.phase = Phase::ReadingBody,
                }
            }
            StatusClass::Soft => {
                self.settle(id, AttemptOutcome::Soft, None, now);
                self.drain(id, now);
                self.fill(now, Trigger::Failure);
            }
            StatusClass::Hard => {
                self.settle(id, AttemptOutcome::Hard, None, now);
                self.drain(id, now);
                self.stopped = true;
                self.hedge_at = None;
            }
        }
        self.check_done(now);
    }

    /// The whole body of `id` arrived: the same as its bytes in one
    /// [`Call::handle_chunk`] and then [`Call::handle_end`].
    pub fn handle_body(&mut self, id: AttemptId, body: Vec<u8>, now: Instant) {
        self.handle_chunk(id, body, now);
        self.handle_end(id, now);
    }

    /// More bytes of `id`'s body arrived, in order. (Owned: a body that
    /// arrives in one piece, as most do, is kept without a copy.)
    pub fn handle_chunk(&mut self, id: AttemptId, bytes: Vec<u8>, now: Instant) {
        self.catch_up(now);
        if self.finished {
            return;
        }
        match self.phase(id) {
            Some(Phase::ReadingBody) => {
                let max = self.provider_of(id).max_body_bytes;
                let body = &mut self.attempts[id.0 as usize].body;
                if body.len() + bytes.len() > max {
                    self.fail_transport(id, TransportFault::BodyTooLarge, now);
                } else if body.is_empty() {
                    *body = bytes;
                } else {
                    body.extend_from_slice(&bytes);
                }
            }
            Some(Phase::Draining) => {
                // Only the message is wanted: keep the start of the body.
                let body = &mut self.attempts[id.0 as usize].body;
                let room = MAX_ERROR_BODY.saturating_sub(body.len());
                body.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Some(Phase::Streaming | Phase::Committed) => self.stream_bytes(id, &bytes, false, now),
            _ => return,
        }
        self.check_done(now);
    }

    /// The body of `id` ended (the stream closed cleanly).
    pub fn handle_end(&mut self, id: AttemptId, now: Instant) {
        self.catch_up(now);
        if self.finished {
            return;
        }
        match self.phase(id) {
            Some(Phase::ReadingBody) => {
                let body = std::mem::take(&mut self.attempts[id.0 as usize].body);
                let provider = self.provider_of(id);
                match codec::decode_response(provider.kind, &body) {
                    Ok(response) => return self.win(id, response, now),
                    Err(reason) => {
                        let detail = redact(&reason, provider);
                        self.attempts[id.0 as usize].record.detail = detail;
                        self.settle(id, AttemptOutcome::Soft, Some(Fault::Undecodable), now);
                        self.fill(now, Trigger::Failure);
                    }
                }
            }
            Some(Phase::Draining) => {
                let body = std::mem::take(&mut self.attempts[id.0 as usize].body);
                let provider = self.provider_of(id);
                // Redact before anything is cut short, so no piece of a key
                // survives a truncation; the raw text is redacted in every
                // escaping, and decoding can still join pieces (a key split
                // by an escape of an escape), so the message is redacted
                // once more.
                let text = redact(&String::from_utf8_lossy(&body), provider);
                let message = codec::error_message(text.as_bytes())
                    .unwrap_or_else(|| codec::body_excerpt(text.as_bytes()));
                let message = redact(&message, provider);
                let a = &mut self.attempts[id.0 as usize];
                a.record.detail = message;
                a.phase = Phase::Ended;
                if a.record.outcome == AttemptOutcome::Hard {
                    a.hard_body = Some(text);
                }
            }
            Some(Phase::Streaming | Phase::Committed) => self.stream_bytes(id, &[], true, now),
            _ => return,
        }
        self.check_done(now);
    }

    /// The transport failed for `id`.
    pub fn handle_fault(&mut self, id: AttemptId, fault: TransportFault, now: Instant) {
        self.catch_up(now);
        if self.finished {
            return;
        }
        match self.phase(id) {
            Some(Phase::AwaitingHead | Phase::ReadingBody | Phase::Streaming) => {
                self.fail_transport(id, fault, now)
            }
            Some(Phase::Committed) => {
                // Events that arrived before the fault reach the caller first.
                self.end_backlog(id, StreamTail::Fault(fault));
                self.pump();
            }
            // The outcome was decided at the head; only the message is lost.
            Some(Phase::Draining) => self.attempts[id.0 as usize].phase = Phase::Ended,
            _ => return,
        }
        self.check_done(now);
    }

    /// A deadline before the commit point (an attempt's timeout, a drain's
    /// grace, a delayed hedge) passed before `now`: act on it before the
    /// event that came after it. A host whose timer loses races against a
    /// busy body (a flood of events without output) still keeps the
    /// deadline. A committed stream is left alone: its deadline is idleness,
    /// and bytes arriving say it is not idle.
    fn catch_up(&mut self, now: Instant) {
        let overdue = |a: &AttemptState| {
            !matches!(a.phase, Phase::Ended | Phase::Committed) && a.deadline < now
        };
        if self.hedge_at.is_some_and(|t| t < now) || self.attempts.iter().any(overdue) {
            self.handle_timeout(now);
        }
    }

    /// Time passed: end attempts past their deadline, start a delayed hedge.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        for i in 0..self.attempts.len() {
            let a = &self.attempts[i];
            if a.phase == Phase::Ended || a.deadline > now {
                continue;
            }
            let id = a.record.id;
            if a.phase == Phase::Committed {
                // Events that arrived in time reach the caller first; then
                // the leg is cancelled and the call interrupted.
                self.end_backlog(id, StreamTail::Idle);
                self.pump();
                continue;
            }
            self.actions.push_back(Action::Cancel { attempt: id });
            match a.phase {
                Phase::Draining => self.attempts[i].phase = Phase::Ended,
                _ => {
                    let timeout = self.provider_of(id).timeout;
                    let what = if a.phase == Phase::Streaming {
                        "no stream output"
                    } else {
                        "no complete answer"
                    };
                    self.attempts[i].record.detail =
                        format!("{what} within {} ms", timeout.as_millis());
                    self.settle(id, AttemptOutcome::Soft, Some(Fault::Timeout), now);
                    self.fill(now, Trigger::Failure);
                }
            }
        }
        if self.hedge_at.is_some_and(|t| t <= now) {
            self.fill(now, Trigger::HedgeTimer);
        }
        self.check_done(now);
    }

    // ---- streams --------------------------------------------------------

    /// Feed a streamed attempt's bytes (`end`: its body ended) through its
    /// parser. Before the commit point events are decoded as they complete
    /// (the legs race, and order decides); from the commit point on, they
    /// wait until the host asks for output (see [`Call::pump`]).
    fn stream_bytes(&mut self, id: AttemptId, bytes: &[u8], end: bool, now: Instant) {
        if self.phase(id) == Some(Phase::Committed) {
            return self.queue_bytes(id, bytes, end, now);
        }
        let cap = self.provider_of(id).max_body_bytes;
        let mut rest = bytes;
        while self.phase(id) == Some(Phase::Streaming) && !rest.is_empty() {
            let Some(stream) = self.attempts[id.0 as usize].stream.as_mut() else {
                return;
            };
            let mut events = Vec::new();
            match stream.parser.feed_until_event(rest, &mut events) {
                Ok(n) => rest = &rest[n..],
                Err(e) => return self.stream_failed(id, Fault::Undecodable, e.to_string(), now),
            }
            for event in events {
                self.stream_event(id, event, now);
            }
            self.check_holding(id, cap, now);
        }
        match self.phase(id) {
            Some(Phase::Streaming) if end => {
                let Some(stream) = self.attempts[id.0 as usize].stream.as_mut() else {
                    return;
                };
                let mut events = Vec::new();
                let tail = match stream.parser.finish(&mut events) {
                    Ok(()) => StreamTail::End,
                    Err(e) => StreamTail::Unparsable(e.to_string()),
                };
                for event in events {
                    self.stream_event(id, event, now);
                }
                self.stream_tail(id, tail, now);
            }
            Some(Phase::Committed) => {
                // It committed in this read: the rest waits, unparsed.
                let Some(stream) = self.attempts[id.0 as usize].stream.as_mut() else {
                    return;
                };
                stream.raw.extend_from_slice(rest);
                stream.arrived = now;
                if end {
                    stream.tail.get_or_insert(StreamTail::End);
                }
            }
            _ => {}
        }
    }

    /// Before its commit point, a streamed attempt that holds more than
    /// `cap` bytes (events without output, an unfinished event) fails as a
    /// body over the cap would.
    fn check_holding(&mut self, id: AttemptId, cap: usize, now: Instant) {
        let a = &self.attempts[id.0 as usize];
        let Some(s) = a.stream.as_ref() else {
            return;
        };
        if a.phase != Phase::Streaming || s.holding() <= cap {
            return;
        }
        let detail =
            format!("over max_body_bytes ({cap} bytes) held before the stream's first output");
        let fault = Fault::Transport(TransportFault::BodyTooLarge);
        self.stream_failed(id, fault, detail, now);
    }

    /// A later read of a committed stream: parsed now, so that an event in
    /// it counts against the idle timeout; decoded when the host asks.
    fn queue_bytes(&mut self, id: AttemptId, bytes: &[u8], end: bool, now: Instant) {
        let idle = self.provider_of(id).stream_idle_timeout;
        let a = &mut self.attempts[id.0 as usize];
        let Some(s) = a.stream.as_mut() else {
            return;
        };
        let before = s.backlog.len();
        let mut events = Vec::new();
        // What is left of the read that committed comes first.
        let raw = std::mem::take(&mut s.raw);
        let mut parsed = s.parser.feed(&raw[s.raw_at.min(raw.len())..], &mut events);
        s.raw_at = 0;
        if parsed.is_ok() {
            parsed = s.parser.feed(bytes, &mut events);
        }
        s.backlog.extend(events);
        if s.backlog.len() > before {
            // An event arrived: the stream is not idle, however long the
            // caller takes to read it.
            a.deadline = now + idle;
        }
        s.arrived = now;
        match parsed {
            Err(e) => s.tail = Some(StreamTail::Unparsable(e.to_string())),
            Ok(()) if end => {
                s.tail.get_or_insert(StreamTail::End);
            }
            Ok(()) => {}
        }
    }

    /// A committed stream's bytes ended with `tail`, after its backlog.
    fn end_backlog(&mut self, id: AttemptId, tail: StreamTail) {
        if let Some(s) = self.attempts[id.0 as usize].stream.as_mut() {
            s.tail.get_or_insert(tail);
        }
    }

    /// Decode the committed stream's backlog until there is an action for
    /// the host, or nothing left; then act on its tail.
    fn pump(&mut self) {
        let Some(id) = self.committed else {
            return;
        };
        while self.actions.is_empty() && !self.finished {
            if self.phase(id) != Some(Phase::Committed) {
                return;
            }
            let Some(s) = self.attempts[id.0 as usize].stream.as_mut() else {
                return;
            };
            let now = s.arrived;
            if s.raw_at < s.raw.len() {
                let mut events = Vec::new();
                match s.parser.feed_until_event(&s.raw[s.raw_at..], &mut events) {
                    Ok(n) => s.raw_at += n,
                    // Before anything that came after these bytes.
                    Err(e) => {
                        s.raw_at = s.raw.len();
                        s.tail = Some(StreamTail::Unparsable(e.to_string()));
                    }
                }
                if s.raw_at == s.raw.len() {
                    s.raw = Vec::new();
                    s.raw_at = 0;
                }
                for event in events {
                    self.stream_event(id, event, now);
                }
            } else if let Some(event) = s.backlog.pop_front() {
                self.stream_event(id, event, now);
            } else if let Some(tail) = s.tail.take() {
                self.stream_tail(id, tail, now);
            } else {
                return;
            }
        }
        let now = self.attempts[id.0 as usize]
            .stream
            .as_ref()
            .map_or(self.started, |s| s.arrived);
        self.check_done(now);
    }

    /// Decode one event of `id`'s stream and act on what it gives.
    fn stream_event(&mut self, id: AttemptId, event: SseEvent, now: Instant) {
        let kind = self.provider_of(id).kind;
        let Some(stream) = self.attempts[id.0 as usize].stream.as_mut() else {
            return;
        };
        let mut items = Vec::new();
        let size = event.event.len() + event.data.len();
        if let Err(reason) = stream.decoder.decode(&event, &mut items) {
            let detail = format!("undecodable {} stream event: {reason}", kind.as_str());
            // Items decoded before the failure come first.
            self.stream_items(id, items, size, now);
            return self.stream_failed(id, Fault::Undecodable, detail, now);
        }
        self.stream_items(id, items, size, now);
    }

    /// Act on what an event of `size` bytes decoded to.
    fn stream_items(&mut self, id: AttemptId, items: Vec<StreamItem>, size: usize, now: Instant) {
        for item in items {
            if self.finished || self.phase(id).is_none_or(|p| p == Phase::Ended) {
                return;
            }
            match item {
                StreamItem::Chunk {
                    chunk,
                    output,
                    finish,
                } => {
                    if finish {
                        if let Some(s) = self.attempts[id.0 as usize].stream.as_mut() {
                            s.finished = true;
                        }
                    }
                    self.stream_chunk(id, chunk, output, size, now)
                }
                StreamItem::Done => {
                    let a = &mut self.attempts[id.0 as usize];
                    if let Some(s) = a.stream.as_mut() {
                        s.done = true;
                    }
                    if a.phase == Phase::Committed {
                        return self.finish_stream(id, now);
                    }
                    let detail = "the stream ended before any output".to_owned();
                    return self.stream_failed(id, Fault::Undecodable, detail, now);
                }
                StreamItem::Error(message) => {
                    let message = redact(&message, self.provider_of(id));
                    let detail = format!("error event in the stream: {message}");
                    return self.stream_failed(id, Fault::StreamError, detail, now);
                }
            }
        }
    }

    /// `id`'s bytes ended with `tail` and every event before it was acted on.
    fn stream_tail(&mut self, id: AttemptId, tail: StreamTail, now: Instant) {
        if self.finished || self.phase(id).is_none_or(|p| p == Phase::Ended) {
            return;
        }
        let a = &self.attempts[id.0 as usize];
        let done = a.stream.as_ref().is_some_and(|s| s.done);
        let finished = a.stream.as_ref().is_some_and(|s| s.finished);
        let (fault, detail) = match tail {
            StreamTail::End if done => return,
            // A clean end after a finish reason: a last `data: [DONE]`
            // without its blank line (dropped, as the standard says an
            // unfinished event is) or no marker at all loses nothing.
            StreamTail::End if finished && a.phase == Phase::Committed => {
                return self.finish_stream(id, now)
            }
            StreamTail::End => (
                Fault::Transport(TransportFault::Truncated),
                "the stream ended without its end marker".to_owned(),
            ),
            StreamTail::Unparsable(detail) => (Fault::Undecodable, detail),
            StreamTail::Fault(fault) => {
                let detail = fault.to_string();
                (Fault::Transport(fault), detail)
            }
            StreamTail::Idle => {
                let idle = self.provider_of(id).stream_idle_timeout;
                let detail = format!("no stream event within {} ms", idle.as_millis());
                (Fault::Timeout, detail)
            }
        };
        self.stream_failed(id, fault, detail, now);
    }

    /// A streamed attempt failed: after its commit point the call is
    /// interrupted; before it, the attempt fails softly and the call goes on.
    fn stream_failed(&mut self, id: AttemptId, fault: Fault, detail: String, now: Instant) {
        if self.finished || self.phase(id).is_none_or(|p| p == Phase::Ended) {
            return;
        }
        self.actions.push_back(Action::Cancel { attempt: id });
        if self.phase(id) == Some(Phase::Committed) {
            self.interrupt(id, fault, detail, now);
        } else {
            self.attempts[id.0 as usize].record.detail = detail;
            self.settle(id, AttemptOutcome::Soft, Some(fault), now);
            self.fill(now, Trigger::Failure);
        }
    }

    /// One decoded chunk of a streamed attempt, from an event of `size`
    /// bytes.
    fn stream_chunk(
        &mut self,
        id: AttemptId,
        chunk: Value,
        output: bool,
        size: usize,
        now: Instant,
    ) {
        let idle = self.provider_of(id).stream_idle_timeout;
        let a = &mut self.attempts[id.0 as usize];
        match a.phase {
            Phase::Committed => {
                a.deadline = now + idle;
                self.emit(chunk);
            }
            Phase::Streaming if !output => {
                if let Some(s) = a.stream.as_mut() {
                    s.hold(chunk, size);
                }
            }
            Phase::Streaming => self.commit(id, chunk, now),
            _ => {}
        }
    }

    /// `id` reached its commit point with `chunk`: the stream is the
    /// caller's from here on.
    fn commit(&mut self, id: AttemptId, chunk: Value, now: Instant) {
        let idle = self.provider_of(id).stream_idle_timeout;
        if self.attempts[id.0 as usize].hedge {
            self.shared.hedge_won();
        }
        let started = self.started;
        let a = &mut self.attempts[id.0 as usize];
        a.phase = Phase::Committed;
        a.record.outcome = AttemptOutcome::Success;
        a.time_to_commit = Some(now - (started + a.record.started));
        a.deadline = now + idle;
        let held = a
            .stream
            .as_mut()
            .map(|s| std::mem::take(&mut s.held))
            .unwrap_or_default();
        let provider_index = a.record.provider_index;
        if let Some(q) = self.quality.as_mut() {
            q.text_cap = self.shared.config.providers[provider_index].max_body_bytes;
        }
        self.committed = Some(id);
        self.stopped = true;
        self.hedge_at = None;
        self.cancel_rest(now);
        self.actions.push_back(Action::Commit {
            provider: self.shared.config.providers[provider_index].name.clone(),
            provider_index,
            attempts: self.records(),
        });
        for c in held {
            match c {
                HeldChunk::Decoded(c) => self.emit(c),
                // Text this call encoded: it decodes.
                HeldChunk::Encoded(text) => {
                    if let Ok(c) = serde_json::from_str(&text) {
                        self.emit(c);
                    }
                }
            }
        }
        self.emit(chunk);
    }

    /// Hand a committed stream's chunk to the caller (and keep its text
    /// when the answer is checked at the end).
    fn emit(&mut self, chunk: Value) {
        if let Some(q) = self.quality.as_mut() {
            let text = &chunk["choices"][0]["delta"]["content"];
            q.keep(text.as_str().unwrap_or_default());
        }
        self.actions.push_back(Action::Chunk(chunk));
    }

    /// A committed stream ended properly.
    fn finish_stream(&mut self, id: AttemptId, now: Instant) {
        let a = &mut self.attempts[id.0 as usize];
        a.record.ended = Some(now - self.started);
        a.phase = Phase::Ended;
        let (provider, probe) = (a.record.provider_index, a.probe);
        // A stream's latency is its time to first output: what a hedge
        // races on, and what a caller waits for.
        let took = a
            .time_to_commit
            .unwrap_or(now - (self.started + a.record.started));
        self.shared
            .record(provider, Verdict::Success, probe, Some(took), now);
        // A stream is checked whole, at its end; it cannot fail over now.
        let schema_valid = self.quality.as_ref().and_then(|q| q.check_text());
        match schema_valid {
            Some(passed) => self.record_quality(id, passed, now),
            None if std::mem::take(&mut self.attempts[id.0 as usize].quality_probe) => {
                self.release_quality(provider)
            }
            None => {}
        }
        self.actions.push_back(Action::Cancel { attempt: id });
        let provider_index = self.attempts[id.0 as usize].record.provider_index;
        let routed = Routed {
            provider: self.shared.config.providers[provider_index].name.clone(),
            provider_index,
            response: Value::Null,
            attempts: self.records(),
            latency: now - self.started,
            schema_valid,
        };
        self.complete(Ok(routed));
    }

    /// A committed stream failed: it ends with an error, on no other
    /// provider (the caller already has part of this answer).
    /// (The caller cancels the attempt's request where it is still open.)
    fn interrupt(&mut self, id: AttemptId, fault: Fault, detail: String, now: Instant) {
        let a = &mut self.attempts[id.0 as usize];
        a.record.detail = detail.clone();
        self.settle(id, AttemptOutcome::Soft, Some(fault), now);
        let provider = self.attempts[id.0 as usize].record.provider.clone();
        let attempts = self.records();
        self.complete(Err(RouteError::StreamInterrupted {
            provider,
            message: detail,
            attempts,
        }));
    }

    // ---- internals ------------------------------------------------------

    fn phase(&self, id: AttemptId) -> Option<Phase> {
        self.attempts.get(id.0 as usize).map(|a| a.phase)
    }

    fn provider_of(&self, id: AttemptId) -> &ProviderConfig {
        &self.shared.config.providers[self.attempts[id.0 as usize].record.provider_index]
    }

    /// Legs whose outcome is still open.
    fn in_flight(&self) -> usize {
        let open = |a: &&AttemptState| {
            matches!(
                a.phase,
                Phase::AwaitingHead | Phase::ReadingBody | Phase::Streaming | Phase::Committed
            )
        };
        self.attempts.iter().filter(open).count()
    }

    /// The transport failed for `id` before it was the caller's: a soft
    /// failure, and the next leg.
    fn fail_transport(&mut self, id: AttemptId, fault: TransportFault, now: Instant) {
        if fault == TransportFault::BodyTooLarge {
            // Found by the core, not the host: stop reading it.
            self.actions.push_back(Action::Cancel { attempt: id });
        }
        self.attempts[id.0 as usize].record.detail = fault.to_string();
        self.settle(id, AttemptOutcome::Soft, Some(Fault::Transport(fault)), now);
        self.fill(now, Trigger::Failure);
    }

    /// The outcome is decided; read the error body for its message, briefly.
    fn drain(&mut self, id: AttemptId, now: Instant) {
        let a = &mut self.attempts[id.0 as usize];
        a.phase = Phase::Draining;
        a.deadline = a.deadline.min(now + DRAIN_GRACE);
    }

    fn settle(
        &mut self,
        id: AttemptId,
        outcome: AttemptOutcome,
        fault: Option<Fault>,
        now: Instant,
    ) {
        let started = self.started;
        let a = &mut self.attempts[id.0 as usize];
        a.record.outcome = outcome;
        a.record.fault = fault;
        a.record.ended = Some(now - started);
        a.phase = Phase::Ended;
        // An answer in the wrong format came from a provider that answered:
        // a success for its health, whatever it was for the call.
        let answered =
            outcome == AttemptOutcome::Success || a.record.fault == Some(Fault::SchemaInvalid);
        let verdict = match outcome {
            _ if answered => Verdict::Success,
            AttemptOutcome::Soft => Verdict::Failure,
            _ => Verdict::Neutral,
        };
        let (provider, probe) = (a.record.provider_index, a.probe);
        let took = answered.then(|| now - (started + a.record.started));
        if outcome != AttemptOutcome::Success {
            // Not used: the reservation goes back.
            self.shared.settle_tokens(provider, a.tokens, None, now);
        }
        if std::mem::take(&mut a.quality_probe) {
            // Ended without a checked result: another call may probe.
            self.release_quality(provider);
        }
        self.shared.record(provider, verdict, probe, took, now);
    }

    /// Start legs as the policy allows.
    fn fill(&mut self, now: Instant, trigger: Trigger) {
        if self.stopped {
            self.hedge_at = None;
            return;
        }
        let policy = self.shared.config.policy;
        let k = policy.max_in_flight();
        let delay = policy.hedge_delay();
        if delay == HedgeDelay::Immediate {
            while self.in_flight() < k && self.dispatch_leg(now, trigger) {}
            return;
        }
        if self.in_flight() < k && (self.in_flight() == 0 || trigger != Trigger::Start) {
            self.dispatch_leg(now, trigger);
        }
        let more = !self.stopped
            && !self.hedge_refused
            && self.in_flight() < k
            && self.next_candidate < self.candidates.len();
        self.hedge_at = more.then(|| self.last_dispatch + self.hedge_wait(delay, now));
    }

    /// How long after the latest leg the next one waits.
    fn hedge_wait(&self, delay: HedgeDelay, now: Instant) -> Duration {
        match delay {
            HedgeDelay::Immediate => Duration::ZERO,
            HedgeDelay::Fixed(d) => d,
            HedgeDelay::Auto { fallback } => {
                // The call waits on its latest leg's provider.
                let waited_on = self.attempts.last().map(|a| a.record.provider_index);
                waited_on.map_or(fallback, |p| self.shared.auto_hedge_delay(p, fallback, now))
            }
        }
    }

    /// Start one more leg, if a candidate is left and, for an extra leg
    /// that is not a failover, the hedge budget pays for it.
    fn dispatch_leg(&mut self, now: Instant, trigger: Trigger) -> bool {
        let extra = self.in_flight() > 0 && trigger != Trigger::Failure;
        if extra {
            if self.hedge_refused || self.next_candidate >= self.candidates.len() {
                return false;
            }
            if !self.shared.take_hedge_token() {
                self.hedge_refused = true;
                return false;
            }
            if !self.dispatch_next(now) {
                // No candidate could take it after all: nothing was spent.
                self.shared.refund_hedge_token();
                return false;
            }
            return true;
        }
        self.dispatch_next(now)
    }

    /// Send to the next candidate. `false` when none is left.
    fn dispatch_next(&mut self, now: Instant) -> bool {
        // A half-open candidate whose probe another call holds is skipped.
        let (provider_index, probe, quality_probe) = loop {
            let Some(&provider_index) = self.candidates.get(self.next_candidate) else {
                return false;
            };
            // When every provider was out, the candidates are a last
            // resort: their budgets are overdrawn rather than refused.
            // Another call may hold this provider's quality probe for our
            // tenant and model: skip it then, as a held health probe.
            let Some(quality_probe) = self.claim_quality(provider_index, now) else {
                self.next_candidate += 1;
                continue;
            };
            match self
                .shared
                .claim(provider_index, now, self.tokens, self.last_resort)
            {
                Some(probe) => break (provider_index, probe, quality_probe),
                None => {
                    if quality_probe {
                        self.release_quality(provider_index);
                    }
                    self.next_candidate += 1;
                }
            }
        };
        let Some(request) = self
            .requests
            .get_mut(self.next_candidate)
            .and_then(Option::take)
        else {
            if probe {
                self.shared
                    .record(provider_index, Verdict::Neutral, true, None, now);
            }
            if quality_probe {
                self.release_quality(provider_index);
            }
            return false;
        };
        self.next_candidate += 1;
        let hedge = self.in_flight() > 0;
        if hedge {
            self.shared.hedge_sent();
        }
        let provider = &self.shared.config.providers[provider_index];
        let id = AttemptId(self.attempts.len() as u32);
        self.attempts.push(AttemptState {
            record: Attempt {
                id,
                provider_index,
                provider: provider.name.clone(),
                started: now - self.started,
                ended: None,
                outcome: AttemptOutcome::InFlight,
                status: None,
                fault: None,
                detail: String::new(),
            },
            phase: Phase::AwaitingHead,
            deadline: now + provider.timeout,
            hard_body: None,
            body: Vec::new(),
            stream: None,
            probe,
            hedge,
            tokens: if provider.tpm.is_some() {
                self.tokens
            } else {
                0
            },
            time_to_commit: None,
            quality_probe,
        });
        self.last_dispatch = now;
        self.actions.push_back(Action::Send {
            attempt: id,
            provider: provider_index,
            request,
        });
        true
    }

    /// `Some(holds the quality probe)` if this call may send to `provider`.
    fn claim_quality(&self, provider: usize, now: Instant) -> Option<bool> {
        match &self.quality_key {
            Some((tenant, model)) => self.shared.quality_claim(provider, tenant, model, now),
            None => Some(false),
        }
    }

    fn release_quality(&self, provider: usize) {
        if let Some((tenant, model)) = &self.quality_key {
            self.shared.quality_release(provider, tenant, model);
        }
    }

    /// `id`'s answer could not be judged: nothing recorded, and a quality
    /// probe it held is given back for another call.
    fn unjudged(&mut self, id: AttemptId) {
        let a = &mut self.attempts[id.0 as usize];
        if std::mem::take(&mut a.quality_probe) {
            let provider = a.record.provider_index;
            self.release_quality(provider);
        }
    }

    /// `id`'s answer was checked: record it (which resolves a probe).
    fn record_quality(&mut self, id: AttemptId, passed: bool, now: Instant) {
        let a = &mut self.attempts[id.0 as usize];
        a.quality_probe = false;
        let provider = a.record.provider_index;
        if let Some(q) = &self.quality {
            self.shared
                .quality_record(provider, &q.tenant, &q.model, passed, now);
        }
    }

    fn win(&mut self, id: AttemptId, response: Value, now: Instant) {
        let mut schema_valid = None;
        if let Some(q) = &self.quality {
            // No text fails; JSON the validator cannot judge is not counted.
            let verdict = schema::content(&response).map_or(Some(false), |c| q.expect.check(c));
            let Some(passed) = verdict else {
                self.unjudged(id);
                return self.accept(id, response, None, now);
            };
            self.record_quality(id, passed, now);
            schema_valid = Some(passed);
            let failover = self
                .shared
                .config
                .quality
                .is_some_and(|c| c.on_failure == OnFailure::Failover);
            if !passed && failover {
                return self.schema_failover(id, &response, now);
            }
        }
        self.accept(id, response, schema_valid, now);
    }

    /// `id`'s answer is the call's.
    fn accept(&mut self, id: AttemptId, response: Value, schema_valid: Option<bool>, now: Instant) {
        self.settle(id, AttemptOutcome::Success, None, now);
        let a = &self.attempts[id.0 as usize];
        if a.tokens > 0 {
            if let Some(used) = budget::used_tokens(&response) {
                self.shared
                    .settle_tokens(a.record.provider_index, a.tokens, Some(used), now);
            }
        }
        if self.attempts[id.0 as usize].hedge {
            self.shared.hedge_won();
        }
        self.cancel_rest(now);
        let provider_index = self.attempts[id.0 as usize].record.provider_index;
        let routed = Routed {
            provider: self.shared.config.providers[provider_index].name.clone(),
            provider_index,
            response,
            attempts: self.records(),
            latency: now - self.started,
            schema_valid,
        };
        self.complete(Ok(routed));
    }

    /// `id` answered, but not in the requested format, and the config
    /// says such an answer fails over: a soft failure for the call, not for
    /// the provider's health (it answered).
    fn schema_failover(&mut self, id: AttemptId, response: &Value, now: Instant) {
        let a = &mut self.attempts[id.0 as usize];
        let (provider, reserved) = (a.record.provider_index, std::mem::take(&mut a.tokens));
        a.record.detail = "the answer does not match the request's response_format".to_owned();
        self.shared
            .settle_tokens(provider, reserved, budget::used_tokens(response), now);
        self.settle(id, AttemptOutcome::Soft, Some(Fault::SchemaInvalid), now);
        self.fill(now, Trigger::Failure);
        self.check_done(now);
    }

    /// Cancel every attempt still open but the committed one.
    fn cancel_rest(&mut self, now: Instant) {
        let started = self.started;
        for a in &mut self.attempts {
            if a.phase == Phase::Ended || Some(a.record.id) == self.committed {
                continue;
            }
            if matches!(
                a.phase,
                Phase::AwaitingHead | Phase::ReadingBody | Phase::Streaming
            ) {
                a.record.outcome = AttemptOutcome::Cancelled;
                a.record.ended = Some(now - started);
                self.shared.record_cancelled(
                    a.record.provider_index,
                    now - (started + a.record.started),
                    now,
                );
                self.shared
                    .settle_tokens(a.record.provider_index, a.tokens, None, now);
                if a.probe {
                    // Says nothing about health: the probe is free again.
                    self.shared
                        .record(a.record.provider_index, Verdict::Neutral, true, None, now);
                }
            }
            if std::mem::take(&mut a.quality_probe) {
                if let Some((tenant, model)) = &self.quality_key {
                    self.shared
                        .quality_release(a.record.provider_index, tenant, model);
                }
            }
            a.phase = Phase::Ended;
            self.actions.push_back(Action::Cancel {
                attempt: a.record.id,
            });
        }
    }

    /// Finish with an error once nothing more can happen.
    fn check_done(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if let Some(message) = self.invalid.take() {
            self.cancel_rest(now);
            let attempts = self.records();
            return self.complete(Err(RouteError::InvalidRequest { message, attempts }));
        }
        let busy = self.attempts.iter().any(|a| a.phase != Phase::Ended);
        let more = !self.stopped && self.next_candidate < self.candidates.len();
        if busy || more {
            return;
        }
        let attempts = self.records();
        // The first hard failure in start order is the one reported.
        let hard = self
            .attempts
            .iter_mut()
            .find(|a| a.record.outcome == AttemptOutcome::Hard);
        let err = match hard {
            Some(h) => RouteError::Hard {
                provider: h.record.provider.clone(),
                status: h.record.status.unwrap_or(0),
                message: h.record.detail.clone(),
                body: h.hard_body.take().unwrap_or_default(),
                attempts,
            },
            None => RouteError::AllFailed { attempts },
        };
        self.complete(Err(err));
    }

    fn complete(&mut self, result: Result<Routed, RouteError>) {
        self.finished = true;
        self.hedge_at = None;
        self.actions.push_back(Action::Complete(result));
    }

    fn records(&self) -> Vec<Attempt> {
        self.attempts.iter().map(|a| a.record.clone()).collect()
    }
}

/// A call dropped before its end (its host gave up: Ctrl-C, a client gone)
/// gives back the half-open probes its open attempts held, or their
/// providers would wait for a verdict that never comes.
impl Drop for Call {
    fn drop(&mut self) {
        for a in &self.attempts {
            if a.probe && a.phase != Phase::Ended {
                let at = self.started + a.record.started;
                self.shared
                    .record(a.record.provider_index, Verdict::Neutral, true, None, at);
            }
            if a.quality_probe {
                self.release_quality(a.record.provider_index);
            }
        }
    }
}

/// Check the caller's request enough to fail fast, before anything is sent;
/// say whether (and how) it streams.
fn validate(body: Value) -> Result<(Map<String, Value>, Option<StreamMode>), String> {
    let Value::Object(body) = body else {
        return Err(
            "the request body must be a JSON object (an OpenAI chat-completions request)"
                .to_owned(),
        );
    };
    match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err("\"messages\" is empty: give at least one message".to_owned())
        }
        _ => return Err("\"messages\" is required: a list of chat messages".to_owned()),
    }
    // Fields the router itself reads must have their JSON type: a truthy
    // `"stream": "true"` forwarded as is would stream at the upstream.
    let streams = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "\"stream\" must be true or false, not {}",
                json_type(other)
            ))
        }
    };
    match body.get("model") {
        None => {}
        // The model is part of a quality key, and logged.
        Some(Value::String(model)) => quality::check_model(model)?,
        Some(other) => {
            return Err(format!(
                "\"model\" must be a string, not {}",
                json_type(other)
            ))
        }
    }
    let include_usage = match body.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "\"stream_options.include_usage\" must be true or false, not {}",
                    json_type(other)
                ))
            }
        },
        Some(other) => {
            return Err(format!(
                "\"stream_options\" must be an object, not {}",
                json_type(other)
            ))
        }
    };
    schema::response_format(&body)?;
    let mode = streams.then_some(StreamMode { include_usage });
    Ok((body, mode))
}

/// A JSON value's type, for messages that must not echo the value.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Remove the provider's credentials from upstream text before it reaches
/// errors or logs: some servers echo the key they were given, escaped or not.
fn redact(text: &str, provider: &ProviderConfig) -> String {
    let secrets: Vec<&str> = provider.secrets().collect();
    secret::redact(text, &secrets)
}
