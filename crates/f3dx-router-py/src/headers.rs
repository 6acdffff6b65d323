//! A call's caller headers from Python: the `headers=` argument of the
//! call methods (a mapping of names to values) and the transports'
//! request headers (an httpx or httpx2 `Headers`). Which of them go to a
//! provider, and the checks of their values, are the core's
//! (`f3dx_router_core::forward`); this only reads them, and only when
//! some group of the router forwards any.

use f3dx_router_core::{endpoint, CallerHeaders, Router};
use pyo3::prelude::*;
use pyo3::types::{PyMapping, PyString};

/// The `headers=` argument: `None`, or a mapping of str to str. Read only
/// when the router forwards some header; then only the names it forwards
/// are looked at. `Err(message)`: not a mapping, or a forwarded name's
/// value that is not a str (an `InvalidRequest` for the caller).
pub(crate) fn from_argument(
    router: &Router,
    headers: Option<&Bound<'_, PyAny>>,
) -> PyResult<Result<CallerHeaders, String>> {
    let Some(headers) = headers.filter(|h| !h.is_none()) else {
        return Ok(Ok(CallerHeaders::new()));
    };
    let Ok(mapping) = headers.cast::<PyMapping>() else {
        return Ok(Err(
            "headers must be a mapping of header names to values (str to str) or None".to_owned(),
        ));
    };
    let table = router.models();
    if !table.any_forward_headers() {
        return Ok(Ok(CallerHeaders::new()));
    }
    let mut out = CallerHeaders::new();
    for item in mapping.items()?.iter() {
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let Ok(name) = name.cast::<PyString>() else {
            continue;
        };
        let name = name.to_str()?;
        if !table.forwards_header(name) {
            continue;
        }
        match value.cast::<PyString>() {
            Ok(v) => out.push(name, v.to_str()?),
            Err(_) => {
                return Ok(Err(format!(
                    "headers: the value of the forwarded header {:?} must be a str",
                    name.to_ascii_lowercase()
                )))
            }
        }
    }
    Ok(Ok(out))
}

/// A transport's request headers (an httpx or httpx2 `Headers`, read by
/// its `multi_items()`, so a repeated name keeps each value), only when
/// the router forwards some header.
pub(crate) fn from_request(
    router: &Router,
    headers: Option<&Bound<'_, PyAny>>,
) -> PyResult<CallerHeaders> {
    let Some(headers) = headers.filter(|h| !h.is_none()) else {
        return Ok(CallerHeaders::new());
    };
    if !router.models().any_forward_headers() {
        return Ok(CallerHeaders::new());
    }
    let pairs: Vec<(String, String)> = headers.call_method0("multi_items")?.extract()?;
    Ok(endpoint::caller_headers(router, pairs))
}
