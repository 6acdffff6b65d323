//! `HTTPS_PROXY` from the environment: an `https://` provider is reached
//! through a CONNECT tunnel, `NO_PROXY` hosts and `http://` providers
//! directly. One test in its own binary: it sets process-wide variables.

use std::time::Duration;

use f3dx_router_core::{Executor, HttpRequest, TransportFault};
use f3dx_router_native::NativeExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn request(url: String) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url,
        headers: vec![("authorization".into(), "Bearer sk-secret".into())],
        body: b"{}".to_vec(),
        max_body_bytes: 1 << 20,
        timeout: Duration::from_secs(5),
    }
}

/// A proxy that records what arrives before the TLS handshake, accepts the
/// tunnel, then closes it (no upstream behind it).
async fn proxy() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Bounded: the test makes at most a few connections.
        for _ in 0..4 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.ends_with(b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&seen).into_owned());
            let _ = socket
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await;
            // Read the ClientHello, then hang up.
            let _ = socket.read(&mut buf).await;
        }
    });
    (port, rx)
}

#[tokio::test]
async fn https_goes_through_the_proxy_and_no_proxy_hosts_do_not() {
    let (port, mut seen) = proxy().await;
    // SAFETY of the test: the only test in this binary, so nothing reads
    // the environment concurrently.
    std::env::set_var("HTTPS_PROXY", format!("http://user:pw@127.0.0.1:{port}"));
    std::env::set_var("NO_PROXY", "localhost,127.0.0.1");
    let exec = NativeExecutor::new().unwrap();

    // Through the tunnel: the proxy sees the host and port and its own
    // credentials, never the request (TLS runs inside the tunnel).
    let fault = exec
        .send(request(
            "https://api.provider.test/v1/chat/completions".into(),
        ))
        .await
        .err()
        .expect("the tunnel is closed before TLS completes");
    assert!(
        matches!(
            fault,
            TransportFault::ConnectionReset | TransportFault::Other(_)
        ),
        "{fault:?}"
    );
    let connect = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        connect.starts_with("CONNECT api.provider.test:443 HTTP/1.1\r\n"),
        "{connect:?}"
    );
    assert!(
        connect.contains("Proxy-Authorization: Basic dXNlcjpwdw==\r\n")
            || connect.contains("proxy-authorization: Basic dXNlcjpwdw==\r\n"),
        "{connect:?}"
    );
    assert!(!connect.contains("sk-secret"), "{connect:?}");

    // NO_PROXY: straight to the (closed) port, not to the proxy.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let fault = exec
        .send(request(format!("https://127.0.0.1:{closed_port}/v1")))
        .await
        .err()
        .unwrap();
    assert_eq!(fault, TransportFault::ConnectionRefused);

    // http:// never goes through the proxy, NO_PROXY or not (127.0.0.2 is
    // not in it).
    let fault = exec
        .send(request(format!("http://127.0.0.2:{closed_port}/v1")))
        .await
        .err()
        .unwrap();
    assert_eq!(fault, TransportFault::ConnectionRefused);
    assert!(
        seen.try_recv().is_err(),
        "only the https call reached the proxy"
    );
}
