//! reqwest behind the core's `Executor`.

use std::error::Error as _;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use f3dx_router_core::{Executor, HttpRequest, Instant, ResponseHead, TransportFault};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Idle connections kept per upstream host.
pub const POOL_IDLE_PER_HOST: usize = 16;

/// Sends through one pooled reqwest client; time from one monotonic origin.
///
/// Must be used inside the tokio runtime that drives it (its sleeps are
/// tokio timers).
#[derive(Clone, Debug)]
pub struct NativeExecutor {
    client: reqwest::Client,
    origin: std::time::Instant,
}

impl NativeExecutor {
    /// A client with a pool of [`POOL_IDLE_PER_HOST`] idle connections per
    /// host. Timeouts are the core's business, so the client sets none.
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // Redirects would replay the payload (and the key) elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(NativeExecutor {
            client,
            origin: std::time::Instant::now(),
        })
    }
}

impl Executor for NativeExecutor {
    type Body = BoxFuture<Result<Vec<u8>, TransportFault>>;
    type Response = BoxFuture<Result<(ResponseHead, Self::Body), TransportFault>>;
    type Sleep = tokio::time::Sleep;

    fn send(&self, request: HttpRequest) -> Self::Response {
        let max = request.max_body_bytes;
        let built = build(&self.client, request);
        Box::pin(async move {
            let response = built?.await.map_err(classify)?;
            let head = ResponseHead {
                status: response.status().as_u16(),
                headers: response
                    .headers()
                    .iter()
                    .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                    .collect(),
                received_unix_secs: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            };
            let body: Self::Body = Box::pin(read_body(response, max));
            Ok((head, body))
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        let at = self.origin + Duration::from_micros(deadline.as_micros());
        tokio::time::sleep_until(at.into())
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }
}

fn build(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<impl Future<Output = reqwest::Result<reqwest::Response>>, TransportFault> {
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for (name, value) in &request.headers {
        // Names and values were validated with the config; a failure here
        // is a bug, reported without the value (it may be a key).
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| TransportFault::Other(format!("invalid header name {name:?}")))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| TransportFault::Other(format!("invalid value for header {name}")))?;
        if matches!(name.as_str(), "authorization" | "x-api-key") {
            value.set_sensitive(true);
        }
        headers.insert(name, value);
    }
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| TransportFault::Other(format!("invalid method {}", request.method)))?;
    Ok(client
        .request(method, &request.url)
        .headers(headers)
        .body(request.body)
        .send())
}

/// Read the body, failing as soon as it passes `max` bytes.
async fn read_body(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, TransportFault> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(TransportFault::BodyTooLarge);
    }
    let mut body = Vec::with_capacity(response.content_length().map_or(0, |n| n as usize));
    while let Some(chunk) = response.chunk().await.map_err(|e| match classify(e) {
        // The head arrived, so a broken body is a truncated one.
        TransportFault::ConnectionReset | TransportFault::Other(_) => TransportFault::Truncated,
        other => other,
    })? {
        if body.len() + chunk.len() > max {
            return Err(TransportFault::BodyTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Map reqwest's error to the core's faults by walking its causes. The
/// message never includes the URL's credentials (there are none in URLs).
fn classify(error: reqwest::Error) -> TransportFault {
    if let Some(fault) = cause_fault(&error) {
        return fault;
    }
    TransportFault::Other(error.without_url().to_string())
}

fn cause_fault(error: &reqwest::Error) -> Option<TransportFault> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return Some(TransportFault::ConnectionRefused),
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => return Some(TransportFault::ConnectionReset),
                _ => {}
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_closed() {
                return Some(TransportFault::ConnectionReset);
            }
        }
        if e.to_string().starts_with("dns error") {
            return Some(TransportFault::Dns);
        }
        cause = e.source();
    }
    None
}
