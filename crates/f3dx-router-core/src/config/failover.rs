//! The failover keys, read at any level (router, group, deployment):
//! `failover_on`, `retries`, `backoff_ms`, `backoff_max_ms`, and
//! `unsupported_params` (whether a deployment that cannot carry a request's
//! parameter is passed over or sent the request without it).
//!
//! Each reader takes the object the keys are in and its key path `at`
//! (`""` at the router's level, `models["gpt-4o"][1]` for a deployment), and
//! names `at.key` (or `at.failover_on[i]`) on an error, never the value.

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{err, ConfigError};
use super::values::opt_uint;
use crate::codec::params::UnsupportedParams;
use crate::failover::FailoverOn;
use crate::retry::RetryPolicy;

/// The most entries in one `failover_on`.
pub const MAX_FAILOVER_ON: usize = 64;

/// The longest error code in `failover_on`, in bytes.
pub const MAX_CODE_BYTES: usize = 128;

/// The most `retries`.
pub const MAX_RETRIES: u64 = 10;

/// The longest `backoff_ms` (a minute).
pub const MAX_BACKOFF_MS: u64 = 60_000;

/// The longest `backoff_max_ms` (five minutes, the longest cooldown a
/// `Retry-After` can ask for).
pub const MAX_BACKOFF_MAX_MS: u64 = 300_000;

/// `at.key`, or `key` at the top.
fn field(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

/// `at.failover_on`, if given: a list of at most [`MAX_FAILOVER_ON`]
/// statuses (integers 400-599) and error codes (non-empty strings of at
/// most [`MAX_CODE_BYTES`] bytes).
pub fn failover_on(obj: &Map<String, Value>, at: &str) -> Result<Option<FailoverOn>, ConfigError> {
    let key = field(at, "failover_on");
    let list =
        match obj.get("failover_on") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(err(
                key,
                "must be a list of statuses (integers from 400 to 599) and error codes (strings)",
            )),
        };
    if list.len() > MAX_FAILOVER_ON {
        return Err(err(key, format!("has more than {MAX_FAILOVER_ON} entries")));
    }
    let mut on = FailoverOn::default();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("{key}[{i}]");
        match entry {
            Value::Number(n) => {
                let status = n.as_u64().and_then(|s| u16::try_from(s).ok());
                if !status.is_some_and(|s| on.add_status(s)) {
                    return Err(err(
                        at,
                        "must be a status from 400 to 599 (a whole number) or an error code",
                    ));
                }
            }
            Value::String(code) if code.trim().is_empty() => {
                return Err(err(
                    at,
                    "is empty: give an error code such as model_not_found",
                ))
            }
            Value::String(code) if code.len() > MAX_CODE_BYTES => {
                return Err(err(at, format!("is longer than {MAX_CODE_BYTES} bytes")))
            }
            Value::String(code) => on.add_code(code.as_str()),
            _ => {
                return Err(err(
                    at,
                    "must be a status (an integer from 400 to 599) or an error code (a string)",
                ))
            }
        }
    }
    Ok(Some(on))
}

/// `at.retries`, if given: from 0 to [`MAX_RETRIES`].
pub fn retries(obj: &Map<String, Value>, at: &str) -> Result<Option<u32>, ConfigError> {
    let key = field(at, "retries");
    match opt_uint(obj, "retries", &key)? {
        None => Ok(None),
        // At most MAX_RETRIES: it fits.
        Some(n) if n <= MAX_RETRIES => Ok(Some(n as u32)),
        Some(_) => Err(err(key, format!("must be between 0 and {MAX_RETRIES}"))),
    }
}

/// A number of milliseconds from `min` to `max`, if given.
fn millis(
    obj: &Map<String, Value>,
    at: &str,
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<Duration>, ConfigError> {
    let key = field(at, name);
    match opt_uint(obj, name, &key)? {
        None => Ok(None),
        Some(ms) if (min..=max).contains(&ms) => Ok(Some(Duration::from_millis(ms))),
        Some(_) => Err(err(key, format!("must be between {min} and {max}"))),
    }
}

/// `at.backoff_ms`, if given: from 1 to [`MAX_BACKOFF_MS`].
pub fn backoff_ms(obj: &Map<String, Value>, at: &str) -> Result<Option<Duration>, ConfigError> {
    millis(obj, at, "backoff_ms", 1, MAX_BACKOFF_MS)
}

/// `at.backoff_max_ms`, if given: from 1 to [`MAX_BACKOFF_MAX_MS`] (that it
/// is at least the backoff is [`retry_policy`]'s check).
pub fn backoff_max_ms(obj: &Map<String, Value>, at: &str) -> Result<Option<Duration>, ConfigError> {
    millis(obj, at, "backoff_max_ms", 1, MAX_BACKOFF_MAX_MS)
}

/// The retry policy at `at`: its `retries`, `backoff_ms` and
/// `backoff_max_ms` over `inherited` (the level above's, or
/// [`RetryPolicy::default`] at the router). The cap must be at least the
/// backoff in effect here; the error names the key given at this level
/// (the cap, when both are).
pub fn retry_policy(
    obj: &Map<String, Value>,
    at: &str,
    inherited: RetryPolicy,
) -> Result<RetryPolicy, ConfigError> {
    let retries = retries(obj, at)?;
    let backoff = backoff_ms(obj, at)?;
    let backoff_max = backoff_max_ms(obj, at)?;
    let policy = RetryPolicy {
        retries: retries.unwrap_or(inherited.retries),
        backoff: backoff.unwrap_or(inherited.backoff),
        backoff_max: backoff_max.unwrap_or(inherited.backoff_max),
    };
    if policy.backoff_max < policy.backoff {
        return Err(match backoff_max {
            Some(_) => err(
                field(at, "backoff_max_ms"),
                "must be at least backoff_ms (the backoff in effect here)",
            ),
            None => err(
                field(at, "backoff_ms"),
                "must be at most backoff_max_ms (the cap in effect here, 5000 by default): \
                 raise backoff_max_ms too",
            ),
        });
    }
    Ok(policy)
}

/// `at.unsupported_params`, if given: `"error"` or `"drop"`.
pub fn unsupported_params(
    obj: &Map<String, Value>,
    at: &str,
) -> Result<Option<UnsupportedParams>, ConfigError> {
    match obj.get("unsupported_params") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "error" => Ok(Some(UnsupportedParams::Error)),
        Some(Value::String(s)) if s == "drop" => Ok(Some(UnsupportedParams::Drop)),
        Some(_) => Err(err(
            field(at, "unsupported_params"),
            "must be \"error\" (a deployment that cannot carry a parameter of the request is \
             skipped) or \"drop\" (the parameter is removed for it, and the attempt records it)",
        )),
    }
}

/// The failover settings in effect at one level of a config, resolved
/// over the level above: `failover_on` lists add up (a deployment's extends
/// its group's, which extends the router's), the retry policy's fields
/// and `unsupported_params` are each the nearest level's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverLevel {
    /// Statuses and codes made soft, from this level and those above.
    pub failover_on: FailoverOn,
    /// The retry policy in effect here.
    pub retry: RetryPolicy,
    /// What a parameter the deployment's kind cannot carry does.
    pub unsupported_params: UnsupportedParams,
}

impl FailoverLevel {
    /// The settings at `at` (the keys of `obj`) over `inherited`.
    pub fn read(
        obj: &Map<String, Value>,
        at: &str,
        inherited: &FailoverLevel,
    ) -> Result<FailoverLevel, ConfigError> {
        let mut on = inherited.failover_on.clone();
        if let Some(own) = failover_on(obj, at)? {
            on.extend(&own);
        }
        Ok(FailoverLevel {
            failover_on: on,
            retry: retry_policy(obj, at, inherited.retry)?,
            unsupported_params: unsupported_params(obj, at)?
                .unwrap_or(inherited.unsupported_params),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::UpstreamError;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const DEPLOYMENT: &str = r#"models["gpt-4o"][1]"#;

    fn on_err(v: Value, at: &str) -> ConfigError {
        failover_on(&obj(json!({ "failover_on": v })), at).unwrap_err()
    }

    #[test]
    fn failover_on_reads_statuses_and_codes() {
        let on = failover_on(
            &obj(json!({"failover_on": [404, "model_not_found", 401, 599, 400]})),
            "",
        )
        .unwrap()
        .unwrap();
        let none = UpstreamError::default();
        for s in [400, 401, 404, 599] {
            assert!(on.matches(s, &none), "{s}");
        }
        assert!(!on.matches(403, &none));
        let coded = UpstreamError::read(br#"{"error":{"code":"model_not_found"}}"#);
        assert!(on.matches(403, &coded));
        // Absent or null: not set (the level above applies).
        assert_eq!(failover_on(&obj(json!({})), "").unwrap(), None);
        assert_eq!(
            failover_on(&obj(json!({"failover_on": null})), "").unwrap(),
            None
        );
        // Empty: set, and nothing is soft.
        let empty = failover_on(&obj(json!({"failover_on": []})), "")
            .unwrap()
            .unwrap();
        assert!(empty.is_empty());
        // The limits themselves are allowed.
        let full: Vec<Value> = (0..MAX_FAILOVER_ON).map(|i| json!(400 + i)).collect();
        assert!(failover_on(&obj(json!({"failover_on": full})), "").is_ok());
        let long = "c".repeat(MAX_CODE_BYTES);
        assert!(failover_on(&obj(json!({"failover_on": [long]})), "").is_ok());
    }

    #[test]
    fn failover_on_errors_name_the_entry() {
        let e = on_err(json!([404, "x", 302]), DEPLOYMENT);
        assert_eq!(e.field, r#"models["gpt-4o"][1].failover_on[2]"#);
        assert!(e.message.contains("400 to 599"), "{}", e.message);
        for bad in [
            json!(399),
            json!(600),
            json!(0),
            json!(-404),
            json!(404.5),
            json!(70000),
            json!(u64::MAX),
        ] {
            let e = on_err(json!([bad]), "");
            assert_eq!(e.field, "failover_on[0]");
        }
        // 404.0 is no integer to serde_json: refused, not read as 404.
        assert_eq!(on_err(json!([404.0]), "").field, "failover_on[0]");
        for bad in [
            json!(""),
            json!("  "),
            json!(true),
            json!(null),
            json!([404]),
            json!({"code": "x"}),
        ] {
            let e = on_err(json!(["model_not_found", bad]), "models[\"m\"]");
            assert_eq!(e.field, "models[\"m\"].failover_on[1]");
        }
        let e = on_err(json!(["c".repeat(MAX_CODE_BYTES + 1)]), "");
        assert!(e.message.contains("128 bytes"));
        // Not a list.
        for bad in [json!(404), json!("model_not_found"), json!({}), json!(true)] {
            assert_eq!(
                on_err(bad, DEPLOYMENT).field,
                format!("{DEPLOYMENT}.failover_on")
            );
        }
        // Too many entries.
        let many: Vec<Value> = (0..=MAX_FAILOVER_ON).map(|_| json!(404)).collect();
        let e = on_err(json!(many), "");
        assert_eq!(e.field, "failover_on");
        assert!(e.message.contains("64"));
    }

    #[test]
    fn errors_never_quote_values() {
        let secret = "sk-live-0123456789abcdef";
        for v in [
            json!([secret.repeat(10)]),
            json!([{ "k": secret }]),
            json!(secret),
        ] {
            let e = on_err(v, "");
            assert!(!e.to_string().contains("sk-live"), "{e}");
        }
        for key in ["retries", "backoff_ms", "backoff_max_ms"] {
            let e =
                retry_policy(&obj(json!({ key: secret })), "", RetryPolicy::default()).unwrap_err();
            assert_eq!(e.field, key);
            assert!(!e.to_string().contains("sk-live"), "{e}");
        }
    }

    #[test]
    fn retries_range() {
        assert_eq!(retries(&obj(json!({})), "").unwrap(), None);
        assert_eq!(retries(&obj(json!({"retries": 0})), "").unwrap(), Some(0));
        assert_eq!(retries(&obj(json!({"retries": 10})), "").unwrap(), Some(10));
        for bad in [
            json!(11),
            json!(-1),
            json!(1.5),
            json!("3"),
            json!(u64::MAX),
            json!([1]),
        ] {
            let e = retries(&obj(json!({ "retries": bad })), DEPLOYMENT).unwrap_err();
            assert_eq!(e.field, format!("{DEPLOYMENT}.retries"));
        }
    }

    #[test]
    fn backoff_ranges() {
        let get = |v: Value| backoff_ms(&obj(json!({ "backoff_ms": v })), "g");
        assert_eq!(get(json!(1)).unwrap(), Some(Duration::from_millis(1)));
        assert_eq!(
            get(json!(60_000)).unwrap(),
            Some(Duration::from_millis(60_000))
        );
        for bad in [json!(0), json!(60_001), json!(-5), json!(2.5), json!("100")] {
            assert_eq!(get(bad).unwrap_err().field, "g.backoff_ms");
        }
        let get = |v: Value| backoff_max_ms(&obj(json!({ "backoff_max_ms": v })), "");
        assert_eq!(get(json!(300_000)).unwrap(), Some(Duration::from_secs(300)));
        for bad in [json!(0), json!(300_001), json!(null)] {
            // null is "not given", not an error.
            match bad {
                Value::Null => assert_eq!(get(bad).unwrap(), None),
                bad => assert_eq!(get(bad).unwrap_err().field, "backoff_max_ms"),
            }
        }
    }

    #[test]
    fn policy_over_inherited() {
        let router = retry_policy(
            &obj(json!({"retries": 2, "backoff_ms": 200, "backoff_max_ms": 2000})),
            "",
            RetryPolicy::default(),
        )
        .unwrap();
        assert_eq!(router.retries, 2);
        assert_eq!(router.backoff, Duration::from_millis(200));
        assert_eq!(router.backoff_max, Duration::from_secs(2));
        // A deployment changing one key keeps the others.
        let d = retry_policy(&obj(json!({"retries": 5})), DEPLOYMENT, router).unwrap();
        assert_eq!(
            (d.retries, d.backoff, d.backoff_max),
            (5, router.backoff, router.backoff_max)
        );
        // Nothing set: the inherited policy, the defaults at the router.
        assert_eq!(
            retry_policy(&obj(json!({})), "", RetryPolicy::default()).unwrap(),
            RetryPolicy::default()
        );
        // Equal base and cap are fine.
        assert!(retry_policy(&obj(json!({"backoff_ms": 2000})), "g", router).is_ok());
    }

    #[test]
    fn cap_below_backoff() {
        // Both given here: the cap is named.
        let e = retry_policy(
            &obj(json!({"backoff_ms": 500, "backoff_max_ms": 100})),
            DEPLOYMENT,
            RetryPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, format!("{DEPLOYMENT}.backoff_max_ms"));
        // The cap below an inherited backoff.
        let base = RetryPolicy {
            backoff: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let e = retry_policy(&obj(json!({"backoff_max_ms": 999})), "g", base).unwrap_err();
        assert_eq!(e.field, "g.backoff_max_ms");
        // A backoff above the default cap, without a cap: the backoff is named.
        let e = retry_policy(
            &obj(json!({"backoff_ms": 6000})),
            "",
            RetryPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, "backoff_ms");
        assert!(e.message.contains("backoff_max_ms"));
    }
}
