//! The one small loop that runs a [`Call`] on any [`Executor`].

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use serde_json::Value;

use crate::attempt::{Attempt, AttemptId};
use crate::call::{Action, Call, CallOptions};
use crate::codec::chunk::Chunk;
use crate::error::{RouteError, Routed};
use crate::executor::Executor;
use crate::http::{ResponseHead, TransportFault};
use crate::router::Router;
use crate::time::Instant;

/// A request in flight: first its head, then its body.
enum Leg<E: Executor> {
    Head(Pin<Box<E::Response>>),
    Body(Pin<Box<E::Body>>),
}

enum LegEvent {
    Head(ResponseHead),
    Chunk(Vec<u8>),
    End,
    Fault(TransportFault),
}

impl<E: Executor> Leg<E> {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<LegEvent> {
        match self {
            Leg::Head(f) => match f.as_mut().poll(cx) {
                Poll::Ready(Ok((head, body))) => {
                    *self = Leg::Body(Box::pin(body));
                    Poll::Ready(LegEvent::Head(head))
                }
                Poll::Ready(Err(fault)) => Poll::Ready(LegEvent::Fault(fault)),
                Poll::Pending => Poll::Pending,
            },
            Leg::Body(s) => s.as_mut().poll_next(cx).map(|item| match item {
                Some(Ok(bytes)) => LegEvent::Chunk(bytes),
                Some(Err(fault)) => LegEvent::Fault(fault),
                None => LegEvent::End,
            }),
        }
    }
}

/// What a driven call gives its host, in order.
#[derive(Debug)]
pub enum Output {
    /// A streamed call committed to a provider; chunks follow.
    Commit {
        /// The committed provider's name.
        provider: String,
        /// Its index in the config.
        provider_index: usize,
        /// Every attempt so far.
        attempts: Vec<Attempt>,
    },
    /// The next chunk of a committed stream (write it with
    /// [`Chunk::write_event`]: an unchanged chunk goes out as it came).
    Chunk(Chunk),
    /// The call's result: the last output.
    Complete(Result<Routed, RouteError>),
}

/// A streamed call at its commit point: the chunks follow from
/// [`Driver::next`].
#[derive(Debug, Clone)]
pub struct Commit {
    /// The committed provider's name.
    pub provider: String,
    /// Its index in the config.
    pub provider_index: usize,
    /// Every attempt so far.
    pub attempts: Vec<Attempt>,
}

/// One call carried out on an executor, pulled by its host: each
/// [`Driver::next`] runs the call until it has something for the caller.
/// Dropping the driver drops every request in flight (closing their
/// connections): that is how a caller that stops reading a stream cancels it.
pub struct Driver<E: Executor> {
    executor: E,
    call: Call,
    legs: Vec<(AttemptId, Leg<E>)>,
    /// The leg polled first next time: the one after the last that had an
    /// event, so a leg that always has bytes ready cannot starve the others.
    next_leg: usize,
    sleep: Option<(Instant, Pin<Box<E::Sleep>>)>,
    done: bool,
}

impl<E: Executor> Driver<E> {
    /// Start routing `body` through `router` on `executor` (which may be a
    /// reference or an `Arc`).
    pub fn start(router: &Router, executor: E, body: Value) -> Self {
        Self::start_with(router, executor, body, CallOptions::default())
    }

    /// [`Driver::start`] with per-call options (a tenant).
    pub fn start_with(router: &Router, executor: E, body: Value, options: CallOptions) -> Self {
        let call = router.start_call_with(body, options, executor.now());
        Driver {
            executor,
            call,
            legs: Vec::new(),
            next_leg: 0,
            sleep: None,
            done: false,
        }
    }

    /// Whether the request streams (`"stream": true`).
    pub fn is_streamed(&self) -> bool {
        self.call.is_streamed()
    }

    /// Run a streamed call (a request [`is_stream_request`] says streams)
    /// to its commit point: the committed stream, or the failure before it
    /// (answered as a whole call's failure would be). Then read the chunks
    /// with [`Driver::next`].
    pub async fn commit(&mut self) -> Result<Commit, RouteError> {
        commit_of(self.next().await)
    }

    /// The next output, or `None` after [`Output::Complete`].
    pub async fn next(&mut self) -> Option<Output> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Poll for the next output.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Output>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            while let Some(action) = self.call.poll_action() {
                match action {
                    Action::Send {
                        attempt, request, ..
                    } => self
                        .legs
                        .push((attempt, Leg::Head(Box::pin(self.executor.send(request))))),
                    // Dropping the leg's future aborts its request.
                    Action::Cancel { attempt } => self.legs.retain(|(id, _)| *id != attempt),
                    Action::Commit {
                        provider,
                        provider_index,
                        attempts,
                    } => {
                        return Poll::Ready(Some(Output::Commit {
                            provider,
                            provider_index,
                            attempts,
                        }))
                    }
                    Action::Chunk(chunk) => return Poll::Ready(Some(Output::Chunk(chunk))),
                    Action::Complete(result) => {
                        self.done = true;
                        self.legs.clear();
                        return Poll::Ready(Some(Output::Complete(result)));
                    }
                }
            }
            if self.step_legs(cx) {
                continue;
            }
            match self.call.poll_timeout() {
                None => self.sleep = None,
                // Passed already: no need to win a timer's poll, which a
                // runtime's cooperative budget, spent on a busy body, may
                // keep pending.
                Some(deadline) if deadline <= self.executor.now() => {
                    self.sleep = None;
                    self.call.handle_timeout(self.executor.now());
                    continue;
                }
                Some(deadline) => {
                    if self.sleep.as_ref().is_none_or(|(at, _)| *at != deadline) {
                        let sleep = Box::pin(self.executor.sleep_until(deadline));
                        self.sleep = Some((deadline, sleep));
                    }
                    if let Some((_, s)) = self.sleep.as_mut() {
                        if s.as_mut().poll(cx).is_ready() {
                            self.sleep = None;
                            self.call.handle_timeout(self.executor.now());
                            continue;
                        }
                    }
                }
            }
            return Poll::Pending;
        }
    }

    /// Hand the first ready leg event to the call, starting from the leg
    /// after the last one that had an event; whether there was one.
    fn step_legs(&mut self, cx: &mut Context<'_>) -> bool {
        let n = self.legs.len();
        for k in 0..n {
            let i = (self.next_leg + k) % n;
            let Poll::Ready(event) = self.legs[i].1.poll_event(cx) else {
                continue;
            };
            self.next_leg = i + 1;
            let id = self.legs[i].0;
            let now = self.executor.now();
            match event {
                LegEvent::Head(head) => self.call.handle_head(id, head, now),
                LegEvent::Chunk(bytes) => self.call.handle_chunk(id, bytes, now),
                LegEvent::End => {
                    self.legs.swap_remove(i);
                    self.call.handle_end(id, now);
                }
                LegEvent::Fault(fault) => {
                    self.legs.swap_remove(i);
                    self.call.handle_fault(id, fault, now);
                }
            }
            // The call may have new actions: carry them out first.
            return true;
        }
        false
    }
}

/// What a streamed call's first output (from [`Driver::next`]) says: it
/// committed, or it failed before its commit point. For a host that pulls
/// outputs itself; [`Driver::commit`] is the same for one that awaits.
pub fn commit_of(first: Option<Output>) -> Result<Commit, RouteError> {
    match first {
        Some(Output::Commit {
            provider,
            provider_index,
            attempts,
        }) => Ok(Commit {
            provider,
            provider_index,
            attempts,
        }),
        Some(Output::Complete(Err(e))) => Err(e),
        // A streamed call's first output is its commit point or its
        // failure: the call holds every chunk back until it commits, and a
        // stream that ends without output is a failure. So this arm is for
        // the impossible, in one place for every host.
        Some(Output::Chunk(_) | Output::Complete(Ok(_))) | None => Err(RouteError::AllFailed {
            attempts: Vec::new(),
            skipped: Vec::new(),
        }),
    }
}

/// Whether a request asks for a streamed answer (`"stream": true`): the
/// one test hosts use to choose between [`drive`] and a [`Driver`] they
/// read as a stream. (A `"stream"` that is not a boolean is refused when
/// the call starts.)
pub fn is_stream_request(body: &Value) -> bool {
    body.get("stream") == Some(&Value::Bool(true))
}

/// Route one request through `router`, doing its I/O on `executor`, and
/// return its result. For requests that do not stream: a streamed request
/// needs a [`Driver`] to hand its chunks to the caller, and is refused here
/// with [`RouteError::InvalidRequest`] before anything is sent.
pub async fn drive<E: Executor>(
    router: &Router,
    executor: &E,
    body: Value,
) -> Result<Routed, RouteError> {
    drive_with(router, executor, body, CallOptions::default()).await
}

/// [`drive`] with per-call options (a tenant).
pub async fn drive_with<E: Executor>(
    router: &Router,
    executor: &E,
    body: Value,
    options: CallOptions,
) -> Result<Routed, RouteError> {
    if is_stream_request(&body) {
        return Err(RouteError::InvalidRequest {
            message: "streaming (\"stream\": true) is not supported by this API yet; omit it or set it to false".to_owned(),
            attempts: Vec::new(),
            skipped: Vec::new(),
        });
    }
    let mut driver = Driver::start_with(router, executor, body, options);
    loop {
        match driver.next().await {
            Some(Output::Complete(result)) => return result,
            // Only a streamed call commits or yields chunks.
            Some(Output::Commit { .. } | Output::Chunk(_)) => {}
            None => unreachable!("a call always completes before its driver ends"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_streamed_calls_first_output_is_its_commit_or_its_failure() {
        let commit = Output::Commit {
            provider: "a".into(),
            provider_index: 1,
            attempts: Vec::new(),
        };
        let c = commit_of(Some(commit)).unwrap();
        assert_eq!((c.provider.as_str(), c.provider_index), ("a", 1));
        let failed = RouteError::AllFailed {
            attempts: Vec::new(),
            skipped: Vec::new(),
        };
        let e = commit_of(Some(Output::Complete(Err(failed)))).unwrap_err();
        assert_eq!(e.kind(), "all_failed");
        // What cannot come first still gives a failure, never a panic.
        assert!(commit_of(Some(Output::Chunk(json!({}).into()))).is_err());
        assert!(commit_of(None).is_err());
    }

    #[test]
    fn only_a_json_true_streams() {
        assert!(is_stream_request(&json!({"stream": true})));
        for body in [
            json!({}),
            json!({"stream": "true"}),
            json!({"stream": 1}),
            json!([]),
        ] {
            assert!(!is_stream_request(&body), "{body}");
        }
    }
}
