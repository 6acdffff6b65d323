//! Errors in OpenAI's shape: `{"error": {"message", "type", "code"}}`.

use f3dx_router_core::{Attempt, RouteError};
use serde_json::json;

/// An error response: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReply {
    /// HTTP status for the caller.
    pub status: u16,
    /// The OpenAI-shaped body.
    pub body: serde_json::Value,
    /// The provider involved, if any (sent as `x-f3dx-provider`).
    pub provider: Option<String>,
    /// Upstream attempts made.
    pub attempts: Vec<Attempt>,
}

impl ErrorReply {
    /// An error the worker itself raises (auth, bad JSON, ...).
    pub fn new(status: u16, kind: &str, code: &str, message: impl Into<String>) -> Self {
        let body = json!({"error": {"message": message.into(), "type": kind, "code": code}});
        ErrorReply {
            status,
            body,
            provider: None,
            attempts: Vec::new(),
        }
    }

    /// The reply for a failed route: a hard upstream failure keeps its
    /// status when it is a 4xx (else 502); all providers failing softly is
    /// a 502; a bad request a 400.
    pub fn from_route(e: &RouteError) -> Self {
        let attempts = e.attempts().to_vec();
        let message = e.to_string();
        let mut reply = match e {
            RouteError::InvalidRequest { .. } => {
                Self::new(400, "invalid_request_error", "invalid_request", message)
            }
            RouteError::Hard {
                provider, status, ..
            } => {
                // A 4xx is passed on as it is. Other hard statuses (a 3xx
                // not followed, a non-standard 6xx) cannot or should not be
                // answered as they are: a gateway error, the status in the
                // message.
                let status = if (400..=499).contains(status) {
                    *status
                } else {
                    502
                };
                let mut r = Self::new(status, "upstream_error", "hard_failure", message);
                r.provider = Some(provider.clone());
                r
            }
            RouteError::AllFailed { .. } => {
                Self::new(502, "upstream_error", "all_providers_failed", message)
            }
            // Only a streamed call can break after its commit point, and
            // then the answer is already under way: this reply is for a
            // host that reports it after the fact.
            RouteError::StreamInterrupted { provider, .. } => {
                let mut r = Self::new(502, "server_error", "stream_interrupted", message);
                r.provider = Some(provider.clone());
                r
            }
        };
        reply.attempts = attempts;
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let all = RouteError::AllFailed { attempts: vec![] };
        assert_eq!(ErrorReply::from_route(&all).status, 502);
        let hard = RouteError::Hard {
            provider: "a".into(),
            status: 401,
            message: "bad key".into(),
            body: String::new(),
            attempts: vec![],
        };
        let r = ErrorReply::from_route(&hard);
        assert_eq!((r.status, r.provider.as_deref()), (401, Some("a")));
        assert_eq!(r.body["error"]["code"], "hard_failure");
        for (upstream, answered) in [(302, 502), (600, 502), (404, 404)] {
            let hard = RouteError::Hard {
                provider: "a".into(),
                status: upstream,
                message: String::new(),
                body: String::new(),
                attempts: vec![],
            };
            let r = ErrorReply::from_route(&hard);
            assert_eq!(r.status, answered);
            let message = r.body["error"]["message"].as_str().unwrap().to_owned();
            assert!(message.contains(&format!("HTTP {upstream}")), "{message}");
        }
        let bad = RouteError::InvalidRequest {
            message: "no messages".into(),
            attempts: vec![],
        };
        assert_eq!(ErrorReply::from_route(&bad).status, 400);
    }
}
