//! The router-level `health` and `quality` settings: what the router
//! watches about its providers.

use std::time::Duration;

use serde_json::Value;

use super::error::{err, ConfigError};
use super::keys::{reject_unknown, HEALTH_KEYS, QUALITY_KEYS};
use super::values::{ranged, rate, settings, Settings};
use crate::quality::{OnFailure, QualityConfig};

/// `quality`: absent or `true` for the defaults, `false` for none, or an
/// object overriding some of them.
pub(super) fn parse_quality(value: Option<&Value>) -> Result<Option<QualityConfig>, ConfigError> {
    let obj = match settings(value, "quality")? {
        Settings::Off => return Ok(None),
        Settings::Defaults => return Ok(Some(QualityConfig::default())),
        Settings::Object(o) => o,
    };
    reject_unknown(obj, "quality", QUALITY_KEYS)?;
    let d = QualityConfig::default();
    let int = |key: &str, min: u64, max: u64| ranged(obj, "quality", key, min, max);
    let window = int("window", 1, 10_000)?.map_or(d.window, |n| n as u32);
    let min_samples = int("min_samples", 1, 10_000)?.map_or(d.min_samples, |n| n as u32);
    if min_samples > window {
        return Err(err("quality.min_samples", "must be at most quality.window"));
    }
    let probe_after = int("probe_after_s", 1, 86_400)?.map_or(d.probe_after, Duration::from_secs);
    let max_keys = int("max_keys", 1, 10_000_000)?.map_or(d.max_keys, |n| n as usize);
    // From 1 MiB (a key of the longest tenant and model fits many times) to
    // 16 GiB.
    let max_bytes = int("max_bytes", 1 << 20, 1 << 34)?.unwrap_or(d.max_bytes);
    let min_pass_rate = rate(obj, "quality", "min_pass_rate")?.unwrap_or(d.min_pass_rate);
    let on_failure = match obj.get("on_failure") {
        None | Some(Value::Null) => d.on_failure,
        Some(Value::String(s)) if s == "return" => OnFailure::Return,
        Some(Value::String(s)) if s == "failover" => OnFailure::Failover,
        Some(_) => {
            return Err(err(
                "quality.on_failure",
                "must be \"return\" (the caller gets a failing answer) or \"failover\" (the next provider is tried)",
            ))
        }
    };
    Ok(Some(QualityConfig {
        window,
        min_samples,
        min_pass_rate,
        probe_after,
        on_failure,
        max_keys,
        max_bytes,
    }))
}

/// `health`: absent or `true` for the defaults, `false` for none, or an
/// object overriding some of them.
pub(super) fn parse_health(value: Option<&Value>) -> Result<Option<HealthConfig>, ConfigError> {
    let obj = match settings(value, "health")? {
        Settings::Off => return Ok(None),
        Settings::Defaults => return Ok(Some(HealthConfig::default())),
        Settings::Object(o) => o,
    };
    reject_unknown(obj, "health", HEALTH_KEYS)?;
    let d = HealthConfig::default();
    let int = |key: &str, min: u64, max: u64| ranged(obj, "health", key, min, max);
    let secs = |n: u64| Duration::from_secs(n);
    let window = int("window_s", 1, 86_400)?.map_or(d.window, secs);
    let buckets = int("buckets", 1, 1000)?.map_or(d.buckets, |n| n as u32);
    let min_requests = int("min_requests", 1, 1_000_000)?.map_or(d.min_requests, |n| n as u32);
    let consecutive_failures =
        int("consecutive_failures", 1, 1_000_000)?.map_or(d.consecutive_failures, |n| n as u32);
    let ejection = int("ejection_s", 1, 86_400)?.map_or(d.ejection, secs);
    let max_ejection = int("max_ejection_s", 1, 86_400)?.map_or(d.max_ejection, secs);
    if max_ejection < ejection {
        return Err(err("health.max_ejection_s", "must be at least ejection_s"));
    }
    let max_error_rate = rate(obj, "health", "max_error_rate")?.unwrap_or(d.max_error_rate);
    Ok(Some(HealthConfig {
        window,
        buckets,
        min_requests,
        max_error_rate,
        consecutive_failures,
        ejection,
        max_ejection,
    }))
}

/// The `health` settings of a router.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthConfig {
    /// Length of the outcome window.
    pub window: Duration,
    /// Buckets the window is kept in (it slides a bucket at a time).
    pub buckets: u32,
    /// Outcomes the window needs before its error rate may eject.
    pub min_requests: u32,
    /// Error rate (soft failures / outcomes) that ejects.
    pub max_error_rate: f64,
    /// Soft failures in a row that eject.
    pub consecutive_failures: u32,
    /// First ejection's length; each ejection in a row lasts one more of it.
    pub ejection: Duration,
    /// Longest ejection.
    pub max_ejection: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            window: Duration::from_secs(60),
            buckets: 10,
            min_requests: 20,
            max_error_rate: 0.5,
            consecutive_failures: 5,
            ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
        }
    }
}
