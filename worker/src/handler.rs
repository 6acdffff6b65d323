//! The standalone worker: an OpenAI-compatible endpoint routed by the core.
//!
//! - `POST .../chat/completions` (any base path; `/v1/chat/completions` as
//!   documented) with `Authorization: Bearer <ROUTER_TOKEN>`: the core's
//!   front door (`f3dx_router_core::endpoint`), which also answers every
//!   other path with its 404
//! - `GET .../models` (`/v1/models`, and `/v1/models/{id}`) with the same
//!   bearer token: OpenAI's model list, from the core's front door
//! - `GET /healthz`, `GET /stats`, `POST /quality`, `POST /explain`: the
//!   worker's own (all but `/healthz` behind the bearer token)
//!
//! `ROUTER_CONFIG` (JSON, the same schema as the Python config) is parsed
//! once per isolate; a provider's `api_key_env` names another variable or
//! secret that holds its key.

// An error reply is built once per failed request, on the cold path; boxing
// it would only add an allocation to every error.
#![allow(clippy::result_large_err)]

use std::cell::OnceCell;

use f3dx_router_core::endpoint::{self, Answer};
use f3dx_router_core::{
    drive_with, quality, CallerHeaders, Driver, Executor, HedgeDelay, Policy, Router, RouterConfig,
};
use serde_json::{json, Value};
use worker::worker_sys::web_sys;
use worker::{event, Context, Env, Response};

use crate::auth::bearer_matches;
use crate::executor::FetchExecutor;
use crate::health_log;
use crate::host::{self, Body};
use crate::stats;
use crate::stream_out;

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
            // Every error at once, in the words the Python package uses.
            RouterConfig::from_json_text_checked(
                &text,
                &|name| env_string(env, name),
                crate::limits(),
            )
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
        Err(answer) => send(&answer),
    };
    // The health transitions this request caused (a stream's: up to its
    // commit point; later ones go with the next request).
    if let Ok(router) = &state(&env).router {
        health_log::log(router);
    }
    reply
}

/// The worker's own routes (`/healthz`, `/stats`, `/quality`,
/// `/explain`), then the front door's (the core's endpoint: `GET
/// .../models`, `POST .../chat/completions`, a 404 for anything else).
async fn handle(
    req: &web_sys::Request,
    env: &Env,
    ctx: &Context,
) -> Result<web_sys::Response, Answer> {
    let state = state(env);
    let method = req.method();
    let path = path_from_url(&req.url());
    match path.as_str() {
        "/healthz" => {
            allow(&method, "GET")?;
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            json_response(200, &health(router))
        }
        "/stats" => {
            allow(&method, "GET")?;
            authorize(req, state)?;
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            json_response(200, &stats::stats_json(router))
        }
        "/quality" => {
            allow(&method, "POST")?;
            authorize(req, state)?;
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            let body = read_json(req, &req.headers()).await?;
            record_quality(router, &body)?;
            json_response(200, &json!({"recorded": true}))
        }
        "/explain" => {
            allow(&method, "POST")?;
            authorize(req, state)?;
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            explain(req, router).await
        }
        _ => {
            if let Some(models) = endpoint::models_request(&method, &path) {
                authorize(req, state)?;
                let router = state.router.as_ref().map_err(|m| config_error(m))?;
                return send_answer(&endpoint::models_answer(router, &models));
            }
            endpoint::route(&method, &path)?;
            authorize(req, state)?;
            let router = state.router.as_ref().map_err(|m| config_error(m))?;
            chat(req, router, ctx).await
        }
    }
}

/// `POST .../chat/completions`: a whole answer, or a stream from its
/// commit point.
async fn chat(
    req: &web_sys::Request,
    router: &Router,
    ctx: &Context,
) -> Result<web_sys::Response, Answer> {
    let headers = req.headers();
    let tenant = headers.get(endpoint::TENANT_HEADER).ok().flatten();
    let body = read_body(req, &headers).await?;
    let mut call = endpoint::parse_call(&body, tenant.as_deref(), "")?;
    drop(body);
    call.options.headers = caller_headers(router, &headers);
    if call.streamed {
        return stream_reply(router, call, ctx).await;
    }
    match drive_with(router, &FetchExecutor, call.body, call.options).await {
        Ok(routed) => send_answer(&endpoint::routed(&routed)),
        Err(e) => Err(endpoint::route_error(&e)),
    }
}

/// `POST /explain`: a chat-completions body (and `x-f3dx-tenant`), and what
/// a call of it would do now, as the core's JSON; nothing is sent. A
/// request a call would refuse is the front door's 400.
async fn explain(req: &web_sys::Request, router: &Router) -> Result<web_sys::Response, Answer> {
    let headers = req.headers();
    let tenant = headers.get(endpoint::TENANT_HEADER).ok().flatten();
    let body = read_body(req, &headers).await?;
    let mut call = endpoint::parse_call(&body, tenant.as_deref(), "")?;
    call.options.headers = caller_headers(router, &headers);
    let now = FetchExecutor.now();
    match router.explain(call.body, call.options, now) {
        Ok(explained) => json_response(200, &explained.to_json(now)),
        Err(e) => Err(endpoint::route_error(&e)),
    }
}

/// The request's headers some group forwards (`forward_headers`), looked
/// up by name (fetch's `get` joins a repeated one with ", ", as the core
/// does); nothing is read when no group forwards any. Which go to each
/// attempt, and the checks of their values, are the core's.
pub(crate) fn caller_headers(router: &Router, headers: &web_sys::Headers) -> CallerHeaders {
    let mut out = CallerHeaders::new();
    for name in router.models().forward_header_names() {
        if let Ok(Some(value)) = headers.get(name) {
            out.push(name.as_str(), value);
        }
    }
    out
}

/// The caller must send `Authorization: Bearer <ROUTER_TOKEN>`.
fn authorize(req: &web_sys::Request, state: &Standalone) -> Result<(), Answer> {
    let Some(token) = &state.token else {
        let m = "ROUTER_TOKEN is not set: set it (a secret) to the bearer token callers must send";
        return Err(endpoint::error(500, "server_error", "missing_token", m));
    };
    let auth = req.headers().get("authorization").ok().flatten();
    if !bearer_matches(auth.as_deref(), token) {
        let m = "missing or wrong bearer token: send Authorization: Bearer <ROUTER_TOKEN>";
        return Err(endpoint::error(
            401,
            "invalid_request_error",
            "invalid_api_key",
            m,
        ));
    }
    Ok(())
}

/// A streamed answer: errors before the commit point are answered as for a
/// whole answer; from it, the endpoint's stream head (route headers as of
/// the commit point), the events as the pump writes them.
async fn stream_reply(
    router: &Router,
    call: endpoint::ChatCall,
    ctx: &Context,
) -> Result<web_sys::Response, Answer> {
    let driver = Driver::start_with(router, FetchExecutor, call.body, call.options);
    let committed = stream_out::commit(driver)
        .await
        .map_err(|e| endpoint::route_error(&e))?;
    let head = endpoint::stream_head(&committed.provider, &committed.attempts);
    let response =
        host::respond_stream(&committed.readable, head.status, &head.headers).map_err(internal)?;
    ctx.wait_until(committed.pump);
    Ok(response)
}

fn bad_request(code: &str, message: impl AsRef<str>) -> Answer {
    endpoint::error(400, "invalid_request_error", code, message.as_ref())
}

/// The fields of a `POST /quality` body.
const QUALITY_FIELDS: [&str; 4] = ["provider", "passed", "model", "tenant"];

/// `POST /quality`: `{"provider", "passed", "model", "tenant"?}`, a result
/// the caller checked itself.
fn record_quality(router: &Router, body: &Value) -> Result<(), Answer> {
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

/// A request's body, up to [`endpoint::MAX_REQUEST_BYTES`].
async fn read_body(req: &web_sys::Request, headers: &web_sys::Headers) -> Result<Vec<u8>, Answer> {
    let too_large = || endpoint::request_too_large(endpoint::MAX_REQUEST_BYTES);
    let declared = headers.get("content-length").ok().flatten();
    if declared
        .as_deref()
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n > endpoint::MAX_REQUEST_BYTES as u64)
    {
        return Err(too_large());
    }
    // With a declared length that fits, the body is read in one call;
    // without one, it is counted as it comes, so an oversized body is
    // refused as soon as it passes the cap, not after it is all in memory.
    let whole = declared.is_some() && {
        let encoding = headers.get("content-encoding").ok().flatten();
        host::fits(
            declared.as_deref(),
            encoding.as_deref(),
            endpoint::MAX_REQUEST_BYTES,
        )
    };
    match host::read_body(req.as_ref(), endpoint::MAX_REQUEST_BYTES, whole).await {
        Ok(Body::Bytes(bytes)) => Ok(bytes),
        // A request without a body is empty, so bad JSON.
        Ok(Body::None) => Ok(Vec::new()),
        Ok(Body::TooLarge) => Err(too_large()),
        Err(e) => {
            let m = format!("cannot read the body: {}", worker::Error::from(e));
            Err(bad_request("bad_body", m))
        }
    }
}

/// A `POST /quality` body as JSON.
async fn read_json(req: &web_sys::Request, headers: &web_sys::Headers) -> Result<Value, Answer> {
    let bytes = read_body(req, headers).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| bad_request("invalid_json", format!("the body is not valid JSON: {e}")))
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

fn config_error(message: &str) -> Answer {
    let message = format!("the worker's config is unusable: {message}");
    endpoint::error(500, "server_error", "bad_config", &message)
}

/// `Ok` when `method` is the one an admin route takes, else the 405.
fn allow(method: &str, allowed: &str) -> Result<(), Answer> {
    if method.eq_ignore_ascii_case(allowed) {
        return Ok(());
    }
    let message = format!("method not allowed; use {allowed}");
    Err(endpoint::error(
        405,
        "invalid_request_error",
        "method_not_allowed",
        &message,
    ))
}

fn internal(e: wasm_bindgen::JsValue) -> Answer {
    let message = worker::Error::from(e).to_string();
    endpoint::error(500, "server_error", "internal", &message)
}

/// An admin route's JSON answer.
fn json_response(status: u16, body: &Value) -> Result<web_sys::Response, Answer> {
    send_answer(&endpoint::json(status, body))
}

fn send_answer(answer: &Answer) -> Result<web_sys::Response, Answer> {
    host::respond(&answer.body, answer.status, &answer.headers).map_err(internal)
}

/// Send `answer`; if the runtime refuses it, a plain 500.
fn send(answer: &Answer) -> worker::Result<web_sys::Response> {
    send_answer(answer).or_else(|_| Response::error("internal error", 500).map(Into::into))
}
