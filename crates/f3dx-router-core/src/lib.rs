//! The routing core of f3dx-router.
//!
//! This crate makes every routing decision and performs no I/O: it opens no
//! sockets, spawns no tasks, reads no clock and no environment. Time comes in
//! as a value ([`Instant`]), responses come in as events, and what to do next
//! comes out as plain data ([`Action`]). The same inputs give the same
//! outputs on any host, which is what lets one set of test vectors run on a
//! virtual clock, natively, and in a Cloudflare Worker.
//!
//! ```text
//!   host (tokio + hyper, or workers-rs Fetch)
//!     |  Executor: send / sleep_until / now
//!     v
//!   drive()  --- start_call ---> Call (state machine)
//!     ^   handle_head / handle_body / handle_fault / handle_timeout
//!     |                            |
//!     +----- poll_action: Send / Cancel / Complete, poll_timeout
//! ```
//!
//! A host that serves the OpenAI-compatible HTTP front door takes its whole
//! contract (routes, parsing, error answers, headers, SSE framing) from
//! [`endpoint`].
//!
//! Most hosts only need [`RouterConfig::from_json`], [`Router::new`] and
//! [`drive`] with their own [`Executor`]. Hosts with their own loop (and the
//! virtual-clock tests) step a [`Call`] directly. Hosts that log take the
//! health transitions the core decided (ejections, readmissions, cooldowns,
//! budgets run out) with [`Router::take_health_events`], after checking
//! [`Router::has_health_events`] (one atomic load).

pub mod attempt;
#[cfg(test)]
mod auto_study;
pub mod budget;
pub mod call;
pub mod codec;
pub mod config;
mod driver;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod executor;
pub mod failure;
pub mod health;
pub mod http;
pub mod latency;
pub mod pick;
pub mod quality;
pub mod ratelimit;
mod router;
pub mod schema;
pub mod secret;
pub mod sse;
pub mod time;

pub use attempt::{Attempt, AttemptId, AttemptOutcome, Fault};
pub use call::{Action, Call, CallOptions};
pub use config::{
    ConfigError, HedgeDelay, HostLimits, Policy, ProviderConfig, ProviderKind, RouterConfig,
};
pub use driver::{commit_of, drive, drive_with, is_stream_request, Commit, Driver, Output};
pub use error::{RouteError, Routed};
pub use events::{
    BudgetKind, CoolingCause, EjectReason, HealthEvent, HealthEventKind, HealthEvents, QualityScope,
};
pub use executor::Executor;
pub use health::{HealthConfig, State};
pub use http::{HttpRequest, ResponseHead, TransportFault};
pub use quality::{KeyState, KeyStats, OnFailure, QualityConfig};
pub use router::{HedgeStats, ProviderStats, Router, Stats};
pub use secret::Secret;
pub use time::Instant;
