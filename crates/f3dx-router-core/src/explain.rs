//! What a call would do now, without sending anything: the deployments it
//! would try, in order, and why each other one is left out or placed last
//! ([`crate::Router::explain`]).
//!
//! The reasons are a by-product of the call's own planning (`call/start.rs`
//! `plan`, `Shared::candidates`, `ProviderHealth::blocked`): planning takes
//! an optional [`Why`] and notes each decision in it as it makes it, so
//! what `explain` says cannot drift from what a call does. A call passes
//! none and pays one branch per decision.

use crate::events::BudgetKind;
use crate::time::Instant;

/// Why a deployment is left out of a call's order, or placed where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// It asked to be left alone (`Retry-After`) until the instant.
    Cooling(Instant),
    /// A rate limit is spent until the instant: its own rate-limit headers
    /// said so (`None`), or this router's `rpm` / `tpm` budget is empty.
    RateLimited(Instant, Option<BudgetKind>),
    /// Ejected by its failures until the instant.
    Ejected(Instant),
    /// Half-open, and another call holds its one probe.
    ProbeHeld,
    /// Its `context_window` cannot hold the request's estimated tokens.
    ContextWindow {
        /// The tokens the request needs (prompt estimate plus completion).
        need: u64,
        /// The deployment's declared window.
        window: u64,
    },
    /// Its answers failed this tenant's checks for this model: tried only
    /// after every other candidate (until the instant, then probed).
    QualityExcluded(Option<Instant>),
    /// Another call holds its quality probe for this tenant and model.
    QualityProbeHeld,
    /// Weight 0 under the `weighted` policy: never a first pick, tried
    /// only after the weighted ones (a fallback inside its group).
    WeightZero,
    /// Its provider's kind cannot carry some of the request's parameters
    /// (`unsupported_params: "error"`): they are in [`Planned::params`].
    UnsupportedParams,
}

impl Reason {
    /// The name JSON gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Cooling(_) => "cooling",
            Reason::RateLimited(..) => "rate_limited",
            Reason::Ejected(_) => "ejected",
            Reason::ProbeHeld => "probe_held",
            Reason::ContextWindow { .. } => "context_window",
            Reason::QualityExcluded(_) => "quality_excluded",
            Reason::QualityProbeHeld => "quality_probe_held",
            Reason::WeightZero => "weight_zero",
            Reason::UnsupportedParams => "unsupported_params",
        }
    }
}

/// What planning noticed, deployment by deployment (indices into the
/// routing table's deployments): filled only for `explain`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Why {
    /// Why it may be left out of the order (a deployment tried after all,
    /// as a last resort, carries it as its note).
    pub left_out: Vec<(usize, Reason)>,
    /// In the order, but placed after the others, and why.
    pub notes: Vec<(usize, Reason)>,
    /// Groups whose every deployment was out: theirs are tried anyway, in
    /// the order they recover.
    pub exhausted: Vec<usize>,
}

/// One deployment in an [`Explanation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// Its index in the routing table's deployments.
    pub deployment: usize,
    /// Its group's name (`""` for the implicit group of a config without
    /// `models`).
    pub group: String,
    /// Its provider's name.
    pub provider: String,
    /// The model name it would be sent.
    pub model: String,
    /// Why it is left out, or why it is where it is (`None`: tried in its
    /// turn).
    pub reason: Option<Reason>,
    /// Tried although out: every deployment of its group was out.
    pub last_resort: bool,
    /// The request's parameters its provider's kind cannot carry: why it
    /// is left out ([`Reason::UnsupportedParams`]), or, tried, what it
    /// would be sent without (`unsupported_params: "drop"`).
    pub params: Vec<String>,
}

/// What a call would do now ([`crate::Router::explain`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The model the request asked for.
    pub model: String,
    /// The group it picks.
    pub group: String,
    /// The deployments it would try, in order (hedged legs start in this
    /// order too).
    pub tried: Vec<Planned>,
    /// The deployments of the groups it considered that it would not try.
    pub left_out: Vec<Planned>,
    /// No deployment of its own group is usable: it would try them anyway,
    /// in the order they recover, overdrawing their budgets.
    pub last_resort: bool,
}
