//! What the front door answers: status, headers and body, for a success, a
//! stream's start, and every error.
//!
//! Errors are in OpenAI's shape, `{"error": {"message", "type", "code"}}`
//! (plus `param` when the upstream gave one), so the openai SDK raises them
//! as its own exceptions, by status:
//!
//! | outcome | status | `type` / `code` |
//! |---|---|---|
//! | a hard failure with a 4xx | the upstream's | the upstream's own (`invalid_api_key`...), an Anthropic error translated; `upstream_error` / `hard_failure` when the body is no error object |
//! | a hard failure with another status (3xx, 6xx) | 502 | `upstream_error` / `hard_failure` |
//! | every provider failed softly | 502 | `upstream_error` / `all_providers_failed` |
//! | an invalid request | 400 | `invalid_request_error` / `invalid_request` |
//! | a body that is not JSON, a bad tenant | 400 | `invalid_request_error` / `invalid_json`, `invalid_tenant` |
//! | any other method or path | 404 | `invalid_request_error` / `not_found` |
//!
//! The message of a hard failure is the router's (the provider, the status,
//! the upstream's message, already redacted by the core, and what to do):
//! the caller learns who answered without reading headers.

use serde_json::{json, Map, Value};

use crate::attempt::{Attempt, Skipped};
use crate::error::{RouteError, Routed};

/// An answer to send: status, headers (names lower case) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The headers, `content-type` among them.
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for a stream's head: the events follow).
    pub body: Vec<u8>,
}

const JSON: &str = "application/json";

/// Longest path echoed back in a 404's message.
const MAX_ECHOED_PATH: usize = 200;

/// An error the front door (or its host) answers itself: nothing was sent
/// upstream.
pub fn error(status: u16, kind: &str, code: &str, message: &str) -> Answer {
    error_answer(status, kind, code, message, route_headers(None, &[], &[]))
}

fn error_answer(
    status: u16,
    kind: &str,
    code: &str,
    message: &str,
    headers: Vec<(&'static str, String)>,
) -> Answer {
    let body = json!({"error": {"message": message, "type": kind, "code": code}});
    json_answer(status, &body, headers)
}

/// A JSON answer with no route headers (a host's own routes: health, stats).
pub fn json(status: u16, body: &Value) -> Answer {
    json_answer(status, body, Vec::new())
}

fn json_answer(status: u16, body: &Value, mut headers: Vec<(&'static str, String)>) -> Answer {
    headers.insert(0, ("content-type", JSON.to_owned()));
    Answer {
        status,
        headers,
        // A JSON value always serializes.
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

/// The 404 for a request that is not `POST .../chat/completions`.
pub fn not_found(method: &str, path: &str) -> Answer {
    let shown = match path.char_indices().nth(MAX_ECHOED_PATH) {
        Some((at, _)) => format!("{}...", &path[..at]),
        None => path.to_owned(),
    };
    let message = format!(
        "f3dx_router routes only POST .../chat/completions (OpenAI chat completions, \
         streamed or not, under any base path) and GET .../models, not {} {shown}",
        method.to_ascii_uppercase()
    );
    error(404, "invalid_request_error", "not_found", &message)
}

/// The 413 for a request body over `limit` bytes.
pub fn request_too_large(limit: usize) -> Answer {
    let message = format!("the request body is over {limit} bytes");
    error(413, "invalid_request_error", "request_too_large", &message)
}

/// The answer for a call that failed (before any output, for a stream).
pub fn route_error(e: &RouteError) -> Answer {
    let message = e.to_string();
    let (provider, status, body) = match e {
        RouteError::Hard {
            provider,
            status,
            body,
            ..
        } if (400..=499).contains(status) => (
            Some(provider.as_str()),
            *status,
            upstream_error(body, &message),
        ),
        // A hard status that cannot be passed on as it is (a redirect not
        // followed, a non-standard code): a gateway error naming it.
        RouteError::Hard { provider, .. } => {
            let body = error_json(&message, "upstream_error", "hard_failure");
            (Some(provider.as_str()), 502, body)
        }
        RouteError::InvalidRequest { .. } => (
            None,
            400,
            error_json(&message, "invalid_request_error", "invalid_request"),
        ),
        RouteError::AllFailed { .. } => (
            None,
            502,
            error_json(&message, "upstream_error", "all_providers_failed"),
        ),
        // Only a streamed call breaks after its commit point, when its
        // answer is under way ([`super::interrupted_event`]); this is for a
        // host that reports it after the fact.
        RouteError::StreamInterrupted { provider, .. } => (
            Some(provider.as_str()),
            502,
            error_json(&message, "server_error", "stream_interrupted"),
        ),
    };
    json_answer(
        status,
        &body,
        route_headers(provider, e.attempts(), e.skipped()),
    )
}

fn error_json(message: &str, kind: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "code": code}})
}

/// A hard 4xx's body: the upstream's error object in OpenAI's shape (its
/// `type`, `code` and `param`; an Anthropic error, `{"type": "error",
/// "error": {"type", "message"}}`, has no code), with the router's
/// `message`; a body that is no error object gives `upstream_error` /
/// `hard_failure`. The body was redacted by the core.
fn upstream_error(body: &str, message: &str) -> Value {
    let upstream: Option<Value> = serde_json::from_str(body).ok();
    let Some(Value::Object(fields)) = upstream.as_ref().and_then(|v| v.get("error")) else {
        return error_json(message, "upstream_error", "hard_failure");
    };
    let mut error = Map::new();
    error.insert("message".to_owned(), json!(message));
    let kind = match fields.get("type") {
        Some(Value::String(t)) => t.as_str(),
        _ => "upstream_error",
    };
    error.insert("type".to_owned(), json!(kind));
    // A code is a string or a number in OpenAI's answers; anything else
    // (an object an upstream invented) is not passed on.
    let code = match fields.get("code") {
        Some(c @ (Value::String(_) | Value::Number(_))) => c.clone(),
        _ => Value::Null,
    };
    error.insert("code".to_owned(), code);
    if let Some(param @ Value::String(_)) = fields.get("param") {
        error.insert("param".to_owned(), param.clone());
    }
    json!({ "error": error })
}

/// The answer for a whole call that succeeded: the response as JSON (an
/// OpenAI provider's body as it came, see [`Routed::body`]), the route headers and `x-f3dx-schema-valid` when the answer was checked.
pub fn routed(r: &Routed) -> Answer {
    let mut headers = route_headers(Some(&r.provider), &r.attempts, &r.skipped);
    if let Some(valid) = r.schema_valid {
        headers.push(("x-f3dx-schema-valid", valid.to_string()));
    }
    match &r.body {
        // An answer that needs no translation goes out as it came.
        Some(body) => {
            headers.insert(0, ("content-type", JSON.to_owned()));
            Answer {
                status: 200,
                headers,
                body: body.clone(),
            }
        }
        None => json_answer(200, &r.response, headers),
    }
}

/// The head of a stream at its commit point (its route headers are as of
/// then); the events follow as the body.
pub fn stream_head(provider: &str, attempts: &[Attempt]) -> Answer {
    let mut headers = vec![
        ("content-type", "text/event-stream".to_owned()),
        ("cache-control", "no-cache".to_owned()),
    ];
    headers.extend(route_headers(Some(provider), attempts, &[]));
    Answer {
        status: 200,
        headers,
        body: Vec::new(),
    }
}

/// `x-f3dx-provider` (the winner, or the provider of a hard failure; absent
/// when there is neither), `x-f3dx-attempts` (how many upstream attempts:
/// `0` when nothing was sent) and `x-f3dx-trace` (see [`trace`]; absent
/// when nothing was sent); `x-f3dx-dropped` (attempts sent without some
/// parameters) and `x-f3dx-skipped` (deployments passed over, as they
/// cannot carry some), each `name[group]=param param, ...` and absent
/// when there are none.
pub fn route_headers(
    provider: Option<&str>,
    attempts: &[Attempt],
    skipped: &[Skipped],
) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(3);
    if let Some(p) = provider {
        headers.push(("x-f3dx-provider", p.to_owned()));
    }
    headers.push(("x-f3dx-attempts", attempts.len().to_string()));
    if !attempts.is_empty() {
        headers.push(("x-f3dx-trace", trace(attempts)));
    }
    let dropped = attempts.iter().filter(|a| !a.dropped.is_empty());
    let dropped = params_line(dropped.map(|a| (&a.provider, &a.group, &a.dropped)));
    if !dropped.is_empty() {
        headers.push(("x-f3dx-dropped", dropped));
    }
    if !skipped.is_empty() {
        let line = params_line(skipped.iter().map(|s| (&s.provider, &s.group, &s.params)));
        headers.push(("x-f3dx-skipped", line));
    }
    headers
}

/// `name[group]=param param, ...`: who and which parameters, in one
/// header line (a group's or a parameter's characters that a header or the
/// line's separators cannot carry percent-encoded).
fn params_line<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Option<String>, &'a Vec<String>)>,
) -> String {
    let mut line = String::new();
    for (i, (provider, group, params)) in entries.enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        line.push_str(provider);
        if let Some(group) = group {
            line.push('[');
            push_escaped(&mut line, group);
            line.push(']');
        }
        line.push('=');
        for (j, p) in params.iter().enumerate() {
            if j > 0 {
                line.push(' ');
            }
            push_escaped(&mut line, p);
        }
    }
    line
}

/// `text` with what a header line or its separators cannot carry
/// percent-encoded.
fn push_escaped(line: &mut String, text: &str) {
    use std::fmt::Write;
    for b in text.bytes() {
        if b.is_ascii_graphic() && !b"%,=@[]".contains(&b) {
            line.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(line, "%{b:02X}");
        }
    }
}

/// The attempts in one header line, in start order:
/// `name=outcome[/fault-or-status]@start_ms`, comma-separated (names come
/// from the config: no secrets); with a routing table, `name[group]=...`,
/// the group's name percent-encoded where a header or this line's
/// separators could not carry it.
pub fn trace(attempts: &[Attempt]) -> String {
    use std::fmt::Write;
    let mut line = String::new();
    for (i, a) in attempts.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        // Writing to a String cannot fail.
        line.push_str(&a.provider);
        if let Some(group) = &a.group {
            line.push('[');
            push_escaped(&mut line, group);
            line.push(']');
        }
        let _ = write!(line, "={}", a.outcome.as_str());
        if let Some(f) = &a.fault {
            let _ = write!(line, "/{}", f.name());
        } else if let Some(status) = a.status {
            let _ = write!(line, "/{status}");
        }
        let _ = write!(line, "@{}", a.started.as_millis());
    }
    line
}
