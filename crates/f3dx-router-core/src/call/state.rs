//! What a call holds: the [`Call`] itself and each attempt's state.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::action::Action;
use super::check::QualityCheck;
use super::phase::{Phase, Step};
use super::request::StreamMode;
use super::stream::StreamState;
use crate::attempt::{Attempt, AttemptId, Skipped};
use crate::config::ProviderConfig;
use crate::credentials::Credentials;
use crate::health::Verdict;
use crate::http::HttpRequest;
use crate::shared::Shared;
use crate::time::Instant;

/// One attempt of a call: its record for the caller, and what the call
/// needs to act on its events.
#[derive(Debug)]
pub(super) struct AttemptState {
    pub(super) record: Attempt,
    /// The deployment it was sent to, and that deployment's slot (what
    /// its outcome is recorded against).
    pub(super) deployment: usize,
    pub(super) slot: usize,
    /// Where it is in its life; moved only by [`AttemptState::step`].
    pub(super) phase: Phase,
    pub(super) deadline: Instant,
    /// A hard failure's body (redacted), for the caller.
    pub(super) hard_body: Option<String>,
    /// The body read so far (buffered answers and error bodies).
    pub(super) body: Vec<u8>,
    /// A streamed attempt's parser and decoder, once its head arrived.
    pub(super) stream: Option<Box<StreamState>>,
    /// It holds its provider's half-open probe (its end is reported).
    pub(super) probe: bool,
    /// It started while another leg was in flight: a hedge.
    pub(super) hedge: bool,
    /// Tokens it reserved in its provider's `tpm` budget.
    pub(super) tokens: u64,
    /// A stream's time to its commit point: its latency sample.
    pub(super) time_to_commit: Option<Duration>,
    /// It holds its provider's quality probe for the call's tenant and
    /// model: it records a result, or gives the probe back.
    pub(super) quality_probe: bool,
    /// Which retry on its deployment it is (0: the first attempt there).
    pub(super) retry: u32,
    /// How long its soft failure's upstream asked to wait (`Retry-After`).
    pub(super) retry_after: Option<Duration>,
    /// A failure head that would be hard arrived, and its error body may
    /// still make it soft (docs/failover.md): no new leg starts meanwhile.
    pub(super) undecided: bool,
}

/// A retry of a soft failure on the same deployment, waiting for its time.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingRetry {
    /// When it is sent.
    pub(super) at: Instant,
    /// The deployment retried.
    pub(super) deployment: usize,
    /// Which retry it is there (1 for the first).
    pub(super) retry: u32,
}

/// A routed call in progress. Built by [`crate::Router::start_call`].
#[derive(Debug)]
pub struct Call {
    pub(super) shared: Arc<Shared>,
    pub(super) started: Instant,
    /// The model group the request's `model` picked.
    pub(super) group: usize,
    /// The deployments to try, in order: the group's, then its fallback
    /// groups' (a fallback group's only after every attempt before it
    /// ended).
    pub(super) candidates: Vec<usize>,
    /// The request for each deployment the call may reach (its groups,
    /// and their context-window and content-policy fallbacks), encoded up
    /// front so a request some deployment cannot carry is refused before
    /// anything is sent. Taken when sent, or copied for a deployment that
    /// may retry.
    pub(super) requests: Vec<(usize, Option<HttpRequest>)>,
    /// The keys the call started with (`None`: the config's): its requests
    /// carry them, and its upstream text is redacted of them, whatever
    /// `Router::set_api_key` does meanwhile.
    pub(super) credentials: Option<Arc<Credentials>>,
    /// Retries waiting for their time; each counts as a leg in flight.
    pub(super) retries: Vec<PendingRetry>,
    /// A refusal set aside while a `content_policy_fallbacks` group is
    /// tried: the call's answer if none answers.
    pub(super) refusal: Option<(AttemptId, Value)>,
    pub(super) next_candidate: usize,
    pub(super) attempts: Vec<AttemptState>,
    /// When the next delayed hedge leg fires.
    pub(super) hedge_at: Option<Instant>,
    /// The hedge budget refused an extra leg: this call hedges no more.
    pub(super) hedge_refused: bool,
    pub(super) last_dispatch: Instant,
    /// A hard failure (or an untranslatable request) stops new attempts.
    pub(super) stopped: bool,
    /// Set for a streamed request.
    pub(super) stream: Option<StreamMode>,
    /// The attempt a streamed call committed to.
    pub(super) committed: Option<AttemptId>,
    /// The request's `tpm` estimate (0 when no provider has a budget).
    pub(super) tokens: u64,
    /// No provider was usable: the candidates are tried all the same.
    pub(super) last_resort: bool,
    pub(super) invalid: Option<String>,
    pub(super) actions: VecDeque<Action>,
    pub(super) finished: bool,
    /// Set when the request has a checkable `response_format` and quality
    /// tracking is on.
    pub(super) quality: Option<Box<QualityCheck>>,
    /// The call's tenant and model, when quality tracking may exclude
    /// providers for them.
    pub(super) quality_key: Option<(String, String)>,
    /// Deployments passed over: they cannot carry the request's
    /// parameters (`unsupported_params: "error"`).
    pub(super) skipped: Vec<Skipped>,
    /// Deployments whose request goes without some parameters
    /// (`unsupported_params: "drop"`), and which.
    pub(super) dropped: Vec<(usize, Vec<String>)>,
}

impl AttemptState {
    /// Move the attempt on by `step`, as the phase table allows.
    pub(super) fn step(&mut self, step: Step) {
        self.phase = self.phase.after(step);
    }
}

impl Call {
    pub(super) fn phase(&self, id: AttemptId) -> Option<Phase> {
        self.attempts.get(id.0 as usize).map(|a| a.phase)
    }

    pub(super) fn provider_of(&self, id: AttemptId) -> &ProviderConfig {
        &self.shared.config().providers[self.attempts[id.0 as usize].record.provider_index]
    }

    /// `text` from `id`'s upstream without that provider's credentials,
    /// before it reaches errors or logs: some servers echo the key they
    /// were given, escaped or not.
    pub(super) fn redact(&self, id: AttemptId, text: &str) -> String {
        let provider = self.attempts[id.0 as usize].record.provider_index;
        self.shared
            .credentials(self.credentials.as_deref())
            .redact(provider, text)
    }

    /// Legs whose outcome is still open.
    pub(super) fn in_flight(&self) -> usize {
        self.attempts.iter().filter(|a| a.phase.is_open()).count()
    }

    /// Legs in flight and retries waiting to be sent: what the policy's
    /// `hedge_k` bounds.
    pub(super) fn legs(&self) -> usize {
        self.in_flight() + self.retries.len()
    }

    /// A failure head waits for its error body to decide whether the call
    /// goes on: nothing new is sent meanwhile.
    pub(super) fn held_back(&self) -> bool {
        self.attempts.iter().any(|a| a.undecided)
    }

    /// When the earliest waiting retry is due, if any may be sent.
    pub(super) fn retry_due(&self) -> Option<Instant> {
        if self.stopped || self.finished || self.held_back() {
            return None;
        }
        self.retries.iter().map(|r| r.at).min()
    }

    pub(super) fn records(&self) -> Vec<Attempt> {
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
                self.shared.record(a.slot, Verdict::Neutral, true, None, at);
            }
            if a.quality_probe {
                self.release_quality(a.slot);
            }
        }
    }
}
