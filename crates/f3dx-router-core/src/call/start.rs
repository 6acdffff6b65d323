//! Starting a call: check the request, encode it for every provider, pick
//! the candidates, send the first legs.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::action::CallOptions;
use super::check::QualityCheck;
use super::legs::Trigger;
use super::request::validate;
use super::state::Call;
use crate::budget;
use crate::codec;
use crate::quality;
use crate::shared::Shared;
use crate::time::Instant;

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
            if shared.config().quality.is_some() {
                let model = body.get("model").and_then(Value::as_str).unwrap_or("");
                let key = (options.tenant, model.to_owned());
                if let Some(expect) = shared.expect(&body)? {
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
            Ok((body, _)) if shared.config().providers.iter().any(|p| p.tpm.is_some()) => {
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
        let providers = &self.shared.config().providers;
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
}
