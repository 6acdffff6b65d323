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
//!
//! Everything a host needs is re-exported here; the modules themselves are
//! private (`docs/core.md` maps them). The `internals` module is a door for
//! this crate's own fuzz targets, benches and tests, not a stable API.

// Private: hosts use the re-exports below (and `quality`'s checks, and
// the front door's `endpoint`);
// this crate's fuzz targets, benches and tests reach further through
// `internals`.
mod attempt;
mod budget;
mod call;
mod codec;
mod config;
mod credentials;
mod driver;
// Public: every front door (the Worker, the Python transports) answers
// through it.
pub mod endpoint;
mod error;
mod events;
mod executor;
mod explain;
mod explain_json;
mod failover;
mod failure;
pub mod forward;
mod health;
mod http;
mod latency;
mod models_json;
mod pick;
pub mod quality;
mod ratelimit;
mod retry;
mod router;
mod schema;
mod secret;
mod shared;
mod sse;
mod stats;
mod stats_json;
mod table;
mod time;

pub use attempt::{Attempt, AttemptId, AttemptOutcome, Fault, Skipped};
pub use call::{Action, Call, CallOptions};
pub use codec::chunk::Chunk;
pub use config::HealthConfig;
pub use config::{AzureApi, AzureAuth, AzureSettings};
pub use config::{
    ConfigError, ConfigProblem, ConfigReport, HedgeDelay, HostLimits, Policy, ProviderConfig,
    ProviderKind, RouterConfig, AUTO_HEDGE_MIN_SAMPLES, AUTO_HEDGE_QUANTILE, HEDGE_BUDGET_CAP,
};
pub use driver::{commit_of, drive, drive_with, is_stream_request, Commit, Driver, Output};
pub use error::{RouteError, Routed};
pub use events::{
    BudgetKind, CoolingCause, EjectReason, HealthEvent, HealthEventKind, HealthEvents, QualityScope,
};
pub use executor::Executor;
pub use explain::{Explanation, Planned, Reason};
pub use forward::CallerHeaders;
pub use health::State;
pub use http::{HttpRequest, ResponseHead, TransportFault};
pub use quality::{KeyState, KeyStats, OnFailure, QualityConfig};
pub use router::Router;
pub use secret::Secret;
pub use stats::{HedgeStats, ProviderStats, Stats, QUALITY_KEYS_IN_STATS};
pub use table::{Deployment, ModelGroup, RoutingTable, Slot};
pub use time::Instant;

/// The config's schema words and defaults, for hosts that describe a
/// config (the Python package's typed dicts, `check` and `repr`).
pub mod config_schema {
    pub use crate::config::{
        DEFAULT_STREAM_IDLE_TIMEOUT, DEFAULT_TIMEOUT, DEPLOYMENT_KEYS, GROUP_KEYS, HEALTH_KEYS,
        HOST_KEYS, MAX_PROBLEMS, PROVIDER_KEYS, QUALITY_KEYS, ROUTER_KEYS,
    };
}

/// Internals for this crate's own fuzz targets, benches and tests.
///
/// **Not a stable API**: anything here may change or go in any release,
/// without notice. Hosts use the crate root's re-exports.
#[doc(hidden)]
pub mod internals {
    /// The provider codecs: requests encoded, answers and streams decoded.
    pub mod codec {
        pub use crate::codec::*;
    }
    /// Failover classes (context overflow, content policy, `failover_on`),
    /// retries on one deployment, and their config readers: the routing
    /// table's pieces (issue 18), for its tests until it calls them.
    pub mod failover {
        pub use crate::config::failover::*;
        pub use crate::failover::*;
        pub use crate::retry::*;
    }
    /// Status classes and `Retry-After`.
    pub mod failure {
        pub use crate::failure::*;
    }
    /// Provider health: candidate selection.
    pub mod health {
        pub use crate::health::{candidates, ProviderHealth};
    }
    /// Compiled `response_format` schemas.
    pub mod schema {
        pub use crate::schema::SchemaCache;
    }
    /// Secrets and their redaction.
    pub mod secret {
        pub use crate::secret::*;
    }
    /// The event-stream parser.
    pub mod sse {
        pub use crate::sse::*;
    }
    /// How `"auto"` reads its delay (the study's variants).
    #[cfg(feature = "study")]
    pub mod latency {
        pub use crate::latency::{AutoRule, Reading};
    }
}
