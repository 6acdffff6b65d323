//! Streamed responses: each provider's server-sent events to OpenAI
//! `chat.completion.chunk` objects, and what each chunk means for the
//! commit point (whether it carries output).
//!
//! Pure code over [`SseEvent`]s: the call feeds events in the order they
//! arrived and gets [`StreamItem`]s out.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::anthropic;
use super::anthropic_output::ANSWER_TOOL;
use super::chunk::Chunk;
use super::signals::chunk_signals;
use crate::config::ProviderKind;
use crate::sse::SseEvent;

/// What one upstream event means to the caller.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamItem {
    /// An OpenAI chunk for the caller. `output` is true when it carries
    /// output (text, a tool call, a refusal, a finish reason): the first
    /// such chunk commits the attempt.
    Chunk {
        /// The `chat.completion.chunk` object (an OpenAI provider's as its
        /// text came, unchanged).
        chunk: Chunk,
        /// Whether it carries output.
        output: bool,
        /// Whether it carries a finish reason: a body that ends cleanly
        /// after it is a complete stream, with or without its end marker.
        finish: bool,
    },
    /// The stream ended as the protocol says it should (`[DONE]`,
    /// `message_stop`).
    Done,
    /// The upstream reported an error inside the stream; its message.
    Error(String),
}

/// Decodes one attempt's events. Build one per streamed attempt.
#[derive(Debug)]
pub struct StreamDecoder {
    kind: ProviderKind,
    /// Whether the caller asked for a usage chunk (`stream_options.include_usage`).
    include_usage: bool,
    /// `created` for translated chunks: the host's clock at the head.
    created: u64,
    id: String,
    model: String,
    /// Anthropic content block index -> OpenAI tool call index.
    tool_index: HashMap<u64, u64>,
    /// The block of the answer tool's call, whose input is the answer
    /// (streamed as content), and whether any of it went out yet.
    answer_block: Option<u64>,
    answer_sent: bool,
    input_usage: Value,
    output_tokens: u64,
}

impl StreamDecoder {
    /// A decoder for a `kind` provider's stream. `include_usage` is the
    /// caller's `stream_options.include_usage`; `created` the Unix time of
    /// the response head (translated chunks carry it).
    pub fn new(kind: ProviderKind, include_usage: bool, created: u64) -> Self {
        StreamDecoder {
            kind,
            include_usage,
            created,
            id: String::new(),
            model: String::new(),
            tool_index: HashMap::new(),
            answer_block: None,
            answer_sent: false,
            input_usage: Value::Null,
            output_tokens: 0,
        }
    }

    /// Decode one event into `out`. `Err` (the reason) means the event is
    /// undecodable.
    pub fn decode(&mut self, event: SseEvent, out: &mut Vec<StreamItem>) -> Result<(), String> {
        match self.kind {
            ProviderKind::OpenAi | ProviderKind::Azure => decode_openai(event, out),
            ProviderKind::Anthropic => self.decode_anthropic(&event, out),
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Value) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
        })
    }

    fn decode_anthropic(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamItem>,
    ) -> Result<(), String> {
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| format!("event data is not JSON ({e})"))?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&event.event);
        let push = |out: &mut Vec<StreamItem>, chunk: Value, output| {
            out.push(StreamItem::Chunk {
                chunk: chunk.into(),
                output,
                finish: false,
            })
        };
        match kind {
            "message_start" => {
                let message = data
                    .get("message")
                    .ok_or("message_start without `message`")?;
                let text = |k: &str| {
                    message
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                self.id = text("id");
                self.model = text("model");
                self.input_usage = message.get("usage").cloned().unwrap_or(Value::Null);
                let chunk = self.chunk(json!({"role": "assistant", "content": ""}), Value::Null);
                push(out, chunk, false);
            }
            "content_block_start" => {
                let block = data
                    .get("content_block")
                    .ok_or("content_block_start without `content_block`")?;
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let index = data
                            .get("index")
                            .and_then(Value::as_u64)
                            .ok_or("content_block_start without `index`")?;
                        let (Some(id), Some(name)) = (
                            block.get("id").and_then(Value::as_str),
                            block.get("name").and_then(Value::as_str),
                        ) else {
                            return Err("tool_use block without `id` or `name`".to_owned());
                        };
                        if name == ANSWER_TOOL {
                            // Its input deltas are the answer's text.
                            self.answer_block = Some(index);
                            return Ok(());
                        }
                        let tool = self.tool_index.len() as u64;
                        self.tool_index.insert(index, tool);
                        let call = json!({"index": tool, "id": id, "type": "function",
                                          "function": {"name": name, "arguments": ""}});
                        push(
                            out,
                            self.chunk(json!({"tool_calls": [call]}), Value::Null),
                            true,
                        );
                    }
                    Some("text") => {
                        let text = block
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if !text.is_empty() {
                            push(out, self.chunk(json!({"content": text}), Value::Null), true);
                        }
                    }
                    _ => {} // thinking and server-side blocks have no OpenAI form
                }
            }
            "content_block_delta" => {
                let delta = data
                    .get("delta")
                    .ok_or("content_block_delta without `delta`")?;
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = delta
                            .get("text")
                            .and_then(Value::as_str)
                            .ok_or("text_delta without `text`")?;
                        if !text.is_empty() {
                            push(out, self.chunk(json!({"content": text}), Value::Null), true);
                        }
                    }
                    Some("input_json_delta") => {
                        let index = data
                            .get("index")
                            .and_then(Value::as_u64)
                            .ok_or("input_json_delta without `index`")?;
                        if self.answer_block == Some(index) {
                            let part = delta.get("partial_json").and_then(Value::as_str);
                            let part = part.unwrap_or_default();
                            if !part.is_empty() {
                                self.answer_sent = true;
                                let chunk = self.chunk(json!({"content": part}), Value::Null);
                                push(out, chunk, true);
                            }
                            return Ok(());
                        }
                        let tool = *self
                            .tool_index
                            .get(&index)
                            .ok_or("input_json_delta for a block that is not a tool_use")?;
                        let part = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let call = json!({"index": tool, "function": {"arguments": part}});
                        push(
                            out,
                            self.chunk(json!({"tool_calls": [call]}), Value::Null),
                            true,
                        );
                    }
                    _ => {} // thinking_delta, signature_delta, citations
                }
            }
            "message_delta" => {
                if let Some(n) = data
                    .get("usage")
                    .and_then(|u| u.get("output_tokens"))
                    .and_then(Value::as_u64)
                {
                    self.output_tokens = n;
                }
                let stop = data.get("delta").and_then(|d| d.get("stop_reason"));
                if stop.is_some_and(|s| !s.is_null()) {
                    let mut reason = anthropic::finish_reason(stop);
                    // The answer tool's call is the answer: no tool to run.
                    if reason == "tool_calls"
                        && self.answer_block.is_some()
                        && self.tool_index.is_empty()
                    {
                        reason = "stop";
                    }
                    out.push(StreamItem::Chunk {
                        chunk: self.chunk(json!({}), Value::from(reason)).into(),
                        output: true,
                        finish: true,
                    });
                }
            }
            "message_stop" => {
                if self.include_usage {
                    let mut usage = self.input_usage.as_object().cloned().unwrap_or_default();
                    usage.insert("output_tokens".into(), self.output_tokens.into());
                    let mut chunk = self.chunk(json!({}), Value::Null);
                    chunk["choices"] = json!([]);
                    chunk["usage"] = anthropic::decode_usage(Some(&Value::Object(usage)));
                    push(out, chunk, false);
                }
                out.push(StreamItem::Done);
            }
            "content_block_stop" => {
                let index = data.get("index").and_then(Value::as_u64);
                // An answer with no input deltas is the empty object, as
                // the whole response's `input: {}` reads.
                if index.is_some() && index == self.answer_block && !self.answer_sent {
                    self.answer_sent = true;
                    push(out, self.chunk(json!({"content": "{}"}), Value::Null), true);
                }
            }
            "error" => out.push(StreamItem::Error(error_text(&data))),
            _ => {} // ping, and event types added later
        }
        Ok(())
    }
}

/// An OpenAI-compatible stream passes through: `[DONE]` ends it, an object
/// with `error` is an error event, anything else must be a chunk object
/// (whose text, where a choice has some, is a string), passed on as its
/// text came. The usual chunk is read without building a value
/// ([`chunk_signals`]); the value reading decides the rest.
fn decode_openai(event: SseEvent, out: &mut Vec<StreamItem>) -> Result<(), String> {
    if event.data.trim() == "[DONE]" {
        out.push(StreamItem::Done);
        return Ok(());
    }
    let (output, finish) = match chunk_signals(&event.data) {
        Some(signals) => signals,
        None => match signals_of_value(&event.data)? {
            Ok(signals) => signals,
            Err(message) => {
                out.push(StreamItem::Error(message));
                return Ok(());
            }
        },
    };
    out.push(StreamItem::Chunk {
        chunk: Chunk::raw(event.data),
        output,
        finish,
    });
    Ok(())
}

/// The value reading of an OpenAI chunk's `data`: `(output, finish)`, or
/// the message of an error event; `Err` (the reason) when undecodable.
pub(crate) fn signals_of_value(data: &str) -> Result<Result<(bool, bool), String>, String> {
    let chunk: Value =
        serde_json::from_str(data).map_err(|e| format!("event data is not JSON ({e})"))?;
    let Some(obj) = chunk.as_object() else {
        return Err("event data is not a JSON object".to_owned());
    };
    if obj.contains_key("error") {
        return Ok(Err(error_text(&chunk)));
    }
    let choices = match obj.get("choices") {
        Some(Value::Array(c)) => c,
        _ => return Err("chunk has no `choices` list".to_owned()),
    };
    let (mut output, mut finish) = (false, false);
    for choice in choices {
        let (o, f) = choice_signals(choice)?;
        output |= o;
        finish |= f;
    }
    Ok(Ok((output, finish)))
}

/// Whether an OpenAI chunk's choice carries output, and a finish reason.
/// `Err` when its `content` is neither text nor null: passed on, it would
/// commit the attempt to an answer the caller cannot read.
fn choice_signals(choice: &Value) -> Result<(bool, bool), String> {
    let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
    let Some(delta) = choice.get("delta").and_then(Value::as_object) else {
        return Ok((finished, finished));
    };
    let text = match delta.get("content") {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => return Err("a choice's `delta.content` is not a string".to_owned()),
    };
    let has = |d: &Map<String, Value>, key: &str| match d.get(key) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    };
    let output = finished
        || text
        || has(delta, "tool_calls")
        || has(delta, "refusal")
        || has(delta, "function_call");
    Ok((output, finished))
}

/// The message of an error event, whatever its shape.
fn error_text(data: &Value) -> String {
    let e = data.get("error").unwrap_or(data);
    let message = match e {
        Value::String(s) => Some(s.as_str()),
        _ => e.get("message").and_then(Value::as_str),
    };
    let kind = e.get("type").and_then(Value::as_str);
    match (kind, message) {
        (Some(k), Some(m)) => format!("{k}: {m}"),
        (None, Some(m)) => m.to_owned(),
        (Some(k), None) => k.to_owned(),
        (None, None) => "error event without a message".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: Value) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.to_string(),
            id: None,
        }
    }

    fn run(kind: ProviderKind, include_usage: bool, events: &[SseEvent]) -> Vec<StreamItem> {
        let mut d = StreamDecoder::new(kind, include_usage, 1_700_000_000);
        let mut out = Vec::new();
        for e in events {
            d.decode(e.clone(), &mut out).unwrap();
        }
        out
    }

    #[test]
    fn openai_chunks_pass_through_and_mark_output() {
        let role = json!({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]});
        let text = json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]});
        let usage = json!({"id": "c", "choices": [], "usage": {"total_tokens": 3}});
        let out = run(
            ProviderKind::OpenAi,
            true,
            &[
                ev("", role.clone()),
                ev("", text.clone()),
                ev("", usage.clone()),
                SseEvent {
                    data: "[DONE]".into(),
                    ..Default::default()
                },
            ],
        );
        assert_eq!(
            out,
            [
                StreamItem::Chunk {
                    chunk: role.into(),
                    output: false,
                    finish: false
                },
                StreamItem::Chunk {
                    chunk: text.into(),
                    output: true,
                    finish: false
                },
                StreamItem::Chunk {
                    chunk: usage.into(),
                    output: false,
                    finish: false
                },
                StreamItem::Done,
            ]
        );
        let fin = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
        let tool = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]}}]});
        let refusal = json!({"choices": [{"index": 0, "delta": {"refusal": "no"}}]});
        for (c, finishes) in [(fin, true), (tool, false), (refusal, false)] {
            let out = run(ProviderKind::OpenAi, false, &[ev("", c)]);
            assert!(
                matches!(out[0], StreamItem::Chunk { output: true, finish, .. } if finish == finishes),
                "{out:?}"
            );
        }
    }

    #[test]
    fn openai_content_that_is_not_text_is_undecodable() {
        let mut d = StreamDecoder::new(ProviderKind::OpenAi, false, 0);
        for content in [json!(123), json!(["a"]), json!({"text": "a"}), json!(true)] {
            let c = json!({"choices": [{"index": 0, "delta": {"content": content}}]});
            let err = d.decode(ev("", c), &mut Vec::new()).unwrap_err();
            assert!(err.contains("not a string"), "{err}");
        }
        // A null content is no text, as an absent one.
        let c = json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": null}}]});
        let out = run(ProviderKind::OpenAi, false, &[ev("", c)]);
        assert!(matches!(out[0], StreamItem::Chunk { output: false, .. }));
    }

    #[test]
    fn openai_errors_and_garbage() {
        let out = run(
            ProviderKind::OpenAi,
            false,
            &[ev(
                "",
                json!({"error": {"message": "overloaded", "type": "server_error"}}),
            )],
        );
        assert_eq!(out, [StreamItem::Error("server_error: overloaded".into())]);
        let mut d = StreamDecoder::new(ProviderKind::OpenAi, false, 0);
        for bad in ["not json", "[1]", "{\"id\": 1}"] {
            let e = SseEvent {
                data: bad.into(),
                ..Default::default()
            };
            assert!(d.decode(e, &mut Vec::new()).is_err(), "{bad}");
        }
    }

    fn anthropic_tool_stream() -> Vec<SseEvent> {
        vec![
            ev(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 10, "cache_read_input_tokens": 2}}}),
            ),
            ev("ping", json!({"type": "ping"})),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me look."}}),
            ),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
            ),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            ev(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}}),
            ),
            ev("message_stop", json!({"type": "message_stop"})),
        ]
    }

    #[test]
    fn anthropic_events_become_openai_chunks() {
        let out = run(ProviderKind::Anthropic, true, &anthropic_tool_stream());
        let chunks: Vec<(Value, bool)> = out
            .iter()
            .filter_map(|i| match i {
                StreamItem::Chunk { chunk, output, .. } => {
                    Some((chunk.value().into_owned(), *output))
                }
                _ => None,
            })
            .collect();
        assert_eq!(out.last(), Some(&StreamItem::Done));
        for (c, _) in &chunks {
            assert_eq!(
                (c["id"].as_str(), c["created"].as_u64(), c["model"].as_str()),
                (Some("msg_1"), Some(1_700_000_000), Some("claude-x"))
            );
            assert_eq!(c["object"], "chat.completion.chunk");
        }
        let deltas: Vec<Value> = chunks
            .iter()
            .map(|(c, _)| {
                c["choices"]
                    .get(0)
                    .map_or(Value::Null, |ch| ch["delta"].clone())
            })
            .collect();
        assert_eq!(deltas[0], json!({"role": "assistant", "content": ""}));
        assert!(!chunks[0].1);
        assert_eq!(deltas[1], json!({"content": "Let me look."}));
        assert!(chunks[1].1);
        assert_eq!(
            deltas[2],
            json!({"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})
        );
        assert_eq!(
            deltas[3],
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]})
        );
        assert_eq!(
            deltas[4],
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]})
        );
        assert_eq!(chunks[5].0["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[6].0["choices"], json!([]));
        assert_eq!(
            chunks[6].0["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19})
        );
        assert!(!chunks[6].1);
        // Without include_usage there is no usage chunk.
        let out = run(ProviderKind::Anthropic, false, &anthropic_tool_stream());
        assert_eq!(out.len(), 7);
    }

    #[test]
    fn anthropic_stop_reasons_and_errors() {
        for (stop, reason) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
        ] {
            let out = run(
                ProviderKind::Anthropic,
                false,
                &[ev(
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": stop}}),
                )],
            );
            let StreamItem::Chunk {
                chunk,
                output: true,
                finish: true,
            } = &out[0]
            else {
                panic!("{out:?}")
            };
            assert_eq!(chunk.value()["choices"][0]["finish_reason"], reason);
        }
        let out = run(
            ProviderKind::Anthropic,
            false,
            &[ev(
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            )],
        );
        assert_eq!(
            out,
            [StreamItem::Error("overloaded_error: Overloaded".into())]
        );
        // Unknown event types are ignored; thinking is dropped.
        let out = run(
            ProviderKind::Anthropic,
            false,
            &[
                ev("future_event", json!({"type": "future_event"})),
                ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
                ),
            ],
        );
        assert!(out.is_empty());
        let mut d = StreamDecoder::new(ProviderKind::Anthropic, false, 0);
        let bad = ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{"}}),
        );
        assert!(d.decode(bad, &mut Vec::new()).is_err());
    }

    fn answer_stream(partials: &[&str]) -> Vec<SseEvent> {
        let delta = |d: Value| {
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": d}),
            )
        };
        let mut events = vec![
            ev(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_a", "model": "claude-x", "usage": {"input_tokens": 4}}}),
            ),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            ),
            delta(json!({"type": "thinking_delta", "thinking": "secret plan"})),
            delta(json!({"type": "signature_delta", "signature": "sig"})),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "opaque"}}),
            ),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_a", "name": ANSWER_TOOL, "input": {}}}),
            ),
        ];
        for p in partials {
            events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": p}})));
        }
        events.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 2}),
        ));
        events.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}})));
        events.push(ev("message_stop", json!({"type": "message_stop"})));
        events
    }

    /// (content deltas, first output index, finish reason) of a stream.
    fn answer_parts(out: &[StreamItem]) -> (Vec<String>, Option<usize>, Value) {
        let mut texts = Vec::new();
        let (mut first, mut finish) = (None, Value::Null);
        for (i, item) in out.iter().enumerate() {
            let StreamItem::Chunk { chunk, output, .. } = item else {
                continue;
            };
            let v = chunk.value().into_owned();
            assert!(v["choices"][0]["delta"].get("tool_calls").is_none(), "{v}");
            if *output && first.is_none() {
                first = Some(i);
            }
            if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                if !t.is_empty() {
                    texts.push(t.to_owned());
                }
            }
            if !v["choices"][0]["finish_reason"].is_null() {
                finish = v["choices"][0]["finish_reason"].clone();
            }
        }
        (texts, first, finish)
    }

    #[test]
    fn the_answer_tool_streams_as_content_and_thinking_stays_out() {
        let out = run(
            ProviderKind::Anthropic,
            false,
            &answer_stream(&["{\"a\": ", "1}"]),
        );
        let (texts, first, finish) = answer_parts(&out);
        assert_eq!(texts, ["{\"a\": ", "1}"]);
        assert_eq!(finish, "stop");
        // Nothing before the first content delta carries output: it commits.
        let StreamItem::Chunk { chunk, .. } = &out[first.expect("output")] else {
            panic!()
        };
        assert_eq!(chunk.value()["choices"][0]["delta"]["content"], "{\"a\": ");
        let all = format!("{out:?}");
        assert!(
            !all.contains("secret plan") && !all.contains("opaque"),
            "{all}"
        );
        assert_eq!(out.last(), Some(&StreamItem::Done));
        // An answer without input deltas is the empty object, once.
        let out = run(ProviderKind::Anthropic, false, &answer_stream(&[""]));
        assert_eq!(answer_parts(&out).0, ["{}"]);
    }
}
