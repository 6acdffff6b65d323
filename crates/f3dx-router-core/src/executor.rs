//! The only door to the world: how a host sends, sleeps and tells the time.

use std::future::Future;
use std::sync::Arc;

use futures::Stream;

use crate::http::{HttpRequest, ResponseHead, TransportFault};
use crate::time::Instant;

/// What a host provides so a [`crate::Driver`] (or [`crate::drive`]) can
/// run a call.
///
/// Futures and streams need not be `Send` (JavaScript's are not). Dropping
/// a future returned by [`Executor::send`], or the body stream it yields,
/// must abort the request and close its connection: that is how a losing
/// hedge leg is cancelled.
pub trait Executor {
    /// A response body: its bytes in the pieces they arrive in, then the
    /// end (`None`), or a fault. The core enforces
    /// [`HttpRequest::max_body_bytes`]; a host may stop earlier with
    /// [`TransportFault::BodyTooLarge`].
    type Body: Stream<Item = Result<Vec<u8>, TransportFault>>;
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

impl<E: Executor + ?Sized> Executor for &E {
    type Body = E::Body;
    type Response = E::Response;
    type Sleep = E::Sleep;

    fn send(&self, request: HttpRequest) -> Self::Response {
        (**self).send(request)
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        (**self).sleep_until(deadline)
    }
    fn now(&self) -> Instant {
        (**self).now()
    }
}

impl<E: Executor + ?Sized> Executor for Arc<E> {
    type Body = E::Body;
    type Response = E::Response;
    type Sleep = E::Sleep;

    fn send(&self, request: HttpRequest) -> Self::Response {
        (**self).send(request)
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        (**self).sleep_until(deadline)
    }
    fn now(&self) -> Instant {
        (**self).now()
    }
}
