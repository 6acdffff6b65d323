//! A router with its own runtime and connection pool.

use f3dx_router_core::{drive, RouteError, Routed, Router, RouterConfig};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::executor::NativeExecutor;

/// Worker threads of a router's runtime: they run the connection tasks; the
/// routing itself runs on the caller's thread inside `block_on`.
const WORKER_THREADS: usize = 2;

/// The core router, a tokio runtime and a reqwest pool, built once and shared
/// by every call (from any number of threads).
#[derive(Debug)]
pub struct NativeRouter {
    router: Router,
    executor: NativeExecutor,
    runtime: Runtime,
}

impl NativeRouter {
    /// Build the runtime and the client for `config`.
    pub fn new(config: RouterConfig) -> std::io::Result<Self> {
        Self::with_router(Router::new(config))
    }

    /// Build a runtime and a client around an existing core router (its
    /// provider health is shared), e.g. to replace a runtime lost in a fork.
    pub fn with_router(router: Router) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("f3dx-router")
            .enable_all()
            .build()?;
        // reqwest's client must be built inside the runtime's context.
        let executor = {
            let _guard = runtime.enter();
            NativeExecutor::new().map_err(std::io::Error::other)?
        };
        Ok(NativeRouter {
            router,
            executor,
            runtime,
        })
    }

    /// The core router (config, provider health).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The executor (its clock is the router's clock).
    pub fn executor(&self) -> &NativeExecutor {
        &self.executor
    }

    /// Route one request, blocking the calling thread until it is done.
    /// Must not be called from inside an async runtime.
    pub fn route_blocking(&self, body: Value) -> Result<Routed, RouteError> {
        self.runtime.block_on(self.route(body))
    }

    /// Route one request; must be polled inside this router's runtime (as
    /// [`NativeRouter::route_blocking`] does).
    pub async fn route(&self, body: Value) -> Result<Routed, RouteError> {
        drive(&self.router, &self.executor, body).await
    }
}
