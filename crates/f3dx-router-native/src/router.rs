//! A router whose calls run on the calling thread.
//!
//! Each thread that routes gets its own lane: a current-thread tokio runtime
//! and an HTTP client (connection pool) bound to it. A call, its timers and
//! the connection tasks of its requests all run inside `block_on` on the
//! caller's thread, so a call costs no hand-off to another thread and back:
//! the profile of the earlier design (one multi-thread runtime shared by all
//! callers) put half of a call's time in those wake-ups (docs/benchmarks.md, "The native hot path").
//!
//! A pooled connection's task belongs to the runtime that opened it, so a
//! lane's client must never be used from another lane; `ThreadLocal` keeps
//! them apart. Provider health is shared by every lane (the core `Router`).

use std::cell::Cell;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use f3dx_router_core::{
    drive_with, CallOptions, Driver, Instant, RouteError, Routed, Router, RouterConfig,
};
use serde_json::Value;
use thread_local::ThreadLocal;
use tokio::runtime::Runtime;

use crate::executor::{self, tls_config, NativeExecutor};
use crate::stream::NativeStream;

/// Run `call`, calling `check` every `every`; an error from it drops the
/// call (and with it every request in flight) and is returned.
pub(crate) async fn until_interrupted<T, E>(
    call: impl Future<Output = T>,
    every: Duration,
    mut check: impl FnMut() -> Result<(), E>,
) -> Result<T, E> {
    let mut call = std::pin::pin!(call);
    loop {
        tokio::select! {
            biased;
            result = &mut call => return Ok(result),
            () = tokio::time::sleep(every) => check()?,
        }
    }
}

/// Idle time of a lane after which a call first lets its runtime retire the
/// connections servers closed meanwhile (see `route_blocking`).
pub const SETTLE_AFTER_IDLE: Duration = Duration::from_millis(1);

/// One thread's runtime and connection pool.
struct Lane {
    /// Shared with the lane's open streams, which outlive a call.
    runtime: Arc<Runtime>,
    executor: Arc<NativeExecutor>,
    /// When this lane's last call returned.
    last_call_end: Cell<std::time::Instant>,
}

impl Lane {
    fn new(origin: std::time::Instant, tls: &rustls::ClientConfig) -> std::io::Result<Lane> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // The client's pool spawns its tasks on the runtime it is built in.
        let executor = {
            let _guard = runtime.enter();
            NativeExecutor::with_tls(origin, tls.clone())
        };
        Ok(Lane {
            runtime: Arc::new(runtime),
            executor: Arc::new(executor),
            last_call_end: Cell::new(std::time::Instant::now()),
        })
    }
}

/// The core router and, per calling thread, a runtime and a connection pool.
/// Shared by every call, from any number of threads.
///
/// A thread's lane is built at its first call (a client and a runtime, well
/// under a millisecond) and kept for the router's life; a lane of a thread
/// that has exited is reused by the next new thread. So a router keeps at
/// most one pool per thread that used it at the same time, and idle
/// connections of a lane are served (and noticed closed) only while that
/// lane runs a call.
pub struct NativeRouter {
    router: Router,
    origin: std::time::Instant,
    /// Built once; each lane's client gets a copy.
    tls: rustls::ClientConfig,
    lanes: ThreadLocal<Lane>,
    /// The pool of the calls run on the background runtime (async callers),
    /// built at the first of them.
    background: OnceLock<(tokio::runtime::Handle, Arc<NativeExecutor>)>,
}

impl fmt::Debug for NativeRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeRouter")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl NativeRouter {
    /// A router over `config`; lanes are built by the threads that call it.
    pub fn new(config: RouterConfig) -> std::io::Result<Self> {
        Self::with_router(Router::new(config))
    }

    /// Lanes around an existing core router (its provider health is shared),
    /// e.g. to replace lanes lost in a fork.
    pub fn with_router(router: Router) -> std::io::Result<Self> {
        let router = NativeRouter {
            router,
            origin: std::time::Instant::now(),
            tls: tls_config().map_err(std::io::Error::other)?,
            lanes: ThreadLocal::new(),
            background: OnceLock::new(),
        };
        // Build the constructing thread's lane now, so that a machine that
        // cannot start a runtime fails here and not at the first call.
        router.lane()?;
        Ok(router)
    }

    /// The core router (config, provider health).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The router's clock, on which its cooldowns are kept.
    pub fn now(&self) -> Instant {
        executor::since(self.origin)
    }

    /// Route one request on the calling thread, blocking it until the call
    /// is done. Must not be called from inside an async runtime.
    ///
    /// The outer error says this thread's lane could not be built (the
    /// system refused a runtime: out of file descriptors or threads); the
    /// call was then not started.
    pub fn route_blocking(&self, body: Value) -> std::io::Result<Result<Routed, RouteError>> {
        self.route_blocking_with(body, CallOptions::default())
    }

    /// [`NativeRouter::route_blocking`] with per-call options (a tenant).
    pub fn route_blocking_with(
        &self,
        body: Value,
        options: CallOptions,
    ) -> std::io::Result<Result<Routed, RouteError>> {
        let never = None::<(Duration, fn() -> Result<(), Infallible>)>;
        Ok(match self.route_on_lane(body, options, never)? {
            Ok(result) => result,
            Err(never) => match never {},
        })
    }

    /// Like [`NativeRouter::route_blocking`], calling `interrupt` every
    /// `every` while the call runs: when it returns an error, the call is
    /// abandoned at once (its requests dropped, their connections closed
    /// before this returns) and the error is returned instead. A Python
    /// host checks for signals (Ctrl-C) this way.
    pub fn route_blocking_interruptible<E>(
        &self,
        body: Value,
        options: CallOptions,
        every: Duration,
        interrupt: impl FnMut() -> Result<(), E>,
    ) -> std::io::Result<Result<Result<Routed, RouteError>, E>> {
        self.route_on_lane(body, options, Some((every, interrupt)))
    }

    fn route_on_lane<E>(
        &self,
        body: Value,
        options: CallOptions,
        interrupt: Option<(Duration, impl FnMut() -> Result<(), E>)>,
    ) -> std::io::Result<Result<Result<Routed, RouteError>, E>> {
        let lane = self.lane()?;
        // Nothing runs a lane's runtime between calls, so a pooled
        // connection the server closed meanwhile (an idle timeout: 5 s in
        // uvicorn and Node) still looks open, and a request sent on it would
        // fail as a reset. After an idle spell, let the runtime take the
        // ready I/O events (the first yield parks it without blocking) and
        // the woken connection tasks retire their closed connections (the
        // second) before this call checks one out. Back-to-back calls skip
        // it: it costs about 3 us.
        let settle = lane.last_call_end.get().elapsed() >= SETTLE_AFTER_IDLE;
        let result = lane.runtime.block_on(async {
            if settle {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
            }
            let call = drive_with(&self.router, &*lane.executor, body, options);
            let result = match interrupt {
                None => Ok(call.await),
                Some((every, check)) => until_interrupted(call, every, check).await,
            };
            // Requests the call gave up on (cancelled hedge legs, timeouts,
            // an interrupted call's legs) were dropped, which wakes their
            // connection tasks to close the sockets. Nothing runs this
            // runtime between calls, so run those tasks now: the upstream
            // must stop working on an abandoned request at once, not at this
            // thread's next call. A call won by its only attempt abandoned
            // nothing and skips this.
            if !matches!(&result, Ok(Ok(routed)) if routed.attempts.len() == 1) {
                tokio::task::yield_now().await;
            }
            result
        });
        lane.last_call_end.set(std::time::Instant::now());
        Ok(result)
    }

    /// Start a streamed call (`"stream": true`) on this thread's lane; pull
    /// its outputs with [`NativeStream::next_blocking`]. Nothing is sent
    /// until the first pull.
    pub fn start_stream(&self, body: Value, options: CallOptions) -> std::io::Result<NativeStream> {
        let lane = self.lane()?;
        let settle = lane.last_call_end.get().elapsed() >= SETTLE_AFTER_IDLE;
        let driver = Driver::start_with(&self.router, Arc::clone(&lane.executor), body, options);
        Ok(NativeStream::new(Arc::clone(&lane.runtime), driver, settle))
    }

    /// Spawn `task` on the process's background runtime (see
    /// `background.rs`), giving it the router and the background pool's
    /// executor: for callers that must not block (an event loop). Dropping
    /// what it spawns (abort, or the task ending) drops its requests and
    /// their connections close at once.
    pub fn spawn<F, Fut>(&self, task: F) -> std::io::Result<tokio::task::AbortHandle>
    where
        F: FnOnce(Router, Arc<NativeExecutor>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (handle, executor) = match self.background.get() {
            Some(built) => built,
            None => {
                let handle = crate::background::handle()?;
                // The client's pool spawns its tasks on the runtime it is
                // built in.
                let executor = {
                    let _guard = handle.enter();
                    NativeExecutor::with_pool(
                        self.origin,
                        self.tls.clone(),
                        crate::executor::BACKGROUND_POOL_IDLE_PER_HOST,
                    )
                };
                // A racing thread may have built one first: keep the first.
                let _ = self.background.set((handle, Arc::new(executor)));
                self.background.get().expect("set above")
            }
        };
        let future = task(self.router.clone(), Arc::clone(executor));
        Ok(handle.spawn(future).abort_handle())
    }

    fn lane(&self) -> std::io::Result<&Lane> {
        self.lanes.get_or_try(|| Lane::new(self.origin, &self.tls))
    }
}
