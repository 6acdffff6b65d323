//! Failover classes in the call, stepped by hand for what the shared
//! vectors cannot express: an error body that arrives after its head, and
//! the exact timers of retries.

use std::time::Duration;

use f3dx_router_core::{
    Action, AttemptId, Call, HostLimits, Instant, ResponseHead, RouteError, Routed, Router,
    RouterConfig,
};
use serde_json::{json, Value};

fn router(config: Value) -> Router {
    Router::new(RouterConfig::from_json(&config, &|_| None, HostLimits::default()).unwrap())
}

fn provider(name: &str) -> Value {
    json!({"name": name, "kind": "openai", "base_url": "http://h/v1", "api_key": "key-long-enough", "timeout_ms": 30000})
}

fn request() -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
}

fn head(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
    ResponseHead {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        received_unix_secs: 0,
    }
}

fn ms(n: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(n)
}

/// An attempt sent, and the index of its provider.
type Sent = (AttemptId, usize);

/// The attempts sent and the result, if the call completed.
fn actions(call: &mut Call) -> (Vec<Sent>, Option<Result<Routed, RouteError>>) {
    let (mut sent, mut done) = (Vec::new(), None);
    while let Some(a) = call.poll_action() {
        match a {
            Action::Send {
                attempt, provider, ..
            } => sent.push((attempt, provider)),
            Action::Complete(r) => done = Some(r),
            _ => {}
        }
    }
    (sent, done)
}

fn answer() -> Vec<u8> {
    br#"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}"#.to_vec()
}

const OVERFLOW: &[u8] =
    br#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#;

/// Delayed hedging over three deployments, a's window the smallest.
fn hedged() -> Router {
    router(json!({
        "providers": [provider("a"), provider("b"), provider("c")],
        "policy": "hedged", "hedge_k": 2, "hedge_delay_ms": 50, "hedge_budget": 10,
        "models": {"gpt-4o": [
            {"provider": "a", "context_window": 8000},
            {"provider": "b", "context_window": 8000},
            {"provider": "c", "context_window": 100000}
        ]}
    }))
}

#[test]
fn a_4xx_head_starts_no_leg_until_its_body_decides_and_a_hard_one_none_at_all() {
    let r = hedged();
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    assert_eq!(sent.len(), 1);
    call.handle_head(sent[0].0, head(400, &[]), ms(10));
    // The hedge would fire at 50 ms: while the body is out, it does not.
    assert!(call.poll_timeout().unwrap() > ms(50));
    call.handle_timeout(ms(60));
    assert!(actions(&mut call).0.is_empty());
    call.handle_body(
        sent[0].0,
        br#"{"error":{"message":"bad messages","code":null}}"#.to_vec(),
        ms(80),
    );
    let (more, done) = actions(&mut call);
    assert!(more.is_empty(), "a hard failure sends nothing more");
    match done {
        Some(Err(RouteError::Hard {
            provider, status, ..
        })) => assert_eq!((provider.as_str(), status), ("a", 400)),
        other => panic!("expected a hard failure, got {other:?}"),
    }
}

#[test]
fn an_overflow_body_after_its_head_moves_on_to_a_larger_window_only() {
    let r = hedged();
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0].0, head(400, &[]), ms(10));
    call.handle_timeout(ms(60));
    assert!(actions(&mut call).0.is_empty());
    call.handle_chunk(sent[0].0, OVERFLOW[..20].to_vec(), ms(70));
    call.handle_chunk(sent[0].0, OVERFLOW[20..].to_vec(), ms(75));
    call.handle_end(sent[0].0, ms(80));
    let (more, done) = actions(&mut call);
    assert!(done.is_none());
    // c (index 2), at the body's end; b has a's window and is never tried.
    assert_eq!(more.iter().map(|s| s.1).collect::<Vec<_>>(), [2]);
    call.handle_head(more[0].0, head(200, &[]), ms(90));
    call.handle_body(more[0].0, answer(), ms(90));
    let routed = actions(&mut call).1.unwrap().unwrap();
    assert_eq!(routed.provider, "c");
    assert_eq!(
        routed.attempts[0].fault.as_ref().unwrap().name(),
        "context_overflow"
    );
}

#[test]
fn a_stalled_body_leaves_the_head_hard_at_the_grace() {
    let r = router(json!({
        "providers": [provider("a"), provider("b")],
        "failover_on": ["model_not_found"]
    }));
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0].0, head(404, &[]), ms(5));
    // Part of the body, without the code, then nothing.
    call.handle_chunk(sent[0].0, br#"{"error":{"mess"#.to_vec(), ms(6));
    let wake = call.poll_timeout().unwrap();
    assert_eq!(wake, ms(1005));
    call.handle_timeout(wake);
    let (more, done) = actions(&mut call);
    assert!(more.is_empty());
    assert!(matches!(
        done,
        Some(Err(RouteError::Hard { status: 404, .. }))
    ));
}

#[test]
fn a_retry_waits_on_a_timer_no_sooner_than_retry_after() {
    let r = router(json!({
        "providers": [provider("a"), provider("b")],
        "retries": 1, "backoff_ms": 10, "backoff_max_ms": 1000
    }));
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0].0, head(503, &[("retry-after-ms", "300")]), ms(5));
    call.handle_body(sent[0].0, b"{}".to_vec(), ms(5));
    // Neither b nor the retry yet: the retry is due at 5 + 300 ms (the
    // backoff's 10 ms is below the floor).
    assert!(actions(&mut call).0.is_empty());
    assert_eq!(call.poll_timeout(), Some(ms(305)));
    call.handle_timeout(ms(305));
    let (retry, _) = actions(&mut call);
    assert_eq!(retry.iter().map(|s| s.1).collect::<Vec<_>>(), [0]);
    // The retry fails too: no retry is left, b goes at once.
    call.handle_head(retry[0].0, head(500, &[]), ms(310));
    let (next, _) = actions(&mut call);
    assert_eq!(next.iter().map(|s| s.1).collect::<Vec<_>>(), [1]);
}

#[test]
fn retries_stop_when_health_ejects_the_deployment() {
    let r = router(json!({
        "providers": [provider("a"), provider("b")],
        "retries": 5, "backoff_ms": 1, "backoff_max_ms": 1,
        "health": {"consecutive_failures": 2}
    }));
    let mut call = r.start_call(request(), Instant::ZERO);
    let mut now = 0;
    let mut to_a = 0;
    // Bounded: each round answers one attempt with a 500 or ends.
    for _ in 0..10 {
        let (sent, done) = actions(&mut call);
        if done.is_some() {
            break;
        }
        for (id, p) in sent {
            if p == 0 {
                to_a += 1;
                call.handle_head(id, head(500, &[]), ms(now));
            } else {
                call.handle_head(id, head(200, &[]), ms(now));
                call.handle_body(id, answer(), ms(now));
            }
        }
        now += 1;
        call.handle_timeout(ms(now));
    }
    // Ejected after its second failure: its retry is dropped, b answers.
    assert_eq!(to_a, 2);
    assert!(call.is_finished());
}
