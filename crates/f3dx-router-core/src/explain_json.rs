//! [`Explanation`] as JSON: what Python's `Router.explain()`, the Worker's
//! `POST /explain` and its embedded `router.explain()` hand out, so its
//! shape and rounding live in one place.

use serde_json::{json, Map, Value};

use crate::events::BudgetKind;
use crate::explain::{Explanation, Planned, Reason};
use crate::stats_json::rounded;
use crate::time::Instant;

/// Decimal places of seconds (time left in a state), as `stats()`.
const SECS_PLACES: i32 = 3;

impl Explanation {
    /// The explanation as JSON, every time relative to `now`:
    /// `{"model", "group", "last_resort", "tried": [...], "left_out":
    /// [...]}`, each entry `{"group", "provider", "model", "reason",
    /// "detail", "last_resort"}` plus what its reason carries (`until_s`,
    /// `budget`, `tokens_needed` and `context_window`, `params`), and for a
    /// deployment tried without some parameters, `dropped`.
    pub fn to_json(&self, now: Instant) -> Value {
        let list = |l: &[Planned]| -> Vec<Value> { l.iter().map(|p| planned(p, now)).collect() };
        json!({
            "model": self.model,
            "group": self.group,
            "last_resort": self.last_resort,
            "tried": list(&self.tried),
            "left_out": list(&self.left_out),
        })
    }
}

fn planned(p: &Planned, now: Instant) -> Value {
    let mut entry = Map::new();
    entry.insert("group".to_owned(), json!(p.group));
    entry.insert("provider".to_owned(), json!(p.provider));
    entry.insert("model".to_owned(), json!(p.model));
    entry.insert("reason".to_owned(), json!(p.reason.map(Reason::as_str)));
    entry.insert("detail".to_owned(), json!(p.reason.map(|r| detail(r, now))));
    entry.insert("last_resort".to_owned(), json!(p.last_resort));
    let secs = |t: Instant| json!(rounded((t - now).as_secs_f64(), SECS_PLACES));
    match p.reason {
        Some(Reason::Cooling(t) | Reason::Ejected(t) | Reason::QualityExcluded(Some(t))) => {
            entry.insert("until_s".to_owned(), secs(t));
        }
        Some(Reason::RateLimited(t, budget)) => {
            entry.insert("until_s".to_owned(), secs(t));
            entry.insert("budget".to_owned(), json!(budget_name(budget)));
        }
        Some(Reason::ContextWindow { need, window }) => {
            entry.insert("tokens_needed".to_owned(), json!(need));
            entry.insert("context_window".to_owned(), json!(window));
        }
        Some(Reason::UnsupportedParams) => {
            entry.insert("params".to_owned(), json!(p.params));
        }
        _ if !p.params.is_empty() => {
            entry.insert("dropped".to_owned(), json!(p.params));
        }
        _ => {}
    }
    Value::Object(entry)
}

fn budget_name(budget: Option<BudgetKind>) -> &'static str {
    match budget {
        None => "rate_limit_headers",
        Some(BudgetKind::Rpm) => "rpm",
        Some(BudgetKind::Tpm) => "tpm",
    }
}

/// The reason in a sentence, for a person reading the JSON.
fn detail(reason: Reason, now: Instant) -> String {
    let secs = |t: Instant| rounded((t - now).as_secs_f64(), SECS_PLACES);
    match reason {
        Reason::Cooling(t) => format!("cooling for {}s (it sent Retry-After)", secs(t)),
        Reason::RateLimited(t, None) => {
            format!(
                "its rate-limit headers said a limit is spent, for {}s",
                secs(t)
            )
        }
        Reason::RateLimited(t, Some(kind)) => format!(
            "its {} budget cannot take this call for {}s",
            budget_name(Some(kind)),
            secs(t)
        ),
        Reason::Ejected(t) => format!("ejected after soft failures, for {}s", secs(t)),
        Reason::ProbeHeld => "half-open: another call holds its one probe".to_owned(),
        Reason::ContextWindow { need, window } => format!(
            "its context_window of {window} tokens cannot hold the request's estimated {need}"
        ),
        Reason::QualityExcluded(Some(t)) => format!(
            "excluded for this tenant and model by failed checks for {}s: tried after the others",
            secs(t)
        ),
        Reason::QualityExcluded(None) => {
            "excluded for this tenant and model by failed checks: tried after the others".to_owned()
        }
        Reason::QualityProbeHeld => {
            "another call holds its quality probe for this tenant and model".to_owned()
        }
        Reason::WeightZero => {
            "weight 0: never a first pick, tried only after the weighted deployments".to_owned()
        }
        Reason::UnsupportedParams => {
            "its provider's kind cannot carry some of the request's parameters \
             (unsupported_params: \"error\")"
                .to_owned()
        }
    }
}
