//! `GET /stats` and the embedded `Router.stats()`: what this isolate's
//! router remembers, in the shape of the Python API's `Router.stats()`.
//! Each isolate keeps its own state.

use f3dx_router_core::{Executor, Router, State};
use serde_json::{json, Map, Value};

use crate::executor::FetchExecutor;

/// The router's stats now, as JSON.
pub fn stats_json(router: &Router) -> Value {
    let now = FetchExecutor.now();
    let stats = router.stats(now);
    let secs = |t: f3dx_router_core::Instant| (t - now).as_secs_f64();
    let mut providers = Map::new();
    for p in &stats.providers {
        let (state, until) = match p.state {
            State::Healthy => ("healthy", None),
            State::Cooling(t) => ("cooling", Some(secs(t))),
            State::Ejected(t) => ("ejected", Some(secs(t))),
            State::HalfOpen => ("half_open", None),
            State::RateLimited(t) => ("rate_limited", Some(secs(t))),
        };
        let requests = p.successes + p.soft_failures;
        let rate = if requests == 0 {
            0.0
        } else {
            f64::from(p.soft_failures) / f64::from(requests)
        };
        let ms = |i: usize| p.latency.map(|l| l[i].as_secs_f64() * 1000.0);
        let quality: Vec<Value> = p
            .quality
            .iter()
            .map(|k| {
                json!({
                    "tenant": k.tenant, "model": k.model, "samples": k.samples,
                    "pass_rate": k.pass_rate, "state": k.state.as_str(), "until_s": k.until.map(secs),
                })
            })
            .collect();
        providers.insert(
            p.name.clone(),
            json!({
                "state": state, "until_s": until, "requests": requests,
                "successes": p.successes, "soft_failures": p.soft_failures, "error_rate": rate,
                "latency_ms": {"p50": ms(0), "p90": ms(1), "p95": ms(2), "p99": ms(3)},
                "ejections": p.ejections, "rpm_left": p.rpm_left, "tpm_left": p.tpm_left,
                "quality": quality,
            }),
        );
    }
    json!({
        "providers": providers,
        "hedges": {"sent": stats.hedges.sent, "won": stats.hedges.won, "skipped_for_budget": stats.hedges.skipped_for_budget},
    })
}
