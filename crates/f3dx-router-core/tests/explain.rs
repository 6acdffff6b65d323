//! `Router::explain` and `Router::models`: each reason produced by the
//! state a real call leaves (a 429 with `Retry-After`, failures that eject,
//! an `rpm` budget spent, failed quality checks, a small context window),
//! explain's order matched against where a call really sends, and explain
//! leaving every piece of state as it found it.

use std::time::Duration;

use f3dx_router_core::{
    Action, AttemptId, CallOptions, HostLimits, Instant, ResponseHead, RouteError, Router,
    RouterConfig,
};
use serde_json::{json, Value};

const KEY: &str = "sk-a-0123456789abcdefghijklmnopqrstuvwxyz";

fn provider(name: &str) -> Value {
    json!({"name": name, "kind": "openai", "base_url": format!("http://{name}/v1"), "api_key": KEY})
}

/// Providers a, b, c and `config`'s other keys.
fn router(mut config: Value) -> Router {
    config["providers"] = json!([provider("a"), provider("b"), provider("c")]);
    Router::new(RouterConfig::from_json(&config, &|_| None, HostLimits::default()).unwrap())
}

fn request(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn secs(n: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(n)
}

fn head(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
    ResponseHead {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        received_unix_secs: 0,
    }
}

const OK_BODY: &str = r#"{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}"#;

/// A whole call at `now` whose attempts are answered in turn by
/// `answers` (status, headers; 200 ends it): the provider index and the
/// model of every attempt sent, in order.
fn call(
    r: &Router,
    body: Value,
    tenant: &str,
    now: Instant,
    answers: &[(u16, &[(&str, &str)])],
) -> Vec<(usize, String)> {
    let options = CallOptions {
        tenant: tenant.to_owned(),
        ..CallOptions::default()
    };
    let mut call = r.start_call_with(body, options, now);
    let mut sent = Vec::new();
    let mut answers = answers.iter();
    // Bounded: each round answers one attempt.
    for _ in 0..16 {
        let mut next: Option<AttemptId> = None;
        let mut done = false;
        while let Some(a) = call.poll_action() {
            match a {
                Action::Send {
                    attempt,
                    provider,
                    request,
                } => {
                    let body: Value = serde_json::from_slice(&request.body).unwrap();
                    sent.push((provider, body["model"].as_str().unwrap().to_owned()));
                    next = Some(attempt);
                }
                Action::Complete(_) => done = true,
                _ => {}
            }
        }
        let (Some(id), false) = (next, done) else {
            break;
        };
        let (status, headers) = answers.next().copied().unwrap_or((200, &[]));
        call.handle_head(id, head(status, headers), now);
        let text = if status == 200 { OK_BODY } else { "{}" };
        call.handle_body(id, text.as_bytes().to_vec(), now);
    }
    sent
}

fn explain(r: &Router, body: Value, tenant: &str, now: Instant) -> Value {
    let options = CallOptions {
        tenant: tenant.to_owned(),
        ..CallOptions::default()
    };
    r.explain(body, options, now).unwrap().to_json(now)
}

/// `(provider, model)` of each entry of `list`.
fn names(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("provider"), s("model"))
        })
        .collect()
}

/// The entry of `list` for `provider`.
fn entry<'a>(list: &'a Value, provider: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e["provider"] == provider)
        .unwrap_or_else(|| panic!("{provider} not in {list}"))
}

fn pair(p: &str, m: &str) -> (String, String) {
    (p.to_owned(), m.to_owned())
}

/// A group `gpt-4o` on a, b and c, each under its own model name.
fn table(extra: Value) -> Value {
    let mut config = json!({"models": {"gpt-4o": [
        {"provider": "a", "model": "a-4o"},
        {"provider": "b", "model": "b-4o"},
        {"provider": "c", "model": "c-4o"},
    ]}});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    config
}

#[test]
fn a_429_with_retry_after_leaves_its_deployment_out_while_it_cools() {
    let r = router(table(json!({})));
    let sent = call(
        &r,
        request("gpt-4o"),
        "",
        secs(0),
        &[(429, &[("retry-after", "30")])],
    );
    assert_eq!(sent, [(0, "a-4o".to_owned()), (1, "b-4o".to_owned())]);
    let e = explain(&r, request("gpt-4o"), "", secs(10));
    assert_eq!(names(&e["tried"]), [pair("b", "b-4o"), pair("c", "c-4o")]);
    let a = entry(&e["left_out"], "a");
    assert_eq!(a["reason"], "cooling");
    assert_eq!(a["until_s"], 20.0);
    assert_eq!(a["group"], "gpt-4o");
    // Once the cooldown ended it is back, first.
    let e = explain(&r, request("gpt-4o"), "", secs(31));
    assert_eq!(names(&e["tried"])[0], pair("a", "a-4o"));
    assert_eq!(e["left_out"], json!([]));
}

#[test]
fn failures_that_eject_leave_the_deployment_out_until_the_ejection_ends() {
    let r = router(table(
        json!({"health": {"consecutive_failures": 2, "ejection_s": 60}}),
    ));
    for _ in 0..2 {
        call(&r, request("gpt-4o"), "", secs(0), &[(503, &[])]);
    }
    let e = explain(&r, request("gpt-4o"), "", secs(5));
    let a = entry(&e["left_out"], "a");
    assert_eq!(a["reason"], "ejected");
    assert_eq!(a["until_s"], 55.0);
    assert_eq!(names(&e["tried"])[0], pair("b", "b-4o"));
}

#[test]
fn a_spent_rpm_budget_leaves_the_deployment_out_and_says_which_budget() {
    let config = json!({"models": {"gpt-4o": [
        {"provider": "a", "model": "a-4o", "rpm": 1},
        {"provider": "b", "model": "b-4o"},
    ]}});
    let r = router(config);
    assert_eq!(
        call(&r, request("gpt-4o"), "", secs(0), &[]),
        [(0, "a-4o".to_owned())]
    );
    let e = explain(&r, request("gpt-4o"), "", secs(0));
    let a = entry(&e["left_out"], "a");
    assert_eq!(a["reason"], "rate_limited");
    assert_eq!(a["budget"], "rpm");
    assert_eq!(a["until_s"], 60.0);
    assert_eq!(names(&e["tried"]), [pair("b", "b-4o")]);
}

#[test]
fn a_tenants_quality_exclusion_puts_the_deployment_last_for_that_tenant_only() {
    let quality = json!({"quality": {"window": 4, "min_samples": 2, "min_pass_rate": 0.5, "probe_after_s": 100}});
    let r = router(table(quality));
    for _ in 0..2 {
        r.record_quality("a", "t1", "gpt-4o", false, secs(0))
            .unwrap();
    }
    let e = explain(&r, request("gpt-4o"), "t1", secs(1));
    assert_eq!(
        names(&e["tried"]),
        [pair("b", "b-4o"), pair("c", "c-4o"), pair("a", "a-4o")]
    );
    let a = entry(&e["tried"], "a");
    assert_eq!(a["reason"], "quality_excluded");
    assert_eq!(a["until_s"], 99.0);
    // Another tenant is not concerned.
    let e = explain(&r, request("gpt-4o"), "t2", secs(1));
    assert_eq!(names(&e["tried"])[0], pair("a", "a-4o"));
    assert_eq!(entry(&e["tried"], "a")["reason"], Value::Null);
    // And a call for t1 goes where explain said.
    let sent = call(&r, request("gpt-4o"), "t1", secs(1), &[]);
    assert_eq!(sent, [(1, "b-4o".to_owned())]);
}

#[test]
fn a_context_window_too_small_leaves_the_deployment_out_with_the_numbers() {
    let config = json!({"models": {"gpt-4o": [
        {"provider": "a", "model": "a-4o", "context_window": 1000},
        {"provider": "b", "model": "b-4o", "context_window": 100000},
    ]}});
    let r = router(config);
    let mut body = request("gpt-4o");
    body["max_tokens"] = json!(4000);
    let e = explain(&r, body.clone(), "", secs(0));
    let a = entry(&e["left_out"], "a");
    assert_eq!(a["reason"], "context_window");
    assert_eq!(a["context_window"], 1000);
    assert!(a["tokens_needed"].as_u64().unwrap() >= 4000);
    assert_eq!(names(&e["tried"]), [pair("b", "b-4o")]);
    assert_eq!(call(&r, body, "", secs(0), &[]), [(1, "b-4o".to_owned())]);
}

#[test]
fn weight_zero_is_tried_last_not_left_out() {
    let config = json!({"models": {"gpt-4o": {"policy": "weighted", "deployments": [
        {"provider": "a", "model": "a-4o", "weight": 0},
        {"provider": "b", "model": "b-4o", "weight": 1},
        {"provider": "c", "model": "c-4o", "weight": 1},
    ]}}});
    let r = router(config);
    let e = explain(&r, request("gpt-4o"), "", secs(0));
    let tried = names(&e["tried"]);
    assert_eq!(tried.last().unwrap(), &pair("a", "a-4o"));
    assert_eq!(entry(&e["tried"], "a")["reason"], "weight_zero");
    assert_eq!(e["left_out"], json!([]));
}

#[test]
fn fallback_groups_follow_with_their_own_names_and_an_unknown_model_is_the_calls_error() {
    let config = json!({
        "models": {
            "gpt-4o": [{"provider": "a", "model": "a-4o"}],
            "gpt-4o-mini": [{"provider": "b", "model": "b-mini"}],
        },
        "fallbacks": {"gpt-4o": ["gpt-4o-mini"]},
    });
    let r = router(config);
    let e = explain(&r, request("gpt-4o"), "", secs(0));
    assert_eq!(names(&e["tried"]), [pair("a", "a-4o"), pair("b", "b-mini")]);
    assert_eq!(e["tried"][1]["group"], "gpt-4o-mini");
    let e = explain(&r, request("gpt-4o-mini"), "", secs(0));
    assert_eq!(names(&e["tried"]), [pair("b", "b-mini")]);

    let explained = r
        .explain(request("o3"), CallOptions::default(), secs(0))
        .unwrap_err();
    let called = call_error(&r, request("o3"));
    assert!(matches!(explained, RouteError::InvalidRequest { .. }));
    assert_eq!(explained.to_string(), called.to_string());
    assert!(explained.to_string().contains("gpt-4o-mini"));
}

fn call_error(r: &Router, body: Value) -> RouteError {
    let mut call = r.start_call(body, secs(0));
    while let Some(a) = call.poll_action() {
        if let Action::Complete(result) = a {
            return result.unwrap_err();
        }
    }
    panic!("the call did not end");
}

#[test]
fn a_group_with_every_deployment_out_is_passed_over_for_its_fallback() {
    let config = json!({
        "models": {
            "gpt-4o": [{"provider": "a", "model": "a-4o"}],
            "gpt-4o-mini": [{"provider": "b", "model": "b-mini"}],
        },
        "fallbacks": {"gpt-4o": ["gpt-4o-mini"]},
    });
    let r = router(config);
    let busy: &[(&str, &str)] = &[("retry-after", "30")];
    call(&r, request("gpt-4o"), "", secs(0), &[(429, busy)]);
    let e = explain(&r, request("gpt-4o"), "", secs(1));
    assert_eq!(e["last_resort"], false);
    assert_eq!(names(&e["tried"]), [pair("b", "b-mini")]);
    let a = entry(&e["left_out"], "a");
    assert_eq!(
        (&a["reason"], &a["last_resort"]),
        (&json!("cooling"), &json!(false))
    );
    assert_eq!(
        call(&r, request("gpt-4o"), "", secs(1), &[]),
        [(1, "b-mini".to_owned())]
    );
}

#[test]
fn when_every_deployment_is_out_they_are_tried_anyway_as_a_last_resort() {
    let r = router(table(json!({})));
    // Each call's first deployment answers 429 with a shorter Retry-After
    // than the one before: a for 30 s, then b for 20 s, then c for 10 s.
    for (i, after) in ["30", "20", "10"].iter().enumerate() {
        let h: &[(&str, &str)] = &[("retry-after", after)];
        let sent = call(&r, request("gpt-4o"), "", secs(0), &[(429, h)]);
        assert_eq!(sent[0].0, i, "{sent:?}");
    }
    let e = explain(&r, request("gpt-4o"), "", secs(1));
    assert_eq!(e["last_resort"], true);
    // In the order they recover: c (10 s), b (20 s), a (30 s).
    let tried = names(&e["tried"]);
    assert_eq!(
        tried.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
        ["c", "b", "a"]
    );
    assert_eq!(e["tried"][0]["reason"], "cooling");
    assert_eq!(e["tried"][0]["last_resort"], true);
}

#[test]
fn explain_changes_nothing_a_call_reads() {
    let config = json!({
        "health": {"consecutive_failures": 1, "ejection_s": 10},
        "models": {"gpt-4o": {"policy": "weighted", "deployments": [
            {"provider": "a", "model": "a-4o", "weight": 1, "rpm": 1},
            {"provider": "b", "model": "b-4o", "weight": 1},
            {"provider": "c", "model": "c-4o", "weight": 1},
        ]}},
    });
    let r = router(config);
    let firsts = |r: &Router, now| {
        let e = explain(r, request("gpt-4o"), "", now);
        names(&e["tried"])[0].0.clone()
    };
    // The picker: explained again and again, the first pick stays, and the
    // call goes there.
    for _ in 0..5 {
        assert_eq!(firsts(&r, secs(0)), "a");
    }
    // The budget: a's rpm of 1 is still there for the call.
    assert_eq!(
        call(&r, request("gpt-4o"), "", secs(0), &[]),
        [(0, "a-4o".to_owned())]
    );
    // The picker moved on by the call only.
    assert_eq!(firsts(&r, secs(0)), "b");
    assert_eq!(firsts(&r, secs(0)), "b");
}

#[test]
fn explain_does_not_take_the_half_open_probe() {
    let r = router(table(
        json!({"health": {"consecutive_failures": 1, "ejection_s": 10}}),
    ));
    call(&r, request("gpt-4o"), "", secs(0), &[(503, &[])]);
    // Half-open at 11 s: explained again and again, a stays first (no
    // probe claimed), and the call after sends a its probe.
    for _ in 0..3 {
        let e = explain(&r, request("gpt-4o"), "", secs(11));
        assert_eq!(names(&e["tried"])[0], pair("a", "a-4o"));
    }
    let mut probing = r.start_call(request("gpt-4o"), secs(11));
    assert!(matches!(
        probing.poll_action(),
        Some(Action::Send { provider: 0, .. })
    ));
    // Now the probe is held, and explain says so.
    let e = explain(&r, request("gpt-4o"), "", secs(11));
    assert_eq!(entry(&e["left_out"], "a")["reason"], "probe_held");
}

#[test]
fn explain_orders_as_calls_send() {
    // Each call fails on every attempt: the sends are the whole order.
    let config = json!({"models": {"gpt-4o": {"policy": "weighted", "deployments": [
        {"provider": "a", "model": "a-4o", "weight": 3},
        {"provider": "b", "model": "b-4o", "weight": 2},
        {"provider": "c", "model": "c-4o", "weight": 0},
    ]}}, "health": {"consecutive_failures": 1000}});
    let r = router(config);
    let all_fail: Vec<(u16, &[(&str, &str)])> = vec![(503, &[]); 3];
    for i in 0..12 {
        let e = explain(&r, request("gpt-4o"), "", secs(i));
        let want: Vec<String> = names(&e["tried"]).into_iter().map(|p| p.1).collect();
        let sent: Vec<String> = call(&r, request("gpt-4o"), "", secs(i), &all_fail)
            .into_iter()
            .map(|s| s.1)
            .collect();
        assert_eq!(sent, want, "call {i}");
    }
}

#[test]
fn models_lists_groups_with_their_deployments() {
    let config = json!({
        "models": {
            "gpt-4o": {"policy": "weighted", "deployments": [
                {"provider": "a", "model": "a-4o", "weight": 2, "context_window": 128000},
                {"provider": "b"},
            ]},
            "claude-*": [{"provider": "c"}],
        },
        "fallbacks": {"gpt-4o": ["claude-*"]},
    });
    let r = router(config);
    let m = r.models_json();
    assert_eq!(m[0]["name"], "gpt-4o");
    assert_eq!(m[0]["policy"], "weighted");
    assert_eq!(m[0]["pattern"], false);
    assert_eq!(m[0]["fallbacks"], json!(["claude-*"]));
    assert_eq!(m[0]["deployments"][0]["provider"], "a");
    assert_eq!(m[0]["deployments"][0]["model"], "a-4o");
    assert_eq!(m[0]["deployments"][0]["weight"], 2);
    assert_eq!(m[0]["deployments"][0]["context_window"], 128000);
    // An exact group sends its own name where a deployment names none.
    assert_eq!(m[0]["deployments"][1]["model"], "gpt-4o");
    assert_eq!(m[1]["deployments"][0]["model"], Value::Null);
    assert_eq!(m[1]["name"], "claude-*");
    assert_eq!(m[1]["pattern"], true);
    assert_eq!(r.models().groups.len(), 2);

    // Without `models`: one implicit group of every provider.
    let r = router(json!({}));
    let m = r.models_json();
    assert_eq!(m.as_array().unwrap().len(), 1);
    assert_eq!(m[0]["name"], "*");
    assert_eq!(m[0]["implicit"], true);
    assert_eq!(m[0]["deployments"].as_array().unwrap().len(), 3);
    let e = explain(&r, request("anything"), "", secs(0));
    assert_eq!(e["group"], "*");
    assert_eq!(names(&e["tried"])[0], pair("a", "anything"));
}
