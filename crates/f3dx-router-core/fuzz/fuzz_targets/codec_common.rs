//! Shared by the two codec targets: one provider of each kind, and the checks
//! run on every input.

use std::sync::OnceLock;

use f3dx_router_core::internals::codec;
use f3dx_router_core::{HostLimits, ProviderConfig, ProviderKind, RouterConfig};
use serde_json::{json, Value};

/// Two providers of `kind`: one passes the caller's model through, one
/// overrides it and adds a header.
fn providers(kind: ProviderKind) -> &'static [ProviderConfig] {
    static OPENAI: OnceLock<Vec<ProviderConfig>> = OnceLock::new();
    static ANTHROPIC: OnceLock<Vec<ProviderConfig>> = OnceLock::new();
    static AZURE: OnceLock<Vec<ProviderConfig>> = OnceLock::new();
    let cell = match kind {
        ProviderKind::OpenAi => &OPENAI,
        ProviderKind::Anthropic => &ANTHROPIC,
        ProviderKind::Azure => &AZURE,
    };
    cell.get_or_init(|| {
        let kind = kind.as_str();
        let config = json!({"providers": [
            {"name": "plain", "kind": kind, "base_url": "https://api.test/v1/", "api_key": "sk-fuzz-0123456789"},
            {"name": "override", "kind": kind, "base_url": "http://127.0.0.1:8080", "api_key": "sk-fuzz-abcdefghij",
             "model": "fuzz-model", "headers": {"x-org": "acme", "accept": "*/*"}}
        ]});
        RouterConfig::from_json(&config, &|_| None, HostLimits::default())
            .expect("the fixed config is valid")
            .providers
    })
}

/// Encode the input (when it is a JSON object) for both providers, and
/// decode it as a response and as an error body.
pub fn run(kind: ProviderKind, data: &[u8]) {
    if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(data) {
        for p in providers(kind) {
            if let Ok(request) = codec::encode_request(p, &body) {
                assert!(request.url.starts_with(&p.base_url));
                let sent: Value =
                    serde_json::from_slice(&request.body).expect("an encoded body is JSON");
                assert!(sent.is_object());
                if let Some(model) = &p.model {
                    assert_eq!(sent.get("model").and_then(Value::as_str), Some(&model[..]));
                }
                if kind == ProviderKind::Anthropic {
                    assert!(sent.get("messages").is_some_and(Value::is_array));
                    assert!(sent.get("max_tokens").is_some());
                }
                assert_eq!(request.max_body_bytes, p.max_body_bytes);
                let debug = format!("{request:?}");
                assert!(!debug.contains(p.api_key.expose()), "key in Debug: {debug}");
            }
        }
    }
    if let Ok(v) = codec::decode_response(kind, data) {
        assert!(v.get("choices").is_some_and(Value::is_array), "{v}");
    }
    if let Some(message) = codec::error_message(data) {
        assert!(message.chars().count() <= 503);
    }
    assert!(codec::body_excerpt(data).chars().count() <= 203);
}
