//! The plain data that crosses the I/O boundary: what the core asks a host to
//! send, and what the host reports back.

use std::fmt;
use std::time::Duration;

/// An HTTP request for a host to send. The core builds it; the host only
/// carries it out.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Always `POST` today; kept for completeness of the boundary.
    pub method: &'static str,
    /// Absolute `http` or `https` URL.
    pub url: String,
    /// Header names in lower case. May hold credentials: never log them.
    pub headers: Vec<(String, String)>,
    /// The encoded body.
    pub body: Vec<u8>,
    /// Largest response body the host may read; a larger one is a
    /// [`TransportFault::BodyTooLarge`].
    pub max_body_bytes: usize,
    /// Informational: the core enforces this deadline itself and cancels the
    /// attempt; hosts may also use it as a socket-level timeout.
    pub timeout: Duration,
}

impl HttpRequest {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

// Headers carry keys, so Debug lists only their names.
impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("header_names", &names)
            .field("body_len", &self.body.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Status line and headers of a response: enough to classify an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP status code.
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The host's wall clock when the head arrived, in Unix seconds; used to
    /// read a `Retry-After` given as an HTTP date when the response has no
    /// `Date` header.
    pub received_unix_secs: u64,
}

impl ResponseHead {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A failure below HTTP: the request got no usable response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportFault {
    /// Nothing listened at the address.
    ConnectionRefused,
    /// The connection was reset or closed before a complete response.
    ConnectionReset,
    /// The name did not resolve.
    Dns,
    /// The body ended before its declared length.
    Truncated,
    /// The body was larger than [`HttpRequest::max_body_bytes`].
    BodyTooLarge,
    /// Anything else the host could not classify (TLS, protocol errors...).
    Other(String),
}

impl TransportFault {
    /// Whether the connection itself failed (refused, reset, DNS, TLS and
    /// other protocol errors), rather than one response: it fails every
    /// model the provider serves.
    pub fn is_connection(&self) -> bool {
        !matches!(
            self,
            TransportFault::Truncated | TransportFault::BodyTooLarge
        )
    }
}

impl fmt::Display for TransportFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportFault::ConnectionRefused => f.write_str("connection refused"),
            TransportFault::ConnectionReset => f.write_str("connection reset"),
            TransportFault::Dns => f.write_str("DNS lookup failed"),
            TransportFault::Truncated => f.write_str("response body truncated"),
            TransportFault::BodyTooLarge => f.write_str("response body over the size cap"),
            TransportFault::Other(s) => write!(f, "transport error: {s}"),
        }
    }
}
