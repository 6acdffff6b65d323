//! The one small loop that runs a [`Call`] on any [`Executor`].

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::Value;

use crate::attempt::AttemptId;
use crate::call::Action;
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
    Body(Vec<u8>),
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
            Leg::Body(f) => f
                .as_mut()
                .poll(cx)
                .map(|r| r.map_or_else(LegEvent::Fault, LegEvent::Body)),
        }
    }
}

/// Route one request through `router`, doing its I/O on `executor`.
pub async fn drive<E: Executor>(
    router: &Router,
    executor: &E,
    body: Value,
) -> Result<Routed, RouteError> {
    let mut call = router.start_call(body, executor.now());
    let mut legs: Vec<(AttemptId, Leg<E>)> = Vec::new();
    let mut sleep: Option<(Instant, Pin<Box<E::Sleep>>)> = None;
    poll_fn(move |cx| loop {
        while let Some(action) = call.poll_action() {
            match action {
                Action::Send {
                    attempt, request, ..
                } => legs.push((attempt, Leg::Head(Box::pin(executor.send(request))))),
                // Dropping the leg's future aborts its request.
                Action::Cancel { attempt } => legs.retain(|(id, _)| *id != attempt),
                Action::Complete(result) => return Poll::Ready(result),
            }
        }
        let mut progressed = false;
        let mut i = 0;
        while i < legs.len() {
            let Poll::Ready(event) = legs[i].1.poll_event(cx) else {
                i += 1;
                continue;
            };
            let id = legs[i].0;
            let now = executor.now();
            match event {
                LegEvent::Head(head) => call.handle_head(id, head, now),
                LegEvent::Body(bytes) => {
                    legs.swap_remove(i);
                    call.handle_body(id, bytes, now);
                }
                LegEvent::Fault(fault) => {
                    legs.swap_remove(i);
                    call.handle_fault(id, fault, now);
                }
            }
            progressed = true;
            break; // the call may have new actions: carry them out first
        }
        if progressed {
            continue;
        }
        match call.poll_timeout() {
            None => sleep = None,
            Some(deadline) => {
                if sleep.as_ref().is_none_or(|(at, _)| *at != deadline) {
                    sleep = Some((deadline, Box::pin(executor.sleep_until(deadline))));
                }
                if let Some((_, s)) = sleep.as_mut() {
                    if s.as_mut().poll(cx).is_ready() {
                        sleep = None;
                        call.handle_timeout(executor.now());
                        continue;
                    }
                }
            }
        }
        return Poll::Pending;
    })
    .await
}
