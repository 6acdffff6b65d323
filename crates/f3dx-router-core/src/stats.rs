//! What `Router::stats` reports: a read-only view of what the router
//! remembers.

use std::time::Duration;

use crate::health::State;
use crate::quality::KeyStats;

/// What `stats()` reports of one deployment (without `models`: of one
/// provider).
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderStats {
    /// The provider's name.
    pub name: String,
    /// The model group this deployment serves (`None` without `models`).
    pub group: Option<String>,
    /// The model sent to the provider, when the routing table fixes it
    /// (`None` without `models`, or when the caller's is passed through).
    pub model: Option<String>,
    /// Where it stands.
    pub state: State,
    /// Successes in the window.
    pub successes: u32,
    /// Soft failures in the window.
    pub soft_failures: u32,
    /// p50, p90, p95 and p99 of the window's successful latencies, if
    /// any (the p90 is what `"auto"` hedging waits on this provider).
    pub latency: Option<[Duration; 4]>,
    /// Ejections since the router started.
    pub ejections: u64,
    /// Requests left in its `rpm` budget, if it has one.
    pub rpm_left: Option<f64>,
    /// Tokens left in its `tpm` budget, if it has one.
    pub tpm_left: Option<f64>,
    /// Its quality keys (tenant, model) with the most results, at most
    /// [`QUALITY_KEYS_IN_STATS`].
    pub quality: Vec<KeyStats>,
}

/// Most quality keys `stats()` lists per provider.
pub const QUALITY_KEYS_IN_STATS: usize = 20;

/// What `stats()` reports of hedging.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HedgeStats {
    /// Legs started while another leg of the call was in flight.
    pub sent: u64,
    /// Calls won by such a leg.
    pub won: u64,
    /// Extra legs not started for want of hedge budget (a call refused
    /// one starts no more).
    pub skipped_for_budget: u64,
}

/// A read-only view of what the router remembers.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Per deployment, group by group in config order (without `models`:
    /// per provider, in config order).
    pub providers: Vec<ProviderStats>,
    /// Router-wide hedging counts.
    pub hedges: HedgeStats,
}
