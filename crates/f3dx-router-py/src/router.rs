//! `f3dx_router.Router`: the native router behind a Python class.

use f3dx_router_core::{HostLimits, Policy, RouteError, Routed, RouterConfig};
use f3dx_router_native::NativeRouter;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{Map, Value};

use crate::convert::{to_json, to_py};
use crate::errors::{config_error, route_error};
use crate::trace::{millis, PyAttempt, PyRouteResult};

/// Routes OpenAI chat-completions requests over several providers.
#[pyclass(frozen, name = "Router", module = "f3dx_router._native")]
pub struct PyRouter {
    inner: NativeRouter,
}

#[pymethods]
impl PyRouter {
    #[new]
    #[pyo3(signature = (providers, *, policy = "sequential", hedge_k = None, hedge_delay_ms = 0))]
    fn new(
        py: Python<'_>,
        providers: &Bound<'_, PyAny>,
        policy: &str,
        hedge_k: Option<u64>,
        hedge_delay_ms: u64,
    ) -> PyResult<Self> {
        let mut config = Map::new();
        config.insert(
            "providers".into(),
            to_json(providers).map_err(|e| as_config_error(py, e))?,
        );
        config.insert("policy".into(), Value::from(policy));
        if let Some(k) = hedge_k {
            config.insert("hedge_k".into(), Value::from(k));
        }
        config.insert("hedge_delay_ms".into(), Value::from(hedge_delay_ms));
        let env = |name: &str| std::env::var(name).ok();
        let config = RouterConfig::from_json(&Value::Object(config), &env, HostLimits::default())
            .map_err(|e| config_error(py, &e))?;
        let inner = NativeRouter::new(config).map_err(|e| {
            PyRuntimeError::new_err(format!("cannot start the router's runtime: {e}"))
        })?;
        Ok(PyRouter { inner })
    }

    /// Route one request; return the OpenAI-shaped response.
    fn chat_completions<'py>(
        &self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let routed = self.run(py, body)?;
        to_py(py, &routed.response)
    }

    /// Route one request; return the response with its attempts.
    fn route(&self, py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<PyRouteResult> {
        let routed = self.run(py, body)?;
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
        })
    }

    /// Provider names, in priority order.
    #[getter]
    fn providers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.inner
                .router()
                .config()
                .providers
                .iter()
                .map(|p| p.name.as_str()),
        )
    }

    /// The routing policy: "sequential" or "hedged".
    #[getter]
    fn policy(&self) -> &'static str {
        match self.inner.router().config().policy {
            Policy::Sequential => "sequential",
            Policy::Hedged { .. } => "hedged",
        }
    }

    /// Seconds until each cooling provider may be called again.
    fn cooldowns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let router = self.inner.router();
        let now = f3dx_router_core::Executor::now(self.inner.executor());
        let out = PyDict::new(py);
        for (p, until) in router.config().providers.iter().zip(router.cooldowns(now)) {
            if let Some(t) = until {
                out.set_item(&p.name, (t - now).as_secs_f64())?;
            }
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        // Names, kinds and URLs only: never keys or headers.
        let config = self.inner.router().config();
        let providers: Vec<String> = config
            .providers
            .iter()
            .map(|p| format!("{:?} ({}, {})", p.name, p.kind.as_str(), p.base_url))
            .collect();
        let policy = match config.policy {
            Policy::Sequential => "policy='sequential'".to_owned(),
            Policy::Hedged { k, delay } => format!(
                "policy='hedged', hedge_k={k}, hedge_delay_ms={}",
                delay.map_or(0, |d| d.as_millis())
            ),
        };
        format!("Router(providers=[{}], {policy})", providers.join(", "))
    }
}

impl PyRouter {
    fn run(&self, py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<Routed> {
        let body = to_json(body)?;
        // The whole routing call runs without the GIL.
        let result: Result<Routed, RouteError> = py.detach(|| self.inner.route_blocking(body));
        result.map_err(|e| route_error(py, &e))
    }
}

/// A providers list that is not JSON-like is a config error too.
fn as_config_error(py: Python<'_>, e: PyErr) -> PyErr {
    let message = e.value(py).to_string();
    config_error(
        py,
        &f3dx_router_core::ConfigError {
            field: "providers".into(),
            message,
        },
    )
}
