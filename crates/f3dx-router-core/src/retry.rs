//! Retries on the same deployment: how many, and how long to wait before
//! each (jittered exponential backoff, within a cap and a `Retry-After`).
//!
//! The core has no random source: the caller supplies the jitter, a `u64`
//! it draws or derives with [`jitter`] from a seed and a counter, so a run
//! is reproducible from its inputs (the virtual-clock vectors rely on it).

use std::time::Duration;

/// How a soft failure is retried on the same deployment before the call
/// moves on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: none, the default: the next
    /// deployment is the retry, as before this setting existed).
    pub retries: u32,
    /// The backoff before the first retry; it doubles for each further one.
    pub backoff: Duration,
    /// The longest wait before a retry. A `Retry-After` longer than this
    /// means the call moves on instead of waiting.
    pub backoff_max: Duration,
}

/// 100 ms: long enough for a blip (a reset connection, a 503 from a
/// restarting replica) to pass, short against a model call's own seconds.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);

/// 5 s: with the default base, the sixth retry reaches it
/// (100 ms * 2^5 = 3.2 s, then 5 s); waiting longer on one deployment
/// costs more than trying the next one, and a provider that asks for more
/// (`Retry-After`) is better left for its cooldown.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 0,
            backoff: DEFAULT_BACKOFF,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry), or
    /// `None` when there is to be no such retry here: `retry` is 0 or past
    /// [`RetryPolicy::retries`], or the upstream's `retry_after` is longer
    /// than the cap.
    ///
    /// Full jitter: a wait drawn evenly from zero to
    /// `min(cap, backoff * 2^(retry-1))`, with `jitter` as the draw (the
    /// whole `u64` range maps onto that span). Full rather than equal
    /// jitter because it spreads clients retrying after one shared failure
    /// the most, for the least total waiting ("Exponential Backoff And
    /// Jitter", AWS Architecture Blog, 2015); the wait it can draw near
    /// zero is a cheap retry of a soft failure. A `retry_after` within the
    /// cap is a floor: never retry sooner than the upstream asked.
    pub fn delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        jitter: u64,
    ) -> Option<Duration> {
        if retry == 0 || retry > self.retries {
            return None;
        }
        let cap = self.backoff_max.as_nanos();
        let floor = match retry_after {
            Some(wait) if wait.as_nanos() > cap => return None,
            Some(wait) => wait.as_nanos(),
            None => 0,
        };
        // backoff * 2^(retry-1), saturating: past 2^127 every product is
        // past any cap a Duration can hold.
        let ceiling = match 1u128.checked_shl(retry - 1) {
            Some(factor) => self.backoff.as_nanos().saturating_mul(factor),
            None => u128::MAX,
        }
        .min(cap);
        // A draw in [0, ceiling]: (jitter * (ceiling + 1)) >> 64. Both
        // factors are below 2^64 only when the ceiling is; a Duration's
        // nanoseconds are below 2^94, so split the product to stay in u128.
        let drawn = scale(jitter, ceiling);
        Some(nanos(drawn.max(floor)))
    }
}

/// `jitter / 2^64 * (span + 1)`, rounded down: a value in `[0, span]`.
fn scale(jitter: u64, span: u128) -> u128 {
    let span = span.saturating_add(1);
    let (high, low) = (span >> 64, span & u128::from(u64::MAX));
    let j = u128::from(jitter);
    // (j * (high * 2^64 + low)) >> 64 = j * high + (j * low) >> 64; each
    // product fits: j, low < 2^64 and high < 2^30 for a Duration.
    j.saturating_mul(high).saturating_add((j * low) >> 64)
}

/// A number of nanoseconds as a Duration (saturating at Duration::MAX).
fn nanos(n: u128) -> Duration {
    const PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(n / PER_SEC) {
        // The remainder is below 10^9: it fits a u32.
        Ok(secs) => Duration::new(secs, (n % PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

/// The splitmix64 finaliser (Steele, Lea and Flood, "Fast splittable
/// pseudorandom number generators", 2014): mixes a `u64` so that nearby
/// inputs give unrelated outputs.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A jitter value for [`RetryPolicy::delay`] from a `seed` (a host's random
/// draw once per router, or a test's constant) and a `counter` (a call id
/// and retry number, folded): the counter-th output of splitmix64's stream.
pub fn jitter(seed: u64, counter: u64) -> u64 {
    splitmix64(seed.wrapping_add(counter.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy(retries: u32, base_ms: u64, cap_ms: u64) -> RetryPolicy {
        RetryPolicy {
            retries,
            backoff: Duration::from_millis(base_ms),
            backoff_max: Duration::from_millis(cap_ms),
        }
    }

    #[test]
    fn defaults() {
        let p = RetryPolicy::default();
        assert_eq!(p.retries, 0);
        assert_eq!((p.backoff, p.backoff_max), (100 * MS, 5000 * MS));
        // No retries by default.
        assert_eq!(p.delay(1, None, 0), None);
    }

    #[test]
    fn exponential_within_full_jitter() {
        let p = policy(10, 100, 5000);
        // The largest draw reaches the ceiling; the smallest is zero.
        let expect = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000];
        for (i, ceiling) in expect.iter().enumerate() {
            let retry = i as u32 + 1;
            assert_eq!(
                p.delay(retry, None, u64::MAX),
                Some(*ceiling * MS),
                "retry {retry}"
            );
            assert_eq!(p.delay(retry, None, 0), Some(Duration::ZERO));
            // The middle of the range gives about half the ceiling.
            let mid = p.delay(retry, None, 1 << 63).unwrap();
            assert_eq!(mid.as_nanos(), (*ceiling as u128 * 1_000_000).div_ceil(2));
        }
        // Past the policy's retries, and retry 0: no retry.
        assert_eq!(p.delay(11, None, 7), None);
        assert_eq!(p.delay(0, None, 7), None);
    }

    #[test]
    fn draws_spread_over_the_range() {
        // Jitter from the mixer fills [0, ceiling] evenly: each tenth of the
        // range gets about a tenth of 10_000 draws.
        let p = policy(3, 100, 5000);
        let mut bins = [0u32; 10];
        for i in 0..10_000 {
            let d = p.delay(3, None, jitter(42, i)).unwrap();
            assert!(d <= 400 * MS);
            bins[((d.as_nanos() * 10 / (400 * MS).as_nanos()) as usize).min(9)] += 1;
        }
        for (i, n) in bins.iter().enumerate() {
            assert!((800..=1200).contains(n), "bin {i}: {n}");
        }
    }

    #[test]
    fn retry_after() {
        let p = policy(3, 100, 5000);
        // Longer than the cap: move on.
        assert_eq!(p.delay(1, Some(5001 * MS), u64::MAX), None);
        assert_eq!(p.delay(1, Some(Duration::MAX), 0), None);
        // Within the cap: a floor.
        assert_eq!(p.delay(1, Some(5000 * MS), 0), Some(5000 * MS));
        assert_eq!(p.delay(1, Some(2000 * MS), u64::MAX), Some(2000 * MS));
        assert_eq!(p.delay(3, Some(50 * MS), u64::MAX), Some(400 * MS));
        assert_eq!(p.delay(3, Some(50 * MS), 0), Some(50 * MS));
        assert_eq!(p.delay(1, Some(Duration::ZERO), 0), Some(Duration::ZERO));
        // Still no retry past the count.
        assert_eq!(p.delay(4, Some(MS), 0), None);
    }

    #[test]
    fn overflow_safe() {
        let p = RetryPolicy {
            retries: u32::MAX,
            backoff: Duration::MAX,
            backoff_max: Duration::MAX,
        };
        for retry in [1, 2, 64, 65, 127, 128, 129, 1000, u32::MAX] {
            for j in [0, 1, u64::MAX / 3, u64::MAX] {
                let d = p.delay(retry, None, j).unwrap();
                assert!(d <= Duration::MAX);
            }
            // The top draw is the ceiling less under 2^-64 of it.
            let top = p.delay(retry, None, u64::MAX).unwrap();
            assert!(Duration::MAX - top < Duration::from_secs(2), "{top:?}");
        }
        let p = policy(u32::MAX, 100, 5000);
        for retry in [31, 32, 33, 64, 128, u32::MAX] {
            assert_eq!(p.delay(retry, None, u64::MAX), Some(5000 * MS));
        }
        // A zero base or cap never waits.
        assert_eq!(
            policy(3, 0, 5000).delay(3, None, u64::MAX),
            Some(Duration::ZERO)
        );
        assert_eq!(
            policy(3, 100, 0).delay(3, None, u64::MAX),
            Some(Duration::ZERO)
        );
        assert_eq!(policy(3, 100, 0).delay(3, Some(MS), 0), None);
    }

    #[test]
    fn mixer() {
        // splitmix64's published first outputs for seed 0 (state advanced
        // by the golden gamma before each mix).
        assert_eq!(jitter(0, 0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(jitter(0, 1), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(jitter(0, 2), 0x06C4_5D18_8009_454F);
        // Deterministic, and different counters give different values.
        assert_eq!(jitter(7, 3), jitter(7, 3));
        assert_ne!(jitter(7, 3), jitter(7, 4));
        assert_ne!(jitter(7, 3), jitter(8, 3));
        assert_eq!(jitter(u64::MAX, u64::MAX), jitter(u64::MAX, u64::MAX));
    }
}
