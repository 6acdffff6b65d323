//! Ending attempts and the call: an attempt's outcome recorded for health
//! and budgets, the winner accepted, the call's result decided.

use std::time::Duration;

use serde_json::Value;

use super::action::Action;
use super::legs::Trigger;
use super::phase::{Phase, Step};
use super::state::Call;
use crate::attempt::{AttemptId, AttemptOutcome, Fault};
use crate::budget;
use crate::error::{RouteError, Routed};
use crate::health::Verdict;
use crate::http::TransportFault;
use crate::time::Instant;

/// How long a failed attempt's error body may take after its head: the
/// outcome is already decided, so a stalled body must not hold the call.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

impl Call {
    /// The transport failed for `id` before it was the caller's: a soft
    /// failure, and the next leg.
    pub(super) fn fail_transport(&mut self, id: AttemptId, fault: TransportFault, now: Instant) {
        if fault == TransportFault::BodyTooLarge {
            // Found by the core, not the host: stop reading it.
            self.actions.push_back(Action::Cancel { attempt: id });
        }
        self.attempts[id.0 as usize].record.detail = fault.to_string();
        self.settle(id, AttemptOutcome::Soft, Some(Fault::Transport(fault)), now);
        self.fill(now, Trigger::Failure);
    }

    /// A failure head decided `id`'s outcome; its error body is still read
    /// for the message, briefly.
    pub(super) fn drain(&mut self, id: AttemptId, outcome: AttemptOutcome, now: Instant) {
        self.decide(id, outcome, None, Step::HeadFailed, now);
        let a = &mut self.attempts[id.0 as usize];
        a.deadline = a.deadline.min(now + DRAIN_GRACE);
    }

    /// `id`'s outcome is decided and nothing more is read from it.
    pub(super) fn settle(
        &mut self,
        id: AttemptId,
        outcome: AttemptOutcome,
        fault: Option<Fault>,
        now: Instant,
    ) {
        self.decide(id, outcome, fault, Step::Settle, now);
    }

    /// Record `id`'s outcome (for the caller, its provider's health and
    /// budgets) and move it on by `step`.
    fn decide(
        &mut self,
        id: AttemptId,
        outcome: AttemptOutcome,
        fault: Option<Fault>,
        step: Step,
        now: Instant,
    ) {
        let started = self.started;
        let a = &mut self.attempts[id.0 as usize];
        a.record.outcome = outcome;
        a.record.fault = fault;
        a.record.ended = Some(now - started);
        a.step(step);
        // An answer in the wrong format came from a provider that answered:
        // a success for its health, whatever it was for the call.
        let answered = outcome == AttemptOutcome::Success
            || matches!(a.record.fault, Some(Fault::SchemaInvalid | Fault::Refusal));
        let verdict = match outcome {
            _ if answered => Verdict::Success,
            AttemptOutcome::Soft => Verdict::Failure,
            _ => Verdict::Neutral,
        };
        let (slot, probe) = (a.slot, a.probe);
        let took = answered.then(|| now - (started + a.record.started));
        if outcome != AttemptOutcome::Success {
            // Not used: the reservation goes back.
            self.shared.settle_tokens(slot, a.tokens, None, now);
        }
        // The connection failed, not the model: every deployment of the
        // provider shares that connection.
        let connection = matches!(&a.record.fault, Some(Fault::Transport(t)) if t.is_connection());
        let provider = a.record.provider_index;
        if std::mem::take(&mut a.quality_probe) {
            // Ended without a checked result: another call may probe.
            self.release_quality(slot);
        }
        self.shared.record(slot, verdict, probe, took, now);
        if connection {
            self.shared.record_connection_failure(provider, slot, now);
        }
        // A failure of the deployment (not an answer it gave) may be tried
        // there again.
        if outcome == AttemptOutcome::Soft && !answered {
            self.plan_retry(id, now);
        }
    }

    /// `id`'s answer is the call's.
    pub(super) fn accept(
        &mut self,
        id: AttemptId,
        response: Value,
        schema_valid: Option<bool>,
        now: Instant,
    ) {
        self.settle(id, AttemptOutcome::Success, None, now);
        let a = &self.attempts[id.0 as usize];
        if a.tokens > 0 {
            if let Some(used) = budget::used_tokens(&response) {
                self.shared.settle_tokens(a.slot, a.tokens, Some(used), now);
            }
        }
        if self.attempts[id.0 as usize].hedge {
            self.shared.hedge_won();
        }
        self.cancel_rest(now);
        self.answer(id, response, schema_valid, now);
    }

    /// The call's result is `id`'s `response` (with the upstream's own
    /// bytes when they need no translation, for the front door).
    pub(super) fn answer(
        &mut self,
        id: AttemptId,
        response: Value,
        schema_valid: Option<bool>,
        now: Instant,
    ) {
        let a = &mut self.attempts[id.0 as usize];
        let provider_index = a.record.provider_index;
        let body = Some(std::mem::take(&mut a.body)).filter(|b| !b.is_empty());
        let routed = Routed {
            provider: self.shared.config().providers[provider_index].name.clone(),
            provider_index,
            response,
            body,
            attempts: self.records(),
            skipped: self.skipped.clone(),
            latency: now - self.started,
            schema_valid,
        };
        self.complete(Ok(routed));
    }

    /// Finish with an error once nothing more can happen.
    pub(super) fn check_done(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if let Some(message) = self.invalid.take() {
            self.cancel_rest(now);
            let attempts = self.records();
            let skipped = self.skipped.clone();
            return self.complete(Err(RouteError::InvalidRequest {
                message,
                attempts,
                skipped,
            }));
        }
        let busy = self.attempts.iter().any(|a| a.phase != Phase::Ended);
        let more = !self.stopped
            && (self.next_candidate < self.candidates.len() || !self.retries.is_empty());
        if busy || more {
            return;
        }
        // A refusal set aside for a fallback group that did not answer.
        if self.return_refusal(now) {
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
                skipped: self.skipped.clone(),
            },
            None => RouteError::AllFailed {
                attempts,
                skipped: self.skipped.clone(),
            },
        };
        self.complete(Err(err));
    }

    pub(super) fn complete(&mut self, result: Result<Routed, RouteError>) {
        self.finished = true;
        self.hedge_at = None;
        self.actions.push_back(Action::Complete(result));
    }
}
