//! The record of one upstream attempt, as callers and traces see it.

use std::fmt;
use std::time::Duration;

use crate::http::TransportFault;

/// Identifies an attempt within one call (its position in start order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u32);

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Still waiting for its response.
    InFlight,
    /// Answered with a decodable 2xx: the call's result.
    Success,
    /// Failed in a way another provider may not: the call moved on.
    Soft,
    /// Failed in a way that must not be replayed elsewhere.
    Hard,
    /// Stopped by the router because another attempt won or the call ended.
    Cancelled,
}

impl AttemptOutcome {
    /// The name used in traces, vectors and the Python API.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::InFlight => "in_flight",
            AttemptOutcome::Success => "success",
            AttemptOutcome::Soft => "soft",
            AttemptOutcome::Hard => "hard",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

/// Why an attempt failed below (or instead of) an HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// No complete answer within the provider's timeout.
    Timeout,
    /// The transport failed.
    Transport(TransportFault),
    /// A 2xx whose body does not decode in the provider's shape (or a
    /// stream that ended before any output).
    Undecodable,
    /// An error event inside a stream.
    StreamError,
    /// A 2xx answer that does not match the request's `response_format`
    /// (with quality `on_failure: "failover"`).
    SchemaInvalid,
    /// An error saying the request does not fit the deployment's context
    /// window (docs/failover.md): the call moves on only to a larger one.
    ContextOverflow,
    /// An error saying the upstream refused the content (its safety system
    /// or usage policy).
    ContentPolicy,
    /// A 2xx answer that is a refusal (`finish_reason: "content_filter"`),
    /// set aside for a `content_policy_fallbacks` group.
    Refusal,
}

impl Fault {
    /// Every name [`Fault::name`] gives (hosts that rebuild an attempt
    /// from its name check it against these).
    pub const NAMES: &'static [&'static str] = &[
        "timeout",
        "undecodable",
        "stream_error",
        "schema_invalid",
        "context_overflow",
        "content_policy",
        "refusal",
        "connection_refused",
        "connection_reset",
        "dns",
        "truncated",
        "body_too_large",
        "transport",
    ];

    /// The stable name used in traces, vectors and the Python API.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Timeout => "timeout",
            Fault::Undecodable => "undecodable",
            Fault::StreamError => "stream_error",
            Fault::SchemaInvalid => "schema_invalid",
            Fault::ContextOverflow => "context_overflow",
            Fault::ContentPolicy => "content_policy",
            Fault::Refusal => "refusal",
            Fault::Transport(t) => match t {
                TransportFault::ConnectionRefused => "connection_refused",
                TransportFault::ConnectionReset => "connection_reset",
                TransportFault::Dns => "dns",
                TransportFault::Truncated => "truncated",
                TransportFault::BodyTooLarge => "body_too_large",
                TransportFault::Other(_) => "transport",
            },
        }
    }
}

/// One attempt of a call: which provider, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// Position in start order.
    pub id: AttemptId,
    /// Index of the provider in the config.
    pub provider_index: usize,
    /// The provider's name.
    pub provider: String,
    /// The model group it was for (`None` without `models`): the call's
    /// own, or a fallback group.
    pub group: Option<String>,
    /// The model sent (`None` without `models`, or when the caller's was
    /// passed through).
    pub model: Option<String>,
    /// Start, from the call's start.
    pub started: Duration,
    /// End, from the call's start (`None` while in flight).
    pub ended: Option<Duration>,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// HTTP status, when a response head arrived.
    pub status: Option<u16>,
    /// Failure below HTTP, or an undecodable body.
    pub fault: Option<Fault>,
    /// What went wrong, in words: the upstream's error message, or the
    /// fault. Never contains the provider's key.
    pub detail: String,
    /// The request's parameters it was sent without, as its provider's kind
    /// cannot carry them (`unsupported_params: "drop"`); most often none.
    pub dropped: Vec<String>,
}

/// A deployment a call passed over without sending anything: its
/// provider's kind cannot carry some of the request's parameters
/// (`unsupported_params: "error"`). Not an attempt: nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Index of the provider in the config.
    pub provider_index: usize,
    /// The provider's name.
    pub provider: String,
    /// Its model group (`None` without `models`).
    pub group: Option<String>,
    /// The model it would have been sent (`None` without `models`, or
    /// when the caller's is passed through).
    pub model: Option<String>,
    /// The parameters it cannot carry, in the request's order.
    pub params: Vec<String>,
}

impl Skipped {
    /// Why it was passed over, as a stable name (the one `explain` gives).
    pub const REASON: &'static str = "unsupported_params";
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.provider)?;
        if let Some(model) = &self.model {
            write!(f, " ({model:?})")?;
        }
        write!(f, " cannot carry ")?;
        for (i, p) in self.params.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            write!(f, "{sep}`{p}`")?;
        }
        Ok(())
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.provider)?;
        if let Some(model) = &self.model {
            write!(f, " ({model:?})")?;
        }
        if let Some(group) = &self.group {
            write!(f, " for {group:?}")?;
        }
        write!(f, ": {}", self.outcome.as_str())?;
        if let Some(s) = self.status {
            write!(f, ", HTTP {s}")?;
        }
        if let Some(fault) = &self.fault {
            write!(f, ", {}", fault.name())?;
        }
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        if !self.dropped.is_empty() {
            write!(f, ", sent without {}", self.dropped.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_a_listed_name() {
        let faults = [
            Fault::Timeout,
            Fault::Undecodable,
            Fault::StreamError,
            Fault::SchemaInvalid,
            Fault::ContextOverflow,
            Fault::ContentPolicy,
            Fault::Refusal,
            Fault::Transport(TransportFault::ConnectionRefused),
            Fault::Transport(TransportFault::ConnectionReset),
            Fault::Transport(TransportFault::Dns),
            Fault::Transport(TransportFault::Truncated),
            Fault::Transport(TransportFault::BodyTooLarge),
            Fault::Transport(TransportFault::Other(String::new())),
        ];
        let names: Vec<&str> = faults.iter().map(Fault::name).collect();
        assert_eq!(names, Fault::NAMES);
    }
}
