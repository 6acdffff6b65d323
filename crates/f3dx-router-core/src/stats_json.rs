//! [`Stats`] as JSON: the readable view every host hands out (Python's
//! `Router.stats()`, the Worker's `GET /stats` and its embedded
//! `Router.stats()`), so its shape and its rounding live in one place.
//!
//! Numbers are rounded here, at the source, to what a reader can use:
//! milliseconds to 0.01 (10 µs), seconds to 0.001, rates to 0.0001, budgets
//! left to 0.01. Nothing downstream computes with more precision than that,
//! and `43.007999999999996` helps no one.

use serde_json::{json, Map, Value};

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
    /// `{"models": {group: [{"provider": name, "model": m, ...}]}, ...}`
    /// instead of `providers`: one entry per deployment, grouped.
    pub fn to_json(&self, now: Instant) -> Value {
        let hedges = json!({
            "sent": self.hedges.sent,
            "won": self.hedges.won,
            "skipped_for_budget": self.hedges.skipped_for_budget,
        });
        if self.providers.iter().any(|p| p.group.is_some()) {
            let mut models: Map<String, Value> = Map::new();
            for p in &self.providers {
                let mut entry = provider_json(p, now);
                if let Some(obj) = entry.as_object_mut() {
                    obj.insert("provider".to_owned(), json!(p.name));
                    obj.insert("model".to_owned(), json!(p.model));
                }
                let group = p.group.clone().unwrap_or_default();
                if let Value::Array(list) = models.entry(group).or_insert_with(|| json!([])) {
                    list.push(entry);
                }
            }
            return json!({"models": models, "hedges": hedges});
        }
        let providers: Map<String, Value> = self
            .providers
            .iter()
            .map(|p| (p.name.clone(), provider_json(p, now)))
            .collect();
        json!({"providers": providers, "hedges": hedges})
    }
}

/// Seconds from `now` to `t`, rounded.
fn secs_until(t: Instant, now: Instant) -> f64 {
    rounded((t - now).as_secs_f64(), SECS_PLACES)
}

fn provider_json(p: &ProviderStats, now: Instant) -> Value {
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
    let quality: Vec<Value> = p.quality.iter().map(|k| key_json(k, now)).collect();
    json!({
        "state": state,
        "until_s": until.map(|t| secs_until(t, now)),
        "requests": requests,
        "successes": p.successes,
        "soft_failures": p.soft_failures,
        "error_rate": error_rate,
        "latency_ms": {"p50": ms(0), "p90": ms(1), "p95": ms(2), "p99": ms(3)},
        "ejections": p.ejections,
        "rpm_left": left(p.rpm_left),
        "tpm_left": left(p.tpm_left),
        "quality": quality,
    })
}

fn key_json(k: &KeyStats, now: Instant) -> Value {
    json!({
        "tenant": k.tenant,
        "model": k.model,
        "samples": k.samples,
        "pass_rate": k.pass_rate.map(|r| rounded(r, RATE_PLACES)),
        "state": k.state.as_str(),
        "until_s": k.until.map(|t| secs_until(t, now)),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
}
