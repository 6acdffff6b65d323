//! Every problem of a config at once, for `check` and for a host's error:
//! all the errors (not only the first, which [`RouterConfig::from_json`]
//! stops at) and warnings for settings that have no effect or values that
//! look like a mistake. One place, so the Python package and the Worker's
//! `ROUTER_CONFIG` say the same things.
//!
//! Errors are found by the parsers themselves: after each error the
//! offending key is removed (an optional one) or replaced by a valid
//! placeholder (a required one) and the part is parsed again, so every
//! message is the one `from_json` would give for that key, and the first
//! error is `from_json`'s. The routing table is checked group by group
//! against the providers as far as they parse, so a bad group does not
//! hide the next one's errors.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::{err, ConfigError};
use super::failover::FailoverLevel;
use super::forward;
use super::host::HostLimits;
use super::keys::{
    key_path, otel_refused, unknown_key_message, DEPLOYMENT_KEYS, GROUP_KEYS, HEALTH_KEYS,
    PROVIDER_KEYS, QUALITY_KEYS, ROUTER_KEYS,
};
use super::models::{
    check_cycles, check_group_name, exact_name, group_list, group_path, group_settings,
    parse_table, pattern_overlaps, Builder, MAX_GROUPS,
};
use super::monitoring::{parse_health, parse_quality};
use super::policy::{parse_policy, Policy};
use super::provider::{is_env_name, parse_provider, ProviderConfig};
use crate::quality::QualityConfig;

/// Most errors reported (a hostile config could have millions).
pub const MAX_PROBLEMS: usize = 50;

/// One problem: where, what, and the name of the provider it is in (when
/// that provider's name is itself valid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where and what, as in [`ConfigError`].
    pub error: ConfigError,
    /// The provider's name, for a problem inside a provider with a valid
    /// name.
    pub provider: Option<String>,
}

fn problem(error: ConfigError) -> ConfigProblem {
    ConfigProblem {
        error,
        provider: None,
    }
}

/// Every error of `value`, in the order `from_json` meets them (at most
/// [`MAX_PROBLEMS`]).
pub(super) fn all_errors(
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    limits: HostLimits,
) -> Vec<ConfigProblem> {
    let Some(obj) = value.as_object() else {
        return vec![problem(err("config", "must be an object"))];
    };
    let mut errors = Vec::new();
    if obj.contains_key("otel") {
        errors.push(problem(otel_refused()));
    }
    let (known, unknown) = split_unknown(obj, "config", ROUTER_KEYS, &["otel"]);
    errors.extend(unknown.into_iter().map(problem));
    let providers = match known.get("providers") {
        Some(Value::Array(list)) if !list.is_empty() => list.as_slice(),
        Some(Value::Array(_)) => {
            errors.push(problem(err(
                "providers",
                "is empty: give at least one provider",
            )));
            &[]
        }
        Some(_) => {
            errors.push(problem(err(
                "providers",
                "must be a list of provider objects",
            )));
            &[]
        }
        None => {
            errors.push(problem(err(
                "providers",
                "is required: give at least one provider",
            )));
            &[]
        }
    };
    let mut names: Vec<Option<String>> = Vec::new();
    // The providers as far as they parse, for the table's check.
    let mut parsed: Vec<ProviderConfig> = Vec::new();
    for (i, p) in providers.iter().enumerate() {
        if errors.len() >= MAX_PROBLEMS {
            return errors;
        }
        let at = format!("providers[{i}]");
        let (name, found, config) = provider_errors(p, &at, env, limits);
        parsed.extend(config);
        errors.extend(found.into_iter().map(|error| ConfigProblem {
            error,
            provider: name.clone(),
        }));
        if let Some(first) = name
            .as_ref()
            .and_then(|n| names.iter().position(|m| m.as_ref() == Some(n)))
        {
            errors.push(ConfigProblem {
                error: err(
                    format!("{at}.name"),
                    format!("is the name of providers[{first}]: provider names must be unique"),
                ),
                provider: name.clone(),
            });
        }
        names.push(name);
    }
    let n = providers.len().max(1);
    let policy_keys: Map<String, Value> = known
        .iter()
        .filter(|(k, _)| k.as_str() == "policy" || k.starts_with("hedge_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    errors.extend(
        retried(policy_keys, |o| parse_policy(o, n, limits).map(|_| ()), "")
            .into_iter()
            .map(problem),
    );
    for (key, keys) in [("health", HEALTH_KEYS), ("quality", QUALITY_KEYS)] {
        errors.extend(
            settings_errors(known.get(key), key, keys)
                .into_iter()
                .map(problem),
        );
    }
    let failover_keys: Map<String, Value> = known
        .iter()
        .filter(|(k, _)| FAILOVER_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let failover =
        |o: &Map<String, Value>| FailoverLevel::read(o, "", &FailoverLevel::default()).map(|_| ());
    let (found, failover_valid) = retried_with(failover_keys, failover, "", |o, key| {
        o.remove(key);
    });
    errors.extend(found.into_iter().map(problem));
    let router_forward = forward::read(&known, "", &Arc::from([]));
    if let Err(e) = &router_forward {
        errors.push(problem(e.clone()));
    }
    if errors.len() < MAX_PROBLEMS {
        // The table under the router's settings, or their defaults where
        // those are in error (reported above).
        let policy = parse_policy(&known, n, limits).unwrap_or(Policy::Sequential);
        let quality = parse_quality(known.get("quality"))
            .unwrap_or_else(|_| parse_quality(None).ok().flatten());
        let router_failover =
            FailoverLevel::read(&failover_valid, "", &FailoverLevel::default()).unwrap_or_default();
        let mut table_part = known.clone();
        table_part.retain(|k, _| !FAILOVER_KEYS.contains(&k.as_str()));
        table_part.extend(failover_valid);
        table_part.remove(forward::KEY);
        let mut table = Builder::default();
        table.router_failover = router_failover;
        table.router_forward = router_forward.unwrap_or_else(|_| Arc::from([]));
        let table = table_errors(&table_part, &parsed, policy, quality, &mut table, limits);
        errors.extend(table.into_iter().map(problem));
    }
    errors
}

/// Every error of the routing table (`models` and the fallbacks): each
/// group's, each deployment's, then the patterns, fallbacks and cycles
/// between the groups that parsed.
fn table_errors(
    obj: &Map<String, Value>,
    providers: &[ProviderConfig],
    policy: Policy,
    quality: Option<QualityConfig>,
    table: &mut Builder,
    limits: HostLimits,
) -> Vec<ConfigError> {
    let groups = match obj.get("models") {
        Some(Value::Object(g)) if !g.is_empty() && g.len() <= MAX_GROUPS => g,
        // No table, or one whose whole is wrong: one error at most.
        _ => {
            return parse_table(obj, providers, policy, quality, limits)
                .err()
                .into_iter()
                .collect()
        }
    };
    let mut errors = Vec::new();
    for (name, value) in groups {
        if errors.len() >= MAX_PROBLEMS {
            return errors;
        }
        errors.extend(group_errors(
            table, name, value, providers, policy, quality, limits,
        ));
    }
    errors.extend(pattern_overlaps(&table.groups, MAX_PROBLEMS));
    for key in [
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
    ] {
        match obj.get(key) {
            // Entry by entry, so that each bad one is named.
            Some(Value::Object(map)) => {
                for (from, targets) in map {
                    let one = Value::Object(Map::from_iter([(from.clone(), targets.clone())]));
                    errors.extend(table.fallbacks(Some(&one), key).err());
                }
            }
            other => errors.extend(table.fallbacks(other, key).err()),
        }
    }
    errors.extend(check_cycles(&table.groups).err());
    errors
}

/// The errors of one group; the group joins `table` with the deployments
/// that parsed (so that fallbacks naming it find it).
fn group_errors(
    table: &mut Builder,
    name: &str,
    value: &Value,
    providers: &[ProviderConfig],
    router_policy: Policy,
    router_quality: Option<QualityConfig>,
    limits: HostLimits,
) -> Vec<ConfigError> {
    let at = group_path(name);
    let mut errors: Vec<ConfigError> = check_group_name(name, &at).err().into_iter().collect();
    let cleaned;
    let value = match value {
        Value::Object(o) => {
            let (known, unknown) = split_unknown(o, &at, GROUP_KEYS, &[]);
            errors.extend(unknown);
            cleaned = Value::Object(known);
            &cleaned
        }
        v => v,
    };
    let (list, list_at, settings) = match group_list(value, &at) {
        Ok(found) => found,
        Err(e) => {
            errors.push(e);
            let list_at = if value.is_object() {
                format!("{at}.deployments")
            } else {
                at.clone()
            };
            let list = match value {
                Value::Array(l) => l.as_slice(),
                Value::Object(o) => o
                    .get("deployments")
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice),
                _ => &[],
            };
            (list, list_at, value.as_object())
        }
    };
    let (mut policy, mut quality) = (router_policy, router_quality);
    if let Some(o) = settings {
        let mut own: Map<String, Value> = o.clone();
        own.remove("deployments");
        let n = list.len().max(1);
        let router_failover = table.router_failover.clone();
        let router_forward = Arc::clone(&table.router_forward);
        let parse = |o: &Map<String, Value>| {
            group_settings(o, &at, n, router_policy, router_quality, limits)?;
            forward::read(o, &at, &router_forward)?;
            FailoverLevel::read(o, &at, &router_failover).map(|_| ())
        };
        let (found, valid) = retried_with(own, parse, &at, |o, key| {
            o.remove(key);
        });
        errors.extend(found);
        if let Ok((p, q)) = group_settings(&valid, &at, n, router_policy, router_quality, limits) {
            (policy, quality) = (p, q);
        }
        table.group_failover =
            FailoverLevel::read(&valid, &at, &router_failover).unwrap_or(router_failover);
        table.group_forward = forward::read(&valid, &at, &router_forward)
            .unwrap_or_else(|_| Arc::clone(&router_forward));
    } else {
        table.group_failover = table.router_failover.clone();
        table.group_forward = Arc::clone(&table.router_forward);
    }
    let group = table.groups.len();
    let exact = exact_name(name);
    let mut members = Vec::new();
    for (i, d) in list.iter().take(super::models::MAX_DEPLOYMENTS).enumerate() {
        if errors.len() >= MAX_PROBLEMS {
            break;
        }
        let d_at = format!("{list_at}[{i}]");
        let Some(obj) = d.as_object() else {
            errors.extend(table.deployment(d, &d_at, group, exact, providers).err());
            continue;
        };
        let (known, unknown) = split_unknown(obj, &d_at, DEPLOYMENT_KEYS, &[]);
        errors.extend(unknown);
        let mut parsed = None;
        let (found, _) = retried_with(
            known,
            |o| {
                let v = Value::Object(o.clone());
                table
                    .deployment(&v, &d_at, group, exact, providers)
                    .map(|d| parsed = Some(d))
            },
            &d_at,
            |o, key| match (key, providers.first()) {
                // Another provider stands in, so the rest is still checked.
                ("provider", Some(p)) => {
                    o.insert(key.to_owned(), Value::String(p.name.clone()));
                }
                _ => {
                    o.remove(key);
                }
            },
        );
        errors.extend(found);
        if let Some(d) = parsed {
            members.push(table.deployments.len());
            table.deployments.push(d);
        }
    }
    table.push_group(name, members, policy, quality);
    errors
}

/// The failover keys, at the router's level as at a group's or a
/// deployment's.
const FAILOVER_KEYS: [&str; 5] = [
    "failover_on",
    "retries",
    "backoff_ms",
    "backoff_max_ms",
    "unsupported_params",
];

/// `obj` without its unknown keys (and `skip`), and an error for each
/// unknown key, named by its position in `obj`.
fn split_unknown(
    obj: &Map<String, Value>,
    at: &str,
    known: &[&str],
    skip: &[&str],
) -> (Map<String, Value>, Vec<ConfigError>) {
    let mut kept = Map::new();
    let mut errors = Vec::new();
    for (index, (key, value)) in obj.iter().enumerate() {
        if known.contains(&key.as_str()) {
            kept.insert(key.clone(), value.clone());
        } else if !skip.contains(&key.as_str()) {
            errors.push(err(
                key_path(at, key, index),
                unknown_key_message(key, known),
            ));
        }
    }
    (kept, errors)
}

/// Errors of `health` or `quality` (settings objects).
fn settings_errors(value: Option<&Value>, key: &str, keys: &[&str]) -> Vec<ConfigError> {
    let Some(Value::Object(obj)) = value else {
        let parsed = match key {
            "health" => parse_health(value).map(|_| ()),
            _ => parse_quality(value).map(|_| ()),
        };
        return parsed.err().into_iter().collect();
    };
    let (known, mut errors) = split_unknown(obj, key, keys, &[]);
    let parse = |o: &Map<String, Value>| {
        let v = Value::Object(o.clone());
        match key {
            "health" => parse_health(Some(&v)).map(|_| ()),
            _ => parse_quality(Some(&v)).map(|_| ()),
        }
    };
    errors.extend(retried(known, parse, key));
    errors
}

/// Errors of one provider, its name if that is valid, and the provider as
/// it parses once its errors are taken out (placeholders standing in).
fn provider_errors(
    value: &Value,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    limits: HostLimits,
) -> (Option<String>, Vec<ConfigError>, Option<ProviderConfig>) {
    let Some(obj) = value.as_object() else {
        return (None, vec![err(at, "must be an object")], None);
    };
    let (known, mut errors) = split_unknown(obj, at, PROVIDER_KEYS, &[]);
    let mut name_valid = known.contains_key("name");
    let (found, valid) = retried_with(
        known,
        |o| parse_provider(&Value::Object(o.clone()), at, env, limits).map(|_| ()),
        at,
        |o, key| {
            if key == "name" {
                name_valid = false;
            }
            replace_provider_key(o, key);
        },
    );
    errors.extend(found);
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .filter(|_| name_valid)
        .map(str::to_owned);
    let config = parse_provider(&Value::Object(valid), at, env, limits).ok();
    (name, errors, config)
}

/// Take `key` out of a provider after an error: an optional key is
/// removed, a required one replaced by a valid placeholder (so the other
/// keys are still checked), and either of the key's two forms replaced by
/// a literal placeholder key.
fn replace_provider_key(obj: &mut Map<String, Value>, key: &str) {
    let placeholder = match key {
        "name" => Some("unnamed"),
        "kind" => Some("openai"),
        "base_url" => Some("http://placeholder.invalid"),
        // The classic Azure path needs one: a valid stand-in, so the
        // provider still parses for the table's checks.
        "api_version"
            if obj.get("kind").and_then(Value::as_str) == Some("azure")
                && obj.get("azure_api").and_then(Value::as_str) == Some("deployments") =>
        {
            Some("2024-10-21")
        }
        "api_key" | "api_key_env" | "" => {
            obj.remove("api_key_env");
            Some("placeholder")
        }
        _ => None,
    };
    let key = if key.is_empty() || key == "api_key_env" {
        "api_key"
    } else {
        key
    };
    match placeholder {
        Some(v) => {
            obj.insert(key.to_owned(), Value::String(v.to_owned()));
        }
        None => {
            obj.remove(key);
        }
    }
}

/// Errors of `parse` on `obj` (a part of the config at `at`), each key's
/// first error: after one, its key is removed and `parse` runs again.
fn retried(
    obj: Map<String, Value>,
    parse: impl Fn(&Map<String, Value>) -> Result<(), ConfigError>,
    at: &str,
) -> Vec<ConfigError> {
    retried_with(obj, parse, at, |o, key| {
        o.remove(key);
    })
    .0
}

/// [`retried`] with `take` deciding how a key is taken out (`""`: the
/// error named the part itself), and what is left of `obj`.
fn retried_with(
    mut obj: Map<String, Value>,
    mut parse: impl FnMut(&Map<String, Value>) -> Result<(), ConfigError>,
    at: &str,
    mut take: impl FnMut(&mut Map<String, Value>, &str),
) -> (Vec<ConfigError>, Map<String, Value>) {
    let mut errors: Vec<ConfigError> = Vec::new();
    // Each round takes a key out or ends: bounded by the keys, plus the
    // placeholders a provider's required keys get once.
    for _ in 0..obj.len() + 4 {
        let Err(e) = parse(&obj) else { break };
        let key = key_of(&e.field, at).to_owned();
        let repeated = errors.iter().any(|f| f.field == e.field);
        if !repeated {
            errors.push(e);
        }
        let before = obj.clone();
        take(&mut obj, &key);
        if repeated && obj == before {
            break;
        }
    }
    (errors, obj)
}

/// The key of the part at `at` that `field` is in: `timeout_ms` for
/// `providers[0].timeout_ms`, `headers` for `providers[0].headers.#2`,
/// `""` for the part itself.
fn key_of<'f>(field: &'f str, at: &str) -> &'f str {
    let rest = if at.is_empty() {
        field
    } else {
        match field.strip_prefix(at) {
            Some(rest) => rest.strip_prefix('.').unwrap_or(""),
            None => field,
        }
    };
    rest.split(['.', '[']).next().unwrap_or("")
}

// -- warnings -----------------------------------------------------------------

/// Settings that do nothing under the config's policy, and api_key values
/// that look like another tool's reference to an environment variable.
pub(super) fn warnings(obj: &Map<String, Value>) -> Vec<ConfigProblem> {
    let policy = obj
        .get("policy")
        .and_then(Value::as_str)
        .unwrap_or("sequential");
    let mut out = Vec::new();
    if policy != "hedged" {
        // (hedge_delay_fallback_ms without "auto" is an error already.)
        let auto = obj.get("hedge_delay_ms").and_then(Value::as_str) == Some("auto");
        for key in [
            "hedge_k",
            "hedge_delay_ms",
            "hedge_delay_fallback_ms",
            "hedge_budget",
        ] {
            if key == "hedge_delay_fallback_ms" && !auto {
                continue;
            }
            if obj.get(key).is_some_and(|v| !v.is_null()) {
                out.push(problem(err(
                    key,
                    format!(
                        "has no effect: the policy is \"{}\", not \"hedged\"",
                        policy_word(policy)
                    ),
                )));
            }
        }
    }
    out.extend(forward::warnings(obj, "").into_iter().map(problem));
    if let Some(Value::Object(groups)) = obj.get("models") {
        for (name, g) in groups.iter().take(MAX_GROUPS) {
            if let Value::Object(g) = g {
                out.extend(
                    forward::warnings(g, &group_path(name))
                        .into_iter()
                        .map(problem),
                );
            }
        }
    }
    let Some(Value::Array(providers)) = obj.get("providers") else {
        return out;
    };
    for (i, p) in providers.iter().enumerate() {
        let Some(p) = p.as_object() else { continue };
        let name = p.get("name").and_then(Value::as_str).map(str::to_owned);
        let at = format!("providers[{i}]");
        if policy != "weighted" && p.get("weight").is_some_and(|v| !v.is_null()) {
            out.push(ConfigProblem {
                error: err(
                    format!("{at}.weight"),
                    format!(
                        "has no effect: the policy is \"{}\", not \"weighted\"",
                        policy_word(policy)
                    ),
                ),
                provider: name.clone(),
            });
        }
        if p.get("api_key")
            .and_then(Value::as_str)
            .is_some_and(looks_like_env_reference)
        {
            out.push(ConfigProblem {
                error: err(
                    format!("{at}.api_key"),
                    "looks like another tool's reference to an environment variable \
                     (os.environ/NAME, ${NAME}, $NAME), which would be sent as the key itself; \
                     to read the key from the variable NAME, write api_key_env = \"NAME\" instead",
                ),
                provider: name,
            });
        }
    }
    out
}

/// The policy as a word a message may repeat (a known policy), or
/// "unknown" (an error says so).
fn policy_word(policy: &str) -> &'static str {
    match policy {
        "sequential" => "sequential",
        "weighted" => "weighted",
        "hedged" => "hedged",
        _ => "unknown",
    }
}

/// `os.environ/NAME` (LiteLLM), `${NAME}` or `$NAME` (shells, compose
/// files), `env:NAME`.
fn looks_like_env_reference(key: &str) -> bool {
    let name = key
        .strip_prefix("os.environ/")
        .or_else(|| key.strip_prefix("${").and_then(|k| k.strip_suffix('}')))
        .or_else(|| key.strip_prefix('$'))
        .or_else(|| key.strip_prefix("env:"));
    name.is_some_and(is_env_name)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::{ConfigReport, RouterConfig};

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn check(v: Value) -> ConfigReport {
        RouterConfig::check_json(&v, &no_env, HostLimits::default())
    }

    fn fields(problems: &[ConfigProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.error.field.as_str()).collect()
    }

    fn good(name: &str) -> Value {
        json!({"name": name, "kind": "openai", "base_url": "https://a.test/v1", "api_key": "k"})
    }

    #[test]
    fn every_error_at_once_with_the_provider_name() {
        let v = json!({
            "providers": [
                {"name": "a", "kind": "openai", "base_url": "https://a.test/v1", "api_key": "k",
                 "timeout_ms": 0, "rpm": -1, "tiemout": 1},
                {"kind": "grpc", "base_url": "ftp://x", "api_key_env": "UNSET_F3DX_VAR"},
                good("a"),
            ],
            "policy": "hedged", "hedge_k": 9, "hedge_budget": 99,
            "health": {"window_s": 0, "nope": 1},
            "quality": {"min_pass_rate": 2},
            "polcy": 1,
        });
        let r = check(v.clone());
        assert!(r.config.is_none());
        assert_eq!(
            fields(&r.errors),
            [
                "config.#7",
                "providers[0].#7",
                "providers[0].timeout_ms",
                "providers[0].rpm",
                "providers[1].name",
                "providers[1].kind",
                "providers[1].base_url",
                "providers[1].api_key_env",
                "providers[2].name",
                "hedge_budget",
                "hedge_k",
                "health.#2",
                "health.window_s",
                "quality.min_pass_rate",
            ]
        );
        let first = RouterConfig::from_json(&v, &no_env, HostLimits::default()).unwrap_err();
        assert_eq!(r.errors[0].error, first);
        assert_eq!(r.errors[2].provider.as_deref(), Some("a"));
        assert_eq!(r.errors[5].provider, None); // providers[1] has no name
        assert!(r.errors[0].error.message.contains("did you mean policy?"));
    }

    #[test]
    fn the_first_error_is_from_jsons() {
        let cases = [
            json!(7),
            json!({}),
            json!({"providers": []}),
            json!({"providers": [good("a"), good("a")]}),
            json!({"providers": [good("a")], "otel": true}),
            json!({"providers": [good("a")], "policy": "fastest"}),
            json!({"providers": [{"name": "a"}]}),
            json!({"providers": [7], "health": 3}),
            json!({"providers": [good("a")], "quality": {"window": 5, "min_samples": 9}}),
            json!({"providers": [good("a")], "hedge_delay_fallback_ms": 5}),
            json!({"providers": [good("a")], "models": {"m": [{"provider": "b"}]}}),
            json!({"providers": [good("a")], "models": {"m": {"deployments": 3}}}),
            json!({"providers": [good("a")], "models": {"m": [{"provider": "a"}]}, "fallbacks": {"m": ["m"]}}),
            json!({"providers": [good("a")], "models": []}),
            json!({"providers": [good("a")], "fallbacks": {}}),
        ];
        for v in cases {
            let r = check(v.clone());
            let first = RouterConfig::from_json(&v, &no_env, HostLimits::default()).unwrap_err();
            assert_eq!(r.errors[0].error, first, "{v}");
        }
    }

    #[test]
    fn every_table_error_at_once() {
        let v = json!({
            "providers": [good("a"), good("b")],
            "models": {
                "gpt-4o": [{"provider": "a"}, {"provider": "azure", "context_window": 0, "weight": -1}],
                "gpt-4o-mini": [],
                "claude-*": [{"provider": "a"}],
                "*-sonnet": [{"provider": "b", "bogus": 1}],
                "o3": {"deployments": [{"provider": "a"}], "hedge_k": "two", "polcy": 1},
                "x": [{"provider": "a", "rpm": 5}, {"provider": "a", "model": "x", "rpm": 6}],
                "p": [{"provider": "a"}],
                "q": [{"provider": "b"}],
            },
            "fallbacks": {"p": ["q"], "q": ["p"], "o3": ["o4"], "nope": ["p"]},
            "context_window_fallbacks": 7,
        });
        let r = check(v.clone());
        assert!(r.config.is_none());
        assert_eq!(
            fields(&r.errors),
            [
                "models[\"gpt-4o\"][1].provider",
                "models[\"gpt-4o\"][1].weight",
                "models[\"gpt-4o\"][1].context_window",
                "models[\"gpt-4o-mini\"]",
                "models[\"*-sonnet\"][0].#2",
                "models[\"o3\"].#3",
                "models[\"o3\"].hedge_k",
                "models[\"x\"][1].rpm",
                "models[\"*-sonnet\"]",
                "fallbacks[\"o3\"][0]",
                "fallbacks[\"nope\"]",
                "context_window_fallbacks",
                "fallbacks",
            ]
        );
        let first = RouterConfig::from_json(&v, &no_env, HostLimits::default()).unwrap_err();
        assert_eq!(r.errors[0].error, first);
        // One error, every line: what every host shows.
        let all = RouterConfig::from_json_checked(&v, &no_env, HostLimits::default()).unwrap_err();
        assert_eq!(all.field, first.field);
        let lines: Vec<String> = all.to_string().lines().map(str::to_owned).collect();
        let expected: Vec<String> = r.errors.iter().map(|p| p.error.to_string()).collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn table_errors_after_provider_errors() {
        // A provider in error still serves the table's check: a deployment
        // naming it is not reported as naming no provider.
        let v = json!({
            "providers": [{"name": "a", "kind": "grpc", "base_url": "https://a.test/v1", "api_key": "k"}],
            "models": {"m": [{"provider": "a", "context_window": "big"}]},
        });
        let r = check(v);
        assert_eq!(
            fields(&r.errors),
            ["providers[0].kind", "models[\"m\"][0].context_window"]
        );
    }

    #[test]
    fn failover_errors_at_every_level_once() {
        let v = json!({
            "providers": [good("a")],
            "failover_on": [700],
            "models": {
                "m": {"deployments": [{"provider": "a", "retries": -1}], "failover_on": [99]},
                "n": [{"provider": "a", "backoff_ms": "soon"}],
            },
        });
        let r = check(v.clone());
        let found = fields(&r.errors);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].starts_with("failover_on"));
        assert!(found[1].starts_with("models[\"m\"].failover_on"));
        assert_eq!(found[2], "models[\"m\"].deployments[0].retries");
        assert_eq!(found[3], "models[\"n\"][0].backoff_ms");
        // Without a table the router's failover error is reported once too.
        let r = check(json!({"providers": [good("a")], "retries": -1}));
        assert_eq!(fields(&r.errors), ["retries"]);
    }

    #[test]
    fn a_valid_table_checks_clean() {
        let r = check(json!({
            "providers": [good("a"), good("b")],
            "models": {"m": [{"provider": "a"}, {"provider": "b", "model": "n"}], "*": [{"provider": "a"}]},
            "fallbacks": {"m": ["*"]},
        }));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(r.config.is_some());
    }

    #[test]
    fn a_valid_config_has_no_errors() {
        let r =
            check(json!({"providers": [good("a"), good("b")], "policy": "hedged", "hedge_k": 2}));
        assert!(r.errors.is_empty());
        assert!(r.warnings.is_empty());
        assert!(r.config.is_some());
    }

    #[test]
    fn warnings_for_settings_without_effect() {
        let mut b = good("b");
        b["weight"] = json!(3);
        let r = check(json!({"providers": [good("a"), b], "hedge_k": 2, "hedge_delay_ms": 100}));
        assert!(r.config.is_some());
        assert_eq!(
            fields(&r.warnings),
            ["hedge_k", "hedge_delay_ms", "providers[1].weight"]
        );
        assert!(r.warnings[0]
            .error
            .message
            .contains("\"sequential\", not \"hedged\""));
        assert_eq!(r.warnings[2].provider.as_deref(), Some("b"));
        let r = check(json!({"providers": [good("a"), good("b")], "policy": "weighted"}));
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn warnings_for_key_references_of_other_tools() {
        for key in [
            "os.environ/OPENAI_API_KEY",
            "${OPENAI_API_KEY}",
            "$OPENAI_API_KEY",
            "env:OPENAI_API_KEY",
        ] {
            let mut p = good("a");
            p["api_key"] = json!(key);
            let r = check(json!({"providers": [p]}));
            assert_eq!(fields(&r.warnings), ["providers[0].api_key"], "{key}");
            let message = &r.warnings[0].error.message;
            assert!(
                message.contains("api_key_env") && !message.contains("OPENAI"),
                "{message}"
            );
        }
        for key in ["sk-abc$def", "$", "${}", "os.environ/", "$1ABC"] {
            let mut p = good("a");
            p["api_key"] = json!(key);
            assert!(
                check(json!({"providers": [p]})).warnings.is_empty(),
                "{key}"
            );
        }
    }

    #[test]
    fn errors_are_bounded() {
        let providers: Vec<Value> = (0..200).map(|_| json!({"timeout_ms": -1})).collect();
        assert_eq!(
            check(json!({"providers": providers})).errors.len(),
            MAX_PROBLEMS
        );
    }

    #[test]
    fn no_problem_repeats_a_value() {
        const PLANTED: &str = "sk-PLANTED0123456789";
        let v = json!({
            "providers": [
                {"name": PLANTED, "kind": PLANTED, "base_url": PLANTED, "api_key_env": PLANTED, PLANTED: 1,
                 "headers": {PLANTED: PLANTED}, "model": 7, "api_key": format!("${PLANTED}")},
            ],
            "policy": PLANTED, PLANTED: 1, "health": {PLANTED: 1}, "quality": {"on_failure": PLANTED},
            "hedge_delay_ms": PLANTED,
            "models": {"m": [{"provider": PLANTED, "model": 7, PLANTED: 1, "params": {"model": PLANTED},
                              "headers": {PLANTED: PLANTED}, "context_window": PLANTED}]},
            "fallbacks": {"m": [PLANTED]},
        });
        let r = check(v);
        for p in r.errors.iter().chain(&r.warnings) {
            assert!(!p.error.to_string().contains("PLANTED"), "{}", p.error);
        }
    }
}
