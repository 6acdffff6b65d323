//! `response_format` for Anthropic: the caller's JSON schema (or "any JSON
//! object") becomes Anthropic's structured outputs or a forced tool, and
//! the answer comes back as the message's `content` either way.
//!
//! Structured outputs, as generally available on the Claude API (no beta
//! header; Claude Sonnet 4.5/4.6, Opus 4.5/4.6, Haiku 4.5 and later): the
//! request field `output_config: {"format": {"type": "json_schema",
//! "schema": ...}}`, the answer a text block holding the JSON (Anthropic's
//! "Structured outputs" guide, platform.claude.com/docs/en/build-with-claude/
//! structured-outputs; the Python SDK's `OutputConfigParam` /
//! `JSONOutputFormatParam`). The beta's `output_format` field and its
//! `structured-outputs-2025-11-13` header are not used.
//!
//! Anthropic accepts a subset of JSON Schema there (objects closed with
//! `additionalProperties: false`, some keywords refused). The schema is sent
//! as the caller gave it, not rewritten: the OpenAI SDK's `parse()` already
//! sends schemas in OpenAI's strict subset, which Anthropic takes, and a
//! rewritten schema would no longer be the one the caller validates against.
//! A schema Anthropic refuses comes back as its 400 (an invalid request
//! with Anthropic's message); `structured_output: "tool"` takes any schema.

use serde_json::{json, Map, Value};

use crate::table::StructuredOutput;

/// The name of the tool whose input is the answer, in `"tool"` mode and for
/// `json_object`. A caller's tool may not have it: a `tool_use` block named
/// so is always the answer, so decoding needs no other context.
pub const ANSWER_TOOL: &str = "f3dx_answer";

/// Adds what the caller's `response_format` asks for to `out` (the
/// translated request, tools already in).
///
/// - `json_schema` in `Native` mode: `output_config.format`.
/// - `json_schema` in `Tool` mode: a forced tool [`ANSWER_TOOL`] whose
///   `input_schema` is the schema.
/// - `json_object`, in both modes: the forced tool with an open schema
///   (`{"type": "object"}`), as structured outputs only take closed objects.
/// - `text` or none: nothing.
///
/// The forced tool leaves the caller's own `tools` nothing to do (the model
/// must call the answer tool), so the two together are refused rather than
/// sent with tools that can never be called.
///
/// # Errors
///
/// A malformed `response_format`, or a forced answer tool with the
/// caller's `tools`: a message naming the field and what to send instead.
pub fn encode_response_format(
    body: &Map<String, Value>,
    mode: StructuredOutput,
    out: &mut Map<String, Value>,
) -> Result<(), String> {
    let Some(format) = body.get("response_format").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let kind = format.get("type").and_then(Value::as_str);
    let (schema, about) = match kind {
        Some("text") => return Ok(()),
        Some("json_object") => (json!({ "type": "object" }), None),
        Some("json_schema") => {
            let spec = format
                .get("json_schema")
                .and_then(Value::as_object)
                .ok_or("`response_format.json_schema` must be an object")?;
            let schema =
                match spec.get("schema") {
                    Some(s @ Value::Object(_)) => s.clone(),
                    _ => return Err(
                        "`response_format.json_schema.schema` must be an object (a JSON Schema)"
                            .into(),
                    ),
                };
            if mode == StructuredOutput::Native {
                let format = json!({ "type": "json_schema", "schema": schema });
                out.insert("output_config".into(), json!({ "format": format }));
                return Ok(());
            }
            (schema, Some(spec))
        }
        _ => {
            return Err(
                r#"`response_format.type` must be "text", "json_object" or "json_schema""#.into(),
            )
        }
    };
    if out.contains_key("tools") {
        return Err(format!(
            "`response_format` {} with `tools` is not supported on this Anthropic deployment: \
             the answer is a forced tool call, so no other tool could be called; use a \
             `json_schema` response format on a deployment with `structured_output: \"native\"`",
            kind.unwrap_or_default()
        ));
    }
    out.insert(
        "tools".into(),
        json!([{ "name": ANSWER_TOOL, "description": describe(about), "input_schema": schema }]),
    );
    out.insert(
        "tool_choice".into(),
        json!({ "type": "tool", "name": ANSWER_TOOL }),
    );
    Ok(())
}

/// The answer tool's description: what it is for, and the caller's name
/// and description of the format, which tell the model what to put in it.
fn describe(spec: Option<&Map<String, Value>>) -> String {
    let mut text = String::from("Give your whole answer as this tool's input.");
    let field = |k: &str| spec.and_then(|s| s.get(k)).and_then(Value::as_str);
    if let Some(name) = field("name") {
        text.push_str(&format!(" The answer is a {name}."));
    }
    if let Some(about) = field("description") {
        text.push(' ');
        text.push_str(about);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(format: Value, mode: StructuredOutput, tools: bool) -> Result<Value, String> {
        let body = json!({ "response_format": format });
        let mut out = Map::new();
        if tools {
            out.insert("tools".into(), json!([{ "name": "w" }]));
        }
        encode_response_format(body.as_object().expect("object"), mode, &mut out)?;
        Ok(Value::Object(out))
    }

    fn schema() -> Value {
        json!({ "type": "object", "properties": { "a": { "type": "integer" } },
                "required": ["a"], "additionalProperties": false })
    }

    #[test]
    fn json_schema_is_structured_outputs_or_a_forced_tool() {
        let format = json!({ "type": "json_schema",
                             "json_schema": { "name": "Pair", "schema": schema(), "strict": true } });
        let native = encode(format.clone(), StructuredOutput::Native, false).expect("native");
        assert_eq!(
            native,
            json!({ "output_config": { "format": { "type": "json_schema", "schema": schema() } } })
        );
        // Native keeps the caller's tools: both go together.
        let with_tools = encode(format.clone(), StructuredOutput::Native, true).expect("tools");
        assert_eq!(with_tools["tools"], json!([{ "name": "w" }]));
        let tool = encode(format, StructuredOutput::Tool, false).expect("tool");
        assert_eq!(
            tool["tool_choice"],
            json!({ "type": "tool", "name": ANSWER_TOOL })
        );
        assert_eq!(tool["tools"][0]["name"], ANSWER_TOOL);
        assert_eq!(tool["tools"][0]["input_schema"], schema());
        let about = tool["tools"][0]["description"].as_str().expect("text");
        assert!(about.contains("Pair"), "{about}");
        assert!(tool.get("output_config").is_none());
    }

    #[test]
    fn json_object_is_a_tool_with_an_open_schema_in_both_modes() {
        for mode in [StructuredOutput::Native, StructuredOutput::Tool] {
            let out = encode(json!({ "type": "json_object" }), mode, false).expect("encodes");
            assert_eq!(out["tools"][0]["input_schema"], json!({ "type": "object" }));
            assert_eq!(out["tool_choice"]["name"], ANSWER_TOOL);
        }
    }

    #[test]
    fn text_or_absent_adds_nothing() {
        for format in [json!({ "type": "text" }), Value::Null] {
            let out = encode(format, StructuredOutput::Tool, false).expect("encodes");
            assert_eq!(out, json!({}));
        }
    }

    #[test]
    fn bad_formats_and_a_forced_answer_with_tools_are_refused() {
        let tool_schema =
            json!({ "type": "json_schema", "json_schema": { "name": "P", "schema": schema() } });
        let cases = [
            (
                json!({ "type": "yaml" }),
                StructuredOutput::Native,
                false,
                "`response_format.type`",
            ),
            (
                json!("json"),
                StructuredOutput::Native,
                false,
                "`response_format.type`",
            ),
            (
                json!({ "type": "json_schema" }),
                StructuredOutput::Native,
                false,
                "must be an object",
            ),
            (
                json!({ "type": "json_schema", "json_schema": { "name": "x" } }),
                StructuredOutput::Tool,
                false,
                "`response_format.json_schema.schema`",
            ),
            (
                tool_schema,
                StructuredOutput::Tool,
                true,
                "with `tools` is not supported",
            ),
            (
                json!({ "type": "json_object" }),
                StructuredOutput::Native,
                true,
                "json_object with `tools`",
            ),
        ];
        for (format, mode, tools, want) in cases {
            let err = encode(format.clone(), mode, tools).expect_err(&format!("{format}"));
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }
}
