//! The outcomes a caller sees.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::attempt::{Attempt, Skipped};

/// A routed call's success.
#[derive(Clone, Debug)]
pub struct Routed {
    /// The winning provider's name.
    pub provider: String,
    /// The winning provider's index in the config.
    pub provider_index: usize,
    /// The response, in OpenAI chat-completion shape.
    pub response: Value,
    /// The upstream's body when `response` is it unchanged (an OpenAI
    /// provider's answer): what a front door sends, as it came.
    pub body: Option<Vec<u8>>,
    /// Every attempt, in start order.
    pub attempts: Vec<Attempt>,
    /// Deployments passed over without sending: they cannot carry the
    /// request's parameters (`unsupported_params: "error"`).
    pub skipped: Vec<Skipped>,
    /// From the call's start to its result.
    pub latency: Duration,
    /// Whether the answer matched the request's `response_format`; `None`
    /// when nothing was checked (no `response_format` to check, or quality
    /// tracking off).
    pub schema_valid: Option<bool>,
}

/// A routed call's failure.
#[derive(Clone, Debug)]
pub enum RouteError {
    /// The request itself cannot be sent (not an object, no messages, an
    /// unsupported option...). Nothing was sent anywhere.
    InvalidRequest {
        /// What to fix.
        message: String,
        /// Attempts made before a provider-specific translation failed.
        attempts: Vec<Attempt>,
        /// Deployments passed over: with none left, the parameters no
        /// deployment can carry make the request invalid.
        skipped: Vec<Skipped>,
    },
    /// A provider answered with a hard failure (any 4xx but 408 and 429).
    /// The payload was not replayed elsewhere.
    Hard {
        /// Who answered.
        provider: String,
        /// The upstream status.
        status: u16,
        /// The upstream's error message, or an excerpt of its body.
        message: String,
        /// The upstream's body (key redacted).
        body: String,
        /// Every attempt, in start order.
        attempts: Vec<Attempt>,
        /// Deployments passed over without sending.
        skipped: Vec<Skipped>,
    },
    /// Every attempt failed softly.
    AllFailed {
        /// Every attempt, in start order.
        attempts: Vec<Attempt>,
        /// Deployments passed over without sending.
        skipped: Vec<Skipped>,
    },
    /// A stream failed after its commit point: the caller has part of the
    /// answer, so no other provider was tried.
    StreamInterrupted {
        /// The committed provider.
        provider: String,
        /// What went wrong (reset, truncation, an error event, idle).
        message: String,
        /// Every attempt, in start order.
        attempts: Vec<Attempt>,
        /// Deployments passed over without sending.
        skipped: Vec<Skipped>,
    },
}

impl RouteError {
    /// The attempts made before the call failed.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            RouteError::InvalidRequest { attempts, .. }
            | RouteError::Hard { attempts, .. }
            | RouteError::AllFailed { attempts, .. }
            | RouteError::StreamInterrupted { attempts, .. } => attempts,
        }
    }

    /// The deployments the call passed over without sending (they cannot
    /// carry the request's parameters).
    pub fn skipped(&self) -> &[Skipped] {
        match self {
            RouteError::InvalidRequest { skipped, .. }
            | RouteError::Hard { skipped, .. }
            | RouteError::AllFailed { skipped, .. }
            | RouteError::StreamInterrupted { skipped, .. } => skipped,
        }
    }

    /// Stable name of the error's class: `invalid_request`, `hard`,
    /// `all_failed`, `stream_interrupted`.
    pub fn kind(&self) -> &'static str {
        match self {
            RouteError::InvalidRequest { .. } => "invalid_request",
            RouteError::Hard { .. } => "hard",
            RouteError::AllFailed { .. } => "all_failed",
            RouteError::StreamInterrupted { .. } => "stream_interrupted",
        }
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::InvalidRequest { message, .. } => write!(f, "invalid request: {message}"),
            RouteError::Hard {
                provider,
                status,
                message,
                ..
            } => {
                write!(
                    f,
                    "provider {provider:?} rejected the request with HTTP {status}"
                )?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                f.write_str(" (a hard failure: not retried on other providers; fix the request or this provider's settings)")
            }
            RouteError::AllFailed { attempts, .. } => {
                write!(f, "all {} attempts failed: ", attempts.len())?;
                for (i, a) in attempts.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(" (transient failures: retry later, or add providers)")
            }
            RouteError::StreamInterrupted {
                provider, message, ..
            } => write!(
                f,
                "the stream from provider {provider:?} broke after it had started: {message} \
                 (not continued elsewhere: the answer so far came from this provider; retry the call)"
            ),
        }
    }
}

impl std::error::Error for RouteError {}
