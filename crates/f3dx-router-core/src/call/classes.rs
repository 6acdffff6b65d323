//! Failover classes in the call (docs/failover.md): an error body that
//! makes a failure head soft or sends the call elsewhere (a context
//! overflow, a content-policy error, `failover_on`), a refusal set aside
//! for a `content_policy_fallbacks` group, and retries on the same
//! deployment.
//!
//! A failure head that would be hard (a 4xx other than 408 and 429) is
//! *undecided* until its error body is read (at most the drain's grace):
//! nothing new is sent meanwhile, as after a hard failure, so the payload
//! is never replayed before the body says it may be. A hard failure's body
//! was always read before the call ended, so this costs the hard path
//! nothing; a soft status (408, 429, 5xx) is decided at its head as before.

use std::sync::Arc;

use serde_json::Value;

use super::legs::Trigger;
use super::state::{Call, PendingRetry};
use crate::attempt::{AttemptId, AttemptOutcome, Fault};
use crate::failover::{classify_error, ErrorClass, UpstreamError};
use crate::health::Verdict;
use crate::time::Instant;

impl Call {
    /// `id`'s error body ended (or failed, or ran out of time): decide an
    /// undecided failure from `body` (redacted), and go on or stop.
    pub(super) fn decide_failure(&mut self, id: AttemptId, body: &str, now: Instant) {
        let i = id.0 as usize;
        if !std::mem::take(&mut self.attempts[i].undecided) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let (deployment, slot) = (self.attempts[i].deployment, self.attempts[i].slot);
        let status = self.attempts[i].record.status.unwrap_or(0);
        let error = UpstreamError::read(body.as_bytes());
        let goes_on = match classify_error(status, &error) {
            ErrorClass::ContextOverflow => {
                self.attempts[i].record.fault = Some(Fault::ContextOverflow);
                let larger = self.reroute_larger(deployment, now);
                if larger {
                    // The deployment is fine; the request was too long for it.
                    self.attempts[i].record.outcome = AttemptOutcome::Soft;
                }
                larger
            }
            // Still the failure the caller sees if the fallback group
            // fails too: it outranks their soft failures.
            ErrorClass::ContentPolicy => {
                self.attempts[i].record.fault = Some(Fault::ContentPolicy);
                self.reroute_content(deployment, now)
            }
            ErrorClass::Other
                if shared.config().table.deployments[deployment]
                    .failover_on
                    .matches(status, &error) =>
            {
                self.attempts[i].record.outcome = AttemptOutcome::Soft;
                // Made soft by the config: a failure of the deployment.
                shared.record(slot, Verdict::Failure, false, None, now);
                self.plan_retry(id, now);
                true
            }
            ErrorClass::Other => false,
        };
        if goes_on {
            self.fill(now, Trigger::Failure);
        } else {
            self.stopped = true;
            self.retries.clear();
            self.hedge_at = None;
        }
    }

    /// After an overflow on `deployment`: only candidates with a larger
    /// declared `context_window` are left, then its group's
    /// `context_window_fallbacks` (whose deployments may declare none: the
    /// config named them for long requests). `false` when none is left.
    fn reroute_larger(&mut self, deployment: usize, now: Instant) -> bool {
        let shared = Arc::clone(&self.shared);
        let table = &shared.config().table;
        let window = table.deployments[deployment].context_window;
        let larger = |e: usize| match (window, table.deployments[e].context_window) {
            (Some(w), Some(x)) => x > w,
            _ => false,
        };
        let mut rest = self.candidates.split_off(self.next_candidate);
        rest.retain(|&e| larger(e));
        self.retries.retain(|r| larger(r.deployment));
        let group = table.deployments[deployment].group;
        for &g in &table.groups[group].context_window_fallbacks {
            let (order, _) = shared.candidates(g, now, self.tokens, &|_| true, None);
            for e in order {
                // Unknown on either side: the config named it for this.
                let fits = match (window, table.deployments[e].context_window) {
                    (Some(w), Some(x)) => x > w,
                    _ => true,
                };
                if fits && !rest.contains(&e) && self.reachable(e) {
                    rest.push(e);
                }
            }
        }
        let any = !rest.is_empty() || !self.retries.is_empty();
        self.candidates.extend(rest);
        any
    }

    /// After a content-policy error or refusal on `deployment`: its
    /// group's `content_policy_fallbacks` groups are tried instead of the
    /// rest (opt-in: it moves the content to another vendor). `false`
    /// when it names none (the failure is returned as it is).
    fn reroute_content(&mut self, deployment: usize, now: Instant) -> bool {
        let shared = Arc::clone(&self.shared);
        let table = &shared.config().table;
        let group = table.deployments[deployment].group;
        let fallbacks = &table.groups[group].content_policy_fallbacks;
        if fallbacks.is_empty() {
            return false;
        }
        self.candidates.truncate(self.next_candidate);
        self.retries.clear();
        for &g in fallbacks {
            let (order, _) = shared.candidates(g, now, self.tokens, &|_| true, None);
            for e in order {
                if self.reachable(e) {
                    self.candidates.push(e);
                }
            }
        }
        self.next_candidate < self.candidates.len()
    }

    /// Whether deployment `e` was not tried yet and has a request.
    fn reachable(&self, e: usize) -> bool {
        !self.candidates.contains(&e) && self.requests.iter().any(|(d, r)| *d == e && r.is_some())
    }

    /// `id`'s answer is a refusal (`finish_reason: "content_filter"`):
    /// with `content_policy_fallbacks` it is set aside while they are
    /// tried (`true`), and is the call's answer if none answers.
    pub(super) fn set_aside_refusal(
        &mut self,
        id: AttemptId,
        response: &Value,
        now: Instant,
    ) -> bool {
        let deployment = self.attempts[id.0 as usize].deployment;
        let group = self.shared.config().table.deployments[deployment].group;
        if self.shared.config().table.groups[group]
            .content_policy_fallbacks
            .is_empty()
            || !crate::failover::is_refusal(response)
        {
            return false;
        }
        let a = &mut self.attempts[id.0 as usize];
        let (slot, reserved) = (a.slot, std::mem::take(&mut a.tokens));
        a.record.detail = "the answer is a refusal (finish_reason content_filter)".to_owned();
        self.shared
            .settle_tokens(slot, reserved, crate::budget::used_tokens(response), now);
        self.settle(id, AttemptOutcome::Soft, Some(Fault::Refusal), now);
        self.reroute_content(deployment, now);
        self.refusal = Some((id, response.clone()));
        self.fill(now, Trigger::Failure);
        self.check_done(now);
        true
    }

    /// Nothing else answered: the refusal set aside is the call's answer.
    /// `false` when there is none.
    pub(super) fn return_refusal(&mut self, now: Instant) -> bool {
        let Some((id, response)) = self.refusal.take() else {
            return false;
        };
        self.cancel_rest(now);
        let a = &mut self.attempts[id.0 as usize];
        // It is the answer after all; its fault still says what it was.
        a.record.outcome = AttemptOutcome::Success;
        self.answer(id, response, None, now);
        true
    }

    /// `id` failed softly: retry on its deployment after a jittered
    /// backoff, if its retry policy allows another and no `Retry-After`
    /// asks for longer than the cap (then the call moves on, and the
    /// cooldown keeps other calls off it).
    pub(super) fn plan_retry(&mut self, id: AttemptId, now: Instant) {
        let a = &self.attempts[id.0 as usize];
        let policy = self.shared.config().table.deployments[a.deployment].retry;
        if policy.retries == 0 || self.stopped {
            return;
        }
        let retry = a.retry + 1;
        let (deployment, retry_after) = (a.deployment, a.retry_after);
        let draw = self.shared.retry_jitter(now);
        if let Some(wait) = policy.delay(retry, retry_after, draw) {
            self.retries.push(PendingRetry {
                at: now + wait,
                deployment,
                retry,
            });
        }
    }
}
