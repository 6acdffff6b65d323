//! The call state machine stepped by hand, for the cases the shared vectors
//! cannot express: stalled bodies, echoed keys, several hard failures.

use std::time::Duration;

use f3dx_router_core::{
    Action, AttemptId, HostLimits, Instant, ResponseHead, RouteError, Routed, Router, RouterConfig,
};
use serde_json::{json, Value};

const KEY: &str = "sk-a-0123456789abcdefghijklmnopqrstuvwxyz";

fn router(providers: Value, policy: Value) -> Router {
    let mut config = policy;
    config["providers"] = providers;
    Router::new(RouterConfig::from_json(&config, &|_| None, HostLimits::default()).unwrap())
}

fn openai(name: &str) -> Value {
    json!({"name": name, "kind": "openai", "base_url": "http://h/v1", "api_key": KEY, "timeout_ms": 30000})
}

fn request() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

fn head(status: u16) -> ResponseHead {
    ResponseHead {
        status,
        headers: vec![],
        received_unix_secs: 0,
    }
}

fn ms(n: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(n)
}

/// Drain actions: the attempts sent, and the result if the call completed.
fn actions(
    call: &mut f3dx_router_core::Call,
) -> (Vec<AttemptId>, Option<Result<Routed, RouteError>>) {
    let (mut sent, mut done) = (Vec::new(), None);
    while let Some(a) = call.poll_action() {
        match a {
            Action::Send { attempt, .. } => sent.push(attempt),
            Action::Cancel { .. } | Action::Commit { .. } | Action::Chunk(_) => {}
            Action::Complete(r) => done = Some(r),
        }
    }
    (sent, done)
}

#[test]
fn an_echoed_key_is_redacted_before_the_message_is_shortened() {
    let r = router(json!([openai("a")]), json!({}));
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(503), Instant::ZERO);
    let body = format!("{} bad key {KEY} and more text after it", "x".repeat(160));
    call.handle_body(sent[0], body.into_bytes(), Instant::ZERO);
    let (_, done) = actions(&mut call);
    let err = done.unwrap().unwrap_err();
    let text = format!("{err} {:?}", err.attempts());
    assert!(
        !text.contains(&KEY[..8]),
        "a piece of the key leaked: {text}"
    );
}

#[test]
fn a_request_one_candidate_cannot_carry_is_refused_before_sending() {
    let anthropic = json!({"name": "b", "kind": "anthropic", "base_url": "http://h/v1", "api_key": "k2-long-enough"});
    let r = router(
        json!([openai("a"), anthropic]),
        json!({"policy": "hedged", "hedge_k": 2, "hedge_delay_ms": 100}),
    );
    // A tool type the anthropic kind has no translation for: the request
    // itself must change, so the call is refused (parameters a kind cannot
    // carry skip the deployment instead: below).
    let mut body = request();
    body["tools"] = json!([{"type": "web_search"}]);
    let mut call = r.start_call(body, Instant::ZERO);
    let (sent, done) = actions(&mut call);
    assert!(sent.is_empty(), "nothing may be sent");
    match done {
        Some(Err(RouteError::InvalidRequest {
            message, attempts, ..
        })) => {
            assert!(
                message.contains("\"b\"") && message.contains("anthropic"),
                "{message}"
            );
            assert!(attempts.is_empty());
        }
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

#[test]
fn a_parameter_one_candidate_cannot_carry_skips_it() {
    let anthropic = json!({"name": "b", "kind": "anthropic", "base_url": "http://h/v1", "api_key": "k2-long-enough"});
    let r = router(
        json!([anthropic, openai("a")]),
        json!({"policy": "hedged", "hedge_k": 2, "hedge_delay_ms": 0}),
    );
    let mut body = request();
    body["n"] = json!(2);
    let mut call = r.start_call(body, Instant::ZERO);
    let (sent, _) = actions(&mut call);
    assert_eq!(sent.len(), 1, "only the openai deployment is sent to");
    call.handle_head(sent[0], head(200), ms(5));
    call.handle_body(sent[0], COMPLETION.as_bytes().to_vec(), ms(6));
    let (_, done) = actions(&mut call);
    let routed = done.expect("done").expect("answered");
    assert_eq!(routed.provider, "a");
    assert_eq!(routed.attempts.len(), 1);
    let skipped: Vec<(&str, &[String])> = routed
        .skipped
        .iter()
        .map(|s| (s.provider.as_str(), s.params.as_slice()))
        .collect();
    assert_eq!(skipped, [("b", &["n".to_owned()][..])]);
}

#[test]
fn a_stalled_error_body_does_not_hold_the_call() {
    let r = router(json!([openai("a"), openai("b")]), json!({}));
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(401), ms(5));
    let (more, done) = actions(&mut call);
    assert!(more.is_empty() && done.is_none());
    // The body never comes: the call ends at the drain grace, not at the
    // provider's 30 s timeout.
    let wake = call.poll_timeout().unwrap();
    assert_eq!(wake, ms(1005));
    call.handle_timeout(wake);
    let (_, done) = actions(&mut call);
    match done {
        Some(Err(RouteError::Hard {
            provider, status, ..
        })) => assert_eq!((provider.as_str(), status), ("a", 401)),
        other => panic!("expected a hard failure, got {other:?}"),
    }
}

#[test]
fn with_two_hard_failures_the_reported_one_carries_its_own_body() {
    let r = router(
        json!([openai("a"), openai("b")]),
        json!({"policy": "hedged", "hedge_k": 2}),
    );
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    assert_eq!(sent.len(), 2);
    call.handle_head(sent[0], head(401), ms(1));
    call.handle_head(sent[1], head(400), ms(2));
    call.handle_body(
        sent[1],
        br#"{"error":{"message":"bad request B"}}"#.to_vec(),
        ms(3),
    );
    call.handle_body(
        sent[0],
        br#"{"error":{"message":"bad key A"}}"#.to_vec(),
        ms(4),
    );
    let (_, done) = actions(&mut call);
    match done {
        Some(Err(RouteError::Hard {
            provider,
            status,
            message,
            body,
            ..
        })) => {
            assert_eq!(
                (provider.as_str(), status, message.as_str()),
                ("a", 401, "bad key A")
            );
            assert!(body.contains("bad key A"), "{body}");
        }
        other => panic!("expected a hard failure, got {other:?}"),
    }
}

#[test]
fn events_after_completion_are_ignored() {
    let r = router(
        json!([openai("a"), openai("b")]),
        json!({"policy": "hedged", "hedge_k": 2}),
    );
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[1], head(200), ms(1));
    call.handle_body(
        sent[1],
        br#"{"choices":[{"message":{"content":"x"}}]}"#.to_vec(),
        ms(1),
    );
    let (_, done) = actions(&mut call);
    assert_eq!(done.unwrap().unwrap().provider, "b");
    // The cancelled leg's late answer changes nothing and completes nothing.
    call.handle_head(sent[0], head(200), ms(2));
    call.handle_body(
        sent[0],
        br#"{"choices":[{"message":{"content":"x"}}]}"#.to_vec(),
        ms(2),
    );
    call.handle_timeout(ms(60_000));
    assert!(call.poll_action().is_none());
    assert!(call.poll_timeout().is_none());
}

#[test]
fn a_key_echoed_in_any_json_escaping_is_redacted_everywhere() {
    let key = "sk-live/abc+def/0123456789";
    let forms = [
        key.replace('/', "\\/"),
        key.replace('/', "\\u002f"),
        key.replace('/', "\\u002F"),
        key.chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect(),
        format!("\\\"{key}\\\""),
        key.replace('/', "\\\\\\/"),
    ];
    for form in forms {
        let mut p = openai("a");
        p["api_key"] = json!(key);
        let r = router(json!([p]), json!({}));
        let mut call = r.start_call(request(), Instant::ZERO);
        let (sent, _) = actions(&mut call);
        call.handle_head(sent[0], head(401), Instant::ZERO);
        let body = format!(r#"{{"error": {{"message": "Incorrect API key provided: {form}."}}}}"#);
        call.handle_body(sent[0], body.into_bytes(), Instant::ZERO);
        let (_, done) = actions(&mut call);
        let err = done.unwrap().unwrap_err();
        let RouteError::Hard { message, body, .. } = &err else {
            panic!("{err:?}")
        };
        for text in [message, body, &err.to_string(), &format!("{err:?}")] {
            assert!(!text.contains("abc+def"), "{form}: {text}");
        }
        assert!(message.contains("<redacted>"), "{form}: {message}");
    }
}

#[test]
fn typed_fields_the_router_reads_are_checked() {
    let r = router(json!([openai("a")]), json!({}));
    for (field, value, needle) in [
        ("stream", json!(1), "true or false"),
        ("stream", json!("true"), "true or false"),
        ("stream", json!({}), "true or false"),
        ("model", json!(4), "must be a string"),
    ] {
        let mut body = request();
        body[field] = value;
        let mut call = r.start_call(body, Instant::ZERO);
        let (sent, done) = actions(&mut call);
        assert!(sent.is_empty(), "{field}: nothing may be sent");
        match done {
            Some(Err(RouteError::InvalidRequest { message, .. })) => {
                assert!(message.contains(needle), "{message}")
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    let mut body = request();
    body["stream"] = json!(false);
    let mut call = r.start_call(body, Instant::ZERO);
    assert_eq!(actions(&mut call).0.len(), 1);
}

fn head_with(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
    ResponseHead {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        received_unix_secs: 0,
    }
}

/// Every action, with sends and cancels named by attempt.
fn all_actions(call: &mut f3dx_router_core::Call) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(a) = call.poll_action() {
        out.push(match a {
            Action::Send { attempt, .. } => format!("send {}", attempt.0),
            Action::Cancel { attempt } => format!("cancel {}", attempt.0),
            Action::Commit { provider, .. } => format!("commit {provider}"),
            Action::Chunk(c) => format!("chunk {}", c.value()["choices"][0]["delta"]),
            Action::Complete(Ok(r)) => format!("ok {}", r.provider),
            Action::Complete(Err(e)) => format!("err {}: {e}", e.kind()),
        });
    }
    out
}

#[test]
fn the_body_cap_is_the_cores_declared_or_counted() {
    let mut p = openai("a");
    p["max_body_bytes"] = json!(16);
    let r = router(json!([p, openai("b")]), json!({}));
    // Declared over the cap: refused at the head, never read.
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head_with(200, &[("content-length", "17")]), ms(1));
    let acts = all_actions(&mut call);
    assert_eq!(acts, ["cancel 0", "send 1"]);
    // Counted as it arrives, without a declared length.
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    call.handle_chunk(sent[0], vec![b' '; 10], ms(1));
    assert!(call.poll_action().is_none());
    call.handle_chunk(sent[0], vec![b' '; 7], ms(2));
    assert_eq!(all_actions(&mut call), ["cancel 0", "send 1"]);
    call.handle_head(AttemptId(1), head(200), ms(3));
    call.handle_body(AttemptId(1), COMPLETION.as_bytes().to_vec(), ms(3));
    let (_, done) = actions(&mut call);
    let routed = done.unwrap().unwrap();
    assert_eq!(
        routed.attempts[0].fault.as_ref().unwrap().name(),
        "body_too_large"
    );
}

const COMPLETION: &str =
    r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}"#;

fn streamed() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true})
}

fn data(json: &str) -> Vec<u8> {
    format!("data: {json}\n\n").into_bytes()
}

const ROLE: &str = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
const TEXT: &str = r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#;

#[test]
fn a_streamed_attempt_times_out_before_commit_and_idles_out_after() {
    let mut a = openai("a");
    a["timeout_ms"] = json!(1000);
    a["stream_idle_timeout_ms"] = json!(200);
    let r = router(json!([a, openai("b")]), json!({}));
    // Before commit: `timeout_ms` from sending; a role chunk does not count.
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(10));
    call.handle_chunk(sent[0], data(ROLE), ms(20));
    assert_eq!(call.poll_timeout(), Some(ms(1000)));
    call.handle_timeout(ms(1000));
    assert_eq!(all_actions(&mut call), ["cancel 0", "send 1"]);
    // After commit: each event pushes the idle deadline; silence ends the
    // stream with an error and no second provider.
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(10));
    call.handle_chunk(sent[0], data(ROLE), ms(20));
    call.handle_chunk(sent[0], data(TEXT), ms(30));
    assert_eq!(call.poll_timeout(), Some(ms(230)));
    call.handle_chunk(sent[0], data(TEXT), ms(100));
    assert_eq!(call.poll_timeout(), Some(ms(300)));
    call.handle_timeout(ms(300));
    let acts = all_actions(&mut call);
    assert_eq!(acts[0], "commit a");
    assert_eq!(acts[1], r#"chunk {"role":"assistant","content":""}"#);
    assert_eq!(acts[2], r#"chunk {"content":"Hi"}"#);
    assert_eq!(acts[3], r#"chunk {"content":"Hi"}"#);
    assert_eq!(acts[4], "cancel 0");
    assert!(
        acts[5].starts_with("err stream_interrupted: ") && acts[5].contains("200 ms"),
        "{acts:?}"
    );
    assert_eq!(acts.len(), 6);
}

#[test]
fn a_stream_that_ends_early_fails_over_or_is_interrupted() {
    let r = router(json!([openai("a"), openai("b")]), json!({}));
    // Ends (even with [DONE]) before any output: soft, next provider.
    for body in [
        data(ROLE),
        [data(ROLE), b"data: [DONE]\n\n".to_vec()].concat(),
    ] {
        let mut call = r.start_call(streamed(), Instant::ZERO);
        let (sent, _) = actions(&mut call);
        call.handle_head(sent[0], head(200), ms(1));
        call.handle_chunk(sent[0], body.clone(), ms(2));
        call.handle_end(sent[0], ms(3));
        let acts = all_actions(&mut call);
        assert!(acts.ends_with(&["send 1".to_owned()]), "{acts:?}");
    }
    // After commit, an end without [DONE] is a truncation the caller sees.
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    call.handle_chunk(sent[0], [data(ROLE), data(TEXT)].concat(), ms(2));
    call.handle_end(sent[0], ms(3));
    let acts = all_actions(&mut call);
    let last = acts.last().unwrap();
    assert!(
        last.starts_with("err stream_interrupted") && last.contains("end marker"),
        "{acts:?}"
    );
    // A clean end completes with the committed provider.
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    call.handle_chunk(
        sent[0],
        [data(TEXT), b"data: [DONE]\n\n".to_vec()].concat(),
        ms(2),
    );
    let acts = all_actions(&mut call);
    assert_eq!(acts.last().unwrap(), "ok a", "{acts:?}");
}

#[test]
fn a_half_open_provider_gets_one_probe_at_a_time() {
    let cfg = json!({"health": {"consecutive_failures": 1, "ejection_s": 1}});
    let r = router(json!([openai("a"), openai("b")]), cfg);
    // One failure ejects a for 1 s.
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(503), ms(1));
    let _ = all_actions(&mut call);
    // At 1.001 s a is half-open: the first call takes the probe, a second
    // call started meanwhile goes to b.
    let now = ms(1001);
    let mut first = r.start_call(request(), now);
    let mut second = r.start_call(request(), now);
    assert_eq!(all_actions(&mut first)[0], "send 0");
    let mut second_sends = Vec::new();
    while let Some(a) = second.poll_action() {
        if let Action::Send { provider, .. } = a {
            second_sends.push(provider);
        }
    }
    assert_eq!(
        second_sends,
        [1],
        "a's probe is taken: the second call goes to b"
    );
    // A call dropped unfinished (its host gave up) gives the probe back.
    drop(first);
    let mut third = r.start_call(request(), ms(1002));
    let sends: Vec<usize> = std::iter::from_fn(|| third.poll_action())
        .filter_map(|a| match a {
            Action::Send { provider, .. } => Some(provider),
            _ => None,
        })
        .collect();
    assert_eq!(sends, [0], "the probe is free again");
}

fn answer() -> Vec<u8> {
    json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]})
        .to_string()
        .into_bytes()
}

/// One call where the first leg answers after `took` unless the hedge timer
/// fires first; returns when (from `start`) the second leg was sent, if it was.
fn hedge_time(r: &Router, start: Instant, took: Duration) -> Option<Duration> {
    let mut call = r.start_call(request(), start);
    let (sent, _) = actions(&mut call);
    assert_eq!(sent.len(), 1, "one leg at the start");
    let answer_at = start + took;
    let mut hedged = None;
    if let Some(t) = call.poll_timeout().filter(|&t| t < answer_at) {
        call.handle_timeout(t);
        let (more, _) = actions(&mut call);
        if !more.is_empty() {
            hedged = Some(t - start);
        }
    }
    call.handle_head(sent[0], head(200), answer_at);
    call.handle_body(sent[0], answer(), answer_at);
    let (_, done) = actions(&mut call);
    assert!(done.unwrap().is_ok());
    hedged
}

/// The delay before a new call's second leg, read from a call that is then
/// dropped (its leg cancelled: no sample).
fn next_delay(r: &Router, now: Instant) -> Duration {
    r.start_call(request(), now).poll_timeout().unwrap() - now
}

#[test]
fn auto_hedge_delay_follows_the_p90_of_the_provider_waited_on() {
    let r = router(
        json!([openai("a"), openai("b")]),
        json!({"policy": "hedged", "hedge_k": 2, "hedge_delay_ms": "auto",
               "hedge_delay_fallback_ms": 700, "hedge_budget": 10}),
    );
    let fallback = Duration::from_millis(700);
    let mut now = Instant::ZERO;
    // Fewer than 20 samples: the fallback.
    for _ in 0..19 {
        assert_eq!(next_delay(&r, now), fallback);
        assert_eq!(hedge_time(&r, now, Duration::from_millis(200)), None);
        now = now + Duration::from_millis(200);
    }
    assert_eq!(next_delay(&r, now), fallback);
    // The 20th sample: a's p90 rules. All 20 are in the bin [196.608,
    // 229.376) ms; the p90, the 18th, is read at 17.5 / 20 of it.
    assert_eq!(hedge_time(&r, now, Duration::from_millis(200)), None);
    now = now + Duration::from_millis(200);
    assert_eq!(next_delay(&r, now), Duration::from_micros(225_280));
    assert_eq!(
        hedge_time(&r, now, Duration::from_secs(1)),
        Some(Duration::from_micros(225_280))
    );
    now = now + Duration::from_secs(1);
    // a slows to 1 s (it still wins each call: b never answers here): once
    // more than a tenth of the window is slow, the delay follows it up.
    // 20 of 40 samples in the bin [917.504, 1048.576) ms: the 36th is the
    // 16th of them, read at 15.5 / 20 of the bin.
    for _ in 0..19 {
        hedge_time(&r, now, Duration::from_secs(1));
        now = now + Duration::from_secs(1);
    }
    assert_eq!(next_delay(&r, now), Duration::from_micros(1_019_084));
    // A minute without calls empties the window: the fallback again.
    now = now + Duration::from_secs(61);
    assert_eq!(next_delay(&r, now), fallback);
}

#[test]
fn auto_hedge_delay_stays_out_of_a_slow_mode_under_a_tenth_of_the_answers() {
    let r = router(
        json!([openai("a"), openai("b")]),
        json!({"policy": "hedged", "hedge_k": 2, "hedge_delay_ms": "auto",
               "hedge_delay_fallback_ms": 700, "hedge_budget": 10}),
    );
    let mut now = Instant::ZERO;
    // a answers in 5 ms, but 3 of its first 20 answers take 200 ms (15%:
    // the p90 is slow). b never answers, so no hedge wins: every answer of
    // a is a sample. The delay leaves the slow mode at 30 samples, once
    // the slow ones are a tenth (the p95 would wait for 60).
    let mut delays = Vec::new();
    for i in 0..40 {
        let took = Duration::from_millis(if (5..8).contains(&i) { 200 } else { 5 });
        hedge_time(&r, now, took);
        now = now + took;
        delays.push(next_delay(&r, now));
    }
    let slow = |d: &Duration| *d > Duration::from_millis(190) && *d < Duration::from_millis(230);
    let fast = |d: &Duration| *d < Duration::from_millis(7);
    assert!(
        delays[..19]
            .iter()
            .all(|d| *d == Duration::from_millis(700)),
        "{delays:?}"
    );
    assert!(delays[19..29].iter().all(slow), "{delays:?}");
    assert!(delays[29..].iter().all(fast), "{delays:?}");
}

#[test]
fn hedge_budget_refills_by_its_share_of_each_call() {
    let r = router(
        json!([openai("a"), openai("b")]),
        json!({"policy": "hedged", "hedge_k": 2, "hedge_delay_ms": 50, "hedge_budget": 0.5}),
    );
    let slow = Duration::from_millis(100);
    let mut now = Instant::ZERO;
    let mut hedged = Vec::new();
    for _ in 0..40 {
        hedged.push(hedge_time(&r, now, slow).is_some());
        now = now + slow;
    }
    // A full bucket (10 tokens, which the first call cannot overfill), then
    // 0.5 a call: 19 calls hedge, then one call in two.
    assert!(hedged[..19].iter().all(|&h| h), "{hedged:?}");
    let later: Vec<bool> = (19..40).map(|i| i % 2 == 0).collect();
    assert_eq!(hedged[19..], later[..], "{hedged:?}");
    let stats = r.stats(now).hedges;
    assert_eq!((stats.sent, stats.skipped_for_budget), (29, 11));
}

#[test]
fn immediate_hedging_is_unlimited_by_default() {
    let r = router(
        json!([openai("a"), openai("b")]),
        json!({"policy": "hedged", "hedge_k": 2}),
    );
    for i in 0..50 {
        let mut call = r.start_call(request(), ms(i));
        let (sent, _) = actions(&mut call);
        assert_eq!(sent.len(), 2);
    }
    assert_eq!(r.stats(ms(50)).hedges.skipped_for_budget, 0);
}

#[test]
fn a_committed_streams_events_are_handed_out_one_at_a_time_in_order() {
    let r = router(json!([openai("a"), openai("b")]), json!({}));
    let texts: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"t{i}"}}}}]}}"#))
        .collect();
    // Two reads bring the whole stream (the second, cut mid-event, before
    // the host asked for any output); then the connection resets.
    let mut read = data(ROLE);
    for t in &texts {
        read.extend(data(t));
    }
    let second = read.split_off(read.len() - 700);
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    call.handle_chunk(sent[0], read, ms(2));
    call.handle_chunk(sent[0], second, ms(2));
    call.handle_fault(
        sent[0],
        f3dx_router_core::TransportFault::ConnectionReset,
        ms(3),
    );
    // The first output comes with what the commit point needed decoded.
    let acts = all_actions(&mut call);
    assert_eq!(acts[0], "commit a");
    assert_eq!(acts[1], r#"chunk {"role":"assistant","content":""}"#);
    for (i, a) in acts[2..52].iter().enumerate() {
        assert_eq!(a, &format!(r#"chunk {{"content":"t{i}"}}"#));
    }
    // Every event that arrived before the reset, then the error; no switch.
    assert_eq!(acts[52], "cancel 0");
    assert!(acts[53].starts_with("err stream_interrupted"), "{acts:?}");
    assert_eq!(acts.len(), 54);
}

// ---- what a stream may hold, and when it must end ------------------------

/// The result of a completed call, with every action before it.
fn finish(call: &mut f3dx_router_core::Call) -> (Vec<String>, Result<Routed, RouteError>) {
    let mut out = Vec::new();
    while let Some(a) = call.poll_action() {
        out.push(match a {
            Action::Send { attempt, .. } => format!("send {}", attempt.0),
            Action::Cancel { attempt } => format!("cancel {}", attempt.0),
            Action::Commit { provider, .. } => format!("commit {provider}"),
            Action::Chunk(c) => format!("chunk {}", c.value()["choices"][0]["delta"]),
            Action::Complete(r) => return (out, r),
        });
    }
    panic!("the call did not complete: {out:?}")
}

fn fault_of(r: &Result<Routed, RouteError>, attempt: usize) -> String {
    let attempts = match r {
        Ok(routed) => &routed.attempts,
        Err(e) => e.attempts(),
    };
    attempts[attempt]
        .fault
        .as_ref()
        .map_or("none".to_owned(), |f| f.name().to_owned())
}

const FINISH: &str = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;

#[test]
fn a_stream_without_output_holds_no_more_than_max_body_bytes() {
    let mut a = openai("a");
    a["max_body_bytes"] = json!(4096);
    let r = router(json!([a, openai("b")]), json!({}));
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    // Role chunks, well within the timeout: the bytes, not the clock, end
    // it. What counts is each event's data.
    let role = data(ROLE);
    let fits = 4096 / ROLE.len();
    for i in 0..fits as u64 {
        call.handle_chunk(sent[0], role.clone(), ms(2 + i));
        assert!(call.poll_action().is_none(), "held {i} role chunks");
    }
    call.handle_chunk(sent[0], role.clone(), ms(500));
    assert_eq!(all_actions(&mut call), ["cancel 0", "send 1"]);
    // Events arriving for it after that change nothing.
    call.handle_chunk(sent[0], data(TEXT), ms(501));
    assert!(call.poll_action().is_none());
    call.handle_head(AttemptId(1), head(200), ms(502));
    call.handle_chunk(AttemptId(1), [data(TEXT), data(FINISH)].concat(), ms(503));
    call.handle_end(AttemptId(1), ms(504));
    let (_, result) = finish(&mut call);
    let routed = result.unwrap();
    assert_eq!(routed.provider, "b");
    assert_eq!(
        routed.attempts[0].fault.as_ref().unwrap().name(),
        "body_too_large"
    );
    assert!(
        routed.attempts[0].detail.contains("max_body_bytes"),
        "{}",
        routed.attempts[0].detail
    );
}

#[test]
fn an_unfinished_event_counts_with_the_held_ones() {
    let mut a = openai("a");
    a["max_body_bytes"] = json!(4096);
    let r = router(json!([a, openai("b")]), json!({}));
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    let held = 30;
    call.handle_chunk(sent[0], data(ROLE).repeat(held), ms(2));
    assert!(call.poll_action().is_none());
    // An event still arriving: alone under the cap (the parser's own
    // limit), with the held ones at it, and then over.
    let room = 4096 - held * ROLE.len();
    assert!(room > 100);
    let mut line = b"data: ".to_vec();
    line.resize(room, b'x');
    call.handle_chunk(sent[0], line, ms(3));
    assert!(call.poll_action().is_none());
    call.handle_chunk(sent[0], b"x".to_vec(), ms(4));
    assert_eq!(all_actions(&mut call), ["cancel 0", "send 1"]);
}

#[test]
fn chunks_held_before_the_commit_point_reach_the_caller_in_order() {
    let r = router(json!([openai("a")]), json!({}));
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    // More than are kept decoded: the rest are kept as text, handed out
    // the same.
    let roles: Vec<String> = (0..12)
        .map(|i| format!(r#"{{"choices":[{{"index":0,"delta":{{"role":"assistant","content":"","n":{i}}}}}]}}"#))
        .collect();
    for r in &roles {
        call.handle_chunk(sent[0], data(r), ms(2));
    }
    let done = b"data: [DONE]\n\n".to_vec();
    call.handle_chunk(sent[0], [data(TEXT), data(FINISH), done].concat(), ms(3));
    call.handle_end(sent[0], ms(4));
    let (acts, result) = finish(&mut call);
    assert_eq!(acts[0], "commit a");
    for i in 0..12 {
        assert_eq!(
            acts[1 + i],
            format!(r#"chunk {{"role":"assistant","content":"","n":{i}}}"#)
        );
    }
    assert_eq!(acts[13], r#"chunk {"content":"Hi"}"#);
    assert_eq!(result.unwrap().provider, "a");
}

#[test]
fn the_deadline_holds_however_busy_the_stream_is() {
    let mut a = openai("a");
    a["timeout_ms"] = json!(1000);
    let r = router(json!([a, openai("b")]), json!({}));
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    // The host never gets to its timer: each read comes first. Up to the
    // deadline itself the attempt lives...
    for t in (10..=1000).step_by(10) {
        call.handle_chunk(sent[0], data(ROLE), ms(t));
        assert!(call.poll_action().is_none(), "at {t} ms");
    }
    // ...and the first read after it ends the attempt as a timeout.
    call.handle_chunk(sent[0], data(TEXT), ms(1001));
    assert_eq!(all_actions(&mut call), ["cancel 0", "send 1"]);
    call.handle_head(AttemptId(1), head(200), ms(1002));
    call.handle_chunk(AttemptId(1), [data(TEXT), data(FINISH)].concat(), ms(1003));
    call.handle_end(AttemptId(1), ms(1003));
    let (acts, result) = finish(&mut call);
    assert_eq!(acts[0], "commit b");
    let result_fault = fault_of(&result, 0);
    assert_eq!(result.unwrap().provider, "b");
    assert_eq!(result_fault, "timeout");
    // A body read past the deadline, not streamed, is too late as well.
    let mut call = r.start_call(request(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(999));
    call.handle_body(sent[0], COMPLETION.as_bytes().to_vec(), ms(1001));
    assert_eq!(all_actions(&mut call), ["cancel 0", "send 1"]);
}

#[test]
fn a_delayed_hedge_fires_however_busy_the_first_leg_is() {
    let r = router(
        json!([openai("a"), openai("b")]),
        json!({"policy": "hedged", "hedge_k": 2, "hedge_delay_ms": 100}),
    );
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    assert_eq!(sent.len(), 1);
    call.handle_head(sent[0], head(200), ms(1));
    call.handle_chunk(sent[0], data(ROLE), ms(100));
    assert!(call.poll_action().is_none());
    call.handle_chunk(sent[0], data(ROLE), ms(101));
    assert_eq!(all_actions(&mut call), ["send 1"]);
}

#[test]
fn a_committed_stream_read_late_is_not_idle() {
    let mut a = openai("a");
    a["stream_idle_timeout_ms"] = json!(200);
    let r = router(json!([a, openai("b")]), json!({}));
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    call.handle_chunk(sent[0], data(TEXT), ms(2));
    // The caller came back late; the bytes waited for it, so the stream
    // was not idle: they are delivered.
    call.handle_chunk(
        sent[0],
        [data(TEXT), data(FINISH), b"data: [DONE]\n\n".to_vec()].concat(),
        ms(5000),
    );
    let (acts, result) = finish(&mut call);
    assert_eq!(
        acts.iter().filter(|a| a.starts_with("chunk")).count(),
        3,
        "{acts:?}"
    );
    assert_eq!(result.unwrap().provider, "a");
}

#[test]
fn a_clean_end_after_a_finish_reason_is_a_complete_stream() {
    let r = router(json!([openai("a"), openai("b")]), json!({}));
    for tail in [
        &b"data: [DONE]"[..],
        b"data: [DONE]\n",
        b"data: [DONE]\r",
        b"",
    ] {
        let mut call = r.start_call(streamed(), Instant::ZERO);
        let (sent, _) = actions(&mut call);
        call.handle_head(sent[0], head(200), ms(1));
        let body = [data(ROLE), data(TEXT), data(FINISH), tail.to_vec()].concat();
        call.handle_chunk(sent[0], body, ms(2));
        call.handle_end(sent[0], ms(3));
        let (acts, result) = finish(&mut call);
        let tail = String::from_utf8_lossy(tail);
        let routed = result.unwrap_or_else(|e| panic!("{tail:?}: {e}"));
        assert_eq!(routed.provider, "a");
        assert_eq!(
            acts.iter().filter(|a| a.starts_with("chunk")).count(),
            3,
            "{tail:?}"
        );
    }
    // Without a finish reason, a missing end marker is still a truncation.
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    call.handle_chunk(
        sent[0],
        [data(TEXT), b"data: [DONE]".to_vec()].concat(),
        ms(2),
    );
    call.handle_end(sent[0], ms(3));
    let (_, result) = finish(&mut call);
    assert!(
        matches!(result, Err(RouteError::StreamInterrupted { .. })),
        "{result:?}"
    );
}

#[test]
fn content_that_is_not_text_is_a_malformed_chunk() {
    let r = router(json!([openai("a"), openai("b")]), json!({}));
    let bad = r#"{"choices":[{"index":0,"delta":{"content":123}}]}"#;
    // Before the commit point: a soft failure that commits nothing.
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    call.handle_chunk(sent[0], [data(ROLE), data(bad), data(TEXT)].concat(), ms(2));
    assert_eq!(all_actions(&mut call), ["cancel 0", "send 1"]);
    call.handle_head(AttemptId(1), head(200), ms(3));
    call.handle_chunk(AttemptId(1), [data(TEXT), data(FINISH)].concat(), ms(4));
    call.handle_end(AttemptId(1), ms(5));
    let (_, result) = finish(&mut call);
    assert_eq!(fault_of(&result, 0), "undecodable");
    let routed = result.unwrap();
    assert_eq!(routed.provider, "b");
    assert!(
        routed.attempts[0].detail.contains("not a string"),
        "{}",
        routed.attempts[0].detail
    );
    // After it: the stream is interrupted, on no other provider.
    let mut call = r.start_call(streamed(), Instant::ZERO);
    let (sent, _) = actions(&mut call);
    call.handle_head(sent[0], head(200), ms(1));
    call.handle_chunk(
        sent[0],
        [data(TEXT), data(bad), data(FINISH)].concat(),
        ms(2),
    );
    let (acts, result) = finish(&mut call);
    assert!(!acts.iter().any(|a| a.starts_with("send")), "{acts:?}");
    assert!(
        matches!(result, Err(RouteError::StreamInterrupted { .. })),
        "{result:?}"
    );
}

fn schema_stream() -> Value {
    json!({
        "model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true,
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
    })
}

fn text_chunk(text: &str) -> Vec<u8> {
    data(&json!({"choices": [{"index": 0, "delta": {"content": text}}]}).to_string())
}

#[test]
fn the_text_kept_for_a_streamed_schema_check_is_capped() {
    let mut a = openai("a");
    a["max_body_bytes"] = json!(4096);
    let r = router(json!([a]), json!({}));
    let answer = |pieces: &[String]| {
        let mut call = r.start_call(schema_stream(), Instant::ZERO);
        let (sent, _) = actions(&mut call);
        call.handle_head(sent[0], head(200), ms(1));
        for p in pieces {
            call.handle_chunk(sent[0], text_chunk(p), ms(2));
        }
        call.handle_chunk(
            sent[0],
            [data(FINISH), b"data: [DONE]\n\n".to_vec()].concat(),
            ms(3),
        );
        let (acts, result) = finish(&mut call);
        (
            acts.iter().filter(|a| a.starts_with("chunk")).count(),
            result.unwrap().schema_valid,
        )
    };
    // An object of 4096 bytes of text, in pieces under the parser's line
    // limit: kept whole, and valid.
    let object = |len: usize| {
        let mut pieces = vec!["{\"k\": \"".to_owned()];
        let mut left = len - pieces[0].len() - 2;
        while left > 0 {
            pieces.push("x".repeat(left.min(1000)));
            left -= left.min(1000);
        }
        pieces.push("\"}".to_owned());
        assert_eq!(pieces.iter().map(String::len).sum::<usize>(), len);
        pieces
    };
    // (Every piece is a chunk, and the finish reason one more.)
    assert_eq!(answer(&object(4096)), (object(4096).len() + 1, Some(true)));
    // One byte more: the caller still gets every chunk, but the answer
    // fails its check (the text was not kept to check).
    assert_eq!(answer(&object(4097)), (object(4097).len() + 1, Some(false)));
}
