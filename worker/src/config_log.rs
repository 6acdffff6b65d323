//! Warnings about `ROUTER_CONFIG` (the core's: settings that have no
//! effect, an `api_key` that looks like another tool's reference to an
//! environment variable), logged once per isolate when the config is
//! loaded, as `console.warn` objects like the health transitions'.

use f3dx_router_core::{ConfigProblem, RouterConfig};
use serde_json::{json, Value};
use worker::worker_sys::web_sys;

use crate::embed::to_js;

/// The console objects for the warnings of the config `text` (none when
/// it is not JSON: the error says so elsewhere).
pub fn lines(text: &str) -> Vec<Value> {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    RouterConfig::config_warnings(&value)
        .iter()
        .map(line)
        .collect()
}

fn line(w: &ConfigProblem) -> Value {
    json!({
        "message": format!("ROUTER_CONFIG: warning: {}: {}", w.error.field, w.error.message),
        "source": "f3dx_router",
        "field": w.error.field,
        "provider": w.provider,
    })
}

/// Log the warnings of the config `text`.
pub fn log_warnings(text: &str) {
    for line in lines(text) {
        if let Ok(value) = to_js(&line) {
            web_sys::console::warn_1(&value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_without_effect_is_one_line() {
        let text = r#"{"providers": [{"name": "a", "kind": "openai", "base_url": "https://a.test/v1",
                      "api_key": "os.environ/OPENAI_API_KEY"}], "hedge_k": 2}"#;
        let lines = lines(text);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["field"], "hedge_k");
        assert_eq!(lines[1]["field"], "providers[0].api_key");
        assert_eq!(lines[1]["provider"], "a");
        assert!(!lines[1]["message"]
            .as_str()
            .unwrap()
            .contains("OPENAI_API_KEY"));
        assert!(super::lines("not json").is_empty());
    }
}
