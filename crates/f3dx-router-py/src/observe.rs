//! Logging and tracing of a router's calls: the glue between the calls and
//! `f3dx_router/_log.py` (the `f3dx_router` logger) and, for a router built
//! with `otel=True`, `f3dx_router/_otel.py` (one OpenTelemetry span per
//! call).
//!
//! A call path does two things:
//!
//! ```text
//! let watch = observer.start(py, &body)?;          // before the call, in the caller's context
//! // ... the call runs (without the GIL) ...
//! observer.after_call(py, watch, result.as_ref())?; // with the GIL, once it is done
//! ```
//!
//! and a stream hands its watch to a [`StreamReport`] kept by its
//! `ChatStream`, which reports at the stream's end (or close). A call
//! abandoned before its answer (Ctrl-C in a sync call, an async call's task
//! cancelled) is reported by [`Observer::cancelled`] instead.
//!
//! What a call costs when nothing listens (logging not configured, `otel`
//! off): `logger.isEnabledFor(DEBUG)` at its start, read the way that
//! method reads it (the logger's `disabled`, then the answer the logging
//! module caches per level, two dictionary lookups without entering the
//! interpreter; the method itself only when nothing is cached yet), and one
//! atomic load at its end ([`Router::has_health_events`]). Nothing is
//! allocated; the model, the wall clock and the tracing context are read
//! only when a record or a span will be made.
//!
//! A logging handler or span processor that raises never breaks a call: its
//! exception goes to `sys.unraisablehook` (only one that is not an
//! `Exception`, such as `KeyboardInterrupt`, propagates).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use f3dx_router_core::{Attempt, Chunk, HealthEvent, ProviderKind, RouteError, Routed, Router};
use pyo3::exceptions::PyException;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};
use serde_json::Value;

use crate::trace::millis;

/// `logging.DEBUG`.
const DEBUG: i32 = 10;

/// A router's link to the `f3dx_router` logger and, with `otel=True`, to
/// OpenTelemetry. Shared by its calls and streams.
pub struct Observer {
    router: Router,
    /// `_log.logger.isEnabledFor`.
    is_enabled_for: Py<PyAny>,
    /// `_log.logger.__dict__`, where that method finds `disabled` and its
    /// per-level `_cache`; `None` when the logger's class has its own
    /// `isEnabledFor` (then it is always called).
    logger_attrs: Option<Py<PyDict>>,
    /// `_log.log_call`.
    log_call: Py<PyAny>,
    /// `_log.log_transitions`.
    log_transitions: Py<PyAny>,
    otel: Option<Otel>,
}

/// `_otel.capture` and `_otel.record_call`.
struct Otel {
    capture: Py<PyAny>,
    record_call: Py<PyAny>,
}

/// What [`Observer::start`] noted about a call, for [`Observer::after_call`].
/// Empty (and free) when the call will not be reported.
#[derive(Default)]
pub struct CallWatch(Option<Box<Watched>>);

impl CallWatch {
    /// Whether the call will be logged or traced when it ends.
    pub fn is_watched(&self) -> bool {
        self.0.is_some()
    }
}

struct Watched {
    /// A DEBUG record will be written.
    log: bool,
    /// The model the request asked for.
    model: Option<String>,
    stream: bool,
    started: std::time::Instant,
    /// With `otel=True`.
    trace: Option<Trace>,
}

struct Trace {
    /// Wall clock at the call's start, in ns since the Unix epoch.
    start_ns: u64,
    /// The context current at the start: the span's parent.
    parent: Option<Py<PyAny>>,
    /// A stream's response fields, gathered from its chunks.
    summary: Summary,
}

/// The response fields a span carries.
#[derive(Default)]
struct Summary {
    id: Option<String>,
    model: Option<String>,
    finish_reasons: Vec<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl Summary {
    fn of_response(response: &Value) -> Summary {
        let mut s = Summary::default();
        s.note(response);
        s
    }

    /// Take what a response (or a stream's chunk) says.
    fn note(&mut self, v: &Value) {
        let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        if self.id.is_none() {
            self.id = text("id");
        }
        if self.model.is_none() {
            self.model = text("model");
        }
        if let Some(choices) = v.get("choices").and_then(Value::as_array) {
            let reasons = choices
                .iter()
                .filter_map(|c| c.get("finish_reason").and_then(Value::as_str));
            self.finish_reasons.extend(reasons.map(str::to_owned));
        }
        if let Some(usage) = v.get("usage").filter(|u| u.is_object()) {
            let tokens = |key: &str| usage.get(key).and_then(Value::as_u64);
            self.input_tokens = tokens("prompt_tokens").or(self.input_tokens);
            self.output_tokens = tokens("completion_tokens").or(self.output_tokens);
        }
    }
}

/// How a call ended, as reported.
#[derive(Clone, Copy)]
enum Finished<'a> {
    Done(Result<&'a Routed, &'a RouteError>),
    /// A stream its reader closed (or dropped) before its end.
    Closed {
        provider: &'a str,
        attempts: &'a [Attempt],
    },
    /// Abandoned before its answer by the exception `by` (its class name):
    /// its attempts went with it.
    Cancelled {
        by: &'a str,
    },
}

impl Observer {
    /// The observer of `router`'s calls. Imports `f3dx_router._log` (and so
    /// `logging`, and gives the logger its `NullHandler`) and, with `otel`,
    /// `f3dx_router._otel`, whose import raises a `ConfigError` when
    /// OpenTelemetry is not installed.
    pub fn new(py: Python<'_>, router: &Router, otel: bool) -> PyResult<Observer> {
        let log = PyModule::import(py, "f3dx_router._log")?;
        let logger = log.getattr("logger")?;
        let is_enabled_for = logger.getattr("isEnabledFor")?.unbind();
        // Logger.isEnabledFor's own fast path can be read from its
        // attributes only when it is that method.
        let stock = PyModule::import(py, "logging")?
            .getattr("Logger")?
            .getattr("isEnabledFor")?;
        let own = logger.get_type().getattr("isEnabledFor")?;
        let logger_attrs = if own.is(&stock) {
            logger.getattr("__dict__")?.cast_into::<PyDict>().ok()
        } else {
            None
        }
        .map(Bound::unbind);
        let otel = if otel {
            let m = PyModule::import(py, "f3dx_router._otel")?;
            Some(Otel {
                capture: m.getattr("capture")?.unbind(),
                record_call: m.getattr("record_call")?.unbind(),
            })
        } else {
            None
        };
        Ok(Observer {
            router: router.clone(),
            is_enabled_for,
            logger_attrs,
            log_call: log.getattr("log_call")?.unbind(),
            log_transitions: log.getattr("log_transitions")?.unbind(),
            otel,
        })
    }

    /// A call of `body` is about to start: note what its report will need.
    /// Call it in the caller's context (with `otel=True` the context
    /// current now is the span's parent) and before the body is sent.
    pub fn start(&self, py: Python<'_>, body: &Value) -> PyResult<CallWatch> {
        let log = self.debug_enabled(py)?;
        if !log && self.otel.is_none() {
            return Ok(CallWatch(None));
        }
        let trace = match &self.otel {
            None => None,
            Some(otel) => {
                let start_ns = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                let parent = guard(py, &otel.capture, otel.capture.bind(py).call0())?;
                Some(Trace {
                    start_ns,
                    parent: parent.map(Bound::unbind),
                    summary: Summary::default(),
                })
            }
        };
        Ok(CallWatch(Some(Box::new(Watched {
            log,
            model: body.get("model").and_then(Value::as_str).map(str::to_owned),
            stream: body.get("stream").and_then(Value::as_bool) == Some(true),
            started: std::time::Instant::now(),
            trace,
        }))))
    }

    /// A call is done: log and trace it as the watch says, then log the
    /// health transitions that wait (whoever's call caused them). With the
    /// GIL; `result` is the call's, before it is raised or returned.
    pub fn after_call(
        &self,
        py: Python<'_>,
        watch: CallWatch,
        result: Result<&Routed, &RouteError>,
    ) -> PyResult<()> {
        if let Some(watched) = watch.0 {
            self.report(py, *watched, Finished::Done(result))?;
        }
        self.log_health(py)
    }

    /// A call was abandoned before its answer (before a stream's commit
    /// point) by an exception of class `by`: `KeyboardInterrupt` in a sync
    /// call, `CancelledError` when an async call's task is cancelled.
    /// Reported with that error and without attempts (they were dropped
    /// with the call).
    pub fn cancelled(&self, py: Python<'_>, watch: CallWatch, by: &str) -> PyResult<()> {
        if let Some(watched) = watch.0 {
            self.report(py, *watched, Finished::Cancelled { by })?;
        }
        self.log_health(py)
    }

    /// [`Observer::cancelled`] by the exception `e`, which then goes on.
    pub fn cancelled_by(&self, py: Python<'_>, watch: CallWatch, e: PyErr) -> PyErr {
        let by = if watch.is_watched() {
            e.get_type(py)
                .name()
                .map_or_else(|_| "BaseException".to_owned(), |n| n.to_string())
        } else {
            String::new()
        };
        match self.cancelled(py, watch, &by) {
            Ok(()) => e,
            // A hook that raised a non-Exception (a second Ctrl-C): that one.
            Err(second) => second,
        }
    }

    /// A streamed call reached its commit point: its report, kept by its
    /// `ChatStream` until the stream ends. Logs the health transitions that
    /// wait (those of attempts that failed before the commit point) now,
    /// not at the stream's end.
    pub fn stream_report(
        self: &Arc<Self>,
        py: Python<'_>,
        watch: CallWatch,
    ) -> PyResult<StreamReport> {
        let chunks = watch.0.as_ref().is_some_and(|w| w.trace.is_some());
        self.log_health(py)?;
        Ok(StreamReport {
            observer: Arc::clone(self),
            watch: Mutex::new(Some(watch)),
            chunks,
        })
    }

    /// `logger.isEnabledFor(DEBUG)`, as that method finds it: `False` if the
    /// logger is `disabled`, else the answer cached for the level (the
    /// logging module clears the cache whenever a level changes, in place),
    /// else the method's (which fills the cache).
    fn debug_enabled(&self, py: Python<'_>) -> PyResult<bool> {
        if let Some(attrs) = &self.logger_attrs {
            let attrs = attrs.bind(py);
            let disabled = attrs.get_item(intern!(py, "disabled"))?;
            let cache = attrs.get_item(intern!(py, "_cache"))?;
            if let (Some(disabled), Some(cache)) = (disabled, cache) {
                if disabled.is_truthy()? {
                    return Ok(false);
                }
                if let Ok(cache) = cache.cast::<PyDict>() {
                    if let Some(enabled) = cache.get_item(DEBUG)? {
                        return enabled.is_truthy();
                    }
                }
            }
        }
        let enabled = self.is_enabled_for.bind(py).call1((DEBUG,));
        let enabled = guard(
            py,
            &self.is_enabled_for,
            enabled.and_then(|v| v.is_truthy()),
        )?;
        Ok(enabled.unwrap_or(false))
    }

    fn report(&self, py: Python<'_>, w: Watched, finished: Finished<'_>) -> PyResult<()> {
        let elapsed = w.started.elapsed();
        let (attempts, named): (&[Attempt], Option<&str>) = match finished {
            Finished::Done(Ok(r)) => (&r.attempts, Some(&r.provider)),
            Finished::Done(Err(e)) => {
                let named = match e {
                    RouteError::Hard { provider, .. }
                    | RouteError::StreamInterrupted { provider, .. } => Some(provider.as_str()),
                    RouteError::InvalidRequest { .. } | RouteError::AllFailed { .. } => None,
                };
                (e.attempts(), named)
            }
            Finished::Closed { provider, attempts } => (attempts, Some(provider)),
            Finished::Cancelled { .. } => (&[], None),
        };
        let (outcome, error) = match finished {
            Finished::Done(Ok(_)) => ("success", None),
            Finished::Done(Err(e)) => (e.kind(), Some(error_class(e))),
            Finished::Closed { .. } => ("closed", None),
            Finished::Cancelled { by } => ("cancelled", Some(by)),
        };
        if w.log {
            let latency = match finished {
                Finished::Done(Ok(r)) => r.latency,
                _ => elapsed,
            };
            let rows: Vec<_> = attempts
                .iter()
                .map(|a| {
                    (
                        a.provider.as_str(),
                        a.outcome.as_str(),
                        a.status,
                        a.fault.as_ref().map(|f| f.name()),
                        a.detail.as_str(),
                        millis(a.started),
                        a.ended.map(millis),
                        a.group.as_deref(),
                        a.model.as_deref(),
                    )
                })
                .collect();
            // What went without parameters, or was passed over for them:
            // one more record (None, the common case, adds none).
            let skipped = match finished {
                Finished::Done(Ok(r)) => &r.skipped[..],
                Finished::Done(Err(e)) => e.skipped(),
                _ => &[],
            };
            let dropped: Vec<_> = attempts
                .iter()
                .filter(|a| !a.dropped.is_empty())
                .map(|a| (a.provider.as_str(), a.group.as_deref(), &a.dropped))
                .collect();
            let params = (!dropped.is_empty() || !skipped.is_empty()).then(|| {
                let skipped: Vec<_> = skipped
                    .iter()
                    .map(|s| (s.provider.as_str(), s.group.as_deref(), &s.params))
                    .collect();
                (dropped, skipped)
            });
            let args = (
                w.model.as_deref(),
                w.stream,
                named,
                outcome,
                error,
                millis(latency),
                rows,
                params,
            );
            guard(py, &self.log_call, self.log_call.bind(py).call1(args))?;
        }
        if let (Some(otel), Some(trace)) = (&self.otel, w.trace) {
            let end_ns = trace
                .start_ns
                .saturating_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
            // The span's provider: the winner's, or the one the error names,
            // else the last attempt's.
            let provider = named
                .or_else(|| attempts.last().map(|a| a.provider.as_str()))
                .map(|name| {
                    // Its group and model: the last attempt to it (the
                    // winner's, or the one the error names).
                    let last = attempts.iter().rev().find(|a| a.provider == name);
                    (
                        name,
                        self.kind_of(name),
                        last.and_then(|a| a.group.as_deref()),
                        last.and_then(|a| a.model.as_deref()),
                    )
                });
            let summary = match finished {
                Finished::Done(Ok(r)) if !r.response.is_null() => Summary::of_response(&r.response),
                _ => trace.summary,
            };
            let response = match finished {
                Finished::Done(Ok(_)) | Finished::Closed { .. } => Some((
                    summary.id,
                    summary.model,
                    summary.finish_reasons,
                    summary.input_tokens,
                    summary.output_tokens,
                )),
                Finished::Done(Err(_)) | Finished::Cancelled { .. } => None,
            };
            let error = match finished {
                Finished::Done(Err(e)) => Some((error_class(e), e.to_string())),
                Finished::Cancelled { by } => Some((
                    by,
                    format!("the call was cancelled by {by} before its answer"),
                )),
                _ => None,
            };
            let rows: Vec<_> = attempts
                .iter()
                .map(|a| {
                    (
                        a.provider.as_str(),
                        self.kind_of(&a.provider),
                        a.outcome.as_str(),
                        a.status,
                        a.fault.as_ref().map(|f| f.name()),
                        millis(a.started),
                        a.ended.map(millis),
                        a.group.as_deref(),
                        a.model.as_deref(),
                    )
                })
                .collect();
            let args = (
                trace.parent,
                w.model.as_deref(),
                w.stream,
                trace.start_ns,
                end_ns,
                provider,
                response,
                error,
                match finished {
                    Finished::Done(_) => "done",
                    Finished::Closed { .. } => "closed",
                    Finished::Cancelled { .. } => "cancelled",
                },
                rows,
            );
            guard(py, &otel.record_call, otel.record_call.bind(py).call1(args))?;
        }
        Ok(())
    }

    /// The provider's kind as `gen_ai.provider.name`: `openai`, `anthropic`,
    /// or OpenTelemetry's `azure.ai.openai` for Azure OpenAI.
    fn kind_of(&self, provider: &str) -> &'static str {
        self.router
            .config()
            .providers
            .iter()
            .find(|p| p.name == provider)
            .map_or("openai", |p| match p.kind {
                ProviderKind::Azure => "azure.ai.openai",
                kind => kind.as_str(),
            })
    }

    /// Log the health transitions that wait, if any (one atomic load when
    /// none do). Taken even when nothing logs them, so the check stays one
    /// load.
    pub fn log_health(&self, py: Python<'_>) -> PyResult<()> {
        if !self.router.has_health_events() {
            return Ok(());
        }
        let taken = self.router.take_health_events();
        if taken.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = taken.events.iter().map(transition_row).collect();
        let logged = self.log_transitions.bind(py).call1((rows, taken.dropped));
        guard(py, &self.log_transitions, logged)?;
        Ok(())
    }
}

/// `(provider, transition, reason, reason in words, for how long in s,
/// tenant, model, model sent)`; tenant and model only for a quality
/// transition, the model sent when the routing table names it (the state
/// is that deployment's).
type TransitionRow<'a> = (
    &'a str,
    &'static str,
    Option<&'static str>,
    String,
    Option<f64>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

fn transition_row(e: &HealthEvent) -> TransitionRow<'_> {
    (
        e.provider.as_str(),
        e.kind.name(),
        e.kind.reason(),
        e.kind.reason_words(),
        e.lasts().map(|d| d.as_secs_f64()),
        e.scope.as_ref().map(|s| s.tenant.as_str()),
        e.scope.as_ref().map(|s| s.model.as_str()),
        e.model.as_deref(),
    )
}

/// The Python exception class a route error raises as.
fn error_class(e: &RouteError) -> &'static str {
    match e {
        RouteError::InvalidRequest { .. } => "InvalidRequest",
        RouteError::Hard { .. } => "HardFailure",
        RouteError::AllFailed { .. } => "AllProvidersFailed",
        RouteError::StreamInterrupted { .. } => "StreamInterrupted",
    }
}

/// A hook's result: an `Exception` it raised goes to `sys.unraisablehook`
/// (a broken handler must not break the call) and gives `None`; anything
/// else (`KeyboardInterrupt`) propagates.
fn guard<'py, T>(py: Python<'py>, hook: &Py<PyAny>, result: PyResult<T>) -> PyResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_instance_of::<PyException>(py) => {
            e.write_unraisable(py, Some(hook.bind(py)));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A streamed call's report, kept by its `ChatStream`: it notes the chunks'
/// response fields (only when tracing) and reports once, at the stream's
/// end, at its close before the end, or when it is dropped unclosed.
pub struct StreamReport {
    observer: Arc<Observer>,
    /// `None` once reported.
    watch: Mutex<Option<CallWatch>>,
    /// The watch traces: chunks carry the span's response fields.
    chunks: bool,
}

impl StreamReport {
    /// A chunk handed to the reader.
    pub fn chunk(&self, chunk: &Chunk) {
        if !self.chunks {
            return;
        }
        let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(trace) = watch
            .as_mut()
            .and_then(|w| w.0.as_mut())
            .and_then(|w| w.trace.as_mut())
        {
            // Decoded only here, for a trace: a stream passed on needs no value.
            trace.summary.note(&chunk.value());
        }
    }

    /// The stream ended (or failed after its commit point).
    pub fn end(&self, py: Python<'_>, result: Result<&Routed, &RouteError>) -> PyResult<()> {
        match self.take() {
            Some(watch) => self.observer.after_call(py, watch, result),
            None => Ok(()),
        }
    }

    /// The reader closed the stream; reported as `closed` unless it had
    /// ended. `attempts`: as of the commit point.
    pub fn close(
        &self,
        py: Python<'_>,
        provider: &str,
        attempts: impl FnOnce() -> Vec<Attempt>,
    ) -> PyResult<()> {
        let Some(watch) = self.take() else {
            return Ok(());
        };
        if let Some(watched) = watch.0 {
            let attempts = attempts();
            let finished = Finished::Closed {
                provider,
                attempts: &attempts,
            };
            self.observer.report(py, *watched, finished)?;
        }
        self.observer.log_health(py)
    }

    /// The stream is being dropped: report it as closed if it was not yet
    /// (nothing is attached for a stream nobody watches; nothing is done
    /// while the interpreter shuts down).
    pub fn dropped(&self, provider: &str, attempts: impl FnOnce() -> Vec<Attempt>) {
        let active = self
            .watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|w| w.0.is_some());
        if !active {
            return;
        }
        let _ = Python::try_attach(|py| {
            if let Err(e) = self.close(py, provider, attempts) {
                e.write_unraisable(py, None);
            }
        });
    }

    fn take(&self) -> Option<CallWatch> {
        self.watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}
