//! State shared by every call of one router, reached through methods named
//! for what a call (or the router's own API) needs: no caller takes its
//! locks or touches its counters directly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::budget::{Bucket, HedgeBudget};
use crate::config::{ConfigError, Policy, RouterConfig, AUTO_HEDGE_MIN_SAMPLES};
use crate::credentials::{CredentialCell, Credentials};
use crate::events::{
    CoolingCause, EventLog, HealthEvent, HealthEventKind, HealthEvents, QualityScope,
    HEALTH_EVENTS_CAPACITY,
};
use crate::explain::{Reason, Why};
use crate::health::{self, ProviderHealth, Verdict};
use crate::latency::AutoRule;
use crate::pick::{weighted_order, Picker};
use crate::quality::{KeyState, KeyStats, QualityConfig, QualityTable};
use crate::schema::{Expect, SchemaCache};
use crate::stats::{HedgeStats, ProviderStats, Stats, QUALITY_KEYS_IN_STATS};
use crate::time::Instant;

/// State shared by every call of one router.
#[derive(Debug)]
pub(crate) struct Shared {
    config: RouterConfig,
    /// Per slot of the routing table (provider and model sent).
    health: Mutex<Vec<ProviderHealth>>,
    /// The `weighted` policy's running scores (per deployment), shared by
    /// every call.
    picker: Mutex<Picker>,
    /// Schema pass rates per (slot, tenant, model).
    quality: Mutex<QualityTable>,
    /// A result was ever recorded: until then no call takes the quality
    /// lock (a router that never sees a schema pays nothing for it).
    quality_used: AtomicBool,
    /// Compiled `response_format` schemas.
    schemas: SchemaCache,
    /// Each provider's key (the config's, or one set since) and the
    /// search for its credentials in upstream text.
    credentials: CredentialCell,
    hedges_sent: AtomicU64,
    hedges_won: AtomicU64,
    hedges_skipped: AtomicU64,
    /// Retry waits drawn so far: the counter of each jitter draw.
    retry_draws: AtomicU64,
    /// Per group, what pays for extra hedged legs; `None`: hedging is not
    /// limited.
    hedge_budgets: Vec<Option<HedgeBudget>>,
    /// Health transitions not yet taken by the host.
    events: Mutex<EventLog>,
    /// `events` holds something: a host checks this (one load) after each
    /// call and takes the lock only when it is set. Written under the lock.
    events_pending: AtomicBool,
    /// The study's `"auto"` rule (production reads [`AutoRule::DEFAULT`]).
    #[cfg(feature = "study")]
    rule: AutoRule,
}

impl Shared {
    /// The shared state of a new router over `config`.
    pub(crate) fn new(config: RouterConfig) -> Shared {
        let table = &config.table;
        let health = table
            .slots
            .iter()
            .map(|s| ProviderHealth::with_budgets(s.rpm, s.tpm))
            .collect();
        Shared {
            health: Mutex::new(health),
            picker: Mutex::new(Picker::new(table.deployments.len())),
            quality: Mutex::new(QualityTable::new(table.slots.len())),
            quality_used: AtomicBool::new(false),
            schemas: SchemaCache::default(),
            credentials: CredentialCell::new(&config),
            hedges_sent: AtomicU64::new(0),
            hedges_won: AtomicU64::new(0),
            hedges_skipped: AtomicU64::new(0),
            retry_draws: AtomicU64::new(0),
            hedge_budgets: table
                .groups
                .iter()
                .map(|g| g.policy.hedge_budget().map(HedgeBudget::new))
                .collect(),
            events: Mutex::new(EventLog::new(HEALTH_EVENTS_CAPACITY)),
            events_pending: AtomicBool::new(false),
            #[cfg(feature = "study")]
            rule: AutoRule::DEFAULT,
            config,
        }
    }

    /// The study's variant: `"auto"` hedges follow `rule`.
    #[cfg(feature = "study")]
    pub(crate) fn with_rule(config: RouterConfig, rule: AutoRule) -> Shared {
        Shared {
            rule,
            ..Shared::new(config)
        }
    }

    /// How `"auto"` reads its delay: a constant, but in the study.
    fn auto_rule(&self) -> AutoRule {
        #[cfg(feature = "study")]
        return self.rule;
        #[cfg(not(feature = "study"))]
        AutoRule::DEFAULT
    }

    /// The credentials a call starting now keeps (`None`: the config's).
    pub(crate) fn credentials_now(&self) -> Option<Arc<Credentials>> {
        self.credentials.snapshot()
    }

    /// The credentials of a call's snapshot (`None`: the config's).
    pub(crate) fn credentials<'a>(&'a self, snapshot: Option<&'a Credentials>) -> &'a Credentials {
        self.credentials.of(snapshot)
    }

    /// Provider `provider`'s key is `key` for calls that start from now on.
    pub(crate) fn set_key(&self, provider: usize, key: &str) -> Result<(), ConfigError> {
        self.credentials.set_key(&self.config, provider, key)
    }

    /// The config the router was built with.
    pub(crate) fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// What a request's `response_format` asks of its answer, if it can be
    /// checked (compiled once per schema).
    pub(crate) fn expect(&self, body: &Map<String, Value>) -> Result<Option<Expect>, String> {
        self.schemas.expect(body)
    }

    fn health(&self) -> MutexGuard<'_, Vec<ProviderHealth>> {
        // Health is advisory: a panic elsewhere must not stop routing.
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The deployments of `group` a call of `tokens` (its `tpm` estimate)
    /// starting at `now` tries, in order; `true` when none was usable and
    /// these are the last resort (all of them, in the order they recover).
    /// With `why` (`explain`), each one left out or placed last is noted
    /// there, and the `weighted` picker is read, not advanced.
    pub(crate) fn candidates(
        &self,
        group: usize,
        now: Instant,
        tokens: u64,
        carries: &dyn Fn(usize) -> bool,
        mut why: Option<&mut Why>,
    ) -> (Vec<usize>, bool) {
        let table = &self.config.table;
        let members = &table.groups[group].deployments;
        let usable = {
            let health = self.health();
            let mut usable = Vec::with_capacity(members.len());
            for &d in members {
                if !carries(d) {
                    if let Some(why) = why.as_deref_mut() {
                        why.left_out.push((d, Reason::UnsupportedParams));
                    }
                    continue;
                }
                match health[table.deployments[d].slot].blocked(tokens, now) {
                    None => usable.push(d),
                    Some(reason) => {
                        if let Some(why) = why.as_deref_mut() {
                            why.left_out.push((d, reason));
                        }
                    }
                }
            }
            if usable.is_empty() {
                let mut order: Vec<usize> =
                    members.iter().copied().filter(|&d| carries(d)).collect();
                // Stable: equal times keep config order.
                order.sort_by_key(|&d| health[table.deployments[d].slot].usable_from(tokens, now));
                if let Some(why) = why {
                    // Passed over, or tried as a last resort (then what
                    // kept each out is its note): `plan` decides.
                    why.exhausted.push(group);
                }
                return (order, true);
            }
            usable
        };
        if table.groups[group].policy != Policy::Weighted {
            return (usable, false);
        }
        let weight = |d: usize| table.deployments[d].weight;
        let first = {
            let mut picker = self.picker.lock().unwrap_or_else(PoisonError::into_inner);
            match why {
                None => picker.pick(&usable, weight),
                Some(why) => {
                    let zero = usable.iter().filter(|&&d| weight(d) == 0);
                    why.notes.extend(zero.map(|&d| (d, Reason::WeightZero)));
                    picker.peek(&usable, weight)
                }
            }
        };
        (weighted_order(first, &usable, weight), false)
    }

    /// Whether slot `slot` could take a call of `tokens` at `now` (not
    /// cooling, ejected or out of budget): a retry there waits for this.
    pub(crate) fn is_usable(&self, slot: usize, now: Instant, tokens: u64) -> bool {
        let health = self.health();
        health[slot].usable(now) && health[slot].within_budget(tokens, now)
    }

    /// The jitter of a retry's wait drawn at `now`: the router's next
    /// draw, mixed with the time so that routers in different processes
    /// (each counting from zero) do not retry in step, while a run on a
    /// virtual clock stays reproducible.
    pub(crate) fn retry_jitter(&self, now: Instant) -> u64 {
        let draw = self.retry_draws.fetch_add(1, Ordering::Relaxed);
        crate::retry::jitter(now.as_micros(), draw)
    }

    /// Slot `slot` (a provider and model) is to be left alone until
    /// `until`: it asked (`Retry-After`), or its own headers said a limit
    /// is spent. Each cause keeps its own end; a cooldown that starts is
    /// logged.
    pub(crate) fn cool(&self, slot: usize, cause: CoolingCause, until: Instant, now: Instant) {
        let provider = slot;
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

    /// Keep a health transition of slot `slot` for the host.
    fn log(&self, slot: usize, at: Instant, kind: HealthEventKind) {
        self.log_scoped(slot, at, kind, None);
    }

    /// [`Shared::log`] with the tenant and model of a quality transition.
    fn log_scoped(
        &self,
        slot: usize,
        at: Instant,
        kind: HealthEventKind,
        scope: Option<QualityScope>,
    ) {
        let table = &self.config.table;
        let s = &table.slots[slot];
        let event = HealthEvent {
            at,
            provider_index: s.provider,
            provider: self.config.providers[s.provider].name.clone(),
            model: s.model.clone().filter(|_| table.declared),
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
        slot: usize,
        now: Instant,
        tokens: u64,
        force: bool,
    ) -> Option<bool> {
        let s = &self.config.table.slots[slot];
        if self.config.health.is_none() && s.rpm.is_none() && s.tpm.is_none() {
            return Some(false);
        }
        let (half_open, exhausted) = {
            let mut h = self.health();
            let p = &mut h[slot];
            // What refuses it is the one rule `explain` reads too.
            if p.claim_refusal(tokens, now, force).is_some() {
                return None;
            }
            let mut half_open =
                self.config.health.is_some() && p.state(now) == health::State::HalfOpen;
            if half_open && !p.claim_probe(now) {
                // A last resort goes even while another call holds the probe.
                half_open = false;
            }
            p.budget_before_take(now);
            if !p.take_budget(tokens, now) {
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
            self.log(slot, now, kind);
        }
        Some(half_open)
    }

    /// Correct a `tpm` reservation of `reserved` tokens: by the answer's
    /// `used` tokens, or given back whole when the attempt did not succeed.
    pub(crate) fn settle_tokens(
        &self,
        slot: usize,
        reserved: u64,
        used: Option<u64>,
        now: Instant,
    ) {
        if reserved == 0 {
            return;
        }
        if let Some(b) = self.health()[slot].tpm.as_mut() {
            b.adjust(reserved as f64 - used.unwrap_or(0) as f64, now);
        }
    }

    /// An attempt on slot `slot` ended at `now`; `took`: a success's latency.
    pub(crate) fn record(
        &self,
        slot: usize,
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
            let p = &mut h[slot];
            let change = p.record(verdict, probe, now, &config, eject);
            if let Some(took) = took {
                p.latency.record(took, now, &config);
            }
            change
        };
        if let Some(kind) = change {
            self.log(slot, now, kind);
        }
    }

    /// The connection to `provider` failed on slot `seen`: a soft failure
    /// for every other slot of the provider too (they share the
    /// connection).
    pub(crate) fn record_connection_failure(&self, provider: usize, seen: usize, now: Instant) {
        let others: Vec<usize> = self
            .config
            .table
            .slots_of(provider)
            .filter(|&s| s != seen)
            .collect();
        for slot in others {
            self.record(slot, Verdict::Failure, false, None, now);
        }
    }

    /// The delay before a further leg of an `"auto"` hedge, while the call
    /// waits on slot `slot`: its p90, or `fallback` without enough samples.
    pub(crate) fn auto_hedge_delay(
        &self,
        slot: usize,
        fallback: Duration,
        now: Instant,
    ) -> Duration {
        let config = self.config.health.unwrap_or_default();
        let latency = &self.health()[slot].latency;
        if latency.count(now, &config) < AUTO_HEDGE_MIN_SAMPLES {
            return fallback;
        }
        let rule = self.auto_rule();
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

    /// A leg on slot `slot` was cancelled `took` after it started: nothing
    /// to record, unless a study rule counts it as a sample.
    pub(crate) fn record_cancelled(&self, slot: usize, took: Duration, now: Instant) {
        if !self.auto_rule().censor {
            return;
        }
        let config = self.config.health.unwrap_or_default();
        self.health()[slot].latency.record(took, now, &config);
    }

    /// A call of `group` started: it adds its share to the group's hedge
    /// budget.
    pub(crate) fn fund_hedges(&self, group: usize) {
        if let Some(budget) = &self.hedge_budgets[group] {
            budget.deposit();
        }
    }

    /// A call of `group` wants an extra leg that is not a failover: `true`
    /// if the group's budget pays for it (or there is none); `false` is
    /// counted.
    pub(crate) fn take_hedge_token(&self, group: usize) -> bool {
        let paid = self.hedge_budgets[group]
            .as_ref()
            .is_none_or(HedgeBudget::withdraw);
        if !paid {
            self.hedges_skipped.fetch_add(1, Ordering::Relaxed);
        }
        paid
    }

    /// A token taken for a leg that did not start goes back.
    pub(crate) fn refund_hedge_token(&self, group: usize) {
        if let Some(budget) = &self.hedge_budgets[group] {
            budget.refund();
        }
    }

    /// Spend every token of every hedge budget (the study's empty start).
    #[cfg(feature = "study")]
    pub(crate) fn empty_hedge_budget(&self) {
        for budget in self.hedge_budgets.iter().flatten() {
            budget.drain();
        }
    }

    fn quality(&self) -> MutexGuard<'_, QualityTable> {
        self.quality.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Move the deployments excluded for `tenant` and `model` to the end
    /// of `candidates`: tried only when every other one has failed (a last
    /// resort, in their order). Only for a call whose group tracks quality.
    /// With `why` (`explain`), each one moved is noted there.
    pub(crate) fn quality_filter(
        &self,
        candidates: &mut [usize],
        tenant: &str,
        model: &str,
        now: Instant,
        why: Option<&mut Why>,
    ) {
        if !self.quality_used.load(Ordering::Acquire) {
            return;
        }
        let table = self.quality();
        if table.is_empty() {
            return;
        }
        let slot = |d: usize| self.config.table.deployments[d].slot;
        // A stable sort: the usable keep their order, then the excluded.
        candidates.sort_by_key(|&d| table.state(tenant, model, slot(d), now) == KeyState::Excluded);
        if let Some(why) = why {
            for &d in candidates.iter() {
                if let Some(until) = table.excluded_until(tenant, model, slot(d), now) {
                    why.notes.push((d, Reason::QualityExcluded(Some(until))));
                }
            }
        }
    }

    /// What would make a call skip slot `slot` when its turn comes, read
    /// without claiming anything: the health claim ([`Shared::claim`]) or
    /// the quality probe for `quality_key` ([`Shared::quality_claim`]).
    pub(crate) fn claim_refusal(
        &self,
        slot: usize,
        quality_key: Option<&(String, String)>,
        now: Instant,
        tokens: u64,
        force: bool,
    ) -> Option<Reason> {
        if let Some((tenant, model)) = quality_key {
            if self.quality_used.load(Ordering::Acquire)
                && self.quality().probe_held(tenant, model, slot, now)
            {
                return Some(Reason::QualityProbeHeld);
            }
        }
        let s = &self.config.table.slots[slot];
        if self.config.health.is_none() && s.rpm.is_none() && s.tpm.is_none() {
            return None;
        }
        // Without health tracking nothing is ejected, so nothing is
        // half-open: only the budgets can refuse.
        self.health()[slot].claim_refusal(tokens, now, force)
    }

    /// A call is about to send to slot `slot`: `Some(probe)` if it may
    /// (`probe`: it holds the provider's quality probe for this tenant and
    /// model, and must record a result or give it back); `None` if another
    /// call holds that probe.
    pub(crate) fn quality_claim(
        &self,
        slot: usize,
        tenant: &str,
        model: &str,
        now: Instant,
    ) -> Option<bool> {
        if !self.quality_used.load(Ordering::Acquire) {
            return Some(false);
        }
        let mut table = self.quality();
        if table.is_empty() {
            return Some(false);
        }
        match table.state(tenant, model, slot, now) {
            KeyState::Ok => Some(false),
            // Only as a last resort (every provider excluded).
            KeyState::Excluded => Some(false),
            KeyState::Probing => table.claim_probe(tenant, model, slot, now).then_some(true),
        }
    }

    /// One validation result of slot `slot` for `tenant` and `model`,
    /// judged by `config` (its group's quality settings).
    pub(crate) fn quality_record(
        &self,
        slot: usize,
        config: &QualityConfig,
        tenant: &str,
        model: &str,
        passed: bool,
        now: Instant,
    ) {
        let transition = self
            .quality()
            .record(tenant, model, slot, passed, now, config);
        self.quality_used.store(true, Ordering::Release);
        if let Some(kind) = transition {
            let scope = QualityScope {
                tenant: tenant.to_owned(),
                model: model.to_owned(),
            };
            self.log_scoped(slot, now, kind, Some(scope));
        }
    }

    /// A quality probe ended without a result.
    pub(crate) fn quality_release(&self, slot: usize, tenant: &str, model: &str) {
        self.quality().release_probe(tenant, model, slot);
    }

    /// A leg was started while another was in flight (a hedge).
    pub(crate) fn hedge_sent(&self) {
        self.hedges_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A hedge leg won its call.
    pub(crate) fn hedge_won(&self) {
        self.hedges_won.fetch_add(1, Ordering::Relaxed);
    }

    /// What the router remembers, as of `now` (see [`Stats`]).
    pub(crate) fn stats(&self, now: Instant) -> Stats {
        let config = self.config.health.unwrap_or_default();
        let table = &self.config.table;
        let quality: Vec<Vec<KeyStats>> = {
            let q = self.quality();
            (0..table.slots.len())
                .map(|i| q.stats(i, now, QUALITY_KEYS_IN_STATS))
                .collect()
        };
        let health = self.health();
        // One entry per deployment, group by group; deployments sharing a
        // slot report the same numbers.
        let providers = table
            .deployments
            .iter()
            .map(|d| {
                let h = &health[d.slot];
                let p = &self.config.providers[d.provider];
                let (successes, soft_failures) = h.window(now, &config);
                let latency = h.latency.quantiles([0.5, 0.9, 0.95, 0.99], now, &config);
                let left = |b: &Option<Bucket>| b.clone().map(|mut b| b.available(now).max(0.0));
                ProviderStats {
                    rpm_left: left(&h.rpm),
                    tpm_left: left(&h.tpm),
                    name: p.name.clone(),
                    group: table.declared.then(|| table.groups[d.group].name.clone()),
                    model: table.slots[d.slot].model.clone().filter(|_| table.declared),
                    state: h.state(now),
                    successes,
                    soft_failures,
                    latency,
                    ejections: h.ejections,
                    quality: quality[d.slot].clone(),
                }
            })
            .collect();
        Stats {
            providers,
            hedges: HedgeStats {
                sent: self.hedges_sent.load(Ordering::Relaxed),
                won: self.hedges_won.load(Ordering::Relaxed),
                skipped_for_budget: self.hedges_skipped.load(Ordering::Relaxed),
            },
        }
    }

    /// Whether health transitions wait to be taken (one atomic load).
    pub(crate) fn has_events(&self) -> bool {
        self.events_pending.load(Ordering::Acquire)
    }

    /// The health transitions since the last take; no lock when nothing is
    /// pending.
    pub(crate) fn take_events(&self) -> HealthEvents {
        if !self.has_events() {
            return HealthEvents::default();
        }
        let mut log = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        self.events_pending.store(false, Ordering::Release);
        log.take()
    }

    /// When each slot's cooldown ends, if it is cooling at `now` (without
    /// `models`, a slot is a provider).
    pub(crate) fn cooldowns(&self, now: Instant) -> Vec<Option<Instant>> {
        self.health()
            .iter()
            .map(|h| h.cooldown_until.filter(|&t| t > now))
            .collect()
    }
}
