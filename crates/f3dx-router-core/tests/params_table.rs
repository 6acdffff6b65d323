//! The parameter table (`codec/params.rs`) against what the Anthropic
//! encoder really does, what a call really refuses, and the README's copy.

use f3dx_router_core::internals::codec::anthropic;
use f3dx_router_core::internals::codec::params::{self, Carry, PARAMS};
use f3dx_router_core::{
    Action, HostLimits, Instant, ProviderKind, RouteError, Router, RouterConfig,
};
use serde_json::{json, Map, Value};

fn base() -> Map<String, Value> {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": tools})
        .as_object()
        .cloned()
        .expect("object")
}

/// A value of each parameter that asks for something (not its default).
fn sample(name: &str) -> Value {
    match name {
        "audio" => json!({"voice": "alloy", "format": "wav"}),
        "frequency_penalty" | "presence_penalty" => json!(0.5),
        "function_call" => json!("auto"),
        "functions" => json!([{"name": "f"}]),
        "logit_bias" => json!({"50256": -100}),
        "logprobs" => json!(true),
        "max_completion_tokens" | "max_tokens" => json!(10),
        "messages" => json!([{"role": "user", "content": "other"}]),
        "metadata" => json!({"k": "v"}),
        "modalities" => json!(["text", "audio"]),
        "model" => json!("other-model"),
        "n" => json!(2),
        "parallel_tool_calls" => json!(false),
        "prediction" => json!({"type": "content", "content": "x"}),
        "prompt_cache_key" | "prompt_cache_retention" | "safety_identifier" | "user" => {
            json!("u-1")
        }
        "reasoning_effort" => json!("high"),
        "response_format" => json!({"type": "json_object"}),
        "seed" => json!(7),
        "service_tier" => json!("flex"),
        "stop" => json!(["END"]),
        "store" => json!(true),
        "stream" => json!(true),
        "stream_options" => json!({"include_usage": true}),
        "temperature" | "top_p" => json!(0.3),
        "thinking" => json!({"type": "enabled", "budget_tokens": 1024}),
        "tool_choice" => json!("required"),
        "tools" => json!([{"type": "function", "function": {"name": "g"}}]),
        "top_k" => json!(5),
        "top_logprobs" => json!(3),
        "verbosity" => json!("high"),
        "web_search_options" => json!({}),
        other => panic!("no sample for {other}: add one"),
    }
}

fn encode(body: &Map<String, Value>) -> Result<Value, String> {
    anthropic::encode_request(body, None)
}

/// A router with one anthropic deployment, and whether a call of `body`
/// is refused as invalid with nothing sent (and the message then).
fn refused(body: &Map<String, Value>) -> Option<String> {
    let config = json!({"providers": [{"name": "b", "kind": "anthropic",
        "base_url": "http://127.0.0.1:9/v1", "api_key": "k-anthropic"}]});
    let config =
        RouterConfig::from_json(&config, &|_| None, HostLimits::default()).expect("config");
    let router = Router::new(config);
    let mut call = router.start_call(Value::Object(body.clone()), Instant::ZERO);
    while let Some(action) = call.poll_action() {
        match action {
            Action::Send { .. } => return None,
            Action::Complete(Err(RouteError::InvalidRequest {
                message, attempts, ..
            })) => {
                assert!(attempts.is_empty());
                return Some(message);
            }
            _ => {}
        }
    }
    None
}

#[test]
fn the_table_and_the_anthropic_encoder_agree() {
    let without = base();
    let plain = encode(&without).expect("the base request translates");
    for p in PARAMS {
        let mut with = base();
        with.insert(p.name.to_owned(), sample(p.name));
        let carried = p.anthropic.carries();
        if p.name == "stream_options" {
            // Translated by the stream decoder (a usage chunk), not in the
            // request's body: its own tests in codec/stream.rs.
            assert!(carried);
            continue;
        }
        let encoded = encode(&with);
        if carried {
            let changed = encoded.as_ref().map_or(true, |e| *e != plain);
            assert!(
                changed,
                "{}: the table says carried, but the encoder ignores it",
                p.name
            );
        } else {
            // The encoder reads nothing the table calls unsupported (it
            // ignores it, or refuses it itself)...
            if let Ok(e) = &encoded {
                assert_eq!(
                    e, &plain,
                    "{}: the encoder uses it: the table must say how",
                    p.name
                );
            }
            // ...and a call refuses it before the encoder, naming it.
            let message = refused(&with).unwrap_or_else(|| panic!("{} was sent", p.name));
            assert!(message.contains(&format!("`{}`", p.name)), "{message}");
        }
        // The values that ask for nothing go anywhere.
        if let Some((_, ok)) = p.default_ok {
            assert!(
                !carried,
                "{}: a default only matters when not carried",
                p.name
            );
            let default = match p.name {
                "n" => json!(1),
                "logprobs" | "store" => json!(false),
                "modalities" => json!(["text"]),
                "logit_bias" => json!({}),
                "service_tier" => json!("auto"),
                "verbosity" => json!("medium"),
                _ => json!(0),
            };
            assert!(ok(&default), "{}: {default}", p.name);
            let mut with = base();
            with.insert(p.name.to_owned(), default);
            assert_eq!(refused(&with), None, "{}", p.name);
        }
    }
    // A field in no row: carried by the pass-through kinds, not by Anthropic.
    let mut unknown = base();
    unknown.insert("x_vendor".to_owned(), json!(1));
    assert!(params::carries(ProviderKind::OpenAi, &unknown));
    assert_eq!(
        params::uncarried(ProviderKind::Anthropic, &unknown),
        ["x_vendor"]
    );
    assert!(refused(&unknown).is_some());
}

#[test]
fn the_readme_holds_the_table() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("<!-- params-table:start -->")
        .expect("README.md has the params table markers");
    let end = readme[start..]
        .find("<!-- params-table:end -->")
        .expect("and its end")
        + start;
    let rows: Vec<&str> = readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .collect();
    let want = params::markdown_rows();
    if rows != want {
        eprintln!("{}", want.join("\n"));
    }
    assert_eq!(
        rows, want,
        "README.md's parameter table differs from codec/params.rs: paste the rows above"
    );
    // Every kind's column, and every category's name, is explained there.
    assert!(PARAMS.iter().any(|p| p.anthropic == Carry::ParamsOnly));
}
