use super::host::DEFAULT_MAX_BODY_BYTES;
use super::policy::{DEFAULT_HEDGE_BUDGET, DEFAULT_HEDGE_DELAY_FALLBACK};
use super::provider::{DEFAULT_STREAM_IDLE_TIMEOUT, DEFAULT_TIMEOUT, MAX_MAX_BODY_BYTES};
use super::*;
use serde_json::json;
use std::time::Duration;

fn parse(v: Value) -> Result<RouterConfig, ConfigError> {
    let env = |name: &str| (name == "KEY_VAR").then(|| "sk-from-env".to_owned());
    RouterConfig::from_json(&v, &env, HostLimits::default())
}

fn provider(name: &str) -> Value {
    json!({"name": name, "kind": "openai", "base_url": "https://x.test/v1/", "api_key": "sk-secret"})
}

#[test]
fn defaults_are_safe() {
    let c = parse(json!({"providers": [provider("a")]})).unwrap();
    assert_eq!(c.policy, Policy::Sequential);
    let p = &c.providers[0];
    assert_eq!(p.timeout, DEFAULT_TIMEOUT);
    assert_eq!(p.stream_idle_timeout, DEFAULT_STREAM_IDLE_TIMEOUT);
    assert_eq!(p.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert_eq!(p.weight, 1);
    assert_eq!(p.base_url, "https://x.test/v1");
    let c = parse(
        json!({"providers": [provider("a"), provider("b"), provider("c")], "policy": "hedged"}),
    )
    .unwrap();
    assert_eq!(
        c.policy,
        Policy::Hedged {
            k: 2,
            delay: HedgeDelay::Immediate,
            budget: None
        }
    );
    let c = parse(json!({"providers": [provider("a")], "policy": "hedged"})).unwrap();
    assert_eq!(
        c.policy,
        Policy::Hedged {
            k: 1,
            delay: HedgeDelay::Immediate,
            budget: None
        }
    );
    let c =
        parse(json!({"providers": [provider("a")], "policy": "hedged", "hedge_k": null})).unwrap();
    assert_eq!(
        c.policy,
        Policy::Hedged {
            k: 1,
            delay: HedgeDelay::Immediate,
            budget: None
        }
    );
}

#[test]
fn hedge_delay_and_budget() {
    let hedged = |extra: Value| {
        let mut v = json!({"providers": [provider("a"), provider("b")], "policy": "hedged"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        parse(v).unwrap().policy
    };
    // Legs together: every leg on every call, unless a budget is given.
    assert_eq!(hedged(json!({})).hedge_budget(), None);
    assert_eq!(
        hedged(json!({"hedge_budget": 0.5})).hedge_budget(),
        Some(0.5)
    );
    // Delayed legs are backups: the default budget applies.
    let p = hedged(json!({"hedge_delay_ms": 250}));
    assert_eq!(
        p.hedge_delay(),
        HedgeDelay::Fixed(Duration::from_millis(250))
    );
    assert_eq!(p.hedge_budget(), Some(DEFAULT_HEDGE_BUDGET));
    let p = hedged(json!({"hedge_delay_ms": "auto"}));
    assert_eq!(
        p.hedge_delay(),
        HedgeDelay::Auto {
            fallback: DEFAULT_HEDGE_DELAY_FALLBACK
        }
    );
    assert_eq!(p.hedge_budget(), Some(DEFAULT_HEDGE_BUDGET));
    let p = hedged(
        json!({"hedge_delay_ms": "auto", "hedge_delay_fallback_ms": 300, "hedge_budget": 0}),
    );
    assert_eq!(
        p.hedge_delay(),
        HedgeDelay::Auto {
            fallback: Duration::from_millis(300)
        }
    );
    assert_eq!(p.hedge_budget(), Some(0.0));
    assert_eq!(
        hedged(json!({"hedge_delay_ms": 0})).hedge_delay(),
        HedgeDelay::Immediate
    );
}

#[test]
fn key_from_env_and_never_in_debug() {
    let c = parse(json!({"providers": [{"name": "a", "kind": "anthropic", "base_url": "http://h", "api_key_env": "KEY_VAR"}]})).unwrap();
    assert_eq!(c.providers[0].api_key.expose(), "sk-from-env");
    assert!(!format!("{c:?}").contains("sk-from-env"));
    let mut p = provider("a");
    p["headers"] = json!({"api-key": "AZURE-SECRET-123"});
    let c = parse(json!({"providers": [p]})).unwrap();
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("sk-secret") && !debug.contains("AZURE-SECRET"),
        "{debug}"
    );
    assert!(debug.contains("api-key"));
    assert_eq!(
        c.providers[0].secrets().collect::<Vec<_>>(),
        ["sk-secret", "AZURE-SECRET-123"]
    );
}

#[test]
fn bad_configs_say_what_to_fix() {
    let cases = [
        (json!({"providers": []}), "providers", "empty"),
        (json!({}), "providers", "required"),
        (
            json!({"providers": [provider("a"), provider("a")]}),
            "providers[1].name",
            "is the name of providers[0]",
        ),
        (
            json!({"providers": [{"name": "a", "kind": "gemini", "base_url": "http://h", "api_key": "k"}]}),
            "providers[0].kind",
            "\"openai\", \"anthropic\" or \"azure\"",
        ),
        (
            json!({"providers": [{"name": "a", "kind": "openai", "base_url": "http://h", "api_key": "k", "api_version": "2024-10-21"}]}),
            "providers[0].api_version",
            "only for kind \"azure\"",
        ),
        (
            json!({"providers": [{"name": "a", "kind": "azure", "base_url": "https://r.openai.azure.com/openai/v1", "api_key": "k"}]}),
            "providers[0].base_url",
            "the resource's endpoint only",
        ),
        (
            json!({"providers": [{"name": "a", "kind": "azure", "base_url": "https://r.openai.azure.com", "api_key": "k",
                                  "azure_api": "deployments", "api_version": "2024-10-21?x"}]}),
            "providers[0].api_version",
            "letters, digits, `.` and `-`",
        ),
        (
            json!({"providers": [provider("a")], "policy": "fastest"}),
            "policy",
            "\"weighted\" or \"hedged\"",
        ),
        (
            json!({"providers": [{"name": "a", "kind": "openai", "api_key": "k"}]}),
            "providers[0].base_url",
            "required",
        ),
        (
            json!({"providers": [{"name": "a", "kind": "openai", "base_url": "ftp://h", "api_key": "k"}]}),
            "providers[0].base_url",
            "http://",
        ),
        (
            json!({"providers": [{"name": "a", "kind": "openai", "base_url": "api.x.com/v1", "api_key": "k"}]}),
            "providers[0].base_url",
            "e.g. \"https://api.openai.com/v1\"",
        ),
        (
            json!({"providers": [provider("a")], "policy": "hedged", "hedge_k": 2}),
            "hedge_k",
            "between 1 and 1",
        ),
        (
            json!({"providers": [provider("a")], "policy": "hedged", "hedge_k": 0}),
            "hedge_k",
            "between 1 and 1",
        ),
        (
            json!({"providers": [{"name": "a", "kind": "openai", "base_url": "http://h", "api_key_env": "NOPE"}]}),
            "providers[0].api_key_env",
            "not set or is empty",
        ),
        (
            json!({"providers": [{"name": "a", "kind": "openai", "base_url": "http://h"}]}),
            "providers[0]",
            "api_key",
        ),
        (
            json!({"providers": [provider("a")], "hedge_delay_ms": -1}),
            "hedge_delay_ms",
            "\"auto\" or a number",
        ),
        (
            json!({"providers": [provider("a")], "hedge_delay_ms": "fast"}),
            "hedge_delay_ms",
            "\"auto\" or a number",
        ),
        (
            json!({"providers": [provider("a")], "hedge_delay_ms": 1.5}),
            "hedge_delay_ms",
            "milliseconds",
        ),
        (
            json!({"providers": [provider("a")], "hedge_delay_ms": "auto", "hedge_delay_fallback_ms": 0}),
            "hedge_delay_fallback_ms",
            "between 1 and 86400000",
        ),
        (
            json!({"providers": [provider("a")], "hedge_delay_ms": "auto", "hedge_delay_fallback_ms": "1s"}),
            "hedge_delay_fallback_ms",
            "non-negative integer",
        ),
        (
            json!({"providers": [provider("a")], "hedge_delay_ms": 100, "hedge_delay_fallback_ms": 500}),
            "hedge_delay_fallback_ms",
            "only with hedge_delay_ms: \"auto\"",
        ),
        (
            json!({"providers": [provider("a")], "hedge_budget": -0.1}),
            "hedge_budget",
            "from 0 to 10",
        ),
        (
            json!({"providers": [provider("a")], "hedge_budget": 10.5}),
            "hedge_budget",
            "from 0 to 10",
        ),
        (
            json!({"providers": [provider("a")], "hedge_budget": "0.1"}),
            "hedge_budget",
            "from 0 to 10",
        ),
        (
            json!({"providers": [{"name": "a", "kind": "openai", "base_url": "http://h", "api_key": "k", "timeout": 5}]}),
            "providers[0].#5",
            "unknown key (did you mean timeout_ms?)",
        ),
        (
            json!({"providers": [provider("a")], "otel": true}),
            "config.otel",
            "an option of the Python package's Router",
        ),
    ];
    for (value, field, needle) in cases {
        let e = parse(value.clone()).expect_err(&value.to_string());
        assert_eq!(e.field, field, "{value}");
        assert!(
            e.to_string().contains(needle),
            "{e} should mention {needle}"
        );
    }
}

fn with(key: &str, value: Value) -> Value {
    let mut p = provider("a");
    p[key] = value;
    json!({ "providers": [p] })
}

#[test]
fn body_cap_is_bounded() {
    let c = parse(with("max_body_bytes", json!(MAX_MAX_BODY_BYTES))).unwrap();
    assert_eq!(c.providers[0].max_body_bytes, MAX_MAX_BODY_BYTES);
    for n in [
        json!(MAX_MAX_BODY_BYTES as u64 + 1),
        json!(1u64 << 40),
        json!(u64::MAX),
        json!(0),
    ] {
        let e = parse(with("max_body_bytes", n)).unwrap_err();
        assert_eq!(e.field, "providers[0].max_body_bytes");
        assert!(e.message.contains("1 GiB"), "{e}");
    }
}

#[test]
fn framing_and_hop_by_hop_headers_are_refused() {
    for name in [
        "Content-Length",
        "transfer-encoding",
        "HOST",
        "Connection",
        "upgrade",
        "TE",
        "trailer",
        "keep-alive",
        "proxy-authorization",
        "Proxy-Connection",
    ] {
        let e = parse(with("headers", json!({ name: "5" }))).unwrap_err();
        assert_eq!(e.field, "providers[0].headers.#1");
        assert!(e.message.contains("router sets it"), "{e}");
    }
    let c = parse(with("headers", json!({"OpenAI-Organization": "org-1"}))).unwrap();
    assert_eq!(
        c.providers[0].headers,
        [("openai-organization".to_owned(), "org-1".to_owned())]
    );
}

#[test]
fn refused_urls_never_echo_a_query_or_credentials() {
    let secret = "sk-QUERY-SECRET-99";
    for url in [
        format!("https://h.test/v1?key={secret}"),
        format!("https://h.test/v1#{secret}"),
        format!("h.test/v1?key={secret}"),
        format!("ftp://h.test/v1?key={secret}"),
        format!("https://user:{secret}@h.test/v1"),
        format!("https://{secret}@h.test/v1"),
        format!("http:///v1?key={secret}"),
        format!("https://h.test/v1\n?key={secret}"),
    ] {
        let e = parse(with("base_url", json!(url))).unwrap_err();
        assert_eq!(e.field, "providers[0].base_url", "{url}");
        assert!(!e.to_string().contains("SECRET"), "{url}: {e}");
    }
}

#[test]
fn lenient_urls_are_refused() {
    let long = format!("https://h.test/{}", "a".repeat(100_000));
    let cases = [
        ("https://h.test/v\r\n1", "line break"),
        ("https://h.\ttest/v1", "tab"),
        ("https://h.test/v 1", "space"),
        ("http:///v1", "no host"),
        ("http://", "no host"),
        ("https://:443/v1", "no host"),
        ("https:\\\\h.test\\v1", "backslash"),
        (long.as_str(), "at most 2048"),
    ];
    for (url, needle) in cases {
        let e = parse(with("base_url", json!(url))).unwrap_err();
        assert_eq!(e.field, "providers[0].base_url", "{url:?}");
        assert!(e.message.contains(needle), "{url:?}: {e}");
        assert!(e.message.len() < 400, "{e}");
    }
    let c = parse(with("base_url", json!("HTTPS://H.test:8443/v1/"))).unwrap();
    assert_eq!(c.providers[0].base_url, "https://h.test:8443/v1");
}

#[test]
fn a_key_given_as_api_key_env_is_never_repeated() {
    for value in ["sk-live-abc/def+ghi", "9KEY", "", "a b"] {
        let e = parse(with_key_env(value)).unwrap_err();
        assert_eq!(e.field, "providers[0].api_key_env");
        if !value.is_empty() {
            assert!(!e.to_string().contains(value), "{e}");
        }
    }
    // Nor is a proper name that is unset: a key of letters, digits and
    // `_` (Groq's `gsk_...`) is one.
    for value in ["MY_KEY_1", "gsk_0123456789abcdefGHIJ"] {
        let e = parse(with_key_env(value)).unwrap_err();
        assert!(e.message.contains("not set"), "{e}");
        assert!(!e.to_string().contains(value), "{e}");
    }
}

fn with_key_env(var: &str) -> Value {
    json!({"providers": [{"name": "a", "kind": "openai", "base_url": "http://h", "api_key_env": var}]})
}

#[test]
fn names_must_fit_in_a_header() {
    for bad in ["a\nb", "a,b", "a=b", "a@b", "é", "\t", &"n".repeat(129)] {
        let e = parse(with("name", json!(bad))).unwrap_err();
        assert_eq!(e.field, "providers[0].name", "{bad:?}");
    }
    let c = parse(with("name", json!("openai east-1 (primary)"))).unwrap();
    assert_eq!(c.providers[0].name, "openai east-1 (primary)");
}

#[test]
fn health_settings() {
    let base = || json!({"providers": [provider("a")]});
    assert_eq!(parse(base()).unwrap().health, Some(HealthConfig::default()));
    let mut v = base();
    v["health"] = json!(false);
    assert_eq!(parse(v).unwrap().health, None);
    let mut v = base();
    v["health"] = json!({"window_s": 10, "consecutive_failures": 2, "max_error_rate": 0.25});
    let h = parse(v).unwrap().health.unwrap();
    assert_eq!(
        (h.window, h.consecutive_failures, h.max_error_rate),
        (Duration::from_secs(10), 2, 0.25)
    );
    assert_eq!(h.buckets, 10);
    for (bad, field) in [
        (json!("on"), "health"),
        (json!({"window": 5}), "health.window"),
        (json!({"buckets": 0}), "health.buckets"),
        (json!({"max_error_rate": 0}), "health.max_error_rate"),
        (json!({"max_error_rate": 1.5}), "health.max_error_rate"),
        (
            json!({"consecutive_failures": -1}),
            "health.consecutive_failures",
        ),
        (
            json!({"ejection_s": 60, "max_ejection_s": 30}),
            "health.max_ejection_s",
        ),
    ] {
        let mut v = base();
        v["health"] = bad.clone();
        let e = parse(v).unwrap_err();
        assert_eq!(e.field, field, "{bad}: {e}");
    }
}

/// Every kind of refusal, each with a secret-like value where the
/// config has a value: neither the message nor the field repeats it.
#[test]
fn no_message_repeats_a_value() {
    const PLANTED: &str = "sk-PLANTED0123456789";
    let p = |key: &str, value: Value| with(key, value);
    let top = |key: &str, value: Value| {
        let mut v = json!({"providers": [provider("a")]});
        v[key] = value;
        v
    };
    let s = PLANTED;
    let cases = [
        p("kind", json!(s)),
        p("kind", json!(format!("openai{s}"))),
        p("base_url", json!(s)),
        p("base_url", json!(format!("{s}.example.com/v1"))),
        p("base_url", json!(format!("https://{s}.test/v 1"))),
        p("base_url", json!(format!("https://{s}.test\\v1"))),
        p("base_url", json!(format!("https://{s}.test:99999/v1"))),
        p("base_url", json!(format!("ftp://{s}.test/v1"))),
        p("base_url", json!(format!("https://[{s}]/v1"))),
        p("base_url", json!(format!("https://h.test/{s}?k=1"))),
        p(
            "base_url",
            json!(format!("https://h.test/{}{s}", "a".repeat(3000))),
        ),
        p("api_key_env", json!(s)),
        p("api_key_env", json!("sk_PLANTED0123456789")),
        p("api_key", json!(format!("{s}\n"))),
        p("name", json!(format!("{s}\n"))),
        p("model", json!(7)),
        p("headers", json!({ s: "v\n" })),
        p("headers", json!({ "x-a": format!("{s}\n") })),
        p("headers", json!({ "x-a": 5 })),
        p("headers", json!({ "Proxy-sk-PLANTED0123456789": "v" })),
        p("headers", json!({ format!("{s} x"): "v" })),
        p(s, json!(1)),
        p(&format!("timeout{s}"), json!(1)),
        top(s, json!(1)),
        top("policy", json!(s)),
        top("health", json!({ s: 1 })),
        top("quality", json!({ s: 1 })),
        top("quality", json!({"on_failure": s})),
        top("hedge_delay_ms", json!(s)),
        top("hedge_budget", json!(s)),
        top("health", json!(s)),
        json!({"providers": [provider("sk-PLANTED0123456789"), provider("sk-PLANTED0123456789")]}),
        json!({"providers": s}),
        json!({"providers": [s]}),
        json!(s),
    ];
    for value in cases {
        let e = parse(value.clone()).expect_err(&value.to_string());
        assert!(
            !e.to_string().contains("PLANTED"),
            "{value}: the error repeats a value: {e}"
        );
    }
}

#[test]
fn unknown_keys_are_numbered_with_a_suggestion() {
    let mut v = with("tiemout_ms", json!(5));
    let e = parse(v.clone()).unwrap_err();
    assert_eq!(e.field, "providers[0].#5");
    assert!(
        e.message
            .starts_with("unknown key (did you mean timeout_ms?); expected one of: name, kind,"),
        "{e}"
    );
    v["polcy"] = json!("hedged");
    let e = parse(v).unwrap_err();
    assert_eq!(e.field, "config.#2");
    assert!(
        e.message.starts_with("unknown key (did you mean policy?)"),
        "{e}"
    );
    let e = parse(json!({"providers": [provider("a")], "health": {"x": 1}})).unwrap_err();
    assert_eq!(e.field, "health.#1");
    assert!(
        e.message
            .starts_with("unknown key; expected one of: window_s,"),
        "{e}"
    );
}

#[test]
fn json_text_refuses_repeated_keys() {
    let env = |_: &str| None;
    let text = r#"{"providers": [{"name": "a", "kind": "openai", "base_url": "http://h", "api_key": "k", "api_key": "sk-PLANTED"}]}"#;
    let e = RouterConfig::from_json_text(text, &env, HostLimits::default()).unwrap_err();
    assert_eq!(e.field, "providers[0].api_key");
    assert!(e.message.contains("given twice"), "{e}");
    assert!(!e.to_string().contains("PLANTED"), "{e}");
    let ok = text.replace(r#", "api_key": "sk-PLANTED""#, "");
    assert!(RouterConfig::from_json_text(&ok, &env, HostLimits::default()).is_ok());
}

#[test]
fn host_limit_on_hedge_k() {
    let ps: Vec<Value> = (0..8).map(|i| provider(&format!("p{i}"))).collect();
    let v = json!({"providers": ps, "policy": "hedged", "hedge_k": 7});
    let limits = HostLimits {
        max_hedge_k: 6,
        ..HostLimits::default()
    };
    let e = RouterConfig::from_json(&v, &|_| None, limits).unwrap_err();
    assert!(e.message.contains("at most 6"), "{e}");
}

#[test]
fn host_default_max_body_bytes_applies_where_a_provider_sets_none() {
    let limits = HostLimits {
        default_max_body_bytes: 1234,
        ..HostLimits::default()
    };
    let mut own = provider("b");
    own["max_body_bytes"] = json!(99);
    let v = json!({"providers": [provider("a"), own]});
    let c = RouterConfig::from_json(&v, &|_| None, limits).unwrap();
    assert_eq!(c.providers[0].max_body_bytes, 1234);
    assert_eq!(c.providers[1].max_body_bytes, 99);
}

#[test]
fn failover_settings_resolve_per_deployment() {
    use crate::failover::UpstreamError;
    let c = parse(json!({
        "providers": [provider("a"), provider("b")],
        "failover_on": [404], "retries": 1, "backoff_ms": 50,
        "models": {
            "g": {"deployments": [
                {"provider": "a", "failover_on": ["model_not_found"], "retries": 3},
                {"provider": "b"}
            ], "failover_on": [401], "backoff_max_ms": 400},
            "h": [{"provider": "a"}]
        }
    }))
    .unwrap();
    let d = &c.table.deployments;
    let any = UpstreamError::read(b"{}");
    let coded = UpstreamError::read(br#"{"error":{"code":"model_not_found"}}"#);
    // failover_on adds up: router, group, deployment.
    assert!(d[0].failover_on.matches(404, &any) && d[0].failover_on.matches(401, &any));
    assert!(d[0].failover_on.matches(400, &coded));
    assert!(d[1].failover_on.matches(401, &any) && !d[1].failover_on.matches(400, &coded));
    assert!(d[2].failover_on.matches(404, &any) && !d[2].failover_on.matches(401, &any));
    // Each retry field from the nearest level that sets it.
    let ms = Duration::from_millis;
    assert_eq!(
        (
            d[0].retry.retries,
            d[0].retry.backoff,
            d[0].retry.backoff_max
        ),
        (3, ms(50), ms(400))
    );
    assert_eq!((d[1].retry.retries, d[1].retry.backoff_max), (1, ms(400)));
    assert_eq!(
        (d[2].retry.retries, d[2].retry.backoff_max),
        (1, crate::retry::DEFAULT_BACKOFF_MAX)
    );
    // Without a table, the router's apply to every provider.
    let c = parse(json!({"providers": [provider("a")], "retries": 2})).unwrap();
    assert_eq!(c.table.deployments[0].retry.retries, 2);
    assert!(c.table.deployments[0].failover_on.is_empty());
}

#[test]
fn failover_errors_name_their_level() {
    let cases = [
        (json!({"failover_on": [200]}), "failover_on[0]"),
        (json!({"retries": 11}), "retries"),
        (
            json!({"models": {"g": {"deployments": [{"provider": "a"}], "backoff_ms": 9000}}}),
            "models[\"g\"].backoff_ms",
        ),
        (
            json!({"models": {"g": [{"provider": "a", "failover_on": "404"}]}}),
            "models[\"g\"][0].failover_on",
        ),
    ];
    for (extra, field) in cases {
        let mut v = extra.clone();
        v["providers"] = json!([provider("a")]);
        let e = parse(v.clone()).unwrap_err();
        assert_eq!(e.field, field, "{extra}");
        // check reports it too, as from_json's first error.
        let r = RouterConfig::check_json(&v, &|_| None, HostLimits::default());
        assert_eq!(r.errors[0].error, e, "{extra}");
    }
}

#[test]
fn unsupported_params_resolves_per_deployment_and_names_a_bad_value() {
    use crate::codec::params::UnsupportedParams::{Drop, Error};
    let c = parse(json!({
        "providers": [provider("a"), provider("b")],
        "unsupported_params": "drop",
        "models": {
            "g": {"deployments": [
                {"provider": "a", "unsupported_params": "error"},
                {"provider": "b"}
            ]},
            "h": {"deployments": [{"provider": "a"}], "unsupported_params": "error"},
            "i": [{"provider": "b"}]
        }
    }))
    .unwrap();
    let modes: Vec<_> = c
        .table
        .deployments
        .iter()
        .map(|d| d.unsupported_params)
        .collect();
    assert_eq!(modes, [Error, Drop, Error, Drop]);
    // The default, and without a table the router's.
    let c = parse(json!({"providers": [provider("a")]})).unwrap();
    assert_eq!(c.table.deployments[0].unsupported_params, Error);
    let c = parse(json!({"providers": [provider("a")], "unsupported_params": "drop"})).unwrap();
    assert_eq!(c.table.deployments[0].unsupported_params, Drop);
    // Every bad value at once, each by its key path.
    let v = json!({
        "providers": [provider("a")],
        "unsupported_params": "ignore",
        "models": {
            "g": {"deployments": [{"provider": "a", "unsupported_params": true}],
                  "unsupported_params": "Drop"}
        }
    });
    let e = parse(v.clone()).unwrap_err();
    assert_eq!(e.field, "unsupported_params");
    assert!(e.message.contains("\"error\"") && e.message.contains("\"drop\""));
    let r = RouterConfig::check_json(&v, &|_| None, HostLimits::default());
    let fields: Vec<&str> = r.errors.iter().map(|p| p.error.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "unsupported_params",
            "models[\"g\"].unsupported_params",
            "models[\"g\"].deployments[0].unsupported_params"
        ]
    );
}

#[test]
fn forward_headers_at_both_levels() {
    let v = json!({
        "providers": [provider("a")],
        "forward_headers": ["X-Request-Id", "Authorization"],
        "models": {
            "own": {"deployments": [{"provider": "a"}], "forward_headers": ["x-b"]},
            "inherits": [{"provider": "a"}]
        }
    });
    let c = parse(v.clone()).unwrap();
    let lists: Vec<&[String]> = c.table.groups.iter().map(|g| &*g.forward_headers).collect();
    assert_eq!(
        lists,
        [&["x-b".to_owned()][..], &["x-request-id".to_owned()][..]]
    );
    assert!(c.table.forwards_header("X-B") && !c.table.forwards_header("authorization"));
    // Listed but never forwarded: a warning, not an error.
    let r = RouterConfig::check_json(&v, &|_| None, HostLimits::default());
    let warned: Vec<&str> = r.warnings.iter().map(|p| p.error.field.as_str()).collect();
    assert_eq!(warned, ["forward_headers[1]"]);
    // Without `models`, the one implicit group forwards the router's list.
    let c = parse(json!({"providers": [provider("a")], "forward_headers": ["x-a"]})).unwrap();
    assert!(c.table.any_forward_headers());
    let c = parse(json!({"providers": [provider("a")]})).unwrap();
    assert!(!c.table.any_forward_headers());
}

#[test]
fn forward_headers_errors_all_at_once_by_key_path() {
    let v = json!({
        "providers": [provider("a")],
        "forward_headers": ["ok", "not a name"],
        "models": {
            "g": {"deployments": [{"provider": "a"}], "forward_headers": "x-a"},
            "h": {"deployments": [{"provider": "a"}], "forward_headers": ["x:y"]}
        }
    });
    let r = RouterConfig::check_json(&v, &|_| None, HostLimits::default());
    let fields: Vec<&str> = r.errors.iter().map(|p| p.error.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "forward_headers[1]",
            "models[\"g\"].forward_headers",
            "models[\"h\"].forward_headers[0]"
        ]
    );
    assert_eq!(parse(v).unwrap_err().field, "forward_headers[1]");
}
