//! Native host of f3dx-router: the core's [`Executor`] on tokio and reqwest,
//! and [`NativeRouter`], which owns one runtime and one connection pool.
//!
//! The core decides; this crate only sends, sleeps and tells the time.

mod executor;
mod router;

pub use executor::NativeExecutor;
pub use router::NativeRouter;

pub use f3dx_router_core::Executor;
