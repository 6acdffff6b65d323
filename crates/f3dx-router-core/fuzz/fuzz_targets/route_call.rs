//! Whole calls stepped on a virtual clock with fuzzer-chosen events: heads
//! with any status and headers, bodies whole or in pieces (valid answers,
//! server-sent event streams, errors echoing a key, raw bytes), transport
//! faults, and the passing of time. Several calls share one router, so one
//! call's cooldowns shape the next one's candidates.
//!
//! Properties: nothing panics; each call emits exactly one `Complete`, last,
//! and nothing after it; attempts are numbered in start order and only sent
//! attempts are cancelled; an unfinished call always has a wake-up time (so
//! a host never waits forever) and finishes once time runs out; no attempt
//! is left in flight in the result; only a streamed call commits, at most
//! once, before its chunks, and then ends on the committed provider (done or
//! interrupted); no provider secret appears in what a failed call reports
//! about upstream answers.
#![no_main]

mod json_escape;

use std::time::Duration;

use arbitrary::Arbitrary;
use f3dx_router_core::{
    Action, AttemptId, AttemptOutcome, Call, Fault, HostLimits, Instant, ResponseHead, RouteError,
    Routed, Router, RouterConfig, TransportFault,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// Provider keys: printable ASCII, with characters JSON may escape.
const KEYS: [&str; 4] = [
    "sk-fuzz-a-0123456789abcdef",
    "sk-ant-b/0123+456789abcdef==",
    "sk-fuzz-c-fedcba9876543210",
    "sk-ant-d\"quoted\\back-0123456789",
];
/// A credential in an extra header (Azure's `api-key`).
const HEADER_SECRET: &str = "azure-secret-0123456789";

#[derive(Arbitrary, Debug)]
struct Script {
    providers: Vec<ProviderSpec>,
    policy: PolicySpec,
    calls: Vec<CallScript>,
}

#[derive(Arbitrary, Debug)]
struct ProviderSpec {
    anthropic: bool,
    timeout_ms: u16,
    header_secret: bool,
    model_override: bool,
}

#[derive(Arbitrary, Debug)]
enum PolicySpec {
    Sequential,
    Hedged { k: Option<u8>, delay_ms: u16 },
}

#[derive(Arbitrary, Debug)]
struct CallScript {
    start_after_ms: u16,
    request: RequestSpec,
    events: Vec<Event>,
}

#[derive(Arbitrary, Debug)]
enum RequestSpec {
    Chat,
    WithSystem,
    WithTools,
    ManyChoices,
    Stream,
    NoMessages,
    NotAnObject,
    /// Any JSON the fuzzer writes (or a string, when it is not JSON).
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Event {
    Head {
        attempt: u8,
        status: StatusSpec,
        headers: Vec<HeaderSpec>,
    },
    /// The whole body: `handle_body`.
    Body {
        attempt: u8,
        body: BodySpec,
    },
    /// Bytes of a body in two `handle_chunk`s split at `cut`, no end yet.
    Part {
        attempt: u8,
        body: BodySpec,
        cut: u16,
    },
    /// The body ended: `handle_end`.
    End {
        attempt: u8,
    },
    Fault {
        attempt: u8,
        fault: FaultSpec,
    },
    /// Time passes; the host calls `handle_timeout`.
    Advance {
        ms: u16,
    },
    /// The host sleeps until `poll_timeout` and calls `handle_timeout`.
    Wake,
    /// An early `handle_timeout` (harmless by contract).
    TimeoutNow,
}

#[derive(Arbitrary, Debug)]
enum StatusSpec {
    Ok,
    Soft(u8),
    Hard(u8),
    Any(u16),
}

#[derive(Arbitrary, Debug)]
struct HeaderSpec {
    name: HeaderName,
    value: HeaderValue,
}

#[derive(Arbitrary, Debug)]
enum HeaderName {
    RetryAfter,
    RetryAfterMs,
    Date,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum HeaderValue {
    Secs(u16),
    Millis(u32),
    /// An HTTP date this many seconds after the head's wall clock.
    Date(i16),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum BodySpec {
    OpenAiOk,
    AnthropicOk,
    /// An error body quoting a provider secret, written with JSON escapes.
    EchoSecret {
        which: u8,
        escapes: Vec<u8>,
        wrap: Wrap,
    },
    /// An OpenAI stream: the role chunk, `pieces % 4` text chunks, then a
    /// finish chunk and `[DONE]` as chosen.
    OpenAiSse {
        pieces: u8,
        finish: bool,
        done: bool,
    },
    /// An Anthropic stream: `pieces % 4` text deltas, `message_stop` as
    /// chosen.
    AnthropicSse {
        pieces: u8,
        stop: bool,
    },
    /// An error event quoting a secret, after some text or before any.
    SseError {
        anthropic: bool,
        after_text: bool,
        which: u8,
        escapes: Vec<u8>,
    },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Wrap {
    OpenAiError,
    AnthropicError,
    BareString,
    Text,
}

#[derive(Arbitrary, Debug)]
enum FaultSpec {
    ConnectionRefused,
    ConnectionReset,
    Dns,
    Truncated,
    BodyTooLarge,
    Other(u8),
}

const OPENAI_OK: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
const ANTHROPIC_OK: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}"#;
/// Wall clock of every head (Unix seconds), so HTTP dates are reproducible.
const WALL_CLOCK: u64 = 1_700_000_000;

fuzz_target!(|script: Script| run(script));

fn run(script: Script) {
    let n = script.providers.len().clamp(1, 4);
    let mut providers = Vec::new();
    for (i, key) in KEYS.iter().enumerate().take(n) {
        let spec = script.providers.get(i);
        let anthropic = spec.is_some_and(|s| s.anthropic);
        let mut p = json!({
            "name": format!("p{i}"),
            "kind": if anthropic { "anthropic" } else { "openai" },
            "base_url": "http://upstream.test/v1",
            "api_key": key,
            "timeout_ms": spec.map_or(1000, |s| s.timeout_ms.max(1)),
        });
        if spec.is_some_and(|s| s.header_secret) {
            p["headers"] = json!({"api-key": HEADER_SECRET});
        }
        if spec.is_some_and(|s| s.model_override) {
            p["model"] = json!("override-model");
        }
        providers.push(p);
    }
    let mut config = json!({"providers": providers});
    if let PolicySpec::Hedged { k, delay_ms } = script.policy {
        config["policy"] = json!("hedged");
        if let Some(k) = k {
            config["hedge_k"] = json!((usize::from(k) % n) + 1);
        }
        // A quarter of the delays are "auto" (the rest fixed or 0); a third
        // of the configs set a hedge budget, 0 to 1 token a call.
        if delay_ms % 4 == 3 {
            config["hedge_delay_ms"] = json!("auto");
            config["hedge_delay_fallback_ms"] = json!(u64::from(delay_ms / 4) + 1);
        } else {
            config["hedge_delay_ms"] = json!(delay_ms);
        }
        if delay_ms % 3 == 0 {
            config["hedge_budget"] = json!(f64::from(delay_ms % 11) / 10.0);
        }
    }
    let config = RouterConfig::from_json(&config, &|_| None, HostLimits::default())
        .expect("the generated config is valid");
    let router = Router::new(config);
    let mut now = Instant::ZERO;
    for call_script in script.calls.into_iter().take(4) {
        now = now + Duration::from_millis(call_script.start_after_ms.into());
        run_call(&router, call_script, &mut now);
    }
}

/// What a host knows about one call.
struct Host {
    sent: Vec<AttemptId>,
    /// The provider of each sent attempt.
    providers: Vec<usize>,
    result: Option<Result<Routed, RouteError>>,
    /// The provider a streamed call committed to.
    committed: Option<usize>,
}

impl Host {
    /// Carry out every pending action, checking each.
    fn drain(&mut self, call: &mut Call, router: &Router) {
        while let Some(action) = call.poll_action() {
            assert!(
                self.result.is_none(),
                "an action after Complete: {action:?}"
            );
            match action {
                Action::Send {
                    attempt,
                    provider,
                    request,
                } => {
                    assert_eq!(attempt, AttemptId(self.sent.len() as u32));
                    let p = &router.config().providers[provider];
                    let key = p.api_key.expose();
                    assert!(request.headers.iter().any(|(_, v)| v.contains(key)));
                    self.sent.push(attempt);
                    self.providers.push(provider);
                }
                Action::Cancel { attempt } => assert!(self.sent.contains(&attempt)),
                // A streamed call: one commit, then its chunks.
                Action::Commit { provider_index, .. } => {
                    assert!(
                        call.is_streamed(),
                        "a commit of a call that does not stream"
                    );
                    assert!(self.committed.is_none(), "a second commit");
                    self.committed = Some(provider_index);
                }
                Action::Chunk(_) => assert!(self.committed.is_some(), "a chunk before the commit"),
                Action::Complete(result) => self.result = Some(result),
            }
        }
        assert_eq!(call.is_finished(), self.result.is_some());
        if !call.is_finished() {
            assert!(
                call.poll_timeout().is_some(),
                "an unfinished call with nothing to wait for"
            );
        }
    }

    fn pick(&self, attempt: u8) -> AttemptId {
        if self.sent.is_empty() || attempt >= 250 {
            AttemptId(attempt.into())
        } else {
            self.sent[usize::from(attempt) % self.sent.len()]
        }
    }
}

fn run_call(router: &Router, script: CallScript, now: &mut Instant) {
    let mut call = router.start_call(request(script.request), *now);
    let mut host = Host {
        sent: Vec::new(),
        providers: Vec::new(),
        result: None,
        committed: None,
    };
    host.drain(&mut call, router);
    for event in script.events.into_iter().take(64) {
        match event {
            Event::Head {
                attempt,
                status,
                headers,
            } => {
                let head = ResponseHead {
                    status: status_code(status),
                    headers: headers.into_iter().take(8).map(header).collect(),
                    received_unix_secs: WALL_CLOCK,
                };
                call.handle_head(host.pick(attempt), head, *now);
            }
            Event::Body { attempt, body } => {
                let id = host.pick(attempt);
                // An upstream can only echo the secrets it was sent.
                let provider = host.providers.get(id.0 as usize).copied().unwrap_or(0);
                let body = body_bytes(body, &secrets(router, provider));
                call.handle_body(id, body, *now)
            }
            Event::Part { attempt, body, cut } => {
                let id = host.pick(attempt);
                let provider = host.providers.get(id.0 as usize).copied().unwrap_or(0);
                let body = body_bytes(body, &secrets(router, provider));
                let (first, second) = body.split_at(usize::from(cut) % (body.len() + 1));
                call.handle_chunk(id, first.to_vec(), *now);
                call.handle_chunk(id, second.to_vec(), *now);
            }
            Event::End { attempt } => call.handle_end(host.pick(attempt), *now),
            Event::Fault { attempt, fault } => {
                call.handle_fault(host.pick(attempt), transport_fault(fault), *now)
            }
            Event::Advance { ms } => {
                *now = *now + Duration::from_millis(ms.into());
                call.handle_timeout(*now);
            }
            Event::Wake => {
                if let Some(t) = call.poll_timeout() {
                    *now = (*now).max(t);
                }
                call.handle_timeout(*now);
            }
            Event::TimeoutNow => call.handle_timeout(*now),
        }
        host.drain(&mut call, router);
    }
    // Nothing more arrives: time alone must finish the call.
    for _ in 0..1000 {
        if call.is_finished() {
            break;
        }
        let t = call.poll_timeout().expect("checked by drain");
        *now = (*now).max(t);
        call.handle_timeout(*now);
        host.drain(&mut call, router);
    }
    let result = host.result.take().expect("the call completed");
    check_result(router, &result, &host.sent, host.committed);
    if call.is_streamed() {
        assert!(
            result.is_err() || host.committed.is_some(),
            "a streamed success without a commit"
        );
    }
    // A finished call ignores everything.
    for &id in &host.sent {
        call.handle_head(
            id,
            ResponseHead {
                status: 200,
                headers: vec![],
                received_unix_secs: 0,
            },
            *now,
        );
        call.handle_body(id, OPENAI_OK.as_bytes().to_vec(), *now);
        call.handle_fault(id, TransportFault::ConnectionReset, *now);
    }
    call.handle_timeout(*now + Duration::from_secs(3600));
    assert!(call.poll_action().is_none());
    assert!(call.poll_timeout().is_none());
}

/// The secrets of provider `index`: its key and any long header value.
fn secrets(router: &Router, index: usize) -> Vec<String> {
    let p = &router.config().providers[index];
    p.secrets().map(str::to_owned).collect()
}

fn check_result(
    router: &Router,
    result: &Result<Routed, RouteError>,
    sent: &[AttemptId],
    committed: Option<usize>,
) {
    let attempts = match result {
        Ok(routed) => &routed.attempts,
        Err(e) => e.attempts(),
    };
    let ids: Vec<AttemptId> = attempts.iter().map(|a| a.id).collect();
    assert_eq!(ids, sent);
    assert!(attempts
        .iter()
        .all(|a| a.outcome != AttemptOutcome::InFlight && a.ended.is_some()));
    let wins = attempts
        .iter()
        .filter(|a| a.outcome == AttemptOutcome::Success)
        .count();
    match result {
        Ok(routed) => {
            assert_eq!(wins, 1);
            match committed {
                // A stream's answer went out as chunks.
                Some(index) => assert_eq!(routed.provider_index, index),
                None => assert!(routed.response.get("choices").is_some_and(Value::is_array)),
            }
        }
        Err(e) => {
            assert_eq!(wins, 0);
            // After a commit the call ends on that provider.
            assert_eq!(
                committed.is_some(),
                matches!(e, RouteError::StreamInterrupted { .. }),
                "{e}"
            );
            // What the caller reads about an upstream's answer never holds
            // that upstream's secrets (the caller's own request text is not
            // checked: it may spell anything).
            let mut texts: Vec<(usize, &str)> = attempts
                .iter()
                .filter(|a| !matches!(a.fault, Some(Fault::Transport(TransportFault::Other(_)))))
                .map(|a| (a.provider_index, a.detail.as_str()))
                .collect();
            if let RouteError::Hard {
                provider,
                message,
                body,
                ..
            } = e
            {
                let config = router.config();
                let index = config
                    .providers
                    .iter()
                    .position(|p| &p.name == provider)
                    .unwrap();
                texts.push((index, message));
                texts.push((index, body));
            }
            if let (RouteError::StreamInterrupted { message, .. }, Some(index)) = (e, committed) {
                texts.push((index, message));
            }
            for (index, text) in texts {
                for secret in secrets(router, index) {
                    assert!(!text.contains(&secret), "secret {secret:?} leaked: {text}");
                }
            }
        }
    }
}

fn request(spec: RequestSpec) -> Value {
    let user = json!({"role": "user", "content": "hi"});
    match spec {
        RequestSpec::Chat => json!({"model": "m", "messages": [user]}),
        RequestSpec::WithSystem => json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "system", "content": "be brief"}, user]}),
        RequestSpec::WithTools => json!({"model": "m", "messages": [user], "tool_choice": "auto",
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}),
        RequestSpec::ManyChoices => json!({"model": "m", "n": 2, "messages": [user]}),
        RequestSpec::Stream => json!({"model": "m", "stream": true, "messages": [user]}),
        RequestSpec::NoMessages => json!({"model": "m", "messages": []}),
        RequestSpec::NotAnObject => json!([user]),
        RequestSpec::Raw(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
    }
}

fn status_code(spec: StatusSpec) -> u16 {
    const SOFT: [u16; 6] = [408, 429, 500, 502, 503, 504];
    const HARD: [u16; 6] = [400, 401, 403, 404, 409, 422];
    match spec {
        StatusSpec::Ok => 200,
        StatusSpec::Soft(i) => SOFT[usize::from(i) % SOFT.len()],
        StatusSpec::Hard(i) => HARD[usize::from(i) % HARD.len()],
        StatusSpec::Any(s) => s,
    }
}

fn header(spec: HeaderSpec) -> (String, String) {
    let name = match spec.name {
        HeaderName::RetryAfter => "retry-after".to_owned(),
        HeaderName::RetryAfterMs => "retry-after-ms".to_owned(),
        HeaderName::Date => "date".to_owned(),
        HeaderName::Other(s) => s,
    };
    let value = match spec.value {
        HeaderValue::Secs(s) => s.to_string(),
        HeaderValue::Millis(ms) => ms.to_string(),
        HeaderValue::Date(offset) => {
            let at = WALL_CLOCK.saturating_add_signed(offset.into());
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(at))
        }
        HeaderValue::Raw(s) => s,
    };
    (name, value)
}

fn body_bytes(spec: BodySpec, secrets: &[String]) -> Vec<u8> {
    match spec {
        BodySpec::OpenAiOk => OPENAI_OK.into(),
        BodySpec::AnthropicOk => ANTHROPIC_OK.into(),
        BodySpec::EchoSecret {
            which,
            escapes,
            wrap,
        } => {
            let secret = &secrets[usize::from(which) % secrets.len()];
            let s = json_escape::escape(secret, &escapes);
            let text = match wrap {
                Wrap::OpenAiError => format!(
                    r#"{{"error":{{"message":"Incorrect API key provided: {s}","type":"invalid_request_error"}}}}"#
                ),
                Wrap::AnthropicError => format!(
                    r#"{{"type":"error","error":{{"type":"authentication_error","message":"invalid x-api-key {s}"}}}}"#
                ),
                Wrap::BareString => format!(r#"{{"error":"bad key {s}"}}"#),
                Wrap::Text => format!("upstream rejected key {s}"),
            };
            text.into_bytes()
        }
        BodySpec::OpenAiSse {
            pieces,
            finish,
            done,
        } => {
            let mut events = vec![openai_chunk(r#"{"role":"assistant","content":""}"#, "null")];
            for _ in 0..pieces % 4 {
                events.push(openai_chunk(r#"{"content":"hi"}"#, "null"));
            }
            if finish {
                events.push(openai_chunk("{}", r#""stop""#));
            }
            if done {
                events.push("data: [DONE]\n\n".to_owned());
            }
            events.concat().into_bytes()
        }
        BodySpec::AnthropicSse { pieces, stop } => {
            let mut text = String::from(ANTHROPIC_START);
            for _ in 0..pieces % 4 {
                text.push_str(ANTHROPIC_DELTA);
            }
            if stop {
                text.push_str(ANTHROPIC_STOP);
            }
            text.into_bytes()
        }
        BodySpec::SseError {
            anthropic,
            after_text,
            which,
            escapes,
        } => {
            let secret = &secrets[usize::from(which) % secrets.len()];
            let s = json_escape::escape(secret, &escapes);
            let mut text = String::new();
            if anthropic {
                text.push_str(ANTHROPIC_START);
                if after_text {
                    text.push_str(ANTHROPIC_DELTA);
                }
                text.push_str(&format!("event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"authentication_error\",\"message\":\"invalid key {s}\"}}}}\n\n"));
            } else {
                if after_text {
                    text.push_str(&openai_chunk(r#"{"content":"hi"}"#, "null"));
                }
                text.push_str(&format!("data: {{\"error\":{{\"message\":\"Incorrect API key provided: {s}\",\"type\":\"invalid_request_error\"}}}}\n\n"));
            }
            text.into_bytes()
        }
        BodySpec::Raw(bytes) => bytes,
    }
}

/// One OpenAI `chat.completion.chunk` event.
fn openai_chunk(delta: &str, finish_reason: &str) -> String {
    format!("data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish_reason}}}]}}\n\n")
}

const ANTHROPIC_START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
const ANTHROPIC_DELTA: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n";
const ANTHROPIC_STOP: &str = "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

fn transport_fault(spec: FaultSpec) -> TransportFault {
    match spec {
        FaultSpec::ConnectionRefused => TransportFault::ConnectionRefused,
        FaultSpec::ConnectionReset => TransportFault::ConnectionReset,
        FaultSpec::Dns => TransportFault::Dns,
        FaultSpec::Truncated => TransportFault::Truncated,
        FaultSpec::BodyTooLarge => TransportFault::BodyTooLarge,
        FaultSpec::Other(n) => TransportFault::Other(format!("tls handshake failed ({n})")),
    }
}
