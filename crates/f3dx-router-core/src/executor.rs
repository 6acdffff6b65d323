//! The only door to the world: how a host sends, sleeps and tells the time.

use std::future::Future;

use crate::http::{HttpRequest, ResponseHead, TransportFault};
use crate::time::Instant;

/// What a host provides so [`crate::drive`] can run a call.
///
/// Futures need not be `Send` (JavaScript's are not). Dropping a future
/// returned by [`Executor::send`], or the body future it yields, must abort
/// the request and close its connection: that is how a losing hedge leg is
/// cancelled.
pub trait Executor {
    /// Reads a response body, bounded by [`HttpRequest::max_body_bytes`].
    type Body: Future<Output = Result<Vec<u8>, TransportFault>>;
    /// Sends a request and resolves at its response head.
    type Response: Future<Output = Result<(ResponseHead, Self::Body), TransportFault>>;
    /// Resolves at a deadline.
    type Sleep: Future<Output = ()>;

    /// Send `request`.
    fn send(&self, request: HttpRequest) -> Self::Response;
    /// Resolve at `deadline` on this executor's clock (at once if past).
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;
    /// The current time on this executor's monotonic clock.
    fn now(&self) -> Instant;
}
