//! hyper behind the core's `Executor`.
//!
//! hyper-util's pooled client with rustls, used directly: reqwest on top of
//! it cost about 14 us of CPU per call here (docs/benchmarks.md, "the native hot
//! path"), which is most of what a call spends outside the kernel. What
//! reqwest added and a router does not use (redirects, cookies, timeouts,
//! decompression) is the core's business or refused anyway.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use f3dx_router_core::{Executor, HttpRequest, Instant, ResponseHead, TransportFault};
use futures_core::Stream;
use http_body_util::Full;
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::connect::{OpenedAt, ProxyConnector};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type HttpClient = Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

/// Idle connections kept per upstream host by a thread's lane: a thread
/// has one call at a time (a few with hedging).
pub const POOL_IDLE_PER_HOST: usize = 16;

/// Idle connections kept per upstream host by the background runtime's pool,
/// which serves every async call of a router at once: an event loop with
/// hundreds of calls in flight would otherwise close and reopen most of its
/// connections (the async bench at 256 concurrent calls: 714 new
/// connections per 1000 calls with 16).
pub const BACKGROUND_POOL_IDLE_PER_HOST: usize = 256;

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// What one read of a response takes from the socket. Fixed rather than
/// hyper's adaptive size, which grows on a connection that brought a large
/// body and then reads a whole stream at once: its first output waits for
/// that read and its copies (a 49 KB stream from a loopback upstream: about
/// 20 us more to the first chunk).
const READ_BUF_BYTES: usize = 16 * 1024;

/// Parsed URLs an executor keeps: a router sends to a handful of endpoints
/// over and over. Past this many (a config with more providers) it starts over.
const URI_CACHE: usize = 64;

/// Sends through one pooled client (HTTP/1.1, and HTTP/2 where the server
/// offers it over TLS; `https://` through the environment's `HTTPS_PROXY`
/// if it names one, see `connect.rs`); tells time from one monotonic origin.
///
/// Must be used inside the tokio runtime that drives it: its connection
/// tasks and sleeps belong to that runtime.
pub struct NativeExecutor {
    client: HttpClient,
    /// Keeps no idle connection: every request opens its own. Used only to
    /// retry a request that a stale pooled connection lost.
    fresh: Arc<HttpClient>,
    origin: std::time::Instant,
    /// The core hands over URL strings; parse each once.
    uris: Mutex<Vec<(String, Uri)>>,
}

impl std::fmt::Debug for NativeExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeExecutor").finish_non_exhaustive()
    }
}

/// The TLS settings every executor uses: rustls with its safe default
/// protocol versions and Mozilla's roots (webpki-roots), so a build behaves
/// the same on every machine; ALPN offers h2 and http/1.1.
pub fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    use hyper_rustls::ConfigBuilderExt as _;
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_webpki_roots()
    .with_no_client_auth())
}

impl NativeExecutor {
    /// A client with a pool of [`POOL_IDLE_PER_HOST`] idle connections per
    /// host. Timeouts are the core's business, so the client sets none.
    pub fn new() -> Result<Self, rustls::Error> {
        Self::with_origin(std::time::Instant::now())
    }

    /// Like [`NativeExecutor::new`], telling time from `origin`: executors
    /// that share an origin agree on every [`Instant`] (the router's
    /// cooldowns are kept in them).
    pub fn with_origin(origin: std::time::Instant) -> Result<Self, rustls::Error> {
        Ok(Self::with_tls(origin, tls_config()?))
    }

    /// Like [`NativeExecutor::with_origin`], with the given TLS settings
    /// (built once and shared by a router's executors).
    pub fn with_tls(origin: std::time::Instant, tls: rustls::ClientConfig) -> Self {
        Self::with_pool(origin, tls, POOL_IDLE_PER_HOST)
    }

    /// Like [`NativeExecutor::with_tls`], keeping up to `idle_per_host` idle
    /// connections per host.
    pub fn with_pool(
        origin: std::time::Instant,
        tls: rustls::ClientConfig,
        idle_per_host: usize,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        // The TLS layer above decides the scheme.
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(ProxyConnector::from_env(http));
        let client = Client::builder(TokioExecutor::new())
            .http1_read_buf_exact_size(READ_BUF_BYTES)
            .pool_max_idle_per_host(idle_per_host)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(https.clone());
        let fresh = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(https);
        NativeExecutor {
            client,
            fresh: Arc::new(fresh),
            origin,
            uris: Mutex::new(Vec::new()),
        }
    }

    fn uri(&self, url: &str) -> Result<Uri, TransportFault> {
        let mut uris = self.uris.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, uri)) = uris.iter().find(|(s, _)| s == url) {
            return Ok(uri.clone());
        }
        // The config validated it: a failure here is a bug. The message
        // leaves the URL out.
        let uri: Uri = url
            .parse()
            .map_err(|e| TransportFault::Other(format!("invalid url: {e}")))?;
        if uris.len() == URI_CACHE {
            uris.clear();
        }
        uris.push((url.to_owned(), uri.clone()));
        Ok(uri)
    }
}

/// The hyper request for `request`, to `uri`, with `body`.
fn build(
    request: &HttpRequest,
    uri: Uri,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, TransportFault> {
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| TransportFault::Other(format!("invalid method {}", request.method)))?;
    let mut built = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(body))
        .map_err(|e| TransportFault::Other(format!("cannot build the request: {e}")))?;
    let headers = built.headers_mut();
    headers.reserve(request.headers.len());
    for (name, value) in &request.headers {
        // Names and values were validated with the config; a failure
        // here is a bug, reported without the value (it may be a key).
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| TransportFault::Other(format!("invalid header name {name:?}")))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| TransportFault::Other(format!("invalid value for header {name}")))?;
        if matches!(name.as_str(), "authorization" | "x-api-key") {
            value.set_sensitive(true);
        }
        headers.insert(name, value);
    }
    Ok(built)
}

impl Executor for NativeExecutor {
    type Body = ResponseBody;
    type Response = BoxFuture<Result<(ResponseHead, Self::Body), TransportFault>>;
    type Sleep = tokio::time::Sleep;

    fn send(&self, mut request: HttpRequest) -> Self::Response {
        let body = Bytes::from(std::mem::take(&mut request.body));
        let started = std::time::Instant::now();
        let uri = self.uri(&request.url);
        let sent = uri
            .clone()
            .and_then(|uri| build(&request, uri, body.clone()))
            .map(|r| self.client.request(r));
        // Built again only in the one case below.
        let fresh = Arc::clone(&self.fresh);
        let retry = move || build(&request, uri?, body).map(|r| fresh.request(r));
        Box::pin(async move {
            let response = match sent?.await {
                Ok(response) => response,
                // A pooled connection the server had closed (without
                // `Connection: close`) just before we reused it: the
                // connection ended before any byte of an answer. It is sent
                // once more, on a new connection, as browsers do for a
                // reused connection (hyper-util itself retries only requests
                // it had not written yet). A connection opened for this
                // request is never retried: a server that drops requests
                // gets each one once.
                Err(e) if lost_on_stale_connection(&e, started) => {
                    retry()?.await.map_err(|e| classify(&e))?
                }
                Err(e) => return Err(classify(&e)),
            };
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
            let body = ResponseBody {
                incoming: response.into_body(),
            };
            Ok((head, body))
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        let at = self.origin + Duration::from_micros(deadline.as_micros());
        tokio::time::sleep_until(at.into())
    }

    fn now(&self) -> Instant {
        since(self.origin)
    }
}

/// Whether `error` is a connection that ended before any answer, on a pooled
/// connection opened before the request was sent.
fn lost_on_stale_connection(
    error: &hyper_util::client::legacy::Error,
    request_started: std::time::Instant,
) -> bool {
    let Some(connected) = error.connect_info() else {
        return false;
    };
    let mut extras = hyper::http::Extensions::new();
    connected.get_extras(&mut extras);
    let reused = extras
        .get::<OpenedAt>()
        .is_some_and(|opened| opened.0 < request_started);
    reused && classify(error) == TransportFault::ConnectionReset
}

/// The core's [`Instant`] on a clock that started at `origin`.
pub(crate) fn since(origin: std::time::Instant) -> Instant {
    Instant::from_micros(origin.elapsed().as_micros() as u64)
}

/// A response body as the core reads it: each data frame's bytes as they
/// arrive. Nothing is sized or buffered here: the core counts the bytes
/// against the provider's cap (a peer's `Content-Length` is only a claim).
pub struct ResponseBody {
    incoming: Incoming,
}

impl Stream for ResponseBody {
    type Item = Result<Vec<u8>, TransportFault>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let frame = match Pin::new(&mut self.incoming).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => {
                    // The head arrived, so a broken body is a truncated one.
                    let fault = match classify(&e) {
                        TransportFault::ConnectionReset | TransportFault::Other(_) => {
                            TransportFault::Truncated
                        }
                        other => other,
                    };
                    return Poll::Ready(Some(Err(fault)));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            // Trailers (HTTP/2) carry no body bytes.
            if let Ok(chunk) = frame.into_data() {
                if !chunk.is_empty() {
                    // Without a copy when the chunk owns its buffer alone.
                    return Poll::Ready(Some(Ok(Vec::from(chunk))));
                }
            }
        }
    }
}

/// Map a client error to the core's faults by walking its causes; anything
/// else is `Other` with the chain of messages (which never hold the URL or
/// a header).
fn classify(error: &(dyn std::error::Error + 'static)) -> TransportFault {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return TransportFault::ConnectionRefused,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => return TransportFault::ConnectionReset,
                _ => {}
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_closed() {
                return TransportFault::ConnectionReset;
            }
        }
        if e.to_string().starts_with("dns error") {
            return TransportFault::Dns;
        }
        cause = e.source();
    }
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        message.push_str(": ");
        message.push_str(&e.to_string());
        cause = e.source();
    }
    TransportFault::Other(message)
}
