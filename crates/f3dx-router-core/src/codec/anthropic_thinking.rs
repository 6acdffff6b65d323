//! `reasoning_effort` for Anthropic: extended thinking with a token budget
//! per level.
//!
//! Anthropic's request: `thinking: {"type": "enabled", "budget_tokens": N}`,
//! N at least 1024 and below `max_tokens` (the Python SDK's
//! `ThinkingConfigEnabledParam`). Thinking cannot go with a forced tool
//! choice ("Thinking may not be enabled when tool_choice forces tool use"),
//! nor with a `temperature` other than 1 or a `top_p` under 0.95; such
//! requests are refused here, with what to change, rather than sent to fail
//! (OpenAI's reasoning models refuse a `temperature` other than 1 alike).

use serde_json::{json, Map, Value};

/// Thinking budget (tokens) per OpenAI `reasoning_effort` level. `"none"`
/// sends no thinking. `minimal` is Anthropic's smallest budget; each level
/// up doubles or quadruples it. `max_tokens` becomes the budget plus the
/// `max_tokens` translated (the caller's, or the encoder's default), so
/// the answer still has the room it was given.
pub const THINKING_BUDGETS: &[(&str, u64)] = &[
    ("minimal", 1024),
    ("low", 4096),
    ("medium", 8192),
    ("high", 16384),
    ("xhigh", 32768),
];

/// Adds `thinking` to `out` (the translated request, `max_tokens`,
/// `temperature`, `top_p` and `tool_choice` already in) when the caller
/// asked for a `reasoning_effort`, and raises `max_tokens` to fit it.
///
/// Not when the conversation continues a tool call (its last non-tool
/// message is an assistant turn with tool calls): Anthropic wants that
/// turn's thinking blocks back, which an OpenAI history does not have, so
/// that request goes without thinking rather than be refused.
///
/// # Errors
///
/// An unknown level, or a request thinking cannot go with (a forced tool
/// choice, a `temperature` other than 1, a `top_p` under 0.95).
pub fn encode_reasoning(
    body: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), String> {
    let Some(effort) = body.get("reasoning_effort").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let level = effort.as_str().unwrap_or_default();
    if level == "none" {
        return Ok(());
    }
    let Some(&(_, budget)) = THINKING_BUDGETS.iter().find(|(l, _)| *l == level) else {
        let levels: Vec<&str> = THINKING_BUDGETS.iter().map(|(l, _)| *l).collect();
        return Err(format!(
            "`reasoning_effort` must be \"none\" or one of {}",
            levels.join(", ")
        ));
    };
    if continues_tool_call(body) {
        return Ok(());
    }
    let forced = out
        .get("tool_choice")
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "any" || t == "tool");
    if forced {
        return Err(
            "`reasoning_effort` cannot go with a forced tool call on Anthropic (a \
             `tool_choice` of \"required\" or a named function, or a `response_format` \
             answered by a forced tool): drop one of them, or use a `json_schema` response \
             format on a deployment with `structured_output: \"native\"`"
                .into(),
        );
    }
    if out
        .get("temperature")
        .and_then(Value::as_f64)
        .is_some_and(|t| t != 1.0)
    {
        return Err(
            "`temperature` must be 1 or unset with `reasoning_effort` (Anthropic's extended \
             thinking)"
                .into(),
        );
    }
    if out
        .get("top_p")
        .and_then(Value::as_f64)
        .is_some_and(|p| p < 0.95)
    {
        return Err(
            "`top_p` must be at least 0.95 or unset with `reasoning_effort` (Anthropic's \
             extended thinking)"
                .into(),
        );
    }
    // The encoder always sets it (Anthropic requires it).
    let answer = out.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
    out.insert("max_tokens".into(), budget.saturating_add(answer).into());
    out.insert(
        "thinking".into(),
        json!({ "type": "enabled", "budget_tokens": budget }),
    );
    Ok(())
}

/// Whether the last message that is not a tool result is an assistant turn
/// with tool calls: the request carries that turn's results.
fn continues_tool_call(body: &Map<String, Value>) -> bool {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return false;
    };
    let last = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) != Some("tool"));
    last.is_some_and(|m| {
        m.get("role").and_then(Value::as_str) == Some("assistant")
            && m.get("tool_calls")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Value {
        json!([{ "role": "user", "content": "hi" }])
    }

    fn encode(body: Value, out: Value) -> Result<Value, String> {
        let mut out = out.as_object().expect("object").clone();
        encode_reasoning(body.as_object().expect("object"), &mut out)?;
        Ok(Value::Object(out))
    }

    #[test]
    fn each_level_has_its_budget_and_max_tokens_grows_by_it() {
        for (level, budget) in THINKING_BUDGETS {
            let body = json!({ "messages": user(), "reasoning_effort": level });
            let out = encode(body, json!({ "max_tokens": 100 })).expect("encodes");
            assert_eq!(
                out["thinking"],
                json!({ "type": "enabled", "budget_tokens": budget })
            );
            assert_eq!(out["max_tokens"], budget + 100);
            assert!(*budget >= 1024, "Anthropic's smallest budget is 1024");
        }
        // Through the encoder, the default `max_tokens` is the answer's room.
        let body = json!({ "model": "m", "messages": user(), "reasoning_effort": "low" });
        let out = super::super::anthropic::encode_request(body.as_object().expect("object"), None)
            .expect("encodes");
        let default = super::super::anthropic::DEFAULT_MAX_TOKENS;
        assert_eq!(out["max_tokens"], 4096 + default);
    }

    #[test]
    fn none_or_absent_sends_no_thinking() {
        for effort in [json!("none"), Value::Null] {
            let body = json!({ "messages": user(), "reasoning_effort": effort });
            let out = encode(body, json!({ "max_tokens": 10 })).expect("encodes");
            assert_eq!(out, json!({ "max_tokens": 10 }));
        }
    }

    #[test]
    fn a_tool_call_continued_goes_without_thinking() {
        let messages = json!([
            { "role": "user", "content": "weather?" },
            { "role": "assistant", "tool_calls": [{ "id": "c", "type": "function",
              "function": { "name": "w", "arguments": "{}" } }] },
            { "role": "tool", "tool_call_id": "c", "content": "sunny" },
        ]);
        let body = json!({ "messages": messages, "reasoning_effort": "high" });
        let out = encode(body, json!({ "max_tokens": 10 })).expect("encodes");
        assert!(out.get("thinking").is_none());
        assert_eq!(out["max_tokens"], 10);
    }

    #[test]
    fn what_thinking_cannot_go_with_is_refused() {
        let body = json!({ "messages": user(), "reasoning_effort": "low" });
        let cases = [
            (
                json!({ "tool_choice": { "type": "any" } }),
                "forced tool call",
            ),
            (
                json!({ "tool_choice": { "type": "tool", "name": "f" } }),
                "forced tool call",
            ),
            (json!({ "temperature": 0.2 }), "`temperature` must be 1"),
            (json!({ "top_p": 0.5 }), "`top_p` must be at least 0.95"),
        ];
        for (out, want) in cases {
            let err = encode(body.clone(), out).expect_err("refused");
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
        for ok in [
            json!({ "temperature": 1 }),
            json!({ "top_p": 0.95 }),
            json!({ "tool_choice": { "type": "auto" } }),
        ] {
            assert!(encode(body.clone(), ok).is_ok());
        }
        let bad = json!({ "messages": user(), "reasoning_effort": "max" });
        let err = encode(bad, json!({})).expect_err("unknown level");
        assert!(err.contains("minimal, low, medium, high, xhigh"), "{err}");
    }
}
