//! `ChatStream`: a streamed answer, as a Python iterator of chunk dicts.

use std::sync::{Mutex, PoisonError};

use f3dx_router_core::endpoint;
use f3dx_router_core::{commit_of, Attempt, Chunk, Commit, Output, RouteError};
use f3dx_router_native::{NativeStream, StreamCloser};
use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::convert::chunk_to_py;
use crate::errors::{closed_while_read, route_error};
use crate::observe::StreamReport;
use crate::signals;
use crate::trace::PyAttempt;

/// Wait for the stream's next output without the GIL, answering Ctrl-C on
/// the main thread (which closes the stream).
pub fn next_output(py: Python<'_>, stream: &mut NativeStream) -> PyResult<Option<Output>> {
    // A chunk of a read already made needs no wait: no GIL hand-off.
    if let Some(output) = stream.try_next() {
        return Ok(output);
    }
    if signals::handled_here() {
        py.detach(|| {
            stream.next_blocking_interruptible(signals::CHECK_EVERY, || {
                Python::attach(|py| py.check_signals())
            })
        })
    } else {
        Ok(py.detach(|| stream.next_blocking()))
    }
}

/// Wait for a streamed call's commit point (or its failure before it),
/// without the GIL; a Python error is Ctrl-C's.
pub fn commit_blocking(
    py: Python<'_>,
    stream: &mut NativeStream,
) -> PyResult<Result<Commit, RouteError>> {
    Ok(commit_of(next_output(py, stream)?))
}

/// A streamed chat completion, from its commit point on: iterate it for
/// `chat.completion.chunk` dicts. A failure after the first output raises
/// `StreamInterrupted` from the iterator. Close it (or leave a `with`
/// block) to stop early: the upstream connection is closed at once.
#[pyclass(frozen, name = "ChatStream", module = "f3dx_router._native")]
pub struct PyChatStream {
    stream: Mutex<NativeStream>,
    /// Closes it while another thread holds `stream`, blocked reading.
    closer: StreamCloser,
    provider: String,
    attempts: Mutex<Vec<Attempt>>,
    /// Logs and traces the call when it ends.
    report: StreamReport,
}

impl PyChatStream {
    pub fn new(
        stream: NativeStream,
        provider: String,
        attempts: Vec<Attempt>,
        report: StreamReport,
    ) -> Self {
        PyChatStream {
            closer: stream.closer(),
            stream: Mutex::new(stream),
            provider,
            attempts: Mutex::new(attempts),
            report,
        }
    }

    pub(crate) fn attempts_now(&self) -> Vec<Attempt> {
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The next chunk, `None` at the end.
    fn next_chunk(&self, py: Python<'_>) -> PyResult<Option<Chunk>> {
        match self.next_step(py)? {
            Step::Chunk(chunk) => Ok(Some(chunk)),
            Step::End => Ok(None),
            Step::Failed(e) => Err(route_error(py, &e)),
        }
    }

    /// The stream's next step. A Python error is one of the reader's own
    /// (another thread reading, Ctrl-C, a close from another thread).
    pub(crate) fn next_step(&self, py: Python<'_>) -> PyResult<Step> {
        // Never wait for the lock: a reader holds it while waiting without
        // the GIL, and waiting here with the GIL would deadlock.
        let mut stream = self.stream.try_lock().map_err(|_| {
            PyRuntimeError::new_err("this ChatStream is being read by another thread")
        })?;
        loop {
            match next_output(py, &mut stream)? {
                Some(Output::Chunk(chunk)) => {
                    self.report.chunk(&chunk);
                    return Ok(Step::Chunk(chunk));
                }
                Some(Output::Commit { .. }) => {}
                Some(Output::Complete(result)) => {
                    let attempts = match &result {
                        Ok(routed) => routed.attempts.clone(),
                        Err(e) => e.attempts().to_vec(),
                    };
                    *self.attempts.lock().unwrap_or_else(PoisonError::into_inner) = attempts;
                    self.report.end(py, result.as_ref())?;
                    return Ok(match result {
                        Ok(_) => Step::End,
                        Err(e) => Step::Failed(e),
                    });
                }
                // Another thread's close() ended this read: say so, rather
                // than end like a complete answer.
                None if self.closer.is_closed() => {
                    let how = "by another thread (close())";
                    return Err(closed_while_read(
                        py,
                        &self.provider,
                        self.attempts_now(),
                        how,
                    ));
                }
                None => return Ok(Step::End),
            }
        }
    }

    /// The provider the stream committed to.
    pub(crate) fn committed_to(&self) -> &str {
        &self.provider
    }
}

/// What reading a stream gives next.
pub enum Step {
    /// A chunk.
    Chunk(Chunk),
    /// The clean end.
    End,
    /// The failure that ended it (after its commit point).
    Failed(RouteError),
}

#[pymethods]
impl PyChatStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.next_chunk(py)? {
            Some(chunk) => chunk_to_py(py, &chunk),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// The provider the stream committed to.
    #[getter]
    fn provider(&self) -> &str {
        &self.provider
    }

    /// Every attempt, in start order: as of the commit point, and final
    /// once the stream has ended.
    #[getter]
    fn attempts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        PyList::new(py, attempts.iter().map(PyAttempt::from))
    }

    /// Stop reading: the upstream connection is closed now. Harmless when
    /// the stream has ended. From another thread, while one is blocked
    /// reading it, the reader wakes at once (it closes the connection and
    /// raises `StreamInterrupted`).
    pub(crate) fn close(&self, py: Python<'_>) -> PyResult<()> {
        match self.stream.try_lock() {
            Ok(mut stream) => {
                let native: &mut NativeStream = &mut stream;
                py.detach(|| native.close());
            }
            // Never wait for a reader: it holds the lock while it waits.
            Err(_) => self.closer.close(),
        }
        self.report
            .close(py, &self.provider, || self.attempts_now())
    }

    /// Whether the stream has ended or was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.closer.is_closed()
            || self
                .stream
                .try_lock()
                .is_ok_and(|stream| stream.is_closed())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// The same stream as OpenAI server-sent events (`data: {...}\n\n`
    /// each, then `data: [DONE]\n\n`), for a server that forwards it.
    fn iter_sse(slf: Py<Self>) -> PySseIter {
        PySseIter {
            stream: slf,
            done: Mutex::new(false),
            front_door: false,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "ChatStream(provider={:?}, closed={})",
            self.provider,
            self.closed()
        )
    }
}

/// A stream dropped before its end and unclosed is reported as closed.
impl Drop for PyChatStream {
    fn drop(&mut self) {
        self.report.dropped(&self.provider, || self.attempts_now());
    }
}

/// `ChatStream.iter_sse()`: the stream's chunks as SSE bytes; a failure
/// raises. As the front door's body (`_native.serve`), a failure is its
/// interrupted event instead, the last item.
#[pyclass(frozen, name = "SseIterator", module = "f3dx_router._native")]
pub struct PySseIter {
    stream: Py<PyChatStream>,
    done: Mutex<bool>,
    front_door: bool,
}

impl PySseIter {
    /// The front door's body for a committed `stream`.
    pub(crate) fn front_door(stream: Py<PyChatStream>) -> Self {
        PySseIter {
            stream,
            done: Mutex::new(false),
            front_door: true,
        }
    }

    /// The next bytes to send, and whether they are the last.
    fn next_bytes(&self, py: Python<'_>) -> PyResult<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        let last = match self.stream.get().next_step(py)? {
            Step::Chunk(chunk) => {
                chunk.write_event(&mut out);
                false
            }
            Step::End => {
                out.extend_from_slice(endpoint::DONE);
                true
            }
            Step::Failed(e) if self.front_door => {
                out.extend_from_slice(&endpoint::interrupted_event(&e));
                true
            }
            Step::Failed(e) => return Err(route_error(py, &e)),
        };
        Ok((out, last))
    }
}

#[pymethods]
impl PySseIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        if *self.done.lock().unwrap_or_else(PoisonError::into_inner) {
            return Err(PyStopIteration::new_err(()));
        }
        let next = self.next_bytes(py);
        if next.as_ref().map_or(true, |(_, last)| *last) {
            *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        }
        next.map(|(bytes, _)| PyBytes::new(py, &bytes))
    }

    /// Stop reading: the upstream connection is closed now (the stream's
    /// `close()`).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.stream.get().close(py)
    }
}
