//! The routing table: which deployments serve a request's `model`.
//!
//! A *group* is named by a model (`"gpt-4o"`) or a pattern of one
//! (`"claude-*"`, `"*"`) and lists *deployments*: a provider serving that
//! model, each with its own model name, weight, timeout, limits, extra body
//! fields and headers. A config without `models` has one implicit group of
//! every provider (a deployment per provider, with the provider's own
//! settings), so a router that never heard of groups routes as it always
//! did.
//!
//! What the router remembers (health, cooldowns, rate budgets, latency,
//! quality) belongs to a deployment's *slot*: its provider and the model
//! it sends. Two groups listing the same provider and model share a slot,
//! so a 429 for `gpt-4o` cools `gpt-4o` wherever it is listed, and nothing
//! else.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::codec::params::UnsupportedParams;
use crate::config::Policy;
use crate::failover::FailoverOn;
use crate::quality::QualityConfig;
use crate::retry::RetryPolicy;

/// One provider serving one group's model.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// The group it belongs to (an index into [`RoutingTable::groups`]).
    pub group: usize,
    /// Its provider (an index into the config's providers).
    pub provider: usize,
    /// The model name sent to the provider: the deployment's `model`, else
    /// its provider's, else the name of its group when that is a model;
    /// `None` (a pattern group's) sends the caller's.
    pub model: Option<String>,
    /// Relative share of first tries under the `weighted` policy.
    pub weight: u32,
    /// Deadline of one attempt (as a provider's `timeout_ms`).
    pub timeout: Duration,
    /// The most tokens (prompt and completion) it can hold, if declared.
    pub context_window: Option<u64>,
    /// Body fields merged into the request translated for it.
    pub params: Map<String, Value>,
    /// Extra request headers (lower-cased names), after the provider's.
    pub headers: Vec<(String, String)>,
    /// Its slot: what the router remembers of it.
    pub slot: usize,
    /// Statuses and codes made soft (`failover_on`): the router's, its
    /// group's and its own, together.
    pub failover_on: FailoverOn,
    /// Retries of a soft failure on it before the call moves on (its own
    /// `retries` / `backoff_ms` / `backoff_max_ms`, else its group's, else
    /// the router's).
    pub retry: RetryPolicy,
    /// How an Anthropic deployment carries `response_format`.
    pub structured_output: StructuredOutput,
    /// What a request parameter its kind cannot carry does
    /// (`unsupported_params`: its own, else its group's, else the
    /// router's).
    pub unsupported_params: UnsupportedParams,
}

/// How an Anthropic deployment carries a `response_format` (the
/// deployment key `structured_output`). Other kinds carry it as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StructuredOutput {
    /// Anthropic's structured outputs (`output_config.format`): the
    /// default, as it is constrained decoding on the models that have it.
    #[default]
    Native,
    /// A forced tool whose input is the answer: for models without
    /// structured outputs, and for schemas they refuse.
    Tool,
}

/// Provider and model: the unit of what the router remembers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The provider.
    pub provider: usize,
    /// The model sent, when it is the same on every call; `None` for a
    /// pattern group passing the caller's model through (one slot for all
    /// the models it serves).
    pub model: Option<String>,
    /// Requests per minute this router may send it.
    pub rpm: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
}

/// A model group.
#[derive(Clone, Debug)]
pub struct ModelGroup {
    /// Its name: a model, or a pattern (`*` matches any run of
    /// characters). Empty for the implicit group of a config without
    /// `models`.
    pub name: String,
    /// Its deployments, in priority order (indices into
    /// [`RoutingTable::deployments`]).
    pub deployments: Vec<usize>,
    /// How its calls spread over its deployments.
    pub policy: Policy,
    /// Its quality-aware routing settings (`None`: off for this group).
    pub quality: Option<QualityConfig>,
    /// Groups tried, in order, once every deployment of this one failed
    /// softly (`fallbacks`).
    pub fallbacks: Vec<usize>,
    /// Groups tried when a request is too long for every deployment of
    /// this one (`context_window_fallbacks`).
    pub context_window_fallbacks: Vec<usize>,
    /// Groups tried instead of returning a refusal
    /// (`content_policy_fallbacks`; opt-in).
    pub content_policy_fallbacks: Vec<usize>,
    /// The caller's headers its deployments are sent (`forward_headers`,
    /// the group's or the router's): lower-case names, none of them
    /// never forwarded. Empty: none.
    pub forward_headers: Arc<[String]>,
}

/// The routing table: groups, their deployments, and the slots those share.
#[derive(Clone, Debug, Default)]
pub struct RoutingTable {
    /// Every group, in config order.
    pub groups: Vec<ModelGroup>,
    /// Every deployment, group by group.
    pub deployments: Vec<Deployment>,
    /// Every slot.
    pub slots: Vec<Slot>,
    /// Whether the config declared `models` (otherwise: one implicit group
    /// of every provider, matching any model).
    pub declared: bool,
    /// Some slot has a `tpm` budget (a call then estimates its tokens).
    pub any_tpm: bool,
    /// Some deployment declares a `context_window` (a call then estimates
    /// what it needs of one).
    pub any_context_window: bool,
    /// Every name some group forwards (`forward_headers`), once each,
    /// sorted.
    forwarded: Vec<String>,
    /// Groups named by a model, by that name.
    exact: HashMap<String, usize>,
    /// Groups named by a pattern, most specific first.
    patterns: Vec<usize>,
}

/// Every name some group's `forward_headers` lists, once each, sorted
/// (a table of thousands of groups with lists of their own stays a
/// sort, never a quadratic scan).
fn forwarded_names(groups: &[ModelGroup]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut last: Option<&Arc<[String]>> = None;
    for g in groups {
        // Groups without a list of their own share the router's.
        if last.is_some_and(|l| Arc::ptr_eq(l, &g.forward_headers)) {
            continue;
        }
        last = Some(&g.forward_headers);
        names.extend(g.forward_headers.iter().cloned());
    }
    names.sort_unstable();
    names.dedup();
    names
}

impl RoutingTable {
    /// A table of `groups` over `deployments` and `slots`, indexed for
    /// lookup. Patterns are ordered most specific first (the most literal
    /// characters; config order among equals, which the config refuses
    /// when they overlap).
    pub(crate) fn new(
        groups: Vec<ModelGroup>,
        deployments: Vec<Deployment>,
        slots: Vec<Slot>,
        declared: bool,
    ) -> RoutingTable {
        let mut exact = HashMap::new();
        let mut patterns = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            // Without `models`, the one implicit group matches any model.
            if !declared || g.name.contains('*') {
                patterns.push(i);
            } else {
                exact.insert(g.name.clone(), i);
            }
        }
        patterns.sort_by_key(|&i| std::cmp::Reverse(specificity(&groups[i].name)));
        RoutingTable {
            any_tpm: slots.iter().any(|s| s.tpm.is_some()),
            any_context_window: deployments.iter().any(|d| d.context_window.is_some()),
            forwarded: forwarded_names(&groups),
            groups,
            deployments,
            slots,
            declared,
            exact,
            patterns,
        }
    }

    /// Whether some group forwards caller headers (`forward_headers`): a
    /// host hands a call its caller's headers only then.
    pub fn any_forward_headers(&self) -> bool {
        !self.forwarded.is_empty()
    }

    /// Every name some group forwards (lower case, each once, sorted):
    /// what a host that reads headers one by one looks up.
    pub fn forward_header_names(&self) -> &[String] {
        &self.forwarded
    }

    /// Whether some group forwards the header `name` (any case).
    pub fn forwards_header(&self, name: &str) -> bool {
        // The names are lower case and sorted: compare `name` lowered.
        let lowered = || name.bytes().map(|b| b.to_ascii_lowercase());
        self.forwarded
            .binary_search_by(|n| n.bytes().cmp(lowered()))
            .is_ok()
    }

    /// The group serving `model`: the group of that exact name, else the
    /// most specific pattern matching it; `None` when no group does.
    pub fn group_for(&self, model: &str) -> Option<usize> {
        if !self.declared {
            return Some(0);
        }
        if let Some(&g) = self.exact.get(model) {
            return Some(g);
        }
        self.patterns
            .iter()
            .copied()
            .find(|&g| matches(&self.groups[g].name, model))
    }

    /// Group `g`'s name as callers read it (`models()`, `explain()`):
    /// `"*"` for the implicit group of a config without `models`, which
    /// matches any model.
    pub fn shown_name(&self, g: usize) -> &str {
        if self.declared {
            &self.groups[g].name
        } else {
            "*"
        }
    }

    /// The group named `name` exactly (a fallback's target).
    pub fn group_named(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }

    /// The model sent to deployment `d` for a caller asking for `asked`.
    pub fn model_sent<'a>(&'a self, d: usize, asked: &'a str) -> &'a str {
        self.deployments[d].model.as_deref().unwrap_or(asked)
    }

    /// The slots of `provider` (a connection failure counts against
    /// each).
    pub fn slots_of(&self, provider: usize) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.provider == provider)
            .map(|(i, _)| i)
    }
}

/// How specific a group name is: its literal characters (`"*"` has none).
pub(crate) fn specificity(pattern: &str) -> usize {
    pattern.chars().filter(|&c| c != '*').count()
}

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters (none included). Linear in both lengths (the classic
/// greedy match with one backtrack point per star).
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == n[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&b| b == b'*')
}

/// Whether some name matches both patterns. A table over the pairs of
/// positions (patterns are at most a few hundred bytes).
pub(crate) fn overlap(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // can[i][j]: the rests a[i..] and b[j..] match a common name.
    let w = b.len() + 1;
    let mut can = vec![false; (a.len() + 1) * w];
    for i in (0..=a.len()).rev() {
        for j in (0..=b.len()).rev() {
            let at = |i: usize, j: usize| can[i * w + j];
            can[i * w + j] = match (a.get(i), b.get(j)) {
                (None, None) => true,
                // A star matches nothing, or takes one character (or
                // star) of the other side and stays.
                (Some(b'*'), _) if at(i + 1, j) => true,
                (_, Some(b'*')) if at(i, j + 1) => true,
                (Some(b'*'), Some(_)) if at(i, j + 1) => true,
                (Some(_), Some(b'*')) if at(i + 1, j) => true,
                (Some(x), Some(y)) if x == y && *x != b'*' => at(i + 1, j + 1),
                _ => false,
            };
        }
    }
    can[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_globs() {
        for (p, n, want) in [
            ("*", "", true),
            ("*", "gpt-4o", true),
            ("claude-*", "claude-sonnet-4-5", true),
            ("claude-*", "claude-", true),
            ("claude-*", "claud", false),
            ("*-mini", "gpt-4o-mini", true),
            ("*-mini", "gpt-4o", false),
            ("gpt-*-mini", "gpt-4o-mini", true),
            ("gpt-*-mini", "gpt--mini", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXcYb", false),
            ("gpt-4o", "gpt-4o", true),
            ("gpt-4o", "gpt-4o-mini", false),
        ] {
            assert_eq!(matches(p, n), want, "{p} {n}");
        }
    }

    #[test]
    fn overlap_finds_a_common_name_or_none() {
        for (a, b, want) in [
            ("claude-*", "*-4-5", true),
            ("claude-*", "gpt-*", false),
            ("*-mini", "gpt-*", true),
            ("a*", "*b", true),
            ("ab*", "ac*", false),
            ("*", "x", true),
            ("a*c", "ab*", true),
            ("a*c", "b*", false),
            ("x*y", "x*z", false),
        ] {
            assert_eq!(overlap(a, b), want, "{a} {b}");
            assert_eq!(overlap(b, a), want, "{b} {a}");
        }
    }

    #[test]
    fn matching_is_linear_on_hostile_input() {
        let pattern = "*a*a*a*a*a*a*a*a*a*a*b";
        let name = "a".repeat(100_000);
        assert!(!matches(pattern, &name));
    }
}
