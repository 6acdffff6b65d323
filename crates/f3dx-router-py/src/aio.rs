//! asyncio: `achat_completions`, `aroute` and `AsyncChatStream`.
//!
//! A call runs on the native background runtime (`f3dx_router_native`'s
//! `NativeRouter::spawn`), never on a thread of its own. Its result comes
//! back to the caller's event loop through that loop's [`Bridge`]: a queue
//! and a socket pair whose reading end the loop watches (`add_reader`). The
//! runtime's thread pushes onto the queue and writes one byte when the queue
//! was empty; it never takes the GIL, so it never waits for the loop's
//! thread. The loop's thread drains the queue in one callback and builds the
//! Python objects there, so a burst of answers costs one wake-up.
//!
//! Cancelling the awaiting task cancels the future, whose done-callback
//! aborts the call's task: its requests are dropped and their connections
//! close at once (the runtime's connection tasks run all the time).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use f3dx_router_core::endpoint;
use f3dx_router_core::{
    drive_with, Attempt, CallOptions, Commit, Driver, Output, RouteError, Routed,
};
use f3dx_router_native::NativeRouter;
use pyo3::exceptions::{PyRuntimeError, PyStopAsyncIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyWeakrefReference};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::convert::{chunk_to_py, to_py};
use crate::errors::{closed_while_read, route_error};
use crate::front_door;
use crate::observe::{CallWatch, Observer, StreamReport};
use crate::router::route_result;
use crate::trace::PyAttempt;

/// Outputs a stream reads ahead of its consumer (then the upstream waits,
/// as a socket's buffer would make it).
const READ_AHEAD: usize = 32;

/// What finished work hands to its event loop.
enum Done {
    /// A whole answer: a `RouteResult` (`aroute`) or the response dict.
    Call {
        future: Py<PyAny>,
        result: Result<Routed, RouteError>,
        shape: Shape,
        report: Report,
    },
    /// A streamed call reached its commit point (or failed before it).
    Commit {
        future: Py<PyAny>,
        stream: Arc<StreamShared>,
        result: Result<Commit, RouteError>,
        /// Resolve to the front door's answer, not a stream object.
        front_door: bool,
        report: Report,
    },
    /// A call's task was dropped before its answer (before a stream's
    /// commit point): its future was cancelled. Reported as cancelled.
    Cancelled { report: Report },
    /// The stream was closed while an `__anext__` waited for it.
    ClosedWhileRead {
        future: Py<PyAny>,
        stream: Arc<StreamShared>,
    },
    /// A stream's next output, for the `__anext__` that waited for it.
    Next {
        future: Py<PyAny>,
        stream: Arc<StreamShared>,
        output: Option<Output>,
        framing: Framing,
    },
}

/// What a whole call's future resolves to.
#[derive(Clone, Copy)]
pub enum Shape {
    /// The response dict (`achat_completions`).
    Dict,
    /// A `RouteResult` (`aroute`).
    RouteResult,
    /// The front door's `(status, headers, body)` (`_native.aserve`).
    Answer,
}

/// How a stream's outputs are handed to its consumer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Chunk dicts; a failure raises.
    Chunks,
    /// SSE bytes (`aiter_sse`); a failure raises.
    Sse,
    /// SSE bytes as the front door sends them: a failure is the
    /// interrupted event, and the end.
    FrontDoor,
}

/// What the router's observer (logging, tracing) noted at a call's start.
struct Report {
    observer: Arc<Observer>,
    watch: CallWatch,
}

/// A call's report while its task runs, on its way to the loop: handed on
/// with the answer by [`Pending::push`], or, if the task is dropped first
/// (aborted because its future was cancelled), as [`Done::Cancelled`], so a
/// cancelled call is logged and traced too.
struct Pending {
    inbox: Arc<Inbox>,
    report: Option<Report>,
}

impl Pending {
    fn push(mut self, done: impl FnOnce(Report) -> Done) {
        if let Some(report) = self.report.take() {
            self.inbox.push(done(report));
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        match self.report.take() {
            Some(report) if report.watch.is_watched() => {
                self.inbox.push(Done::Cancelled { report });
            }
            _ => {}
        }
    }
}

/// The queue of one event loop, filled from the runtime's thread.
struct Inbox {
    queue: Mutex<Vec<Done>>,
    /// A byte was written and not yet drained: later pushes need not write.
    armed: AtomicBool,
    writer: UnixStream,
}

impl Inbox {
    fn push(&self, done: Done) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(done);
        if !self.armed.swap(true, Ordering::SeqCst) {
            // Non-blocking: a full socket already has bytes to wake the loop.
            // Another error means the loop is gone; its futures with it.
            while let Err(e) = (&self.writer).write(&[1]) {
                if e.kind() != ErrorKind::Interrupted {
                    break;
                }
            }
        }
    }
}

/// One event loop's end of the bridge: its reader is registered with the
/// loop, whose callback [`Bridge::drain`] resolves the futures.
#[pyclass(frozen, name = "_Bridge", module = "f3dx_router._native")]
pub struct Bridge {
    inbox: Arc<Inbox>,
    reader: UnixStream,
    /// A weak reference to the loop, to tell it from a later loop at the
    /// same address.
    loop_ref: Py<PyWeakrefReference>,
}

#[pymethods]
impl Bridge {
    /// Resolve every future whose work is done (the loop calls this when
    /// the reader is readable).
    fn drain(&self, py: Python<'_>) {
        // Empty the socket, then disarm, then take the queue. A push armed
        // before the disarm is in the queue taken below; one after it writes
        // a byte that stays in the socket for the next drain. (Disarming
        // first would let this read swallow the byte of a push that armed
        // after it: armed, with nothing to wake the loop, for good.)
        let mut sink = [0u8; 64];
        loop {
            match (&self.reader).read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.inbox.armed.store(false, Ordering::SeqCst);
        let done = std::mem::take(
            &mut *self
                .inbox
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for d in done {
            resolve(py, d);
        }
    }
}

/// Bridges a thread keeps: one per event loop it ran calls from (a thread
/// runs one loop at a time, but may switch between a few).
const BRIDGES_PER_THREAD: usize = 8;

thread_local! {
    /// The bridges of the loops this thread called from, latest first.
    static BRIDGES: RefCell<Vec<Py<Bridge>>> = const { RefCell::new(Vec::new()) };
}

/// The running loop and its bridge (made and registered at the loop's first
/// async call).
fn running_loop(py: Python<'_>) -> PyResult<(Bound<'_, PyAny>, Arc<Inbox>)> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let get = GET_RUNNING_LOOP.import(py, "asyncio", "get_running_loop")?;
    let event_loop = get.call0()?;
    let cached = BRIDGES.with_borrow_mut(|bridges| {
        // Forget the bridges of loops that are gone (their sockets close).
        bridges.retain(|b| b.bind(py).get().loop_ref.bind(py).upgrade().is_some());
        let at = bridges.iter().position(|b| {
            let alive = b.bind(py).get().loop_ref.bind(py).upgrade();
            alive.is_some_and(|l| l.is(&event_loop))
        })?;
        if at != 0 {
            let bridge = bridges.remove(at);
            bridges.insert(0, bridge);
        }
        Some(Arc::clone(&bridges[0].bind(py).get().inbox))
    });
    if let Some(inbox) = cached {
        return Ok((event_loop, inbox));
    }
    let (reader, writer) = UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    writer.set_nonblocking(true)?;
    let fd = reader.as_raw_fd();
    let bridge = Bound::new(
        py,
        Bridge {
            inbox: Arc::new(Inbox {
                queue: Mutex::new(Vec::new()),
                armed: AtomicBool::new(false),
                writer,
            }),
            reader,
            loop_ref: PyWeakrefReference::new(&event_loop)?.unbind(),
        },
    )?;
    event_loop
        .call_method1("add_reader", (fd, bridge.getattr("drain")?))
        .map_err(|e| {
            let message = format!(
                "f3dx_router's async calls need an event loop that can watch a socket \
                 (add_reader): {}",
                e.value(py)
            );
            PyRuntimeError::new_err(message)
        })?;
    let inbox = Arc::clone(&bridge.get().inbox);
    BRIDGES.with_borrow_mut(|bridges| {
        bridges.insert(0, bridge.unbind());
        // A bridge forgotten here stays registered with its loop, which
        // keeps it alive: only a later call from that loop makes another.
        bridges.truncate(BRIDGES_PER_THREAD);
    });
    Ok((event_loop, inbox))
}

/// Aborts a task when the future it resolves is cancelled (the awaiting
/// asyncio task was cancelled, or timed out).
#[pyclass(frozen, name = "_Canceller", module = "f3dx_router._native")]
pub struct Canceller {
    abort: AbortHandle,
    /// The stream whose task this is, marked closed too.
    stream: Option<Arc<StreamShared>>,
}

#[pymethods]
impl Canceller {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            match &self.stream {
                Some(stream) => stream.close(),
                None => self.abort.abort(),
            }
        }
        Ok(())
    }
}

fn spawn_error(e: std::io::Error) -> PyErr {
    PyRuntimeError::new_err(format!("cannot start the router's runtime: {e}"))
}

/// What every async call starts with: the running loop's inbox, the
/// observer's watch (taken now, in the caller's context), and the future the
/// caller awaits (with a second handle to it for the task).
type Begun<'py> = (Pending, Bound<'py, PyAny>, Py<PyAny>);

fn begin<'py>(py: Python<'py>, observer: &Arc<Observer>, body: &Value) -> PyResult<Begun<'py>> {
    let (event_loop, inbox) = running_loop(py)?;
    let future = event_loop.call_method0("create_future")?;
    let target = future.clone().unbind();
    let pending = Pending {
        inbox,
        report: Some(Report {
            observer: Arc::clone(observer),
            watch: observer.start(py, body)?,
        }),
    };
    Ok((pending, future, target))
}

/// Abort the call's task if `future` is cancelled.
fn cancel_with(future: &Bound<'_, PyAny>, abort: AbortHandle) -> PyResult<()> {
    let canceller = Canceller {
        abort,
        stream: None,
    };
    future.call_method1("add_done_callback", (canceller,))?;
    Ok(())
}

/// Start a whole (not streamed) call; return the future of its answer, as
/// `shape` says.
pub fn start_call<'py>(
    py: Python<'py>,
    native: &NativeRouter,
    observer: &Arc<Observer>,
    body: Value,
    options: CallOptions,
    shape: Shape,
) -> PyResult<Bound<'py, PyAny>> {
    let (pending, future, target) = begin(py, observer, &body)?;
    let abort = native
        .spawn(move |router, executor| async move {
            let result = drive_with(&router, &*executor, body, options).await;
            pending.push(|report| Done::Call {
                future: target,
                result,
                shape,
                report,
            });
        })
        .map_err(spawn_error)?;
    cancel_with(&future, abort)?;
    Ok(future)
}

/// Start a streamed call; return the future of its [`PyAsyncChatStream`],
/// resolved at the commit point (or failing as a whole call would). With
/// `front_door`, the future resolves to the front door's `(status, headers,
/// body)` instead: a failure before the commit point is an error answer, the
/// stream an async iterator of SSE bytes.
pub fn start_stream<'py>(
    py: Python<'py>,
    native: &NativeRouter,
    observer: &Arc<Observer>,
    body: Value,
    options: CallOptions,
    front_door: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let (pending, future, target) = begin(py, observer, &body)?;
    let stream = Arc::new(StreamShared::default());
    let shared = Arc::clone(&stream);
    let abort = native
        .spawn(move |router, executor| async move {
            let mut driver = Driver::start_with(&router, executor, body, options);
            let first = driver.commit().await;
            let committed = first.is_ok();
            pending.push(|report| Done::Commit {
                future: target,
                stream: Arc::clone(&shared),
                result: first,
                front_door,
                report,
            });
            if committed {
                pump(driver, shared).await;
            }
        })
        .map_err(spawn_error)?;
    let _ = stream.abort.set(abort.clone());
    cancel_with(&future, abort)?;
    Ok(future)
}

/// Read a committed stream's outputs ahead of its consumer, up to
/// [`READ_AHEAD`], handing each to a waiting `__anext__` if there is one.
async fn pump<E: f3dx_router_core::Executor>(mut driver: Driver<E>, stream: Arc<StreamShared>) {
    loop {
        loop {
            {
                let state = stream.lock();
                if state.closed {
                    return;
                }
                if state.buffered.len() < READ_AHEAD || state.waiter.is_some() {
                    break;
                }
            }
            // A pop after the check above left a permit: no wake-up is lost.
            stream.space.notified().await;
        }
        let output = driver.next().await;
        if matches!(output, Some(Output::Commit { .. })) {
            continue;
        }
        let end = matches!(output, None | Some(Output::Complete(_)));
        let waiter = {
            let mut state = stream.lock();
            if state.closed {
                return;
            }
            match state.waiter.take() {
                Some(waiter) => Some((waiter, output)),
                None => {
                    state.buffered.push_back(output);
                    None
                }
            }
        };
        if let Some(((future, framing, inbox), output)) = waiter {
            inbox.push(Done::Next {
                future,
                stream: Arc::clone(&stream),
                output,
                framing,
            });
        }
        if end {
            return;
        }
    }
}

/// An `__anext__` waiting for the pump: its future, how it wants the
/// outputs, and its loop's inbox.
type Waiter = (Py<PyAny>, Framing, Arc<Inbox>);

#[derive(Default)]
struct StreamState {
    buffered: VecDeque<Option<Output>>,
    waiter: Option<Waiter>,
    closed: bool,
    /// The end (or the error) was given to the consumer.
    finished: bool,
    /// `aiter_sse` gave its `data: [DONE]`.
    done_sent: bool,
    attempts: Vec<Attempt>,
    /// The provider it committed to.
    provider: String,
}

/// A streamed call's state, shared by its pump and its Python object.
#[derive(Default)]
pub struct StreamShared {
    state: Mutex<StreamState>,
    /// Notified when the consumer takes an output (room to read ahead) or
    /// closes the stream.
    space: Notify,
    abort: OnceLock<AbortHandle>,
    /// Logs and traces the call when it ends (set at the commit point).
    report: OnceLock<StreamReport>,
}

impl StreamShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stop the call: its task ends and its connections close now.
    fn close(self: &Arc<Self>) {
        let waiter = {
            let mut state = self.lock();
            state.closed = true;
            state.buffered.clear();
            state.waiter.take()
        };
        if let Some(abort) = self.abort.get() {
            abort.abort();
        }
        self.space.notify_one();
        // A waiting `__anext__` raises (the answer is incomplete, and must
        // not look complete); its future is resolved on its loop (and
        // skipped there if it was cancelled).
        if let Some((future, _, inbox)) = waiter {
            inbox.push(Done::ClosedWhileRead {
                future,
                stream: Arc::clone(self),
            });
        }
    }
}

/// Set a future's result, or its exception, unless it was cancelled.
fn settle(py: Python<'_>, future: &Bound<'_, PyAny>, value: PyResult<Bound<'_, PyAny>>) {
    let Ok(cancelled) = future.call_method0("cancelled") else {
        return;
    };
    if cancelled.is_truthy().unwrap_or(true) {
        return;
    }
    let _ = match value {
        Ok(v) => future.call_method1("set_result", (v,)),
        Err(e) => future.call_method1("set_exception", (e.into_value(py),)),
    };
}

/// Resolve one finished piece of work (on the loop's thread).
fn resolve(py: Python<'_>, done: Done) {
    match done {
        Done::Call {
            future,
            result,
            shape,
            report,
        } => {
            let observed = report
                .observer
                .after_call(py, report.watch, result.as_ref());
            let value = match (observed, result, shape) {
                (Err(e), _, _) => Err(e),
                (Ok(()), result, Shape::Answer) => {
                    let answer = match &result {
                        Ok(routed) => endpoint::routed(routed),
                        Err(e) => endpoint::route_error(e),
                    };
                    front_door::whole(py, &answer)
                }
                (Ok(()), Err(e), _) => Err(route_error(py, &e)),
                (Ok(()), Ok(routed), Shape::RouteResult) => {
                    route_result(py, routed).and_then(|r| Ok(Bound::new(py, r)?.into_any()))
                }
                (Ok(()), Ok(routed), Shape::Dict) => to_py(py, &routed.response),
            };
            settle(py, future.bind(py), value);
        }
        Done::Commit {
            future,
            stream,
            result,
            front_door,
            report,
        } => {
            let committed = result.is_ok();
            let value = match result {
                Ok(commit) => {
                    let head = endpoint::stream_head(&commit.provider, &commit.attempts);
                    {
                        let mut state = stream.lock();
                        state.attempts = commit.attempts;
                        state.provider.clone_from(&commit.provider);
                    }
                    report
                        .observer
                        .stream_report(py, report.watch)
                        .and_then(|report| {
                            let _ = stream.report.set(report);
                            Bound::new(
                                py,
                                PyAsyncChatStream {
                                    stream: Arc::clone(&stream),
                                    provider: commit.provider,
                                },
                            )
                        })
                        .and_then(|s| {
                            if !front_door {
                                return Ok(s.into_any());
                            }
                            let body = PyAsyncSseIter {
                                stream: s.unbind(),
                                framing: Framing::FrontDoor,
                            };
                            front_door::answer(py, &head, Bound::new(py, body)?.into_any())
                        })
                }
                Err(e) => report
                    .observer
                    .after_call(py, report.watch, Err(&e))
                    .and_then(|()| {
                        if front_door {
                            front_door::whole(py, &endpoint::route_error(&e))
                        } else {
                            Err(route_error(py, &e))
                        }
                    }),
            };
            if !committed || value.is_err() {
                stream.close();
            }
            settle(py, future.bind(py), value);
        }
        Done::Cancelled { report } => {
            // The awaiting task saw CancelledError; nobody awaits this.
            if let Err(e) = report
                .observer
                .cancelled(py, report.watch, "CancelledError")
            {
                e.write_unraisable(py, None);
            }
        }
        Done::ClosedWhileRead { future, stream } => {
            let (provider, attempts) = {
                let state = stream.lock();
                (state.provider.clone(), state.attempts.clone())
            };
            let how = "(aclose(), or the stream dropped)";
            let error = closed_while_read(py, &provider, attempts, how);
            settle(py, future.bind(py), Err(error));
        }
        Done::Next {
            future,
            stream,
            output,
            framing,
        } => {
            let value = consume(py, &stream, output, framing).and_then(|v| match v {
                Some(v) => Ok(v),
                None => Err(PyStopAsyncIteration::new_err(())),
            });
            settle(py, future.bind(py), value);
        }
    }
}

/// The Python value of a stream's output for its consumer: a chunk (dict or
/// SSE bytes), `None` at the end, or the error that ended it (for the front
/// door, its interrupted event).
fn consume<'py>(
    py: Python<'py>,
    stream: &StreamShared,
    output: Option<Output>,
    framing: Framing,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if stream.lock().closed {
        return Ok(None);
    }
    match output {
        Some(Output::Chunk(chunk)) => {
            if let Some(report) = stream.report.get() {
                report.chunk(&chunk);
            }
            if framing == Framing::Chunks {
                return chunk_to_py(py, &chunk).map(Some);
            }
            let mut line = Vec::new();
            chunk.write_event(&mut line);
            Ok(Some(PyBytes::new(py, &line).into_any()))
        }
        Some(Output::Complete(result)) => {
            let mut state = stream.lock();
            state.finished = true;
            state.attempts = match &result {
                Ok(routed) => routed.attempts.clone(),
                Err(e) => e.attempts().to_vec(),
            };
            if result.is_err() {
                // An error ends an SSE stream too: no `[DONE]` after it.
                state.done_sent = true;
            }
            drop(state);
            if let Some(report) = stream.report.get() {
                report.end(py, result.as_ref())?;
            }
            match result {
                Err(e) if framing == Framing::FrontDoor => Ok(Some(
                    PyBytes::new(py, &endpoint::interrupted_event(&e)).into_any(),
                )),
                Err(e) => Err(route_error(py, &e)),
                Ok(_) => Ok(end_of(py, stream, framing)),
            }
        }
        Some(Output::Commit { .. }) | None => {
            stream.lock().finished = true;
            Ok(end_of(py, stream, framing))
        }
    }
}

/// What a finished stream gives next: `data: [DONE]` once for SSE, then
/// nothing.
fn end_of<'py>(
    py: Python<'py>,
    stream: &StreamShared,
    framing: Framing,
) -> Option<Bound<'py, PyAny>> {
    let mut state = stream.lock();
    if framing != Framing::Chunks && !state.done_sent {
        state.done_sent = true;
        return Some(PyBytes::new(py, endpoint::DONE).into_any());
    }
    None
}

/// A streamed chat completion for asyncio, from its commit point on:
/// `async for chunk in stream`. A failure after the first output raises
/// `StreamInterrupted`. `await stream.aclose()` (or leaving `async with`)
/// closes the upstream connection at once; so does cancelling a task
/// waiting on it.
#[pyclass(frozen, name = "AsyncChatStream", module = "f3dx_router._native")]
pub struct PyAsyncChatStream {
    stream: Arc<StreamShared>,
    provider: String,
}

impl PyAsyncChatStream {
    /// The awaitable of the next output.
    pub(crate) fn next<'py>(
        &self,
        py: Python<'py>,
        framing: Framing,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (event_loop, inbox) = running_loop(py)?;
        let future = event_loop.call_method0("create_future")?;
        let mut state = self.stream.lock();
        if state.waiter.is_some() {
            return Err(PyRuntimeError::new_err(
                "this AsyncChatStream is already being read by another task",
            ));
        }
        if let Some(output) = state.buffered.pop_front() {
            drop(state);
            self.stream.space.notify_one();
            return match consume(py, &self.stream, output, framing)? {
                Some(v) => {
                    future.call_method1("set_result", (v,))?;
                    Ok(future)
                }
                None => Err(PyStopAsyncIteration::new_err(())),
            };
        }
        if state.closed {
            return Err(PyStopAsyncIteration::new_err(()));
        }
        if state.finished {
            drop(state);
            return match end_of(py, &self.stream, framing) {
                Some(v) => {
                    future.call_method1("set_result", (v,))?;
                    Ok(future)
                }
                None => Err(PyStopAsyncIteration::new_err(())),
            };
        }
        state.waiter = Some((future.clone().unbind(), framing, inbox));
        drop(state);
        self.stream.space.notify_one();
        let abort = self
            .stream
            .abort
            .get()
            .cloned()
            .ok_or_else(|| PyRuntimeError::new_err("the stream has no task"))?;
        future.call_method1(
            "add_done_callback",
            (Canceller {
                abort,
                stream: Some(Arc::clone(&self.stream)),
            },),
        )?;
        Ok(future)
    }

    /// A done future holding `value` (what `aclose` and `__aenter__` give).
    fn ready<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (event_loop, _) = running_loop(py)?;
        let future = event_loop.call_method0("create_future")?;
        future.call_method1("set_result", (value,))?;
        Ok(future)
    }
}

impl PyAsyncChatStream {
    /// Close the call, and report it closed unless it had ended.
    pub(crate) fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.stream.close();
        match self.stream.report.get() {
            Some(report) => {
                report.close(py, &self.provider, || self.stream.lock().attempts.clone())
            }
            None => Ok(()),
        }
    }
}

impl Drop for PyAsyncChatStream {
    fn drop(&mut self) {
        self.stream.close();
        if let Some(report) = self.stream.report.get() {
            report.dropped(&self.provider, || self.stream.lock().attempts.clone());
        }
    }
}

#[pymethods]
impl PyAsyncChatStream {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.next(py, Framing::Chunks)
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
        let state = self.stream.lock();
        PyList::new(py, state.attempts.iter().map(PyAttempt::from))
    }

    /// Whether the stream has ended or was closed.
    #[getter]
    fn closed(&self) -> bool {
        let state = self.stream.lock();
        state.closed || state.finished
    }

    /// Stop reading: the upstream connection is closed now. Harmless when
    /// the stream has ended.
    pub(crate) fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.close(py)?;
        Self::ready(py, py.None().into_bound(py))
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::ready(slf.py(), slf.clone().into_any())
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.close(py)?;
        Self::ready(py, false.into_pyobject(py)?.to_owned().into_any())
    }

    /// The same stream as OpenAI server-sent events (`data: {...}\n\n`
    /// each, then `data: [DONE]\n\n`): an async iterator of bytes.
    fn aiter_sse(slf: Py<Self>) -> PyAsyncSseIter {
        PyAsyncSseIter {
            stream: slf,
            framing: Framing::Sse,
        }
    }
}

/// `AsyncChatStream.aiter_sse()`: the stream's chunks as SSE bytes; a
/// failure raises. As the front door's body (`_native.aserve`), a failure is
/// its interrupted event instead, the last item.
#[pyclass(frozen, name = "AsyncSseIterator", module = "f3dx_router._native")]
pub struct PyAsyncSseIter {
    stream: Py<PyAsyncChatStream>,
    framing: Framing,
}

#[pymethods]
impl PyAsyncSseIter {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.stream.get().next(py, self.framing)
    }

    /// Stop reading: the upstream connection is closed now (the stream's
    /// `aclose()`).
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.stream.get().aclose(py)
    }
}
