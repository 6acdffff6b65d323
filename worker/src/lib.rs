//! f3dx-router as a Cloudflare Worker.
//!
//! The routing core decides; this crate only does what it asks with the
//! Workers runtime: `fetch` with one `AbortController` per attempt (so a
//! losing hedge leg's connection is really closed), timers, and the clock.
//!
//! Two ways in:
//! - standalone: the `fetch` handler in [`handler`] serves the core's
//!   OpenAI-compatible front door (`f3dx_router_core::endpoint`,
//!   `POST /v1/chat/completions`) routed by the core;
//! - embedded: [`embed::Router`], a wasm-bindgen class a TypeScript worker
//!   constructs and awaits (`await router.chatCompletions(body)`).

pub mod auth;
pub mod config_log;
pub mod embed;
pub mod executor;
pub mod handler;
pub mod health_log;
pub mod host;
pub mod promise;
pub mod stats;
pub mod stream_out;

/// Workers allow six simultaneous outgoing connections per request.
pub const MAX_HEDGE_K: usize = 6;

/// `max_body_bytes` of a provider that does not set it. A deployed isolate
/// has 128 MB, and an answer takes several times its size while it passes
/// through (the README's table has the measurements), so the core's 32 MiB
/// default would not fit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Host limits the core checks at config time, and the worker's defaults.
pub fn limits() -> f3dx_router_core::HostLimits {
    f3dx_router_core::HostLimits {
        max_hedge_k: MAX_HEDGE_K,
        default_max_body_bytes: DEFAULT_MAX_BODY_BYTES,
    }
}
