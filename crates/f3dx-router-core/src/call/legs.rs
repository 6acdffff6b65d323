//! Leg planning and hedging: which candidate is sent next, and when a
//! further leg starts.

use std::sync::Arc;
use std::time::Duration;

use super::action::Action;
use super::phase::{Phase, Step};
use super::state::{AttemptState, Call};
use crate::attempt::{Attempt, AttemptId, AttemptOutcome};
use crate::config::HedgeDelay;
use crate::health::Verdict;
use crate::time::Instant;

/// Why `fill` runs: only a start, a failure or a hedge timer may add a leg in
/// delayed mode.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    Start,
    Failure,
    HedgeTimer,
}

impl Call {
    /// Start legs as the policy allows.
    pub(super) fn fill(&mut self, now: Instant, trigger: Trigger) {
        if self.stopped || self.held_back() {
            self.hedge_at = None;
            return;
        }
        self.send_due_retries(now);
        let policy = self.shared.config().table.groups[self.group].policy;
        let k = policy.max_in_flight();
        let delay = policy.hedge_delay();
        if delay == HedgeDelay::Immediate {
            while self.legs() < k && self.dispatch_leg(now, trigger) {}
            return;
        }
        if self.legs() < k && (self.legs() == 0 || trigger != Trigger::Start) {
            self.dispatch_leg(now, trigger);
        }
        let more = !self.stopped
            && !self.hedge_refused
            && self.legs() < k
            && self.next_candidate < self.candidates.len()
            && !self.next_waits();
        self.hedge_at = more.then(|| self.last_dispatch + self.hedge_wait(delay, now));
    }

    /// How long after the latest leg the next one waits.
    fn hedge_wait(&self, delay: HedgeDelay, now: Instant) -> Duration {
        match delay {
            HedgeDelay::Immediate => Duration::ZERO,
            HedgeDelay::Fixed(d) => d,
            HedgeDelay::Auto { fallback } => {
                // The call waits on its latest leg's deployment.
                let waited_on = self.attempts.last().map(|a| a.slot);
                waited_on.map_or(fallback, |p| self.shared.auto_hedge_delay(p, fallback, now))
            }
        }
    }

    /// Start one more leg, if a candidate is left and, for an extra leg
    /// that is not a failover, the hedge budget pays for it.
    fn dispatch_leg(&mut self, now: Instant, trigger: Trigger) -> bool {
        let extra = self.legs() > 0 && trigger != Trigger::Failure;
        if extra {
            if self.hedge_refused || self.next_candidate >= self.candidates.len() {
                return false;
            }
            if !self.shared.take_hedge_token(self.group) {
                self.hedge_refused = true;
                return false;
            }
            if !self.dispatch_next(now) {
                // No candidate could take it after all: nothing was spent.
                self.shared.refund_hedge_token(self.group);
                return false;
            }
            return true;
        }
        self.dispatch_next(now)
    }

    /// The next candidate is a fallback group's while an attempt of an
    /// earlier group is still open (or waits to be retried): it waits for
    /// that attempt's end.
    pub(super) fn next_waits(&self) -> bool {
        let Some(&d) = self.candidates.get(self.next_candidate) else {
            return false;
        };
        let table = &self.shared.config().table;
        let group = table.deployments[d].group;
        let other = |e: usize| table.deployments[e].group != group;
        self.attempts
            .iter()
            .any(|a| a.phase.is_open() && other(a.deployment))
            || self.retries.iter().any(|r| other(r.deployment))
    }

    /// Send each retry whose time has come, earliest first; one that
    /// cannot be sent (its deployment is out now) is dropped, and the call
    /// moves on.
    fn send_due_retries(&mut self, now: Instant) {
        // Each round sends or drops one: bounded by the retries waiting.
        while let Some(i) = (0..self.retries.len())
            .filter(|&i| self.retries[i].at <= now)
            .min_by_key(|&i| self.retries[i].at)
        {
            let r = self.retries.remove(i);
            let slot = self.shared.config().table.deployments[r.deployment].slot;
            // Health may have ruled it out since (an ejection after its
            // failures), unless it is the last resort anyway.
            if self.last_resort || self.shared.is_usable(slot, now, self.tokens) {
                self.send_to(r.deployment, r.retry, now);
            }
        }
    }

    /// Send to the next candidate. `false` when none is left (or the next
    /// waits for the attempts before it).
    fn dispatch_next(&mut self, now: Instant) -> bool {
        // A candidate that cannot take the call now is skipped: bounded by
        // the candidates.
        loop {
            if self.next_waits() {
                return false;
            }
            let Some(&deployment) = self.candidates.get(self.next_candidate) else {
                return false;
            };
            self.next_candidate += 1;
            if self.send_to(deployment, 0, now) {
                return true;
            }
        }
    }

    /// Send the request to `deployment` (its `retry`-th retry there), if
    /// it may take it now: `false` when another call holds its half-open
    /// or quality probe, its budget is spent, or there is no request for it.
    fn send_to(&mut self, deployment: usize, retry: u32, now: Instant) -> bool {
        let shared = Arc::clone(&self.shared);
        let table = &shared.config().table;
        let d = &table.deployments[deployment];
        let (slot, provider_index) = (d.slot, d.provider);
        // Another call may hold this deployment's quality probe for our
        // tenant and model: skip it then, as a held health probe.
        let Some(quality_probe) = self.claim_quality(slot, now) else {
            return false;
        };
        // When every deployment was out, the candidates are a last resort:
        // their budgets are overdrawn rather than refused.
        let Some(probe) = shared.claim(slot, now, self.tokens, self.last_resort) else {
            if quality_probe {
                self.release_quality(slot);
            }
            return false;
        };
        // A deployment that may retry keeps its request for the retry.
        let request = match self.requests.iter_mut().find(|(e, _)| *e == deployment) {
            Some((_, r)) if d.retry.retries > 0 => r.clone(),
            Some((_, r)) => r.take(),
            None => None,
        };
        let Some(request) = request else {
            if probe {
                shared.record(slot, Verdict::Neutral, true, None, now);
            }
            if quality_probe {
                self.release_quality(slot);
            }
            return false;
        };
        let hedge = self.in_flight() > 0;
        if hedge {
            self.shared.hedge_sent();
        }
        let provider = &shared.config().providers[provider_index];
        let id = AttemptId(self.attempts.len() as u32);
        self.attempts.push(AttemptState {
            record: Attempt {
                id,
                provider_index,
                provider: provider.name.clone(),
                group: table.declared.then(|| table.groups[d.group].name.clone()),
                model: d.model.clone().filter(|_| table.declared),
                started: now - self.started,
                ended: None,
                outcome: AttemptOutcome::InFlight,
                status: None,
                fault: None,
                detail: String::new(),
                dropped: self
                    .dropped
                    .iter()
                    .find(|(e, _)| *e == deployment)
                    .map(|(_, names)| names.clone())
                    .unwrap_or_default(),
            },
            deployment,
            slot,
            phase: Phase::AwaitingHead,
            deadline: now + d.timeout,
            hard_body: None,
            body: Vec::new(),
            stream: None,
            probe,
            hedge,
            tokens: if table.slots[slot].tpm.is_some() {
                self.tokens
            } else {
                0
            },
            time_to_commit: None,
            quality_probe,
            retry,
            retry_after: None,
            undecided: false,
        });
        self.last_dispatch = now;
        self.actions.push_back(Action::Send {
            attempt: id,
            provider: provider_index,
            request,
        });
        true
    }

    /// Cancel every attempt still open but the committed one, and every
    /// retry waiting.
    pub(super) fn cancel_rest(&mut self, now: Instant) {
        self.retries.clear();
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
                self.shared
                    .record_cancelled(a.slot, now - (started + a.record.started), now);
                self.shared.settle_tokens(a.slot, a.tokens, None, now);
                if a.probe {
                    // Says nothing about health: the probe is free again.
                    self.shared
                        .record(a.slot, Verdict::Neutral, true, None, now);
                }
            }
            if std::mem::take(&mut a.quality_probe) {
                if let Some((tenant, model)) = &self.quality_key {
                    self.shared.quality_release(a.slot, tenant, model);
                }
            }
            a.step(Step::Cancel);
            self.actions.push_back(Action::Cancel {
                attempt: a.record.id,
            });
        }
    }
}
