//! Router configuration: parsed and validated once, immutable afterwards.
//!
//! The schema is the one users write in Python and in the worker's
//! `ROUTER_CONFIG`. Every error names the field and says what to fix, and
//! never repeats a value from the config (it may be a key pasted in the
//! wrong place): it names the key path (`keys`) and what is wrong; the only
//! words it quotes are the schema's own (key names, allowed kinds and
//! policies).
//!
//! One file per thing configured: `provider` (one upstream; `azure` its
//! Azure OpenAI settings), `policy`
//! (how attempts spread), `monitoring` (`health` and `quality`), `host`
//! (a host's limits), `failover` (`failover_on`, `retries`, backoff, at any
//! level), `forward` (`forward_headers`); `keys` names fields and rejects unknown ones,
//! `values` reads typed values; `check` finds every problem at once
//! (all errors, and warnings).

mod azure;
mod check;
mod error;
pub(crate) mod failover;
mod forward;
mod host;
mod keys;
mod models;
mod monitoring;
mod policy;
mod provider;
mod values;

use serde_json::Value;

use crate::table::RoutingTable;

pub use crate::quality::{OnFailure, QualityConfig};
pub use azure::{AzureApi, AzureAuth, AzureSettings};
pub use check::{ConfigProblem, MAX_PROBLEMS};
use error::err;
pub use error::ConfigError;
pub use host::HostLimits;
use keys::{otel_refused, reject_unknown};
pub use keys::{
    DEPLOYMENT_KEYS, GROUP_KEYS, HEALTH_KEYS, HOST_KEYS, PROVIDER_KEYS, QUALITY_KEYS, ROUTER_KEYS,
};
use models::parse_table;
pub use models::GROUPS_LISTED;
pub use monitoring::HealthConfig;
use monitoring::{parse_health, parse_quality};
use policy::parse_policy;
pub use policy::{
    HedgeDelay, Policy, AUTO_HEDGE_MIN_SAMPLES, AUTO_HEDGE_QUANTILE, HEDGE_BUDGET_CAP,
};
pub(crate) use provider::checked_key;
use provider::parse_provider;
pub use provider::{ProviderConfig, ProviderKind, DEFAULT_STREAM_IDLE_TIMEOUT, DEFAULT_TIMEOUT};

/// A validated router configuration.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    /// Providers in priority order.
    pub providers: Vec<ProviderConfig>,
    /// The routing policy.
    pub policy: Policy,
    /// Health tracking (windows, ejection, half-open probes); `None` when
    /// the config says `"health": false`.
    pub health: Option<HealthConfig>,
    /// Quality-aware routing (schema pass rates per provider, tenant and
    /// model); `None` when the config says `"quality": false`.
    pub quality: Option<QualityConfig>,
    /// The routing table: `models` and the fallbacks between its groups,
    /// or one implicit group of every provider.
    pub table: RoutingTable,
}

impl RouterConfig {
    /// [`RouterConfig::from_json`] on JSON text (the Worker's
    /// `ROUTER_CONFIG`). Invalid JSON is a `ConfigError` of field `config`
    /// saying where (line and column, never the text there), and so is an
    /// object that repeats a key (`serde_json` alone would keep the last
    /// silently).
    pub fn from_json_text(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        limits: HostLimits,
    ) -> Result<Self, ConfigError> {
        Self::from_json(&keys::parse_json_text(text)?, env, limits)
    }

    /// Parse a config object `{providers, policy?, hedge_k?, hedge_delay_ms?}`.
    ///
    /// `env` resolves `api_key_env` names; the core reads no environment
    /// itself.
    pub fn from_json(
        value: &Value,
        env: &dyn Fn(&str) -> Option<String>,
        limits: HostLimits,
    ) -> Result<Self, ConfigError> {
        let obj = value
            .as_object()
            .ok_or_else(|| err("config", "must be an object"))?;
        if obj.contains_key("otel") {
            return Err(otel_refused());
        }
        reject_unknown(obj, "config", ROUTER_KEYS)?;
        let list = match obj.get("providers") {
            Some(Value::Array(list)) => list,
            Some(_) => return Err(err("providers", "must be a list of provider objects")),
            None => return Err(err("providers", "is required: give at least one provider")),
        };
        if list.is_empty() {
            return Err(err("providers", "is empty: give at least one provider"));
        }
        let mut providers = Vec::with_capacity(list.len());
        for (i, p) in list.iter().enumerate() {
            let provider = parse_provider(p, &format!("providers[{i}]"), env, limits)?;
            if let Some(first) = providers
                .iter()
                .position(|q: &ProviderConfig| q.name == provider.name)
            {
                return Err(err(
                    format!("providers[{i}].name"),
                    format!("is the name of providers[{first}]: provider names must be unique"),
                ));
            }
            providers.push(provider);
        }
        let policy = parse_policy(obj, providers.len(), limits)?;
        let health = parse_health(obj.get("health"))?;
        let quality = parse_quality(obj.get("quality"))?;
        let table = parse_table(obj, &providers, policy, quality, limits)?;
        Ok(RouterConfig {
            providers,
            policy,
            health,
            quality,
            table,
        })
    }
}

/// What [`RouterConfig::check_json`] found.
#[derive(Clone, Debug, Default)]
pub struct ConfigReport {
    /// The config, when it has no error.
    pub config: Option<RouterConfig>,
    /// Every error, the first being the one `from_json` gives (at most
    /// [`MAX_PROBLEMS`]).
    pub errors: Vec<ConfigProblem>,
    /// Settings that have no effect, values that look like a mistake: the
    /// config is valid without them, but probably not what was meant.
    pub warnings: Vec<ConfigProblem>,
}

impl RouterConfig {
    /// Check a config object: every error (not only the first, where
    /// [`RouterConfig::from_json`] stops) and every warning (`check`, a
    /// host's error message). `env` as for `from_json`.
    pub fn check_json(
        value: &Value,
        env: &dyn Fn(&str) -> Option<String>,
        limits: HostLimits,
    ) -> ConfigReport {
        let mut report = ConfigReport::default();
        match RouterConfig::from_json(value, env, limits) {
            Ok(config) => report.config = Some(config),
            Err(first) => {
                report.errors = check::all_errors(value, env, limits);
                // The routing table's errors (`models`, fallbacks) come
                // after every other part's in `from_json`: when the check
                // has none of its own there, from_json's is the one.
                if !report.errors.iter().any(|p| p.error == first) {
                    report.errors.push(ConfigProblem {
                        error: first,
                        provider: None,
                    });
                }
                report.errors.truncate(MAX_PROBLEMS);
            }
        }
        report.warnings = RouterConfig::config_warnings(value);
        report
    }

    /// [`RouterConfig::from_json`], but an invalid config's error names
    /// every problem: its field is the first's, its message the first's
    /// then one line per further error (`invalid router config: field:
    /// message`), so that a host shows them all and every host the same
    /// text (the Python package's `Router(...)`, the Worker's
    /// `ROUTER_CONFIG`). A valid config is parsed once.
    pub fn from_json_checked(
        value: &Value,
        env: &dyn Fn(&str) -> Option<String>,
        limits: HostLimits,
    ) -> Result<Self, ConfigError> {
        let first = match RouterConfig::from_json(value, env, limits) {
            Ok(config) => return Ok(config),
            Err(e) => e,
        };
        let mut all = check::all_errors(value, env, limits);
        all.truncate(MAX_PROBLEMS);
        let mut combined = first.clone();
        for p in all.iter().filter(|p| p.error != first) {
            combined.message.push_str(&format!("\n{}", p.error));
        }
        Err(combined)
    }

    /// [`RouterConfig::from_json_checked`] on JSON text (the Worker's
    /// `ROUTER_CONFIG`), invalid JSON as in [`RouterConfig::from_json_text`].
    pub fn from_json_text_checked(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        limits: HostLimits,
    ) -> Result<Self, ConfigError> {
        Self::from_json_checked(&keys::parse_json_text(text)?, env, limits)
    }

    /// The warnings of a config object alone (a host that parses it
    /// itself logs them).
    pub fn config_warnings(value: &Value) -> Vec<ConfigProblem> {
        value.as_object().map(check::warnings).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
