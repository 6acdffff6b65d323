//! The caller's request, checked before anything is sent.

use serde_json::{Map, Value};

use crate::quality;
use crate::schema;

/// How the caller asked to stream.
#[derive(Clone, Copy, Debug)]
pub(super) struct StreamMode {
    pub(super) include_usage: bool,
}

/// Check the caller's request enough to fail fast, before anything is sent;
/// say whether (and how) it streams.
pub(super) fn validate(body: Value) -> Result<(Map<String, Value>, Option<StreamMode>), String> {
    let Value::Object(body) = body else {
        return Err(
            "the request body must be a JSON object (an OpenAI chat-completions request)"
                .to_owned(),
        );
    };
    match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err("\"messages\" is empty: give at least one message".to_owned())
        }
        _ => return Err("\"messages\" is required: a list of chat messages".to_owned()),
    }
    // Fields the router itself reads must have their JSON type: a truthy
    // `"stream": "true"` forwarded as is would stream at the upstream.
    let streams = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "\"stream\" must be true or false, not {}",
                json_type(other)
            ))
        }
    };
    match body.get("model") {
        None => {}
        // The model is part of a quality key, and logged.
        Some(Value::String(model)) => quality::check_model(model)?,
        Some(other) => {
            return Err(format!(
                "\"model\" must be a string, not {}",
                json_type(other)
            ))
        }
    }
    let include_usage = match body.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "\"stream_options.include_usage\" must be true or false, not {}",
                    json_type(other)
                ))
            }
        },
        Some(other) => {
            return Err(format!(
                "\"stream_options\" must be an object, not {}",
                json_type(other)
            ))
        }
    };
    schema::response_format(&body)?;
    let mode = streams.then_some(StreamMode { include_usage });
    Ok((body, mode))
}

/// A JSON value's type, for messages that must not echo the value.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
