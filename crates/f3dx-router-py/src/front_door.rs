//! The OpenAI-compatible front door for the Python transports: one
//! bytes-in, bytes-out entry, sync (`_native.serve`) and async
//! (`_native.aserve`); `GET .../models` (OpenAI's model list) too. What is
//! answered is the core's
//! (`f3dx_router_core::endpoint`), as on the Worker; the transports
//! (`f3dx_router._httpx2`, `f3dx_router.httpx_compat`) only carry it over
//! their HTTP library.
//!
//! The answer is `(status, headers, body)`: `body` is `bytes`, or, for a
//! stream from its commit point, an `SseIterator` (async: an
//! `AsyncSseIterator`) of SSE bytes whose last item is `data: [DONE]` or
//! the interrupted event. The call waits without the GIL, as every other
//! call of the router does.

use f3dx_router_core::endpoint::{self, Answer, ChatCall};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::aio::{self, Shape};
use crate::headers;
use crate::router::PyRouter;
use crate::stream::PySseIter;

/// One HTTP request as the front door sees it, from Python's
/// `(method, path, tenant_header, tenant, body, headers)`: `tenant_header`
/// is its `x-f3dx-tenant`, `tenant` the transport's default, `body` bytes,
/// `headers` the request's `Headers` (read only when the router forwards
/// some: `forward_headers`). The
/// call it asks for, or the answer the door gives itself.
fn call_of(router: &PyRouter, request: &Bound<'_, PyTuple>) -> PyResult<Result<ChatCall, Answer>> {
    type Fields<'py> = (
        String,
        String,
        Option<String>,
        Option<String>,
        Bound<'py, PyBytes>,
        Option<Bound<'py, PyAny>>,
    );
    let (method, path, tenant_header, tenant, body, headers): Fields<'_> = request.extract()?;
    if let Some(models) = endpoint::models_request(&method, &path) {
        return Ok(Err(endpoint::models_answer(&router.core(), &models)));
    }
    let mut call = match endpoint::route(&method, &path).and_then(|()| {
        let tenant = tenant.as_deref().unwrap_or_default();
        endpoint::parse_call(body.as_bytes(), tenant_header.as_deref(), tenant)
    }) {
        Ok(call) => call,
        Err(answer) => return Ok(Err(answer)),
    };
    call.options.headers = headers::from_request(&router.core(), headers.as_ref())?;
    Ok(Ok(call))
}

/// `(status, headers, body)`, the body as Python has it.
pub fn answer<'py>(
    py: Python<'py>,
    head: &Answer,
    body: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let headers = PyList::new(py, head.headers.iter().map(|(n, v)| (*n, v.as_str())))?;
    let status = head.status.into_pyobject(py)?.into_any();
    Ok(PyTuple::new(py, [status, headers.into_any(), body])?.into_any())
}

/// `(status, headers, body bytes)`.
pub fn whole<'py>(py: Python<'py>, a: &Answer) -> PyResult<Bound<'py, PyAny>> {
    answer(py, a, PyBytes::new(py, &a.body).into_any())
}

/// Answer one HTTP request, `(method, path, tenant_header, tenant, body,
/// headers)`
/// (see [`call_of`]). Returns `(status, headers, body)`; raises only what
/// the router's own calls raise outside routing (Ctrl-C, a runtime that
/// cannot start).
#[pyfunction]
pub fn serve<'py>(
    py: Python<'py>,
    router: &Bound<'py, PyRouter>,
    request: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let router = router.get();
    match call_of(router, request)? {
        Err(a) => whole(py, &a),
        Ok(call) if call.streamed => match router.start_stream(py, call.body, call.options)? {
            Err(e) => whole(py, &endpoint::route_error(&e)),
            Ok(stream) => {
                let head = endpoint::stream_head(stream.committed_to(), &stream.attempts_now());
                let body = PySseIter::front_door(Py::new(py, stream)?);
                answer(py, &head, Bound::new(py, body)?.into_any())
            }
        },
        Ok(call) => match router.run_call(py, call.body, call.options)? {
            Ok(routed) => whole(py, &endpoint::routed(&routed)),
            Err(e) => whole(py, &endpoint::route_error(&e)),
        },
    }
}

/// [`serve`] on the router's asyncio API: an awaitable of the same
/// `(status, headers, body)`, the body of a stream an async iterator.
#[pyfunction]
pub fn aserve<'py>(
    py: Python<'py>,
    router: &Bound<'py, PyRouter>,
    request: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let router = router.get();
    let call = match call_of(router, request)? {
        Ok(call) => call,
        Err(a) => return ready(py, whole(py, &a)?),
    };
    let (native, observer) = (router.native()?, router.observer());
    if call.streamed {
        aio::start_stream(py, &native, observer, call.body, call.options, true)
    } else {
        aio::start_call(
            py,
            &native,
            observer,
            call.body,
            call.options,
            Shape::Answer,
        )
    }
}

/// A future of the running loop that holds `value` already.
fn ready<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    future.call_method1("set_result", (value,))?;
    Ok(future)
}
