//! [`Stats`] as JSON: the readable view every host hands out (Python's
//! `Router.stats()`, the Worker's `GET /stats` and its embedded
//! `Router.stats()`), so its shape and its rounding live in one place.
//!
//! Numbers are rounded here, at the source, to what a reader can use:
//! milliseconds to 0.01 (10 µs), seconds to 0.001, rates to 0.0001, budgets
//! left to 0.01. Nothing downstream computes with more precision than that,
//! and `43.007999999999996` helps no one.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

use crate::health::State;
use crate::quality::KeyStats;
use crate::stats::{ProviderStats, Stats};
use crate::time::Instant;

/// Decimal places of milliseconds (latency percentiles).
const MS_PLACES: i32 = 2;
/// Decimal places of seconds (time left in a state).
const SECS_PLACES: i32 = 3;
/// Decimal places of rates (error rate, pass rate).
const RATE_PLACES: i32 = 4;
/// Decimal places of what is left of a budget (requests, tokens).
const BUDGET_PLACES: i32 = 2;

/// `x` rounded to `places` decimal places (half away from zero).
pub fn rounded(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

impl Stats {
    /// The stats as JSON, with every time relative to `now`:
    /// `{"providers": {name: {...}}, "hedges": {...}}`, the shape of
    /// Python's `f3dx_router.RouterStats`. With a routing table (`models`),
    /// `{"models": {group: [{..., "provider": name, "model": m}]}, ...}`
    /// instead of `providers`: one entry per deployment, grouped.
    pub fn to_json(&self, now: Instant) -> Value {
        // Serializing a view into a Value cannot fail (string keys only).
        serde_json::to_value(View { stats: self, now }).unwrap_or(Value::Null)
    }

    /// [`Stats::to_json`] as JSON text, written straight from the stats
    /// (no `Value` built: a table of hundreds of deployments would spend
    /// milliseconds on its maps). Python reads it with `json.loads`.
    pub fn to_json_text(&self, now: Instant) -> String {
        serde_json::to_string(&View { stats: self, now }).unwrap_or_default()
    }
}

/// The one shape of the stats, serialized from borrowed data.
struct View<'a> {
    stats: &'a Stats,
    now: Instant,
}

impl Serialize for View<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (stats, now) = (self.stats, self.now);
        let mut top = s.serialize_map(Some(2))?;
        if stats.providers.iter().any(|p| p.group.is_some()) {
            // Deployments come group by group; each group once, in order.
            let mut groups: Vec<(&str, Vec<Entry<'_>>)> = Vec::new();
            for p in &stats.providers {
                let name = p.group.as_deref().unwrap_or_default();
                let entry = Entry::of(p, now, true);
                match groups.iter_mut().find(|(g, _)| *g == name) {
                    Some((_, list)) => list.push(entry),
                    None => groups.push((name, vec![entry])),
                }
            }
            top.serialize_entry("models", &Pairs(&groups))?;
        } else {
            let providers: Vec<(&str, Entry<'_>)> = stats
                .providers
                .iter()
                .map(|p| (p.name.as_str(), Entry::of(p, now, false)))
                .collect();
            top.serialize_entry("providers", &Pairs(&providers))?;
        }
        top.serialize_entry(
            "hedges",
            &Hedges {
                sent: stats.hedges.sent,
                won: stats.hedges.won,
                skipped_for_budget: stats.hedges.skipped_for_budget,
            },
        )?;
        top.end()
    }
}

/// Name-value pairs written as a JSON object, in their order.
struct Pairs<'a, T>(&'a [(&'a str, T)]);

impl<T: Serialize> Serialize for Pairs<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Hedges {
    sent: u64,
    won: u64,
    skipped_for_budget: u64,
}

/// One provider (or deployment) of the stats, rounded for reading.
#[derive(Serialize)]
struct Entry<'a> {
    state: &'static str,
    until_s: Option<f64>,
    requests: u32,
    successes: u32,
    soft_failures: u32,
    error_rate: f64,
    latency_ms: Latency,
    ejections: u64,
    rpm_left: Option<f64>,
    tpm_left: Option<f64>,
    quality: Vec<Key<'a>>,
    /// A deployment's provider and model sent (with a routing table).
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<Option<&'a str>>,
}

#[derive(Serialize)]
struct Latency {
    p50: Option<f64>,
    p90: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
}

#[derive(Serialize)]
struct Key<'a> {
    tenant: &'a str,
    model: &'a str,
    samples: u32,
    pass_rate: Option<f64>,
    state: &'static str,
    until_s: Option<f64>,
}

/// Seconds from `now` to `t`, rounded.
fn secs_until(t: Instant, now: Instant) -> f64 {
    rounded((t - now).as_secs_f64(), SECS_PLACES)
}

impl<'a> Entry<'a> {
    fn of(p: &'a ProviderStats, now: Instant, deployment: bool) -> Entry<'a> {
        let (state, until) = match p.state {
            State::Healthy => ("healthy", None),
            State::Cooling(t) => ("cooling", Some(t)),
            State::Ejected(t) => ("ejected", Some(t)),
            State::HalfOpen => ("half_open", None),
            State::RateLimited(t) => ("rate_limited", Some(t)),
        };
        let requests = p.successes + p.soft_failures;
        let error_rate = if requests == 0 {
            0.0
        } else {
            rounded(
                f64::from(p.soft_failures) / f64::from(requests),
                RATE_PLACES,
            )
        };
        let ms = |i: usize| {
            p.latency
                .map(|l| rounded(l[i].as_secs_f64() * 1000.0, MS_PLACES))
        };
        let left = |b: Option<f64>| b.map(|b| rounded(b, BUDGET_PLACES));
        Entry {
            state,
            until_s: until.map(|t| secs_until(t, now)),
            requests,
            successes: p.successes,
            soft_failures: p.soft_failures,
            error_rate,
            latency_ms: Latency {
                p50: ms(0),
                p90: ms(1),
                p95: ms(2),
                p99: ms(3),
            },
            ejections: p.ejections,
            rpm_left: left(p.rpm_left),
            tpm_left: left(p.tpm_left),
            quality: p.quality.iter().map(|k| Key::of(k, now)).collect(),
            provider: deployment.then_some(p.name.as_str()),
            model: deployment.then_some(p.model.as_deref()),
        }
    }
}

impl<'a> Key<'a> {
    fn of(k: &'a KeyStats, now: Instant) -> Key<'a> {
        Key {
            tenant: &k.tenant,
            model: &k.model,
            samples: k.samples,
            pass_rate: k.pass_rate.map(|r| rounded(r, RATE_PLACES)),
            state: k.state.as_str(),
            until_s: k.until.map(|t| secs_until(t, now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::quality::KeyState;
    use crate::stats::HedgeStats;

    fn stats(latency_us: u64, soft_failures: u32) -> Stats {
        let l = Duration::from_micros(latency_us);
        Stats {
            providers: vec![ProviderStats {
                group: None,
                model: None,
                name: "a".into(),
                state: State::Cooling(Instant::ZERO + Duration::from_micros(1_234_567)),
                successes: 2,
                soft_failures,
                latency: Some([l, l, l, l]),
                ejections: 0,
                rpm_left: Some(59.123_456),
                tpm_left: None,
                quality: vec![KeyStats {
                    tenant: "t".into(),
                    model: "m".into(),
                    samples: 3,
                    pass_rate: Some(2.0 / 3.0),
                    state: KeyState::Ok,
                    until: None,
                    total: 3,
                }],
            }],
            hedges: HedgeStats::default(),
        }
    }

    #[test]
    fn numbers_are_rounded_for_reading() {
        // 43.008 ms is 43.007999999999996 as seconds times 1000.
        let v = stats(43_008, 1).to_json(Instant::ZERO);
        let p = &v["providers"]["a"];
        assert_eq!(p["latency_ms"]["p50"], json!(43.01));
        assert_eq!(p["until_s"], json!(1.235));
        assert_eq!(p["error_rate"], json!(0.3333));
        assert_eq!(p["rpm_left"], json!(59.12));
        assert_eq!(p["tpm_left"], Value::Null);
        assert_eq!(p["quality"][0]["pass_rate"], json!(0.6667));
        assert_eq!(p["state"], json!("cooling"));
        assert_eq!(p["requests"], json!(3));
    }

    #[test]
    fn no_requests_is_a_zero_error_rate() {
        let v = stats(1, 0).to_json(Instant::ZERO);
        assert_eq!(v["providers"]["a"]["error_rate"], json!(0.0));
        assert_eq!(v["providers"]["a"]["latency_ms"]["p99"], json!(0.0));
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(rounded(0.125, 2), 0.13);
        assert_eq!(rounded(2.0 / 3.0, 4), 0.6667);
        assert_eq!(rounded(43.007_999_999_999_996, 2), 43.01);
    }

    #[test]
    fn the_text_is_the_same_json() {
        let mut s = stats(43_008, 1);
        let v = s.to_json(Instant::ZERO);
        let text = s.to_json_text(Instant::ZERO);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        // With a routing table: grouped, each entry naming its provider and
        // model (null when the caller's is passed through).
        let mut b = s.providers[0].clone();
        s.providers[0].group = Some("gpt-4o".into());
        s.providers[0].model = Some("gpt-4o-2024".into());
        b.name = "b".into();
        b.group = Some("claude-*".into());
        s.providers.push(b);
        let v = s.to_json(Instant::ZERO);
        assert!(v.get("providers").is_none());
        assert_eq!(v["models"]["gpt-4o"][0]["provider"], json!("a"));
        assert_eq!(v["models"]["gpt-4o"][0]["model"], json!("gpt-4o-2024"));
        assert_eq!(v["models"]["claude-*"][0]["model"], Value::Null);
        assert_eq!(
            v["models"]["claude-*"][0]["latency_ms"]["p50"],
            json!(43.01)
        );
        let text = s.to_json_text(Instant::ZERO);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }
}
