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
//!
//! # Files
//!
//! This file is the poll/handle API. The rest, leaves first (no file
//! imports one below it):
//!
//! - `phase`: an attempt's phases and the one table of moves between them.
//! - `action`: what a call hands its host ([`Action`], [`CallOptions`]).
//! - `request`: the caller's request checked before anything is sent.
//! - `check`, `stream`: what a call checks its answer against; what a
//!   streamed attempt holds.
//! - `state`: the [`Call`] and each attempt's state.
//! - `legs`: leg planning and hedging (which candidate next, and when).
//! - `settle`: ending attempts and the call (health, budgets, the result).
//! - `classes`: failover classes (an error body that decides a 4xx, a
//!   refusal set aside, retries on the same deployment).
//! - `quality`: quality bookkeeping (checks, pass rates, probes).
//! - `commit`: a streamed attempt's events, its commit point and its end.
//! - `start`: a call's start (checks, encoding, candidates, first legs).
//! - `explain`: what a call would do now, planned by `start` without
//!   sending or changing anything.

mod action;
mod check;
mod classes;
mod commit;
mod explain;
mod legs;
mod phase;
mod quality;
mod request;
mod settle;
mod start;
mod state;
mod stream;

use crate::attempt::{AttemptId, AttemptOutcome, Fault};
use crate::codec;
use crate::events::CoolingCause;
use crate::failure::{classify_status, retry_after, StatusClass};
use crate::http::{ResponseHead, TransportFault};
use crate::ratelimit;
use crate::time::Instant;
pub use action::{Action, CallOptions};
pub(crate) use explain::explain;
use legs::Trigger;
use phase::{Phase, Step};
pub use state::Call;
use stream::{StreamState, StreamTail};

/// Most of an error body kept for its message: past this it is cut.
const MAX_ERROR_BODY: usize = 64 * 1024;

impl Call {
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
        deadlines.chain(self.hedge_at).chain(self.retry_due()).min()
    }

    /// Whether the request streams (`"stream": true`).
    pub fn is_streamed(&self) -> bool {
        self.stream.is_some()
    }

    /// Whether the call has produced its result.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// A response head arrived for `id`.
    pub fn handle_head(&mut self, id: AttemptId, head: ResponseHead, now: Instant) {
        self.catch_up(now);
        if self.finished || self.phase(id) != Some(Phase::AwaitingHead) {
            return;
        }
        let class = classify_status(head.status);
        let (provider, slot) = {
            let a = &self.attempts[id.0 as usize];
            (a.record.provider_index, a.slot)
        };
        if class == StatusClass::Soft {
            if let Some(wait) = retry_after(&head) {
                self.shared
                    .cool(slot, CoolingCause::RetryAfter, now + wait, now);
                self.attempts[id.0 as usize].retry_after = Some(wait);
            }
        }
        // Any answer may say a rate limit is spent: wait for its reset
        // rather than for the 429.
        if let Some(wait) = ratelimit::exhausted_for(&head) {
            self.shared
                .cool(slot, CoolingCause::RateLimitHeaders, now + wait, now);
        }
        self.attempts[id.0 as usize].record.status = Some(head.status);
        match class {
            StatusClass::Success => {
                let p = &self.shared.config().providers[provider];
                let declared = head
                    .header("content-length")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let a = &mut self.attempts[id.0 as usize];
                match self.stream {
                    Some(mode) => {
                        a.step(Step::Head { streamed: true });
                        a.stream = Some(Box::new(StreamState::new(p, mode, &head, now)));
                    }
                    // A body the head says is over the cap is refused now,
                    // without reading it.
                    None if declared.is_some_and(|n| n > p.max_body_bytes as u64) => {
                        self.fail_transport(id, TransportFault::BodyTooLarge, now);
                    }
                    None => a.step(Step::Head { streamed: false }),
                }
            }
            StatusClass::Soft => {
                self.drain(id, AttemptOutcome::Soft, now);
                self.fill(now, Trigger::Failure);
            }
            StatusClass::Hard => {
                // Hard unless its error body says otherwise (`classes`):
                // nothing new starts until it is read.
                self.drain(id, AttemptOutcome::Hard, now);
                self.attempts[id.0 as usize].undecided = true;
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
            Some(Phase::Streaming | Phase::Committed) => self.stream_bytes(id, bytes, false, now),
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
                    Ok(response) => {
                        // An OpenAI answer is passed on as it came: its bytes
                        // stay for the front door (see `Routed::body`).
                        if provider.kind.speaks_openai() {
                            self.attempts[id.0 as usize].body = body;
                        }
                        return self.win(id, response, now);
                    }
                    Err(reason) => {
                        let detail = self.redact(id, &reason);
                        self.attempts[id.0 as usize].record.detail = detail;
                        self.settle(id, AttemptOutcome::Soft, Some(Fault::Undecodable), now);
                        self.fill(now, Trigger::Failure);
                    }
                }
            }
            Some(Phase::Draining) => {
                let body = std::mem::take(&mut self.attempts[id.0 as usize].body);
                // Redact before anything is cut short, so no piece of a key
                // survives a truncation; the raw text is redacted in every
                // escaping, and decoding can still join pieces (a key split
                // by an escape of an escape), so the message is redacted
                // once more.
                let text = self.redact(id, &String::from_utf8_lossy(&body));
                let message = codec::error_message(text.as_bytes())
                    .unwrap_or_else(|| codec::body_excerpt(text.as_bytes()));
                let message = self.redact(id, &message);
                let a = &mut self.attempts[id.0 as usize];
                a.record.detail = message;
                a.step(Step::Drained);
                self.decide_failure(id, &text, now);
                let a = &mut self.attempts[id.0 as usize];
                if a.record.outcome == AttemptOutcome::Hard {
                    a.hard_body = Some(text);
                }
            }
            Some(Phase::Streaming | Phase::Committed) => {
                self.stream_bytes(id, Vec::new(), true, now)
            }
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
            // The status decides (an undecided one stays hard); only the
            // message is lost.
            Some(Phase::Draining) => {
                self.attempts[id.0 as usize].step(Step::Drained);
                self.decide_failure(id, "", now);
            }
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
        let overdue = |a: &state::AttemptState| {
            !matches!(a.phase, Phase::Ended | Phase::Committed) && a.deadline < now
        };
        let due = |t: Option<Instant>| t.is_some_and(|t| t < now);
        if due(self.hedge_at) || due(self.retry_due()) || self.attempts.iter().any(overdue) {
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
                Phase::Draining => {
                    // The body stalled: what arrived of it decides.
                    self.attempts[i].step(Step::Drained);
                    let body = std::mem::take(&mut self.attempts[i].body);
                    let text = self.redact(id, &String::from_utf8_lossy(&body));
                    self.decide_failure(id, &text, now);
                }
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
        if self.retry_due().is_some_and(|t| t <= now) {
            self.fill(now, Trigger::Failure);
        }
        if self.hedge_at.is_some_and(|t| t <= now) {
            self.fill(now, Trigger::HedgeTimer);
        }
        self.check_done(now);
    }
}
