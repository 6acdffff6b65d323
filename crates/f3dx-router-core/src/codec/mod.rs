//! Provider codecs: the caller's OpenAI chat request to each provider's wire
//! format, and each provider's response back to OpenAI's shape. Pure code,
//! shared by every host.

pub mod anthropic;
pub mod anthropic_output;
pub mod anthropic_thinking;
pub mod azure;
pub mod chunk;
pub mod error;
pub mod openai;
pub mod params;
mod signals;
pub mod stream;

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::config::{ProviderConfig, ProviderKind};
use crate::http::HttpRequest;
use crate::table::Deployment;

/// Build the HTTP request for `provider` with its own settings (a config
/// without `models`: the provider is its only deployment).
pub fn encode_request(
    provider: &ProviderConfig,
    body: &Map<String, Value>,
) -> Result<HttpRequest, String> {
    let own = Deployment {
        group: 0,
        provider: 0,
        model: provider.model.clone(),
        weight: provider.weight,
        timeout: provider.timeout,
        context_window: None,
        params: Map::new(),
        headers: Vec::new(),
        slot: 0,
        failover_on: Default::default(),
        retry: Default::default(),
        structured_output: Default::default(),
        unsupported_params: Default::default(),
    };
    encode_for(provider, &own, body)
}

/// Build the HTTP request for `deployment` of `provider`: its model name,
/// its `params` merged into the translated body, the provider's headers
/// then its own, its timeout. `Err` means the caller's request cannot be
/// expressed for this provider; the message says why.
pub fn encode_for(
    provider: &ProviderConfig,
    deployment: &Deployment,
    body: &Map<String, Value>,
) -> Result<HttpRequest, String> {
    let streams = body.get("stream").and_then(Value::as_bool) == Some(true);
    let model = deployment.model.as_deref();
    let params = &deployment.params;
    let (path, mut headers, body) = match provider.kind {
        ProviderKind::OpenAi => {
            let auth = format!("Bearer {}", provider.api_key.expose());
            (
                Cow::Borrowed("/chat/completions"),
                vec![("authorization".to_owned(), auth)],
                openai::encode_request(body, model, params)?,
            )
        }
        ProviderKind::Azure => {
            let settings = provider
                .azure
                .as_ref()
                .ok_or("an azure provider without its settings")?;
            // The classic path names the deployment: the model sent.
            let sent = model.or_else(|| body.get("model").and_then(Value::as_str));
            (
                Cow::Owned(azure::path(settings, sent)?),
                vec![azure::auth_header(settings.auth, &provider.api_key)],
                openai::encode_request(body, model, params)?,
            )
        }
        ProviderKind::Anthropic => {
            let options = anthropic::EncodeOptions {
                model,
                structured_output: deployment.structured_output,
                // A `thinking` of the deployment's own wins over `reasoning_effort`.
                thinking_in_params: params.contains_key("thinking"),
            };
            let mut encoded = anthropic::encode_request_with(body, &options)?;
            if let Some(obj) = encoded.as_object_mut() {
                for (k, v) in params {
                    obj.insert(k.clone(), v.clone());
                }
            }
            let headers = vec![
                ("x-api-key".to_owned(), provider.api_key.expose().to_owned()),
                (
                    "anthropic-version".to_owned(),
                    anthropic::API_VERSION.to_owned(),
                ),
            ];
            (
                Cow::Borrowed("/messages"),
                headers,
                serde_json::to_vec(&encoded).map_err(|e| e.to_string())?,
            )
        }
    };
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    let accept = if streams {
        "text/event-stream"
    } else {
        "application/json"
    };
    headers.push(("accept".to_owned(), accept.to_owned()));
    // The provider's own headers come last and win over ours, and the
    // deployment's over the provider's; a repeated name is replaced rather
    // than sent twice.
    for (name, value) in provider.headers.iter().chain(&deployment.headers) {
        headers.retain(|(n, _)| n != name);
        headers.push((name.clone(), value.clone()));
    }
    Ok(HttpRequest {
        method: "POST",
        url: format!("{}{}", provider.base_url, path),
        headers,
        body,
        max_body_bytes: provider.max_body_bytes,
        timeout: deployment.timeout,
    })
}

/// Decode a 2xx body into an OpenAI chat completion. `Err` (the reason)
/// makes the attempt a soft failure.
pub fn decode_response(kind: ProviderKind, body: &[u8]) -> Result<Value, String> {
    match kind {
        ProviderKind::OpenAi | ProviderKind::Azure => openai::decode_response(body),
        ProviderKind::Anthropic => anthropic::decode_response(body),
    }
}

/// The human-readable message in an error body, if it has one. Both OpenAI
/// (`{"error": {"message"}}`) and Anthropic (`{"type": "error", "error":
/// {"message"}}`) put it in the same place; some servers use a bare string.
pub fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    let msg = match e {
        Value::String(s) => s.as_str(),
        _ => e.get("message")?.as_str()?,
    };
    Some(truncate(msg, 500))
}

/// A short, printable excerpt of a body that had no structured message.
pub fn body_excerpt(body: &[u8]) -> String {
    truncate(String::from_utf8_lossy(body).trim(), 200)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::time::Duration;

    fn provider(kind: ProviderKind) -> ProviderConfig {
        ProviderConfig {
            name: "p".into(),
            kind,
            base_url: "http://h/v1".into(),
            api_key: Secret::new("sk-1"),
            timeout: Duration::from_secs(1),
            stream_idle_timeout: Duration::from_secs(1),
            weight: 1,
            model: None,
            headers: vec![
                ("x-org".into(), "acme".into()),
                ("accept".into(), "*/*".into()),
            ],
            max_body_bytes: 10,
            rpm: None,
            tpm: None,
            azure: None,
        }
    }

    #[test]
    fn openai_request_shape() {
        let body =
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let r = encode_request(&provider(ProviderKind::OpenAi), body.as_object().unwrap()).unwrap();
        assert_eq!(r.url, "http://h/v1/chat/completions");
        assert_eq!(r.header("Authorization"), Some("Bearer sk-1"));
        assert_eq!(r.header("x-org"), Some("acme"));
        assert_eq!(r.headers.iter().filter(|(n, _)| n == "accept").count(), 1);
        assert_eq!(r.header("accept"), Some("*/*"));
        assert!(!format!("{r:?}").contains("sk-1"));
    }

    #[test]
    fn anthropic_request_shape() {
        let body =
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let r = encode_request(
            &provider(ProviderKind::Anthropic),
            body.as_object().unwrap(),
        )
        .unwrap();
        assert_eq!(r.url, "http://h/v1/messages");
        assert_eq!(r.header("x-api-key"), Some("sk-1"));
        assert_eq!(r.header("authorization"), None);
        assert_eq!(r.header("anthropic-version"), Some(anthropic::API_VERSION));
    }

    #[test]
    fn azure_request_shapes() {
        use crate::config::{AzureApi, AzureAuth, AzureSettings};
        let body = serde_json::json!({"model": "gpt-4o", "messages": []});
        let body = body.as_object().unwrap();
        let mut p = provider(ProviderKind::Azure);
        p.base_url = "https://r.openai.azure.com".into();
        p.headers.clear();
        p.azure = Some(AzureSettings {
            api: AzureApi::Deployments {
                api_version: "2024-10-21".into(),
            },
            auth: AzureAuth::ApiKey,
        });
        // No model of its own: the request's names the deployment.
        let r = encode_request(&p, body).unwrap();
        assert_eq!(
            r.url,
            "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(r.header("api-key"), Some("sk-1"));
        assert_eq!(r.header("authorization"), None);
        assert!(!format!("{r:?}").contains("sk-1"));
        p.model = Some("prod gpt/4o".into());
        let r = encode_request(&p, body).unwrap();
        assert!(
            r.url.contains("/deployments/prod%20gpt%2F4o/chat/"),
            "{}",
            r.url
        );
        let sent: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(sent["model"], "prod gpt/4o");
        p.azure = Some(AzureSettings {
            api: AzureApi::V1,
            auth: AzureAuth::Bearer,
        });
        let r = encode_request(&p, body).unwrap();
        assert_eq!(
            r.url,
            "https://r.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(r.header("authorization"), Some("Bearer sk-1"));
        assert_eq!(r.header("api-key"), None);
        p.azure = None;
        assert!(encode_request(&p, body).is_err(), "settings missing");
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad key","type":"x"}}"#).as_deref(),
            Some("bad key")
        );
        assert_eq!(
            error_message(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            )
            .as_deref(),
            Some("Overloaded")
        );
        assert_eq!(
            error_message(br#"{"error":"nope"}"#).as_deref(),
            Some("nope")
        );
        assert_eq!(error_message(b"<html>"), None);
        assert_eq!(body_excerpt(b" upstream down \n"), "upstream down");
    }
}
