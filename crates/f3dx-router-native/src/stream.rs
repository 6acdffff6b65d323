//! A streamed call pulled by a blocking caller (a Python iterator): each
//! pull runs the lane's runtime until the call has its next output.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use f3dx_router_core::{Driver, Output};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use crate::executor::NativeExecutor;
use crate::router::until_interrupted;

/// One streamed call, on the runtime of the lane that started it. Pull it
/// from any thread, one pull at a time. Dropping it (or [`close`]) drops its
/// requests and closes their connections before it returns.
///
/// [`close`]: NativeStream::close
pub struct NativeStream {
    runtime: Arc<Runtime>,
    driver: Option<Driver<Arc<NativeExecutor>>>,
    /// The lane was idle: let it retire closed connections first (see
    /// `NativeRouter::route_blocking`).
    settle: bool,
    /// Set by a [`StreamCloser`]: a pull waiting on it ends at once.
    close_signal: Arc<CloseSignal>,
}

/// Closes a [`NativeStream`] from another thread, while a thread may be
/// blocked pulling it (a watchdog, a request handler giving up): the pull
/// returns `None` at once and the stream closes its connections.
#[derive(Clone, Debug)]
pub struct StreamCloser(Arc<CloseSignal>);

#[derive(Debug, Default)]
struct CloseSignal {
    closed: AtomicBool,
    /// Wakes a pull. A close with no pull waiting leaves a permit, so the
    /// next pull ends at once: no wake-up is lost.
    wake: Notify,
}

impl StreamCloser {
    /// Close the stream: a pull in progress ends now, later pulls give
    /// nothing.
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }

    /// Whether [`StreamCloser::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for NativeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeStream")
            .field("open", &self.driver.is_some())
            .finish_non_exhaustive()
    }
}

impl NativeStream {
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        driver: Driver<Arc<NativeExecutor>>,
        settle: bool,
    ) -> Self {
        NativeStream {
            runtime,
            driver: Some(driver),
            settle,
            close_signal: Arc::default(),
        }
    }

    /// A handle that closes this stream from any thread, even while
    /// another one is blocked pulling it.
    pub fn closer(&self) -> StreamCloser {
        StreamCloser(Arc::clone(&self.close_signal))
    }

    /// A [`StreamCloser`] closed it: close it here too (its driver was
    /// busy in a pull, or idle).
    fn closed_elsewhere(&mut self) -> bool {
        let closed = self.close_signal.closed.load(Ordering::Acquire);
        if closed {
            self.close();
        }
        closed
    }

    /// The next output, blocking the calling thread: the commit point, a
    /// chunk, or the call's end. `None` once it has ended or was closed
    /// (here, or by its [`StreamCloser`], which also ends a pull waiting).
    pub fn next_blocking(&mut self) -> Option<Output> {
        let never = None::<(Duration, fn() -> Result<(), std::convert::Infallible>)>;
        match self.pull(never) {
            Ok(output) => output,
            Err(never) => match never {},
        }
    }

    /// The next output if it is at hand without waiting (a chunk of a read
    /// already made): `None` when the caller must wait for it with
    /// [`NativeStream::next_blocking`]. Cheap enough to try before letting
    /// go of a lock (Python's GIL) to wait.
    pub fn try_next(&mut self) -> Option<Option<Output>> {
        if self.closed_elsewhere() {
            return Some(None);
        }
        if self.settle {
            return None;
        }
        let driver = self.driver.as_mut()?;
        let polled = {
            // Timers and I/O the driver touches belong to the lane's runtime.
            let _context = self.runtime.enter();
            driver.poll_next(&mut Context::from_waker(Waker::noop()))
        };
        let Poll::Ready(output) = polled else {
            return None;
        };
        // Outside the runtime's context, so that closing runs the lane.
        if matches!(output, Some(Output::Complete(_)) | None) {
            self.close();
        }
        Some(output)
    }

    /// Like [`NativeStream::next_blocking`], calling `interrupt` every
    /// `every` while it waits; its error closes the stream and is returned.
    pub fn next_blocking_interruptible<E>(
        &mut self,
        every: Duration,
        interrupt: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<Output>, E> {
        self.pull(Some((every, interrupt)))
    }

    fn pull<E>(
        &mut self,
        interrupt: Option<(Duration, impl FnMut() -> Result<(), E>)>,
    ) -> Result<Option<Output>, E> {
        if self.closed_elsewhere() {
            return Ok(None);
        }
        let Some(driver) = self.driver.as_mut() else {
            return Ok(None);
        };
        let settle = std::mem::take(&mut self.settle);
        let signal = &self.close_signal;
        let result = self.runtime.block_on(async {
            if settle {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
            }
            let next = async {
                match interrupt {
                    None => Ok(driver.next().await),
                    Some((every, check)) => until_interrupted(driver.next(), every, check).await,
                }
            };
            tokio::select! {
                biased;
                () = signal.wake.notified() => Ok(None),
                result = next => result,
            }
        });
        match &result {
            Ok(Some(Output::Complete(_)) | None) | Err(_) => self.close(),
            Ok(Some(_)) => {}
        }
        result
    }

    /// Stop the call: drop its requests and let their connection tasks
    /// close the sockets now, not at the lane's next call.
    pub fn close(&mut self) {
        // (Inside a runtime, as an async caller dropping it would be, the
        // sockets close at the lane's next call instead: block_on there
        // would panic.)
        if self.driver.take().is_some() && tokio::runtime::Handle::try_current().is_err() {
            self.runtime.block_on(tokio::task::yield_now());
        }
    }

    /// Whether the stream has ended or was closed.
    pub fn is_closed(&self) -> bool {
        self.driver.is_none()
    }
}

impl Drop for NativeStream {
    fn drop(&mut self) {
        self.close();
    }
}
