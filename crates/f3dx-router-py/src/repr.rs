//! `repr(router)`: every setting that differs from its default, in the
//! constructor's own words, and never a secret (no key, no header value).

use f3dx_router_core::config_schema::{DEFAULT_STREAM_IDLE_TIMEOUT, DEFAULT_TIMEOUT};
use f3dx_router_core::{
    AzureApi, AzureAuth, HealthConfig, HedgeDelay, ModelGroup, OnFailure, Policy, ProviderConfig,
    QualityConfig, RouterConfig, RoutingTable,
};
use serde_json::{json, Value};
use std::time::Duration;

/// `Router([{...}, ...], policy=..., ...)` for `config`, whose providers
/// got `default_max_body_bytes` when they set none.
pub(crate) fn router_repr(config: &RouterConfig, default_max_body_bytes: usize) -> String {
    let providers: Vec<String> = config
        .providers
        .iter()
        .map(|p| provider_repr(p, default_max_body_bytes))
        .collect();
    let mut parts = vec![format!("providers=[{}]", providers.join(", "))];
    parts.push(policy_repr(config.policy));
    match config.health {
        None => parts.push("health=False".to_owned()),
        Some(h) => parts.extend(settings("health", &health_settings(&h))),
    }
    match config.quality {
        None => parts.push("quality=False".to_owned()),
        Some(q) => parts.extend(settings("quality", &quality_settings(&q))),
    }
    if config.table.declared {
        parts.extend(table_repr(config));
    }
    format!("Router({})", parts.join(", "))
}

/// `models={...}` and each fallback map given: every group with its
/// deployments (the settings each one gives) and its own routing settings.
fn table_repr(config: &RouterConfig) -> Vec<String> {
    let table = &config.table;
    let groups: Vec<String> = table
        .groups
        .iter()
        .map(|g| {
            let deployments: Vec<String> = g
                .deployments
                .iter()
                .map(|&d| deployment_repr(config, d))
                .collect();
            let list = format!("[{}]", deployments.join(", "));
            let mut own = Vec::new();
            if g.policy != config.policy {
                own.extend(
                    policy_items(g.policy)
                        .into_iter()
                        .map(|(k, v)| format!("'{k}': {v}")),
                );
            }
            if g.quality != config.quality {
                own.push(match g.quality {
                    None => "'quality': False".to_owned(),
                    Some(q) => {
                        let items: Vec<String> = quality_settings(&q)
                            .iter()
                            .map(|(k, v)| format!("'{k}': {v}"))
                            .collect();
                        format!("'quality': {{{}}}", items.join(", "))
                    }
                });
            }
            let value = if own.is_empty() {
                list
            } else {
                format!("{{'deployments': {list}, {}}}", own.join(", "))
            };
            format!("{}: {value}", py_str(&g.name))
        })
        .collect();
    let mut parts = vec![format!("models={{{}}}", groups.join(", "))];
    type Targets = fn(&ModelGroup) -> &Vec<usize>;
    let maps: [(&str, Targets); 3] = [
        ("fallbacks", |g| &g.fallbacks),
        ("context_window_fallbacks", |g| &g.context_window_fallbacks),
        ("content_policy_fallbacks", |g| &g.content_policy_fallbacks),
    ];
    for (key, targets) in maps {
        let entries = fallback_entries(table, targets);
        if !entries.is_empty() {
            parts.push(format!("{key}={{{}}}", entries.join(", ")));
        }
    }
    parts
}

/// `'gpt-4o': ['gpt-4o-mini']` for each group with fallbacks of one kind.
fn fallback_entries(table: &RoutingTable, targets: fn(&ModelGroup) -> &Vec<usize>) -> Vec<String> {
    table
        .groups
        .iter()
        .filter(|g| !targets(g).is_empty())
        .map(|g| {
            let names: Vec<String> = targets(g)
                .iter()
                .map(|&t| py_str(&table.groups[t].name))
                .collect();
            format!("{}: [{}]", py_str(&g.name), names.join(", "))
        })
        .collect()
}

/// A deployment as the mapping that configures it: its provider, then
/// each setting that is not the provider's (header names only).
fn deployment_repr(config: &RouterConfig, d: usize) -> String {
    let table = &config.table;
    let dep = &table.deployments[d];
    let p = &config.providers[dep.provider];
    let slot = &table.slots[dep.slot];
    let mut items = vec![("provider", py_str(&p.name))];
    // Shown when given: not the provider's, nor an exact group's own name.
    let group = &table.groups[dep.group].name;
    let given = |m: &&String| Some(*m) != p.model.as_ref() && (group.contains('*') || *m != group);
    if let Some(model) = dep.model.as_ref().filter(given) {
        items.push(("model", py_str(model)));
    }
    if dep.weight != 1 {
        items.push(("weight", dep.weight.to_string()));
    }
    if dep.timeout != p.timeout {
        items.push(("timeout_ms", millis(dep.timeout)));
    }
    if let Some(w) = dep.context_window {
        items.push(("context_window", w.to_string()));
    }
    if (slot.rpm, slot.tpm) != (p.rpm, p.tpm) {
        if let Some(rpm) = slot.rpm {
            items.push(("rpm", rpm.to_string()));
        }
        if let Some(tpm) = slot.tpm {
            items.push(("tpm", tpm.to_string()));
        }
    }
    if !dep.params.is_empty() {
        // Body fields, shown by name: a value could be anything.
        let names: Vec<String> = dep
            .params
            .keys()
            .map(|k| format!("{}: '(set)'", py_str(k)))
            .collect();
        items.push(("params", format!("{{{}}}", names.join(", "))));
    }
    if !dep.headers.is_empty() {
        items.push(("headers", hidden_headers(&dep.headers)));
    }
    mapping(items)
}

/// Header names with their values hidden (a value may be a credential:
/// Azure's api-key).
fn hidden_headers(headers: &[(String, String)]) -> String {
    let names: Vec<String> = headers
        .iter()
        .map(|(name, _)| format!("{}: '(hidden)'", py_str(name)))
        .collect();
    format!("{{{}}}", names.join(", "))
}

/// `{'key': value, ...}` of items whose values are already written.
fn mapping(items: Vec<(&str, String)>) -> String {
    let items: Vec<String> = items
        .into_iter()
        .map(|(k, v)| format!("'{k}': {v}"))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// A provider as the mapping that configures it: name, kind and base_url,
/// then each other setting given. The key is never shown (the config does
/// not keep where it came from); headers show their names only.
fn provider_repr(p: &ProviderConfig, default_max_body_bytes: usize) -> String {
    let mut items = vec![
        ("name", py_str(&p.name)),
        ("kind", py_str(p.kind.as_str())),
        ("base_url", py_str(&p.base_url)),
    ];
    if let Some(model) = &p.model {
        items.push(("model", py_str(model)));
    }
    if p.weight != 1 {
        items.push(("weight", p.weight.to_string()));
    }
    if p.timeout != DEFAULT_TIMEOUT {
        items.push(("timeout_ms", millis(p.timeout)));
    }
    if p.stream_idle_timeout != DEFAULT_STREAM_IDLE_TIMEOUT {
        items.push(("stream_idle_timeout_ms", millis(p.stream_idle_timeout)));
    }
    if p.max_body_bytes != default_max_body_bytes {
        items.push(("max_body_bytes", p.max_body_bytes.to_string()));
    }
    if let Some(rpm) = p.rpm {
        items.push(("rpm", rpm.to_string()));
    }
    if let Some(tpm) = p.tpm {
        items.push(("tpm", tpm.to_string()));
    }
    if !p.headers.is_empty() {
        items.push(("headers", hidden_headers(&p.headers)));
    }
    if let Some(azure) = &p.azure {
        if let AzureApi::Deployments { api_version } = &azure.api {
            items.push(("azure_api", py_str(azure.api.as_str())));
            items.push(("api_version", py_str(api_version)));
        }
        if azure.auth != AzureAuth::ApiKey {
            items.push(("auth", py_str(azure.auth.as_str())));
        }
    }
    mapping(items)
}

/// The policy and, when hedged, its hedging settings (all of them: they
/// decide what a call costs).
fn policy_repr(policy: Policy) -> String {
    let items: Vec<String> = policy_items(policy)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    items.join(", ")
}

/// [`policy_repr`]'s settings, by config key.
fn policy_items(policy: Policy) -> Vec<(&'static str, String)> {
    let mut items = vec![("policy", format!("'{}'", policy.name()))];
    if let Policy::Hedged { k, delay, budget } = policy {
        items.push(("hedge_k", k.to_string()));
        match delay {
            HedgeDelay::Immediate => items.push(("hedge_delay_ms", "0".to_owned())),
            HedgeDelay::Fixed(d) => items.push(("hedge_delay_ms", millis(d))),
            HedgeDelay::Auto { fallback } => {
                items.push(("hedge_delay_ms", "'auto'".to_owned()));
                items.push(("hedge_delay_fallback_ms", millis(fallback)));
            }
        }
        items.push((
            "hedge_budget",
            budget.map_or("None".to_owned(), |b| b.to_string()),
        ));
    }
    items
}

/// `name={...}` with the settings that differ from the defaults, or
/// nothing when none does.
fn settings(name: &str, changed: &[(&str, String)]) -> Option<String> {
    if changed.is_empty() {
        return None;
    }
    let items: Vec<String> = changed.iter().map(|(k, v)| format!("'{k}': {v}")).collect();
    Some(format!("{name}={{{}}}", items.join(", ")))
}

/// `health`'s settings that differ from the defaults, by config key, in
/// the config's order.
fn health_settings(h: &HealthConfig) -> Vec<(&'static str, String)> {
    let d = HealthConfig::default();
    let secs = |v: Duration| v.as_secs().to_string();
    let all = [
        ("window_s", h.window != d.window, secs(h.window)),
        ("buckets", h.buckets != d.buckets, h.buckets.to_string()),
        (
            "min_requests",
            h.min_requests != d.min_requests,
            h.min_requests.to_string(),
        ),
        (
            "max_error_rate",
            h.max_error_rate != d.max_error_rate,
            h.max_error_rate.to_string(),
        ),
        (
            "consecutive_failures",
            h.consecutive_failures != d.consecutive_failures,
            h.consecutive_failures.to_string(),
        ),
        ("ejection_s", h.ejection != d.ejection, secs(h.ejection)),
        (
            "max_ejection_s",
            h.max_ejection != d.max_ejection,
            secs(h.max_ejection),
        ),
    ];
    all.into_iter()
        .filter(|(_, changed, _)| *changed)
        .map(|(key, _, value)| (key, value))
        .collect()
}

/// `quality`'s settings that differ from the defaults, by config key.
fn quality_settings(q: &QualityConfig) -> Vec<(&'static str, String)> {
    let d = QualityConfig::default();
    let mut out = Vec::new();
    if q.window != d.window {
        out.push(("window", q.window.to_string()));
    }
    if q.min_samples != d.min_samples {
        out.push(("min_samples", q.min_samples.to_string()));
    }
    if q.min_pass_rate != d.min_pass_rate {
        out.push(("min_pass_rate", q.min_pass_rate.to_string()));
    }
    if q.probe_after != d.probe_after {
        out.push(("probe_after_s", q.probe_after.as_secs().to_string()));
    }
    if q.on_failure != d.on_failure {
        let name = match q.on_failure {
            OnFailure::Return => "'return'",
            OnFailure::Failover => "'failover'",
        };
        out.push(("on_failure", name.to_owned()));
    }
    if q.max_keys != d.max_keys {
        out.push(("max_keys", q.max_keys.to_string()));
    }
    if q.max_bytes != d.max_bytes {
        out.push(("max_bytes", q.max_bytes.to_string()));
    }
    out
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// `s` as a Python string literal in single quotes.
fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Every setting of `config` with the defaults filled in, by config key
/// (`check` prints it): never a key or a header value.
pub(crate) fn resolved(config: &RouterConfig) -> Value {
    let providers: Vec<Value> = config
        .providers
        .iter()
        .map(|p| {
            let header_names: Vec<&str> = p.headers.iter().map(|(n, _)| n.as_str()).collect();
            json!({
                "name": p.name, "kind": p.kind.as_str(), "base_url": p.base_url,
                "model": p.model, "weight": p.weight,
                "timeout_ms": p.timeout.as_millis() as u64,
                "stream_idle_timeout_ms": p.stream_idle_timeout.as_millis() as u64,
                "max_body_bytes": p.max_body_bytes, "rpm": p.rpm, "tpm": p.tpm,
                "header_names": header_names,
                "azure_api": p.azure.as_ref().map(|a| a.api.as_str()),
                "api_version": p.azure.as_ref().and_then(|a| match &a.api {
                    AzureApi::Deployments { api_version } => Some(api_version.as_str()),
                    AzureApi::V1 => None,
                }),
                "auth": p.azure.as_ref().map(|a| a.auth.as_str()),
            })
        })
        .collect();
    let (hedge_k, delay, fallback, budget) = policy_json(config.policy);
    let health = config.health.map_or(json!(false), |h| {
        json!({
            "window_s": h.window.as_secs(), "buckets": h.buckets, "min_requests": h.min_requests,
            "max_error_rate": h.max_error_rate, "consecutive_failures": h.consecutive_failures,
            "ejection_s": h.ejection.as_secs(), "max_ejection_s": h.max_ejection.as_secs(),
        })
    });
    let models = if config.table.declared {
        resolved_table(config)
    } else {
        Value::Null
    };
    json!({
        "providers": providers, "policy": config.policy.name(), "hedge_k": hedge_k,
        "hedge_delay_ms": delay, "hedge_delay_fallback_ms": fallback, "hedge_budget": budget,
        "health": health, "quality": quality_json(config.quality), "models": models,
    })
}

/// `(hedge_k, hedge_delay_ms, hedge_delay_fallback_ms, hedge_budget)` of
/// a policy, null where it has none.
fn policy_json(policy: Policy) -> (Value, Value, Value, Value) {
    match policy {
        Policy::Sequential | Policy::Weighted => {
            (Value::Null, Value::Null, Value::Null, Value::Null)
        }
        Policy::Hedged { k, delay, budget } => {
            let (delay, fallback) = match delay {
                HedgeDelay::Immediate => (json!(0), Value::Null),
                HedgeDelay::Fixed(d) => (json!(d.as_millis() as u64), Value::Null),
                HedgeDelay::Auto { fallback } => {
                    (json!("auto"), json!(fallback.as_millis() as u64))
                }
            };
            (json!(k), delay, fallback, json!(budget))
        }
    }
}

fn quality_json(quality: Option<QualityConfig>) -> Value {
    quality.map_or(json!(false), |q| {
        let on_failure = match q.on_failure {
            OnFailure::Return => "return",
            OnFailure::Failover => "failover",
        };
        json!({
            "window": q.window, "min_samples": q.min_samples, "min_pass_rate": q.min_pass_rate,
            "probe_after_s": q.probe_after.as_secs(), "on_failure": on_failure,
            "max_keys": q.max_keys, "max_bytes": q.max_bytes,
        })
    })
}

/// Every group as resolved: its routing settings, its deployments (the
/// model each sends, null for the caller's; limits and timeouts with the
/// provider's filled in; param and header names, never values) and the
/// groups it falls back to.
fn resolved_table(config: &RouterConfig) -> Value {
    let table = &config.table;
    let names = |list: &[usize]| -> Vec<&str> {
        list.iter()
            .map(|&g| table.groups[g].name.as_str())
            .collect()
    };
    let groups: serde_json::Map<String, Value> = table
        .groups
        .iter()
        .map(|g| {
            let deployments: Vec<Value> = g
                .deployments
                .iter()
                .map(|&d| {
                    let dep = &table.deployments[d];
                    let slot = &table.slots[dep.slot];
                    let header_names: Vec<&str> =
                        dep.headers.iter().map(|(n, _)| n.as_str()).collect();
                    let param_names: Vec<&str> = dep.params.keys().map(String::as_str).collect();
                    json!({
                        "provider": config.providers[dep.provider].name,
                        "model": slot.model, "weight": dep.weight,
                        "timeout_ms": dep.timeout.as_millis() as u64,
                        "context_window": dep.context_window, "rpm": slot.rpm, "tpm": slot.tpm,
                        "param_names": param_names, "header_names": header_names,
                    })
                })
                .collect();
            let (hedge_k, delay, fallback, budget) = policy_json(g.policy);
            let value = json!({
                "deployments": deployments, "policy": g.policy.name(), "hedge_k": hedge_k,
                "hedge_delay_ms": delay, "hedge_delay_fallback_ms": fallback,
                "hedge_budget": budget, "quality": quality_json(g.quality),
                "fallbacks": names(&g.fallbacks),
                "context_window_fallbacks": names(&g.context_window_fallbacks),
                "content_policy_fallbacks": names(&g.content_policy_fallbacks),
            });
            (g.name.clone(), value)
        })
        .collect();
    Value::Object(groups)
}
