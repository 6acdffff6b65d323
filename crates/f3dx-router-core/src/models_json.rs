//! The routing table as JSON: [`crate::Router::models_json`] (Python's
//! `Router.models()`, the Worker's embedded `router.models()`), and the
//! OpenAI-shaped model list the front doors answer `GET .../models` with.
//! One place, so every host gives the same.

use serde_json::{json, Value};

use crate::config::RouterConfig;
use crate::table::RoutingTable;

/// The groups, in config order, each with its deployments. A config
/// without `models` gives one group named `"*"` (`"implicit": true`) of
/// every provider, whose `model` is the provider's fixed one, or `null`
/// (the caller's is sent).
pub(crate) fn models_json(config: &RouterConfig) -> Value {
    let table = &config.table;
    let groups: Vec<Value> = table
        .groups
        .iter()
        .enumerate()
        .map(|(g, group)| {
            let names = |list: &[usize]| -> Vec<&str> {
                list.iter().map(|&f| table.shown_name(f)).collect()
            };
            let deployments: Vec<Value> = group
                .deployments
                .iter()
                .map(|&d| {
                    let d = &table.deployments[d];
                    let slot = &table.slots[d.slot];
                    json!({
                        "provider": config.providers[d.provider].name,
                        "model": d.model,
                        "weight": d.weight,
                        "context_window": d.context_window,
                        "timeout_ms": d.timeout.as_millis() as u64,
                        "rpm": slot.rpm,
                        "tpm": slot.tpm,
                    })
                })
                .collect();
            json!({
                "name": table.shown_name(g),
                "implicit": !table.declared,
                "pattern": !table.declared || group.name.contains('*'),
                "policy": group.policy.name(),
                "max_in_flight": group.policy.max_in_flight(),
                "quality": group.quality.is_some(),
                "fallbacks": names(&group.fallbacks),
                "context_window_fallbacks": names(&group.context_window_fallbacks),
                "content_policy_fallbacks": names(&group.content_policy_fallbacks),
                "deployments": deployments,
            })
        })
        .collect();
    Value::Array(groups)
}

/// The model ids a front door lists: each group named by a model (a
/// pattern is no model a caller can name); without `models`, the
/// providers' fixed `model`s (once each), since any model is routed.
pub(crate) fn listed_ids(config: &RouterConfig) -> Vec<&str> {
    let table: &RoutingTable = &config.table;
    let mut ids: Vec<&str> = Vec::new();
    if table.declared {
        ids.extend(
            table
                .groups
                .iter()
                .map(|g| g.name.as_str())
                .filter(|n| !n.contains('*')),
        );
    } else {
        for m in config.providers.iter().filter_map(|p| p.model.as_deref()) {
            if !ids.contains(&m) {
                ids.push(m);
            }
        }
    }
    ids
}

/// One model as OpenAI's `GET /models` gives it. `created` is 0: the
/// router has no wall clock, and a group has no creation date.
pub(crate) fn openai_model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "f3dx-router"})
}
