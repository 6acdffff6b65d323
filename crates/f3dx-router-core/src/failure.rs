//! The failure model: how an upstream outcome is classed, and what a
//! `Retry-After` asks of us.

use std::time::{Duration, UNIX_EPOCH};

use crate::http::ResponseHead;

/// Longest cooldown a provider can ask for; a longer `Retry-After` is capped
/// so a misconfigured upstream cannot disable itself for a day.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(300);

/// The class of an upstream status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: success if the body decodes.
    Success,
    /// 408, 429, 5xx: try the next provider.
    Soft,
    /// Any other status: surface at once, never replay the payload.
    Hard,
}

/// Class a status code per the failure table. A 1xx is never a final
/// answer: one that reaches the core (a runtime that hands over an interim
/// `103 Early Hints` as the response) is a broken exchange, soft like a
/// reset.
pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        100..=199 | 408 | 429 | 500..=599 => StatusClass::Soft,
        _ => StatusClass::Hard,
    }
}

/// How long the provider asked us to stay away, if it did: `retry-after-ms`
/// (milliseconds), else `Retry-After` (seconds or an HTTP date), honoured on
/// 429 and 503 only and capped at [`MAX_COOLDOWN`].
pub fn retry_after(head: &ResponseHead) -> Option<Duration> {
    if head.status != 429 && head.status != 503 {
        return None;
    }
    let wait = head
        .header("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_micros((ms * 1000.0) as u64))
        .or_else(|| {
            head.header("retry-after")
                .and_then(|v| parse_retry_after(v, head))
        })?;
    Some(wait.min(MAX_COOLDOWN))
}

fn parse_retry_after(value: &str, head: &ResponseHead) -> Option<Duration> {
    let value = value.trim();
    // Delay-seconds: any run of digits, however long (a number past u64 is
    // a long wait too, so it is capped like any other).
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs.min(MAX_COOLDOWN.as_secs())));
    }
    // An HTTP date is relative to the server's clock when it has one (its
    // `Date` header), so clock skew between us and it does not matter.
    let at = httpdate::parse_http_date(value).ok()?;
    let now = head
        .header("date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or_else(|| UNIX_EPOCH + Duration::from_secs(head.received_unix_secs));
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn unix(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn head(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
        ResponseHead {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            received_unix_secs: 1_700_000_000,
        }
    }

    #[test]
    fn failure_table() {
        for s in [200, 201, 204, 299] {
            assert_eq!(classify_status(s), StatusClass::Success);
        }
        for s in [100, 103, 199, 408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(classify_status(s), StatusClass::Soft);
        }
        for s in [0, 99, 301, 400, 401, 403, 404, 409, 413, 422, 451, 600] {
            assert_eq!(classify_status(s), StatusClass::Hard);
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after(&head(429, &[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&head(503, &[("Retry-After", " 2 ")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&head(
                429,
                &[("retry-after-ms", "250"), ("retry-after", "9")]
            )),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&head(429, &[("retry-after", "86400")])),
            Some(MAX_COOLDOWN)
        );
        let huge = "184467440737095516160000"; // past u64
        assert_eq!(
            retry_after(&head(429, &[("retry-after", huge)])),
            Some(MAX_COOLDOWN)
        );
        assert_eq!(
            retry_after(&head(429, &[("retry-after-ms", huge)])),
            Some(MAX_COOLDOWN)
        );
        assert_eq!(retry_after(&head(429, &[("retry-after", "-5")])), None);
        assert_eq!(retry_after(&head(429, &[("retry-after", "+5")])), None);
        assert_eq!(retry_after(&head(500, &[("retry-after", "7")])), None);
        assert_eq!(retry_after(&head(429, &[])), None);
        assert_eq!(retry_after(&head(429, &[("retry-after", "soon")])), None);
        let date = httpdate::fmt_http_date(unix(1_700_000_000));
        let later = httpdate::fmt_http_date(unix(1_700_000_042));
        assert_eq!(
            retry_after(&head(429, &[("retry-after", &later)])),
            Some(Duration::from_secs(42))
        );
        // Relative to the server's Date header when present.
        let server_now = httpdate::fmt_http_date(unix(1_700_000_040));
        assert_eq!(
            retry_after(&head(
                429,
                &[("retry-after", &later), ("date", &server_now)]
            )),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&head(429, &[("retry-after", &date), ("date", &later)])),
            Some(Duration::ZERO)
        );
    }
}
