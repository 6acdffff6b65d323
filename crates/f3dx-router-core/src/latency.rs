//! Recent successful latencies of a provider, for percentiles: a
//! log-scaled histogram per time bucket, over the same sliding window as
//! health. Fixed size, nothing allocated per call; a percentile is read in
//! one pass over the bins, by linear interpolation inside the bin that
//! holds it, so never more than a bin's width (about 19%) off the sample
//! percentile, and much closer when the samples spread over the bin.

use std::time::Duration;

use crate::config::{HealthConfig, AUTO_HEDGE_QUANTILE};
use crate::time::Instant;

/// Bits after the leading one that pick a bin: four bins per power of two
/// of microseconds, so bin `i` starts at `2^(i/4) * (1 + (i%4)/4)` us.
const SUB_BITS: usize = 2;
const SUB: usize = 1 << SUB_BITS;
/// Bins per histogram; the last holds everything past ~70 min.
const BINS: usize = 32 * SUB;

/// A provider's recent latencies.
#[derive(Clone, Debug, Default)]
pub struct LatencyWindow {
    /// `(bucket number, counts per bin)`, a ring like the health window's.
    slots: Vec<(u64, [u32; BINS])>,
}

fn bin(micros: u64) -> usize {
    let v = micros.max(1);
    let log2 = 63 - v.leading_zeros() as usize;
    // The bits after the leading one pick the quarter-octave.
    let sub = if log2 >= SUB_BITS {
        ((v >> (log2 - SUB_BITS)) & (SUB as u64 - 1)) as usize
    } else {
        (v << (SUB_BITS - log2) & (SUB as u64 - 1)) as usize
    };
    (log2 * SUB + sub).min(BINS - 1)
}

/// The point `at` of a bin, in microseconds: 0 its lower edge, 1 its upper.
fn point(bin: usize, at: f64) -> f64 {
    let log2 = (bin / SUB) as i32;
    let sub = (bin % SUB) as f64;
    2f64.powi(log2) * (1.0 + (sub + at) / SUB as f64)
}

/// Where in its bin a percentile is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// The `k`-th of a bin's `n` samples at `(k - 1/2) / n` of its width
    /// (as if they spread evenly over it): what `LatencyWindow::quantile`
    /// answers. A bin with one sample reads as its middle.
    Interpolated,
    /// The bin's middle, whatever the rank (how "auto" read its p95 before
    /// the study in `tests/auto_study.rs`).
    #[cfg_attr(not(any(test, feature = "study")), allow(dead_code))]
    Middle,
    /// The bin's upper edge: at least the sample percentile.
    #[cfg_attr(not(any(test, feature = "study")), allow(dead_code))]
    Upper,
}

/// How `"auto"` reads its delay from the window of the provider waited
/// on. Production uses [`AutoRule::DEFAULT`]; the other fields are the
/// alternatives the study (`tests/auto_study.rs`) measured against it.
#[derive(Clone, Copy, Debug)]
pub struct AutoRule {
    /// The quantile ([`AUTO_HEDGE_QUANTILE`]).
    pub quantile: f64,
    /// Where in its bin it is read.
    pub reading: Reading,
    /// `Some((factor, q))`: at most `factor` times the `q` quantile.
    pub cap: Option<(f64, f64)>,
    /// A cancelled leg's time counts as a sample of its provider (the
    /// issue's rule is that it does not).
    pub censor: bool,
}

impl AutoRule {
    /// The rule production follows.
    pub const DEFAULT: AutoRule = AutoRule {
        quantile: AUTO_HEDGE_QUANTILE,
        reading: Reading::Interpolated,
        cap: None,
        censor: false,
    };
}

impl LatencyWindow {
    fn bucket(now: Instant, config: &HealthConfig) -> u64 {
        let width = (config.window.as_micros() as u64 / u64::from(config.buckets.max(1))).max(1);
        now.as_micros() / width
    }

    /// A success that took `took`, at `now`.
    pub fn record(&mut self, took: Duration, now: Instant, config: &HealthConfig) {
        let n = config.buckets.max(1) as usize;
        if self.slots.len() != n {
            self.slots = vec![(u64::MAX, [0; BINS]); n];
        }
        let b = Self::bucket(now, config);
        let slot = &mut self.slots[(b % n as u64) as usize];
        if slot.0 != b {
            *slot = (b, [0; BINS]);
        }
        let i = bin(took.as_micros().min(u128::from(u64::MAX)) as u64);
        slot.1[i] = slot.1[i].saturating_add(1);
    }

    /// Samples in the window at `now`.
    pub fn count(&self, now: Instant, config: &HealthConfig) -> u64 {
        self.live(now, config)
            .map(|(_, bins)| bins.iter().map(|&c| u64::from(c)).sum::<u64>())
            .sum()
    }

    /// The `q` quantile (0 < q <= 1) of the window's latencies at `now`,
    /// interpolated inside its bin; `None` without samples.
    pub fn quantile(&self, q: f64, now: Instant, config: &HealthConfig) -> Option<Duration> {
        self.quantile_read(q, Reading::Interpolated, now, config)
    }

    /// [`Self::quantile`], read at `reading` inside its bin.
    pub(crate) fn quantile_read(
        &self,
        q: f64,
        reading: Reading,
        now: Instant,
        config: &HealthConfig,
    ) -> Option<Duration> {
        let (hist, total) = self.merged(now, config);
        read(&hist, total, q, reading)
    }

    /// Several quantiles at once (`stats()`): the window is merged once.
    pub fn quantiles<const N: usize>(
        &self,
        qs: [f64; N],
        now: Instant,
        config: &HealthConfig,
    ) -> Option<[Duration; N]> {
        let (hist, total) = self.merged(now, config);
        let mut out = [Duration::ZERO; N];
        for (o, q) in out.iter_mut().zip(qs) {
            *o = read(&hist, total, q, Reading::Interpolated)?;
        }
        Some(out)
    }

    /// The live buckets' bins added up, and their total.
    fn merged(&self, now: Instant, config: &HealthConfig) -> ([u64; BINS], u64) {
        let mut hist = [0u64; BINS];
        for (_, bins) in self.live(now, config) {
            for (h, &c) in hist.iter_mut().zip(bins) {
                *h += u64::from(c);
            }
        }
        let total = hist.iter().sum();
        (hist, total)
    }

    fn live<'a>(
        &'a self,
        now: Instant,
        config: &HealthConfig,
    ) -> impl Iterator<Item = &'a (u64, [u32; BINS])> {
        let b = Self::bucket(now, config);
        let oldest = b.saturating_sub(u64::from(config.buckets.max(1)) - 1);
        self.slots
            .iter()
            .filter(move |(at, _)| *at != u64::MAX && (oldest..=b).contains(at))
    }
}

/// The `q` quantile of a merged window of `total` samples, read at
/// `reading` inside its bin; `None` without samples.
fn read(hist: &[u64; BINS], total: u64, q: f64, reading: Reading) -> Option<Duration> {
    if total == 0 {
        return None;
    }
    // The sample of rank ceil(q * total) (nearest rank), in the first bin
    // whose cumulative count reaches it.
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    for (i, &here) in hist.iter().enumerate() {
        let before = seen;
        seen += here;
        if seen >= rank {
            let at = match reading {
                // The rank is the k-th of the bin's samples.
                Reading::Interpolated => ((rank - before) as f64 - 0.5) / here as f64,
                Reading::Middle => 0.5,
                Reading::Upper => 1.0,
            };
            let v = point(i, at);
            return Some(Duration::from_micros(v as u64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bins_are_monotonic_and_close() {
        let mut last = 0;
        for us in [
            1u64,
            2,
            3,
            5,
            10,
            100,
            999,
            1000,
            1500,
            20_000,
            1_000_000,
            u64::MAX,
        ] {
            let b = bin(us);
            assert!(b >= last, "{us}");
            last = b;
        }
        for us in [1000u64, 1234, 50_000, 777_777] {
            let v = point(bin(us), 0.5);
            assert!((v - us as f64).abs() / us as f64 <= 0.13, "{us} -> {v}");
        }
    }

    #[test]
    fn percentiles_over_the_window() {
        let c = HealthConfig::default();
        let mut w = LatencyWindow::default();
        let now = Instant::from_micros(1_000_000);
        assert_eq!(w.quantile(0.5, now, &c), None);
        for i in 1..=100 {
            w.record(ms(i), now, &c);
        }
        let p = |q| w.quantile(q, now, &c).unwrap().as_secs_f64() * 1000.0;
        // Spread samples: interpolation lands within a few percent (a
        // bin's middle could be 9% off).
        for (q, want) in [(0.5, 50.0), (0.9, 90.0), (0.95, 95.0), (0.99, 99.0)] {
            let got = p(q);
            assert!((got - want).abs() / want <= 0.04, "p{q}: {got}");
        }
        assert_eq!(w.count(now, &c), 100);
        // A minute later the samples have left the window.
        let later = now + Duration::from_secs(61);
        assert_eq!(w.count(later, &c), 0);
        assert_eq!(w.quantile(0.5, later, &c), None);
    }

    #[test]
    fn a_percentile_is_read_inside_its_bin_by_rank() {
        let c = HealthConfig::default();
        let now = Instant::from_micros(1_000_000);
        // Twenty answers of exactly 100 ms: all in the bin [98.304, 114.688)
        // ms. The p90 is the 18th of them, read at 17.5 / 20 of the bin.
        let mut w = LatencyWindow::default();
        for _ in 0..20 {
            w.record(ms(100), now, &c);
        }
        let read = |w: &LatencyWindow, q, r| w.quantile_read(q, r, now, &c).unwrap();
        assert_eq!(
            w.quantile(0.9, now, &c),
            Some(Duration::from_micros(112_640))
        );
        assert_eq!(
            read(&w, 0.9, Reading::Middle),
            Duration::from_micros(106_496)
        );
        assert_eq!(
            read(&w, 0.9, Reading::Upper),
            Duration::from_micros(114_688)
        );
        // One sample in its bin reads as the bin's middle.
        let mut one = LatencyWindow::default();
        one.record(ms(100), now, &c);
        assert_eq!(
            one.quantile(0.9, now, &c),
            Some(Duration::from_micros(106_496))
        );
    }
}
