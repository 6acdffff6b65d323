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

use f3dx_router_core::{
    drive_with, quality, Attempt, CallOptions, Driver, Executor, HedgeDelay, Policy, Router,
    RouterConfig,
};
use serde_json::{json, Value};
use worker::worker_sys::web_sys;
use worker::{event, Context, Env, Method, Response};

use crate::auth::bearer_matches;
use crate::executor::FetchExecutor;
use crate::health_log;
use crate::host::{self, Body};
use crate::openai_error::ErrorReply;
use crate::stats;
use crate::stream_out;

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
        // Invalid JSON and a repeated key are config errors of field
        // `config`, as the Python package's file loader has them.
        Some(text) => {
            crate::config_log::log_warnings(&text);
            RouterConfig::from_json_text(&text, &|name| env_string(env, name), crate::limits())
                .map_err(|e| format!("ROUTER_CONFIG: {e}"))
                .map(Router::new)
        }
    };
    let token = env_string(env, "ROUTER_TOKEN").filter(|t| !t.is_empty());
    Standalone { router, token }
}

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> worker::Result<web_sys::Response> {
    // The raw request, not workers-rs' `Request`: converting to that reads
    // `request.cf` on every call, which the runtime builds anew each time.
    let reply = match handle(&req, &env, &ctx).await {
        Ok(response) => Ok(response),
        Err(e) => reply_error(&e),
    };
    // The health transitions this request caused (a stream's: up to its
    // commit point; later ones go with the next request).
    if let Ok(router) = &state(&env).router {
        health_log::log(router);
    }
    reply
}

async fn handle(
    req: &web_sys::Request,
    env: &Env,
    ctx: &Context,
) -> Result<web_sys::Response, ErrorReply> {
    let state = state(env);
    let method = Method::from(req.method());
    match path_from_url(&req.url()).as_str() {
        "/healthz" => {
            if method != Method::Get {
                return Err(method_not_allowed("GET"));
            }
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            json_response(200, &health(router), Vec::new())
        }
        "/stats" => {
            if method != Method::Get {
                return Err(method_not_allowed("GET"));
            }
            authorize(req, state)?;
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            json_response(200, &stats::stats_json(router), Vec::new())
        }
        "/v1/chat/completions" => {
            if method != Method::Post {
                return Err(method_not_allowed("POST"));
            }
            authorize(req, state)?;
            let headers = req.headers();
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            let options = call_options(&headers)?;
            let body = read_json(req, &headers).await?;
            if body.get("stream").and_then(Value::as_bool) == Some(true) {
                return stream_reply(router, body, options, ctx).await;
            }
            match drive_with(router, &FetchExecutor, body, options).await {
                Ok(routed) => {
                    let mut headers = route_headers(Some(&routed.provider), &routed.attempts);
                    if let Some(valid) = routed.schema_valid {
                        headers.push(("x-f3dx-schema-valid", valid.to_string()));
                    }
                    json_response(200, &routed.response, headers)
                }
                Err(e) => Err(ErrorReply::from_route(&e)),
            }
        }
        "/quality" => {
            if method != Method::Post {
                return Err(method_not_allowed("POST"));
            }
            authorize(req, state)?;
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            let body = read_json(req, &req.headers()).await?;
            record_quality(router, &body)?;
            json_response(200, &json!({"recorded": true}), Vec::new())
        }
        _ => Err(ErrorReply::new(
            404,
            "invalid_request_error",
            "not_found",
            "no such route; use POST /v1/chat/completions (or POST /quality, GET /stats, GET /healthz)",
        )),
    }
}

/// The caller must send `Authorization: Bearer <ROUTER_TOKEN>`.
fn authorize(req: &web_sys::Request, state: &Standalone) -> Result<(), ErrorReply> {
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
    Ok(())
}

/// A streamed answer: errors before the commit point are answered as for a
/// whole answer; from it, `200 text/event-stream` with the route headers
/// (known at the commit point), the chunks as the pump writes them.
async fn stream_reply(
    router: &Router,
    body: Value,
    options: CallOptions,
    ctx: &Context,
) -> Result<web_sys::Response, ErrorReply> {
    let driver = Driver::start_with(router, FetchExecutor, body, options);
    let committed = stream_out::commit(driver)
        .await
        .map_err(|e| ErrorReply::from_route(&e))?;
    let mut headers = route_headers(Some(&committed.provider), &committed.attempts);
    headers.push(("content-type", "text/event-stream".to_owned()));
    headers.push(("cache-control", "no-cache".to_owned()));
    let response = host::respond_stream(&committed.readable, 200, &headers).map_err(|e| {
        ErrorReply::new(
            500,
            "server_error",
            "internal",
            worker::Error::from(e).to_string(),
        )
    })?;
    ctx.wait_until(committed.pump);
    Ok(response)
}

fn bad_request(code: &str, message: impl Into<String>) -> ErrorReply {
    ErrorReply::new(400, "invalid_request_error", code, message.into())
}

/// The call's tenant, from `x-f3dx-tenant` (none: the empty tenant).
fn call_options(headers: &web_sys::Headers) -> Result<CallOptions, ErrorReply> {
    let tenant = headers
        .get("x-f3dx-tenant")
        .ok()
        .flatten()
        .unwrap_or_default();
    quality::check_tenant(&tenant)
        .map_err(|m| bad_request("invalid_tenant", format!("x-f3dx-tenant: {m}")))?;
    Ok(CallOptions { tenant })
}

/// The fields of a `POST /quality` body.
const QUALITY_FIELDS: [&str; 4] = ["provider", "passed", "model", "tenant"];

/// `POST /quality`: `{"provider", "passed", "model", "tenant"?}`, a result
/// the caller checked itself.
fn record_quality(router: &Router, body: &Value) -> Result<(), ErrorReply> {
    const SHAPE: &str = "the body must be {\"provider\": string, \"passed\": true or false, \"model\": string, \"tenant\"?: string}";
    let Some(fields) = body.as_object() else {
        return Err(bad_request("invalid_quality_report", SHAPE));
    };
    // A typo (`"pass"`) must not go unnoticed; the field is named by its
    // position, as its name may be anything, of any length.
    if let Some(at) = fields
        .keys()
        .position(|k| !QUALITY_FIELDS.contains(&k.as_str()))
    {
        let m = format!(
            "the body's field number {} (counting from 1) is not one of provider, passed, model, tenant",
            at + 1
        );
        return Err(bad_request("invalid_quality_report", m));
    }
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    let (Some(provider), Some(model), Some(passed)) = (
        text("provider"),
        text("model"),
        body.get("passed").and_then(Value::as_bool),
    ) else {
        return Err(bad_request("invalid_quality_report", SHAPE));
    };
    let tenant = match body.get("tenant") {
        None | Some(Value::Null) => "",
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(bad_request("invalid_tenant", "tenant must be a string")),
    };
    quality::check_tenant(tenant).map_err(|m| bad_request("invalid_tenant", m))?;
    quality::check_model(model).map_err(|m| bad_request("invalid_quality_report", m))?;
    let now = FetchExecutor.now();
    router
        .record_quality(provider, tenant, model, passed, now)
        .map_err(|m| bad_request("invalid_quality_report", m))
}

/// The path of an already-serialized WHATWG URL (`Request.url`), as
/// workers-rs' `Request::path` gives it: special-scheme serialization never
/// emits an empty path, so the first `/` after the host begins the path,
/// within which `?` and `#` are always percent-encoded.
fn path_from_url(url: &str) -> String {
    let Some(host_start) = url.find("://").map(|i| i + 3) else {
        // Not an absolute URL: never the case for a request a worker gets.
        return if url.starts_with('/') {
            url.to_owned()
        } else {
            format!("/{url}")
        };
    };
    match url[host_start..].find('/') {
        Some(i) => {
            let path = &url[host_start + i..];
            path[..path.find(['?', '#']).unwrap_or(path.len())].to_owned()
        }
        None => "/".to_owned(),
    }
}

async fn read_json(
    req: &web_sys::Request,
    headers: &web_sys::Headers,
) -> Result<Value, ErrorReply> {
    let too_large = || {
        let m = format!("request body over {} bytes", MAX_REQUEST_BYTES);
        ErrorReply::new(413, "invalid_request_error", "request_too_large", m)
    };
    let declared = headers.get("content-length").ok().flatten();
    if declared
        .as_deref()
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_REQUEST_BYTES as u64)
    {
        return Err(too_large());
    }
    // With a declared length that fits, the body is read in one call;
    // without one, it is counted as it comes, so an oversized body is
    // refused as soon as it passes the cap, not after it is all in memory.
    let whole = declared.is_some() && {
        let encoding = headers.get("content-encoding").ok().flatten();
        host::fits(declared.as_deref(), encoding.as_deref(), MAX_REQUEST_BYTES)
    };
    let bytes = match host::read_body(req.as_ref(), MAX_REQUEST_BYTES, whole).await {
        Ok(Body::Bytes(bytes)) => bytes,
        // A request without a body is empty, so bad JSON.
        Ok(Body::None) => Vec::new(),
        Ok(Body::TooLarge) => return Err(too_large()),
        Err(e) => {
            let m = format!("cannot read the body: {}", worker::Error::from(e));
            return Err(ErrorReply::new(400, "invalid_request_error", "bad_body", m));
        }
    };
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
        Policy::Sequential | Policy::Weighted => json!({"policy": config.policy.name()}),
        Policy::Hedged { k, delay, budget } => {
            let mut routing = json!({"policy": "hedged", "hedge_k": k, "hedge_budget": budget});
            routing["hedge_delay_ms"] = match delay {
                HedgeDelay::Immediate => json!(0),
                HedgeDelay::Fixed(d) => json!(d.as_millis() as u64),
                HedgeDelay::Auto { fallback } => {
                    routing["hedge_delay_fallback_ms"] = json!(fallback.as_millis() as u64);
                    json!("auto")
                }
            };
            routing
        }
    };
    let providers: Vec<Value> = config
        .providers
        .iter()
        .map(|p| json!({"name": p.name, "kind": p.kind.as_str(), "max_body_bytes": p.max_body_bytes}))
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

fn json_response(
    status: u16,
    body: &Value,
    mut headers: Vec<(&'static str, String)>,
) -> Result<web_sys::Response, ErrorReply> {
    headers.push(("content-type", "application/json".to_owned()));
    let text = serde_json::to_vec(body).unwrap_or_default();
    host::respond(&text, status, &headers).map_err(|e| {
        ErrorReply::new(
            500,
            "server_error",
            "internal",
            worker::Error::from(e).to_string(),
        )
    })
}

fn reply_error(e: &ErrorReply) -> worker::Result<web_sys::Response> {
    let headers = route_headers(e.provider.as_deref(), &e.attempts);
    json_response(e.status, &e.body, headers)
        .or_else(|_| Response::error("internal error", 500).map(Into::into))
}

/// `x-f3dx-provider` (the winner, or the provider of a hard failure),
/// `x-f3dx-attempts` (how many upstream attempts) and `x-f3dx-trace` (each
/// attempt as `name=outcome[/status-or-fault]@start_ms`, in start order).
fn route_headers(provider: Option<&str>, attempts: &[Attempt]) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(4);
    if let Some(p) = provider {
        headers.push(("x-f3dx-provider", p.to_owned()));
    }
    headers.push(("x-f3dx-attempts", attempts.len().to_string()));
    if !attempts.is_empty() {
        headers.push(("x-f3dx-trace", trace(attempts)));
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
