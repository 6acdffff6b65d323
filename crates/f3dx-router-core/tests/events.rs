//! Health transitions as a host sees them: `Router::has_health_events` and
//! `Router::take_health_events`, on a virtual clock.

use std::time::Duration;

use f3dx_router_core::{
    Action, AttemptId, BudgetKind, Call, CoolingCause, EjectReason, HealthEventKind, HostLimits,
    Instant, QualityScope, ResponseHead, Router, RouterConfig,
};
use serde_json::{json, Value};

fn router(config: Value) -> Router {
    Router::new(RouterConfig::from_json(&config, &|_| None, HostLimits::default()).unwrap())
}

fn provider(name: &str) -> Value {
    json!({"name": name, "kind": "openai", "base_url": "http://h/v1", "api_key": "sk-events-0123456789"})
}

fn request() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

fn ms(n: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(n)
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

fn answer() -> Vec<u8> {
    json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]})
        .to_string()
        .into_bytes()
}

/// The providers each send of `call` goes to, with the attempt ids.
fn sends(call: &mut Call) -> Vec<(AttemptId, usize)> {
    std::iter::from_fn(|| call.poll_action())
        .filter_map(|a| match a {
            Action::Send {
                attempt, provider, ..
            } => Some((attempt, provider)),
            _ => None,
        })
        .collect()
}

/// One call at `now` whose first attempt answers `status` (with `headers`);
/// a 200 gets a body. Returns the provider it went to.
fn call_once(r: &Router, now: Instant, status: u16, headers: &[(&str, &str)]) -> usize {
    let mut call = r.start_call(request(), now);
    let (id, provider) = sends(&mut call)[0];
    call.handle_head(id, head(status, headers), now);
    if status == 200 {
        call.handle_body(id, answer(), now);
    }
    provider
}

/// What was taken, as `(provider, name)` pairs.
fn taken(r: &Router) -> Vec<(String, &'static str)> {
    r.take_health_events()
        .events
        .into_iter()
        .map(|e| (e.provider, e.kind.name()))
        .collect()
}

#[test]
fn nothing_pending_on_a_healthy_router() {
    let r = router(json!({"providers": [provider("a")]}));
    for i in 0..10 {
        call_once(&r, ms(i), 200, &[]);
    }
    assert!(!r.has_health_events());
    assert!(r.take_health_events().is_empty());
}

#[test]
fn an_ejection_and_a_readmission_are_each_reported_once() {
    let r = router(json!({
        "providers": [provider("a"), provider("b")],
        "health": {"consecutive_failures": 3, "ejection_s": 10}
    }));
    for i in 0..3 {
        // Each call fails on a and falls through to b (left in flight).
        assert_eq!(call_once(&r, ms(i), 503, &[]), 0);
    }
    assert!(r.has_health_events());
    let events = r.take_health_events();
    assert_eq!(events.dropped, 0);
    assert_eq!(events.events.len(), 1, "{events:?}");
    let e = &events.events[0];
    assert_eq!(
        (e.provider.as_str(), e.provider_index, e.at),
        ("a", 0, ms(2))
    );
    assert_eq!(
        e.kind,
        HealthEventKind::Ejected {
            until: ms(2) + Duration::from_secs(10),
            reason: EjectReason::ConsecutiveFailures(3),
        }
    );
    assert_eq!(e.lasts(), Some(Duration::from_secs(10)));
    assert_eq!(e.kind.reason(), Some("consecutive_failures"));
    assert_eq!(e.kind.reason_words(), "3 soft failures in a row");
    assert_eq!(
        e.to_string(),
        "provider 'a' ejected for 10.0 s: 3 soft failures in a row"
    );
    assert!(!r.has_health_events(), "taken once");
    // Calls while it is ejected go to b and report nothing.
    for i in 0..5 {
        assert_eq!(call_once(&r, ms(100 + i), 200, &[]), 1);
    }
    assert!(!r.has_health_events());
    // Half-open at 10.002 s: the probe fails, ejected for 20 s.
    assert_eq!(call_once(&r, ms(10_002), 503, &[]), 0);
    let events = r.take_health_events().events;
    assert_eq!(
        events[0].kind,
        HealthEventKind::Ejected {
            until: ms(30_002),
            reason: EjectReason::FailedProbe,
        }
    );
    assert_eq!(events[0].kind.reason(), Some("failed_probe"));
    // The next probe succeeds.
    assert_eq!(call_once(&r, ms(30_002), 200, &[]), 0);
    let events = r.take_health_events().events;
    assert_eq!(events[0].kind, HealthEventKind::Readmitted);
    assert_eq!(
        (
            events[0].kind.reason(),
            events[0].kind.reason_words().as_str()
        ),
        (None, "it answered while half-open (its probe)")
    );
    assert_eq!(
        events[0].to_string(),
        "provider 'a' readmitted: it answered while half-open (its probe)"
    );
    assert_eq!(call_once(&r, ms(30_003), 200, &[]), 0);
    assert!(!r.has_health_events());
}

#[test]
fn a_cooldown_is_reported_when_it_starts_not_when_it_is_extended() {
    let r = router(json!({"providers": [provider("a"), provider("b")]}));
    call_once(&r, ms(0), 429, &[("retry-after", "20")]);
    let events = r.take_health_events().events;
    assert_eq!(
        events[0].kind,
        HealthEventKind::Cooling {
            until: ms(20_000),
            cause: CoolingCause::RetryAfter,
        }
    );
    assert_eq!(events[0].kind.name(), "cooling");
    assert_eq!(events[0].kind.reason(), Some("retry_after"));
    assert_eq!(
        events[0].kind.reason_words(),
        "it answered with Retry-After"
    );
    // A call of last resort meets another 429 while a and b both cool:
    // a's cooldown moves, no new transition for it.
    call_once(&r, ms(1), 429, &[("retry-after", "5")]); // goes to b
    assert_eq!(taken(&r), [("b".to_owned(), "cooling")]);
    assert_eq!(call_once(&r, ms(2), 429, &[("retry-after", "30")]), 1);
    assert!(!r.has_health_events(), "b was cooling already");
    // Once a's cooldown is over, a new one is a new transition.
    assert_eq!(call_once(&r, ms(40_000), 429, &[("retry-after", "1")]), 0);
    assert_eq!(taken(&r), [("a".to_owned(), "cooling")]);
    // A Retry-After of 0 starts nothing.
    call_once(&r, ms(50_000), 503, &[("retry-after", "0")]);
    assert!(!r.has_health_events());
}

#[test]
fn a_spent_rate_limit_header_is_reported_as_rate_limited() {
    let r = router(json!({"providers": [provider("a"), provider("b")]}));
    let spent = [
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "1.5s"),
    ];
    call_once(&r, ms(0), 200, &spent);
    let events = r.take_health_events().events;
    assert_eq!(
        events[0].kind,
        HealthEventKind::Cooling {
            until: ms(1500),
            cause: CoolingCause::RateLimitHeaders,
        }
    );
    assert_eq!(events[0].kind.name(), "rate_limited");
    assert_eq!(events[0].kind.reason(), Some("rate_limit_headers"));
}

#[test]
fn a_budget_running_out_is_reported() {
    let mut a = provider("a");
    a["rpm"] = json!(2);
    let r = router(json!({"providers": [a, provider("b")]}));
    assert_eq!(call_once(&r, ms(0), 200, &[]), 0);
    assert!(!r.has_health_events());
    assert_eq!(call_once(&r, ms(1), 200, &[]), 0);
    let events = r.take_health_events().events;
    assert_eq!(events.len(), 1);
    let HealthEventKind::BudgetExhausted { until, budget } = events[0].kind else {
        panic!("{events:?}")
    };
    assert_eq!(budget, BudgetKind::Rpm);
    assert_eq!(events[0].kind.reason(), Some("rpm"));
    assert_eq!(
        events[0].kind.reason_words(),
        "the router's rpm budget for it is spent"
    );
    // Two a minute: one refills in 30 s (less what 1 ms refilled).
    assert!(until > ms(29_990) && until <= ms(30_001), "{until:?}");
    // Skipped while it is out: nothing more to report.
    assert_eq!(call_once(&r, ms(2), 200, &[]), 1);
    assert!(!r.has_health_events());
}

#[test]
fn the_log_is_bounded_and_counts_what_it_dropped() {
    let r = router(json!({"providers": [provider("a")], "health": false}));
    // Each cooldown is over before the next call: a new transition each
    // (and with health tracking off, no ejection among them).
    for i in 0..300 {
        call_once(&r, ms(i * 2000), 429, &[("retry-after", "1")]);
    }
    let events = r.take_health_events();
    assert_eq!(events.events.len(), 256);
    assert_eq!(events.dropped, 44);
    assert_eq!(events.events[0].at, ms(44 * 2000), "the oldest went first");
    assert!(r.take_health_events().is_empty());
}

#[test]
fn quality_exclusions_and_readmissions_are_reported_with_their_tenant_and_model() {
    let r = router(json!({
        "providers": [provider("a"), provider("b")],
        "quality": {"window": 10, "min_samples": 3, "min_pass_rate": 0.5, "probe_after_s": 60}
    }));
    let scope = Some(QualityScope {
        tenant: "acme".to_owned(),
        model: "m".to_owned(),
    });
    for i in 0..2 {
        r.record_quality("a", "acme", "m", false, ms(i)).unwrap();
    }
    r.record_quality("a", "globex", "m", true, ms(2)).unwrap();
    assert!(!r.has_health_events(), "under min_samples: nothing yet");
    r.record_quality("a", "acme", "m", false, ms(3)).unwrap();
    let events = r.take_health_events().events;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        e.kind,
        HealthEventKind::QualityExcluded {
            until: ms(60_003),
            passes: 0,
            samples: 3,
            failed_probe: false,
        }
    );
    assert_eq!((e.provider.as_str(), &e.scope), ("a", &scope));
    assert_eq!(e.kind.name(), "quality_excluded");
    assert_eq!(e.kind.reason(), Some("pass_rate"));
    assert_eq!(e.lasts(), Some(Duration::from_secs(60)));
    assert_eq!(
        e.to_string(),
        "provider 'a' excluded (tenant 'acme', model 'm') for 60.0 s: \
         schema pass rate 0.00 (0 of 3 answers)"
    );
    // Results of calls that started before the exclusion change nothing.
    r.record_quality("a", "acme", "m", false, ms(4)).unwrap();
    assert!(!r.has_health_events());
    // The probe fails: excluded again, twice as long.
    r.record_quality("a", "acme", "m", false, ms(60_003))
        .unwrap();
    let events = r.take_health_events().events;
    let HealthEventKind::QualityExcluded {
        until,
        failed_probe: true,
        ..
    } = events[0].kind
    else {
        panic!("{events:?}")
    };
    assert_eq!(until, ms(180_003));
    assert_eq!(events[0].kind.reason(), Some("failed_probe"));
    // The next probe passes: readmitted.
    r.record_quality("a", "acme", "m", true, ms(180_003))
        .unwrap();
    let events = r.take_health_events().events;
    assert_eq!(events[0].kind, HealthEventKind::QualityReadmitted);
    assert!(events[0].kind.is_readmission() && events[0].lasts().is_none());
    assert_eq!(
        events[0].to_string(),
        "provider 'a' readmitted (tenant 'acme', model 'm'): its probe's answer matched the schema"
    );
    // The provider-level transitions have no scope.
    assert!(!r.has_health_events());
}
