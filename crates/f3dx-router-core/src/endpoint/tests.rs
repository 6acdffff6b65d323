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
    }
}

fn hard(status: u16, body: &str) -> RouteError {
    RouteError::Hard {
        provider: "a".into(),
        status,
        message: "upstream says no".into(),
        body: body.into(),
        attempts: vec![attempt("a", status, 3)],
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
            RouteError::AllFailed { attempts: vec![] },
            502,
            "all_providers_failed",
        ),
        (
            RouteError::InvalidRequest {
                message: "no messages".into(),
                attempts: vec![],
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
