//! What a routed call reports back: its attempts and its result.

use f3dx_router_core::{Attempt, Fault, Skipped};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// Every fault name the core gives.
const FAULTS: &[&str] = Fault::NAMES;

/// One upstream attempt of a call.
#[pyclass(frozen, name = "Attempt", module = "f3dx_router._native", get_all)]
pub struct PyAttempt {
    /// Provider name.
    pub provider: String,
    /// "success", "soft", "hard", "cancelled" (or "in_flight").
    pub outcome: &'static str,
    /// HTTP status, if a response head arrived.
    pub status: Option<u16>,
    /// Fault name ("timeout", "connection_refused", ...), if any.
    pub fault: Option<&'static str>,
    /// What went wrong, in words.
    pub detail: String,
    /// Start, in ms from the call's start.
    pub started_ms: f64,
    /// End, in ms from the call's start.
    pub ended_ms: Option<f64>,
    /// The model group it was for (None without `models`).
    pub group: Option<String>,
    /// The model sent (None without `models`, or when the caller's was
    /// passed through).
    pub model: Option<String>,
    /// The request's parameters it was sent without (`unsupported_params:
    /// "drop"`); most often none.
    pub dropped: Vec<String>,
}

/// The deployments a call passed over, as Python dicts (`SkippedDeployment`
/// in `_types.py`): `provider`, `group`, `model`, `reason`, `params`.
pub fn skipped_list<'py>(py: Python<'py>, skipped: &[Skipped]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for s in skipped {
        let d = PyDict::new(py);
        d.set_item("provider", &s.provider)?;
        d.set_item("group", &s.group)?;
        d.set_item("model", &s.model)?;
        d.set_item("reason", Skipped::REASON)?;
        d.set_item("params", &s.params)?;
        list.append(d)?;
    }
    Ok(list)
}

/// Milliseconds of a duration, for Python.
pub fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl From<&Attempt> for PyAttempt {
    fn from(a: &Attempt) -> Self {
        PyAttempt {
            provider: a.provider.clone(),
            outcome: a.outcome.as_str(),
            status: a.status,
            fault: a.fault.as_ref().map(|f| f.name()),
            detail: a.detail.clone(),
            started_ms: millis(a.started),
            ended_ms: a.ended.map(millis),
            group: a.group.clone(),
            model: a.model.clone(),
            dropped: a.dropped.clone(),
        }
    }
}

#[pymethods]
impl PyAttempt {
    /// Rebuild an attempt (for pickling; the router makes them).
    #[new]
    #[pyo3(signature = (provider, outcome, status, fault, detail, started_ms, ended_ms, group=None, model=None, dropped=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        provider: String,
        outcome: &str,
        status: Option<u16>,
        fault: Option<&str>,
        detail: String,
        started_ms: f64,
        ended_ms: Option<f64>,
        group: Option<String>,
        model: Option<String>,
        dropped: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let known = |name: &str, names: &[&'static str]| names.iter().copied().find(|n| *n == name);
        let outcome = known(
            outcome,
            &["in_flight", "success", "soft", "hard", "cancelled"],
        )
        .ok_or_else(|| PyValueError::new_err(format!("unknown outcome {outcome:?}")))?;
        let fault = match fault {
            None => None,
            Some(f) => Some(
                known(f, FAULTS)
                    .ok_or_else(|| PyValueError::new_err(format!("unknown fault {f:?}")))?,
            ),
        };
        Ok(PyAttempt {
            provider,
            outcome,
            status,
            fault,
            detail,
            started_ms,
            ended_ms,
            group,
            model,
            dropped: dropped.unwrap_or_default(),
        })
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let a = slf.get();
        let args = (
            &a.provider,
            a.outcome,
            a.status,
            a.fault,
            &a.detail,
            a.started_ms,
            a.ended_ms,
            &a.group,
            &a.model,
            &a.dropped,
        );
        Ok((slf.get_type().into_any(), args.into_pyobject(slf.py())?))
    }

    fn __repr__(&self) -> String {
        let mut s = format!(
            "Attempt(provider={:?}, outcome={:?}",
            self.provider, self.outcome
        );
        if let Some(g) = &self.group {
            s.push_str(&format!(", group={g:?}"));
        }
        if let Some(m) = &self.model {
            s.push_str(&format!(", model={m:?}"));
        }
        if let Some(st) = self.status {
            s.push_str(&format!(", status={st}"));
        }
        if let Some(f) = self.fault {
            s.push_str(&format!(", fault={f:?}"));
        }
        if !self.dropped.is_empty() {
            s.push_str(&format!(", dropped={:?}", self.dropped));
        }
        s.push_str(&format!(", started_ms={:.1}", self.started_ms));
        if let Some(e) = self.ended_ms {
            s.push_str(&format!(", ended_ms={e:.1}"));
        }
        s.push(')');
        s
    }
}

/// A successful call: the response and how it was obtained.
#[pyclass(frozen, name = "RouteResult", module = "f3dx_router._native", get_all)]
pub struct PyRouteResult {
    /// The OpenAI-shaped chat completion.
    pub response: Py<PyAny>,
    /// The winning provider.
    pub provider: String,
    /// Every attempt, in start order.
    pub attempts: Vec<Py<PyAttempt>>,
    /// From the call's start to its result, in ms.
    pub latency_ms: f64,
    /// Whether the answer matched the request's `response_format`; None
    /// when nothing was checked.
    pub schema_valid: Option<bool>,
    /// Deployments passed over without sending: they cannot carry the
    /// request's parameters (`unsupported_params: "error"`).
    pub skipped: Py<PyList>,
}

#[pymethods]
impl PyRouteResult {
    fn __repr__(&self) -> String {
        let valid = match self.schema_valid {
            None => "None",
            Some(true) => "True",
            Some(false) => "False",
        };
        format!(
            "RouteResult(provider={:?}, attempts={}, latency_ms={:.1}, schema_valid={valid})",
            self.provider,
            self.attempts.len(),
            self.latency_ms
        )
    }
}
