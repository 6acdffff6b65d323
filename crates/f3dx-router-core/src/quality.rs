//! Quality-aware routing: the schema pass rate of each (provider, tenant,
//! model), and the exclusions it decides.
//!
//! Each key keeps its last `window` results (an answer that passed or failed
//! validation, checked by the core or reported by the caller). A key with at
//! least `min_samples` results and a pass rate under `min_pass_rate` is
//! *excluded*: calls of that tenant and model skip the provider while
//! another is usable, as they skip an ejected one. After `probe_after`
//! (doubling with each failed probe, capped) one call may probe it: a pass
//! readmits it with a fresh window, a failure excludes it again, for longer.
//!
//! Plain data advanced by the caller's clock, like health. The table is
//! bounded by its number of keys and by its bytes (an estimate: the strings,
//! the windows and a fixed cost per key): the least recently used keys are
//! forgotten first. Each tenant and model is bounded too ([`check_tenant`],
//! [`check_model`]), so no caller can make one key large.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::events::HealthEventKind;
use crate::time::Instant;

/// What a call does with an answer that fails validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// The caller gets the answer; it is recorded as failing.
    Return,
    /// A failing answer is a soft failure: the call moves on to the next
    /// provider.
    Failover,
}

/// The classifier's settings (the router config's `quality` object).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QualityConfig {
    /// Results kept per key.
    pub window: u32,
    /// Results a key needs before it may be excluded.
    pub min_samples: u32,
    /// A pass rate under this excludes.
    pub min_pass_rate: f64,
    /// The first exclusion's length; each failed probe doubles it.
    pub probe_after: Duration,
    /// What a failing answer does to its call.
    pub on_failure: OnFailure,
    /// Most (provider, tenant, model) keys tracked.
    pub max_keys: usize,
    /// Most bytes the quality table holds, by its own estimate of its keys.
    pub max_bytes: u64,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            window: 50,
            min_samples: 10,
            min_pass_rate: 0.8,
            probe_after: Duration::from_secs(60),
            on_failure: OnFailure::Return,
            max_keys: 10_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Longest tenant accepted, in bytes: a tenant is part of a key the router
/// keeps.
pub const MAX_TENANT_LEN: usize = 256;

/// Longest model name accepted (a request's `model`, a reported result's),
/// in bytes: the model is the other part of the key.
pub const MAX_MODEL_LEN: usize = 256;

/// Why `tenant` cannot be a call's tenant, if it cannot: longer than
/// [`MAX_TENANT_LEN`], or with a control character (it is logged, and a
/// `\r\n` in a log line forges another). The message never repeats the value.
pub fn check_tenant(tenant: &str) -> Result<(), String> {
    check_name("tenant", tenant, MAX_TENANT_LEN)
}

/// Why `model` cannot be a request's (or a reported result's) model, if it
/// cannot: as [`check_tenant`], with [`MAX_MODEL_LEN`].
pub fn check_model(model: &str) -> Result<(), String> {
    check_name("model", model, MAX_MODEL_LEN)
}

fn check_name(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{what} is {} bytes; at most {max}", value.len()));
    }
    match value.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, c)) => Err(format!(
            "{what} has a control character (U+{:04X}) at byte {at}; only printable characters are accepted",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// The longest exclusion, however many probes failed (unless
/// `probe_after` itself is longer).
pub const MAX_EXCLUSION: Duration = Duration::from_secs(15 * 60);

/// Where a key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Routed to as usual.
    Ok,
    /// Skipped for its tenant and model until the probe time.
    Excluded,
    /// The exclusion ended: the next call may probe it (or one is out).
    Probing,
}

impl KeyState {
    /// The name `stats()` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Ok => "ok",
            KeyState::Excluded => "excluded",
            KeyState::Probing => "probing",
        }
    }
}

/// One key's results and exclusion.
#[derive(Clone, Debug, Default)]
struct Track {
    /// The last results, oldest first once full (a ring from `next`).
    results: Vec<bool>,
    next: usize,
    passes: u32,
    /// Every result recorded, for "top keys by traffic".
    total: u64,
    excluded_until: Option<Instant>,
    /// Exclusions in a row (each failed probe adds one).
    streak: u32,
    /// A call holds the probe.
    probe_out: bool,
    /// Its last use, for least-recently-used eviction.
    used: u64,
}

impl Track {
    fn samples(&self) -> u32 {
        self.results.len() as u32
    }

    fn pass_rate(&self) -> Option<f64> {
        (!self.results.is_empty()).then(|| f64::from(self.passes) / self.results.len() as f64)
    }

    fn state(&self, now: Instant) -> KeyState {
        match self.excluded_until {
            None => KeyState::Ok,
            Some(t) if t > now => KeyState::Excluded,
            Some(_) => KeyState::Probing,
        }
    }

    fn push(&mut self, passed: bool, window: u32) {
        let window = window.max(1) as usize;
        if self.results.len() < window {
            // The window's bytes at once, and no more: what the table's
            // byte bound counts.
            self.results.reserve_exact(window - self.results.len());
            self.results.push(passed);
        } else {
            let old = std::mem::replace(&mut self.results[self.next], passed);
            self.passes -= u32::from(old);
            self.next = (self.next + 1) % window;
        }
        self.passes += u32::from(passed);
        self.total += 1;
    }

    /// Exclude it from `now` (longer after each failed probe); the
    /// transition, as the health log keeps it.
    fn exclude(
        &mut self,
        now: Instant,
        config: &QualityConfig,
        failed_probe: bool,
    ) -> HealthEventKind {
        let cap = MAX_EXCLUSION.max(config.probe_after);
        let factor = 1u32.checked_shl(self.streak.min(31)).unwrap_or(u32::MAX);
        let length = config.probe_after.saturating_mul(factor).min(cap);
        let until = now + length;
        self.excluded_until = Some(until);
        self.streak = self.streak.saturating_add(1);
        self.probe_out = false;
        HealthEventKind::QualityExcluded {
            until,
            passes: self.passes,
            samples: self.samples(),
            failed_probe,
        }
    }
}

/// What `stats()` reports of one key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyStats {
    /// The key's tenant ("" when calls gave none).
    pub tenant: String,
    /// The model the calls asked for.
    pub model: String,
    /// Results in the window.
    pub samples: u32,
    /// Passes over samples, `None` without samples.
    pub pass_rate: Option<f64>,
    /// Where it stands.
    pub state: KeyState,
    /// When its exclusion ends, if excluded.
    pub until: Option<Instant>,
    /// Results recorded since it was first seen.
    pub total: u64,
}

/// Every tracked key of one router.
#[derive(Debug, Default)]
pub(crate) struct QualityTable {
    /// Providers of the router (tracks per key).
    providers: usize,
    /// (tenant, model) -> one track per provider index.
    keys: HashMap<String, Group>,
    /// Last use -> group key: the eviction order.
    lru: BTreeMap<u64, String>,
    /// Tracks held (the bound counts these).
    tracked: usize,
    /// The estimate of the bytes held: the groups' `bytes`.
    bytes: u64,
    tick: u64,
}

#[derive(Debug)]
struct Group {
    tenant: String,
    model: String,
    tracks: Vec<Option<Track>>,
    used: u64,
    /// Its share of [`QualityTable::bytes`].
    bytes: u64,
}

/// A group's fixed cost beside its strings and tracks: its map and
/// eviction-order entries with their spare room. Measured with a counting
/// allocator (`tests/memory.rs`): the estimate stays above what the table
/// really holds.
const GROUP_OVERHEAD: u64 = 256;

impl Group {
    /// The bytes it holds, about: its key three times (the map's key, the
    /// eviction order's copy, and tenant and model kept apart), its track
    /// slots, and each track's window of results.
    fn cost(&self) -> u64 {
        let names = (self.tenant.len() + self.model.len() + 8) as u64;
        let slots = (self.tracks.len() * std::mem::size_of::<Option<Track>>()) as u64;
        let windows: usize = self
            .tracks
            .iter()
            .flatten()
            .map(|t| t.results.capacity())
            .sum();
        GROUP_OVERHEAD + 3 * names + slots + windows as u64
    }
}

/// The map key of (tenant, model): length-prefixed, so no pair collides.
fn group_key(tenant: &str, model: &str) -> String {
    format!("{}:{tenant}{model}", tenant.len())
}

impl QualityTable {
    /// An empty table for a router of `providers` providers.
    pub fn new(providers: usize) -> Self {
        QualityTable {
            providers,
            ..QualityTable::default()
        }
    }

    /// Whether nothing is tracked (then no call needs a lookup).
    pub fn is_empty(&self) -> bool {
        self.tracked == 0
    }

    /// Keys tracked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.tracked
    }

    /// About the bytes the table holds (what `max_bytes` bounds).
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// For a call of `tenant` and `model` at `now`: per provider (of
    /// `providers`), whether it is excluded, or may be probed.
    pub fn state(&self, tenant: &str, model: &str, provider: usize, now: Instant) -> KeyState {
        self.track(tenant, model, provider)
            .map_or(KeyState::Ok, |t| t.state(now))
    }

    /// When the exclusion of `provider` for `tenant` and `model` ends, if
    /// it is excluded at `now`.
    pub fn excluded_until(
        &self,
        tenant: &str,
        model: &str,
        provider: usize,
        now: Instant,
    ) -> Option<Instant> {
        let t = self.track(tenant, model, provider)?;
        (t.state(now) == KeyState::Excluded)
            .then_some(t.excluded_until)
            .flatten()
    }

    /// Whether another call holds the probe [`QualityTable::claim_probe`]
    /// would refuse (read without claiming).
    pub fn probe_held(&self, tenant: &str, model: &str, provider: usize, now: Instant) -> bool {
        self.track(tenant, model, provider)
            .is_some_and(|t| t.state(now) == KeyState::Probing && t.probe_out)
    }

    fn track(&self, tenant: &str, model: &str, provider: usize) -> Option<&Track> {
        self.keys
            .get(&group_key(tenant, model))
            .and_then(|g| g.tracks.get(provider))
            .and_then(Option::as_ref)
    }

    /// A call wants to send to an excluded provider whose probe time came:
    /// `true` if it may (it then holds the probe until it records a result
    /// or gives it back).
    pub fn claim_probe(
        &mut self,
        tenant: &str,
        model: &str,
        provider: usize,
        now: Instant,
    ) -> bool {
        let Some(t) = self.track_mut(tenant, model, provider) else {
            return true;
        };
        match t.state(now) {
            KeyState::Ok => true,
            KeyState::Excluded => false,
            KeyState::Probing if t.probe_out => false,
            KeyState::Probing => {
                t.probe_out = true;
                true
            }
        }
    }

    /// A probe ended without a result (the attempt failed otherwise, or was
    /// cancelled): another call may probe.
    pub fn release_probe(&mut self, tenant: &str, model: &str, provider: usize) {
        if let Some(t) = self.track_mut(tenant, model, provider) {
            t.probe_out = false;
        }
    }

    fn track_mut(&mut self, tenant: &str, model: &str, provider: usize) -> Option<&mut Track> {
        self.keys
            .get_mut(&group_key(tenant, model))
            .and_then(|g| g.tracks.get_mut(provider))
            .and_then(Option::as_mut)
    }

    /// Record one result of `provider` for `tenant` and `model` at `now`;
    /// the transition it caused, if any (an exclusion or a readmission),
    /// for the router's health log.
    pub fn record(
        &mut self,
        tenant: &str,
        model: &str,
        provider: usize,
        passed: bool,
        now: Instant,
        config: &QualityConfig,
    ) -> Option<HealthEventKind> {
        self.tick += 1;
        let tick = self.tick;
        let key = group_key(tenant, model);
        let group = self.keys.entry(key.clone()).or_insert_with(|| Group {
            tenant: tenant.to_owned(),
            model: model.to_owned(),
            tracks: Vec::new(),
            used: 0,
            bytes: 0,
        });
        let providers = self.providers.max(provider + 1);
        if group.tracks.len() < providers {
            group.tracks.resize_with(providers, || None);
        }
        let slot = group.tracks.get_mut(provider)?;
        if slot.is_none() {
            self.tracked += 1;
        }
        let t = slot.get_or_insert_with(Track::default);
        t.used = tick;
        let transition = match t.state(now) {
            // A result from a call that started before the exclusion: the
            // window already said enough.
            KeyState::Excluded => None,
            KeyState::Probing => {
                if passed {
                    // Readmitted with a fresh window.
                    *t = Track {
                        used: tick,
                        total: t.total,
                        ..Track::default()
                    };
                    t.push(true, config.window);
                    Some(HealthEventKind::QualityReadmitted)
                } else {
                    t.push(false, config.window);
                    Some(t.exclude(now, config, true))
                }
            }
            KeyState::Ok => {
                t.push(passed, config.window);
                let rate = t.pass_rate().unwrap_or(1.0);
                (t.samples() >= config.min_samples.max(1) && rate < config.min_pass_rate)
                    .then(|| t.exclude(now, config, false))
            }
        };
        let old = std::mem::replace(&mut group.used, tick);
        let cost = group.cost();
        self.bytes = self.bytes - std::mem::replace(&mut group.bytes, cost) + cost;
        self.lru.remove(&old);
        self.lru.insert(tick, key);
        self.evict(config.max_keys.max(1), config.max_bytes);
        transition
    }

    /// Forget the least recently used groups until at most `max_keys` keys
    /// and `max_bytes` bytes remain.
    fn evict(&mut self, max_keys: usize, max_bytes: u64) {
        while self.tracked > max_keys || self.bytes > max_bytes {
            let Some((_, key)) = self.lru.pop_first() else {
                return;
            };
            if let Some(g) = self.keys.remove(&key) {
                self.tracked -= g.tracks.iter().flatten().count();
                self.bytes -= g.bytes;
            }
        }
    }

    /// The keys of `provider`, most results first, at most `limit`.
    pub fn stats(&self, provider: usize, now: Instant, limit: usize) -> Vec<KeyStats> {
        let mut out: Vec<KeyStats> = self
            .keys
            .values()
            .filter_map(|g| {
                let t = g.tracks.get(provider)?.as_ref()?;
                let state = t.state(now);
                Some(KeyStats {
                    tenant: g.tenant.clone(),
                    model: g.model.clone(),
                    samples: t.samples(),
                    pass_rate: t.pass_rate(),
                    state,
                    until: t.excluded_until.filter(|_| state == KeyState::Excluded),
                    total: t.total,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| (&a.tenant, &a.model).cmp(&(&b.tenant, &b.model)))
        });
        out.truncate(limit);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    fn record(t: &mut QualityTable, tenant: &str, passed: bool, now: Instant) {
        t.record(tenant, "m", 0, passed, now, &QualityConfig::default());
    }

    #[test]
    fn excluded_after_min_samples_under_the_rate_for_that_tenant_only() {
        let mut t = QualityTable::default();
        // 6 of 10 pass: 0.6 < 0.8, but only at the 10th result.
        for i in 0..9 {
            record(&mut t, "a", i % 5 < 3, at(0));
            assert_eq!(t.state("a", "m", 0, at(0)), KeyState::Ok, "{i}");
        }
        record(&mut t, "a", false, at(0));
        assert_eq!(t.state("a", "m", 0, at(0)), KeyState::Excluded);
        assert_eq!(t.state("b", "m", 0, at(0)), KeyState::Ok);
        assert_eq!(t.state("a", "other", 0, at(0)), KeyState::Ok);
        assert_eq!(t.state("a", "m", 1, at(0)), KeyState::Ok);
    }

    #[test]
    fn probes_readmit_or_exclude_longer_up_to_the_cap() {
        let mut t = QualityTable::default();
        for _ in 0..10 {
            record(&mut t, "a", false, at(0));
        }
        assert_eq!(t.state("a", "m", 0, at(59)), KeyState::Excluded);
        assert_eq!(t.state("a", "m", 0, at(60)), KeyState::Probing);
        assert!(t.claim_probe("a", "m", 0, at(60)));
        assert!(!t.claim_probe("a", "m", 0, at(60)), "one probe at a time");
        record(&mut t, "a", false, at(61));
        // Excluded again for 120 s, then 240, 480, 900 (capped), 900.
        let mut now = 61;
        for length in [120, 240, 480, 900, 900] {
            assert_eq!(
                t.state("a", "m", 0, at(now + length - 1)),
                KeyState::Excluded
            );
            now += length;
            assert!(t.claim_probe("a", "m", 0, at(now)));
            record(&mut t, "a", false, at(now));
        }
        // A passing probe readmits with a fresh window.
        now += 900;
        assert!(t.claim_probe("a", "m", 0, at(now)));
        record(&mut t, "a", true, at(now));
        assert_eq!(t.state("a", "m", 0, at(now)), KeyState::Ok);
        let s = &t.stats(0, at(now), 10)[0];
        assert_eq!((s.samples, s.pass_rate), (1, Some(1.0)));
        // And its next exclusion starts from probe_after again.
        for _ in 0..10 {
            record(&mut t, "a", false, at(now));
        }
        assert_eq!(t.state("a", "m", 0, at(now + 60)), KeyState::Probing);
    }

    #[test]
    fn the_window_slides() {
        let mut t = QualityTable::default();
        for _ in 0..50 {
            record(&mut t, "a", true, at(0));
        }
        // 10 failures in a window of 50: 0.8, not under it.
        for _ in 0..10 {
            record(&mut t, "a", false, at(0));
        }
        assert_eq!(t.state("a", "m", 0, at(0)), KeyState::Ok);
        record(&mut t, "a", false, at(0));
        assert_eq!(t.state("a", "m", 0, at(0)), KeyState::Excluded);
        assert_eq!(t.stats(0, at(0), 1)[0].samples, 50);
    }

    #[test]
    fn keys_are_bounded_least_recently_used_first() {
        let mut t = QualityTable::default();
        let config = QualityConfig {
            max_keys: 100,
            ..QualityConfig::default()
        };
        t.record("keep", "m", 0, true, at(0), &config);
        for i in 0..10_000 {
            t.record(&format!("tenant-{i}"), "m", 0, true, at(0), &config);
            if i % 50 == 0 {
                t.record("keep", "m", 0, true, at(0), &config);
            }
            assert!(t.len() <= 100);
        }
        assert_eq!(t.len(), 100);
        assert!(t.stats(0, at(0), 1000).iter().any(|k| k.tenant == "keep"));
        assert!(!t
            .stats(0, at(0), 1000)
            .iter()
            .any(|k| k.tenant == "tenant-0"));
        assert_eq!(t.lru.len(), t.keys.len());
    }

    #[test]
    fn keys_are_bounded_by_their_bytes_too() {
        let mut t = QualityTable::new(2);
        let config = QualityConfig {
            max_keys: 10_000_000,
            max_bytes: 1 << 20,
            ..QualityConfig::default()
        };
        let (tenant, model) = ("t".repeat(MAX_TENANT_LEN - 8), "m".repeat(MAX_MODEL_LEN));
        let mut most = 0;
        for i in 0..20_000 {
            t.record(
                &format!("{tenant}{i:08}"),
                &model,
                i % 2,
                true,
                at(0),
                &config,
            );
            assert!(t.bytes() <= config.max_bytes);
            most = most.max(t.len());
        }
        // Each key costs about 2 KB here: some hundreds fit, far fewer
        // than max_keys.
        assert!((300..1000).contains(&most), "{most} keys");
        let last = format!("{tenant}{:08}", 19_999);
        assert!(t.stats(1, at(0), 1000).iter().any(|k| k.tenant == last));
        assert_eq!(t.lru.len(), t.keys.len());
        // Forgetting every key gives every byte back.
        t.evict(0, 0);
        assert_eq!((t.len(), t.bytes()), (0, 0));
    }

    #[test]
    fn tenants_and_models_are_bounded_and_printable() {
        assert!(check_tenant("").is_ok() && check_tenant("acme").is_ok());
        assert!(check_tenant(&"é".repeat(MAX_TENANT_LEN / 2)).is_ok());
        assert!(check_model("gpt-4o").is_ok() && check_model(&"m".repeat(MAX_MODEL_LEN)).is_ok());
        let long = "x".repeat(1 << 20);
        for (result, needle) in [
            (
                check_tenant(&"x".repeat(MAX_TENANT_LEN + 1)),
                "tenant is 257 bytes; at most 256",
            ),
            (check_model(&long), "model is 1048576 bytes; at most 256"),
            (
                check_tenant("a\x00b"),
                "tenant has a control character (U+0000) at byte 1",
            ),
            (check_tenant("a\r\nb"), "(U+000D)"),
            (check_tenant("\x01"), "(U+0001)"),
            (check_tenant("a\u{85}"), "(U+0085)"),
            (
                check_model("gpt\x7f"),
                "model has a control character (U+007F)",
            ),
        ] {
            let message = result.unwrap_err();
            assert!(message.contains(needle), "{message}");
            assert!(message.len() < 120, "the value is not repeated: {message}");
        }
    }

    #[test]
    fn tenant_and_model_never_run_together() {
        assert_ne!(group_key("ab", "c"), group_key("a", "bc"));
    }
}
