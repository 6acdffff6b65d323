//! `GET /stats` and the embedded `Router.stats()`: what this isolate's
//! router remembers, in the shape of the Python API's `Router.stats()`
//! (the core's `Stats::to_json`, rounded there for every host). Each
//! isolate keeps its own state.

use f3dx_router_core::{Executor, Router};
use serde_json::Value;

use crate::executor::FetchExecutor;

/// The router's stats now, as JSON.
pub fn stats_json(router: &Router) -> Value {
    let now = FetchExecutor.now();
    router.stats(now).to_json(now)
}
