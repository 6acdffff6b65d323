//! OpenAI-compatible providers: the body passes through, with the provider's
//! model override applied.

use serde_json::{Map, Value};

/// Encode the caller's body, replacing `model` when the deployment names
/// its own and setting the deployment's `params` (over the caller's).
pub fn encode_request(
    body: &Map<String, Value>,
    model: Option<&str>,
    params: &Map<String, Value>,
) -> Result<Vec<u8>, String> {
    let same_model = model.is_none_or(|m| body.get("model").and_then(Value::as_str) == Some(m));
    let encoded = if same_model && params.is_empty() {
        serde_json::to_vec(body)
    } else {
        let mut body = body.clone();
        if let Some(m) = model {
            body.insert("model".to_owned(), Value::String(m.to_owned()));
        }
        for (k, v) in params {
            body.insert(k.clone(), v.clone());
        }
        serde_json::to_vec(&body)
    };
    encoded.map_err(|e| e.to_string())
}

/// Accept a body that is a chat completion: a JSON object with a non-empty
/// `choices` list whose every entry is an object with a `message` object.
/// Anything else (an HTML error page with a 200, a truncated proxy answer,
/// `{"choices": []}`) is undecodable and so a soft failure: the caller
/// would find no answer in it.
pub fn decode_response(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON ({e})"))?;
    let choices = match v.get("choices") {
        Some(Value::Array(c)) => c,
        _ => return Err("body is not a chat completion (no \"choices\" list)".to_owned()),
    };
    if choices.is_empty() {
        return Err("body is not a chat completion (\"choices\" is empty)".to_owned());
    }
    for (i, choice) in choices.iter().enumerate() {
        if !choice.get("message").is_some_and(Value::is_object) {
            return Err(format!(
                "body is not a chat completion (choices[{i}] has no \"message\" object)"
            ));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_override_and_passthrough() {
        let body = json!({"model": "gpt-4o", "messages": [], "temperature": 0.2});
        let out: Value = serde_json::from_slice(
            &encode_request(body.as_object().unwrap(), Some("llama"), &Map::new()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"model": "llama", "messages": [], "temperature": 0.2})
        );
        let out: Value = serde_json::from_slice(
            &encode_request(body.as_object().unwrap(), None, &Map::new()).unwrap(),
        )
        .unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn decodes_only_chat_completions() {
        assert!(decode_response(br#"{"choices": [{"message": {"content": "x"}}]}"#).is_ok());
        for bad in [
            &br#"{"choices": []}"#[..],
            br#"{"choices": [1, 2]}"#,
            br#"{"choices": [{"index": 0}]}"#,
            br#"{"choices": [{"message": {}}, {"message": "x"}]}"#,
            br#"{"choices": {}}"#,
            br#"[1]"#,
            br#"{"foo": 1}"#,
        ] {
            assert!(
                decode_response(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(decode_response(b"not json").is_err());
    }
}
