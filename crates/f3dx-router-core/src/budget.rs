//! Per-provider rate budgets: token buckets with continuous refill, for
//! requests per minute (`rpm`) and tokens per minute (`tpm`).
//!
//! A call reserves one request and an estimate of its tokens before it
//! sends; the estimate is corrected with the answer's `usage`, and given
//! back when the attempt did not succeed. A provider whose bucket cannot
//! take the call is skipped like a cooling one. Time is a value: a bucket
//! refills lazily, at the next look.
//!
//! Beside them, the router-wide [`HedgeBudget`]: what pays for extra
//! hedged legs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::HEDGE_BUDGET_CAP;
use crate::time::Instant;

/// The hedge budget, after tower's retry budget: every call deposits its
/// share (`hedge_budget` tokens), every extra leg that is not a failover
/// withdraws one whole token, and the balance is capped at
/// [`HEDGE_BUDGET_CAP`]. It starts full, as gRPC's retry throttle does, so
/// a new router may hedge its first calls. Lock-free: every hedged call
/// touches it.
#[derive(Debug)]
pub struct HedgeBudget {
    /// What each call deposits, in thousandths of a token.
    per_call: u64,
    /// The balance, in thousandths of a token.
    balance: AtomicU64,
}

/// Thousandths of a token: the hedge budget counts in these.
const MILLI: f64 = 1000.0;
/// One whole token, and the cap, in thousandths.
const ONE: u64 = MILLI as u64;
const CAP: u64 = (HEDGE_BUDGET_CAP * MILLI) as u64;

impl HedgeBudget {
    /// A full budget to which each call adds `per_call` tokens.
    pub fn new(per_call: f64) -> Self {
        HedgeBudget {
            per_call: (per_call * MILLI).round() as u64,
            balance: AtomicU64::new(CAP),
        }
    }

    /// A call started: add its share, up to the cap.
    pub fn deposit(&self) {
        let add = self.per_call;
        if add == 0 {
            return;
        }
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t < CAP).then(|| (t + add).min(CAP))
            });
    }

    /// Take one token for an extra leg: `false` if the balance holds less.
    pub fn withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(ONE))
            .is_ok()
    }

    /// Give back a token withdrawn for a leg that did not start.
    pub fn refund(&self) {
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some((t + ONE).min(CAP))
            });
    }

    /// Spend every token (a study's empty start).
    #[cfg(any(test, feature = "study"))]
    pub fn drain(&self) {
        self.balance.store(0, Ordering::Relaxed);
    }
}

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
    prompt_tokens(body).saturating_add(max_completion(body).unwrap_or(DEFAULT_COMPLETION_TOKENS))
}

/// What a request needs of a context window: its prompt's estimate plus
/// the completion it asks room for (`max_completion_tokens` or
/// `max_tokens`; none when it sets neither).
pub fn context_tokens(body: &Map<String, Value>) -> u64 {
    prompt_tokens(body).saturating_add(max_completion(body).unwrap_or(0))
}

fn max_completion(body: &Map<String, Value>) -> Option<u64> {
    ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
}

/// The characters of a request's messages' text over four.
fn prompt_tokens(body: &Map<String, Value>) -> u64 {
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
    body.get("messages").map_or(0, chars) as u64 / 4
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

    #[test]
    fn hedge_budget_starts_full_pays_whole_tokens_and_caps_deposits() {
        let b = HedgeBudget::new(0.5);
        let full = HEDGE_BUDGET_CAP as usize;
        for _ in 0..full {
            assert!(b.withdraw());
        }
        assert!(!b.withdraw(), "empty after the starting tokens");
        b.deposit();
        assert!(!b.withdraw(), "half a token pays for nothing");
        b.deposit();
        assert!(b.withdraw(), "two calls' shares pay for one leg");
        b.refund();
        assert!(b.withdraw(), "a refunded token pays again");
        for _ in 0..1000 {
            b.deposit();
        }
        let mut paid = 0;
        while b.withdraw() {
            paid += 1;
        }
        assert_eq!(paid, full, "deposits stop at the cap");
    }

    #[test]
    fn a_zero_share_never_refills() {
        let b = HedgeBudget::new(0.0);
        b.drain();
        for _ in 0..100 {
            b.deposit();
        }
        assert!(!b.withdraw());
    }
}
