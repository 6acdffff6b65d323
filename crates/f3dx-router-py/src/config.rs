//! The core's config checks for Python: its key lists (the TypedDicts and
//! `_config.py` must name the same keys) and every problem of a config at
//! once (`python -m f3dx_router check`, and `Router()`'s ConfigError).

use std::cell::RefCell;

use f3dx_router_core::config_schema::{
    DEPLOYMENT_KEYS, GROUP_KEYS, HEALTH_KEYS, HOST_KEYS, PROVIDER_KEYS, QUALITY_KEYS, ROUTER_KEYS,
};
use f3dx_router_core::{ConfigError, ConfigProblem, HostLimits, RouterConfig};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use serde_json::Value;

use crate::convert::{to_json, to_py};
use crate::errors::config_error;
use crate::repr::resolved;

/// The key of a placeholder key under `env=False`: never sent anywhere
/// (`check` builds no router from it).
const PLACEHOLDER_KEY: &str = "placeholder-for-check";

/// `{"router": (...), "provider": (...), "group": (...), "deployment": (...),
/// "health": (...), "quality": (...), "host": (...)}`: the core's config
/// keys, in its order.
#[pyfunction]
pub fn _config_keys(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    for (name, keys) in [
        ("router", ROUTER_KEYS),
        ("provider", PROVIDER_KEYS),
        ("group", GROUP_KEYS),
        ("deployment", DEPLOYMENT_KEYS),
        ("health", HEALTH_KEYS),
        ("quality", QUALITY_KEYS),
        ("host", HOST_KEYS),
    ] {
        out.set_item(name, PyTuple::new(py, keys)?)?;
    }
    Ok(out)
}

/// Every problem of `config` (a mapping, without the host's own keys):
/// `(errors, warnings, env_names, resolved)`, each problem a `(field, message,
/// provider)` tuple (`provider`: the name of the provider it is in, when
/// that name is valid), and `env_names` the `api_key_env` variables the
/// config reads. With `env=False` no variable is read: each is taken as
/// set (`check --no-env`). `resolved`: every setting with its default
/// filled in (None when there is an error).
#[pyfunction]
#[pyo3(signature = (config, *, env = true))]
pub fn _check_config<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    env: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let value = to_json(config).map_err(|_| {
        config_error(
            py,
            &ConfigError {
                field: "config".into(),
                message: "holds a value that is not a string, number, boolean, null, list or \
                          mapping"
                    .into(),
            },
        )
    })?;
    let names = RefCell::new(Vec::<String>::new());
    let read = |name: &str| {
        names.borrow_mut().push(name.to_owned());
        if env {
            std::env::var(name).ok()
        } else {
            Some(PLACEHOLDER_KEY.to_owned())
        }
    };
    let report = RouterConfig::check_json(&value, &read, HostLimits::default());
    let errors = problems(py, &report.errors)?;
    let warnings = problems(py, &report.warnings)?;
    let resolved = match &report.config {
        Some(config) => to_py(py, &resolved(config))?,
        None => py.None().into_bound(py),
    };
    let mut names = names.into_inner();
    names.dedup();
    (errors, warnings, PyList::new(py, names)?, resolved).into_pyobject(py)
}

fn problems<'py>(py: Python<'py>, found: &[ConfigProblem]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(
        py,
        found.iter().map(|p| {
            (
                p.error.field.as_str(),
                p.error.message.as_str(),
                p.provider.as_deref(),
            )
        }),
    )
}

/// Log the core's warnings about a valid config (settings that have no
/// effect, another tool's key reference) to the `f3dx_router` logger, as
/// `check` prints them: silent unless the application configures logging.
pub fn log_warnings(py: Python<'_>, value: &Value) -> PyResult<()> {
    let warnings = RouterConfig::config_warnings(value);
    if warnings.is_empty() {
        return Ok(());
    }
    let logger = py
        .import("logging")?
        .call_method1("getLogger", ("f3dx_router",))?;
    for w in &warnings {
        let provider = w
            .provider
            .as_deref()
            .map(|p| format!(" (provider {p})"))
            .unwrap_or_default();
        logger.call_method1(
            "warning",
            (
                "router config: %s: %s%s",
                &w.error.field,
                &w.error.message,
                provider,
            ),
        )?;
    }
    Ok(())
}

/// The key lists and the check, on the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_config_keys, m)?)?;
    m.add_function(wrap_pyfunction!(_check_config, m)?)?;
    Ok(())
}
