//! The driver on a scripted in-memory executor: it carries out the core's
//! actions, and dropping a cancelled leg really drops its request future.

use std::cell::Cell;
use std::future::{pending, ready, Future};
use std::pin::Pin;
use std::rc::Rc;

use f3dx_router_core::{
    drive, Executor, HostLimits, HttpRequest, Instant, ResponseHead, Router, RouterConfig,
    TransportFault,
};
use serde_json::json;

type Local<T> = Pin<Box<dyn Future<Output = T>>>;

/// Answers by URL: "ok" hosts answer 200 at once, "busy" hosts 503, "slow"
/// hosts never. Counts dropped request futures.
struct Scripted {
    dropped: Rc<Cell<usize>>,
    clock: Cell<u64>,
}

struct DropFlag(Rc<Cell<usize>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn head(status: u16) -> ResponseHead {
    ResponseHead {
        status,
        headers: vec![],
        received_unix_secs: 0,
    }
}

impl Executor for Scripted {
    type Body = Local<Result<Vec<u8>, TransportFault>>;
    type Response = Local<Result<(ResponseHead, Self::Body), TransportFault>>;
    type Sleep = Local<()>;

    fn send(&self, request: HttpRequest) -> Self::Response {
        let body = |s: &str| -> Self::Body { Box::pin(ready(Ok(s.as_bytes().to_vec()))) };
        if request.url.contains("ok") {
            let b = body(r#"{"choices":[{"message":{"content":"hi"}}]}"#);
            Box::pin(ready(Ok((head(200), b))))
        } else if request.url.contains("busy") {
            Box::pin(ready(Ok((head(503), body("{}")))))
        } else {
            let flag = DropFlag(Rc::clone(&self.dropped));
            Box::pin(async move {
                let _flag = flag;
                pending::<()>().await;
                unreachable!()
            })
        }
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        // Virtual time: sleeping jumps the clock.
        self.clock.set(self.clock.get().max(deadline.as_micros()));
        Box::pin(ready(()))
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.clock.get())
    }
}

fn router(urls: &[&str], policy: serde_json::Value) -> Router {
    let providers: Vec<_> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| json!({"name": format!("p{i}"), "kind": "openai", "base_url": u, "api_key": "k", "timeout_ms": 100}))
        .collect();
    let mut config = policy;
    config["providers"] = json!(providers);
    Router::new(RouterConfig::from_json(&config, &|_| None, HostLimits::default()).unwrap())
}

fn request() -> serde_json::Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

#[test]
fn falls_through_and_returns_the_winner() {
    let exec = Scripted {
        dropped: Rc::default(),
        clock: Cell::new(0),
    };
    let r = router(&["http://busy/v1", "http://ok/v1"], json!({}));
    let routed = futures::executor::block_on(drive(&r, &exec, request())).unwrap();
    assert_eq!(routed.provider, "p1");
    assert_eq!(routed.attempts.len(), 2);
}

#[test]
fn losing_leg_future_is_dropped() {
    let exec = Scripted {
        dropped: Rc::default(),
        clock: Cell::new(0),
    };
    let r = router(
        &["http://slow/v1", "http://ok/v1"],
        json!({"policy": "hedged", "hedge_k": 2}),
    );
    let routed = futures::executor::block_on(drive(&r, &exec, request())).unwrap();
    assert_eq!(routed.provider, "p1");
    assert_eq!(routed.attempts[0].outcome.as_str(), "cancelled");
    assert_eq!(
        exec.dropped.get(),
        1,
        "the slow leg's request future must be dropped"
    );
}

#[test]
fn a_stalled_provider_times_out_on_the_executor_clock() {
    let exec = Scripted {
        dropped: Rc::default(),
        clock: Cell::new(0),
    };
    let r = router(&["http://slow/v1"], json!({}));
    let err = futures::executor::block_on(drive(&r, &exec, request())).unwrap_err();
    assert_eq!(err.kind(), "all_failed");
    assert_eq!(err.attempts()[0].fault.as_ref().unwrap().name(), "timeout");
    assert_eq!(exec.now(), Instant::from_micros(100_000));
    assert_eq!(exec.dropped.get(), 1);
}
