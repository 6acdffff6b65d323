//! The OpenAI-compatible front door for the Python transports: one
//! bytes-in, bytes-out entry, sync (`_native.serve`) and async
//! (`_native.aserve`). What is answered is the core's
//! (`f3dx_router_core::endpoint`), as on the Worker; the transports
//! (`f3dx_router._httpx2`, `f3dx_router.httpx_compat`) only carry it over
//! their HTTP library.
//!
//! The answer is `(status, headers, body)`: `body` is `bytes`, or, for a
//! stream from its commit point, an iterator (`FrontDoorStream`) or async
//! iterator (`AsyncFrontDoorStream`) of SSE bytes whose last item is
//! `data: [DONE]` or the interrupted event. The call waits without the GIL,
//! as every other call of the router does.

use std::sync::{Mutex, PoisonError};

use f3dx_router_core::endpoint::{self, Answer, ChatCall};
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::aio::{self, Framing, PyAsyncChatStream, Shape};
use crate::router::PyRouter;
use crate::stream::{PyChatStream, Step};

/// The call a request asks for, or the answer the door gives itself.
fn call_of(
    method: &str,
    path: &str,
    tenant_header: Option<&str>,
    tenant: Option<&str>,
    body: &[u8],
) -> Result<ChatCall, Answer> {
    endpoint::route(method, path)?;
    endpoint::parse_call(body, tenant_header, tenant.unwrap_or_default())
}

fn headers<'py>(py: Python<'py>, answer: &Answer) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, answer.headers.iter().map(|(n, v)| (*n, v.as_str())))
}

/// `(status, headers, body bytes)`.
pub fn whole<'py>(py: Python<'py>, answer: Answer) -> PyResult<Bound<'py, PyAny>> {
    let body = PyBytes::new(py, &answer.body);
    let tuple = PyTuple::new(
        py,
        [
            answer.status.into_pyobject(py)?.into_any(),
            headers(py, &answer)?.into_any(),
            body.into_any(),
        ],
    )?;
    Ok(tuple.into_any())
}

/// `(200, headers, AsyncFrontDoorStream)` for a committed async stream.
pub fn async_stream<'py>(
    py: Python<'py>,
    head: Answer,
    stream: Bound<'py, PyAsyncChatStream>,
) -> PyResult<Bound<'py, PyAny>> {
    let body = Bound::new(
        py,
        PyAsyncFrontDoorStream {
            stream: stream.unbind(),
        },
    )?;
    let tuple = PyTuple::new(
        py,
        [
            head.status.into_pyobject(py)?.into_any(),
            headers(py, &head)?.into_any(),
            body.into_any(),
        ],
    )?;
    Ok(tuple.into_any())
}

/// Answer one HTTP request: `method`, `path`, the `x-f3dx-tenant` header
/// (`tenant_header`), the transport's default `tenant`, the body. Returns
/// `(status, headers, body)`; raises only what the router's own calls raise
/// outside routing (Ctrl-C, a runtime that cannot start).
#[pyfunction]
#[pyo3(signature = (router, method, path, tenant_header, tenant, body))]
pub fn serve<'py>(
    py: Python<'py>,
    router: &Bound<'py, PyRouter>,
    method: &str,
    path: &str,
    tenant_header: Option<&str>,
    tenant: Option<&str>,
    body: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let call = match call_of(method, path, tenant_header, tenant, body) {
        Ok(call) => call,
        Err(answer) => return whole(py, answer),
    };
    let router = router.get();
    if !call.streamed {
        let answer = match router.run_call(py, call.body, call.options)? {
            Ok(routed) => endpoint::routed(&routed),
            Err(e) => endpoint::route_error(&e),
        };
        return whole(py, answer);
    }
    match router.start_stream(py, call.body, call.options)? {
        Err(e) => whole(py, endpoint::route_error(&e)),
        Ok(stream) => {
            let head = endpoint::stream_head(stream.committed_to(), &stream.attempts_now());
            let body = Bound::new(
                py,
                PyFrontDoorStream {
                    stream: Py::new(py, stream)?,
                    done: Mutex::new(false),
                },
            )?;
            let tuple = PyTuple::new(
                py,
                [
                    head.status.into_pyobject(py)?.into_any(),
                    headers(py, &head)?.into_any(),
                    body.into_any(),
                ],
            )?;
            Ok(tuple.into_any())
        }
    }
}

/// [`serve`] on the router's asyncio API: an awaitable of the same
/// `(status, headers, body)`, the body of a stream an async iterator.
#[pyfunction]
#[pyo3(signature = (router, method, path, tenant_header, tenant, body))]
pub fn aserve<'py>(
    py: Python<'py>,
    router: &Bound<'py, PyRouter>,
    method: &str,
    path: &str,
    tenant_header: Option<&str>,
    tenant: Option<&str>,
    body: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let call = match call_of(method, path, tenant_header, tenant, body) {
        Ok(call) => call,
        Err(answer) => return done_future(py, whole(py, answer)?),
    };
    let router = router.get();
    let native = router.native()?;
    let observer = router.observer();
    if call.streamed {
        aio::start_stream_as(py, &native, observer, call.body, call.options, true)
    } else {
        aio::start_call_as(
            py,
            &native,
            observer,
            call.body,
            call.options,
            Shape::Answer,
        )
    }
}

/// A future of the running loop, already holding `value`.
fn done_future<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    future.call_method1("set_result", (value,))?;
    Ok(future)
}

/// A committed stream's body as the front door sends it: SSE bytes, then
/// `data: [DONE]`, or the interrupted event. `close()` closes the upstream.
#[pyclass(frozen, name = "FrontDoorStream", module = "f3dx_router._native")]
pub struct PyFrontDoorStream {
    stream: Py<PyChatStream>,
    done: Mutex<bool>,
}

#[pymethods]
impl PyFrontDoorStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        if *self.done.lock().unwrap_or_else(PoisonError::into_inner) {
            return Err(PyStopIteration::new_err(()));
        }
        let mut out = Vec::new();
        let step = self.stream.get().next_step(py);
        let last = match step {
            Ok(Step::Chunk(chunk)) => {
                endpoint::write_event(&mut out, &chunk);
                false
            }
            Ok(Step::End) => {
                out.extend_from_slice(endpoint::DONE);
                true
            }
            Ok(Step::Failed(e)) => {
                out.extend_from_slice(&endpoint::interrupted_event(&e));
                true
            }
            Err(e) => {
                *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
                return Err(e);
            }
        };
        if last {
            *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        }
        Ok(PyBytes::new(py, &out))
    }

    /// Stop reading: the upstream connection is closed now.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.stream.get().close(py)
    }
}

/// [`PyFrontDoorStream`] for asyncio: `aclose()` closes the upstream.
#[pyclass(frozen, name = "AsyncFrontDoorStream", module = "f3dx_router._native")]
pub struct PyAsyncFrontDoorStream {
    stream: Py<PyAsyncChatStream>,
}

#[pymethods]
impl PyAsyncFrontDoorStream {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.stream.get().next(py, Framing::FrontDoor)
    }

    /// Stop reading: the upstream connection is closed now.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.stream.get().close(py)?;
        done_future(py, py.None().into_bound(py))
    }
}
