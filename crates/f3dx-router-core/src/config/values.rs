//! Typed readers of one config value: each names the field on an error.

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{err, ConfigError};

/// A router-level settings key (`health`, `quality`).
pub(super) enum Settings<'a> {
    Off,
    Defaults,
    Object(&'a Map<String, Value>),
}

/// Absent, null or `true`: the defaults; `false`: off; an object: some
/// settings; anything else an error naming `key`.
pub(super) fn settings<'a>(
    value: Option<&'a Value>,
    key: &str,
) -> Result<Settings<'a>, ConfigError> {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(true)) => Ok(Settings::Defaults),
        Some(Value::Bool(false)) => Ok(Settings::Off),
        Some(Value::Object(o)) => Ok(Settings::Object(o)),
        Some(_) => Err(err(
            key,
            "must be an object of settings, true (the defaults) or false (off)",
        )),
    }
}

/// `at.key`: an integer from `min` to `max`, if given.
pub(super) fn ranged(
    obj: &Map<String, Value>,
    at: &str,
    key: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ConfigError> {
    let field = format!("{at}.{key}");
    match opt_uint(obj, key, &field)? {
        None => Ok(None),
        Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
        Some(_) => Err(err(field, format!("must be between {min} and {max}"))),
    }
}

/// `at.key`: a rate budget (`rpm`, `tpm`), 1 to a billion a minute, if
/// given.
pub(super) fn per_minute(
    obj: &Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<u64>, ConfigError> {
    let field = format!("{at}.{key}");
    match opt_uint(obj, key, &field)? {
        None => Ok(None),
        Some(n @ 1..=1_000_000_000) => Ok(Some(n)),
        Some(_) => Err(err(field, "must be between 1 and 1000000000 (per minute)")),
    }
}

/// `at.key`: a rate above 0 and at most 1, if given.
pub(super) fn rate(
    obj: &Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<f64>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(r) if r > 0.0 && r <= 1.0 => Ok(Some(r)),
            _ => Err(err(
                format!("{at}.{key}"),
                "must be a number above 0 and at most 1",
            )),
        },
    }
}

pub(super) fn opt_uint(
    obj: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<u64>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| err(field, "must be a non-negative integer")),
    }
}

/// A positive number of milliseconds, at most a day.
pub(super) fn opt_millis(
    obj: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<Duration>, ConfigError> {
    let field = if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    };
    match opt_uint(obj, key, &field)? {
        None => Ok(None),
        Some(ms @ 1..=86_400_000) => Ok(Some(Duration::from_millis(ms))),
        Some(_) => Err(err(field, "must be between 1 and 86400000 (a day)")),
    }
}

pub(super) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<&'a str>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(format!("{at}.{key}"), "must be a string")),
    }
}
