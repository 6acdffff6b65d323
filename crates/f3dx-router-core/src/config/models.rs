//! The routing table's settings: `models` (groups of deployments) and the
//! fallbacks between groups (`fallbacks`, `context_window_fallbacks`,
//! `content_policy_fallbacks`).
//!
//! ```json
//! "models": {
//!   "gpt-4o": [{"provider": "openai"}, {"provider": "azure", "model": "prod-4o"}],
//!   "claude-*": {"deployments": [{"provider": "anthropic"}], "policy": "sequential"}
//! },
//! "fallbacks": {"gpt-4o": ["gpt-4o-mini"]}
//! ```
//!
//! A group is a list of deployments, or an object of `deployments` and
//! the group's own policy and quality settings. Paths in errors name the
//! group: `models["gpt-4o"][1].provider`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::{err, ConfigError};
use super::failover::FailoverLevel;
use super::forward;
use super::host::HostLimits;
use super::keys::{reject_unknown, DEPLOYMENT_KEYS, GROUP_KEYS};
use super::monitoring::parse_quality;
use super::policy::parse_policy;
use super::provider::{parse_headers, ProviderConfig};
use super::values::{opt_millis, opt_str, opt_uint, per_minute};
use crate::config::Policy;
use crate::quality::QualityConfig;
use crate::table::{
    overlap, specificity, Deployment, ModelGroup, RoutingTable, Slot, StructuredOutput,
};

/// Most groups a table may have.
pub const MAX_GROUPS: usize = 10_000;
/// Most deployments in one group.
pub const MAX_DEPLOYMENTS: usize = 1_000;
/// Longest group name (a model name or a pattern of one).
pub const MAX_GROUP_NAME_LEN: usize = 256;
/// Most groups an unknown model's error lists.
pub const GROUPS_LISTED: usize = 20;
/// Body fields a deployment's `params` may not set: the request's own
/// (its `model` has its own key).
const RESERVED_PARAMS: &[&str] = &["model", "messages", "stream"];
/// The keys naming fallbacks between groups.
const FALLBACK_KEYS: [&str; 3] = [
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
];

/// `models["name"]`: the path of a group (its name JSON-quoted, so any
/// name reads unambiguously).
pub(super) fn group_path(name: &str) -> String {
    format!(
        "models[{}]",
        serde_json::to_string(name).unwrap_or_default()
    )
}

/// The routing table of a config: its `models` and fallbacks, or the
/// implicit group of every provider.
pub(super) fn parse_table(
    obj: &Map<String, Value>,
    providers: &[ProviderConfig],
    policy: Policy,
    quality: Option<QualityConfig>,
    limits: HostLimits,
) -> Result<RoutingTable, ConfigError> {
    let groups = match obj.get("models") {
        None | Some(Value::Null) => {
            for key in FALLBACK_KEYS {
                if obj.get(key).is_some_and(|v| !v.is_null()) {
                    return Err(err(key, "needs a models table: fallbacks name its groups"));
                }
            }
            let failover = FailoverLevel::read(obj, "", &FailoverLevel::default())?;
            let forward = forward::read(obj, "", &Arc::from([]))?;
            return Ok(implicit(providers, policy, quality, &failover, forward));
        }
        Some(Value::Object(groups)) => groups,
        Some(_) => {
            return Err(err(
                "models",
                "must be an object of model name (or pattern) to its deployments",
            ))
        }
    };
    if groups.is_empty() {
        return Err(err("models", "is empty: give at least one model group"));
    }
    if groups.len() > MAX_GROUPS {
        return Err(err("models", format!("has more than {MAX_GROUPS} groups")));
    }
    let mut table = Builder {
        router_failover: FailoverLevel::read(obj, "", &FailoverLevel::default())?,
        router_forward: forward::read(obj, "", &Arc::from([]))?,
        ..Builder::default()
    };
    for (name, value) in groups {
        table.group(name, value, providers, policy, quality, limits)?;
    }
    check_patterns(&table.groups)?;
    for key in FALLBACK_KEYS {
        table.fallbacks(obj.get(key), key)?;
    }
    check_cycles(&table.groups)?;
    Ok(RoutingTable::new(
        table.groups,
        table.deployments,
        table.slots,
        true,
    ))
}

/// The table of a config without `models`: one group of every provider,
/// each with its own settings.
fn implicit(
    providers: &[ProviderConfig],
    policy: Policy,
    quality: Option<QualityConfig>,
    failover: &FailoverLevel,
    forward_headers: Arc<[String]>,
) -> RoutingTable {
    let deployments = providers
        .iter()
        .enumerate()
        .map(|(i, p)| Deployment {
            group: 0,
            provider: i,
            model: p.model.clone(),
            weight: p.weight,
            timeout: p.timeout,
            context_window: None,
            params: Map::new(),
            headers: Vec::new(),
            slot: i,
            failover_on: failover.failover_on.clone(),
            retry: failover.retry,
            structured_output: StructuredOutput::Native,
            unsupported_params: failover.unsupported_params,
        })
        .collect();
    let slots = providers
        .iter()
        .enumerate()
        .map(|(i, p)| Slot {
            provider: i,
            model: p.model.clone(),
            rpm: p.rpm,
            tpm: p.tpm,
        })
        .collect();
    let group = ModelGroup {
        name: String::new(),
        deployments: (0..providers.len()).collect(),
        policy,
        quality,
        fallbacks: Vec::new(),
        context_window_fallbacks: Vec::new(),
        content_policy_fallbacks: Vec::new(),
        forward_headers,
    };
    RoutingTable::new(vec![group], deployments, slots, false)
}

/// A table being built, group by group.
#[derive(Default)]
pub(super) struct Builder {
    pub(super) groups: Vec<ModelGroup>,
    pub(super) deployments: Vec<Deployment>,
    slots: Vec<Slot>,
    /// Where each slot's budgets were declared, for a conflict's message.
    slot_origin: Vec<String>,
    /// The router's failover settings, which every group's extend.
    pub(super) router_failover: FailoverLevel,
    /// The failover settings of the group being built, which its
    /// deployments extend.
    pub(super) group_failover: FailoverLevel,
    /// The router's `forward_headers`, which a group's replaces.
    pub(super) router_forward: Arc<[String]>,
    /// The `forward_headers` of the group being built.
    pub(super) group_forward: Arc<[String]>,
}

impl Builder {
    fn group(
        &mut self,
        name: &str,
        value: &Value,
        providers: &[ProviderConfig],
        router_policy: Policy,
        router_quality: Option<QualityConfig>,
        limits: HostLimits,
    ) -> Result<(), ConfigError> {
        let at = group_path(name);
        check_group_name(name, &at)?;
        if let Value::Object(o) = value {
            reject_unknown(o, &at, GROUP_KEYS)?;
        }
        let (list, list_at, settings) = group_list(value, &at)?;
        let (policy, quality) = match settings {
            Some(o) => group_settings(o, &at, list.len(), router_policy, router_quality, limits)?,
            None => (router_policy, router_quality),
        };
        self.group_failover = match settings {
            Some(o) => FailoverLevel::read(o, &at, &self.router_failover)?,
            None => self.router_failover.clone(),
        };
        self.group_forward = match settings {
            Some(o) => forward::read(o, &at, &self.router_forward)?,
            None => Arc::clone(&self.router_forward),
        };
        let group = self.groups.len();
        let exact = exact_name(name);
        let mut members = Vec::with_capacity(list.len());
        for (i, d) in list.iter().enumerate() {
            let d_at = format!("{list_at}[{i}]");
            let deployment = self.deployment(d, &d_at, group, exact, providers)?;
            members.push(self.deployments.len());
            self.deployments.push(deployment);
        }
        self.push_group(name, members, policy, quality);
        Ok(())
    }

    /// Add a group whose deployments are already in `deployments`.
    pub(super) fn push_group(
        &mut self,
        name: &str,
        members: Vec<usize>,
        policy: Policy,
        quality: Option<QualityConfig>,
    ) {
        self.groups.push(ModelGroup {
            name: name.to_owned(),
            deployments: members,
            policy,
            quality,
            fallbacks: Vec::new(),
            context_window_fallbacks: Vec::new(),
            content_policy_fallbacks: Vec::new(),
            forward_headers: Arc::clone(&self.group_forward),
        });
    }

    pub(super) fn deployment(
        &mut self,
        value: &Value,
        at: &str,
        group: usize,
        exact: Option<&str>,
        providers: &[ProviderConfig],
    ) -> Result<Deployment, ConfigError> {
        let obj = value
            .as_object()
            .ok_or_else(|| err(at, "must be an object naming its provider"))?;
        reject_unknown(obj, at, DEPLOYMENT_KEYS)?;
        let provider_at = format!("{at}.provider");
        let provider = match obj.get("provider") {
            Some(Value::String(name)) => providers
                .iter()
                .position(|p| &p.name == name)
                .ok_or_else(|| {
                    err(
                        &provider_at,
                        "names no provider in providers (the name must be one of theirs)",
                    )
                })?,
            Some(_) => return Err(err(provider_at, "must be a string: a provider's name")),
            None => {
                return Err(err(
                    provider_at,
                    "is required: the name of the provider serving this model",
                ))
            }
        };
        let p = &providers[provider];
        let model = match opt_str(obj, "model", at)? {
            Some("") => return Err(err(format!("{at}.model"), "is empty")),
            Some(m) => Some(m.to_owned()),
            None => p.model.clone(),
        };
        let weight = match opt_uint(obj, "weight", &format!("{at}.weight"))? {
            None => 1,
            Some(w @ 0..=1_000_000) => w as u32,
            Some(_) => return Err(err(format!("{at}.weight"), "must be between 0 and 1000000")),
        };
        let timeout = opt_millis(obj, "timeout_ms", at)?.unwrap_or(p.timeout);
        let context_window = match obj.get("context_window") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=100_000_000) => Some(n),
                _ => {
                    return Err(err(
                        format!("{at}.context_window"),
                        "must be a positive integer (tokens), at most 100000000",
                    ))
                }
            },
        };
        let params = match obj.get("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => {
                if let Some(key) = RESERVED_PARAMS.iter().find(|k| o.contains_key(**k)) {
                    return Err(err(
                        format!("{at}.params.{key}"),
                        "is the request's own field: a deployment cannot set it (its model has \
                         the key model)",
                    ));
                }
                o.clone()
            }
            Some(_) => {
                return Err(err(
                    format!("{at}.params"),
                    "must be an object of body fields",
                ))
            }
        };
        let structured_output = match opt_str(obj, "structured_output", at)? {
            None | Some("native") => StructuredOutput::Native,
            Some("tool") => StructuredOutput::Tool,
            Some(_) => return Err(err(
                format!("{at}.structured_output"),
                "must be \"native\" (Anthropic's structured outputs) or \"tool\" (a forced tool)",
            )),
        };
        let headers = parse_headers(obj.get("headers"), at)?;
        let (rpm, tpm) = (per_minute(obj, at, "rpm")?, per_minute(obj, at, "tpm")?);
        // What the router remembers is per provider and model sent: a
        // group named by a model sends that name unless told otherwise.
        // (so a fallback group's deployment sends its group's name, not
        // the caller's).
        let model = model.or_else(|| exact.map(str::to_owned));
        let slot = self.slot(provider, model.clone(), rpm, tpm, p, at)?;
        let failover = FailoverLevel::read(obj, at, &self.group_failover)?;
        Ok(Deployment {
            group,
            provider,
            model,
            weight,
            timeout,
            context_window,
            params,
            headers,
            slot,
            failover_on: failover.failover_on,
            retry: failover.retry,
            structured_output,
            unsupported_params: failover.unsupported_params,
        })
    }

    /// The slot of `provider` sending `model`, with the budgets declared
    /// here (or the provider's); two declarations must agree.
    fn slot(
        &mut self,
        provider: usize,
        model: Option<String>,
        rpm: Option<u64>,
        tpm: Option<u64>,
        p: &ProviderConfig,
        at: &str,
    ) -> Result<usize, ConfigError> {
        let declared = rpm.is_some() || tpm.is_some();
        let (rpm, tpm) = if declared { (rpm, tpm) } else { (p.rpm, p.tpm) };
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| s.provider == provider && s.model == model)
        {
            let s = &mut self.slots[i];
            if declared && (s.rpm, s.tpm) != (rpm, tpm) {
                if (s.rpm, s.tpm) == (p.rpm, p.tpm) && self.slot_origin[i].is_empty() {
                    // The first listing took the provider's; this one says.
                    (s.rpm, s.tpm) = (rpm, tpm);
                    self.slot_origin[i] = at.to_owned();
                    return Ok(i);
                }
                let first = if self.slot_origin[i].is_empty() {
                    "the provider".to_owned()
                } else {
                    self.slot_origin[i].clone()
                };
                return Err(err(
                    format!("{at}.rpm"),
                    format!(
                        "differs from the rpm/tpm of {first}, which has the same provider and \
                         model: a rate limit belongs to the provider and model, declare it once"
                    ),
                ));
            }
            return Ok(i);
        }
        self.slots.push(Slot {
            provider,
            model,
            rpm,
            tpm,
        });
        self.slot_origin.push(if declared {
            at.to_owned()
        } else {
            String::new()
        });
        Ok(self.slots.len() - 1)
    }

    /// One of the fallback keys: group name to a list of group names.
    pub(super) fn fallbacks(
        &mut self,
        value: Option<&Value>,
        key: &str,
    ) -> Result<(), ConfigError> {
        let map = match value {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(err(
                    key,
                    "must be an object of group name to the list of groups tried after it",
                ))
            }
        };
        for (from, targets) in map {
            let at = format!("{key}[{}]", serde_json::to_string(from).unwrap_or_default());
            let Some(g) = self.groups.iter().position(|g| &g.name == from) else {
                return Err(err(at, "names no group in models"));
            };
            let list = match targets {
                Value::Array(list) => list,
                Value::String(_) => std::slice::from_ref(targets),
                _ => return Err(err(at, "must be a list of group names")),
            };
            let mut resolved = Vec::with_capacity(list.len());
            for (i, t) in list.iter().enumerate() {
                let t_at = format!("{at}[{i}]");
                let name = t
                    .as_str()
                    .ok_or_else(|| err(&t_at, "must be a string: a group's name"))?;
                let target = self
                    .groups
                    .iter()
                    .position(|g| g.name == name)
                    .ok_or_else(|| err(&t_at, "names no group in models"))?;
                if target == g {
                    return Err(err(t_at, "is the group itself: a fallback must be another"));
                }
                if !resolved.contains(&target) {
                    resolved.push(target);
                }
            }
            let group = &mut self.groups[g];
            match key {
                "fallbacks" => group.fallbacks = resolved,
                "context_window_fallbacks" => group.context_window_fallbacks = resolved,
                _ => group.content_policy_fallbacks = resolved,
            }
        }
        Ok(())
    }
}

/// A group's deployments, the path of their list, and its settings (a
/// group given as an object).
pub(super) type GroupList<'v> = (&'v [Value], String, Option<&'v Map<String, Value>>);

/// A group's deployments (where they are listed, for paths) and, for a
/// group given as an object, its settings. Unknown keys are the caller's.
pub(super) fn group_list<'v>(value: &'v Value, at: &str) -> Result<GroupList<'v>, ConfigError> {
    let (list, list_at, settings) = match value {
        Value::Array(list) => (list, at.to_owned(), None),
        Value::Object(o) => {
            let list_at = format!("{at}.deployments");
            match o.get("deployments") {
                Some(Value::Array(list)) => (list, list_at, Some(o)),
                Some(_) => return Err(err(list_at, "must be a list of deployments")),
                None => {
                    return Err(err(
                        list_at,
                        "is required: the deployments serving this model",
                    ))
                }
            }
        }
        _ => {
            return Err(err(
                at,
                "must be a list of deployments, or an object with \"deployments\"",
            ))
        }
    };
    if list.is_empty() {
        return Err(err(
            list_at,
            "is empty: give at least one deployment (a provider serving this model)",
        ));
    }
    if list.len() > MAX_DEPLOYMENTS {
        return Err(err(
            list_at,
            format!("has more than {MAX_DEPLOYMENTS} deployments"),
        ));
    }
    Ok((list, list_at, settings))
}

/// The model a group named by an exact model name sends by default (a
/// pattern sends the caller's).
pub(super) fn exact_name(name: &str) -> Option<&str> {
    (!name.contains('*')).then_some(name)
}

/// A group's own `policy`, `hedge_*` and `quality`, over the router's.
pub(super) fn group_settings(
    o: &Map<String, Value>,
    at: &str,
    n: usize,
    router_policy: Policy,
    router_quality: Option<QualityConfig>,
    limits: HostLimits,
) -> Result<(Policy, Option<QualityConfig>), ConfigError> {
    let prefix = |e: ConfigError| ConfigError {
        field: format!("{at}.{}", e.field),
        message: e.message,
    };
    let own_policy = o.keys().any(|k| k == "policy" || k.starts_with("hedge_"));
    let policy = if own_policy {
        parse_policy(o, n, limits).map_err(prefix)?
    } else {
        router_policy
    };
    let quality = match o.get("quality") {
        None => router_quality,
        v => parse_quality(v).map_err(prefix)?,
    };
    Ok((policy, quality))
}

/// A group's name: a model name, or a pattern of one.
pub(super) fn check_group_name(name: &str, at: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(err(
            at,
            "has an empty name: name it by its model (or \"*\")",
        ));
    }
    if name.len() > MAX_GROUP_NAME_LEN {
        return Err(err(
            "models",
            format!("has a group name over {MAX_GROUP_NAME_LEN} bytes"),
        ));
    }
    // Names travel in traces and headers.
    if name.chars().any(|c| c.is_control()) {
        return Err(err(at, "has a control character in its name"));
    }
    Ok(())
}

/// Two patterns of equal specificity that a model could match both of
/// would make the choice depend on the config's order: refused.
fn check_patterns(groups: &[ModelGroup]) -> Result<(), ConfigError> {
    pattern_overlaps(groups, 1)
        .into_iter()
        .next()
        .map_or(Ok(()), Err)
}

/// The first `limit` pairs of overlapping patterns of equal specificity,
/// as errors.
pub(super) fn pattern_overlaps(groups: &[ModelGroup], limit: usize) -> Vec<ConfigError> {
    let patterns: Vec<&ModelGroup> = groups.iter().filter(|g| g.name.contains('*')).collect();
    let mut found = Vec::new();
    for (i, a) in patterns.iter().enumerate() {
        for b in &patterns[..i] {
            if found.len() >= limit {
                return found;
            }
            if specificity(&a.name) == specificity(&b.name) && overlap(&a.name, &b.name) {
                found.push(err(
                    group_path(&a.name),
                    format!(
                        "overlaps {} with as many literal characters: a model matching both \
                         would be routed by the config's order; make one more specific",
                        group_path(&b.name)
                    ),
                ));
            }
        }
    }
    found
}

/// Fallbacks are followed from group to group: a cycle would never end.
pub(super) fn check_cycles(groups: &[ModelGroup]) -> Result<(), ConfigError> {
    let edges = |g: &ModelGroup| -> Vec<usize> {
        let mut e = g.fallbacks.clone();
        e.extend(&g.context_window_fallbacks);
        e.extend(&g.content_policy_fallbacks);
        e
    };
    // Depth-first, iterative: 0 unseen, 1 on the path, 2 done.
    let mut mark = vec![0u8; groups.len()];
    for start in 0..groups.len() {
        if mark[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, edges(&groups[start]), 0usize)];
        mark[start] = 1;
        while let Some((g, next, i)) = stack.last_mut() {
            if let Some(&t) = next.get(*i) {
                *i += 1;
                match mark[t] {
                    0 => {
                        mark[t] = 1;
                        let e = edges(&groups[t]);
                        stack.push((t, e, 0));
                    }
                    1 => {
                        return Err(err(
                            "fallbacks",
                            format!(
                                "has a cycle through {} and {}: fallbacks are followed from group \
                                 to group, so a cycle would never end",
                                group_path(&groups[*g].name),
                                group_path(&groups[t].name)
                            ),
                        ))
                    }
                    _ => {}
                }
            } else {
                mark[*g] = 2;
                stack.pop();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{HostLimits, RouterConfig};
    use super::*;

    fn parse(models: Value, extra: Value) -> Result<RouterConfig, ConfigError> {
        let p = |name: &str| {
            json!({"name": name, "kind": "openai", "base_url": "https://x.test/v1",
                   "api_key": "sk-secret-0123456789"})
        };
        let mut config = json!({"providers": [p("a"), p("b")], "models": models});
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        RouterConfig::from_json(&config, &|_| None, HostLimits::default())
    }

    fn error(models: Value, extra: Value) -> ConfigError {
        let e = parse(models, extra).expect_err("must be refused");
        assert!(!e.to_string().contains("sk-secret"), "{e}");
        e
    }

    #[test]
    fn groups_deployments_and_slots() {
        let c = parse(
            json!({
                "gpt-4o": [{"provider": "a"}, {"provider": "b", "model": "gpt-4o-2024", "weight": 3,
                            "timeout_ms": 500, "context_window": 128000, "rpm": 10,
                            "params": {"top_k": 40}, "headers": {"X-Team": "blue"}}],
                "gpt-4o-mini": {"deployments": [{"provider": "a"}], "policy": "hedged", "quality": false},
                "claude-*": [{"provider": "b", "structured_output": "tool"}],
            }),
            json!({"fallbacks": {"gpt-4o-mini": ["gpt-4o"]}}),
        )
        .unwrap();
        let t = &c.table;
        assert!(t.declared);
        assert_eq!(t.groups.len(), 3);
        let d: Vec<(usize, Option<&str>, usize)> = t
            .deployments
            .iter()
            .map(|d| (d.provider, d.model.as_deref(), d.slot))
            .collect();
        // An exact group sends its own name; a pattern group the caller's.
        assert_eq!(
            d,
            [
                (0, Some("gpt-4o"), 0),
                (1, Some("gpt-4o-2024"), 1),
                (0, Some("gpt-4o-mini"), 2),
                (1, None, 3)
            ]
        );
        let b = &t.deployments[1];
        assert_eq!((b.weight, b.context_window), (3, Some(128000)));
        assert_eq!(b.timeout, std::time::Duration::from_millis(500));
        assert_eq!(b.headers, [("x-team".to_owned(), "blue".to_owned())]);
        assert_eq!(b.params["top_k"], 40);
        assert_eq!(t.slots[1].rpm, Some(10));
        // `structured_output` defaults to native.
        assert_eq!(b.structured_output, StructuredOutput::Native);
        assert_eq!(t.deployments[3].structured_output, StructuredOutput::Tool);
        assert_eq!(t.groups[1].policy.name(), "hedged");
        assert!(t.groups[1].quality.is_none() && t.groups[0].quality.is_some());
        assert_eq!(t.groups[1].fallbacks, [0]);
        assert_eq!(t.group_for("gpt-4o"), Some(0));
        assert_eq!(t.group_for("claude-sonnet-4-5"), Some(2));
        assert_eq!(t.group_for("gpt-5"), None);
    }

    #[test]
    fn without_models_one_implicit_group() {
        let p = json!({"name": "a", "kind": "openai", "base_url": "https://x.test/v1",
                       "api_key": "k", "model": "m", "rpm": 5, "weight": 2});
        let c =
            RouterConfig::from_json(&json!({"providers": [p]}), &|_| None, HostLimits::default())
                .unwrap();
        let t = &c.table;
        assert!(!t.declared);
        assert_eq!(t.group_for("anything"), Some(0));
        assert_eq!(t.deployments[0].model.as_deref(), Some("m"));
        assert_eq!((t.deployments[0].weight, t.slots[0].rpm), (2, Some(5)));
    }

    #[test]
    fn bad_tables_name_their_key_path() {
        let none = json!({});
        for (models, extra, field, words) in [
            (
                json!({"gpt-4o": [{"provider": "a"}, {"provider": "zz"}]}),
                none.clone(),
                "models[\"gpt-4o\"][1].provider",
                "names no provider",
            ),
            (
                json!({"gpt-4o": []}),
                none.clone(),
                "models[\"gpt-4o\"]",
                "is empty",
            ),
            (
                json!({"x": {"deployments": []}}),
                none.clone(),
                "models[\"x\"].deployments",
                "is empty",
            ),
            (json!({}), none.clone(), "models", "is empty"),
            (json!([]), none.clone(), "models", "must be an object"),
            (
                json!({"a": [{"provider": "a"}], "b": [{"provider": "b"}]}),
                json!({"fallbacks": {"a": ["b"], "b": ["a"]}}),
                "fallbacks",
                "cycle",
            ),
            (
                json!({"a": [{"provider": "a"}]}),
                json!({"fallbacks": {"a": ["a"]}}),
                "fallbacks[\"a\"][0]",
                "the group itself",
            ),
            (
                json!({"a": [{"provider": "a"}]}),
                json!({"fallbacks": {"a": ["nope"]}}),
                "fallbacks[\"a\"][0]",
                "names no group",
            ),
            (
                json!({"claude-*": [{"provider": "a"}], "*-sonnet": [{"provider": "b"}]}),
                none.clone(),
                "models[\"*-sonnet\"]",
                "overlaps models[\"claude-*\"]",
            ),
            (
                json!({"x": [{"provider": "a", "context_window": 0}]}),
                none.clone(),
                "models[\"x\"][0].context_window",
                "positive integer",
            ),
            (
                json!({"x": [{"provider": "a", "context_window": "128k"}]}),
                none.clone(),
                "models[\"x\"][0].context_window",
                "positive integer",
            ),
            (
                json!({"x": [{"provider": "a", "structured_output": "json"}]}),
                none.clone(),
                "models[\"x\"][0].structured_output",
                "\"native\"",
            ),
            (
                json!({"x": [{"provider": "a", "structured_output": true}]}),
                none.clone(),
                "models[\"x\"][0].structured_output",
                "",
            ),
            (
                json!({"x": [{"provider": "a", "params": {"messages": []}}]}),
                none.clone(),
                "models[\"x\"][0].params.messages",
                "request's own field",
            ),
            (
                json!({"x": [{"provider": "a", "api_key": "sk-secret-0123456789"}]}),
                none.clone(),
                "models[\"x\"][0].api_key",
                "unknown key",
            ),
            (
                json!({"x": [{"provider": "a", "rpm": 5}], "y": [{"provider": "a", "model": "x", "rpm": 6}]}),
                none.clone(),
                "models[\"y\"][0].rpm",
                "declare it once",
            ),
            (
                json!({"x": {"deployments": [{"provider": "a"}], "hedge_k": 5, "policy": "hedged"}}),
                none.clone(),
                "models[\"x\"].hedge_k",
                "between 1 and 1",
            ),
            (
                json!({"": [{"provider": "a"}]}),
                none.clone(),
                "models[\"\"]",
                "empty name",
            ),
        ] {
            let e = error(models, extra);
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(words), "{e}");
        }
        // Fallbacks without a table.
        let e = RouterConfig::from_json(
            &json!({"providers": [{"name": "a", "kind": "openai", "base_url": "https://x.test/v1",
                                   "api_key": "k"}],
                    "fallbacks": {"a": ["b"]}}),
            &|_| None,
            HostLimits::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, "fallbacks");
    }

    #[test]
    fn patterns_of_other_specificity_may_overlap() {
        let c = parse(
            json!({"claude-*": [{"provider": "a"}], "claude-opus-*": [{"provider": "b"}],
                   "*": [{"provider": "a"}]}),
            json!({}),
        )
        .unwrap();
        let t = &c.table;
        assert_eq!(t.group_for("claude-opus-4"), Some(1));
        assert_eq!(t.group_for("claude-haiku"), Some(0));
        assert_eq!(t.group_for("llama"), Some(2));
    }
}
