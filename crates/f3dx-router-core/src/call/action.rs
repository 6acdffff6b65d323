//! What a call hands its host: the actions, and the options a call starts with.

use crate::attempt::{Attempt, AttemptId};
use crate::codec::chunk::Chunk;
use crate::error::{RouteError, Routed};
use crate::forward::CallerHeaders;
use crate::http::HttpRequest;

/// What the call asks its host to do.
#[must_use]
#[derive(Debug)]
pub enum Action {
    /// Send this request; report its head, body or fault with this id.
    Send {
        /// The attempt the request belongs to.
        attempt: AttemptId,
        /// Index of the provider in the config.
        provider: usize,
        /// The request to send.
        request: HttpRequest,
    },
    /// Stop the attempt: drop its request, close its connection.
    Cancel {
        /// The attempt to stop.
        attempt: AttemptId,
    },
    /// A streamed call reached its commit point on this provider: the
    /// caller's stream starts now, [`Action::Chunk`]s follow, then
    /// [`Action::Complete`]. Emitted at most once, before any chunk.
    Commit {
        /// The committed provider's name.
        provider: String,
        /// Its index in the config.
        provider_index: usize,
        /// Every attempt so far, in start order (the committed one last
        /// among those that ended or were cancelled).
        attempts: Vec<Attempt>,
    },
    /// The next `chat.completion.chunk` of a committed stream, in order
    /// (an OpenAI provider's as its text came).
    Chunk(Chunk),
    /// The call is over; this is its result. Emitted exactly once, last.
    Complete(Result<Routed, RouteError>),
}

/// Per-call options beside the request body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Who the call is for, in quality-aware routing: pass rates are kept
    /// per (provider, tenant, model). Empty: the empty tenant.
    pub tenant: String,
    /// The caller's own headers; those the call's `forward_headers` list
    /// names go to every attempt ([`crate::forward`]). A host need not
    /// fill it when [`crate::RoutingTable::any_forward_headers`] is false.
    pub headers: CallerHeaders,
}
