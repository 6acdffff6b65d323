//! What a host adds to the schema: its limits and its defaults.

/// Default cap on a response body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Extra limits a host imposes on top of the schema (the worker allows at
/// most 6 outgoing connections per request, for example), and the defaults
/// it needs in place of the schema's.
#[derive(Clone, Copy, Debug)]
pub struct HostLimits {
    /// Largest `hedge_k` the host can carry out.
    pub max_hedge_k: usize,
    /// `max_body_bytes` of a provider that does not set it (the worker's
    /// isolate has far less memory than a process).
    pub default_max_body_bytes: usize,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            max_hedge_k: usize::MAX,
            default_max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}
