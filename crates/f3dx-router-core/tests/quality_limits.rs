//! What a call refuses before sending for quality-aware routing (an
//! unknown `response_format` type, a tenant or model no key may hold), and
//! the answers a schema check cannot judge.

use f3dx_router_core::{
    Action, CallOptions, HostLimits, Instant, ResponseHead, RouteError, Routed, Router,
    RouterConfig,
};
use serde_json::{json, Value};

fn router(quality: Value) -> Router {
    let config = json!({
        "providers": [
            {"name": "a", "kind": "openai", "base_url": "http://h/v1", "api_key": "key-a-123456"},
            {"name": "b", "kind": "openai", "base_url": "http://h/v1", "api_key": "key-b-123456"},
        ],
        "quality": quality,
    });
    Router::new(RouterConfig::from_json(&config, &|_| None, HostLimits::default()).unwrap())
}

fn request(format: Value) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": format})
}

/// Step a call whose providers answer `content` in turn, to its result;
/// the number of requests sent.
fn run(
    r: &Router,
    body: Value,
    tenant: &str,
    content: &str,
) -> (usize, Result<Routed, RouteError>) {
    let options = CallOptions {
        tenant: tenant.to_owned(),
        ..CallOptions::default()
    };
    let mut call = r.start_call_with(body, options, Instant::ZERO);
    let mut sent = 0;
    loop {
        let Some(action) = call.poll_action() else {
            panic!("the call stalled");
        };
        match action {
            Action::Send { attempt, .. } => {
                sent += 1;
                let head = ResponseHead {
                    status: 200,
                    headers: vec![],
                    received_unix_secs: 0,
                };
                call.handle_head(attempt, head, Instant::ZERO);
                let answer = json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]});
                call.handle_body(attempt, answer.to_string().into_bytes(), Instant::ZERO);
                call.handle_end(attempt, Instant::ZERO);
            }
            Action::Complete(result) => return (sent, result),
            _ => {}
        }
    }
}

fn invalid(result: Result<Routed, RouteError>) -> String {
    match result {
        Err(RouteError::InvalidRequest {
            message, attempts, ..
        }) => {
            assert!(attempts.is_empty());
            message
        }
        other => panic!("not an invalid request: {other:?}"),
    }
}

#[test]
fn an_unknown_response_format_type_is_refused_with_quality_on_or_off() {
    for quality in [json!(true), json!(false)] {
        let r = router(quality.clone());
        for format in [
            json!({"type": "xml"}),
            json!({}),
            json!({"type": ["json_object"]}),
        ] {
            let (sent, result) = run(&r, request(format), "", "{}");
            assert_eq!(sent, 0);
            let message = invalid(result);
            assert!(
                message.contains("response_format.type"),
                "{quality}: {message}"
            );
        }
        for known in ["text", "json_object"] {
            let (sent, result) = run(&r, request(json!({"type": known})), "", "{}");
            assert_eq!((sent, result.is_ok()), (1, true), "{known}");
        }
    }
}

#[test]
fn a_tenant_or_model_no_key_may_hold_is_refused_before_sending() {
    let r = router(json!(true));
    let long_model = request(json!({"type": "json_object"}));
    let mut body = long_model.clone();
    body["model"] = json!("m".repeat(1 << 20));
    let (sent, result) = run(&r, body, "", "{}");
    assert_eq!(sent, 0);
    assert!(invalid(result).contains("model is 1048576 bytes; at most 256"));
    for tenant in ["a\u{0}b", "a\r\nb", "\u{1}", &"t".repeat(257)] {
        let (sent, result) = run(&r, request(json!({"type": "json_object"})), tenant, "{}");
        assert_eq!(sent, 0, "{tenant:?}");
        assert!(invalid(result).starts_with("tenant "), "{tenant:?}");
    }
    // The same rule for a result reported by the caller; nothing is kept.
    assert!(r
        .record_quality("a", "", &"m".repeat(257), true, Instant::ZERO)
        .is_err());
    assert!(r
        .record_quality("a", "x\ny", "m", true, Instant::ZERO)
        .is_err());
    let long_name = "p".repeat(1 << 20);
    let e = r
        .record_quality(&long_name, "", "m", true, Instant::ZERO)
        .unwrap_err();
    assert!(
        e.len() < 200,
        "the provider's name is not repeated: {} bytes",
        e.len()
    );
    assert!(r
        .stats(Instant::ZERO)
        .providers
        .iter()
        .all(|p| p.quality.is_empty()));
}

#[test]
fn an_answer_the_validator_cannot_judge_is_not_counted() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for on_failure in ["return", "failover"] {
        let r = router(json!({"min_samples": 1, "on_failure": on_failure}));
        for content in [deep.as_str(), "1e100000"] {
            let (sent, result) = run(&r, request(json!({"type": "json_object"})), "t", content);
            let routed = result.unwrap();
            assert_eq!(
                (sent, routed.provider.as_str(), routed.schema_valid),
                (1, "a", None)
            );
        }
        assert!(r.stats(Instant::ZERO).providers[0].quality.is_empty());
        // Text that is no JSON still fails (and, with failover, moves on).
        let (sent, result) = run(&r, request(json!({"type": "json_object"})), "t", "[1,");
        let expected = if on_failure == "failover" { 2 } else { 1 };
        assert_eq!(sent, expected);
        assert!(result.map_or(true, |r| r.schema_valid == Some(false)));
        assert_eq!(r.stats(Instant::ZERO).providers[0].quality[0].samples, 1);
    }
}
