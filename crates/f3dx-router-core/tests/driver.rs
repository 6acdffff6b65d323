//! The driver on a scripted in-memory executor: it carries out the core's
//! actions, and dropping a cancelled leg really drops its request future.

use std::cell::Cell;
use std::future::{pending, ready, Future};
use std::pin::Pin;
use std::rc::Rc;

use futures::stream::{self, Stream, StreamExt};

use f3dx_router_core::{
    drive, Driver, Executor, HostLimits, HttpRequest, Instant, Output, ResponseHead, RouteError,
    Router, RouterConfig, TransportFault,
};
use serde_json::json;

type Local<T> = Pin<Box<dyn Future<Output = T>>>;
type Chunks = Pin<Box<dyn Stream<Item = Result<Vec<u8>, TransportFault>>>>;

/// Answers by URL: "ok" hosts answer 200 at once, "busy" hosts 503, "slow"
/// hosts never; "sse" hosts stream two text chunks, "sse-error" an error
/// event before any text, "sse-cut" one text chunk and then a reset, and
/// "sse-stall" a role chunk and then nothing, "sse-flood" role chunks
/// without end, each ready at once and 1 ms after the one before. Counts
/// dropped request futures and bodies.
struct Scripted {
    dropped: Rc<Cell<usize>>,
    clock: Rc<Cell<u64>>,
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
    type Body = Chunks;
    type Response = Local<Result<(ResponseHead, Self::Body), TransportFault>>;
    type Sleep = Local<()>;

    fn send(&self, request: HttpRequest) -> Self::Response {
        let body = |s: &str| -> Self::Body { Box::pin(stream::iter([Ok(s.as_bytes().to_vec())])) };
        let sse = |events: &[&str]| -> Self::Body {
            let items: Vec<_> = events
                .iter()
                .map(|e| Ok(format!("data: {e}\n\n").into_bytes()))
                .collect();
            Box::pin(stream::iter(items))
        };
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
        let text =
            |t: &str| format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"{t}"}}}}]}}"#);
        if request.url.contains("sse-error") {
            let b = sse(&[
                role,
                r#"{"error":{"message":"overloaded","type":"overloaded_error"}}"#,
            ]);
            Box::pin(ready(Ok((head(200), b))))
        } else if request.url.contains("sse-cut") {
            let first: Vec<Result<Vec<u8>, TransportFault>> = vec![
                Ok(format!("data: {}\n\n", text("Hel")).into_bytes()),
                Err(TransportFault::ConnectionReset),
            ];
            Box::pin(ready(Ok((
                head(200),
                Box::pin(stream::iter(first)) as Chunks,
            ))))
        } else if request.url.contains("sse-flood") {
            // Bounded, so that a driver that misses its deadline fails
            // the test rather than hanging it.
            let clock = Rc::clone(&self.clock);
            let chunk = format!("data: {role}\n\n").into_bytes();
            let b = stream::iter(0..100_000).map(move |_| {
                clock.set(clock.get() + 1_000);
                Ok(chunk.clone())
            });
            Box::pin(ready(Ok((head(200), Box::pin(b) as Chunks))))
        } else if request.url.contains("sse-stall") {
            let flag = DropFlag(Rc::clone(&self.dropped));
            let b = stream::iter([Ok(format!("data: {role}\n\n").into_bytes())]).chain(
                stream::once(async move {
                    let _flag = flag;
                    pending::<()>().await;
                    unreachable!()
                }),
            );
            Box::pin(ready(Ok((head(200), Box::pin(b) as Chunks))))
        } else if request.url.contains("sse") {
            let b = sse(&[role, &text("Hel"), &text("lo"), "[DONE]"]);
            Box::pin(ready(Ok((head(200), b))))
        } else if request.url.contains("ok") {
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
        clock: Rc::default(),
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
        clock: Rc::default(),
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
        clock: Rc::default(),
    };
    let r = router(&["http://slow/v1"], json!({}));
    let err = futures::executor::block_on(drive(&r, &exec, request())).unwrap_err();
    assert_eq!(err.kind(), "all_failed");
    assert_eq!(err.attempts()[0].fault.as_ref().unwrap().name(), "timeout");
    assert_eq!(exec.now(), Instant::from_micros(100_000));
    assert_eq!(exec.dropped.get(), 1);
}

fn streamed() -> serde_json::Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true})
}

/// Every output of a driven call.
fn outputs(r: &Router, exec: &Scripted) -> Vec<Output> {
    let mut driver = Driver::start(r, exec, streamed());
    assert!(driver.is_streamed());
    futures::executor::block_on(async {
        let mut out = Vec::new();
        while let Some(o) = driver.next().await {
            out.push(o);
        }
        out
    })
}

fn contents(out: &[Output]) -> String {
    out.iter()
        .filter_map(|o| match o {
            Output::Chunk(c) => c.value()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned),
            _ => None,
        })
        .collect()
}

#[test]
fn a_stream_fails_over_before_its_commit_point_and_not_after() {
    let exec = Scripted {
        dropped: Rc::default(),
        clock: Rc::default(),
    };
    // An error event before any text: failed over, its bytes never seen.
    let r = router(&["http://sse-error/v1", "http://sse/v1"], json!({}));
    let out = outputs(&r, &exec);
    let Output::Commit {
        provider, attempts, ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(provider, "p1");
    assert_eq!(
        attempts[0].fault.as_ref().map(|f| f.name()),
        Some("stream_error")
    );
    assert_eq!(contents(&out), "Hello");
    // The held role chunk comes first, then the text.
    assert_eq!(out[1].chunk()["choices"][0]["delta"]["role"], "assistant");
    assert!(matches!(out.last(), Some(Output::Complete(Ok(_)))));
    // After the first text, a reset ends the stream with an error and no
    // second provider.
    let r = router(&["http://sse-cut/v1", "http://sse/v1"], json!({}));
    let out = outputs(&r, &exec);
    assert_eq!(contents(&out), "Hel");
    match out.last() {
        Some(Output::Complete(Err(RouteError::StreamInterrupted {
            provider, attempts, ..
        }))) => {
            assert_eq!(provider, "p0");
            assert_eq!(attempts.len(), 1, "no provider switch after commit");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_hedged_stream_is_won_by_the_first_leg_to_commit() {
    let exec = Scripted {
        dropped: Rc::default(),
        clock: Rc::default(),
    };
    // The stalled leg sent a role chunk (no output): it cannot win, and it
    // is dropped when the other commits.
    let r = router(
        &["http://sse-stall/v1", "http://sse/v1"],
        json!({"policy": "hedged", "hedge_k": 2}),
    );
    let out = outputs(&r, &exec);
    let Output::Commit {
        provider, attempts, ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(provider, "p1");
    assert_eq!(attempts[0].outcome.as_str(), "cancelled");
    assert_eq!(contents(&out), "Hello");
    assert_eq!(exec.dropped.get(), 1, "the losing leg's body was dropped");
}

#[test]
fn drive_refuses_a_streamed_request() {
    let exec = Scripted {
        dropped: Rc::default(),
        clock: Rc::default(),
    };
    let r = router(&["http://sse/v1"], json!({}));
    let err = futures::executor::block_on(drive(&r, &exec, streamed())).unwrap_err();
    assert_eq!(err.kind(), "invalid_request");
}

trait ChunkOf {
    fn chunk(&self) -> serde_json::Value;
}

impl ChunkOf for Output {
    fn chunk(&self) -> serde_json::Value {
        match self {
            Output::Chunk(c) => c.value().into_owned(),
            other => panic!("not a chunk: {other:?}"),
        }
    }
}

#[test]
fn a_flood_without_output_ends_at_the_timeout_and_starves_no_leg() {
    let exec = Scripted {
        dropped: Rc::default(),
        clock: Rc::default(),
    };
    // Every read of the flood is ready before the timer: the deadline
    // (100 ms) holds all the same, and the next provider answers.
    let r = router(&["http://sse-flood/v1", "http://sse/v1"], json!({}));
    let out = outputs(&r, &exec);
    let Output::Commit {
        provider, attempts, ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(provider, "p1");
    assert_eq!(
        attempts[0].fault.as_ref().map(|f| f.name()),
        Some("timeout")
    );
    assert!(
        exec.now() <= Instant::from_micros(102_000),
        "{:?}",
        exec.now()
    );
    assert_eq!(contents(&out), "Hello");
    // Hedged: the flooding leg does not keep the other from being read.
    exec.clock.set(0);
    let r = router(
        &["http://sse-flood/v1", "http://sse/v1"],
        json!({"policy": "hedged", "hedge_k": 2}),
    );
    let out = outputs(&r, &exec);
    let Output::Commit {
        provider, attempts, ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(provider, "p1");
    assert_eq!(attempts[0].outcome.as_str(), "cancelled");
    assert!(
        exec.now() <= Instant::from_micros(10_000),
        "{:?}",
        exec.now()
    );
}
