//! Anthropic Messages API codec: OpenAI chat-completions requests in,
//! Anthropic Messages requests out, and Messages responses back to
//! `chat.completion` objects.
//!
//! Pure translation over `serde_json` values: no I/O, no clock. Errors are
//! plain strings that say which field is wrong and what the caller can send
//! instead; the router wraps them with the provider's name.

use serde_json::{json, Map, Value};

use super::anthropic_output::{encode_response_format, ANSWER_TOOL};
use super::anthropic_thinking::encode_reasoning;
use crate::table::StructuredOutput;

/// Anthropic Messages API version sent in `anthropic-version`.
pub const API_VERSION: &str = "2023-06-01";

/// `max_tokens` sent when the caller gave none (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Every request field the encoder reads: carried as it is, translated, or
/// used by the router itself (`stream_options`). `n` is carried when it is
/// 1 (more is refused). Any other field (and those of [`REFUSED_FIELDS`])
/// has no Anthropic form.
pub const HANDLED_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stream",
    "stream_options",
    "stop",
    "user",
    "n",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
];

/// Request fields with no Anthropic equivalent that change what the caller
/// gets, so dropping them silently would mislead: refused with a hint.
/// A call never reaches this encoder with a field it does not read: the
/// parameter table (`codec/params.rs`) skips the deployment or drops the
/// field with a record first (`unsupported_params`).
pub const REFUSED_FIELDS: &[(&str, &str)] = &[
    ("functions", "use `tools` instead of the legacy `functions`"),
    (
        "function_call",
        "use `tool_choice` instead of the legacy `function_call`",
    ),
    ("audio", "Anthropic providers cannot produce audio output"),
];

/// The roles a message may have, for error messages.
const ROLES: &str = "system, developer, user, assistant or tool";

/// How one deployment wants a request translated.
#[derive(Clone, Copy, Debug, Default)]
pub struct EncodeOptions<'a> {
    /// The model sent, over the caller's when `Some`.
    pub model: Option<&'a str>,
    /// How `response_format` is carried.
    pub structured_output: StructuredOutput,
    /// The deployment's `params` set `thinking`: they win, and
    /// `reasoning_effort` is not translated.
    pub thinking_in_params: bool,
}

/// OpenAI chat-completions request body -> Anthropic Messages request body,
/// with the default options ([`encode_request_with`]).
///
/// `model` overrides the caller's model when `Some`.
///
/// # Errors
///
/// As [`encode_request_with`].
pub fn encode_request(body: &Map<String, Value>, model: Option<&str>) -> Result<Value, String> {
    encode_request_with(
        body,
        &EncodeOptions {
            model,
            ..EncodeOptions::default()
        },
    )
}

/// OpenAI chat-completions request body -> Anthropic Messages request body,
/// for a deployment's `options`.
///
/// # Errors
///
/// When the request cannot be translated (missing or empty `messages`, a
/// content part type we cannot carry, `n` > 1, a bad role, a
/// `reasoning_effort` with a forced tool ...): a message naming the field
/// (`messages[2].content[0]: ...`) and what to send instead.
pub fn encode_request_with(
    body: &Map<String, Value>,
    options: &EncodeOptions<'_>,
) -> Result<Value, String> {
    for (field, hint) in REFUSED_FIELDS {
        if present(body, field).is_some() {
            return Err(format!("`{field}` is not supported: {hint}"));
        }
    }
    check_n(body)?;
    let mut out = Map::new();
    out.insert(
        "model".into(),
        Value::String(model_name(body, options.model)?),
    );
    let (system, messages) = encode_messages(body)?;
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(messages));
    out.insert("max_tokens".into(), max_tokens(body)?);
    for field in ["temperature", "top_p", "stream"] {
        if let Some(v) = present(body, field) {
            out.insert(field.into(), v.clone());
        }
    }
    if let Some(stops) = stop_sequences(body)? {
        out.insert("stop_sequences".into(), stops);
    }
    if let Some(user) = present(body, "user") {
        let user = user.as_str().ok_or("`user` must be a string")?;
        out.insert("metadata".into(), json!({ "user_id": user }));
    }
    encode_tools(body, &mut out)?;
    encode_response_format(body, options.structured_output, &mut out)?;
    // Last: it needs the tool choice and sampling settings above.
    if !options.thinking_in_params {
        encode_reasoning(body, &mut out)?;
    }
    Ok(Value::Object(out))
}

/// A field's value, treating an explicit `null` as absent (OpenAI clients
/// often send `"stop": null` and friends).
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn check_n(body: &Map<String, Value>) -> Result<(), String> {
    match present(body, "n") {
        None => Ok(()),
        Some(n) if n.as_u64() == Some(1) => Ok(()),
        Some(n) => Err(format!(
            "`n` = {n} is not supported: Anthropic gives one choice; send 1 or omit it"
        )),
    }
}

fn model_name(body: &Map<String, Value>, model: Option<&str>) -> Result<String, String> {
    match (model, present(body, "model")) {
        (Some(m), _) => Ok(m.to_owned()),
        (None, Some(Value::String(m))) if !m.is_empty() => Ok(m.clone()),
        _ => Err("`model` is missing: name the model to use".into()),
    }
}

fn max_tokens(body: &Map<String, Value>) -> Result<Value, String> {
    for field in ["max_tokens", "max_completion_tokens"] {
        if let Some(v) = present(body, field) {
            let n = v
                .as_u64()
                .ok_or_else(|| format!("`{field}` must be a positive integer"))?;
            return Ok(n.into());
        }
    }
    Ok(DEFAULT_MAX_TOKENS.into())
}

/// `stop` may be one string or a list; Anthropic only takes a list.
fn stop_sequences(body: &Map<String, Value>) -> Result<Option<Value>, String> {
    let stops = match present(body, "stop") {
        None => return Ok(None),
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items.clone(),
        Some(_) => return Err("`stop` must be a string or an array of strings".into()),
    };
    Ok((!stops.is_empty()).then_some(Value::Array(stops)))
}

/// Splits system/developer messages out and translates the rest into
/// strictly alternating user/assistant turns.
fn encode_messages(body: &Map<String, Value>) -> Result<(Vec<String>, Vec<Value>), String> {
    let messages = match present(body, "messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        _ => return Err("`messages` must be a non-empty array".into()),
    };
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Value)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let msg = message
            .as_object()
            .ok_or_else(|| format!("{at} must be an object"))?;
        let role = msg.get("role").and_then(Value::as_str).unwrap_or("");
        let (role, content) = match role {
            "system" | "developer" => {
                system.extend(system_text(msg, &at)?);
                continue;
            }
            "user" => {
                let content = present(msg, "content");
                let content =
                    content.ok_or_else(|| format!("{at}: a user message needs `content`"))?;
                ("user", encode_content(content, &at)?)
            }
            "assistant" => ("assistant", assistant_content(msg, &at)?),
            "tool" => ("user", tool_result(msg, &at)?),
            other => {
                return Err(format!(
                    "{at}: role {other:?} is not supported; use {ROLES}"
                ))
            }
        };
        push_turn(&mut turns, role, content);
    }
    if turns.is_empty() {
        return Err("`messages` has no user or assistant message; Anthropic needs one".into());
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }));
    Ok((system, turns.collect()))
}

/// Anthropic rejects two turns in a row from one role, so such turns (most
/// often consecutive tool results) become one turn with all their blocks.
fn push_turn(turns: &mut Vec<(&'static str, Value)>, role: &'static str, content: Value) {
    match turns.last_mut() {
        Some((last_role, last)) if *last_role == role => {
            let mut blocks = into_blocks(last.take());
            blocks.extend(into_blocks(content));
            *last = Value::Array(blocks);
        }
        _ => turns.push((role, content)),
    }
}

/// Content as a list of blocks; an empty string carries nothing (and
/// Anthropic rejects empty text blocks).
fn into_blocks(content: Value) -> Vec<Value> {
    match content {
        Value::Array(blocks) => blocks,
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![text_block(&s)],
        other => vec![other],
    }
}

fn text_block(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}

/// The text of a system message; `None` when it is empty.
fn system_text(msg: &Map<String, Value>, at: &str) -> Result<Option<String>, String> {
    let content =
        present(msg, "content").ok_or_else(|| format!("{at}: a system message needs `content`"))?;
    let blocks = into_blocks(encode_content(content, at)?);
    let texts = blocks.iter().map(|b| {
        b.get("text")
            .and_then(Value::as_str)
            .filter(|_| b["type"] == "text")
    });
    let texts = texts.collect::<Option<Vec<_>>>();
    let text = texts
        .ok_or_else(|| format!("{at}: a system message may only hold text"))?
        .join("\n\n");
    Ok((!text.is_empty()).then_some(text))
}

/// String content stays a string; an array of parts becomes blocks.
fn encode_content(content: &Value, at: &str) -> Result<Value, String> {
    match content {
        Value::String(s) => Ok(Value::String(s.clone())),
        Value::Array(parts) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                blocks.extend(encode_part(part, &format!("{at}.content[{j}]"))?);
            }
            Ok(Value::Array(blocks))
        }
        _ => Err(format!(
            "{at}: `content` must be a string or an array of parts"
        )),
    }
}

fn encode_part(part: &Value, at: &str) -> Result<Option<Value>, String> {
    let text = |key: &str| part.get(key).and_then(Value::as_str);
    match part.get("type").and_then(Value::as_str) {
        Some("text") => {
            let t =
                text("text").ok_or_else(|| format!("{at}: a text part needs a `text` string"))?;
            Ok((!t.is_empty()).then(|| text_block(t)))
        }
        // An assistant turn's refusal is plain text to Anthropic.
        Some("refusal") => Ok(text("refusal").filter(|t| !t.is_empty()).map(text_block)),
        Some("image_url") => encode_image(part, at).map(Some),
        Some(other) => Err(format!(
            "{at}: part type {other:?} cannot be sent to Anthropic; use text or image_url"
        )),
        None => Err(format!("{at}: a content part needs a `type`")),
    }
}

fn encode_image(part: &Value, at: &str) -> Result<Value, String> {
    let image = part.get("image_url");
    let url = image
        .and_then(|i| i.get("url"))
        .or(image)
        .and_then(Value::as_str);
    let url = url.ok_or_else(|| format!("{at}: an image_url part needs `image_url.url`"))?;
    if let Some((media_type, data)) = parse_data_url(url) {
        let source = json!({ "type": "base64", "media_type": media_type, "data": data });
        return Ok(json!({ "type": "image", "source": source }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({ "type": "image", "source": { "type": "url", "url": url } }));
    }
    Err(format!(
        "{at}: image url must be http(s) or a base64 data URL (data:<mime>;base64,<data>)"
    ))
}

/// `data:<mime>;base64,<data>` -> (mime, data).
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let (head, data) = url.strip_prefix("data:")?.split_once(',')?;
    let mime = head.strip_suffix(";base64")?;
    (!mime.is_empty()).then_some((mime, data))
}

/// Text first, then one `tool_use` block per tool call, as Anthropic emits them.
fn assistant_content(msg: &Map<String, Value>, at: &str) -> Result<Value, String> {
    let content = present(msg, "content")
        .map(|c| encode_content(c, at))
        .transpose()?;
    let calls = match present(msg, "tool_calls") {
        None => None,
        Some(Value::Array(calls)) => (!calls.is_empty()).then_some(calls),
        Some(_) => return Err(format!("{at}: `tool_calls` must be an array")),
    };
    let Some(calls) = calls else {
        return content
            .ok_or_else(|| format!("{at}: an assistant message needs `content` or `tool_calls`"));
    };
    let mut blocks = content.map(into_blocks).unwrap_or_default();
    for (j, call) in calls.iter().enumerate() {
        blocks.push(tool_use(call, &format!("{at}.tool_calls[{j}]"))?);
    }
    Ok(Value::Array(blocks))
}

fn tool_use(call: &Value, at: &str) -> Result<Value, String> {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}: needs an `id` string"))?;
    let function = call
        .get("function")
        .ok_or_else(|| format!("{at}: needs a `function` object"))?;
    let name = function.get("name").and_then(Value::as_str);
    let name = name.ok_or_else(|| format!("{at}: needs `function.name`"))?;
    let input = parse_arguments(function.get("arguments"), at)?;
    Ok(json!({ "type": "tool_use", "id": id, "name": name, "input": input }))
}

/// Anthropic wants `input` as an object. An absent or blank arguments string
/// (some models emit `""` for argument-less calls) means no arguments.
fn parse_arguments(arguments: Option<&Value>, at: &str) -> Result<Value, String> {
    let parsed = match arguments {
        None | Some(Value::Null) => return Ok(json!({})),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(json!({})),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .map_err(|e| format!("{at}: `function.arguments` is not valid JSON ({e})"))?,
        Some(other) => other.clone(),
    };
    match parsed {
        Value::Object(_) => Ok(parsed),
        _ => Err(format!(
            "{at}: `function.arguments` must encode a JSON object"
        )),
    }
}

fn tool_result(msg: &Map<String, Value>, at: &str) -> Result<Value, String> {
    let id = msg.get("tool_call_id").and_then(Value::as_str);
    let id = id.ok_or_else(|| format!("{at}: a tool message needs a `tool_call_id` string"))?;
    let content = match present(msg, "content") {
        None => Value::String(String::new()),
        Some(c) => encode_content(c, at)?,
    };
    Ok(json!([{ "type": "tool_result", "tool_use_id": id, "content": content }]))
}

/// Adds `tools` and `tool_choice`. Without tools, `tool_choice` and
/// `parallel_tool_calls` mean nothing and are dropped.
fn encode_tools(body: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<(), String> {
    let tools = match present(body, "tools") {
        Some(Value::Array(tools)) if !tools.is_empty() => tools,
        None | Some(Value::Array(_)) => return Ok(()),
        Some(_) => return Err("`tools` must be an array".into()),
    };
    let tools = tools
        .iter()
        .enumerate()
        .map(|(i, t)| encode_tool(t, &format!("tools[{i}]")));
    out.insert(
        "tools".into(),
        Value::Array(tools.collect::<Result<_, _>>()?),
    );
    let mut choice = encode_tool_choice(present(body, "tool_choice"))?;
    if present(body, "parallel_tool_calls") == Some(&Value::Bool(false)) {
        let c = choice.get_or_insert_with(|| json!({ "type": "auto" }));
        // A "none" choice calls no tool, and Anthropic rejects the flag there.
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    if let Some(choice) = choice {
        out.insert("tool_choice".into(), choice);
    }
    Ok(())
}

fn encode_tool(tool: &Value, at: &str) -> Result<Value, String> {
    if tool.get("type").and_then(Value::as_str) != Some("function") {
        return Err(format!(
            "{at}: only tools of type \"function\" can be sent to Anthropic"
        ));
    }
    let function = tool
        .get("function")
        .ok_or_else(|| format!("{at}: needs a `function` object"))?;
    let name = function.get("name").and_then(Value::as_str);
    let name = name.ok_or_else(|| format!("{at}: needs `function.name`"))?;
    if name == ANSWER_TOOL {
        return Err(format!(
            "{at}: the tool name {ANSWER_TOOL:?} is the router's own (the answer to a \
             `response_format`); rename the tool"
        ));
    }
    let mut out = json!({ "name": name });
    if let Some(description) = function.get("description").filter(|d| !d.is_null()) {
        out["description"] = description.clone();
    }
    out["input_schema"] = match function.get("parameters") {
        None | Some(Value::Null) => json!({ "type": "object", "properties": {} }),
        Some(schema) => schema.clone(),
    };
    Ok(out)
}

fn encode_tool_choice(choice: Option<&Value>) -> Result<Option<Value>, String> {
    let Some(choice) = choice else {
        return Ok(None);
    };
    let kind = choice.get("type").and_then(Value::as_str);
    let forced = choice
        .get("function")
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str);
    let out = match (choice.as_str(), kind, forced) {
        (Some("auto"), ..) => json!({ "type": "auto" }),
        (Some("required"), ..) => json!({ "type": "any" }),
        (Some("none"), ..) => json!({ "type": "none" }),
        (None, Some("function"), Some(name)) => json!({ "type": "tool", "name": name }),
        _ => {
            return Err(
                r#"`tool_choice` must be "auto", "required", "none" or a named function"#.into(),
            )
        }
    };
    Ok(Some(out))
}

/// Anthropic Messages response body -> OpenAI `chat.completion` object.
///
/// `created` is always 0: the core has no clock of its own (hosts may stamp it).
///
/// # Errors
///
/// Why the body is not a decodable Messages response (not JSON, not an
/// object, no `content` array ...); the router counts it as `undecodable`.
pub fn decode_response(body: &[u8]) -> Result<Value, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let obj = value.as_object().ok_or("body is not a JSON object")?;
    if obj.get("type").and_then(Value::as_str) == Some("error") {
        let message = obj
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str);
        return Err(format!(
            "body is an Anthropic error: {}",
            message.unwrap_or("(no message)")
        ));
    }
    let blocks = obj
        .get("content")
        .and_then(Value::as_array)
        .ok_or("body has no `content` array")?;
    let mut message = decode_content(blocks)?;
    message.insert("role".into(), "assistant".into());
    let str_field = |key: &str| obj.get(key).and_then(Value::as_str).unwrap_or_default();
    let mut finish_reason = finish_reason(obj.get("stop_reason"));
    // The answer tool's call is the answer: the turn ended, no tool to run.
    let answered = blocks
        .iter()
        .any(|b| b["type"] == "tool_use" && b["name"] == ANSWER_TOOL);
    if finish_reason == "tool_calls" && answered && !message.contains_key("tool_calls") {
        finish_reason = "stop";
    }
    Ok(json!({
        "id": str_field("id"), "object": "chat.completion", "created": 0, "model": str_field("model"),
        "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason }],
        "usage": decode_usage(obj.get("usage")),
    }))
}

/// Text blocks become `content`, `tool_use` blocks `tool_calls`, except the
/// answer tool's, whose input is the answer (`content`, as JSON text).
/// Thinking (`thinking`, `redacted_thinking`) and server-side tool blocks
/// have no OpenAI counterpart and are skipped: a chat completion carries
/// no reasoning text (OpenAI's own reasoning models return none).
fn decode_content(blocks: &[Value]) -> Result<Map<String, Value>, String> {
    let mut answers = Vec::new();
    let mut texts: Vec<&str> = Vec::new();
    let mut calls = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let field = |key: &str| block.get(key).and_then(Value::as_str);
        match field("type") {
            Some("text") => {
                texts.push(
                    field("text")
                        .ok_or_else(|| format!("content[{i}]: text block without `text`"))?,
                );
            }
            Some("tool_use") => {
                let (Some(id), Some(name)) = (field("id"), field("name")) else {
                    return Err(format!(
                        "content[{i}]: tool_use block without `id` or `name`"
                    ));
                };
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                let arguments =
                    serde_json::to_string(&input).map_err(|e| format!("content[{i}]: {e}"))?;
                if name == ANSWER_TOOL {
                    answers.push(arguments);
                    continue;
                }
                let function = json!({ "name": name, "arguments": arguments });
                calls.push(json!({ "id": id, "type": "function", "function": function }));
            }
            _ => {}
        }
    }
    let mut message = Map::new();
    // Anthropic splits one answer into several text blocks (around tool
    // calls or citations); they read as one text when joined directly.
    // A forced tool's call comes with no text before it (Anthropic says so);
    // were there some, it would spoil the JSON: the answer alone is content.
    if !answers.is_empty() {
        texts = answers.iter().map(String::as_str).collect();
    }
    let content = if texts.is_empty() {
        Value::Null
    } else {
        Value::String(texts.concat())
    };
    message.insert("content".into(), content);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(message)
}

pub(crate) fn finish_reason(stop_reason: Option<&Value>) -> &'static str {
    match stop_reason.and_then(Value::as_str) {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Cached input tokens are still prompt tokens to an OpenAI caller.
pub(crate) fn decode_usage(usage: Option<&Value>) -> Value {
    let count = |key: &str| {
        usage
            .and_then(|u| u.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let inputs = [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ];
    let prompt = inputs
        .into_iter()
        .fold(0u64, |sum, key| sum.saturating_add(count(key)));
    let completion = count("output_tokens");
    let total = prompt.saturating_add(completion);
    json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(request: &Value) -> Result<Value, String> {
        encode_request(
            request.as_object().expect("test request is an object"),
            None,
        )
    }

    fn ok(request: &Value) -> Value {
        encode(request).expect("request translates")
    }

    /// A one-message chat request with `extra` fields on top.
    fn chat(extra: Value) -> Value {
        let mut request =
            json!({ "model": "gpt-4o", "messages": [{ "role": "user", "content": "hi" }] });
        request
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        request
    }

    fn messages(messages: Value) -> Value {
        json!({ "model": "m", "messages": messages })
    }

    fn call(id: &str, arguments: &str) -> Value {
        json!({ "id": id, "type": "function", "function": { "name": "f", "arguments": arguments } })
    }

    fn decode(response: &Value) -> Value {
        decode_response(response.to_string().as_bytes()).expect("response decodes")
    }

    #[test]
    fn plain_chat_gets_defaults_and_drops_fields_without_equivalent() {
        let out = ok(&chat(json!({
            "temperature": 0.2, "top_p": 0.9, "frequency_penalty": 1, "presence_penalty": 1, "seed": 7,
            "logprobs": false, "response_format": { "type": "text" }, "stream_options": {}, "n": 1,
        })));
        let want = json!({
            "model": "gpt-4o", "max_tokens": DEFAULT_MAX_TOKENS, "temperature": 0.2, "top_p": 0.9,
            "messages": [{ "role": "user", "content": "hi" }],
        });
        assert_eq!(out, want);
        assert_eq!(ok(&chat(json!({ "stream": false })))["stream"], false);
        let overridden = encode_request(
            chat(json!({})).as_object().expect("object"),
            Some("claude-x"),
        );
        assert_eq!(overridden.expect("translates")["model"], "claude-x");
    }

    #[test]
    fn system_and_developer_messages_join_wherever_they_are() {
        let parts = json!([{ "type": "text", "text": "A" }, { "type": "text", "text": "B" }]);
        let out = ok(&messages(json!([
            { "role": "system", "content": "Be terse." },
            { "role": "user", "content": "hi" },
            { "role": "system", "content": "" },
            { "role": "developer", "content": parts },
        ])));
        assert_eq!(out["system"], "Be terse.\n\nA\n\nB");
        assert_eq!(
            out["messages"],
            json!([{ "role": "user", "content": "hi" }])
        );
    }

    #[test]
    fn max_tokens_stop_and_user_translate() {
        let cases = [
            (json!({ "max_tokens": 10 }), "max_tokens", json!(10)),
            (
                json!({ "max_completion_tokens": 20 }),
                "max_tokens",
                json!(20),
            ),
            (
                json!({ "max_tokens": null }),
                "max_tokens",
                json!(DEFAULT_MAX_TOKENS),
            ),
            (json!({ "stop": "END" }), "stop_sequences", json!(["END"])),
            (
                json!({ "stop": ["a", "b"] }),
                "stop_sequences",
                json!(["a", "b"]),
            ),
            (json!({ "stop": null }), "stop_sequences", Value::Null),
            (json!({ "stop": [] }), "stop_sequences", Value::Null),
            (
                json!({ "user": "u-1" }),
                "metadata",
                json!({ "user_id": "u-1" }),
            ),
        ];
        for (extra, field, want) in cases {
            assert_eq!(
                ok(&chat(extra.clone())).get(field).unwrap_or(&Value::Null),
                &want,
                "{extra}"
            );
        }
    }

    #[test]
    fn content_parts_become_blocks() {
        let out = ok(&messages(json!([{ "role": "user", "content": [
            { "type": "text", "text": "look" },
            { "type": "text", "text": "" },
            { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBOR" } },
            { "type": "image_url", "image_url": { "url": "https://example.com/c.jpg", "detail": "low" } },
        ]}])));
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                { "type": "text", "text": "look" },
                { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "iVBOR" } },
                { "type": "image", "source": { "type": "url", "url": "https://example.com/c.jpg" } },
            ])
        );
    }

    #[test]
    fn assistant_tool_calls_follow_text_and_same_role_turns_merge() {
        let calls = json!([call("c1", r#"{"x":1}"#), call("c2", "")]);
        let out = ok(&messages(json!([
            { "role": "user", "content": "go" },
            { "role": "user", "content": [{ "type": "text", "text": "on" }] },
            { "role": "assistant", "content": "Calling.", "tool_calls": calls },
            { "role": "tool", "tool_call_id": "c1", "content": "one" },
            { "role": "tool", "tool_call_id": "c2", "content": [{ "type": "text", "text": "two" }] },
            { "role": "user", "content": "thanks" },
        ])));
        assert_eq!(
            out["messages"],
            json!([
                { "role": "user", "content": [{ "type": "text", "text": "go" }, { "type": "text", "text": "on" }] },
                { "role": "assistant", "content": [
                    { "type": "text", "text": "Calling." },
                    { "type": "tool_use", "id": "c1", "name": "f", "input": { "x": 1 } },
                    { "type": "tool_use", "id": "c2", "name": "f", "input": {} },
                ]},
                { "role": "user", "content": [
                    { "type": "tool_result", "tool_use_id": "c1", "content": "one" },
                    { "type": "tool_result", "tool_use_id": "c2", "content": [{ "type": "text", "text": "two" }] },
                    { "type": "text", "text": "thanks" },
                ]},
            ])
        );
        // Empty text next to tool calls is dropped: Anthropic rejects empty text blocks.
        let out = ok(&messages(
            json!([{ "role": "assistant", "content": "", "tool_calls": [call("c", "{}")] }]),
        ));
        let tool_use = json!([{ "type": "tool_use", "id": "c", "name": "f", "input": {} }]);
        assert_eq!(out["messages"][0]["content"], tool_use);
    }

    #[test]
    fn tools_and_tool_choice_translate() {
        let schema = json!({ "type": "object", "required": ["city"] });
        let tools = json!([
            { "type": "function", "function": { "name": "w", "description": "weather", "parameters": schema } },
            { "type": "function", "function": { "name": "now" } },
        ]);
        let out = ok(&chat(json!({ "tools": tools })));
        assert_eq!(
            out["tools"],
            json!([
                { "name": "w", "description": "weather", "input_schema": schema },
                { "name": "now", "input_schema": { "type": "object", "properties": {} } },
            ])
        );
        assert!(out.get("tool_choice").is_none());
        let forced = json!({ "type": "function", "function": { "name": "w" } });
        let cases = [
            (json!("auto"), Value::Null, json!({ "type": "auto" })),
            (json!("required"), Value::Null, json!({ "type": "any" })),
            (json!("none"), json!(false), json!({ "type": "none" })),
            (forced, Value::Null, json!({ "type": "tool", "name": "w" })),
            (
                Value::Null,
                json!(false),
                json!({ "type": "auto", "disable_parallel_tool_use": true }),
            ),
            (
                json!("required"),
                json!(false),
                json!({ "type": "any", "disable_parallel_tool_use": true }),
            ),
            (json!("auto"), json!(true), json!({ "type": "auto" })),
        ];
        for (choice, parallel, want) in cases {
            let extra =
                json!({ "tools": tools, "tool_choice": choice, "parallel_tool_calls": parallel });
            assert_eq!(
                ok(&chat(extra))["tool_choice"],
                want,
                "{choice} / {parallel}"
            );
        }
        assert!(ok(&chat(json!({ "tool_choice": "required" })))
            .get("tool_choice")
            .is_none());
    }

    #[test]
    fn untranslatable_requests_say_what_to_fix() {
        let assistant = |args: &str| {
            messages(json!([{ "role": "assistant", "tool_calls": [call("c", args)] }]))
        };
        let part = |p: Value| messages(json!([{ "role": "user", "content": [p] }]));
        let image = |url: &str| part(json!({ "type": "image_url", "image_url": { "url": url } }));
        let function_tool = json!([{ "type": "function", "function": { "name": "f" } }]);
        let cases = [
            (
                json!({ "model": "m" }),
                "`messages` must be a non-empty array",
            ),
            (messages(json!([])), "`messages` must be a non-empty array"),
            (
                messages(json!([{ "role": "system", "content": "s" }])),
                "no user or assistant message",
            ),
            (
                messages(json!([{ "role": "function", "content": "x" }])),
                "role \"function\" is not supported",
            ),
            (messages(json!(["hi"])), "messages[0] must be an object"),
            (messages(json!([{ "role": "user" }])), "needs `content`"),
            (
                messages(json!([{ "role": "assistant", "content": null }])),
                "needs `content` or `tool_calls`",
            ),
            (
                messages(json!([{ "role": "tool", "content": "x" }])),
                "`tool_call_id`",
            ),
            (
                assistant("{nope"),
                "tool_calls[0]: `function.arguments` is not valid JSON",
            ),
            (assistant("[1]"), "must encode a JSON object"),
            (
                part(json!({ "type": "input_audio", "input_audio": {} })),
                "part type \"input_audio\" cannot be sent",
            ),
            (image("ftp://x/y.png"), "base64 data URL"),
            (image("data:image/png,abc"), "base64 data URL"),
            (
                json!({ "messages": [{ "role": "user", "content": "hi" }] }),
                "`model` is missing",
            ),
            (chat(json!({ "n": 2 })), "`n` = 2 is not supported"),
            (chat(json!({ "stop": 5 })), "`stop` must be"),
            (
                chat(json!({ "max_tokens": "many" })),
                "`max_tokens` must be a positive integer",
            ),
            (chat(json!({ "functions": [] })), "use `tools`"),
            (
                chat(json!({ "tools": [{ "type": "web_search" }] })),
                "tools[0]: only tools of type \"function\"",
            ),
            (
                chat(json!({ "tools": function_tool, "tool_choice": "any" })),
                "`tool_choice` must be",
            ),
        ];
        for (request, want) in cases {
            let err = encode(&request).expect_err(&format!("{request} must fail"));
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn text_response_decodes_with_usage() {
        let out = decode(&json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{ "type": "thinking", "thinking": "hmm" }, { "type": "text", "text": "Hel" },
                        { "type": "text", "text": "lo" }],
            "stop_reason": "end_turn", "usage": { "input_tokens": 10, "output_tokens": 3 },
        }));
        let message = json!({ "role": "assistant", "content": "Hello" });
        assert_eq!(
            out,
            json!({
                "id": "msg_1", "object": "chat.completion", "created": 0, "model": "claude-sonnet-4-5",
                "choices": [{ "index": 0, "message": message, "finish_reason": "stop" }],
                "usage": { "prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13 },
            })
        );
    }

    #[test]
    fn tool_use_decodes_to_tool_calls_and_cache_tokens_count_as_prompt() {
        let usage = json!({
            "input_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 20,
            "output_tokens": 7,
        });
        let input = json!({ "city": "Paris", "n": [1, 2] });
        let out = decode(&json!({
            "id": "msg_2", "model": "m", "stop_reason": "tool_use", "usage": usage,
            "content": [{ "type": "tool_use", "id": "toolu_1", "name": "w", "input": input }],
        }));
        let choice = &out["choices"][0];
        assert_eq!(choice["message"]["content"], Value::Null);
        let function = json!({ "name": "w", "arguments": r#"{"city":"Paris","n":[1,2]}"# });
        let tool_calls = json!([{ "id": "toolu_1", "type": "function", "function": function }]);
        assert_eq!(choice["message"]["tool_calls"], tool_calls);
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(
            out["usage"],
            json!({ "prompt_tokens": 125, "completion_tokens": 7, "total_tokens": 132 })
        );
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        let cases = [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
        ];
        for (stop_reason, want) in cases {
            let out = decode(&json!({ "content": [], "stop_reason": stop_reason }));
            assert_eq!(out["choices"][0]["finish_reason"], want, "{stop_reason}");
        }
        let out = decode(&json!({ "content": [] }));
        let message = json!({ "role": "assistant", "content": null });
        assert_eq!(
            out["choices"][0],
            json!({ "index": 0, "message": message, "finish_reason": "stop" })
        );
        assert_eq!(
            out["usage"],
            json!({ "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 })
        );
    }

    #[test]
    fn undecodable_responses_are_errors() {
        let cases: [(&[u8], &str); 5] = [
            (b"<html>", "not JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"id":"msg"}"#, "no `content` array"),
            (
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                "Overloaded",
            ),
            (
                br#"{"content":[{"type":"tool_use","name":"f"}]}"#,
                "without `id` or `name`",
            ),
        ];
        for (body, want) in cases {
            let err = decode_response(body).expect_err("must fail");
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    fn with(
        body: &Value,
        mode: StructuredOutput,
        thinking_in_params: bool,
    ) -> Result<Value, String> {
        let options = EncodeOptions {
            model: Some("claude-x"),
            structured_output: mode,
            thinking_in_params,
        };
        encode_request_with(body.as_object().expect("object"), &options)
    }

    fn pair_format() -> Value {
        let schema = json!({ "type": "object", "properties": { "a": { "type": "integer" } },
                             "required": ["a"], "additionalProperties": false });
        json!({ "type": "json_schema", "json_schema": { "name": "Pair", "schema": schema, "strict": true } })
    }

    #[test]
    fn response_format_goes_native_or_as_the_answer_tool() {
        let body = chat(json!({ "response_format": pair_format() }));
        let native = with(&body, StructuredOutput::Native, false).expect("native");
        assert_eq!(
            native["output_config"]["format"]["schema"],
            pair_format()["json_schema"]["schema"]
        );
        assert!(native.get("tools").is_none());
        let tool = with(&body, StructuredOutput::Tool, false).expect("tool");
        assert_eq!(
            tool["tool_choice"],
            json!({ "type": "tool", "name": ANSWER_TOOL })
        );
        assert!(tool.get("output_config").is_none());
        // The default options are native.
        assert!(ok(&body).get("output_config").is_some());
        // A caller's tool may not take the answer tool's name.
        let named =
            chat(json!({ "tools": [{ "type": "function", "function": { "name": ANSWER_TOOL } }] }));
        let err = encode(&named).expect_err("reserved");
        assert!(err.contains("the router's own"), "{err}");
    }

    #[test]
    fn reasoning_effort_and_params_thinking() {
        let body = chat(json!({ "reasoning_effort": "medium", "max_tokens": 500 }));
        let out = with(&body, StructuredOutput::Native, false).expect("thinking");
        assert_eq!(
            out["thinking"],
            json!({ "type": "enabled", "budget_tokens": 8192 })
        );
        assert_eq!(out["max_tokens"], 8192 + 500);
        // The deployment's own `thinking` wins: nothing translated.
        let out = with(&body, StructuredOutput::Native, true).expect("params win");
        assert!(out.get("thinking").is_none());
        assert_eq!(out["max_tokens"], 500);
        // Thinking with the forced answer tool is refused, native is not.
        let both = chat(json!({ "reasoning_effort": "low", "response_format": pair_format() }));
        let err = with(&both, StructuredOutput::Tool, false).expect_err("forced");
        assert!(err.contains("forced tool"), "{err}");
        assert!(with(&both, StructuredOutput::Native, false).is_ok());
    }

    #[test]
    fn the_answer_tool_decodes_to_content_and_thinking_never_shows() {
        let out = decode(&json!({
            "id": "msg_3", "model": "m", "stop_reason": "tool_use", "usage": {},
            "content": [
                { "type": "thinking", "thinking": "secret plan", "signature": "sig" },
                { "type": "redacted_thinking", "data": "opaque" },
                { "type": "text", "text": "Here it is:" },
                { "type": "tool_use", "id": "toolu_9", "name": ANSWER_TOOL, "input": { "a": 1 } },
            ],
        }));
        let choice = &out["choices"][0];
        assert_eq!(
            choice["message"],
            json!({ "role": "assistant", "content": r#"{"a":1}"# })
        );
        assert_eq!(choice["finish_reason"], "stop");
        let text = out.to_string();
        assert!(
            !text.contains("secret plan") && !text.contains("opaque"),
            "{text}"
        );
        // Cut short, it stays "length".
        let out = decode(&json!({ "stop_reason": "max_tokens",
            "content": [{ "type": "tool_use", "id": "t", "name": ANSWER_TOOL, "input": {} }] }));
        assert_eq!(out["choices"][0]["finish_reason"], "length");
        assert_eq!(out["choices"][0]["message"]["content"], "{}");
    }

    #[test]
    fn handled_fields_are_exactly_the_fields_that_change_the_request() {
        let tools = json!([{ "type": "function", "function": { "name": "w" } }]);
        let base = chat(json!({ "tools": tools }));
        let sent = |field: &str, value: Option<&Value>| {
            let mut body = base.clone();
            if let Some(v) = value {
                body[field] = v.clone();
            }
            ok(&body)
        };
        let plain = sent("", None);
        let samples = json!({
            "model": "other", "messages": [{ "role": "user", "content": "bye" }], "max_tokens": 7,
            "max_completion_tokens": 8, "temperature": 0.5, "top_p": 0.5, "stream": true,
            "stop": "x", "user": "u", "tools": [], "tool_choice": "required",
            "parallel_tool_calls": false, "reasoning_effort": "low",
            "response_format": pair_format(),
        });
        // `n` (1 only) and `stream_options` (the router's) send nothing new.
        for field in HANDLED_FIELDS
            .iter()
            .filter(|f| !["n", "stream_options"].contains(f))
        {
            let value = samples
                .get(*field)
                .unwrap_or_else(|| panic!("a sample for {field}"));
            assert_ne!(sent(field, Some(value)), plain, "{field} changes nothing");
        }
        assert_eq!(
            samples.as_object().expect("object").len(),
            HANDLED_FIELDS.len() - 2
        );
        // OpenAI fields outside the list change nothing (the parameter table
        // calls them unsupported).
        for field in [
            "seed",
            "logprobs",
            "top_logprobs",
            "logit_bias",
            "presence_penalty",
            "frequency_penalty",
            "modalities",
            "prediction",
            "store",
            "metadata",
            "service_tier",
            "verbosity",
            "web_search_options",
            "top_k",
        ] {
            assert!(!HANDLED_FIELDS.contains(&field), "{field}");
            assert_eq!(sent(field, Some(&json!(1))), plain, "{field}");
        }
    }
}
