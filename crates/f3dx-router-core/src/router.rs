//! The router: a validated config plus what it remembers about providers
//! (its [`Shared`] state, which every call of it holds).

use std::sync::Arc;

use serde_json::Value;

use crate::call::{self, Call, CallOptions};
use crate::config::{ConfigError, RouterConfig};
use crate::error::RouteError;
use crate::events::HealthEvents;
use crate::explain::Explanation;
#[cfg(feature = "study")]
use crate::latency::AutoRule;
use crate::models_json::models_json;
use crate::quality;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::table::RoutingTable;
use crate::time::Instant;

/// A router. Cheap to clone; clones share provider health. Safe to use from
/// many threads at once.
#[derive(Clone, Debug)]
pub struct Router {
    shared: Arc<Shared>,
}

impl Router {
    /// A router over a validated config.
    pub fn new(config: RouterConfig) -> Router {
        Router {
            shared: Arc::new(Shared::new(config)),
        }
    }

    /// A router whose `"auto"` hedges follow `rule` (the study's variants).
    #[cfg(feature = "study")]
    pub fn with_rule(config: RouterConfig, rule: AutoRule) -> Router {
        Router {
            shared: Arc::new(Shared::with_rule(config, rule)),
        }
    }

    /// Spend every token of the hedge budget (the study's empty start).
    #[cfg(feature = "study")]
    pub fn empty_hedge_budget(&self) {
        self.shared.empty_hedge_budget();
    }

    /// The config this router was built with (a key set since with
    /// [`Router::set_api_key`] is not in it).
    pub fn config(&self) -> &RouterConfig {
        self.shared.config()
    }

    /// Give provider `provider` (by name) a new key, for every call that
    /// starts from now on: rotated secrets, short-lived tokens (Azure Entra
    /// ID). Nothing the router learned is lost (health, cooldowns, budgets,
    /// latency, quality, picks, stats), and calls in flight keep the key
    /// they started with, for every leg and retry, and have it redacted
    /// from upstream text as before; later calls have the new one redacted.
    ///
    /// A key from `api_key_env` is replaced by this literal one. Refused,
    /// the router unchanged, for an unknown provider (the error lists the
    /// names), an empty key, or one that cannot go in a header value (a
    /// line break, a non-ASCII character); no error repeats the key, or
    /// the name given (it may be a key passed in the wrong place).
    pub fn set_api_key(&self, provider: &str, key: &str) -> Result<(), ConfigError> {
        let providers = &self.shared.config().providers;
        let Some(index) = providers.iter().position(|p| p.name == provider) else {
            let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
            return Err(ConfigError {
                field: "provider".to_owned(),
                message: format!("no such provider; the providers are {names:?}"),
            });
        };
        self.shared.set_key(index, key)
    }

    /// Start routing one OpenAI chat-completions request at `now`. Drive the
    /// returned [`Call`] with its `poll_*` and `handle_*` methods, or hand it
    /// to [`crate::drive`].
    pub fn start_call(&self, body: Value, now: Instant) -> Call {
        Call::new(Arc::clone(&self.shared), body, now)
    }

    /// The routing table: the model groups, each with its deployments
    /// (provider, model sent, weight, context window...) and policy. A
    /// config without `models` has one implicit group of every provider
    /// (see [`RoutingTable::declared`]). [`Router::models_json`] is its
    /// JSON, as every host hands it out.
    pub fn models(&self) -> &RoutingTable {
        &self.shared.config().table
    }

    /// [`Router::models`] as JSON: a list of groups,
    /// `[{"name", "pattern", "policy", "fallbacks", ..., "deployments":
    /// [{"provider", "model", "weight", "context_window", ...}]}]`.
    pub fn models_json(&self) -> Value {
        models_json(self.shared.config())
    }

    /// What a call of `body` with `options` would do at `now`, without
    /// sending anything or changing any state (no pick advanced, no probe
    /// claimed, no budget taken): the deployments it would try, in order,
    /// and why each other one it considered is left out. The call's own
    /// planning decides both, so they cannot disagree. A request a call
    /// would refuse is the same [`RouteError::InvalidRequest`] (an unknown
    /// model names the groups there are). [`Explanation::to_json`] gives
    /// the JSON every host hands out.
    pub fn explain(
        &self,
        body: Value,
        options: CallOptions,
        now: Instant,
    ) -> Result<Explanation, RouteError> {
        call::explain(&self.shared, body, options, now).map_err(|message| {
            RouteError::InvalidRequest {
                message,
                attempts: Vec::new(),
                skipped: Vec::new(),
            }
        })
    }

    /// What the router remembers, as of `now`: each provider's state,
    /// window counts, latency percentiles and ejections; hedging counts.
    pub fn stats(&self, now: Instant) -> Stats {
        self.shared.stats(now)
    }

    /// Start a call with per-call options (the tenant of quality-aware
    /// routing).
    pub fn start_call_with(&self, body: Value, options: CallOptions, now: Instant) -> Call {
        Call::with_options(Arc::clone(&self.shared), body, options, now)
    }

    /// A result the caller checked itself (pydantic, a test suite): the
    /// answer `provider` gave for `tenant` and `model` passed validation or
    /// not. Counts as the core's own checks do. An error says why it was
    /// not recorded: quality tracking is off, no such provider, or a tenant
    /// or model a call could not have ([`crate::quality::check_tenant`],
    /// [`crate::quality::check_model`]; hosts check those first, to refuse
    /// them as an invalid request).
    pub fn record_quality(
        &self,
        provider: &str,
        tenant: &str,
        model: &str,
        passed: bool,
        now: Instant,
    ) -> Result<(), String> {
        quality::check_tenant(tenant)?;
        quality::check_model(model)?;
        let config = self.shared.config();
        let table = &config.table;
        // The group the model picks: its quality settings judge, and its
        // deployment on this provider is the one credited.
        let group = table.group_for(model).map(|g| &table.groups[g]);
        let Some(quality) = group.map_or(config.quality, |g| g.quality) else {
            return Err(
                "quality-aware routing is off (the config says \"quality\": false)".to_owned(),
            );
        };
        let index = config.providers.iter().position(|p| p.name == provider);
        let slot = group.and_then(|g| {
            g.deployments
                .iter()
                .map(|&d| &table.deployments[d])
                .find(|d| Some(d.provider) == index)
                .map(|d| d.slot)
        });
        let Some(slot) = slot else {
            let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
            // The name is repeated only when it is short: it may be anything.
            let what = if provider.len() <= 64 {
                format!("provider named {provider:?}")
            } else {
                "such provider".to_owned()
            };
            return Err(match (index, group) {
                (None, _) => format!("no {what}; the providers are {names:?}"),
                (Some(_), None) => "the model matches no model group".to_owned(),
                (Some(_), Some(_)) => format!("no {what} serves this model's group"),
            });
        };
        self.shared
            .quality_record(slot, &quality, tenant, model, passed, now);
        Ok(())
    }

    /// Whether health transitions wait to be taken: one atomic load, cheap
    /// enough to check after every call.
    pub fn has_health_events(&self) -> bool {
        self.shared.has_events()
    }

    /// The health transitions since the last take (ejections, readmissions,
    /// cooldowns, budgets run out; see [`crate::HealthEvent`]), oldest first,
    /// with the number lost to the log's bound. Each transition is handed
    /// out once, to one caller. Takes no lock when nothing is pending.
    pub fn take_health_events(&self) -> HealthEvents {
        self.shared.take_events()
    }

    /// When each provider's cooldown ends, if it is cooling at `now`.
    pub fn cooldowns(&self, now: Instant) -> Vec<Option<Instant>> {
        self.shared.cooldowns(now)
    }
}
