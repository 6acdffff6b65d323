//! `f3dx_router.Router`: the native router behind a Python class.

use std::sync::{Arc, PoisonError, RwLock};

use f3dx_router_core::{
    quality, CallOptions, HostLimits, RouteError, Routed, Router, RouterConfig,
};
use f3dx_router_native::NativeRouter;
use pyo3::exceptions::{PyException, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{Map, Value};

use crate::aio::{self, Shape};
use crate::config::log_warnings;
use crate::convert::{to_json, to_py, ConvertError};
use crate::errors::{config_error, route_error};
use crate::observe::Observer;
use crate::repr::router_repr;
use crate::signals;
use crate::stream::{commit_blocking, PyChatStream};
use crate::trace::{millis, skipped_list, PyAttempt, PyRouteResult};

/// Routes OpenAI chat-completions requests over several providers.
///
/// `subclass`: `f3dx_router.Router` is a Python class over this one, where
/// the methods written in Python (`from_file`, `achat_completions`, ...)
/// are defined.
#[pyclass(frozen, subclass, name = "Router", module = "f3dx_router._native")]
pub struct PyRouter {
    /// The router (config, provider health) and this process's runtime and
    /// pools around it: the one handle, replaced after a fork (see
    /// `native`).
    native: RwLock<Lanes>,
    /// Logging and, with `otel=True`, tracing of its calls.
    observer: Arc<Observer>,
}

#[pymethods]
impl PyRouter {
    #[new]
    #[pyo3(signature = (
        providers,
        *,
        policy = None,
        hedge_k = None,
        hedge_delay_ms = None,
        hedge_delay_fallback_ms = None,
        hedge_budget = None,
        health = None,
        quality = None,
        models = None,
        fallbacks = None,
        context_window_fallbacks = None,
        content_policy_fallbacks = None,
        failover_on = None,
        retries = None,
        backoff_ms = None,
        backoff_max_ms = None,
        unsupported_params = None,
        forward_headers = None,
        otel = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        providers: &Bound<'_, PyAny>,
        policy: Option<&Bound<'_, PyAny>>,
        hedge_k: Option<&Bound<'_, PyAny>>,
        hedge_delay_ms: Option<&Bound<'_, PyAny>>,
        hedge_delay_fallback_ms: Option<&Bound<'_, PyAny>>,
        hedge_budget: Option<&Bound<'_, PyAny>>,
        health: Option<&Bound<'_, PyAny>>,
        quality: Option<&Bound<'_, PyAny>>,
        models: Option<&Bound<'_, PyAny>>,
        fallbacks: Option<&Bound<'_, PyAny>>,
        context_window_fallbacks: Option<&Bound<'_, PyAny>>,
        content_policy_fallbacks: Option<&Bound<'_, PyAny>>,
        failover_on: Option<&Bound<'_, PyAny>>,
        retries: Option<&Bound<'_, PyAny>>,
        backoff_ms: Option<&Bound<'_, PyAny>>,
        backoff_max_ms: Option<&Bound<'_, PyAny>>,
        unsupported_params: Option<&Bound<'_, PyAny>>,
        forward_headers: Option<&Bound<'_, PyAny>>,
        otel: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // Every value goes to the core's validation as JSON, so a bad one (a
        // negative hedge_k, a policy that is not a string) is a ConfigError
        // with the same message the worker gives.
        let fields = [
            ("providers", Some(providers)),
            ("policy", policy),
            ("hedge_k", hedge_k),
            ("hedge_delay_ms", hedge_delay_ms),
            ("hedge_delay_fallback_ms", hedge_delay_fallback_ms),
            ("hedge_budget", hedge_budget),
            ("health", health),
            ("quality", quality),
            ("models", models),
            ("fallbacks", fallbacks),
            ("context_window_fallbacks", context_window_fallbacks),
            ("content_policy_fallbacks", content_policy_fallbacks),
            ("failover_on", failover_on),
            ("retries", retries),
            ("backoff_ms", backoff_ms),
            ("backoff_max_ms", backoff_max_ms),
            ("unsupported_params", unsupported_params),
            ("forward_headers", forward_headers),
        ];
        let mut config = Map::new();
        for (name, value) in fields {
            if let Some(v) = value {
                let json = to_json(v).map_err(|e| as_config_error(py, name, e))?;
                config.insert(name.into(), json);
            }
        }
        let env = |name: &str| std::env::var(name).ok();
        let parsed_from = Value::Object(config);
        // Every error at once; the common case (a valid config) parses once.
        let config = RouterConfig::from_json_checked(&parsed_from, &env, HostLimits::default())
            .map_err(|e| config_error(py, &e))?;
        log_warnings(py, &parsed_from)?;
        let router = Router::new(config);
        let observer = Arc::new(Observer::new(py, &router, otel_flag(py, otel)?)?);
        Ok(PyRouter {
            native: RwLock::new(Lanes::new(router)?),
            observer,
        })
    }

    /// Route one request (an OpenAI chat-completions body, a dict) and
    /// return the OpenAI-shaped response dict, whichever provider answered.
    /// With `"stream": True`, return a `ChatStream` at the commit point
    /// (its first output). `tenant` (a str) keys quality-aware routing.
    /// `headers` (a mapping of str to str) are the caller's own: those the
    /// config's `forward_headers` lists go to every attempt (read only
    /// when it lists some; a bad value is an `InvalidRequest`, nothing
    /// sent).
    /// Raises `InvalidRequest` (nothing sent), `HardFailure` (a 4xx other
    /// than 408/429: not replayed elsewhere) or `AllProvidersFailed`; the
    /// GIL is released while the call runs.
    #[pyo3(signature = (body, *, tenant = None, headers = None))]
    fn chat_completions<'py>(
        &self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
        tenant: Option<&Bound<'py, PyAny>>,
        headers: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (body, options) = self.call_input(py, body, tenant, headers)?;
        if streamed(&body) {
            return Ok(
                Bound::new(py, raised(py, self.start_stream(py, body, options))?)?.into_any(),
            );
        }
        let routed = raised(py, self.run_call(py, body, options))?;
        to_py(py, &routed.response)
    }

    /// Route one request, as `chat_completions`, and return a
    /// `RouteResult`: the response, the provider that answered, the
    /// latency and every attempt (provider, outcome, status, timing). A
    /// whole answer only: a streamed request is an `InvalidRequest`.
    #[pyo3(signature = (body, *, tenant = None, headers = None))]
    fn route(
        &self,
        py: Python<'_>,
        body: &Bound<'_, PyAny>,
        tenant: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRouteResult> {
        let (body, options) = self.call_input(py, body, tenant, headers)?;
        if streamed(&body) {
            return Err(whole_answers_only(py, ROUTE_STREAM));
        }
        let routed = raised(py, self.run_call(py, body, options))?;
        route_result(py, routed)
    }

    /// `achat_completions` (a coroutine in `f3dx_router/_router.py`) awaits
    /// this: an asyncio future of the response dict, or of an
    /// `AsyncChatStream` when `"stream": true`. The call runs on the
    /// router's background runtime; cancelling the future cancels every
    /// leg of it.
    #[pyo3(signature = (body, *, tenant = None, headers = None))]
    fn _achat_completions<'py>(
        &self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
        tenant: Option<&Bound<'py, PyAny>>,
        headers: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (body, options) = self.call_input(py, body, tenant, headers)?;
        let native = self.native()?;
        if streamed(&body) {
            aio::start_stream(py, &native, &self.observer, body, options, false)
        } else {
            aio::start_call(py, &native, &self.observer, body, options, Shape::Dict)
        }
    }

    /// `aroute` awaits this: an asyncio future of a `RouteResult`.
    #[pyo3(signature = (body, *, tenant = None, headers = None))]
    fn _aroute<'py>(
        &self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
        tenant: Option<&Bound<'py, PyAny>>,
        headers: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (body, options) = self.call_input(py, body, tenant, headers)?;
        if streamed(&body) {
            return Err(whole_answers_only(py, AROUTE_STREAM));
        }
        let native = self.native()?;
        aio::start_call(
            py,
            &native,
            &self.observer,
            body,
            options,
            Shape::RouteResult,
        )
    }

    /// Report whether an answer `provider` gave passed your own validation
    /// (pydantic, instructor, a test suite): it counts toward the pass rate
    /// of (provider, tenant, model) as the router's own checks do. `model`
    /// is the model the call asked for.
    #[pyo3(signature = (provider, passed, *, model, tenant = ""))]
    fn record_quality(
        &self,
        py: Python<'_>,
        provider: &str,
        passed: &Bound<'_, PyAny>,
        model: &str,
        tenant: &str,
    ) -> PyResult<()> {
        let passed = passed
            .cast::<pyo3::types::PyBool>()
            .map_err(|_| PyTypeError::new_err("record_quality: `passed` must be True or False"))?
            .is_true();
        // A key a call could not have is an invalid request, as for a call.
        quality::check_tenant(tenant)
            .and_then(|()| quality::check_model(model))
            .map_err(|m| invalid_request_error(py, m))?;
        let native = self.native()?;
        let now = native.now();
        native
            .router()
            .record_quality(provider, tenant, model, passed, now)
            .map_err(|e| PyValueError::new_err(format!("record_quality: {e}")))?;
        // An exclusion or readmission it caused is logged now.
        self.observer.log_health(py)
    }

    /// Give `provider` (its name) a new API key for every call that
    /// starts from now on: a rotated secret, a short-lived token (an Azure
    /// Entra ID access token). Nothing the router learned is lost (health,
    /// cooldowns, budgets, latency, quality, stats); calls in flight keep
    /// the key they started with, and have it redacted from errors and
    /// logs as before. A key from `api_key_env` is replaced by this one
    /// (the variable is not read again). Raises `ConfigError`, the router
    /// unchanged, for an unknown provider (the message lists the names),
    /// an empty key or one that cannot go in a header (a line break, a
    /// non-ASCII character); no message repeats the key. Takes no lock a
    /// call holds: safe from any thread, and from async code.
    fn set_api_key(&self, py: Python<'_>, provider: &str, api_key: &str) -> PyResult<()> {
        self.current()
            .router()
            .set_api_key(provider, api_key)
            .map_err(|e| config_error(py, &e))
    }

    /// Provider names, in priority order.
    #[getter]
    fn providers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let native = self.current();
        PyList::new(
            py,
            native
                .router()
                .config()
                .providers
                .iter()
                .map(|p| p.name.as_str()),
        )
    }

    /// The routing policy: "sequential", "weighted" or "hedged".
    #[getter]
    fn policy(&self) -> &'static str {
        self.current().router().config().policy.name()
    }

    /// Seconds until each cooling provider (after a 429's `Retry-After`,
    /// say) may be called again, by provider name; with a routing table,
    /// by deployment: `"provider:model"` (state is per provider and model;
    /// a pattern group passing the caller's model through: `"provider:*"`).
    fn cooldowns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let native = self.native()?;
        let now = native.now();
        let out = PyDict::new(py);
        let router = native.router();
        let config = router.config();
        let table = &config.table;
        for (slot, until) in table.slots.iter().zip(router.cooldowns(now)) {
            if let Some(t) = until {
                let name = &config.providers[slot.provider].name;
                let key = if table.declared {
                    format!("{name}:{}", slot.model.as_deref().unwrap_or("*"))
                } else {
                    name.clone()
                };
                out.set_item(key, (t - now).as_secs_f64())?;
            }
        }
        Ok(out)
    }

    /// What the router remembers (see `f3dx_router.RouterStats`), with
    /// numbers rounded for reading (by the core, as on the Worker).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let native = self.current();
        let now = native.now();
        // As JSON text, read by Python's C scanner: a table of hundreds of
        // deployments would spend milliseconds building maps twice.
        let text = native.router().stats(now).to_json_text(now);
        py.import("json")?.call_method1("loads", (text,))
    }

    /// The routing table: each model group (in config order) with its
    /// policy, fallbacks and deployments (provider, model sent, weight,
    /// context window, timeout, budgets). See `f3dx_router.ModelGroupInfo`.
    /// Without `models` in the config, one implicit group `"*"` of every
    /// provider.
    fn models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.current().router().models_json())
    }

    /// What a call of `body` (with `tenant`) would do now, without sending
    /// anything or changing any state: the deployments it would try, in
    /// order, and why each other one is left out (cooling, ejected, rate
    /// limited, context window, a probe held) or placed last (quality
    /// exclusion, weight 0). See `f3dx_router.Explanation`. Raises
    /// `InvalidRequest` where a call would (an unknown model names the
    /// groups there are).
    #[pyo3(signature = (body, *, tenant = None, headers = None))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
        tenant: Option<&Bound<'py, PyAny>>,
        headers: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (body, options) = self.call_input(py, body, tenant, headers)?;
        let native = self.native()?;
        let now = native.now();
        let explained = native
            .router()
            .explain(body, options, now)
            .map_err(|e| route_error(py, &e))?;
        to_py(py, &explained.to_json(now))
    }

    fn __repr__(&self) -> String {
        let native = self.current();
        router_repr(
            native.router().config(),
            HostLimits::default().default_max_body_bytes,
        )
    }
}

impl PyRouter {
    /// A call's request (as JSON) and options, from its Python arguments.
    fn call_input(
        &self,
        py: Python<'_>,
        body: &Bound<'_, PyAny>,
        tenant: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Value, CallOptions)> {
        let mut options = call_options(py, tenant)?;
        // Without `headers=` a call pays nothing for them.
        if headers.is_some_and(|h| !h.is_none()) {
            options.headers = crate::headers::from_argument(self.current().router(), headers)?
                .map_err(|m| invalid_request_error(py, m))?;
        }
        let body = to_json(body).map_err(|e| invalid_request(py, e))?;
        Ok((body, options))
    }

    /// Start a streamed call and run it to its commit point; a failure
    /// before it is the routing failure (for the API to raise, for the front
    /// door to answer).
    pub(crate) fn start_stream(
        &self,
        py: Python<'_>,
        body: Value,
        options: CallOptions,
    ) -> PyResult<Result<PyChatStream, RouteError>> {
        let watch = self.observer.start(py, &body)?;
        let native = self.native()?;
        let mut stream = native.start_stream(body, options).map_err(|e| {
            PyRuntimeError::new_err(format!("cannot start the router's runtime: {e}"))
        })?;
        let commit = match commit_blocking(py, &mut stream) {
            Ok(commit) => commit,
            // Ctrl-C before the commit point.
            Err(e) => return Err(self.observer.cancelled_by(py, watch, e)),
        };
        match commit {
            Ok(commit) => {
                let report = self.observer.stream_report(py, watch)?;
                Ok(Ok(PyChatStream::new(
                    stream,
                    commit.provider,
                    commit.attempts,
                    report,
                )))
            }
            Err(e) => {
                self.observer.after_call(py, watch, Err(&e))?;
                Ok(Err(e))
            }
        }
    }

    /// Route a whole call, without the GIL; a failure is the routing failure
    /// (for the API to raise, for the front door to answer).
    pub(crate) fn run_call(
        &self,
        py: Python<'_>,
        body: Value,
        options: CallOptions,
    ) -> PyResult<Result<Routed, RouteError>> {
        let watch = self.observer.start(py, &body)?;
        let native = self.native()?;
        // The whole routing call runs without the GIL. On the thread that
        // handles Python's signals it wakes every SIGNAL_CHECK to run their
        // handlers: Ctrl-C raises KeyboardInterrupt at once and abandons the
        // call, closing its connections, instead of waiting for it.
        let result = if signals::handled_here() {
            py.detach(|| {
                native.route_blocking_interruptible(body, options, signals::CHECK_EVERY, || {
                    Python::attach(|py| py.check_signals())
                })
            })
        } else {
            py.detach(|| native.route_blocking_with(body, options).map(Ok))
        };
        let result = match result.map_err(|e| {
            PyRuntimeError::new_err(format!("cannot start the router's runtime: {e}"))
        })? {
            Ok(result) => result,
            // Ctrl-C (or another signal handler's exception): the call was
            // abandoned, its connections closed.
            Err(e) => return Err(self.observer.cancelled_by(py, watch, e)),
        };
        self.observer.after_call(py, watch, result.as_ref())?;
        Ok(result)
    }

    /// Logging and tracing of its calls.
    pub(crate) fn observer(&self) -> &Arc<Observer> {
        &self.observer
    }

    /// This process's runtime and pools, rebuilt after a fork: the one
    /// place that notices one. For a call (it needs this process's lanes).
    pub(crate) fn native(&self) -> PyResult<Arc<NativeRouter>> {
        let pid = std::process::id();
        if let Some(native) = self.current_if(|lanes| lanes.owner == pid) {
            return Ok(native);
        }
        let mut guard = self.native.write().unwrap_or_else(PoisonError::into_inner);
        if guard.owner != pid {
            let fresh = Lanes::new(guard.native.router().clone())?;
            let stale = std::mem::replace(&mut *guard, fresh);
            // The parent's runtime threads do not exist in this process:
            // dropping the runtime would wait for them forever.
            std::mem::forget(stale);
        }
        Ok(Arc::clone(&guard.native))
    }

    /// The handle as it is, for what needs no lane: the config, the
    /// remembered state, the clock (a rebuild after a fork shares the
    /// router, so these read the same either way).
    /// The core router (a cheap clone: the front door reads its table).
    pub(crate) fn core(&self) -> f3dx_router_core::Router {
        self.current().router().clone()
    }

    fn current(&self) -> Arc<NativeRouter> {
        let guard = self.native.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&guard.native)
    }

    fn current_if(&self, usable: impl FnOnce(&Lanes) -> bool) -> Option<Arc<NativeRouter>> {
        let guard = self.native.read().unwrap_or_else(PoisonError::into_inner);
        usable(&guard).then(|| Arc::clone(&guard.native))
    }
}

/// The native router with the id of the process that built its runtime: a
/// forked child has none of the runtime's threads and builds its own.
struct Lanes {
    owner: u32,
    native: Arc<NativeRouter>,
}

impl Lanes {
    fn new(router: Router) -> PyResult<Lanes> {
        let native = NativeRouter::with_router(router).map_err(|e| {
            PyRuntimeError::new_err(format!("cannot start the router's runtime: {e}"))
        })?;
        Ok(Lanes {
            owner: std::process::id(),
            native: Arc::new(native),
        })
    }
}

/// A call's routing failure raised as the Python exception for it.
fn raised<T>(py: Python<'_>, result: PyResult<Result<T, RouteError>>) -> PyResult<T> {
    result?.map_err(|e| route_error(py, &e))
}

/// `route` refuses a streamed request with this.
const ROUTE_STREAM: &str = "route() returns a whole answer; for \"stream\": true use \
                            chat_completions(), which returns a ChatStream (with .provider and \
                            .attempts)";

/// `aroute` refuses a streamed request with this.
const AROUTE_STREAM: &str = "aroute() returns a whole answer; for \"stream\": true use \
                             achat_completions(), which returns an AsyncChatStream (with \
                             .provider and .attempts)";

/// A routed call as Python's `RouteResult`.
pub(crate) fn route_result(py: Python<'_>, routed: Routed) -> PyResult<PyRouteResult> {
    let attempts = routed
        .attempts
        .iter()
        .map(|a| Py::new(py, PyAttempt::from(a)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyRouteResult {
        response: to_py(py, &routed.response)?.unbind(),
        provider: routed.provider,
        attempts,
        latency_ms: millis(routed.latency),
        schema_valid: routed.schema_valid,
        skipped: skipped_list(py, &routed.skipped)?.unbind(),
    })
}

/// An `InvalidRequest` that nothing was sent for.
fn invalid_request_error(py: Python<'_>, message: String) -> PyErr {
    route_error(
        py,
        &RouteError::InvalidRequest {
            message,
            attempts: Vec::new(),
            skipped: Vec::new(),
        },
    )
}

/// The `otel=` argument: None (off), True or False.
fn otel_flag(py: Python<'_>, otel: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    match otel {
        None => Ok(false),
        Some(v) if v.is_none() => Ok(false),
        Some(v) => match v.cast::<pyo3::types::PyBool>() {
            Ok(b) => Ok(b.is_true()),
            Err(_) => Err(config_error(
                py,
                &f3dx_router_core::ConfigError {
                    field: "otel".into(),
                    message: "must be true or false".into(),
                },
            )),
        },
    }
}

/// The `InvalidRequest` of `route`/`aroute` for a streamed request.
fn whole_answers_only(py: Python<'_>, message: &str) -> PyErr {
    invalid_request_error(py, message.to_owned())
}

/// A call's `tenant=` argument: None or a string.
fn call_options(py: Python<'_>, tenant: Option<&Bound<'_, PyAny>>) -> PyResult<CallOptions> {
    let tenant = match tenant {
        None => String::new(),
        Some(t) if t.is_none() => String::new(),
        Some(t) => match t.cast::<pyo3::types::PyString>() {
            Ok(s) => s.to_str()?.to_owned(),
            Err(_) => {
                return Err(route_error(
                    py,
                    &RouteError::InvalidRequest {
                        message: "tenant must be a string or None".to_owned(),
                        attempts: Vec::new(),
                        skipped: Vec::new(),
                    },
                ))
            }
        },
    };
    quality::check_tenant(&tenant).map_err(|m| invalid_request_error(py, m))?;
    Ok(CallOptions {
        tenant,
        ..CallOptions::default()
    })
}

/// A config value that is not JSON-like is a config error too.
fn as_config_error(py: Python<'_>, field: &str, e: ConvertError) -> PyErr {
    conversion_error(py, e, field, |message| {
        config_error(
            py,
            &f3dx_router_core::ConfigError {
                field: field.into(),
                message,
            },
        )
    })
}

/// A request that is not JSON-like is an invalid request.
fn invalid_request(py: Python<'_>, e: ConvertError) -> PyErr {
    conversion_error(py, e, "$", |message| invalid_request_error(py, message))
}

/// The router's error for a failed conversion, made by `wrap` from a
/// message. What Python code raised during the conversion is kept: an
/// exception that is not an `Exception` (KeyboardInterrupt, SystemExit) or
/// a MemoryError propagates as it is; any other becomes the `__cause__` of
/// the router's error, whose message says where and what.
fn conversion_error(
    py: Python<'_>,
    e: ConvertError,
    root: &str,
    wrap: impl FnOnce(String) -> PyErr,
) -> PyErr {
    match e {
        ConvertError::Refused(refusal) => wrap(refusal.value(py).to_string()),
        ConvertError::Raised { path, error } => {
            if !error.is_instance_of::<PyException>(py) || error.is_instance_of::<PyMemoryError>(py)
            {
                return error;
            }
            let type_name = error
                .get_type(py)
                .name()
                .map_or_else(|_| "exception".to_owned(), |n| n.to_string());
            let at = path.replacen('$', root, 1);
            let wrapped = wrap(format!(
                "{at}: converting it raised {type_name}: {}",
                error.value(py)
            ));
            wrapped.set_cause(py, Some(error));
            wrapped
        }
    }
}

/// Whether a request asks to stream (the core checks the field's type).
fn streamed(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool) == Some(true)
}
