//! The router: a validated config plus what it remembers about providers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::budget::Bucket;
use crate::call::{Call, CallOptions};
use crate::config::{
    Policy, RouterConfig, AUTO_HEDGE_MIN_SAMPLES, AUTO_HEDGE_QUANTILE, HEDGE_BUDGET_CAP,
};
use crate::events::{
    CoolingCause, EventLog, HealthEvent, HealthEventKind, HealthEvents, QualityScope,
    HEALTH_EVENTS_CAPACITY,
};
use crate::health::{self, HealthConfig, ProviderHealth, State, Verdict};
use crate::latency::Reading;
use crate::pick::{weighted_order, Picker};
use crate::quality::{self, KeyState, KeyStats, QualityTable};
use crate::schema::SchemaCache;
use crate::time::Instant;

/// State shared by every call of one router.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: RouterConfig,
    health: Mutex<Vec<ProviderHealth>>,
    /// The `weighted` policy's running scores, shared by every call.
    picker: Mutex<Picker>,
    /// Schema pass rates per (provider, tenant, model).
    quality: Mutex<QualityTable>,
    /// A result was ever recorded: until then no call takes the quality
    /// lock (a router that never sees a schema pays nothing for it).
    quality_used: AtomicBool,
    /// Compiled `response_format` schemas.
    pub(crate) schemas: SchemaCache,
    hedges_sent: AtomicU64,
    hedges_won: AtomicU64,
    hedges_skipped: AtomicU64,
    /// The hedge budget's bucket, in thousandths of a token (lock-free:
    /// every hedged call touches it).
    hedge_tokens: AtomicU64,
    /// Health transitions not yet taken by the host.
    events: Mutex<EventLog>,
    /// `events` holds something: a host checks this (one load) after each
    /// call and takes the lock only when it is set. Written under the lock.
    events_pending: AtomicBool,
    pub(crate) rule: AutoRule,
}

/// How `"auto"` reads its delay from the window of the provider waited
/// on. Production uses [`AutoRule::DEFAULT`]; the other fields are the
/// alternatives `crate::auto_study` measured against it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AutoRule {
    /// The quantile ([`AUTO_HEDGE_QUANTILE`]).
    pub(crate) quantile: f64,
    /// Where in its bin it is read.
    pub(crate) reading: Reading,
    /// `Some((factor, q))`: at most `factor` times the `q` quantile.
    pub(crate) cap: Option<(f64, f64)>,
    /// A cancelled leg's time counts as a sample of its provider (the
    /// issue's rule is that it does not).
    pub(crate) censor: bool,
}

impl AutoRule {
    pub(crate) const DEFAULT: AutoRule = AutoRule {
        quantile: AUTO_HEDGE_QUANTILE,
        reading: Reading::Interpolated,
        cap: None,
        censor: false,
    };
}

/// Thousandths of a token: the hedge bucket counts in these.
const MILLI: f64 = 1000.0;

impl Shared {
    fn health(&self) -> MutexGuard<'_, Vec<ProviderHealth>> {
        // Health is advisory: a panic elsewhere must not stop routing.
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The providers a call of `tokens` (its `tpm` estimate) starting at
    /// `now` tries, in order; `true` when none was usable and these are the
    /// last resort (all of them, in the order they recover).
    pub(crate) fn candidates(&self, now: Instant, tokens: u64) -> (Vec<usize>, bool) {
        let usable = {
            let health = self.health();
            let usable = health::usable(&health, tokens, now);
            if usable.is_empty() {
                return (health::recovery_order(&health, tokens, now), true);
            }
            usable
        };
        if self.config.policy != Policy::Weighted {
            return (usable, false);
        }
        let weight = |i: usize| self.config.providers[i].weight;
        let first = self
            .picker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pick(&usable, weight);
        (weighted_order(first, &usable, weight), false)
    }

    /// `provider` is to be left alone until `until`: it asked
    /// (`Retry-After`), or its own headers said a limit is spent. Each
    /// cause keeps its own end; a cooldown that starts is logged.
    pub(crate) fn cool(&self, provider: usize, cause: CoolingCause, until: Instant, now: Instant) {
        let started = {
            let mut h = self.health();
            let slot = match cause {
                CoolingCause::RetryAfter => &mut h[provider].cooldown_until,
                CoolingCause::RateLimitHeaders => &mut h[provider].limited_until,
            };
            let started = slot.is_none_or(|t| t <= now);
            *slot = Some(slot.map_or(until, |t| t.max(until)));
            started
        };
        if started && until > now {
            self.log(provider, now, HealthEventKind::Cooling { until, cause });
        }
    }

    /// Keep a health transition of `provider` for the host.
    fn log(&self, provider: usize, at: Instant, kind: HealthEventKind) {
        self.log_scoped(provider, at, kind, None);
    }

    /// [`Shared::log`] with the tenant and model of a quality transition.
    fn log_scoped(
        &self,
        provider: usize,
        at: Instant,
        kind: HealthEventKind,
        scope: Option<QualityScope>,
    ) {
        let event = HealthEvent {
            at,
            provider_index: provider,
            provider: self.config.providers[provider].name.clone(),
            kind,
            scope,
        };
        let mut log = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        log.push(event);
        self.events_pending.store(true, Ordering::Release);
    }

    /// A call is about to send to `provider` at `now`: `Some(probe)` if it
    /// may (`probe`: it holds the half-open probe, and must report back);
    /// `None` if another call holds the probe of this half-open provider.
    /// It also takes one request and `tokens` from the provider's budgets;
    /// `None` too when they cannot take it (or when every provider was
    /// out, the budgets are overdrawn rather than refuse the last resort:
    /// `force`).
    pub(crate) fn claim(
        &self,
        provider: usize,
        now: Instant,
        tokens: u64,
        force: bool,
    ) -> Option<bool> {
        let p = &self.config.providers[provider];
        if self.config.health.is_none() && p.rpm.is_none() && p.tpm.is_none() {
            return Some(false);
        }
        let (half_open, exhausted) = {
            let mut h = self.health();
            let p = &mut h[provider];
            let mut half_open =
                self.config.health.is_some() && p.state(now) == health::State::HalfOpen;
            if half_open && !p.claim_probe(now) {
                if !force {
                    return None;
                }
                // A last resort goes even while another call holds the probe.
                half_open = false;
            }
            p.budget_before_take(now);
            if !p.take_budget(tokens, now) {
                if !force {
                    if half_open {
                        p.record(Verdict::Neutral, true, now, &HealthConfig::default(), false);
                    }
                    return None;
                }
                // The call of last resort goes anyway, and is counted.
                if let Some(b) = p.rpm.as_mut() {
                    b.adjust(-1.0, now);
                }
                if let Some(b) = p.tpm.as_mut() {
                    b.adjust(-(tokens as f64), now);
                }
            }
            (half_open, p.budget_after_take(tokens, now))
        };
        if let Some(kind) = exhausted {
            self.log(provider, now, kind);
        }
        Some(half_open)
    }

    /// Correct a `tpm` reservation of `reserved` tokens: by the answer's
    /// `used` tokens, or given back whole when the attempt did not succeed.
    pub(crate) fn settle_tokens(
        &self,
        provider: usize,
        reserved: u64,
        used: Option<u64>,
        now: Instant,
    ) {
        if reserved == 0 {
            return;
        }
        if let Some(b) = self.health()[provider].tpm.as_mut() {
            b.adjust(reserved as f64 - used.unwrap_or(0) as f64, now);
        }
    }

    /// An attempt on `provider` ended at `now`; `took`: a success's latency.
    pub(crate) fn record(
        &self,
        provider: usize,
        verdict: Verdict,
        probe: bool,
        took: Option<Duration>,
        now: Instant,
    ) {
        if verdict == Verdict::Neutral && !probe {
            return;
        }
        // Without health tracking the window still counts, for stats.
        let eject = self.config.health.is_some();
        let config = self.config.health.unwrap_or_default();
        let change = {
            let mut h = self.health();
            let p = &mut h[provider];
            let change = p.record(verdict, probe, now, &config, eject);
            if let Some(took) = took {
                p.latency.record(took, now, &config);
            }
            change
        };
        if let Some(kind) = change {
            self.log(provider, now, kind);
        }
    }

    /// The delay before a further leg of an `"auto"` hedge, while the call
    /// waits on `provider`: its p90, or `fallback` without enough samples.
    pub(crate) fn auto_hedge_delay(
        &self,
        provider: usize,
        fallback: Duration,
        now: Instant,
    ) -> Duration {
        let config = self.config.health.unwrap_or_default();
        let latency = &self.health()[provider].latency;
        if latency.count(now, &config) < AUTO_HEDGE_MIN_SAMPLES {
            return fallback;
        }
        let rule = &self.rule;
        let read = |q| latency.quantile_read(q, rule.reading, now, &config);
        let delay = read(rule.quantile).unwrap_or(fallback);
        match rule
            .cap
            .and_then(|(factor, q)| Some(read(q)?.mul_f64(factor)))
        {
            Some(cap) => delay.min(cap),
            None => delay,
        }
    }

    /// A leg on `provider` was cancelled `took` after it started: nothing
    /// to record, unless a study rule counts it as a sample.
    pub(crate) fn record_cancelled(&self, provider: usize, took: Duration, now: Instant) {
        if !self.rule.censor {
            return;
        }
        let config = self.config.health.unwrap_or_default();
        self.health()[provider].latency.record(took, now, &config);
    }

    /// A call started: it adds its share to the hedge budget.
    pub(crate) fn fund_hedges(&self) {
        let Some(per_call) = self.config.policy.hedge_budget() else {
            return;
        };
        let add = (per_call * MILLI).round() as u64;
        let cap = (HEDGE_BUDGET_CAP * MILLI) as u64;
        if add == 0 {
            return;
        }
        let _ = self
            .hedge_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t < cap).then(|| (t + add).min(cap))
            });
    }

    /// A call wants an extra leg that is not a failover: `true` if the
    /// budget pays for it (or there is none); `false` is counted.
    pub(crate) fn take_hedge_token(&self) -> bool {
        if self.config.policy.hedge_budget().is_none() {
            return true;
        }
        let one = MILLI as u64;
        let paid = self
            .hedge_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(one))
            .is_ok();
        if !paid {
            self.hedges_skipped.fetch_add(1, Ordering::Relaxed);
        }
        paid
    }

    /// A token taken for a leg that did not start goes back.
    pub(crate) fn refund_hedge_token(&self) {
        if self.config.policy.hedge_budget().is_some() {
            let cap = (HEDGE_BUDGET_CAP * MILLI) as u64;
            let _ = self
                .hedge_tokens
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                    Some((t + MILLI as u64).min(cap))
                });
        }
    }

    fn quality(&self) -> MutexGuard<'_, QualityTable> {
        self.quality.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Move the providers excluded for `tenant` and `model` to the end of
    /// `candidates`: tried only when every other one has failed (a last
    /// resort, in their order).
    pub(crate) fn quality_filter(
        &self,
        candidates: &mut [usize],
        tenant: &str,
        model: &str,
        now: Instant,
    ) {
        if self.config.quality.is_none() || !self.quality_used.load(Ordering::Acquire) {
            return;
        }
        let table = self.quality();
        if table.is_empty() {
            return;
        }
        // A stable sort: the usable keep their order, then the excluded.
        candidates.sort_by_key(|&p| table.state(tenant, model, p, now) == KeyState::Excluded);
    }

    /// A call is about to send to `provider`: `Some(probe)` if it may
    /// (`probe`: it holds the provider's quality probe for this tenant and
    /// model, and must record a result or give it back); `None` if another
    /// call holds that probe.
    pub(crate) fn quality_claim(
        &self,
        provider: usize,
        tenant: &str,
        model: &str,
        now: Instant,
    ) -> Option<bool> {
        if self.config.quality.is_none() || !self.quality_used.load(Ordering::Acquire) {
            return Some(false);
        }
        let mut table = self.quality();
        if table.is_empty() {
            return Some(false);
        }
        match table.state(tenant, model, provider, now) {
            KeyState::Ok => Some(false),
            // Only as a last resort (every provider excluded).
            KeyState::Excluded => Some(false),
            KeyState::Probing => table
                .claim_probe(tenant, model, provider, now)
                .then_some(true),
        }
    }

    /// One validation result of `provider` for `tenant` and `model`.
    pub(crate) fn quality_record(
        &self,
        provider: usize,
        tenant: &str,
        model: &str,
        passed: bool,
        now: Instant,
    ) {
        if let Some(config) = self.config.quality {
            let transition = self
                .quality()
                .record(tenant, model, provider, passed, now, &config);
            self.quality_used.store(true, Ordering::Release);
            if let Some(kind) = transition {
                let scope = QualityScope {
                    tenant: tenant.to_owned(),
                    model: model.to_owned(),
                };
                self.log_scoped(provider, now, kind, Some(scope));
            }
        }
    }

    /// A quality probe ended without a result.
    pub(crate) fn quality_release(&self, provider: usize, tenant: &str, model: &str) {
        self.quality().release_probe(tenant, model, provider);
    }

    /// A leg was started while another was in flight (a hedge).
    pub(crate) fn hedge_sent(&self) {
        self.hedges_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A hedge leg won its call.
    pub(crate) fn hedge_won(&self) {
        self.hedges_won.fetch_add(1, Ordering::Relaxed);
    }
}

/// What `stats()` reports of one provider.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderStats {
    /// The provider's name.
    pub name: String,
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
    /// Per provider, in config order.
    pub providers: Vec<ProviderStats>,
    /// Router-wide hedging counts.
    pub hedges: HedgeStats,
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
        Self::with_rule(config, AutoRule::DEFAULT)
    }

    /// A router whose `"auto"` hedges follow `rule` (the study's variants).
    pub(crate) fn with_rule(config: RouterConfig, rule: AutoRule) -> Router {
        let health = config
            .providers
            .iter()
            .map(|p| ProviderHealth::with_budgets(p.rpm, p.tpm))
            .collect();
        let health = Mutex::new(health);
        let providers = config.providers.len();
        let picker = Mutex::new(Picker::new(providers));
        Router {
            shared: Arc::new(Shared {
                config,
                health,
                picker,
                quality: Mutex::new(QualityTable::new(providers)),
                quality_used: AtomicBool::new(false),
                schemas: SchemaCache::default(),
                hedges_sent: AtomicU64::new(0),
                hedges_won: AtomicU64::new(0),
                hedges_skipped: AtomicU64::new(0),
                // Full at the start, as gRPC's retry throttle: a new router
                // may hedge its first calls.
                hedge_tokens: AtomicU64::new((HEDGE_BUDGET_CAP * MILLI) as u64),
                events: Mutex::new(EventLog::new(HEALTH_EVENTS_CAPACITY)),
                events_pending: AtomicBool::new(false),
                rule,
            }),
        }
    }

    /// Spend every token of the hedge budget (the study's empty start).
    #[cfg(test)]
    pub(crate) fn empty_hedge_budget(&self) {
        self.shared.hedge_tokens.store(0, Ordering::Relaxed);
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

    /// What the router remembers, as of `now`: each provider's state,
    /// window counts, latency percentiles and ejections; hedging counts.
    pub fn stats(&self, now: Instant) -> Stats {
        let config = self.shared.config.health.unwrap_or_default();
        let quality: Vec<Vec<KeyStats>> = {
            let table = self.shared.quality();
            (0..self.shared.config.providers.len())
                .map(|i| table.stats(i, now, QUALITY_KEYS_IN_STATS))
                .collect()
        };
        let mut quality = quality.into_iter();
        let health = self.shared.health();
        let providers = self
            .shared
            .config
            .providers
            .iter()
            .zip(health.iter())
            .map(|(p, h)| {
                let (successes, soft_failures) = h.window(now, &config);
                let q = |x| h.latency.quantile(x, now, &config);
                let latency = match (q(0.5), q(0.9), q(0.95), q(0.99)) {
                    (Some(a), Some(b), Some(c), Some(d)) => Some([a, b, c, d]),
                    _ => None,
                };
                let left = |b: &Option<Bucket>| b.clone().map(|mut b| b.available(now).max(0.0));
                ProviderStats {
                    rpm_left: left(&h.rpm),
                    tpm_left: left(&h.tpm),
                    name: p.name.clone(),
                    state: h.state(now),
                    successes,
                    soft_failures,
                    latency,
                    ejections: h.ejections,
                    quality: quality.next().unwrap_or_default(),
                }
            })
            .collect();
        Stats {
            providers,
            hedges: HedgeStats {
                sent: self.shared.hedges_sent.load(Ordering::Relaxed),
                won: self.shared.hedges_won.load(Ordering::Relaxed),
                skipped_for_budget: self.shared.hedges_skipped.load(Ordering::Relaxed),
            },
        }
    }

    /// Start a call with per-call options (the tenant of quality-aware
    /// routing).
    pub fn start_call_with(&self, body: Value, options: CallOptions, now: Instant) -> Call {
        Call::with_options(Arc::clone(&self.shared), body, options, now)
    }

    /// A result the caller checked itself (pydantic, a test suite): the
    /// answer `provider` gave for `tenant` and `model` passed validation or
    /// not. Counts as the core's own checks do. An error says why it was
    /// not recorded: quality tracking is off, no such provider, or a tenant
    /// or model a call could not have ([`crate::quality::check_tenant`],
    /// [`crate::quality::check_model`]; hosts check those first, to refuse
    /// them as an invalid request).
    pub fn record_quality(
        &self,
        provider: &str,
        tenant: &str,
        model: &str,
        passed: bool,
        now: Instant,
    ) -> Result<(), String> {
        quality::check_tenant(tenant)?;
        quality::check_model(model)?;
        if self.shared.config.quality.is_none() {
            return Err(
                "quality-aware routing is off (the config says \"quality\": false)".to_owned(),
            );
        }
        let index = self
            .shared
            .config
            .providers
            .iter()
            .position(|p| p.name == provider)
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .shared
                    .config
                    .providers
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                // The name is repeated only when it is short: it may be anything.
                if provider.len() <= 64 {
                    format!("no provider named {provider:?}; the providers are {names:?}")
                } else {
                    format!("no such provider; the providers are {names:?}")
                }
            })?;
        self.shared
            .quality_record(index, tenant, model, passed, now);
        Ok(())
    }

    /// Whether health transitions wait to be taken: one atomic load, cheap
    /// enough to check after every call.
    pub fn has_health_events(&self) -> bool {
        self.shared.events_pending.load(Ordering::Acquire)
    }

    /// The health transitions since the last take (ejections, readmissions,
    /// cooldowns, budgets run out; see [`crate::events`]), oldest first,
    /// with the number lost to the log's bound. Each transition is handed
    /// out once, to one caller. Takes no lock when nothing is pending.
    pub fn take_health_events(&self) -> HealthEvents {
        if !self.has_health_events() {
            return HealthEvents::default();
        }
        let mut log = self
            .shared
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.shared.events_pending.store(false, Ordering::Release);
        log.take()
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
