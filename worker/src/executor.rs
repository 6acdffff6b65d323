//! workers-rs `Fetch` behind the core's `Executor`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use f3dx_router_core::{Executor, HttpRequest, Instant, ResponseHead, TransportFault};
use futures::StreamExt;
use worker::{
    AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response,
};

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Sends with the runtime's `fetch`. Stateless: one per isolate is enough.
#[derive(Clone, Copy, Debug, Default)]
pub struct FetchExecutor;

/// Aborts its attempt's fetch when dropped before the body was read: a
/// dropped JS promise does not cancel anything by itself, the controller does.
struct AbortOnDrop(Option<AbortController>);

impl AbortOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(controller) = self.0.take() {
            controller.abort();
        }
    }
}

impl Executor for FetchExecutor {
    type Body = LocalFuture<Result<Vec<u8>, TransportFault>>;
    type Response = LocalFuture<Result<(ResponseHead, Self::Body), TransportFault>>;
    type Sleep = Delay;

    fn send(&self, request: HttpRequest) -> Self::Response {
        Box::pin(async move {
            let max = request.max_body_bytes;
            let fetch = build(&request)?;
            let controller = AbortController::default();
            let signal = controller.signal();
            let mut guard = AbortOnDrop(Some(controller));
            let mut response = fetch
                .send_with_signal(&signal)
                .await
                .map_err(|e| classify(&e))?;
            let head = ResponseHead {
                status: response.status_code(),
                headers: response.headers().entries().collect(),
                received_unix_secs: (js_sys::Date::now() / 1000.0) as u64,
            };
            let body: Self::Body = Box::pin(async move {
                let body = read_body(&mut response, max).await;
                guard.disarm();
                body
            });
            Ok((head, body))
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        let wait =
            Duration::from_micros(deadline.as_micros().saturating_sub(self.now().as_micros()));
        Delay::from(wait)
    }

    fn now(&self) -> Instant {
        // Workers advance the clock only across I/O; the core only needs it
        // monotonic and consistent with the timers, which it is.
        Instant::from_micros((js_sys::Date::now() * 1000.0) as u64)
    }
}

fn build(request: &HttpRequest) -> Result<Fetch, TransportFault> {
    let headers = Headers::new();
    for (name, value) in &request.headers {
        // Never echo the value: it may be a key.
        headers
            .set(name, value)
            .map_err(|_| TransportFault::Other(format!("invalid header {name:?}")))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        // Following a redirect would replay the payload and key elsewhere.
        .with_redirect(RequestRedirect::Manual)
        .with_body(Some(
            js_sys::Uint8Array::from(request.body.as_slice()).into(),
        ));
    let req = Request::new_with_init(&request.url, &init)
        .map_err(|e| TransportFault::Other(format!("cannot build the request: {e}")))?;
    Ok(Fetch::Request(req))
}

async fn read_body(response: &mut Response, max: usize) -> Result<Vec<u8>, TransportFault> {
    let declared = response.headers().get("content-length").ok().flatten();
    if declared
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
    {
        return Err(TransportFault::BodyTooLarge);
    }
    let mut stream = response.stream().map_err(|e| classify(&e))?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| TransportFault::Truncated)?;
        if body.len() + chunk.len() > max {
            return Err(TransportFault::BodyTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Workers report network failures as `TypeError`s with a message only.
fn classify(error: &worker::Error) -> TransportFault {
    let message = error.to_string();
    let lower = message.to_ascii_lowercase();
    if lower.contains("refused") {
        TransportFault::ConnectionRefused
    } else if lower.contains("dns") || lower.contains("resolve") {
        TransportFault::Dns
    } else if lower.contains("reset")
        || lower.contains("connection lost")
        || lower.contains("closed")
    {
        TransportFault::ConnectionReset
    } else {
        TransportFault::Other(message)
    }
}
