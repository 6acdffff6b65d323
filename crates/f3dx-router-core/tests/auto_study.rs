//! The tail experiment of issue 11 on a virtual clock: why `"auto"` waits
//! the p90, and what the alternatives do.
//!
//! The bench (`bench/run.py`, tail) sends 2000 timed calls, after 30 warm-up
//! calls, through `policy="hedged", hedge_k=2, hedge_delay_ms="auto"` over
//! two providers on one mock that answers in about 5 ms, and in 200 ms
//! with probability 0.05. The target: p99 within 2.5x p50, at most 10%
//! extra upstream requests. Here a [`Router`] is driven the same way with
//! the answers drawn from measured distributions, so one run of 2030 calls
//! takes milliseconds and every seed is exact and repeatable:
//!
//! - each leg is slow with probability `slow` (200.5-213.7 ms, the bench's
//!   slow answers) and otherwise draws from a fast table: `MEASURED`, the
//!   router's own attempt times against the mock on a quiet machine
//!   (p50 5.43, p90 5.61, p95 5.69, p98 5.79 ms); `FAT_TOP`, the bench's
//!   unhedged call times of ADAPTIVE_RESULTS.md run 1 (p90 5.83, p95 6.86,
//!   p98 8.68 ms: a few percent of the calls of a busy machine take 7-10
//!   ms); in "bursts", 150 calls of every 500 draw from `LOADED` (run 2,
//!   p90 7.24, p95 9.10 ms), as when another build starts;
//! - a hedge timer fires late by a uniform draw in `lag` (the native host's
//!   tokio timer: 1.1-1.35 ms late, p10-p90, measured), or on time (a
//!   timer that fires on time, or latencies so long that 1 ms is nothing);
//! - 0.1 ms between calls; p50 and p99 with linear interpolation, as the
//!   bench; extra = legs sent during the timed calls / calls - 1.
//!
//! `cargo test -p f3dx-router-core --release --features study --test
//! auto_study -- --ignored --nocapture` prints the table that
//! docs/benchmarks.md quotes (the `study` feature lets a router follow another
//! rule than production's; no host enables it). The test that
//! is not ignored keeps the finding: the p95 locks onto the slow
//! mode for one of these seeds, the p90 does not.

use std::time::Duration;

use serde_json::{json, Value};

use f3dx_router_core::internals::latency::{AutoRule, Reading};
use f3dx_router_core::{
    Action, AttemptId, HostLimits, Instant, ResponseHead, Router, RouterConfig,
};

/// The router's attempt times against the tail mock on a quiet machine
/// (us), at every 2nd percentile: 3000 sequential calls, `route()`'s
/// `attempts[0]`.
const MEASURED: [f64; 51] = [
    5230., 5272., 5286., 5297., 5305., 5314., 5323., 5330., 5339., 5345., 5351., 5357., 5362.,
    5367., 5371., 5376., 5382., 5388., 5393., 5399., 5403., 5409., 5414., 5419., 5424., 5430.,
    5435., 5440., 5445., 5452., 5457., 5465., 5472., 5479., 5485., 5491., 5499., 5508., 5515.,
    5525., 5534., 5548., 5559., 5571., 5589., 5607., 5629., 5664., 5712., 5793., 10437.,
];
/// The bench's unhedged fast calls of ADAPTIVE_RESULTS.md run 1 (us), at
/// every 2nd percentile: Python's time per call, a fatter top.
const FAT_TOP: [f64; 51] = [
    5211., 5266., 5280., 5288., 5294., 5301., 5305., 5309., 5313., 5316., 5321., 5324., 5328.,
    5332., 5338., 5343., 5346., 5351., 5355., 5361., 5366., 5372., 5378., 5383., 5388., 5394.,
    5401., 5409., 5415., 5422., 5429., 5438., 5448., 5457., 5466., 5479., 5493., 5505., 5522.,
    5535., 5550., 5572., 5600., 5652., 5709., 5828., 5986., 6359., 7204., 8679., 22466.,
];
/// The bench's unhedged fast calls of ADAPTIVE_RESULTS.md run 2, on a
/// loaded machine (us), at every 2nd percentile: a tenth of the calls take
/// 7-10 ms.
const LOADED: [f64; 51] = [
    5293., 5372., 5393., 5403., 5412., 5423., 5430., 5436., 5440., 5445., 5449., 5454., 5460.,
    5465., 5468., 5473., 5476., 5481., 5484., 5488., 5493., 5497., 5501., 5504., 5509., 5513.,
    5518., 5521., 5526., 5530., 5535., 5540., 5544., 5549., 5556., 5562., 5570., 5579., 5589.,
    5600., 5615., 5639., 5676., 5725., 5859., 7240., 8487., 8947., 9260., 9576., 36534.,
];
/// The bench's slow answers (us), at every 10th percentile.
const SLOW: [f64; 11] = [
    200498., 200912., 201170., 201408., 201461., 201517., 201542., 201573., 201619., 201760.,
    213727.,
];

const WARMUP: usize = 30;
const CALLS: usize = 2000;

#[derive(Clone, Copy)]
struct World {
    name: &'static str,
    fast: &'static [f64],
    slow: f64,
    /// How late a hedge timer fires (us): uniform in this range.
    lag: (f64, f64),
    /// `Some((table, period, busy))`: the first `busy` calls of every
    /// `period` draw their fast answers from `table` (a busy spell).
    busy: Option<(&'static [f64], usize, usize)>,
}

const NATIVE_LAG: (f64, f64) = (1000.0, 1400.0);
const ON_TIME: (f64, f64) = (0.0, 0.0);

const WORLDS: [World; 7] = [
    World {
        name: "measured",
        fast: &MEASURED,
        slow: 0.05,
        lag: NATIVE_LAG,
        busy: None,
    },
    World {
        name: "measured, timer on time",
        fast: &MEASURED,
        slow: 0.05,
        lag: ON_TIME,
        busy: None,
    },
    World {
        name: "measured, 6% slow",
        fast: &MEASURED,
        slow: 0.06,
        lag: NATIVE_LAG,
        busy: None,
    },
    World {
        name: "measured, 8% slow",
        fast: &MEASURED,
        slow: 0.08,
        lag: NATIVE_LAG,
        busy: None,
    },
    World {
        name: "fat top",
        fast: &FAT_TOP,
        slow: 0.05,
        lag: NATIVE_LAG,
        busy: None,
    },
    World {
        name: "fat top, timer on time",
        fast: &FAT_TOP,
        slow: 0.05,
        lag: ON_TIME,
        busy: None,
    },
    World {
        name: "bursts",
        fast: &MEASURED,
        slow: 0.05,
        lag: NATIVE_LAG,
        busy: Some((&LOADED, 500, 150)),
    },
];

/// A variant of `"auto"`, and of the router around it.
#[derive(Clone, Copy)]
struct Variant {
    name: &'static str,
    rule: AutoRule,
    /// `hedge_delay_fallback_ms`.
    fallback_ms: u64,
    /// The hedge bucket starts empty instead of full.
    empty_budget: bool,
}

const fn rule(quantile: f64, reading: Reading) -> AutoRule {
    AutoRule {
        quantile,
        reading,
        cap: None,
        censor: false,
    }
}

const fn variant(name: &'static str, rule: AutoRule) -> Variant {
    Variant {
        name,
        rule,
        fallback_ms: 1000,
        empty_budget: false,
    }
}

const BEFORE: Variant = variant("p95, bin middle (before)", rule(0.95, Reading::Middle));
const CHOSEN: Variant = variant("p90, interpolated (now)", AutoRule::DEFAULT);

fn variants() -> Vec<Variant> {
    let mut v = vec![
        BEFORE,
        Variant {
            empty_budget: true,
            ..variant("p95, middle, budget starts empty", BEFORE.rule)
        },
        Variant {
            fallback_ms: 100,
            ..variant("p95, middle, fallback 100 ms", BEFORE.rule)
        },
        variant(
            "p95, middle, censored",
            AutoRule {
                censor: true,
                ..BEFORE.rule
            },
        ),
        variant("p95, bin's upper edge", rule(0.95, Reading::Upper)),
        variant("p95, interpolated", rule(0.95, Reading::Interpolated)),
        variant(
            "p95, interpolated, <= 2x p90",
            AutoRule {
                cap: Some((2.0, 0.9)),
                ..rule(0.95, Reading::Interpolated)
            },
        ),
        variant("p90, middle", rule(0.9, Reading::Middle)),
        variant(
            "p90, interpolated, censored",
            AutoRule {
                censor: true,
                ..CHOSEN.rule
            },
        ),
    ];
    v.push(CHOSEN);
    v
}

/// What one run of the tail experiment gave.
struct Outcome {
    p50: f64,
    p99: f64,
    extra_pct: f64,
    skipped: u64,
    /// Timed calls that started with a delay of 100 ms or more: the delay
    /// sat in the slow mode.
    locked: usize,
}

impl Outcome {
    fn ratio(&self) -> f64 {
        self.p99 / self.p50
    }
    fn met(&self) -> bool {
        self.ratio() <= 2.5 && self.extra_pct <= 10.0
    }
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The value at `u` (0..1) of a table of evenly spaced percentiles.
fn inverse(table: &[f64], u: f64) -> f64 {
    let x = u * (table.len() - 1) as f64;
    let i = (x.floor() as usize).min(table.len() - 2);
    table[i] + (table[i + 1] - table[i]) * (x - i as f64)
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    let k = (sorted.len() - 1) as f64 * q / 100.0;
    let f = k.floor() as usize;
    let c = (f + 1).min(sorted.len() - 1);
    sorted[f] + (sorted[c] - sorted[f]) * (k - f as f64)
}

fn head() -> ResponseHead {
    ResponseHead {
        status: 200,
        headers: vec![],
        received_unix_secs: 0,
    }
}

fn run(v: Variant, world: World, seed: u64) -> Outcome {
    let provider = |name: &str| {
        json!({"name": name, "kind": "openai", "base_url": "http://h/v1",
               "api_key": "k-0123456789", "timeout_ms": 10000})
    };
    let config = json!({"policy": "hedged", "hedge_k": 2, "hedge_delay_ms": "auto",
        "hedge_delay_fallback_ms": v.fallback_ms,
        "providers": [provider("p0"), provider("p1")]});
    let config = RouterConfig::from_json(&config, &|_| None, HostLimits::default()).unwrap();
    let router = Router::with_rule(config, v.rule);
    if v.empty_budget {
        router.empty_hedge_budget();
    }
    let body: Value = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let answer = serde_json::to_vec(&json!({"id": "x", "object": "chat.completion",
        "created": 1, "model": "m", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}))
    .unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED);
    let mut now = Instant::ZERO;
    let mut samples = Vec::with_capacity(CALLS);
    let (mut legs_timed, mut locked, mut skipped_before) = (0u64, 0usize, 0u64);
    for i in 0..WARMUP + CALLS {
        let timed = i >= WARMUP;
        if i == WARMUP {
            skipped_before = router.stats(now).hedges.skipped_for_budget;
        }
        let start = now;
        let mut call = router.start_call(body.clone(), now);
        let delay = call.poll_timeout().map(|t| t - now);
        if timed && delay.is_some_and(|d| d >= Duration::from_millis(100)) {
            locked += 1;
        }
        // (attempt, when its answer arrives)
        let mut legs: Vec<(AttemptId, Instant)> = Vec::new();
        'call: loop {
            while let Some(action) = call.poll_action() {
                match action {
                    Action::Send { attempt, .. } => {
                        legs_timed += u64::from(timed);
                        let table = match world.busy {
                            Some((t, period, busy)) if i % period < busy => t,
                            _ => world.fast,
                        };
                        let us = if rng.unit() < world.slow {
                            inverse(&SLOW, rng.unit())
                        } else {
                            inverse(table, rng.unit())
                        };
                        legs.push((attempt, now + Duration::from_micros(us as u64)));
                    }
                    Action::Cancel { attempt } => legs.retain(|(a, _)| *a != attempt),
                    Action::Complete(result) => {
                        assert!(result.is_ok());
                        break 'call;
                    }
                    Action::Commit { .. } | Action::Chunk(_) => {}
                }
            }
            let (id, answer_at) = *legs.iter().min_by_key(|(_, t)| *t).expect("a leg");
            let lag = world.lag.0 + (world.lag.1 - world.lag.0) * rng.unit();
            match call.poll_timeout() {
                // The timer fires (late) before the next answer.
                Some(t) if t + Duration::from_micros(lag as u64) < answer_at => {
                    now = t + Duration::from_micros(lag as u64);
                    call.handle_timeout(now);
                }
                _ => {
                    now = answer_at;
                    legs.retain(|(a, _)| *a != id);
                    call.handle_head(id, head(), now);
                    call.handle_body(id, answer.clone(), now);
                }
            }
        }
        if timed {
            samples.push((now - start).as_micros() as f64);
        }
        now = now + Duration::from_micros(100);
    }
    samples.sort_by(f64::total_cmp);
    Outcome {
        p50: pct(&samples, 50.0),
        p99: pct(&samples, 99.0),
        extra_pct: (legs_timed as f64 / CALLS as f64 - 1.0) * 100.0,
        skipped: router.stats(now).hedges.skipped_for_budget - skipped_before,
        locked,
    }
}

#[test]
fn the_p95_can_lock_onto_a_five_percent_slow_mode_and_the_p90_does_not() {
    // Seed 11 of the measured world: enough of p0's first answers are slow
    // that its p95 starts in the 200 ms mode, where a hedge never comes in
    // time; the slow answers it lets through keep it there. Its p90 leaves
    // the slow mode within the warm-up (and a dozen calls).
    let world = WORLDS[0];
    let before = run(BEFORE, world, 11);
    assert!(before.locked > 1500, "locked {}", before.locked);
    assert!(!before.met(), "p99 {:.2}x", before.ratio());
    let now = run(CHOSEN, world, 11);
    assert!(now.locked < 50, "locked {}", now.locked);
    assert!(
        now.met(),
        "p99 {:.2}x, extra {:.1}%",
        now.ratio(),
        now.extra_pct
    );
}

#[test]
#[ignore = "the study: 100 seeds per row, run it in release"]
fn auto_study() {
    let seeds: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    for world in WORLDS {
        println!(
            "\n{} ({:.0}% slow, timer {}):",
            world.name,
            world.slow * 100.0,
            if world.lag == ON_TIME {
                "on time".to_owned()
            } else {
                format!(
                    "{:.1}-{:.1} ms late",
                    world.lag.0 / 1000.0,
                    world.lag.1 / 1000.0
                )
            }
        );
        println!("| variant | met | p99/p50 median | worst | extra median | max | skipped | locked calls |");
        println!("|---|---|---|---|---|---|---|---|");
        for v in variants() {
            let outcomes: Vec<Outcome> = (0..seeds).map(|s| run(v, world, s)).collect();
            let mut ratios: Vec<f64> = outcomes.iter().map(Outcome::ratio).collect();
            let mut extras: Vec<f64> = outcomes.iter().map(|o| o.extra_pct).collect();
            ratios.sort_by(f64::total_cmp);
            extras.sort_by(f64::total_cmp);
            println!(
                "| {} | {}/{seeds} | {:.2}x | {:.2}x | {:.1}% | {:.1}% | {} | {} |",
                v.name,
                outcomes.iter().filter(|o| o.met()).count(),
                pct(&ratios, 50.0),
                ratios[ratios.len() - 1],
                pct(&extras, 50.0),
                extras[extras.len() - 1],
                outcomes.iter().map(|o| o.skipped).sum::<u64>(),
                outcomes.iter().map(|o| o.locked).sum::<usize>(),
            );
        }
    }
}
