//! A streamed attempt's bytes to its commit point and after: events parsed
//! and decoded, output held back or handed out, the commit, the stream's
//! end or interruption.

use serde_json::Value;

use super::action::Action;
use super::legs::Trigger;
use super::phase::{Phase, Step};
use super::state::Call;
use super::stream::StreamTail;
use crate::attempt::{AttemptId, AttemptOutcome, Fault};
use crate::codec::chunk::Chunk;
use crate::codec::stream::StreamItem;
use crate::error::RouteError;
use crate::health::Verdict;
use crate::http::TransportFault;
use crate::sse::SseEvent;
use crate::time::Instant;

impl Call {
    /// Feed a streamed attempt's bytes (`end`: its body ended) through its
    /// parser. Before the commit point events are decoded as they complete
    /// (the legs race, and order decides); from the commit point on, they
    /// wait until the host asks for output (see [`Call::pump`]).
    pub(super) fn stream_bytes(&mut self, id: AttemptId, bytes: Vec<u8>, end: bool, now: Instant) {
        if self.phase(id) == Some(Phase::Committed) {
            return self.queue_bytes(id, &bytes, end, now);
        }
        let cap = self.provider_of(id).max_body_bytes;
        // How much of `bytes` was parsed.
        let mut at = 0;
        while self.phase(id) == Some(Phase::Streaming) && at < bytes.len() {
            let Some(stream) = self.attempts[id.0 as usize].stream.as_mut() else {
                return;
            };
            let mut events = Vec::new();
            match stream.parser.feed_until_event(&bytes[at..], &mut events) {
                Ok(n) => at += n,
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
                // It committed in this read: the rest waits, unparsed (in
                // the read's own buffer: a read that brings a whole stream
                // is not copied).
                let Some(stream) = self.attempts[id.0 as usize].stream.as_mut() else {
                    return;
                };
                if stream.raw_at >= stream.raw.len() {
                    stream.raw = bytes;
                    stream.raw_at = at;
                } else {
                    stream.raw.extend_from_slice(&bytes[at..]);
                }
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
    pub(super) fn end_backlog(&mut self, id: AttemptId, tail: StreamTail) {
        if let Some(s) = self.attempts[id.0 as usize].stream.as_mut() {
            s.tail.get_or_insert(tail);
        }
    }

    /// Decode the committed stream's backlog until there is an action for
    /// the host, or nothing left; then act on its tail.
    pub(super) fn pump(&mut self) {
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
        if let Err(reason) = stream.decoder.decode(event, &mut items) {
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
                    let message = self.redact(id, &message);
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
        chunk: Chunk,
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
    pub(super) fn commit(&mut self, id: AttemptId, chunk: Chunk, now: Instant) {
        let idle = self.provider_of(id).stream_idle_timeout;
        if self.attempts[id.0 as usize].hedge {
            self.shared.hedge_won();
        }
        let started = self.started;
        let a = &mut self.attempts[id.0 as usize];
        a.step(Step::Output);
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
            q.text_cap = self.shared.config().providers[provider_index].max_body_bytes;
        }
        self.committed = Some(id);
        self.stopped = true;
        self.hedge_at = None;
        self.cancel_rest(now);
        self.actions.push_back(Action::Commit {
            provider: self.shared.config().providers[provider_index].name.clone(),
            provider_index,
            attempts: self.records(),
        });
        for c in held {
            self.emit(c);
        }
        self.emit(chunk);
    }

    /// Hand a committed stream's chunk to the caller (and keep its text
    /// when the answer is checked at the end).
    fn emit(&mut self, chunk: Chunk) {
        if let Some(q) = self.quality.as_mut() {
            q.keep(&chunk.content());
        }
        self.actions.push_back(Action::Chunk(chunk));
    }

    /// A committed stream ended properly.
    fn finish_stream(&mut self, id: AttemptId, now: Instant) {
        let a = &mut self.attempts[id.0 as usize];
        a.record.ended = Some(now - self.started);
        a.step(Step::Settle);
        let (slot, probe) = (a.slot, a.probe);
        // A stream's latency is its time to first output: what a hedge
        // races on, and what a caller waits for.
        let took = a
            .time_to_commit
            .unwrap_or(now - (self.started + a.record.started));
        self.shared
            .record(slot, Verdict::Success, probe, Some(took), now);
        // A stream is checked whole, at its end; it cannot fail over now.
        let schema_valid = self.quality.as_ref().and_then(|q| q.check_text());
        match schema_valid {
            Some(passed) => self.record_quality(id, passed, now),
            None if std::mem::take(&mut self.attempts[id.0 as usize].quality_probe) => {
                self.release_quality(slot)
            }
            None => {}
        }
        self.actions.push_back(Action::Cancel { attempt: id });
        // A stream's chunks were the answer: no body goes with it.
        self.attempts[id.0 as usize].body = Vec::new();
        self.answer(id, Value::Null, schema_valid, now);
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
            skipped: self.skipped.clone(),
        }));
    }
}
