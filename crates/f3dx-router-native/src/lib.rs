//! Native host of f3dx-router: the core's [`Executor`] on tokio and hyper (rustls),
//! and [`NativeRouter`], which runs each call on its caller's thread, with a
//! runtime and a connection pool per calling thread; calls of callers that
//! must not block (an event loop) run on one background runtime instead.
//!
//! The core decides; this crate only sends, sleeps and tells the time.

mod background;
mod connect;
mod executor;
mod router;
mod stream;

pub use executor::{
    tls_config, NativeExecutor, ResponseBody, BACKGROUND_POOL_IDLE_PER_HOST, POOL_IDLE_PER_HOST,
};
pub use router::{NativeRouter, SETTLE_AFTER_IDLE};
pub use stream::{NativeStream, StreamCloser};

pub use f3dx_router_core::Executor;
