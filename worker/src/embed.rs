//! The embedded API for TypeScript workers (llmkit and the like):
//!
//! ```ts
//! import { Router } from "f3dx-router-worker";
//! const router = new Router(config, env);   // env resolves api_key_env
//! const completion = await router.chatCompletions(body);
//! router.setApiKey("openai", freshKey);     // calls from now on send it
//! ```
//!
//! Errors are thrown as `Error`s with `kind` ("config", "invalid_request",
//! "hard", "all_failed"), `status` (the HTTP status to answer with) and
//! `provider` (for a hard failure).

use f3dx_router_core::endpoint;
use f3dx_router_core::{
    drive_with, is_stream_request, quality, Attempt, CallOptions, CallerHeaders, Driver, Executor,
    RouteError, Routed, Router as CoreRouter, RouterConfig, Skipped,
};
use js_sys::{Error as JsError, Object, Reflect};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::executor::FetchExecutor;
use crate::stream_out;
use worker::worker_sys::web_sys;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A provider, as in the Python API's config. */
export interface ProviderConfig {
  name: string;
  kind: "openai" | "anthropic" | "azure";
  /** For kind "azure": the resource's endpoint, e.g. "https://my-resource.openai.azure.com". */
  base_url: string;
  api_key?: string;
  /** Name of a binding (in the env passed to the constructor) holding the key. */
  api_key_env?: string;
  timeout_ms?: number;
  weight?: number;
  model?: string;
  headers?: Record<string, string>;
  /** A larger answer is a soft failure; on the Worker the default is 8 MiB (an isolate has 128 MB). */
  max_body_bytes?: number;
  stream_idle_timeout_ms?: number;
  /** kind "azure" only: "v1" (/openai/v1/chat/completions, model in the body; the default) or "deployments" (/openai/deployments/{model}/chat/completions?api-version=...). */
  azure_api?: "v1" | "deployments";
  /** kind "azure" with azure_api "deployments" only, and required there: e.g. "2024-10-21". */
  api_version?: string;
  /** kind "azure" only: "api_key" (the api-key header; the default) or "bearer" (Authorization: Bearer, for Microsoft Entra ID tokens). */
  auth?: "api_key" | "bearer";
}

/** The router's config: the same schema as ROUTER_CONFIG. */
export interface RouterConfig {
  providers: ProviderConfig[];
  policy?: "sequential" | "weighted" | "hedged";
  hedge_k?: number;
  /** Milliseconds before each further leg (0: all together), or "auto": the p90 of the provider waited on. */
  hedge_delay_ms?: number | "auto";
  /** "auto"'s delay while that provider has fewer than 20 recent successes (default 1000). */
  hedge_delay_fallback_ms?: number;
  /** Tokens each call adds to the hedge bucket (cap 10; an extra leg costs 1). Default 0.1 with a delay, unlimited without. */
  hedge_budget?: number;
  /** Health tracking: the defaults (true or absent), off (false), or some settings. */
  health?: boolean | {
    window_s?: number; buckets?: number; min_requests?: number; max_error_rate?: number;
    consecutive_failures?: number; ejection_s?: number; max_ejection_s?: number;
  };
  /** Quality-aware routing (schema pass rates per provider, tenant and model): the defaults (true or absent), off (false), or some settings. */
  quality?: boolean | {
    window?: number; min_samples?: number; min_pass_rate?: number; probe_after_s?: number;
    on_failure?: "return" | "failover"; max_keys?: number; max_bytes?: number;
  };
  /** Statuses (400-599) and error codes made soft (groups and deployments add their own). */
  failover_on?: Array<number | string>;
  /** Retries of a soft failure on the same deployment (0-10, default 0). */
  retries?: number;
  /** The first retry's backoff (jittered, doubling; default 100 ms). */
  backoff_ms?: number;
  /** The longest backoff (default 5000 ms); a longer Retry-After moves on at once. */
  backoff_max_ms?: number;
  /** Names of the caller's headers (CallOptions.headers) copied to every attempt; a group's own list replaces it. Credentials, hop-by-hop, framing and x-f3dx-* headers are never forwarded. */
  forward_headers?: string[];
}

/** Per-call options. */
export interface CallOptions {
  /** Who the call is for: quality pass rates are kept per (provider, tenant, model). */
  tenant?: string;
  /** The caller's own headers (an object of name to value, or a `Headers`, such as the inbound request's): those `forward_headers` lists go to every attempt. */
  headers?: Record<string, string> | Headers;
}

/** A result the caller checked itself, for `recordQuality`. */
export interface QualityReport {
  /** The model the call asked for. */
  model: string;
  tenant?: string;
}

/** An OpenAI chat completion (the fields the router guarantees). */
export interface ChatCompletion {
  id?: string;
  object?: string;
  model?: string;
  choices: Array<{ index: number; message: { role: string; content: string | null; tool_calls?: unknown[] }; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  [key: string]: unknown;
}

/** One upstream attempt of a call. */
export interface Attempt {
  provider: string;
  outcome: "success" | "soft" | "hard" | "cancelled" | "in_flight";
  status?: number;
  fault?: string;
  detail: string;
  startedMs: number;
  /** The request's parameters it was sent without (`unsupported_params: "drop"`). */
  dropped?: string[];
}

/** A deployment a call passed over without sending: its kind cannot carry
 *  some of the request's parameters (`unsupported_params: "error"`). */
export interface SkippedDeployment {
  provider: string;
  group: string | null;
  model: string | null;
  reason: "unsupported_params";
  /** The parameters it cannot carry, in the request's order. */
  params: string[];
}

/** What `route` resolves to: the response, the winner and every attempt.
 *  For a request with `stream: true`, `response` is the stream of OpenAI
 *  server-sent events, and `provider` and `attempts` are as of its commit
 *  point. */
export interface RouteResult {
  response: ChatCompletion | ReadableStream<Uint8Array>;
  provider: string;
  attempts: Attempt[];
  /** Whether the answer matched the request's response_format; null when nothing was checked (and for a stream, checked only at its end). */
  schemaValid: boolean | null;
  /** Deployments passed over without sending (empty for a stream). */
  skipped: SkippedDeployment[];
}

/** A provider health transition (what the standalone worker logs with
 *  console.warn, console.log for a readmission), or, with `dropped`, how
 *  many the router had to drop since the last take. */
export interface HealthEvent {
  /** One line: "provider 'openai' ejected for 30.0 s: 5 soft failures in a row". */
  message: string;
  source: "f3dx_router";
  provider?: string;
  transition?: "ejected" | "readmitted" | "cooling" | "rate_limited" | "budget_exhausted" | "quality_excluded" | "quality_readmitted";
  /** consecutive_failures, error_rate, failed_probe, retry_after, rate_limit_headers, rpm, tpm, pass_rate; null for a readmission. */
  reason?: string | null;
  /** How long the state lasts, in seconds; null for a readmission. */
  for_s?: number | null;
  /** The tenant and model of a quality transition (quality-aware routing). */
  tenant?: string;
  model?: string;
  dropped?: number;
}

/** One deployment of a model group (`models()`). */
export interface DeploymentInfo {
  provider: string;
  /** The model name sent to the provider; null: the caller's. */
  model: string | null;
  /** Share of first tries under "weighted" (0: only after the others). */
  weight: number;
  context_window: number | null;
  timeout_ms: number;
  rpm: number | null;
  tpm: number | null;
}

/** One model group of the routing table (`models()`); without `models` in
 *  the config, one implicit group "*" of every provider. */
export interface ModelGroupInfo {
  name: string;
  implicit: boolean;
  pattern: boolean;
  policy: "sequential" | "weighted" | "hedged";
  max_in_flight: number;
  quality: boolean;
  fallbacks: string[];
  context_window_fallbacks: string[];
  content_policy_fallbacks: string[];
  deployments: DeploymentInfo[];
}

/** One deployment in an `Explanation`. */
export interface PlannedDeployment {
  group: string;
  provider: string;
  /** The model name it would be sent. */
  model: string;
  /** Why it is left out, or why it is where it is (null: tried in its turn). */
  reason: "cooling" | "rate_limited" | "ejected" | "probe_held" | "context_window"
    | "quality_excluded" | "quality_probe_held" | "weight_zero" | "unsupported_params" | null;
  /** The reason in a sentence. */
  detail: string | null;
  /** Tried although out: every deployment of its group was out. */
  last_resort: boolean;
  /** Seconds until the state ends. */
  until_s?: number;
  /** With "rate_limited": which limit. */
  budget?: "rpm" | "tpm" | "rate_limit_headers";
  /** With "context_window". */
  tokens_needed?: number;
  context_window?: number;
  /** With "unsupported_params": the parameters it cannot carry. */
  params?: string[];
  /** Tried, but sent without these parameters (`unsupported_params: "drop"`). */
  dropped?: string[];
}

/** What a call would do now (`explain()`, `POST /explain`): nothing is sent. */
export interface Explanation {
  model: string;
  group: string;
  /** No deployment of its own group is usable: they are tried anyway. */
  last_resort: boolean;
  /** The deployments it would try, in order. */
  tried: PlannedDeployment[];
  /** The deployments it considered and would not try. */
  left_out: PlannedDeployment[];
}

/** What `chatCompletions`, `route` and the constructor throw. */
export interface RouterError extends Error {
  kind: "config" | "invalid_request" | "hard" | "all_failed";
  /** The HTTP status to answer with: the upstream's for "hard", 502 for "all_failed". */
  status: number;
  provider?: string;
  /** Upstream attempts made. */
  attempts: number;
  /** Deployments passed over without sending, when there are any. */
  skipped?: SkippedDeployment[];
  /** For a routing failure ("invalid_request", "hard", "all_failed"): the
   *  front door's OpenAI-shaped error, as the standalone worker answers it
   *  (with `status`): a hard failure's is the provider's own `type`, `code`
   *  and `param`, with the router's message. */
  error?: { message: string; type: string; code: string | number | null; param?: string };
}
"#;

#[wasm_bindgen]
extern "C" {
    /// `RouterConfig` in TypeScript.
    #[wasm_bindgen(typescript_type = "RouterConfig")]
    pub type JsRouterConfig;
    /// `Record<string, unknown>` in TypeScript (a worker's `env`).
    #[wasm_bindgen(typescript_type = "Record<string, unknown>")]
    pub type JsEnv;
    /// `Promise<ChatCompletion | ReadableStream<Uint8Array>>` in TypeScript.
    #[wasm_bindgen(typescript_type = "Promise<ChatCompletion | ReadableStream<Uint8Array>>")]
    pub type JsCompletionPromise;
    /// `Promise<RouteResult>` in TypeScript.
    #[wasm_bindgen(typescript_type = "Promise<RouteResult>")]
    pub type JsRoutePromise;
    /// `CallOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "CallOptions")]
    pub type JsCallOptions;
    /// `QualityReport` in TypeScript.
    #[wasm_bindgen(typescript_type = "QualityReport")]
    pub type JsQualityReport;
    /// `ModelGroupInfo[]` in TypeScript.
    #[wasm_bindgen(typescript_type = "ModelGroupInfo[]")]
    pub type JsModels;
    /// `Explanation` in TypeScript.
    #[wasm_bindgen(typescript_type = "Explanation")]
    pub type JsExplanation;
    /// `HealthEvent[]` in TypeScript.
    #[wasm_bindgen(typescript_type = "HealthEvent[]")]
    pub type JsHealthEvents;
}

/// A router for a TypeScript worker. Build it once (outside the request
/// handler) so provider cooldowns carry from one request to the next.
#[wasm_bindgen(js_name = Router)]
pub struct EmbeddedRouter {
    inner: CoreRouter,
}

#[wasm_bindgen(js_class = Router)]
impl EmbeddedRouter {
    /// Validate `config`; `env` resolves each provider's `api_key_env`.
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsRouterConfig, env: Option<JsEnv>) -> Result<EmbeddedRouter, JsValue> {
        let value: Value = serde_wasm_bindgen::from_value(config.into()).map_err(|e| {
            throwable(
                "config",
                500,
                None,
                0,
                &format!("invalid router config: {e}"),
            )
        })?;
        let env: Option<Object> = env.map(|e| JsValue::from(e).unchecked_into());
        let lookup = |name: &str| {
            let env = env.as_ref()?;
            Reflect::get(env, &JsValue::from_str(name))
                .ok()?
                .as_string()
        };
        let config = RouterConfig::from_json_checked(&value, &lookup, crate::limits())
            .map_err(|e| throwable("config", 500, None, 0, &e.to_string()))?;
        Ok(EmbeddedRouter {
            inner: CoreRouter::new(config),
        })
    }

    /// Route one OpenAI chat-completions request; resolves to the
    /// OpenAI-shaped response, or rejects with a `RouterError`. With
    /// `stream: true` it resolves at the commit point (the first output) to
    /// a `ReadableStream` of OpenAI server-sent events ending with
    /// `data: [DONE]`; a failure after it ends the stream with one error
    /// event instead. Cancelling the stream aborts the upstream fetch.
    #[wasm_bindgen(js_name = chatCompletions)]
    pub fn chat_completions(
        &self,
        body: JsValue,
        options: Option<JsCallOptions>,
    ) -> JsCompletionPromise {
        let router = self.inner.clone();
        let promise = future_to_promise(async move {
            let options = call_options(&router, options)?;
            match run(&router, body, options).await? {
                Answer::Whole(routed) => to_js(&routed.response),
                Answer::Stream(committed) => {
                    wasm_bindgen_futures::spawn_local(committed.pump);
                    Ok(committed.readable)
                }
            }
        });
        promise.unchecked_into()
    }

    /// Report whether an answer `provider` gave passed the caller's own
    /// validation; it counts toward (provider, tenant, model)'s pass rate
    /// as the router's own checks do.
    #[wasm_bindgen(js_name = recordQuality)]
    pub fn record_quality(
        &self,
        provider: &str,
        passed: bool,
        report: JsQualityReport,
    ) -> Result<(), JsValue> {
        let report = JsValue::from(report);
        let field = |k: &str| Reflect::get(&report, &JsValue::from_str(k)).ok();
        let Some(model) = field("model").and_then(|m| m.as_string()) else {
            return Err(throwable(
                "invalid_request",
                400,
                None,
                0,
                "recordQuality: the report needs `model`, the model the call asked for",
            ));
        };
        let tenant = tenant_of(field("tenant"))?;
        quality::check_model(&model).map_err(|m| {
            throwable(
                "invalid_request",
                400,
                None,
                0,
                &format!("recordQuality: {m}"),
            )
        })?;
        self.inner
            .record_quality(provider, &tenant, &model, passed, FetchExecutor.now())
            .map_err(|m| {
                throwable(
                    "invalid_request",
                    400,
                    None,
                    0,
                    &format!("recordQuality: {m}"),
                )
            })
    }

    /// Give `provider` (its name) a new API key for every call that starts
    /// from now on: a rotated secret, a short-lived token (an Azure Entra
    /// ID access token). Nothing the router learned is lost; calls in
    /// flight keep the key they started with. A key from `api_key_env` is
    /// replaced by this one. Throws a `RouterError` of kind "config", the
    /// router unchanged, for an unknown provider, an empty key or one that
    /// cannot go in a header (a line break); no message repeats the key.
    #[wasm_bindgen(js_name = setApiKey)]
    pub fn set_api_key(&self, provider: &str, key: &str) -> Result<(), JsValue> {
        self.inner
            .set_api_key(provider, key)
            .map_err(|e| throwable("config", 500, None, 0, &e.to_string()))
    }

    /// What this router remembers (per provider state, window counts,
    /// latency percentiles, ejections; hedging), as `GET /stats` answers.
    /// Each isolate keeps its own.
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        to_js(&crate::stats::stats_json(&self.inner))
    }

    /// The routing table: each model group with its policy, fallbacks and
    /// deployments (provider, model sent, weight, context window...), as
    /// the Python API's `Router.models()` gives it.
    pub fn models(&self) -> Result<JsModels, JsValue> {
        to_js(&self.inner.models_json()).map(JsCast::unchecked_into)
    }

    /// What `chatCompletions(body, options)` would do now, without sending
    /// anything or changing any state: the deployments it would try, in
    /// order, and why each other one is left out (as `POST /explain`
    /// answers). Throws the `RouterError` a call would reject with for an
    /// invalid request (an unknown model names the groups there are).
    pub fn explain(
        &self,
        body: JsValue,
        options: Option<JsCallOptions>,
    ) -> Result<JsExplanation, JsValue> {
        let options = call_options(&self.inner, options)?;
        let body = body_of(body)?;
        let now = FetchExecutor.now();
        let explained = self
            .inner
            .explain(body, options, now)
            .map_err(|e| route_error(&e))?;
        to_js(&explained.to_json(now)).map(JsCast::unchecked_into)
    }

    /// The provider health transitions since the last take, oldest first
    /// (ejections, readmissions, cooldowns, budgets run out; each once), for
    /// the gateway to log: the router keeps up to 256 between two takes.
    #[wasm_bindgen(js_name = takeHealthEvents)]
    pub fn take_health_events(&self) -> Result<JsHealthEvents, JsValue> {
        let lines = crate::health_log::lines(&self.inner.take_health_events());
        let fields: Vec<Value> = lines.into_iter().map(|l| l.fields).collect();
        to_js(&Value::from(fields)).map(JsCast::unchecked_into)
    }

    /// As `chatCompletions`, and also which provider answered and every
    /// attempt (for a gateway's headers and logs).
    pub fn route(&self, body: JsValue, options: Option<JsCallOptions>) -> JsRoutePromise {
        let router = self.inner.clone();
        let promise = future_to_promise(async move {
            let options = call_options(&router, options)?;
            let (response, provider, attempts, valid, skipped) =
                match run(&router, body, options).await? {
                    Answer::Whole(routed) => (
                        to_js(&routed.response)?,
                        routed.provider,
                        routed.attempts,
                        routed.schema_valid,
                        routed.skipped,
                    ),
                    Answer::Stream(committed) => {
                        wasm_bindgen_futures::spawn_local(committed.pump);
                        (
                            committed.readable,
                            committed.provider,
                            committed.attempts,
                            None,
                            Vec::new(),
                        )
                    }
                };
            let attempts: Vec<Value> = attempts.iter().map(attempt_json).collect();
            let result = to_js(&serde_json::json!({
                "provider": provider, "attempts": attempts, "schemaValid": valid,
                "skipped": skipped_json(&skipped),
            }))?;
            Reflect::set(&result, &JsValue::from_str("response"), &response)?;
            Ok(result)
        });
        promise.unchecked_into()
    }
}

/// A call's answer: whole, or a stream at its commit point.
enum Answer {
    Whole(Routed),
    Stream(stream_out::Committed),
}

/// A call's or a report's `tenant`: absent, or a string the core accepts.
fn tenant_of(value: Option<JsValue>) -> Result<String, JsValue> {
    let Some(t) = value.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(String::new());
    };
    let invalid = |m: &str| throwable("invalid_request", 400, None, 0, m);
    let tenant = t
        .as_string()
        .ok_or_else(|| invalid("tenant must be a string"))?;
    quality::check_tenant(&tenant).map_err(|m| invalid(&m))?;
    Ok(tenant)
}

fn call_options(
    router: &CoreRouter,
    options: Option<JsCallOptions>,
) -> Result<CallOptions, JsValue> {
    let options = options.map(JsValue::from).filter(|o| o.is_object());
    let tenant = options
        .as_ref()
        .and_then(|o| Reflect::get(o, &JsValue::from_str("tenant")).ok());
    let mut call = CallOptions {
        tenant: tenant_of(tenant)?,
        ..CallOptions::default()
    };
    // Read only when some group forwards a header.
    if router.models().any_forward_headers() {
        if let Some(headers) = options
            .as_ref()
            .and_then(|o| Reflect::get(o, &JsValue::from_str("headers")).ok())
        {
            call.headers = headers_of(router, headers)?;
        }
    }
    Ok(call)
}

/// A call's `headers`: absent, a `Headers` (looked up by the names some
/// group forwards), or an object of name to string value (a name not
/// forwarded is not read).
fn headers_of(router: &CoreRouter, value: JsValue) -> Result<CallerHeaders, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(CallerHeaders::new());
    }
    if let Some(headers) = value.dyn_ref::<web_sys::Headers>() {
        return Ok(crate::handler::caller_headers(router, headers));
    }
    let invalid = |m: &str| throwable("invalid_request", 400, None, 0, m);
    let Some(object) = value.dyn_ref::<js_sys::Object>() else {
        return Err(invalid(
            "headers must be an object of header names to values, or a Headers",
        ));
    };
    let table = router.models();
    let mut out = CallerHeaders::new();
    for entry in js_sys::Object::entries(object).iter() {
        let entry: js_sys::Array = entry.unchecked_into();
        let Some(name) = entry.get(0).as_string() else {
            continue;
        };
        if !table.forwards_header(&name) {
            continue;
        }
        let value = entry.get(1).as_string().ok_or_else(|| {
            invalid(&format!(
                "headers: the value of the forwarded header {:?} must be a string",
                name.to_ascii_lowercase()
            ))
        })?;
        out.push(name, value);
    }
    Ok(out)
}

/// A call's body as JSON, or the invalid request it is.
fn body_of(body: JsValue) -> Result<Value, JsValue> {
    serde_wasm_bindgen::from_value(body).map_err(|e| {
        throwable(
            "invalid_request",
            400,
            None,
            0,
            &format!("the body is not JSON-like: {e}"),
        )
    })
}

async fn run(router: &CoreRouter, body: JsValue, options: CallOptions) -> Result<Answer, JsValue> {
    let body = body_of(body)?;
    if is_stream_request(&body) {
        let driver = Driver::start_with(router, FetchExecutor, body, options);
        return stream_out::commit(driver)
            .await
            .map(Answer::Stream)
            .map_err(|e| route_error(&e));
    }
    drive_with(router, &FetchExecutor, body, options)
        .await
        .map(Answer::Whole)
        .map_err(|e| route_error(&e))
}

fn attempt_json(a: &Attempt) -> Value {
    let mut v = serde_json::json!({
        "provider": a.provider,
        "outcome": a.outcome.as_str(),
        "detail": a.detail,
        "startedMs": a.started.as_secs_f64() * 1000.0,
    });
    if let Some(s) = a.status {
        v["status"] = Value::from(s);
    }
    if let Some(f) = &a.fault {
        v["fault"] = Value::from(f.name());
    }
    if !a.dropped.is_empty() {
        v["dropped"] = Value::from(a.dropped.clone());
    }
    v
}

/// The deployments a call passed over (`SkippedDeployment[]`).
fn skipped_json(skipped: &[Skipped]) -> Value {
    skipped
        .iter()
        .map(|s| {
            serde_json::json!({
                "provider": s.provider, "group": s.group, "model": s.model,
                "reason": Skipped::REASON, "params": s.params,
            })
        })
        .collect()
}

/// A plain JS object (not a Map) from a JSON value.
pub fn to_js(value: &Value) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsValue::from(JsError::new(&e.to_string())))
}

fn route_error(e: &RouteError) -> JsValue {
    // The front door's answer (the core's endpoint): its status (the
    // upstream's for a hard 4xx, 502 for the rest of the upstream failures,
    // 400 for a bad request) and its OpenAI-shaped `error` object, so a
    // gateway answers exactly as the standalone worker does.
    let answer = endpoint::route_error(e);
    let provider = match e {
        RouteError::Hard { provider, .. } | RouteError::StreamInterrupted { provider, .. } => {
            Some(provider.as_str())
        }
        RouteError::InvalidRequest { .. } | RouteError::AllFailed { .. } => None,
    };
    let err = throwable(
        e.kind(),
        answer.status,
        provider,
        e.attempts().len(),
        &e.to_string(),
    );
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    if let Ok(error) = to_js(&body["error"]) {
        let _ = Reflect::set(&err, &JsValue::from_str("error"), &error);
    }
    if !e.skipped().is_empty() {
        if let Ok(skipped) = to_js(&skipped_json(e.skipped())) {
            let _ = Reflect::set(&err, &JsValue::from_str("skipped"), &skipped);
        }
    }
    err
}

fn throwable(
    kind: &str,
    status: u16,
    provider: Option<&str>,
    attempts: usize,
    message: &str,
) -> JsValue {
    let err = JsError::new(message);
    err.set_name("RouterError");
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&err, &JsValue::from_str(k), &v);
    };
    set("kind", JsValue::from_str(kind));
    set("status", JsValue::from(status));
    set("attempts", JsValue::from(attempts as u32));
    if let Some(p) = provider {
        set("provider", JsValue::from_str(p));
    }
    err.into()
}
