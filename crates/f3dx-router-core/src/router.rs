//! The router: a validated config plus what it remembers about providers.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;

use crate::call::Call;
use crate::config::{Policy, RouterConfig};
use crate::health::{self, ProviderHealth, Verdict};
use crate::pick::{weighted_order, Picker};
use crate::time::Instant;

/// State shared by every call of one router.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: RouterConfig,
    health: Mutex<Vec<ProviderHealth>>,
    /// The `weighted` policy's running scores, shared by every call.
    picker: Mutex<Picker>,
}

impl Shared {
    fn health(&self) -> MutexGuard<'_, Vec<ProviderHealth>> {
        // Health is advisory: a panic elsewhere must not stop routing.
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The providers a call starting at `now` tries, in order.
    pub(crate) fn candidates(&self, now: Instant) -> Vec<usize> {
        let usable = {
            let health = self.health();
            let usable = health::usable(&health, now);
            if usable.is_empty() {
                return health::recovery_order(&health);
            }
            usable
        };
        if self.config.policy != Policy::Weighted {
            return usable;
        }
        let weight = |i: usize| self.config.providers[i].weight;
        let first = self
            .picker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pick(&usable, weight);
        weighted_order(first, &usable, weight)
    }

    pub(crate) fn cool_down(&self, provider: usize, until: Instant) {
        let mut h = self.health();
        let slot = &mut h[provider].cooldown_until;
        *slot = Some(slot.map_or(until, |t| t.max(until)));
    }

    /// A call is about to send to `provider` at `now`: `Some(probe)` if it
    /// may (`probe`: it holds the half-open probe, and must report back);
    /// `None` if another call holds the probe of this half-open provider.
    pub(crate) fn claim(&self, provider: usize, now: Instant) -> Option<bool> {
        if self.config.health.is_none() {
            return Some(false);
        }
        let mut h = self.health();
        let p = &mut h[provider];
        let half_open = p.state(now) == health::State::HalfOpen;
        p.claim_probe(now).then_some(half_open)
    }

    /// An attempt on `provider` ended at `now`.
    pub(crate) fn record(&self, provider: usize, verdict: Verdict, probe: bool, now: Instant) {
        let Some(config) = &self.config.health else {
            return;
        };
        if verdict == Verdict::Neutral && !probe {
            return;
        }
        self.health()[provider].record(verdict, probe, now, config);
    }
}

/// A router. Cheap to clone; clones share provider health. Safe to use from
/// many threads at once.
#[derive(Clone, Debug)]
pub struct Router {
    shared: Arc<Shared>,
}

impl Router {
    /// A router over a validated config.
    pub fn new(config: RouterConfig) -> Router {
        let health = Mutex::new(vec![ProviderHealth::default(); config.providers.len()]);
        let picker = Mutex::new(Picker::new(config.providers.len()));
        Router {
            shared: Arc::new(Shared {
                config,
                health,
                picker,
            }),
        }
    }

    /// The config this router was built with.
    pub fn config(&self) -> &RouterConfig {
        &self.shared.config
    }

    /// Start routing one OpenAI chat-completions request at `now`. Drive the
    /// returned [`Call`] with its `poll_*` and `handle_*` methods, or hand it
    /// to [`crate::drive`].
    pub fn start_call(&self, body: Value, now: Instant) -> Call {
        Call::new(Arc::clone(&self.shared), body, now)
    }

    /// When each provider's cooldown ends, if it is cooling at `now`.
    pub fn cooldowns(&self, now: Instant) -> Vec<Option<Instant>> {
        self.shared
            .health()
            .iter()
            .map(|h| h.cooldown_until.filter(|&t| t > now))
            .collect()
    }
}
