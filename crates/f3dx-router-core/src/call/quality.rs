//! Quality bookkeeping: the call's answer checked against its
//! `response_format`, and the pass rates and probes that check feeds.

use serde_json::Value;

use super::legs::Trigger;
use super::state::Call;
use crate::attempt::{AttemptId, AttemptOutcome, Fault};
use crate::budget;
use crate::config::OnFailure;
use crate::schema;
use crate::time::Instant;

impl Call {
    /// `Some(holds the quality probe)` if this call may send to `slot`.
    pub(super) fn claim_quality(&self, slot: usize, now: Instant) -> Option<bool> {
        match &self.quality_key {
            Some((tenant, model)) => self.shared.quality_claim(slot, tenant, model, now),
            None => Some(false),
        }
    }

    pub(super) fn release_quality(&self, slot: usize) {
        if let Some((tenant, model)) = &self.quality_key {
            self.shared.quality_release(slot, tenant, model);
        }
    }

    /// `id`'s answer could not be judged: nothing recorded, and a quality
    /// probe it held is given back for another call.
    fn unjudged(&mut self, id: AttemptId) {
        let a = &mut self.attempts[id.0 as usize];
        if std::mem::take(&mut a.quality_probe) {
            let slot = a.slot;
            self.release_quality(slot);
        }
    }

    /// `id`'s answer was checked: record it (which resolves a probe).
    pub(super) fn record_quality(&mut self, id: AttemptId, passed: bool, now: Instant) {
        let a = &mut self.attempts[id.0 as usize];
        a.quality_probe = false;
        let slot = a.slot;
        if let Some(q) = &self.quality {
            self.shared
                .quality_record(slot, &q.config, &q.tenant, &q.model, passed, now);
        }
    }

    pub(super) fn win(&mut self, id: AttemptId, response: Value, now: Instant) {
        if self.set_aside_refusal(id, &response, now) {
            return;
        }
        let mut schema_valid = None;
        if let Some(q) = &self.quality {
            // No text fails; JSON the validator cannot judge is not counted.
            let verdict = schema::content(&response).map_or(Some(false), |c| q.expect.check(c));
            let Some(passed) = verdict else {
                self.unjudged(id);
                return self.accept(id, response, None, now);
            };
            let failover = q.config.on_failure == OnFailure::Failover;
            self.record_quality(id, passed, now);
            schema_valid = Some(passed);
            if !passed && failover {
                return self.schema_failover(id, &response, now);
            }
        }
        self.accept(id, response, schema_valid, now);
    }

    /// `id` answered, but not in the requested format, and the config
    /// says such an answer fails over: a soft failure for the call, not for
    /// the provider's health (it answered).
    fn schema_failover(&mut self, id: AttemptId, response: &Value, now: Instant) {
        let a = &mut self.attempts[id.0 as usize];
        let (slot, reserved) = (a.slot, std::mem::take(&mut a.tokens));
        a.record.detail = "the answer does not match the request's response_format".to_owned();
        self.shared
            .settle_tokens(slot, reserved, budget::used_tokens(response), now);
        self.settle(id, AttemptOutcome::Soft, Some(Fault::SchemaInvalid), now);
        self.fill(now, Trigger::Failure);
        self.check_done(now);
    }
}
