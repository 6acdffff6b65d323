//! Awaiting a JavaScript promise from Rust without making closures for it.
//!
//! `wasm_bindgen_futures::JsFuture` makes two Rust closures per promise
//! (resolve and reject), each a JS function registered with a
//! `FinalizationRegistry`, and frees both when one of them runs. The hot path
//! awaits three promises a call (five in a failover), so here one closure,
//! made once per wasm instance, serves them all: `host.js` reports a
//! promise's outcome as `settle(id, ok, value)`, and a small table keyed by
//! `id` keeps the outcome and the waker of the [`Settled`] waiting for it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use wasm_bindgen::prelude::*;

#[derive(Default)]
struct Slot {
    outcome: Option<Result<JsValue, JsValue>>,
    waker: Option<Waker>,
}

thread_local! {
    /// The promises being awaited (a handful at a time): `(id, slot)`.
    static SLOTS: RefCell<Vec<(u32, Slot)>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: Cell<u32> = const { Cell::new(0) };
    /// `settle` as a JS function. Leaked: it lives as long as the instance.
    static SETTLE: JsValue =
        Closure::<dyn FnMut(u32, bool, JsValue)>::new(settle).into_js_value();
}

/// Called from JS when the promise `id` settles.
fn settle(id: u32, ok: bool, value: JsValue) {
    let waker = SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        // Gone when its future was dropped first (a cancelled attempt).
        let (_, slot) = slots.iter_mut().find(|(i, _)| *i == id)?;
        slot.outcome = Some(if ok { Ok(value) } else { Err(value) });
        slot.waker.take()
    });
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The outcome of a promise, once it settles: `Ok` with its value, `Err`
/// with its rejection reason. Dropping it stops waiting (the promise itself
/// goes on).
pub struct Settled {
    id: u32,
}

/// Call `start(id, settle)`, which hands a promise to the JS side to call
/// `settle(id, ok, value)` when it settles; returns what `start` returned
/// and the [`Settled`] that resolves then.
pub fn watch<R>(start: impl FnOnce(u32, &JsValue) -> R) -> (R, Settled) {
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    SLOTS.with(|slots| slots.borrow_mut().push((id, Slot::default())));
    // Made before `start` runs, so a settle from it finds its slot.
    let settled = Settled { id };
    (SETTLE.with(|settle| start(id, settle)), settled)
}

impl Future for Settled {
    type Output = Result<JsValue, JsValue>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            let Some((_, slot)) = slots.iter_mut().find(|(i, _)| *i == self.id) else {
                // Polled again after it was ready: nothing more will come.
                return Poll::Pending;
            };
            match slot.outcome.take() {
                Some(outcome) => Poll::Ready(outcome),
                None => {
                    if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        slot.waker = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            if let Some(at) = slots.iter().position(|(i, _)| *i == self.id) {
                slots.swap_remove(at);
            }
        });
    }
}
