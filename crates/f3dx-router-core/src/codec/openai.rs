//! OpenAI-compatible providers: the body passes through, with the provider's
//! model override applied.

use serde_json::{Map, Value};

/// Encode the caller's body, replacing `model` when the provider has an
/// override.
pub fn encode_request(body: &Map<String, Value>, model: Option<&str>) -> Result<Vec<u8>, String> {
    let encoded = match model {
        None => serde_json::to_vec(body),
        Some(m) => {
            let mut body = body.clone();
            body.insert("model".to_owned(), Value::String(m.to_owned()));
            serde_json::to_vec(&body)
        }
    };
    encoded.map_err(|e| e.to_string())
}

/// Accept a body that is a chat completion: a JSON object with a `choices`
/// list. Anything else (an HTML error page with a 200, a truncated proxy
/// answer) is undecodable and so a soft failure.
pub fn decode_response(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON ({e})"))?;
    match v.get("choices") {
        Some(Value::Array(_)) => Ok(v),
        _ => Err("body is not a chat completion (no \"choices\" list)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_override_and_passthrough() {
        let body = json!({"model": "gpt-4o", "messages": [], "temperature": 0.2});
        let out: Value = serde_json::from_slice(
            &encode_request(body.as_object().unwrap(), Some("llama")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"model": "llama", "messages": [], "temperature": 0.2})
        );
        let out: Value =
            serde_json::from_slice(&encode_request(body.as_object().unwrap(), None).unwrap())
                .unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn decodes_only_chat_completions() {
        assert!(decode_response(br#"{"choices": []}"#).is_ok());
        assert!(decode_response(br#"{"foo": 1}"#).is_err());
        assert!(decode_response(b"not json").is_err());
    }
}
