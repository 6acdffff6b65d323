//! What the router remembers about each provider between calls: the
//! `Retry-After` cooldown, and (unless health tracking is off) a sliding
//! window of outcomes that ejects a failing provider and readmits it
//! through a single half-open probe.
//!
//! ```text
//!   healthy --(N soft failures in a row, or error rate >= max over
//!    ^         >= min_requests in the window)--> ejected
//!    |                                             | ejection_s x streak
//!    |                                             v (capped)
//!    +---- the probe succeeds (fresh window) --- half_open: one probe
//!                                                  | the probe fails
//!                                                  +--> ejected (longer)
//! ```
//!
//! Plain data, advanced by the `now` each event carries: a window rotates,
//! an ejection ends, lazily, at the next look. Nothing runs between calls.

use crate::budget::Bucket;
use crate::config::HealthConfig;
use crate::events::{BudgetKind, EjectReason, HealthEventKind};
use crate::explain::Reason;
use crate::latency::LatencyWindow;
use crate::time::Instant;

/// What an attempt's end says about its provider's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It answered.
    Success,
    /// A soft failure: 5xx, 408, 429, a transport fault, a timeout, an
    /// undecodable answer.
    Failure,
    /// Says nothing about health (a hard 4xx, a cancelled leg): only a
    /// probe it held is given back.
    Neutral,
}

/// Where a provider stands, as `stats()` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Usable.
    Healthy,
    /// Asked to be left alone (`Retry-After`), until the instant.
    Cooling(Instant),
    /// Routed around until the instant.
    Ejected(Instant),
    /// Its ejection ended: the next call may send it one probe.
    HalfOpen,
    /// Its own rate-limit headers said a limit is spent, until the instant.
    RateLimited(Instant),
}

/// Outcomes over a sliding window of time buckets.
#[derive(Clone, Debug, Default)]
struct Window {
    /// `(bucket number, successes, failures)`, a ring.
    slots: Vec<(u64, u32, u32)>,
}

impl Window {
    fn bucket(now: Instant, config: &HealthConfig) -> u64 {
        let width = (config.window.as_micros() as u64 / u64::from(config.buckets.max(1))).max(1);
        now.as_micros() / width
    }

    fn record(&mut self, ok: bool, now: Instant, config: &HealthConfig) {
        let n = config.buckets.max(1) as usize;
        if self.slots.len() != n {
            self.slots = vec![(u64::MAX, 0, 0); n];
        }
        let b = Self::bucket(now, config);
        let slot = &mut self.slots[(b % n as u64) as usize];
        if slot.0 != b {
            *slot = (b, 0, 0);
        }
        if ok {
            slot.1 = slot.1.saturating_add(1);
        } else {
            slot.2 = slot.2.saturating_add(1);
        }
    }

    /// `(successes, failures)` within the window at `now`.
    fn counts(&self, now: Instant, config: &HealthConfig) -> (u32, u32) {
        let b = Self::bucket(now, config);
        let oldest = b.saturating_sub(u64::from(config.buckets.max(1)) - 1);
        self.slots
            .iter()
            .filter(|(at, _, _)| *at != u64::MAX && (oldest..=b).contains(at))
            .fold((0u32, 0u32), |(s, f), (_, ok, fail)| {
                (s.saturating_add(*ok), f.saturating_add(*fail))
            })
    }
}

/// Per-provider state shared by all calls of a router.
#[derive(Clone, Debug, Default)]
pub struct ProviderHealth {
    /// Set by a `Retry-After`: the provider asked not to be called before.
    pub cooldown_until: Option<Instant>,
    /// Set by the provider's rate-limit headers: a limit is spent until.
    pub limited_until: Option<Instant>,
    window: Window,
    /// Soft failures in a row.
    consecutive: u32,
    /// While ejected: when the ejection ends. Past it (and until a probe
    /// decides) the provider is half-open.
    ejected_until: Option<Instant>,
    /// Ejections in a row (the next lasts one `ejection` longer).
    streak: u32,
    /// Ejections since the router started.
    pub ejections: u64,
    /// A half-open probe is in flight.
    probing: bool,
    /// Recent successful latencies.
    pub latency: LatencyWindow,
    /// Requests-per-minute budget.
    pub rpm: Option<Bucket>,
    /// Tokens-per-minute budget.
    pub tpm: Option<Bucket>,
    /// A budget ran out and that was reported; reported again only after
    /// the budgets were seen at least half full.
    budget_out: bool,
}

impl ProviderHealth {
    /// A fresh provider with these per-minute budgets.
    pub fn with_budgets(rpm: Option<u64>, tpm: Option<u64>) -> Self {
        ProviderHealth {
            rpm: rpm.map(Bucket::new),
            tpm: tpm.map(Bucket::new),
            ..ProviderHealth::default()
        }
    }

    /// Where the provider stands at `now`.
    pub fn state(&self, now: Instant) -> State {
        match self.ejected_until {
            Some(t) if t > now => return State::Ejected(t),
            Some(_) => return State::HalfOpen,
            None => {}
        }
        if let Some(t) = self.limited_until.filter(|&t| t > now) {
            return State::RateLimited(t);
        }
        if let Some(wait) = self.budget_wait(1, now).filter(|w| !w.is_zero()) {
            return State::RateLimited(now + wait);
        }
        match self.cooldown_until {
            Some(t) if t > now => State::Cooling(t),
            _ => State::Healthy,
        }
    }

    /// How long until its budgets can take one request and `tokens`
    /// (`None` without budgets). Reads the buckets without taking.
    fn budget_wait(&self, tokens: u64, now: Instant) -> Option<std::time::Duration> {
        let mut rpm = self.rpm.clone();
        let mut tpm = self.tpm.clone();
        let r = rpm.as_mut().map(|b| b.wait_for(1.0, now));
        let t = tpm.as_mut().map(|b| b.wait_for(tokens as f64, now));
        r.max(t)
    }

    /// Whether its budgets can take a call of `tokens` at `now`.
    pub fn within_budget(&self, tokens: u64, now: Instant) -> bool {
        self.budget_wait(tokens, now).is_none_or(|w| w.is_zero())
    }

    /// Take one request and `tokens` from its budgets; `false` (nothing
    /// taken) when they cannot.
    pub fn take_budget(&mut self, tokens: u64, now: Instant) -> bool {
        if !self.within_budget(tokens, now) {
            return false;
        }
        if let Some(b) = self.rpm.as_mut() {
            b.take(1.0, now);
        }
        if let Some(b) = self.tpm.as_mut() {
            b.take(tokens as f64, now);
        }
        true
    }

    /// Whether a call starting at `now` may try it: healthy, or half-open
    /// with no probe in flight (the call must then claim the probe).
    pub fn usable(&self, now: Instant) -> bool {
        let waiting = self
            .cooldown_until
            .max(self.limited_until)
            .is_some_and(|t| t > now);
        match self.state(now) {
            State::Healthy => true,
            State::HalfOpen => !self.probing && !waiting,
            State::Cooling(_) | State::Ejected(_) | State::RateLimited(_) => false,
        }
    }

    /// Why a call of `tokens` starting at `now` may not try it (`None`: it
    /// may): [`ProviderHealth::usable`] and within its budgets, with the
    /// reason a caller of `explain` reads.
    pub(crate) fn blocked(&self, tokens: u64, now: Instant) -> Option<Reason> {
        match self.state(now) {
            State::Healthy => {}
            State::HalfOpen if self.probing => return Some(Reason::ProbeHeld),
            State::HalfOpen => {
                if let Some(t) = self.cooldown_until.filter(|&t| t > now) {
                    return Some(Reason::Cooling(t));
                }
                if let Some(t) = self.limited_until.filter(|&t| t > now) {
                    return Some(Reason::RateLimited(t, None));
                }
            }
            State::Cooling(t) => return Some(Reason::Cooling(t)),
            State::Ejected(t) => return Some(Reason::Ejected(t)),
            State::RateLimited(t) if self.limited_until.is_some_and(|l| l > now) => {
                return Some(Reason::RateLimited(t, None));
            }
            // A budget that cannot take even one request (or one token).
            State::RateLimited(t) => {
                let named = self.budget_refusal(tokens.max(1), now);
                return Some(named.unwrap_or(Reason::RateLimited(t, None)));
            }
        }
        self.budget_refusal(tokens, now)
    }

    /// The budget that cannot take a call of `tokens` at `now`, and when it
    /// can (`None`: both can). Reads the buckets without taking.
    fn budget_refusal(&self, tokens: u64, now: Instant) -> Option<Reason> {
        let rpm = self.rpm.clone().map(|mut b| b.wait_for(1.0, now));
        let tpm = self.tpm.clone().map(|mut b| b.wait_for(tokens as f64, now));
        let (wait, kind) = match (rpm, tpm) {
            (Some(r), Some(t)) if t > r => (t, BudgetKind::Tpm),
            (Some(r), _) => (r, BudgetKind::Rpm),
            (None, Some(t)) => (t, BudgetKind::Tpm),
            (None, None) => return None,
        };
        (!wait.is_zero()).then(|| Reason::RateLimited(now + wait, Some(kind)))
    }

    /// What [`Shared::claim`](crate::shared::Shared) would refuse, read
    /// without claiming: the half-open probe another call holds, or budgets
    /// that cannot take the call (unless `force`: a last resort).
    pub(crate) fn claim_refusal(&self, tokens: u64, now: Instant, force: bool) -> Option<Reason> {
        if force {
            return None;
        }
        if self.state(now) == State::HalfOpen && self.probing {
            return Some(Reason::ProbeHeld);
        }
        self.budget_refusal(tokens, now)
    }

    /// When the provider can next be tried by a call of `tokens`, for the
    /// order of last resort.
    pub(crate) fn usable_from(&self, tokens: u64, now: Instant) -> Option<Instant> {
        let budget = self.budget_wait(tokens, now).map(|w| now + w);
        self.cooldown_until
            .max(self.ejected_until)
            .max(self.limited_until)
            .max(budget)
    }

    /// `(successes, failures)` in the window at `now`.
    pub fn window(&self, now: Instant, config: &HealthConfig) -> (u32, u32) {
        self.window.counts(now, config)
    }

    /// Take the half-open probe for a call about to send to it; `false`
    /// when another call holds it (the caller skips the provider). Always
    /// `true` for a provider that is not half-open.
    pub fn claim_probe(&mut self, now: Instant) -> bool {
        if self.state(now) != State::HalfOpen {
            return true;
        }
        if self.probing {
            return false;
        }
        self.probing = true;
        true
    }

    /// An attempt on this provider ended at `now` with `verdict`; `probe`:
    /// it was the half-open probe; `eject`: health tracking is on (else the
    /// window only counts, for stats). Returns the transition it caused, if
    /// any: an ejection (and why) or a readmission.
    pub fn record(
        &mut self,
        verdict: Verdict,
        probe: bool,
        now: Instant,
        config: &HealthConfig,
        eject: bool,
    ) -> Option<HealthEventKind> {
        if probe {
            self.probing = false;
        }
        match verdict {
            Verdict::Neutral => None,
            Verdict::Success => {
                self.consecutive = 0;
                let mut change = None;
                if probe || self.state(now) == State::HalfOpen {
                    // Readmitted, with a fresh window.
                    if self.ejected_until.take().is_some() {
                        change = Some(HealthEventKind::Readmitted);
                    }
                    self.streak = 0;
                    self.window = Window::default();
                }
                self.window.record(true, now, config);
                change
            }
            Verdict::Failure => {
                self.consecutive = self.consecutive.saturating_add(1);
                if !eject {
                    self.window.record(false, now, config);
                    return None;
                }
                if probe {
                    return Some(self.eject(now, config, EjectReason::FailedProbe));
                }
                if self.ejected_until.is_some() {
                    // A late answer of an attempt sent before the ejection.
                    return None;
                }
                self.window.record(false, now, config);
                let (ok, failed) = self.window.counts(now, config);
                let total = ok + failed;
                let by_rate = total >= config.min_requests.max(1)
                    && f64::from(failed) >= config.max_error_rate * f64::from(total);
                if self.consecutive >= config.consecutive_failures.max(1) {
                    let reason = EjectReason::ConsecutiveFailures(self.consecutive);
                    Some(self.eject(now, config, reason))
                } else if by_rate {
                    let reason = EjectReason::ErrorRate {
                        failures: failed,
                        outcomes: total,
                    };
                    Some(self.eject(now, config, reason))
                } else {
                    None
                }
            }
        }
    }

    fn eject(
        &mut self,
        now: Instant,
        config: &HealthConfig,
        reason: EjectReason,
    ) -> HealthEventKind {
        self.streak = self.streak.saturating_add(1);
        self.ejections += 1;
        self.consecutive = 0;
        let length = config
            .ejection
            .saturating_mul(self.streak)
            .min(config.max_ejection);
        let until = now + length;
        self.ejected_until = Some(until);
        HealthEventKind::Ejected { until, reason }
    }

    /// Before a call takes from the budgets at `now`: budgets seen at least
    /// half full end an episode of exhaustion (the next one is reported).
    pub(crate) fn budget_before_take(&mut self, now: Instant) {
        if !self.budget_out {
            return;
        }
        let half = |b: &mut Option<Bucket>| {
            b.as_mut()
                .is_none_or(|b| b.available(now) >= b.capacity() / 2.0)
        };
        if half(&mut self.rpm) && half(&mut self.tpm) {
            self.budget_out = false;
        }
    }

    /// After a call of `tokens` took from the budgets at `now`: if they
    /// cannot take another like it, the budget that waits longest ran out
    /// (reported once per episode).
    pub(crate) fn budget_after_take(
        &mut self,
        tokens: u64,
        now: Instant,
    ) -> Option<HealthEventKind> {
        if self.budget_out {
            return None;
        }
        let rpm = self.rpm.as_mut().map(|b| b.wait_for(1.0, now));
        let tpm = self.tpm.as_mut().map(|b| b.wait_for(tokens as f64, now));
        let (wait, budget) = match (rpm, tpm) {
            (Some(r), Some(t)) if t > r => (t, BudgetKind::Tpm),
            (Some(r), _) => (r, BudgetKind::Rpm),
            (None, Some(t)) => (t, BudgetKind::Tpm),
            (None, None) => return None,
        };
        if wait.is_zero() {
            return None;
        }
        self.budget_out = true;
        Some(HealthEventKind::BudgetExhausted {
            until: now + wait,
            budget,
        })
    }
}

/// The providers a call of `tokens` may try at `now`, in config order.
pub fn usable(health: &[ProviderHealth], tokens: u64, now: Instant) -> Vec<usize> {
    (0..health.len())
        .filter(|&i| health[i].usable(now) && health[i].within_budget(tokens, now))
        .collect()
}

/// Every provider in the order it can next be tried (its cooldown,
/// ejection or rate limit ends, its budget refills; config order among
/// equals): the order to try them in when none is usable, so a call still
/// fails over as usual rather than failing untried.
pub fn recovery_order(health: &[ProviderHealth], tokens: u64, now: Instant) -> Vec<usize> {
    let mut order: Vec<usize> = (0..health.len()).collect();
    // Stable: equal times keep config order.
    order.sort_by_key(|&i| health[i].usable_from(tokens, now));
    order
}

/// The providers a call may try, in order: the usable ones in config order;
/// if none is usable, all of them in recovery order.
pub fn candidates(health: &[ProviderHealth], tokens: u64, now: Instant) -> Vec<usize> {
    let order = usable(health, tokens, now);
    if order.is_empty() {
        recovery_order(health, tokens, now)
    } else {
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Instant {
        Instant::from_micros(secs * 1_000_000)
    }

    fn cooling(until: u64) -> ProviderHealth {
        ProviderHealth {
            cooldown_until: Some(Instant::from_micros(until)),
            ..ProviderHealth::default()
        }
    }

    #[test]
    fn skips_cooling_providers_while_others_are_usable() {
        let h = [cooling(100), ProviderHealth::default(), cooling(5)];
        assert_eq!(candidates(&h, 0, Instant::from_micros(10)), vec![1, 2]);
        assert_eq!(candidates(&h, 0, Instant::from_micros(100)), vec![0, 1, 2]);
    }

    #[test]
    fn all_cooling_walks_them_in_the_order_they_recover() {
        let h = [cooling(100), cooling(50), cooling(70)];
        assert_eq!(candidates(&h, 0, Instant::ZERO), vec![1, 2, 0]);
        let h = [cooling(70), cooling(50), cooling(70)];
        assert_eq!(candidates(&h, 0, Instant::ZERO), vec![1, 0, 2]);
    }

    #[test]
    fn consecutive_failures_eject_with_a_growing_capped_time() {
        let c = HealthConfig::default();
        let mut h = ProviderHealth::default();
        for i in 0..4 {
            h.record(Verdict::Failure, false, s(i), &c, true);
            assert_eq!(h.state(s(i)), State::Healthy);
        }
        h.record(Verdict::Failure, false, s(4), &c, true);
        assert_eq!(h.state(s(4)), State::Ejected(s(34)));
        assert!(!h.usable(s(33)));
        // Half-open at 34: one probe; a second caller is refused.
        assert_eq!(h.state(s(34)), State::HalfOpen);
        assert!(h.usable(s(34)));
        assert!(h.claim_probe(s(34)));
        assert!(!h.usable(s(34)) && !h.claim_probe(s(34)));
        // The probe fails: ejected again, twice as long.
        h.record(Verdict::Failure, true, s(35), &c, true);
        assert_eq!(h.state(s(35)), State::Ejected(s(95)));
        assert_eq!(h.ejections, 2);
        // Streaks grow until the cap.
        let mut at = 95;
        for _ in 0..20 {
            assert!(h.claim_probe(s(at)));
            h.record(Verdict::Failure, true, s(at), &c, true);
            let State::Ejected(until) = h.state(s(at)) else {
                panic!()
            };
            assert!(until <= s(at + 300));
            at = until.as_micros() / 1_000_000;
        }
        assert_eq!(h.state(s(at - 1)), State::Ejected(s(at)));
        // A successful probe readmits with a fresh window and streak.
        assert!(h.claim_probe(s(at)));
        h.record(Verdict::Success, true, s(at), &c, true);
        assert_eq!(h.state(s(at)), State::Healthy);
        assert_eq!(h.window(s(at), &c), (1, 0));
        for i in 0..5 {
            h.record(Verdict::Failure, false, s(at + i), &c, true);
        }
        assert_eq!(h.state(s(at + 4)), State::Ejected(s(at + 34)));
    }

    #[test]
    fn record_reports_each_transition_once() {
        let c = HealthConfig::default();
        let mut h = ProviderHealth::default();
        for i in 0..4 {
            assert_eq!(h.record(Verdict::Failure, false, s(i), &c, true), None);
        }
        let ejected = h.record(Verdict::Failure, false, s(4), &c, true);
        assert_eq!(
            ejected,
            Some(HealthEventKind::Ejected {
                until: s(34),
                reason: EjectReason::ConsecutiveFailures(5),
            })
        );
        // A late failure while ejected changes nothing.
        assert_eq!(h.record(Verdict::Failure, false, s(5), &c, true), None);
        // A failed probe ejects again, for longer.
        assert!(h.claim_probe(s(34)));
        assert_eq!(
            h.record(Verdict::Failure, true, s(34), &c, true),
            Some(HealthEventKind::Ejected {
                until: s(94),
                reason: EjectReason::FailedProbe,
            })
        );
        // A successful probe readmits; the next success is no transition.
        assert!(h.claim_probe(s(94)));
        assert_eq!(
            h.record(Verdict::Success, true, s(94), &c, true),
            Some(HealthEventKind::Readmitted)
        );
        assert_eq!(h.record(Verdict::Success, false, s(95), &c, true), None);
        // A neutral verdict, or tracking off, never ejects.
        let mut off = ProviderHealth::default();
        for i in 0..10 {
            assert_eq!(off.record(Verdict::Failure, false, s(i), &c, false), None);
            assert_eq!(off.record(Verdict::Neutral, false, s(i), &c, true), None);
        }
    }

    #[test]
    fn an_error_rate_ejection_says_so() {
        let c = HealthConfig::default();
        let mut h = ProviderHealth::default();
        for i in 0..9 {
            h.record(Verdict::Success, false, s(i), &c, true);
            h.record(Verdict::Failure, false, s(i), &c, true);
        }
        h.record(Verdict::Success, false, s(9), &c, true);
        assert_eq!(
            h.record(Verdict::Failure, false, s(9), &c, true),
            Some(HealthEventKind::Ejected {
                until: s(39),
                reason: EjectReason::ErrorRate {
                    failures: 10,
                    outcomes: 20
                },
            })
        );
    }

    #[test]
    fn a_budget_running_out_is_reported_once_per_episode() {
        let mut h = ProviderHealth::with_budgets(Some(60), None); // one a second
        let mut reported = Vec::new();
        let mut take = |h: &mut ProviderHealth, at: Instant| {
            h.budget_before_take(at);
            assert!(h.take_budget(0, at));
            if let Some(e) = h.budget_after_take(0, at) {
                reported.push((at, e));
            }
        };
        for _ in 0..60 {
            take(&mut h, s(0));
        }
        // Refilled by one, taken again: still the same episode.
        take(&mut h, s(1));
        take(&mut h, s(2));
        // Half full again (38 at 40 s) ends the episode; emptying it is a
        // new one.
        for _ in 0..38 {
            take(&mut h, s(40));
        }
        assert_eq!(
            reported,
            vec![
                (
                    s(0),
                    HealthEventKind::BudgetExhausted {
                        until: s(1),
                        budget: BudgetKind::Rpm
                    }
                ),
                (
                    s(40),
                    HealthEventKind::BudgetExhausted {
                        until: s(41),
                        budget: BudgetKind::Rpm
                    }
                ),
            ]
        );
        // The budget that waits longest is the one named.
        let mut h = ProviderHealth::with_budgets(Some(600), Some(1000));
        h.budget_before_take(s(0));
        assert!(h.take_budget(900, s(0)));
        let Some(HealthEventKind::BudgetExhausted { budget, .. }) = h.budget_after_take(900, s(0))
        else {
            panic!("the tpm budget cannot take another such call")
        };
        assert_eq!(budget, BudgetKind::Tpm);
    }

    #[test]
    fn the_error_rate_ejects_only_with_enough_outcomes_in_the_window() {
        let c = HealthConfig::default();
        let mut h = ProviderHealth::default();
        // 9 successes and 9 failures, alternating: never 5 in a row, 18 < 20.
        for i in 0..9 {
            h.record(Verdict::Success, false, s(i), &c, true);
            h.record(Verdict::Failure, false, s(i), &c, true);
        }
        assert_eq!(h.state(s(9)), State::Healthy);
        h.record(Verdict::Success, false, s(9), &c, true);
        h.record(Verdict::Failure, false, s(9), &c, true); // 20 outcomes, 50%
        assert_eq!(h.state(s(9)), State::Ejected(s(39)));
    }

    #[test]
    fn the_window_slides() {
        let c = HealthConfig::default();
        let mut h = ProviderHealth::default();
        for _ in 0..4 {
            h.record(Verdict::Failure, false, s(0), &c, true);
        }
        h.record(Verdict::Success, false, s(0), &c, true);
        assert_eq!(h.window(s(0), &c), (1, 4));
        assert_eq!(h.window(s(59), &c), (1, 4));
        assert_eq!(
            h.window(s(60), &c),
            (0, 0),
            "a minute later the bucket is gone"
        );
    }

    #[test]
    fn neutral_outcomes_change_nothing_but_give_a_probe_back() {
        let c = HealthConfig::default();
        let mut h = ProviderHealth::default();
        for i in 0..5 {
            h.record(Verdict::Failure, false, s(i), &c, true);
        }
        assert!(h.claim_probe(s(40)));
        h.record(Verdict::Neutral, true, s(40), &c, true);
        assert_eq!(h.state(s(40)), State::HalfOpen);
        assert!(h.usable(s(40)), "the probe is free again");
    }

    #[test]
    fn ejected_and_cooling_providers_recover_in_order() {
        let c = HealthConfig::default();
        let mut ejected = ProviderHealth::default();
        for _ in 0..5 {
            ejected.record(Verdict::Failure, false, s(0), &c, true);
        }
        let h = [ejected, cooling(10 * 1_000_000)];
        assert_eq!(candidates(&h, 0, s(1)), vec![1, 0]);
        assert_eq!(candidates(&h, 0, s(31)), vec![0, 1], "half-open at 30");
    }
}
