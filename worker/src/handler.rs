//! The standalone worker: an OpenAI-compatible endpoint routed by the core.
//!
//! - `POST /v1/chat/completions` with `Authorization: Bearer <ROUTER_TOKEN>`
//! - `GET /healthz`
//!
//! `ROUTER_CONFIG` (JSON, the same schema as the Python config) is parsed
//! once per isolate; a provider's `api_key_env` names another variable or
//! secret that holds its key.

// An error reply is built once per failed request, on the cold path; boxing
// it would only add an allocation to every error.
#![allow(clippy::result_large_err)]

use std::cell::OnceCell;

use f3dx_router_core::{drive, Attempt, Policy, Router, RouterConfig};
use futures::StreamExt;
use serde_json::{json, Value};
use worker::{event, Context, Env, Headers, Method, Request, Response};

use crate::auth::bearer_matches;
use crate::executor::FetchExecutor;
use crate::openai_error::ErrorReply;

/// Largest request body accepted.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// What an isolate reads from its environment, once.
struct Standalone {
    router: Result<Router, String>,
    token: Option<String>,
}

thread_local! {
    static STATE: OnceCell<&'static Standalone> = const { OnceCell::new() };
}

fn state(env: &Env) -> &'static Standalone {
    // Leaked once per isolate: it lives as long as the isolate does.
    STATE.with(|cell| *cell.get_or_init(|| Box::leak(Box::new(load(env)))))
}

/// A binding's string value, from a secret or a plain variable.
pub fn env_string(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
}

fn load(env: &Env) -> Standalone {
    let router = match env_string(env, "ROUTER_CONFIG") {
        None => Err("ROUTER_CONFIG is not set: give it the router config as JSON".to_owned()),
        Some(text) => serde_json::from_str::<Value>(&text)
            .map_err(|e| format!("ROUTER_CONFIG is not valid JSON: {e}"))
            .and_then(|v| {
                RouterConfig::from_json(&v, &|name| env_string(env, name), crate::limits())
                    .map_err(|e| e.to_string())
            })
            .map(Router::new),
    };
    let token = env_string(env, "ROUTER_TOKEN").filter(|t| !t.is_empty());
    Standalone { router, token }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    match handle(req, &env).await {
        Ok(response) => Ok(response),
        Err(e) => reply_error(&e),
    }
}

async fn handle(mut req: Request, env: &Env) -> Result<Response, ErrorReply> {
    let state = state(env);
    match req.path().as_str() {
        "/healthz" => {
            if req.method() != Method::Get {
                return Err(method_not_allowed("GET"));
            }
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            json_response(200, &health(router), &Headers::new())
        }
        "/v1/chat/completions" => {
            if req.method() != Method::Post {
                return Err(method_not_allowed("POST"));
            }
            let Some(token) = &state.token else {
                let m = "ROUTER_TOKEN is not set: set it (a secret) to the bearer token callers must send";
                return Err(ErrorReply::new(500, "server_error", "missing_token", m));
            };
            let auth = req.headers().get("authorization").ok().flatten();
            if !bearer_matches(auth.as_deref(), token) {
                let m = "missing or wrong bearer token: send Authorization: Bearer <ROUTER_TOKEN>";
                return Err(ErrorReply::new(
                    401,
                    "invalid_request_error",
                    "invalid_api_key",
                    m,
                ));
            }
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            let body = read_json(&mut req).await?;
            match drive(router, &FetchExecutor, body).await {
                Ok(routed) => {
                    let headers = route_headers(Some(&routed.provider), &routed.attempts);
                    json_response(200, &routed.response, &headers)
                }
                Err(e) => Err(ErrorReply::from_route(&e)),
            }
        }
        _ => Err(ErrorReply::new(
            404,
            "invalid_request_error",
            "not_found",
            "no such route; use POST /v1/chat/completions",
        )),
    }
}

async fn read_json(req: &mut Request) -> Result<Value, ErrorReply> {
    let too_large = || {
        let m = format!("request body over {} bytes", MAX_REQUEST_BYTES);
        ErrorReply::new(413, "invalid_request_error", "request_too_large", m)
    };
    let declared = req.headers().get("content-length").ok().flatten();
    if declared
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_REQUEST_BYTES as u64)
    {
        return Err(too_large());
    }
    // Read chunk by chunk so an oversized body without a declared length is
    // refused as soon as it passes the cap, not after it is all in memory.
    // (A request without a body has no stream: it is empty, so bad JSON.)
    let mut bytes = Vec::new();
    if let Ok(mut stream) = req.stream() {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                let m = format!("cannot read the body: {e}");
                ErrorReply::new(400, "invalid_request_error", "bad_body", m)
            })?;
            if bytes.len() + chunk.len() > MAX_REQUEST_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ErrorReply::new(
            400,
            "invalid_request_error",
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

fn health(router: &Router) -> Value {
    let config = router.config();
    let policy = match config.policy {
        Policy::Sequential => json!({"policy": "sequential"}),
        Policy::Hedged { k, delay } => {
            json!({"policy": "hedged", "hedge_k": k, "hedge_delay_ms": delay.map_or(0, |d| d.as_millis() as u64)})
        }
    };
    let providers: Vec<Value> = config
        .providers
        .iter()
        .map(|p| json!({"name": p.name, "kind": p.kind.as_str()}))
        .collect();
    json!({"status": "ok", "routing": policy, "providers": providers})
}

fn config_error(message: &str) -> ErrorReply {
    ErrorReply::new(
        500,
        "server_error",
        "bad_config",
        format!("the worker's config is unusable: {message}"),
    )
}

fn method_not_allowed(allow: &str) -> ErrorReply {
    ErrorReply::new(
        405,
        "invalid_request_error",
        "method_not_allowed",
        format!("method not allowed; use {allow}"),
    )
}

fn json_response(status: u16, body: &Value, headers: &Headers) -> Result<Response, ErrorReply> {
    let _ = headers.set("content-type", "application/json");
    let text = serde_json::to_vec(body).unwrap_or_default();
    Response::from_bytes(text)
        .map(|r| r.with_status(status).with_headers(headers.clone()))
        .map_err(|e| ErrorReply::new(500, "server_error", "internal", e.to_string()))
}

fn reply_error(e: &ErrorReply) -> worker::Result<Response> {
    let headers = route_headers(e.provider.as_deref(), &e.attempts);
    json_response(e.status, &e.body, &headers).or_else(|_| Response::error("internal error", 500))
}

/// `x-f3dx-provider` (the winner, or the provider of a hard failure),
/// `x-f3dx-attempts` (how many upstream attempts) and `x-f3dx-trace` (each
/// attempt as `name=outcome[/status-or-fault]@start_ms`, in start order).
fn route_headers(provider: Option<&str>, attempts: &[Attempt]) -> Headers {
    let headers = Headers::new();
    if let Some(p) = provider {
        let _ = headers.set("x-f3dx-provider", p);
    }
    let _ = headers.set("x-f3dx-attempts", &attempts.len().to_string());
    if !attempts.is_empty() {
        let _ = headers.set("x-f3dx-trace", &trace(attempts));
    }
    headers
}

/// The attempts in one header line (names come from the config: no secrets).
pub fn trace(attempts: &[Attempt]) -> String {
    let entry = |a: &Attempt| {
        let mut s = format!("{}={}", a.provider, a.outcome.as_str());
        if let Some(f) = &a.fault {
            s.push('/');
            s.push_str(f.name());
        } else if let Some(status) = a.status {
            s.push_str(&format!("/{status}"));
        }
        s.push_str(&format!("@{}", a.started.as_millis()));
        s
    };
    attempts.iter().map(entry).collect::<Vec<_>>().join(", ")
}
