//! Per-provider rate budgets: token buckets with continuous refill, for
//! requests per minute (`rpm`) and tokens per minute (`tpm`).
//!
//! A call reserves one request and an estimate of its tokens before it
//! sends; the estimate is corrected with the answer's `usage`, and given
//! back when the attempt did not succeed. A provider whose bucket cannot
//! take the call is skipped like a cooling one. Time is a value: a bucket
//! refills lazily, at the next look.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::time::Instant;

/// Completion tokens assumed for a request that gives no `max_tokens` (or
/// `max_completion_tokens`), in the `tpm` estimate.
pub const DEFAULT_COMPLETION_TOKENS: u64 = 512;

/// A token bucket: holds up to `capacity`, refills `capacity` per minute.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    capacity: f64,
    /// May go below zero when an answer used more than was reserved.
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket of `per_minute`.
    pub fn new(per_minute: u64) -> Self {
        Bucket {
            capacity: per_minute as f64,
            tokens: per_minute as f64,
            last: Instant::ZERO,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.last {
            let minutes = (now - self.last).as_secs_f64() / 60.0;
            self.tokens = (self.tokens + minutes * self.capacity).min(self.capacity);
            self.last = now;
        }
    }

    /// What it holds when full (its per-minute rate).
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// What is left at `now`.
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// Whether `n` could be taken at `now` (nothing is taken).
    pub fn can_take(&mut self, n: f64, now: Instant) -> bool {
        self.available(now) >= n.min(self.capacity)
    }

    /// Take `n` at `now`, if there is enough (a request larger than the
    /// whole bucket needs a full one).
    pub fn take(&mut self, n: f64, now: Instant) -> bool {
        if !self.can_take(n, now) {
            return false;
        }
        self.tokens -= n;
        true
    }

    /// Give back `n` (or take `-n` more), at most up to the capacity.
    pub fn adjust(&mut self, n: f64, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens + n).min(self.capacity);
    }

    /// How long until `n` could be taken.
    pub fn wait_for(&mut self, n: f64, now: Instant) -> Duration {
        let missing = n.min(self.capacity) - self.available(now);
        if missing <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(missing / self.capacity * 60.0)
    }
}

/// A request's tokens, estimated before sending: the characters of its
/// messages' text over four, plus `max_tokens` or `max_completion_tokens`
/// (else [`DEFAULT_COMPLETION_TOKENS`]).
pub fn estimate_tokens(body: &Map<String, Value>) -> u64 {
    fn chars(v: &Value) -> usize {
        match v {
            Value::String(s) => s.chars().count(),
            Value::Array(items) => items.iter().map(chars).sum(),
            Value::Object(o) => o
                .iter()
                .filter(|(k, _)| matches!(k.as_str(), "content" | "text"))
                .map(|(_, v)| chars(v))
                .sum(),
            _ => 0,
        }
    }
    let prompt = body.get("messages").map_or(0, chars) as u64 / 4;
    let completion = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
        .unwrap_or(DEFAULT_COMPLETION_TOKENS);
    prompt.saturating_add(completion)
}

/// The tokens an answer says it used (`usage.total_tokens`).
pub fn used_tokens(response: &Value) -> Option<u64> {
    response.get("usage")?.get("total_tokens")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(secs: f64) -> Instant {
        Instant::from_micros((secs * 1e6) as u64)
    }

    #[test]
    fn buckets_refill_continuously() {
        let mut b = Bucket::new(60); // one a second
        for _ in 0..60 {
            assert!(b.take(1.0, s(0.0)));
        }
        assert!(!b.take(1.0, s(0.0)));
        assert_eq!(b.wait_for(1.0, s(0.0)), Duration::from_secs(1));
        assert!(!b.take(1.0, s(0.5)));
        assert!(b.take(1.0, s(1.0)));
        assert!(
            (b.available(s(1000.0)) - 60.0).abs() < 1e-9,
            "never past the capacity"
        );
        // More than the whole bucket: needs a full one, then goes below 0.
        assert!(b.take(100.0, s(1000.0)));
        assert!(b.available(s(1000.0)) < 0.0);
        b.adjust(1000.0, s(1000.0));
        assert_eq!(b.available(s(1000.0)), 60.0);
    }

    #[test]
    fn token_estimates() {
        let body = json!({"messages": [{"role": "user", "content": "12345678"},
                                       {"role": "user", "content": [{"type": "text", "text": "abcd"}]}],
                          "max_tokens": 10});
        assert_eq!(estimate_tokens(body.as_object().unwrap()), 3 + 10);
        let body = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(
            estimate_tokens(body.as_object().unwrap()),
            DEFAULT_COMPLETION_TOKENS
        );
        let body = json!({"messages": [], "max_completion_tokens": 7, "max_tokens": 99});
        assert_eq!(estimate_tokens(body.as_object().unwrap()), 7);
        assert_eq!(
            used_tokens(&json!({"usage": {"total_tokens": 42}})),
            Some(42)
        );
        assert_eq!(used_tokens(&json!({})), None);
    }
}
