//! `Router::set_api_key`: what a new key changes (the requests of calls
//! that start after it, their redaction) and what it does not (calls in
//! flight, the router's state); refused keys leave the router as it was.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use f3dx_router_core::{
    Action, AttemptId, Call, HostLimits, HttpRequest, Instant, ResponseHead, RouteError, Routed,
    Router, RouterConfig,
};
use serde_json::{json, Value};

const OLD: &str = "sk-old-0123456789abcdefghijklmnop";
const NEW: &str = "sk-new-9876543210zyxwvutsrqponmlk";

fn router(policy: Value) -> Router {
    let mut config = policy;
    config["providers"] = json!([
        {"name": "a", "kind": "openai", "base_url": "http://h/v1", "api_key": OLD},
        {"name": "b", "kind": "anthropic", "base_url": "http://h/v1", "api_key": "sk-ant-b-0123456789abcdef"},
    ]);
    Router::new(RouterConfig::from_json(&config, &|_| None, HostLimits::default()).unwrap())
}

fn request() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
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

type Sent = Vec<(AttemptId, usize, HttpRequest)>;

/// Drain actions: the requests sent (attempt, provider, request), and the
/// result if the call completed.
fn actions(call: &mut Call) -> (Sent, Option<Result<Routed, RouteError>>) {
    let (mut sent, mut done) = (Vec::new(), None);
    while let Some(a) = call.poll_action() {
        match a {
            Action::Send {
                attempt,
                provider,
                request,
            } => sent.push((attempt, provider, request)),
            Action::Complete(r) => done = Some(r),
            _ => {}
        }
    }
    (sent, done)
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> &'a str {
    let found = request.headers.iter().find(|(n, _)| n == name);
    found.map_or("", |(_, v)| v.as_str())
}

/// A 401 whose body echoes `key`, the call's failure as text.
fn fail_echoing(call: &mut Call, id: AttemptId, key: &str, now: Instant) -> String {
    call.handle_head(id, head(401, &[]), now);
    let body = format!(r#"{{"error": {{"message": "Incorrect API key provided: {key}"}}}}"#);
    call.handle_body(id, body.into_bytes(), now);
    let (_, done) = actions(call);
    let err = done.expect("the call ends").unwrap_err();
    format!("{err} {err:?} {:?}", err.attempts())
}

#[test]
fn the_next_call_sends_the_new_key_and_a_call_in_flight_keeps_the_old() {
    let r = router(
        json!({"policy": "hedged", "hedge_k": 2, "hedge_delay_ms": 100, "hedge_budget": 10}),
    );
    // In flight: sent to a, its hedge to b still to come.
    let mut before = r.start_call(request(), ms(0));
    let (sent, _) = actions(&mut before);
    assert_eq!(header(&sent[0].2, "authorization"), format!("Bearer {OLD}"));
    r.set_api_key("a", NEW).unwrap();
    r.set_api_key("b", "sk-ant-b-rotated-0123456789").unwrap();
    // The call's later leg to b carries b's key of its start.
    before.handle_timeout(ms(100));
    let (later, _) = actions(&mut before);
    assert_eq!(later[0].1, 1);
    assert_eq!(
        header(&later[0].2, "x-api-key"),
        "sk-ant-b-0123456789abcdef"
    );
    // A call started now sends the new keys, and only them.
    let mut after = r.start_call(request(), ms(200));
    let (sent, _) = actions(&mut after);
    assert_eq!(header(&sent[0].2, "authorization"), format!("Bearer {NEW}"));
    after.handle_timeout(ms(300));
    let (later, _) = actions(&mut after);
    assert_eq!(
        header(&later[0].2, "x-api-key"),
        "sk-ant-b-rotated-0123456789"
    );
    for (_, _, request) in sent.iter().chain(&later) {
        assert!(!format!("{:?}", request.headers).contains("sk-old"));
    }
}

#[test]
fn each_call_redacts_the_key_it_sent_and_the_one_before_the_new_key() {
    let r = router(json!({"policy": "sequential"}));
    let mut old_call = r.start_call(request(), ms(0));
    let (old_sent, _) = actions(&mut old_call);
    r.set_api_key("a", NEW).unwrap();
    let mut new_call = r.start_call(request(), ms(0));
    let (new_sent, _) = actions(&mut new_call);
    let mut late_echo = r.start_call(request(), ms(0));
    let (late_sent, _) = actions(&mut late_echo);
    for (call, id, key) in [
        (&mut old_call, old_sent[0].0, OLD),
        (&mut new_call, new_sent[0].0, NEW),
        // An upstream echoing the key before the new one, late.
        (&mut late_echo, late_sent[0].0, OLD),
    ] {
        let text = fail_echoing(call, id, key, ms(1));
        assert!(text.contains("<redacted>"), "{text}");
        assert!(!text.contains(&key[..12]), "{text}");
    }
}

#[test]
fn bad_keys_and_names_are_refused_without_repeating_them_and_change_nothing() {
    let r = router(json!({}));
    for (provider, key, field, needle) in [
        (
            "nobody",
            NEW,
            "provider",
            "the providers are [\"a\", \"b\"]",
        ),
        (NEW, "sk-ok-key-0123456789", "provider", "no such provider"),
        ("a", "", "api_key", "is empty"),
        ("a", "sk-new-line\n", "api_key", "line break"),
        ("a", "sk-new\r\nx-evil: 1", "api_key", "line break"),
        ("a", "sk-new-ключ-0123456789", "api_key", "non-ASCII"),
    ] {
        let e = r.set_api_key(provider, key).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(needle), "{e}");
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains("sk-"), "{text}");
        }
    }
    let mut call = r.start_call(request(), ms(0));
    let (sent, _) = actions(&mut call);
    assert_eq!(header(&sent[0].2, "authorization"), format!("Bearer {OLD}"));
}

#[test]
fn what_the_router_learned_is_kept() {
    let r = router(json!({"policy": "sequential"}));
    // a answers 429 with a Retry-After: cooling for 30 s.
    let mut call = r.start_call(request(), ms(0));
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0].0, head(429, &[("retry-after", "30")]), ms(10));
    call.handle_body(sent[0].0, b"{}".to_vec(), ms(10));
    let (next, _) = actions(&mut call);
    call.handle_head(next[0].0, head(200, &[]), ms(20));
    let answer = json!({"type": "message", "role": "assistant", "content": [{"type": "text", "text": "hi"}],
                        "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}});
    call.handle_body(next[0].0, answer.to_string().into_bytes(), ms(20));
    assert!(actions(&mut call).1.unwrap().is_ok());
    let stats = r.stats(ms(30));
    let cooldowns = r.cooldowns(ms(30));
    r.set_api_key("a", NEW).unwrap();
    assert_eq!(r.stats(ms(30)), stats);
    assert_eq!(r.cooldowns(ms(30)), cooldowns);
    assert!(cooldowns[0].is_some());
    // Still cooling: the next call goes straight to b.
    let mut call = r.start_call(request(), ms(40));
    let (sent, _) = actions(&mut call);
    assert_eq!(sent[0].1, 1);
}

#[test]
fn calls_on_many_threads_while_keys_rotate_each_send_one_whole_key() {
    // Without health: the 401s would eject a.
    let r = router(json!({"policy": "sequential", "health": false}));
    let keys: Arc<Vec<String>> = Arc::new(
        (0..50)
            .map(|i| format!("sk-rot-{i:04}-abcdefghijklmnop"))
            .collect(),
    );
    let rotator = {
        let (r, keys) = (r.clone(), Arc::clone(&keys));
        thread::spawn(move || {
            for k in keys.iter() {
                r.set_api_key("a", k).unwrap();
            }
        })
    };
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (r, keys) = (r.clone(), Arc::clone(&keys));
            thread::spawn(move || {
                let mut last = None;
                for _ in 0..200 {
                    let mut call = r.start_call(request(), ms(0));
                    let (sent, _) = actions(&mut call);
                    let auth = header(&sent[0].2, "authorization").to_owned();
                    let key = auth.strip_prefix("Bearer ").unwrap().to_owned();
                    let at = keys.iter().position(|k| *k == key);
                    assert!(key == OLD || at.is_some(), "not a key given: {key}");
                    // Keys only move forward, as they were set.
                    let at = at.map_or(-1, |i| i as i64);
                    assert!(last.is_none_or(|l| l <= at), "{last:?} then {at}");
                    last = Some(at);
                    let text = fail_echoing(&mut call, sent[0].0, &key, ms(1));
                    assert!(!text.contains(&key[..12]), "{text}");
                }
            })
        })
        .collect();
    rotator.join().unwrap();
    for c in callers {
        c.join().unwrap();
    }
    let mut call = r.start_call(request(), ms(0));
    let (sent, _) = actions(&mut call);
    assert_eq!(
        header(&sent[0].2, "authorization"),
        format!("Bearer {}", keys[49])
    );
}
