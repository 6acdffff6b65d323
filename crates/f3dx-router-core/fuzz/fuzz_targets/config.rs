//! `RouterConfig::from_json_text` on arbitrary bytes: never panics, whatever
//! the environment answers; a config's `Debug` never depends on its
//! secrets; an error never repeats a key that came from the environment,
//! nor any value of the input: a string holding `PLANTED` (the seeds put it
//! in every place a value or a key goes) never shows in an error.
#![no_main]

use f3dx_router_core::{HostLimits, RouterConfig, Secret};
use libfuzzer_sys::fuzz_target;

/// A key only the environment knows (unless the input spells it out).
const ENV_KEY: &str = "sk-env-7f3a9c1e5b2d4068";
/// In the seeds' values and keys; no message or key path has it.
const PLANTED: &str = "PLANTED";

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let input_has_key = text.contains(ENV_KEY);
    let fixed = |_: &str| Some(ENV_KEY.to_owned());
    // The variable's name becomes the key: keys the fuzzer controls,
    // including ones with line breaks or non-ASCII characters.
    let echo = |name: &str| Some(name.to_owned());
    let envs: [Env; 3] = [&|_| None, &fixed, &echo];
    for (i, env) in envs.into_iter().enumerate() {
        let limits = if i == 2 {
            HostLimits {
                max_hedge_k: 6,
                ..HostLimits::default()
            }
        } else {
            HostLimits::default()
        };
        match RouterConfig::from_json_text(text, env, limits) {
            Ok(config) => check(config),
            Err(e) => {
                if i == 1 && !input_has_key {
                    assert!(!e.to_string().contains(ENV_KEY), "key in error: {e}");
                }
                // Through the echoing environment the variable's name is
                // the key: not a value of the error either.
                assert!(!e.to_string().contains(PLANTED), "value in error: {e}");
            }
        }
    }
});

fn check(config: RouterConfig) {
    assert!(!config.providers.is_empty());
    let k = config.policy.max_in_flight();
    assert!(k >= 1 && k <= config.providers.len(), "{:?}", config.policy);
    for (i, p) in config.providers.iter().enumerate() {
        assert!(!p.name.is_empty());
        assert!(config.providers[..i].iter().all(|q| q.name != p.name));
        assert!(!p.api_key.expose().is_empty());
        assert!(p.base_url.starts_with("http://") || p.base_url.starts_with("https://"));
        assert!(!p.base_url.ends_with('/'));
        assert!(p.max_body_bytes >= 1 && !p.timeout.is_zero());
    }
    // Debug shows no secret: replacing every secret leaves it unchanged.
    let mut scrubbed = config.clone();
    for p in &mut scrubbed.providers {
        p.api_key = Secret::new("x");
        for (_, value) in &mut p.headers {
            *value = "x".to_owned();
        }
    }
    assert_eq!(format!("{config:?}"), format!("{scrubbed:?}"));
}
