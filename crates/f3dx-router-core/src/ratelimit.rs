//! A provider's own rate-limit headers: when an answer (any answer, a 200
//! too) says a limit has nothing left, the provider is left alone until
//! that limit resets, before it ever answers 429.
//!
//! - OpenAI and compatibles: `x-ratelimit-remaining-{requests,tokens}` with
//!   `x-ratelimit-reset-{requests,tokens}` as a duration (`6m0s`, `1.5s`,
//!   `120ms`).
//! - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,
//!   output-tokens}-{remaining,reset}`, the reset as an RFC 3339 time, read
//!   against the answer's `Date` (or the host's clock when it has none).
//! - Azure OpenAI: `x-ratelimit-remaining-{requests,tokens}` without a reset
//!   time, so nothing is inferred from them (a guess would idle a deployment
//!   that may have room); its 429s carry `retry-after-ms` and `retry-after`,
//!   which `failure::retry_after` reads.

use std::time::Duration;

use crate::failure::MAX_COOLDOWN;
use crate::http::ResponseHead;

const OPENAI: &[(&str, &str)] = &[
    (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
];

const ANTHROPIC: &[(&str, &str)] = &[
    (
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ),
];

/// How long until every exhausted limit the head reports has reset (the
/// longest), capped at [`MAX_COOLDOWN`]; `None` when no limit is at 0.
pub fn exhausted_for(head: &ResponseHead) -> Option<Duration> {
    // One cheap pass first: most answers carry no such header at all, or
    // none at 0 (header names are lower case).
    let any = head.headers.iter().any(|(n, v)| {
        (n.starts_with("x-ratelimit-remaining") || n.starts_with("anthropic-ratelimit-"))
            && v.trim_start().starts_with('0')
    });
    if !any {
        return None;
    }
    let spent = |remaining: &str| {
        head.header(remaining)
            .is_some_and(|v| v.trim().parse::<f64>().is_ok_and(|n| n <= 0.0))
    };
    let openai = OPENAI
        .iter()
        .filter(|(remaining, _)| spent(remaining))
        .filter_map(|(_, reset)| head.header(reset).and_then(parse_duration));
    let anthropic = ANTHROPIC
        .iter()
        .filter(|(remaining, _)| spent(remaining))
        .filter_map(|(_, reset)| head.header(reset).and_then(|t| until_time(t, head)));
    openai.chain(anthropic).max().map(|d| d.min(MAX_COOLDOWN))
}

/// A Go-style duration: numbers with units `h`, `m`, `s`, `ms`, `us`/`µs`,
/// `ns` (`6m0s`, `1.5s`, `120ms`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs_f64(secs);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    secs_f64(total)
}

fn secs_f64(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

/// Time from the answer's clock (its `Date`, else the host's) to the RFC
/// 3339 instant `text`; zero if it is past.
fn until_time(text: &str, head: &ResponseHead) -> Option<Duration> {
    let at = parse_rfc3339(text.trim())?;
    let now = head
        .header("date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(head.received_unix_secs as f64, |d| d.as_secs_f64());
    secs_f64((at - now).max(0.0))
}

/// Seconds since the Unix epoch of an RFC 3339 time
/// (`2026-11-29T20:00:05Z`, `...05.250+01:00`).
pub fn parse_rfc3339(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut fraction = 0f64;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        if digits == 0 {
            return None;
        }
        fraction = format!("0.{}", &r[..digits]).parse().ok()?;
        rest = &r[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs as f64 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> ResponseHead {
        ResponseHead {
            status: 200,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            received_unix_secs: 1_700_000_000,
        }
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration(s).map(|d| d.as_millis());
        assert_eq!(d("6m0s"), Some(360_000));
        assert_eq!(d("1.5s"), Some(1500));
        assert_eq!(d("120ms"), Some(120));
        assert_eq!(d("1h2m3s"), Some(3_723_000));
        assert_eq!(d("2"), Some(2000));
        assert_eq!(d("20µs"), Some(0));
        for bad in ["", "s", "1x", "-1s", "1.2.3s", "ms5"] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000.0));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000.5)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400.0));
        for bad in [
            "2023-13-01T00:00:00Z",
            "2023-11-14 22:13",
            "2023-11-14T22:13:20",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_exhausted_limit_cools_until_its_reset() {
        let h = head(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1.5s"),
            ("x-ratelimit-remaining-tokens", "9000"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        assert_eq!(exhausted_for(&h), Some(Duration::from_millis(1500)));
        let h = head(&[
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        assert_eq!(exhausted_for(&h), Some(MAX_COOLDOWN), "capped");
        let h = head(&[
            ("x-ratelimit-remaining-requests", "3"),
            ("x-ratelimit-reset-requests", "1s"),
        ]);
        assert_eq!(exhausted_for(&h), None);
        let h = head(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2023-11-14T22:13:22Z"),
        ]);
        assert_eq!(exhausted_for(&h), Some(Duration::from_secs(2)));
        let h = head(&[
            ("anthropic-ratelimit-output-tokens-remaining", "0"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2023-11-14T22:13:30Z",
            ),
            ("date", "Tue, 14 Nov 2023 22:13:25 GMT"),
        ]);
        assert_eq!(
            exhausted_for(&h),
            Some(Duration::from_secs(5)),
            "read against Date"
        );
        assert_eq!(exhausted_for(&head(&[])), None);
    }

    /// Azure's 429: its remaining counts have no reset time, so its
    /// `retry-after-ms` (over `retry-after`) says how long to cool.
    #[test]
    fn azure_headers() {
        let mut h = head(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("retry-after-ms", "1500"),
            ("retry-after", "2"),
        ]);
        assert_eq!(exhausted_for(&h), None);
        h.status = 429;
        assert_eq!(
            crate::failure::retry_after(&h),
            Some(Duration::from_millis(1500))
        );
    }
}
