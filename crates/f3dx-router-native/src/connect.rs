//! The TCP connector under TLS: direct, or through the HTTPS proxy the
//! environment names.
//!
//! Deployments that may reach providers only through an egress proxy set
//! `HTTPS_PROXY` (or `ALL_PROXY`, with `NO_PROXY` exceptions), as curl
//! reads them. An `https://` provider is then reached through an HTTP
//! CONNECT tunnel, TLS running end to end inside it; the proxy sees the host
//! name and port only. `http://` providers (local models, mocks) are always
//! reached directly: the payload would cross the proxy in clear text.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the TCP stream for a destination: directly, or as a tunnel through
/// the environment's proxy.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    http: HttpConnector,
    /// Intercepts nothing when the environment names no proxy.
    proxy: Arc<Matcher>,
}

impl ProxyConnector {
    /// Reads the proxy variables now: a router's connections follow the
    /// environment it was built in.
    pub(crate) fn from_env(http: HttpConnector) -> Self {
        ProxyConnector {
            http,
            proxy: Arc::new(Matcher::from_env()),
        }
    }

    fn tunnel_for(&self, dst: &Uri) -> Option<Tunnel<HttpConnector>> {
        if dst.scheme_str() != Some("https") {
            return None;
        }
        let intercept = self.proxy.intercept(dst)?;
        let tunnel = Tunnel::new(intercept.uri().clone(), self.http.clone());
        Some(match intercept.basic_auth() {
            Some(auth) => tunnel.with_auth(auth.clone()),
            None => tunnel,
        })
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = Stamped<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // HttpConnector is always ready; a tunnel is built per call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match self.tunnel_for(&dst) {
            Some(mut tunnel) => Box::pin(async move { Ok(Stamped::now(tunnel.call(dst).await?)) }),
            None => {
                let connecting = self.http.call(dst);
                Box::pin(async move { Ok(Stamped::now(connecting.await?)) })
            }
        }
    }
}

/// When a connection was opened: carried in its [`Connected`] extras, so an
/// error on it tells whether the request went out on a pooled connection
/// opened before the request (see `executor.rs`, stale connections).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenedAt(pub(crate) Instant);

/// A stream that reports when it was opened; otherwise the stream itself.
pub(crate) struct Stamped<T> {
    inner: T,
    opened: Instant,
}

impl<T> Stamped<T> {
    fn now(inner: T) -> Self {
        Stamped {
            inner,
            opened: Instant::now(),
        }
    }
}

impl<T: Connection> Connection for Stamped<T> {
    fn connected(&self) -> Connected {
        self.inner.connected().extra(OpenedAt(self.opened))
    }
}

impl<T: Read + Unpin> Read for Stamped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Stamped<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}
