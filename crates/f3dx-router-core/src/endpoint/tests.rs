use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::attempt::{Attempt, AttemptId, AttemptOutcome};
use crate::driver::Output;
use crate::error::RouteError;

fn body_json(a: &Answer) -> Value {
    serde_json::from_slice(&a.body).unwrap()
}

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn attempt(provider: &str, status: u16, started_ms: u64) -> Attempt {
    Attempt {
        group: None,
        model: None,
        id: AttemptId(0),
        provider_index: 0,
        provider: provider.to_owned(),
        started: Duration::from_millis(started_ms),
        ended: None,
        outcome: AttemptOutcome::Hard,
        status: Some(status),
        fault: None,
        detail: String::new(),
        dropped: Vec::new(),
    }
}

fn hard(status: u16, body: &str) -> RouteError {
    RouteError::Hard {
        provider: "a".into(),
        status,
        message: "upstream says no".into(),
        body: body.into(),
        attempts: vec![attempt("a", status, 3)],
        skipped: vec![],
    }
}

#[test]
fn only_post_chat_completions_under_any_base_path_is_served() {
    for path in [
        "/v1/chat/completions",
        "/chat/completions",
        "/x/y/chat/completions/",
    ] {
        assert!(route("POST", path).is_ok(), "{path}");
        assert!(route("post", path).is_ok(), "{path}");
    }
    for (method, path) in [
        ("GET", "/v1/chat/completions"),
        ("POST", "/v1/embeddings"),
        ("POST", "/v1/chat/completions/x"),
    ] {
        let a = route(method, path).unwrap_err();
        assert_eq!(a.status, 404);
        assert_eq!(body_json(&a)["error"]["code"], "not_found");
        assert_eq!(header(&a, "x-f3dx-attempts"), Some("0"));
    }
}

#[test]
fn a_long_path_is_cut_in_the_404_message() {
    let path = format!("/{}", "é".repeat(1000));
    let a = not_found("GET", &path);
    let message = body_json(&a)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.len() < 800, "{}", message.len());
    assert!(message.ends_with("..."));
}

#[test]
fn a_body_that_is_not_json_is_a_400() {
    let a = parse_call(b"{not json", None, "").unwrap_err();
    assert_eq!(a.status, 400);
    let body = body_json(&a);
    assert_eq!(body["error"]["code"], "invalid_json");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(!body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not json"));
}

#[test]
fn the_tenant_header_overrides_the_default_and_is_checked() {
    let call = parse_call(br#"{"stream": true}"#, Some("acme"), "dflt").unwrap();
    assert_eq!(call.options.tenant, "acme");
    assert!(call.streamed);
    let call = parse_call(br#"{"stream": "true"}"#, None, "dflt").unwrap();
    assert_eq!(call.options.tenant, "dflt");
    assert!(!call.streamed, "only a JSON true streams");
    let long = "t".repeat(10_000);
    let a = parse_call(b"{}", Some(&long), "").unwrap_err();
    assert_eq!(
        (a.status, body_json(&a)["error"]["code"].clone()),
        (400, json!("invalid_tenant"))
    );
}

#[test]
fn a_hard_4xx_keeps_the_upstream_status_and_its_error_in_openai_shape() {
    let openai = r#"{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}"#;
    let a = route_error(&hard(401, openai));
    assert_eq!(a.status, 401);
    let error = &body_json(&a)["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "invalid_api_key");
    assert!(error.get("param").is_none(), "a null param is left out");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("\"a\"")
            && message.contains("401")
            && message.contains("upstream says no"),
        "{message}"
    );
    assert_eq!(header(&a, "x-f3dx-provider"), Some("a"));
    assert_eq!(header(&a, "x-f3dx-attempts"), Some("1"));
    assert_eq!(header(&a, "x-f3dx-trace"), Some("a=hard/401@3"));
    assert_eq!(header(&a, "content-type"), Some("application/json"));
}

#[test]
fn an_anthropic_error_is_translated() {
    let anthropic = r#"{"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens too large"}}"#;
    let a = route_error(&hard(400, anthropic));
    assert_eq!(a.status, 400);
    assert_eq!(
        body_json(&a)["error"],
        json!({"message": hard(400, "").to_string(), "type": "invalid_request_error", "code": null})
    );
}

#[test]
fn a_hard_4xx_without_an_error_object_is_a_hard_failure() {
    for body in [
        "",
        "<html>nope</html>",
        r#"{"error": "a string"}"#,
        r#"{"error": {"code": {"x": 1}}}"#,
    ] {
        let a = route_error(&hard(403, body));
        assert_eq!(a.status, 403);
        let error = &body_json(&a)["error"];
        let expected = if body.contains("code") {
            (json!("upstream_error"), Value::Null)
        } else {
            (json!("upstream_error"), json!("hard_failure"))
        };
        assert_eq!(
            (error["type"].clone(), error["code"].clone()),
            expected,
            "{body}"
        );
    }
}

#[test]
fn other_hard_statuses_and_failures_have_their_gateway_answers() {
    for (e, status, code) in [
        (hard(302, ""), 502, "hard_failure"),
        (hard(600, ""), 502, "hard_failure"),
        (
            RouteError::AllFailed {
                attempts: vec![],
                skipped: vec![],
            },
            502,
            "all_providers_failed",
        ),
        (
            RouteError::InvalidRequest {
                message: "no messages".into(),
                attempts: vec![],
                skipped: vec![],
            },
            400,
            "invalid_request",
        ),
    ] {
        let a = route_error(&e);
        assert_eq!(a.status, status);
        let error = &body_json(&a)["error"];
        assert_eq!(error["code"], code);
        assert_eq!(error["message"], e.to_string());
    }
}

#[test]
fn a_stream_is_framed_as_openai_events() {
    let head = stream_head("a", &[attempt("a", 200, 0)]);
    assert_eq!(head.status, 200);
    assert_eq!(header(&head, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&head, "x-f3dx-provider"), Some("a"));
    let mut out = Vec::new();
    assert!(!write_output(
        &mut out,
        Some(Output::Chunk(json!({"x": 1}).into()))
    ));
    assert_eq!(out, b"data: {\"x\":1}\n\n");
    let broken = RouteError::StreamInterrupted {
        provider: "a".into(),
        message: "reset".into(),
        attempts: vec![],
        skipped: vec![],
    };
    let mut end = Vec::new();
    assert!(write_output(
        &mut end,
        Some(Output::Complete(Err(broken.clone())))
    ));
    let text = String::from_utf8(end).unwrap();
    let event: Value =
        serde_json::from_str(text.strip_prefix("data: ").unwrap().trim_end()).unwrap();
    assert_eq!(event["error"]["code"], "stream_interrupted");
    assert_eq!(event["error"]["message"], broken.to_string());
    assert!(!text.contains("[DONE]"));
}

fn table_router(config: Value) -> Router {
    let mut config = config;
    config["providers"] = json!([
        {"name": "a", "kind": "openai", "base_url": "http://a/v1", "api_key": "sk-a-0123456789", "model": "fixed-a"},
        {"name": "b", "kind": "openai", "base_url": "http://b/v1", "api_key": "sk-b-0123456789"},
    ]);
    let config = crate::config::RouterConfig::from_json(
        &config,
        &|_| None,
        crate::config::HostLimits::default(),
    )
    .unwrap();
    Router::new(config)
}

#[test]
fn models_requests_are_found_under_any_base_path() {
    use ModelsRequest::{List, Retrieve};
    for (method, path, want) in [
        ("GET", "/v1/models", Some(List)),
        ("get", "/openai/v1/models/", Some(List)),
        ("GET", "/v1/models/gpt-4o", Some(Retrieve("gpt-4o".into()))),
        (
            "GET",
            "/v1/models/meta-llama/Llama-3",
            Some(Retrieve("meta-llama/Llama-3".into())),
        ),
        (
            "GET",
            "/v1/models/meta-llama%2FLlama-3",
            Some(Retrieve("meta-llama/Llama-3".into())),
        ),
        ("GET", "/v1/models/bad%zz", None),
        ("POST", "/v1/models", None),
        ("GET", "/v1/chat/completions", None),
        ("GET", "/v1/modelsx", None),
    ] {
        assert_eq!(models_request(method, path), want, "{method} {path}");
    }
}

#[test]
fn the_model_list_is_openais_shape_of_the_groups_named_by_a_model() {
    let r = table_router(json!({"models": {
        "gpt-4o": [{"provider": "a"}, {"provider": "b", "model": "b-4o"}],
        "claude-*": [{"provider": "b"}],
    }}));
    let list = models_answer(&r, &ModelsRequest::List);
    assert_eq!(list.status, 200);
    let body = body_json(&list);
    assert_eq!(body["object"], "list");
    assert_eq!(
        body["data"],
        json!([{"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "f3dx-router"}])
    );
    // A pattern's model is found, though not listed; an unknown one is a 404.
    let found = models_answer(&r, &ModelsRequest::Retrieve("claude-sonnet-4-5".into()));
    assert_eq!(body_json(&found)["id"], "claude-sonnet-4-5");
    let missing = models_answer(&r, &ModelsRequest::Retrieve("o3".into()));
    assert_eq!(missing.status, 404);
    assert_eq!(body_json(&missing)["error"]["code"], "model_not_found");
}

#[test]
fn without_models_the_providers_fixed_models_are_listed_and_any_id_is_found() {
    let r = table_router(json!({}));
    let body = body_json(&models_answer(&r, &ModelsRequest::List));
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fixed-a"]);
    let found = models_answer(&r, &ModelsRequest::Retrieve("anything".into()));
    assert_eq!(found.status, 200);
}
