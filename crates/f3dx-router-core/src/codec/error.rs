//! What an upstream's error body says: its machine-readable codes and its
//! message, read from any of the shapes upstreams use, within a bound.
//!
//! | shape | who |
//! |---|---|
//! | `{"error": {"message", "type", "code", "param"}}` | OpenAI, Azure OpenAI, Groq, DeepSeek, OpenRouter, llama.cpp server, most OpenAI-compatible servers |
//! | `{"type": "error", "error": {"type", "message"}}` | Anthropic (and Bedrock gateways that pass it on) |
//! | `{"object": "error", "message", "type", "code"}`, `{"message", ...}` | vLLM, Bedrock, Cerebras (the fields at the top level) |
//! | `[{"error": {"code", "message", "status"}}]` | Gemini (a list of one error) |
//! | `{"error": "text"}` | some servers |
//! | anything else (HTML, plain text) | proxies, TGI: the text itself is the message |
//!
//! Azure's `error.innererror.code` (`ResponsibleAIPolicyViolation`) and
//! Gemini's `error.status` (`INVALID_ARGUMENT`) count as codes too. A
//! numeric `code` (vLLM, llama.cpp, Gemini, OpenRouter put the HTTP status
//! there) is no code: the status is known already.

use serde_json::{Map, Value};

/// A body longer than this is not parsed as JSON (its first
/// [`MAX_MESSAGE_BYTES`] are read as text): the core drains at most 64 KiB
/// of an error body, so only a host calling this directly passes more.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// The most of a message kept (and searched for patterns): the phrases
/// that matter open the message.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// The most codes kept from one body.
const MAX_CODES: usize = 4;

/// The longest code kept; a longer string is no code an upstream documents.
const MAX_CODE_BYTES: usize = 128;

/// An upstream error body, read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamError {
    /// The machine-readable codes, in this order: `error.code` (a string),
    /// `error.type`, `error.innererror.code`, `error.status`.
    pub codes: Vec<String>,
    /// The message (or, for a body that is no JSON error, its text), cut
    /// to [`MAX_MESSAGE_BYTES`]; empty when there is none.
    pub message: String,
}

impl UpstreamError {
    /// Read an error body of any size or content (never panics).
    pub fn read(body: &[u8]) -> Self {
        if body.len() <= MAX_JSON_BYTES {
            if let Ok(value) = serde_json::from_slice::<Value>(body) {
                if let Some(read) = Self::from_json(&value) {
                    return read;
                }
            }
        }
        let head = &body[..body.len().min(MAX_MESSAGE_BYTES)];
        UpstreamError {
            codes: Vec::new(),
            message: cut(String::from_utf8_lossy(head).trim()).to_owned(),
        }
    }

    fn from_json(value: &Value) -> Option<Self> {
        // Gemini answers a list of one error.
        let value = match value {
            Value::Array(items) => items.first()?,
            v => v,
        };
        let top = value.as_object()?;
        let fields: &Map<String, Value> = match top.get("error") {
            Some(Value::Object(e)) => e,
            Some(Value::String(s)) => {
                return Some(UpstreamError {
                    codes: Vec::new(),
                    message: cut(s).to_owned(),
                })
            }
            // vLLM, Bedrock, Cerebras: the error's fields at the top level.
            _ if top.get("object").and_then(Value::as_str) == Some("error")
                || top.get("message").is_some_and(Value::is_string) =>
            {
                top
            }
            _ => return None,
        };
        let mut codes = Vec::new();
        let inner = fields.get("innererror").and_then(|i| i.get("code"));
        for code in [
            fields.get("code"),
            fields.get("type"),
            inner,
            fields.get("status"),
        ]
        .into_iter()
        .flatten()
        {
            if let Value::String(c) = code {
                if !c.is_empty() && c.len() <= MAX_CODE_BYTES && codes.len() < MAX_CODES {
                    codes.push(c.clone());
                }
            }
        }
        let message = match fields.get("message") {
            Some(Value::String(m)) => cut(m).to_owned(),
            _ => String::new(),
        };
        Some(UpstreamError { codes, message })
    }

    /// Whether `code` is one of this error's codes (exact, case-sensitive:
    /// codes are identifiers).
    pub fn has_code(&self, code: &str) -> bool {
        self.codes.iter().any(|c| c == code)
    }
}

/// `s` cut to at most [`MAX_MESSAGE_BYTES`], on a character boundary.
fn cut(s: &str) -> &str {
    if s.len() <= MAX_MESSAGE_BYTES {
        return s;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(body: &str) -> Vec<String> {
        UpstreamError::read(body.as_bytes()).codes
    }

    #[test]
    fn openai_code_and_type() {
        let e = UpstreamError::read(
            br#"{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
        );
        assert_eq!(e.codes, ["model_not_found", "invalid_request_error"]);
        assert_eq!(e.message, "The model `x` does not exist");
        assert!(e.has_code("model_not_found"));
        assert!(!e.has_code("MODEL_NOT_FOUND"));
    }

    #[test]
    fn anthropic_type() {
        let e = UpstreamError::read(
            br#"{"type":"error","error":{"type":"not_found_error","message":"model: x"}}"#,
        );
        assert_eq!(e.codes, ["not_found_error"]);
        assert_eq!(e.message, "model: x");
    }

    #[test]
    fn azure_inner_code() {
        assert_eq!(
            codes(
                r#"{"error":{"message":"filtered","type":null,"param":"prompt","code":"content_filter","status":400,
                "innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{}}}}"#
            ),
            ["content_filter", "ResponsibleAIPolicyViolation"]
        );
    }

    #[test]
    fn numeric_codes_are_no_codes() {
        // vLLM: top-level fields, the status as code.
        let e = UpstreamError::read(
            br#"{"object":"error","message":"too long","type":"BadRequestError","param":null,"code":400}"#,
        );
        assert_eq!(e.codes, ["BadRequestError"]);
        assert_eq!(e.message, "too long");
        // llama.cpp.
        assert_eq!(
            codes(
                r#"{"error":{"code":400,"message":"m","type":"exceed_context_size_error","n_ctx":8}}"#
            ),
            ["exceed_context_size_error"]
        );
        // Gemini, a list of one.
        let e = UpstreamError::read(
            br#"[{"error":{"code":400,"message":"The input token count (9) exceeds","status":"INVALID_ARGUMENT"}}]"#,
        );
        assert_eq!(e.codes, ["INVALID_ARGUMENT"]);
        assert!(e.message.starts_with("The input token count"));
    }

    #[test]
    fn other_shapes() {
        let e = UpstreamError::read(br#"{"error":"nope"}"#);
        assert!(e.codes.is_empty());
        assert_eq!(e.message, "nope");
        let e = UpstreamError::read(b"  <html>bad gateway</html>\n");
        assert_eq!(e.message, "<html>bad gateway</html>");
        let e = UpstreamError::read(br#"{"message":"Input is too long","type":"t"}"#);
        assert_eq!(e.codes, ["t"]);
        assert_eq!(e.message, "Input is too long");
        let e = UpstreamError::read(br#"{"detail":"x"}"#);
        assert_eq!(
            e,
            UpstreamError {
                codes: vec![],
                message: r#"{"detail":"x"}"#.into()
            }
        );
        assert_eq!(UpstreamError::read(b""), UpstreamError::default());
        assert_eq!(UpstreamError::read(b"[]").message, "[]");
        // Codes of the wrong type, empty or too long are dropped.
        let long = "c".repeat(MAX_CODE_BYTES + 1);
        let body = format!(r#"{{"error":{{"code":{{"a":1}},"type":"","status":"{long}"}}}}"#);
        assert!(codes(&body).is_empty());
    }

    #[test]
    fn hostile_bodies() {
        // Non-UTF-8: read lossily, no panic.
        let e = UpstreamError::read(&[0xff, 0xfe, b'x', 0xc3]);
        assert!(e.message.contains('x'));
        // Deep JSON: serde_json's recursion limit refuses it; read as text.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = UpstreamError::read(deep.as_bytes());
        assert!(e.codes.is_empty());
        assert_eq!(e.message.len(), MAX_MESSAGE_BYTES);
        // Huge: past MAX_JSON_BYTES only the first bytes are read as text.
        let huge = format!(
            r#"{{"error":{{"code":"context_length_exceeded","message":"{}"}}}}"#,
            "a".repeat(10 * 1024 * 1024)
        );
        let e = UpstreamError::read(huge.as_bytes());
        assert!(e.codes.is_empty());
        assert_eq!(e.message.len(), MAX_MESSAGE_BYTES);
        // A long message is cut on a character boundary.
        let body = format!(r#"{{"error":{{"message":"{}"}}}}"#, "é".repeat(5000));
        let e = UpstreamError::read(body.as_bytes());
        assert!(e.message.len() <= MAX_MESSAGE_BYTES && e.message.len() > MAX_MESSAGE_BYTES - 2);
        // Many codes: at most MAX_CODES kept.
        assert!(
            codes(r#"{"error":{"code":"a","type":"b","status":"c","innererror":{"code":"d"}}}"#)
                .len()
                <= MAX_CODES
        );
    }
}
