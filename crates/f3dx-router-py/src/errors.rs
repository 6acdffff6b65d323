//! Raising the package's exception hierarchy (defined in Python, in
//! `f3dx_router/_errors.py`) from Rust.

use f3dx_router_core::{Attempt, ConfigError, RouteError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyType};

use crate::trace::{skipped_list, PyAttempt};

const MODULE: &str = "f3dx_router._errors";

fn class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, MODULE, name)
}

/// A `ConfigError` (subclass of `RouterError` and `ValueError`).
pub fn config_error(py: Python<'_>, e: &ConfigError) -> PyErr {
    static CLS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    build(py, &CLS, "ConfigError", &e.to_string(), |kw| {
        kw.set_item("field", &e.field)
    })
}

/// The exception for a failed route.
pub fn route_error(py: Python<'_>, e: &RouteError) -> PyErr {
    static INVALID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static HARD: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static ALL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static INTERRUPTED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let attempts = || -> PyResult<Bound<'_, PyList>> {
        PyList::new(py, e.attempts().iter().map(PyAttempt::from))
    };
    let message = e.to_string();
    // Only a call that passed deployments over has a list to add.
    let skipped = |kw: &Bound<'_, PyDict>| -> PyResult<()> {
        if e.skipped().is_empty() {
            return Ok(());
        }
        kw.set_item("skipped", skipped_list(py, e.skipped())?)
    };
    match e {
        RouteError::InvalidRequest { .. } => {
            build(py, &INVALID, "InvalidRequest", &message, |kw| {
                skipped(kw)?;
                kw.set_item("attempts", attempts()?)
            })
        }
        RouteError::Hard {
            provider,
            status,
            body,
            ..
        } => build(py, &HARD, "HardFailure", &message, |kw| {
            kw.set_item("provider", provider)?;
            kw.set_item("status", status)?;
            kw.set_item("body", body)?;
            skipped(kw)?;
            kw.set_item("attempts", attempts()?)
        }),
        RouteError::AllFailed { .. } => build(py, &ALL, "AllProvidersFailed", &message, |kw| {
            skipped(kw)?;
            kw.set_item("attempts", attempts()?)
        }),
        RouteError::StreamInterrupted { provider, .. } => {
            build(py, &INTERRUPTED, "StreamInterrupted", &message, |kw| {
                kw.set_item("provider", provider)?;
                skipped(kw)?;
                kw.set_item("attempts", attempts()?)
            })
        }
    }
}

/// The `StreamInterrupted` of a reader whose stream was closed (`how`)
/// while it waited for the next chunk.
pub fn closed_while_read(
    py: Python<'_>,
    provider: &str,
    attempts: Vec<Attempt>,
    how: &str,
) -> PyErr {
    static INTERRUPTED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let message = format!(
        "the stream from provider {provider:?} was closed {how} while it was being read: the \
         answer so far is incomplete"
    );
    build(py, &INTERRUPTED, "StreamInterrupted", &message, |kw| {
        kw.set_item("provider", provider)?;
        kw.set_item(
            "attempts",
            PyList::new(py, attempts.iter().map(PyAttempt::from))?,
        )
    })
}

fn build(
    py: Python<'_>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    message: &str,
    fill: impl FnOnce(&Bound<'_, PyDict>) -> PyResult<()>,
) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let cls = class(py, cell, name)?;
        let kwargs = PyDict::new(py);
        fill(&kwargs)?;
        let exc = cls.call((message,), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    })();
    // If the hierarchy cannot be built (the package is broken), the error
    // that says why is the one to surface.
    made.unwrap_or_else(|e| e)
}
