//! What each provider kind does with each request parameter: ONE table,
//! read by the call's start (which deployments can carry a request, what
//! `unsupported_params: "drop"` removes), by `explain`, and rendered into
//! the README (a test keeps the two equal).
//!
//! Every OpenAI chat-completions request parameter has a row, plus the
//! Anthropic-only fields a deployment's `params` may set. A kind that
//! cannot carry a parameter present in a request (not `null`, and not a
//! value that asks for nothing beyond the default, such as `n: 1`) follows
//! the deployment's `unsupported_params`: `"error"` leaves the deployment
//! out of the call, `"drop"` sends the request without it and records so.
//! A field in no row (a newer or vendor field) is carried by the
//! OpenAI-compatible kinds, as they pass bodies through, and unsupported by
//! Anthropic, whose encoder reads only what it translates: nothing is
//! dropped without a record.

use serde_json::{Map, Value};

use crate::config::ProviderKind;

/// What a provider kind does with one request parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carry {
    /// Sent as it is.
    Carried,
    /// Sent as something else (what, in words).
    Translated(&'static str),
    /// Taken from the deployment's `params` only: a caller's value is
    /// treated as unsupported (it would mean something else, or nothing).
    ParamsOnly,
    /// No equivalent for this kind.
    Unsupported,
}

impl Carry {
    /// Whether a request with this parameter (at a value that matters) can
    /// go to the kind.
    pub fn carries(self) -> bool {
        matches!(self, Carry::Carried | Carry::Translated(_))
    }
}

/// Values that ask for nothing beyond a parameter's default: in words (for
/// the README) and their test.
pub type DefaultOk = (&'static str, fn(&Value) -> bool);

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// The request field.
    pub name: &'static str,
    /// What the OpenAI-compatible kinds do with it.
    pub openai: Carry,
    /// What an Anthropic provider does with it.
    pub anthropic: Carry,
    /// The values that ask for nothing beyond the default, which every
    /// kind takes (in words for the README, and the test), if any.
    pub default_ok: Option<DefaultOk>,
}

impl Param {
    /// What `kind` does with it.
    pub fn carry(&self, kind: ProviderKind) -> Carry {
        if passes_through(kind) {
            self.openai
        } else {
            self.anthropic
        }
    }

    /// Whether `kind` can carry it at `value`.
    pub fn carried_at(&self, kind: ProviderKind, value: &Value) -> bool {
        self.carry(kind).carries() || self.default_ok.is_some_and(|(_, ok)| ok(value))
    }
}

/// What `unsupported_params` says to do when a deployment's kind cannot
/// carry a parameter present in a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnsupportedParams {
    /// The deployment is left out of the call (skipped, not sent); when no
    /// deployment can carry the request, it is an invalid request.
    #[default]
    Error,
    /// The parameter is removed from the deployment's request; the
    /// attempt records it.
    Drop,
}

impl UnsupportedParams {
    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            UnsupportedParams::Error => "error",
            UnsupportedParams::Drop => "drop",
        }
    }
}

/// The kinds that send the caller's body through (with their model and
/// `params`), and so carry every field: the `openai` column.
fn passes_through(kind: ProviderKind) -> bool {
    match kind {
        ProviderKind::OpenAi | ProviderKind::Azure => true,
        ProviderKind::Anthropic => false,
    }
}

const C: Carry = Carry::Carried;
const U: Carry = Carry::Unsupported;

const fn row(name: &'static str, openai: Carry, anthropic: Carry) -> Param {
    Param {
        name,
        openai,
        anthropic,
        default_ok: None,
    }
}

const fn but(mut p: Param, words: &'static str, ok: fn(&Value) -> bool) -> Param {
    p.default_ok = Some((words, ok));
    p
}

fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
}

fn is_false(v: &Value) -> bool {
    v == &Value::Bool(false)
}

fn is_one(v: &Value) -> bool {
    v.as_u64() == Some(1)
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

fn is_text_only(v: &Value) -> bool {
    matches!(v, Value::Array(m) if m.len() == 1 && m[0] == "text")
}

fn is_default_tier(v: &Value) -> bool {
    matches!(v.as_str(), Some("auto" | "default"))
}

fn is_medium(v: &Value) -> bool {
    v.as_str() == Some("medium")
}

/// Every parameter, by name (sorted, so a lookup is a binary search).
pub const PARAMS: &[Param] = &[
    row("audio", C, U),
    but(row("frequency_penalty", C, U), "0", is_zero),
    row("function_call", C, U),
    row("functions", C, U),
    but(row("logit_bias", C, U), "{}", is_empty_object),
    but(row("logprobs", C, U), "false", is_false),
    row(
        "max_completion_tokens",
        C,
        Carry::Translated("`max_tokens`"),
    ),
    row(
        "max_tokens",
        C,
        Carry::Translated("`max_tokens` (4096 when absent: Anthropic requires it)"),
    ),
    row(
        "messages",
        C,
        Carry::Translated(
            "`system` (system and developer messages) and `messages` (text, images, tool calls and results)",
        ),
    ),
    row("metadata", C, Carry::ParamsOnly),
    but(row("modalities", C, U), "[\"text\"]", is_text_only),
    row("model", C, C),
    but(row("n", C, U), "1", is_one),
    row(
        "parallel_tool_calls",
        C,
        Carry::Translated("`false`: `tool_choice.disable_parallel_tool_use`"),
    ),
    row("prediction", C, U),
    but(row("presence_penalty", C, U), "0", is_zero),
    row("prompt_cache_key", C, U),
    row("prompt_cache_retention", C, U),
    row(
        "reasoning_effort",
        C,
        Carry::Translated("extended `thinking` with a token budget per level"),
    ),
    row(
        "response_format",
        C,
        Carry::Translated(
            "`json_schema` and `json_object`: structured outputs (or a forced tool), answered as the message content",
        ),
    ),
    row("safety_identifier", C, U),
    row("seed", C, U),
    but(
        row("service_tier", C, Carry::ParamsOnly),
        "\"auto\", \"default\"",
        is_default_tier,
    ),
    row("stop", C, Carry::Translated("`stop_sequences`")),
    but(row("store", C, U), "false", is_false),
    row(
        "stream",
        C,
        Carry::Translated("`stream` (events translated back to chunks)"),
    ),
    row(
        "stream_options",
        C,
        Carry::Translated("`include_usage`: a usage chunk at the stream's end"),
    ),
    row("temperature", C, C),
    row("thinking", C, Carry::ParamsOnly),
    row(
        "tool_choice",
        C,
        Carry::Translated("`tool_choice` (`required`: `any`)"),
    ),
    row(
        "tools",
        C,
        Carry::Translated("`tools` (function tools: `input_schema`)"),
    ),
    row("top_k", C, Carry::ParamsOnly),
    but(row("top_logprobs", C, U), "0", is_zero),
    row("top_p", C, C),
    row("user", C, Carry::Translated("`metadata.user_id`")),
    but(row("verbosity", C, U), "\"medium\"", is_medium),
    row("web_search_options", C, U),
];

/// The row of `name`, if it has one.
pub fn param(name: &str) -> Option<&'static Param> {
    PARAMS
        .binary_search_by(|p| p.name.cmp(name))
        .ok()
        .map(|i| &PARAMS[i])
}

/// Whether `kind` carries the field `name` at `value`: by its row, and a
/// field in no row only where the body passes through. `null` is absent.
pub fn carries_field(kind: ProviderKind, name: &str, value: &Value) -> bool {
    if value.is_null() {
        return true;
    }
    match param(name) {
        Some(p) => p.carried_at(kind, value),
        None => passes_through(kind),
    }
}

/// Whether `kind` can carry every field of `body`. One branch for the
/// kinds that pass bodies through (they carry everything).
pub fn carries(kind: ProviderKind, body: &Map<String, Value>) -> bool {
    passes_through(kind) || body.iter().all(|(k, v)| carries_field(kind, k, v))
}

/// The fields of `body` that `kind` cannot carry, in the body's order.
pub fn uncarried(kind: ProviderKind, body: &Map<String, Value>) -> Vec<String> {
    if passes_through(kind) {
        return Vec::new();
    }
    body.iter()
        .filter(|(k, v)| !carries_field(kind, k, v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// One kind's cell in the README's table.
fn cell(p: &Param, carry: Carry) -> String {
    let mut text = match carry {
        Carry::Carried => "carried".to_owned(),
        Carry::Translated(to) => format!("translated: {to}"),
        Carry::ParamsOnly => "`params` only".to_owned(),
        Carry::Unsupported => "unsupported".to_owned(),
    };
    if let (false, Some((words, _))) = (carry.carries(), p.default_ok) {
        text.push_str(&format!(" (`{words}` taken)"));
    }
    text
}

/// The table's rows as the README writes them:
/// `| name | openai, azure | anthropic |`.
pub fn markdown_rows() -> Vec<String> {
    PARAMS
        .iter()
        .map(|p| {
            format!(
                "| `{}` | {} | {} |",
                p.name,
                cell(p, p.openai),
                cell(p, p.anthropic)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_unique_and_openai_carries_everything() {
        for pair in PARAMS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} {}",
                pair[0].name,
                pair[1].name
            );
        }
        // `carries` answers the pass-through kinds in one branch: true.
        for p in PARAMS {
            assert_eq!(p.openai, Carry::Carried, "{}", p.name);
        }
    }

    #[test]
    fn values_and_unknown_fields() {
        let a = ProviderKind::Anthropic;
        let o = ProviderKind::OpenAi;
        for (name, value, want) in [
            ("n", json!(1), true),
            ("n", json!(2), false),
            ("n", Value::Null, true),
            ("seed", json!(7), false),
            ("logprobs", json!(false), true),
            ("logprobs", json!(true), false),
            ("modalities", json!(["text"]), true),
            ("modalities", json!(["text", "audio"]), false),
            ("top_k", json!(5), false),
            ("temperature", json!(0.5), true),
            ("x_vendor_field", json!(1), false),
        ] {
            assert_eq!(carries_field(a, name, &value), want, "{name} {value}");
            assert!(carries_field(o, name, &value), "{name}");
        }
        let body = json!({"model": "m", "seed": 1, "n": 1, "x": 2});
        let body = body.as_object().unwrap();
        assert_eq!(uncarried(a, body), ["seed", "x"]);
        assert!(!carries(a, body));
        assert!(carries(o, body) && uncarried(o, body).is_empty());
    }
}
