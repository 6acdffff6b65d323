//! Failover classes: what an upstream failure or answer is, beyond its
//! status class (`failure.rs`), for the routing table to choose where a
//! call goes next.
//!
//! - a **context overflow** (the prompt does not fit the deployment's
//!   window): worth trying only a deployment with a larger window;
//! - a **content-policy** error or refusal: returned as it is unless the
//!   config names a group to try instead;
//! - [`FailoverOn`]: statuses and codes the config makes soft.
//!
//! Every function here reads an error through [`UpstreamError`], which is
//! bounded (at most 64 KiB parsed, 8 KiB of message searched), so a huge or
//! hostile body costs little and never panics. The forms recognised, with
//! their sources, are tabled in `docs/failover.md`.
//!
//! One rule for both provider kinds: an `openai` provider fronts many
//! servers (vLLM, llama.cpp, gateways that pass Anthropic's or Bedrock's
//! words on), so every form is looked for whatever the kind.

use serde_json::Value;

pub use crate::codec::error::UpstreamError;

/// Codes (`error.code` or `error.type`) that name a context overflow.
const OVERFLOW_CODES: &[&str] = &[
    // OpenAI, Azure OpenAI, Groq, DeepSeek.
    "context_length_exceeded",
    // llama.cpp server.
    "exceed_context_size_error",
];

/// Phrases (lower case) that name a context overflow in a message. Each is
/// specific to a prompt that does not fit: none is found in a rate-limit or
/// quota message (those are also ruled out first, see [`is_rate_limit`]).
const OVERFLOW_PHRASES: &[&str] = &[
    // OpenAI, Azure, vLLM, DeepSeek; OpenRouter's "This endpoint's ...".
    "maximum context length is",
    // Anthropic; Bedrock's Claude models.
    "prompt is too long",
    // Bedrock.
    "input is too long for requested model",
    // Gemini (native and OpenAI-compatible endpoints).
    "exceeds the maximum number of tokens allowed",
    // llama.cpp server, then its older 500.
    "exceeds the available context size",
    "context size has been exceeded",
    // llama-cpp-python's server.
    "exceed context window of",
    // Hugging Face TGI (Together's and HF endpoints' older servers).
    "tokens + `max_new_tokens` must be <=",
    // vLLM, a prompt longer than the model.
    "too long to fit into the model",
    // OpenAI's, Groq's and Cerebras's closing sentence.
    "please reduce the length of the messages",
];

/// Phrase pairs that name an overflow only together (Cerebras).
const OVERFLOW_PAIRS: &[(&str, &str)] = &[("current length is", "while limit is")];

/// Marks of a rate limit or quota: such an error is never an overflow,
/// whatever else its message says ("Request too large ... on tokens per
/// min" is OpenAI's 429, not a context overflow).
const RATE_LIMIT_PHRASES: &[&str] = &[
    "rate limit",
    "rate_limit",
    "tokens per min",
    "requests per min",
    "quota",
];

/// Codes of a content-policy error.
const POLICY_CODES: &[&str] = &[
    // OpenAI.
    "content_policy_violation",
    // Azure OpenAI: `error.code`, and `error.innererror.code`.
    "content_filter",
    "ResponsibleAIPolicyViolation",
];

/// Phrases (lower case) of a content-policy error.
const POLICY_PHRASES: &[&str] = &[
    // OpenAI (images, moderation).
    "rejected as a result of our safety system",
    // OpenAI reasoning models' `invalid_prompt`.
    "violating our usage policy",
    // Azure OpenAI.
    "content management policy",
];

/// What an upstream error is, beyond its status class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request does not fit the deployment's context window.
    ContextOverflow,
    /// The upstream refused the content (its safety system or policy).
    ContentPolicy,
    /// Anything else: the status class decides.
    Other,
}

/// Class an upstream error (`status` and its body, read): an overflow
/// first (it says where to go next), then a content-policy error.
pub fn classify_error(status: u16, error: &UpstreamError) -> ErrorClass {
    if is_context_overflow(status, error) {
        ErrorClass::ContextOverflow
    } else if is_content_policy_error(status, error) {
        ErrorClass::ContentPolicy
    } else {
        ErrorClass::Other
    }
}

/// Whether an upstream error says the request does not fit the context
/// window: a 4xx or 5xx (not 429) with an overflow code, or else with an
/// overflow phrase in its message; never a rate limit or quota error.
pub fn is_context_overflow(status: u16, error: &UpstreamError) -> bool {
    if !(400..=599).contains(&status) || status == 429 || is_rate_limit(error) {
        return false;
    }
    if OVERFLOW_CODES.iter().any(|c| error.has_code(c)) {
        return true;
    }
    let message = error.message.to_ascii_lowercase();
    OVERFLOW_PHRASES.iter().any(|p| message.contains(p))
        || OVERFLOW_PAIRS
            .iter()
            .any(|(a, b)| message.contains(a) && message.contains(b))
}

/// Whether an error is a rate limit or a quota, by its codes or message.
fn is_rate_limit(error: &UpstreamError) -> bool {
    let coded = error.codes.iter().any(|c| {
        let c = c.to_ascii_lowercase();
        c.contains("rate_limit") || c.contains("quota") || c == "resource_exhausted"
    });
    coded || {
        let message = error.message.to_ascii_lowercase();
        RATE_LIMIT_PHRASES.iter().any(|p| message.contains(p))
    }
}

/// Whether an upstream error is a content-policy refusal of the request: a
/// 4xx (not 429) with a policy code, or else a policy phrase in its message.
pub fn is_content_policy_error(status: u16, error: &UpstreamError) -> bool {
    if !(400..=499).contains(&status) || status == 429 {
        return false;
    }
    if POLICY_CODES.iter().any(|c| error.has_code(c)) {
        return true;
    }
    let message = error.message.to_ascii_lowercase();
    POLICY_PHRASES.iter().any(|p| message.contains(p))
}

/// Whether a finish reason (OpenAI's words: a translated Anthropic
/// `stop_reason: "refusal"` is `content_filter` too) is a refusal; for a
/// stream, its last chunk's `finish_reason`.
pub fn is_refusal_finish(finish_reason: &str) -> bool {
    finish_reason == "content_filter"
}

/// Whether a successful answer (an OpenAI chat completion, after
/// translation) is a refusal: any of its choices finished with
/// `content_filter`.
pub fn is_refusal(response: &Value) -> bool {
    response
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|choices| {
            choices.iter().any(|c| {
                c.get("finish_reason")
                    .and_then(Value::as_str)
                    .is_some_and(is_refusal_finish)
            })
        })
}

/// `failover_on`: statuses (400-599) and error codes that make an
/// otherwise hard failure soft.
///
/// A code matches an error's `error.code` or its `error.type` (and Azure's
/// inner code, Gemini's status): OpenAI puts `model_not_found` in `code`,
/// Anthropic has only a `type` (`not_found_error`). Matching is exact.
/// Naming a broad type (`invalid_request_error`) makes every such error
/// soft: that is the config's choice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverOn {
    /// One bit per status from 400 to 599.
    statuses: [u64; 4],
    codes: Vec<String>,
}

impl FailoverOn {
    /// Add a status; `false` (and nothing added) outside 400-599.
    pub fn add_status(&mut self, status: u16) -> bool {
        let Some(bit) = status.checked_sub(400).filter(|b| *b < 200) else {
            return false;
        };
        self.statuses[usize::from(bit / 64)] |= 1 << (bit % 64);
        true
    }

    /// Add an error code.
    pub fn add_code(&mut self, code: impl Into<String>) {
        let code = code.into();
        if !self.codes.contains(&code) {
            self.codes.push(code);
        }
    }

    /// Add every status and code of `other` (the levels of a config add
    /// up: a deployment's list extends its group's and the router's).
    pub fn extend(&mut self, other: &FailoverOn) {
        for (mine, theirs) in self.statuses.iter_mut().zip(other.statuses) {
            *mine |= theirs;
        }
        for code in &other.codes {
            self.add_code(code.as_str());
        }
    }

    /// Whether nothing is listed (the default: no hard failure is soft).
    pub fn is_empty(&self) -> bool {
        self.statuses == [0; 4] && self.codes.is_empty()
    }

    /// Whether `status` is listed.
    pub fn matches_status(&self, status: u16) -> bool {
        match status.checked_sub(400).filter(|b| *b < 200) {
            Some(bit) => self.statuses[usize::from(bit / 64)] & (1 << (bit % 64)) != 0,
            None => false,
        }
    }

    /// Whether a failure (`status` 400-599 and its body, read) is made soft:
    /// its status is listed, or one of its codes is.
    pub fn matches(&self, status: u16, error: &UpstreamError) -> bool {
        if !(400..=599).contains(&status) {
            return false;
        }
        self.matches_status(status) || error.codes.iter().any(|c| self.codes.contains(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(status: u16, body: &str) -> ErrorClass {
        classify_error(status, &UpstreamError::read(body.as_bytes()))
    }

    fn overflow(status: u16, body: &str) -> bool {
        is_context_overflow(status, &UpstreamError::read(body.as_bytes()))
    }

    #[test]
    fn overflow_codes() {
        // OpenAI, Groq (code alone, whatever the message).
        assert!(overflow(
            400,
            r#"{"error":{"message":"Please shorten.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#
        ));
        // llama.cpp: the code in `type`, the status in `code`.
        assert!(overflow(
            400,
            r#"{"error":{"code":400,"message":"request (4390 tokens) exceeds","type":"exceed_context_size_error","n_prompt_tokens":4390,"n_ctx":4096}}"#
        ));
        assert!(overflow(
            500,
            r#"{"error":{"code":500,"message":"x","type":"exceed_context_size_error"}}"#
        ));
    }

    #[test]
    fn overflow_messages() {
        let forms = [
            // OpenAI / Azure / DeepSeek, without a code.
            r#"{"error":{"message":"This model's maximum context length is 4097 tokens, however you requested 4569 tokens (3545 in your prompt; 1024 for the completion).","type":"invalid_request_error","param":null,"code":null}}"#,
            // vLLM.
            r#"{"object":"error","message":"This model's maximum context length is 32768 tokens. However, you requested 41648 tokens (37552 in the messages, 4096 in the completion).","type":"BadRequestError","param":null,"code":400}"#,
            r#"{"object":"error","message":"The prompt (total length 25938) is too long to fit into the model (context length 4096).","type":"BadRequestError","code":400}"#,
            // OpenRouter.
            r#"{"error":{"message":"This endpoint's maximum context length is 200000 tokens. However, you requested about 5028244 tokens.","code":400}}"#,
            // Anthropic.
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208656 tokens > 200000 maximum"}}"#,
            // Bedrock.
            r#"{"message":"Input is too long for requested model."}"#,
            r#"{"message":"The model returned the following errors: prompt is too long: 227255 tokens > 200000 maximum"}"#,
            // Gemini.
            r#"[{"error":{"code":400,"message":"The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}]"#,
            // llama.cpp, older.
            r#"{"error":{"code":500,"message":"Context size has been exceeded.","type":"server_error"}}"#,
            r#"{"error":{"code":400,"message":"the request exceeds the available context size. try increasing the context size or enable context shift","type":"invalid_request_error"}}"#,
            // llama-cpp-python.
            r#"{"error":{"message":"Requested tokens (2285) exceed context window of 2048","type":"internal_server_error"}}"#,
            // TGI (plain text and JSON).
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. Given: 2019 `inputs` tokens and 30 `max_new_tokens`",
            r#"{"error":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8192. Given: 6204 `inputs` tokens and 2047 `max_new_tokens`","error_type":"validation"}"#,
            // Groq's message alone; Cerebras.
            r#"{"error":{"message":"Please reduce the length of the messages or completion.","type":"invalid_request_error"}}"#,
            r#"{"message":"Current length is 42328 while limit is 40000","type":"invalid_request_error"}"#,
        ];
        for (i, body) in forms.iter().enumerate() {
            let status = if body.contains("\"code\":500") {
                500
            } else {
                400
            };
            assert!(overflow(status, body), "form {i}");
            assert_eq!(class(status, body), ErrorClass::ContextOverflow, "form {i}");
        }
    }

    #[test]
    fn not_overflow() {
        let overflow_body = r#"{"error":{"message":"x","code":"context_length_exceeded"}}"#;
        // Statuses: success, 429, outside 400-599.
        for status in [200, 301, 399, 429, 600, 0] {
            assert!(!overflow(status, overflow_body), "{status}");
        }
        let others = [
            // OpenAI's TPM limit (tokens and "too large", but a rate limit).
            r#"{"error":{"message":"Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 50000.","type":"tokens","code":"rate_limit_exceeded"}}"#,
            // A rate limit whatever the message says.
            r#"{"error":{"message":"maximum context length is fine","type":"rate_limit_error"}}"#,
            r#"{"error":{"message":"You exceeded your current quota; the prompt is too long anyway","code":"insufficient_quota"}}"#,
            // Other 400s.
            r#"{"error":{"message":"Invalid 'user': string too long. Expected a string with maximum length 64","code":"string_above_max_length"}}"#,
            r#"{"error":{"message":"max_tokens is too large: 9000000. This model supports at most 16384 completion tokens","code":"invalid_value"}}"#,
            r#"{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}"#,
            r#"{"error":{"message":"The model `gpt-5x` does not exist","code":"model_not_found"}}"#,
            "<html>413 Request Entity Too Large</html>",
            "",
            // Only half of a pair.
            r#"{"message":"Current length is 5"}"#,
        ];
        for (i, body) in others.iter().enumerate() {
            assert!(!overflow(400, body), "body {i}");
            assert!(!overflow(413, body), "body {i}");
        }
        // The code must be exact.
        assert!(!overflow(
            400,
            r#"{"error":{"code":"context_length_exceeded_not"}}"#
        ));
    }

    #[test]
    fn content_policy_errors() {
        let forms = [
            r#"{"error":{"code":"content_policy_violation","message":"Your request was rejected as a result of our safety system.","param":null,"type":"invalid_request_error"}}"#,
            r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#,
            r#"{"error":{"message":"filtered","innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#,
            r#"{"error":{"message":"Invalid prompt: your prompt was flagged as potentially violating our usage policy.","type":"invalid_request_error","code":"invalid_prompt"}}"#,
        ];
        for (i, body) in forms.iter().enumerate() {
            assert_eq!(class(400, body), ErrorClass::ContentPolicy, "form {i}");
            assert_eq!(class(403, body), ErrorClass::ContentPolicy, "form {i}");
            // Not on a 429 or a 5xx, not on a success.
            for status in [200, 429, 500] {
                assert_eq!(class(status, body), ErrorClass::Other, "form {i} {status}");
            }
        }
        for body in [
            r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: field required"}}"#,
            "policy",
        ] {
            assert_eq!(class(400, body), ErrorClass::Other);
        }
        // An overflow is an overflow first.
        let both = r#"{"error":{"code":"context_length_exceeded","type":"content_filter"}}"#;
        assert_eq!(class(400, both), ErrorClass::ContextOverflow);
    }

    #[test]
    fn refusals() {
        assert!(is_refusal_finish("content_filter"));
        for r in ["stop", "length", "tool_calls", "", "Content_Filter"] {
            assert!(!is_refusal_finish(r));
        }
        let answer = |reasons: &[&str]| {
            let choices: Vec<Value> = reasons
                .iter()
                .enumerate()
                .map(|(i, r)| json!({"index": i, "message": {"role": "assistant", "content": null}, "finish_reason": r}))
                .collect();
            json!({"object": "chat.completion", "choices": choices})
        };
        assert!(is_refusal(&answer(&["content_filter"])));
        assert!(is_refusal(&answer(&["stop", "content_filter"])));
        assert!(!is_refusal(&answer(&["stop"])));
        assert!(!is_refusal(&answer(&[])));
        for odd in [
            json!(null),
            json!([]),
            json!({"choices": "content_filter"}),
            json!({"choices": [null, 1, {"finish_reason": 5}]}),
        ] {
            assert!(!is_refusal(&odd));
        }
        // Anthropic's refusal, through the codec, is one too.
        let translated = crate::codec::anthropic::decode_response(
            br#"{"id":"m","model":"c","content":[],"stop_reason":"refusal","usage":{}}"#,
        )
        .unwrap();
        assert!(is_refusal(&translated));
    }

    #[test]
    fn failover_on_statuses_and_codes() {
        let mut on = FailoverOn::default();
        assert!(on.is_empty());
        let any = UpstreamError::read(br#"{"error":{"message":"x"}}"#);
        assert!(!on.matches(404, &any));
        for s in [400, 404, 463, 464, 527, 528, 599] {
            assert!(on.add_status(s));
        }
        for s in [0, 200, 399, 600, u16::MAX] {
            assert!(!on.add_status(s));
        }
        assert!(!on.is_empty());
        for s in [400, 404, 463, 464, 527, 528, 599] {
            assert!(on.matches_status(s), "{s}");
            assert!(on.matches(s, &any), "{s}");
        }
        for s in [0, 200, 401, 403, 462, 465, 526, 529, 598, 600, u16::MAX] {
            assert!(!on.matches_status(s), "{s}");
        }

        let mut on = FailoverOn::default();
        on.add_code("model_not_found");
        on.add_code("not_found_error");
        on.add_code("model_not_found");
        assert_eq!(on.codes.len(), 2);
        let openai = UpstreamError::read(
            br#"{"error":{"message":"m","type":"invalid_request_error","code":"model_not_found"}}"#,
        );
        let anthropic = UpstreamError::read(
            br#"{"type":"error","error":{"type":"not_found_error","message":"m"}}"#,
        );
        let other =
            UpstreamError::read(br#"{"error":{"type":"invalid_request_error","code":"x"}}"#);
        assert!(on.matches(404, &openai));
        assert!(on.matches(400, &anthropic));
        assert!(!on.matches(404, &other));
        // A code never makes a success or a non-error status match.
        assert!(!on.matches(200, &openai));
        assert!(!on.matches(302, &openai));
        // A type matches too (the documented choice).
        let mut broad = FailoverOn::default();
        broad.add_code("invalid_request_error");
        assert!(broad.matches(400, &other));
    }
}
