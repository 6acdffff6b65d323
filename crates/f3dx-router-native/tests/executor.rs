//! The native executor against raw loopback sockets: each transport fault
//! is reported as the core's fault, and dropping a request closes its
//! connection.

use std::future::Future;
use std::time::Duration;

use f3dx_router_core::{Executor, HttpRequest, TransportFault};
use f3dx_router_native::{NativeExecutor, ResponseBody};
use futures_core::Stream;
use std::future::poll_fn;
use std::pin::Pin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn request(port: u16, max_body_bytes: usize) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        headers: vec![("content-type".into(), "application/json".into())],
        body: b"{}".to_vec(),
        max_body_bytes,
        timeout: Duration::from_secs(5),
    }
}

/// Accept one connection, read the request head and body, then hand the
/// socket to `respond`.
async fn serve_once<F, Fut>(respond: F) -> u16
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // The request is small: read until its 2-byte body arrived.
        while !seen.ends_with(b"{}") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        respond(socket).await;
    });
    port
}

/// The body's pieces as they came, until its end or a fault.
async fn chunks(mut body: ResponseBody) -> Result<Vec<Vec<u8>>, TransportFault> {
    let mut out = Vec::new();
    while let Some(chunk) = poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
        out.push(chunk?);
    }
    Ok(out)
}

async fn outcome(
    exec: &NativeExecutor,
    req: HttpRequest,
) -> Result<(u16, Vec<u8>), TransportFault> {
    let (head, body) = exec.send(req).await?;
    Ok((head.status, chunks(body).await?.concat()))
}

#[tokio::test]
async fn a_complete_response_is_read() {
    let exec = NativeExecutor::new().unwrap();
    let port = serve_once(|mut s| async move {
        let reply =
            b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\ncontent-length: 2\r\n\r\n{}";
        s.write_all(reply).await.unwrap();
    })
    .await;
    let (head, body) = exec.send(request(port, 1024)).await.unwrap();
    assert_eq!(head.status, 429);
    assert_eq!(head.header("Retry-After"), Some("3"));
    assert_eq!(chunks(body).await.unwrap().concat(), b"{}");
}

#[tokio::test]
async fn refused() {
    let exec = NativeExecutor::new().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    assert_eq!(
        outcome(&exec, request(port, 1024)).await,
        Err(TransportFault::ConnectionRefused)
    );
}

#[tokio::test]
async fn reset_before_the_head() {
    let exec = NativeExecutor::new().unwrap();
    let port = serve_once(|s| async move {
        // Linger 0: the close sends RST, as a crashing upstream does. (The
        // deprecation warns about blocking closes, which this is not.)
        #[allow(deprecated)]
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    })
    .await;
    assert_eq!(
        outcome(&exec, request(port, 1024)).await,
        Err(TransportFault::ConnectionReset)
    );
}

#[tokio::test]
async fn a_short_body_is_truncated() {
    let exec = NativeExecutor::new().unwrap();
    let port = serve_once(|mut s| async move {
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"choi")
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        outcome(&exec, request(port, 1024)).await,
        Err(TransportFault::Truncated)
    );
}

#[tokio::test]
async fn a_body_arrives_in_the_pieces_it_was_sent_in() {
    // What streaming rests on: each chunk reaches the core when it arrives,
    // not at the end of the body. (The cap is the core's: tests/call.rs.)
    let exec = NativeExecutor::new().unwrap();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let port = serve_once(|mut s| async move {
        s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            .await
            .unwrap();
        // The second piece only after the client has the first.
        let _ = go_rx.await;
        s.write_all(b"6\r\nsecond\r\n0\r\n\r\n").await.unwrap();
    })
    .await;
    let (_, mut body) = exec.send(request(port, 1024)).await.unwrap();
    let first = poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await;
    assert_eq!(first, Some(Ok(b"first".to_vec())));
    go_tx.send(()).unwrap();
    assert_eq!(chunks(body).await.unwrap().concat(), b"second");
}

#[tokio::test]
async fn dropping_the_request_closes_the_connection() {
    let exec = NativeExecutor::new().unwrap();
    let (arrived_tx, arrived_rx) = tokio::sync::oneshot::channel();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    let port = serve_once(|mut s| async move {
        let _ = arrived_tx.send(());
        // Never answer; report whether the client goes away.
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        let _ = closed_tx.send(matches!(n, Ok(Ok(0)) | Ok(Err(_))));
    })
    .await;
    let pending = exec.send(request(port, 1024));
    // Drive the request until the server has it, then drop it, as a losing
    // hedge leg is dropped.
    tokio::select! {
        _ = pending => panic!("the server never answers"),
        _ = arrived_rx => {}
    }
    let closed = tokio::time::timeout(Duration::from_secs(5), closed_rx)
        .await
        .unwrap()
        .unwrap();
    assert!(closed, "the server must see the connection close");
}

#[tokio::test]
async fn a_huge_declared_length_allocates_nothing_up_front() {
    // 64 GiB declared: the body is read as it comes (nothing is sized from
    // the number) and ends short.
    let port = serve_once(|mut s| async move {
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 68719476736\r\n\r\n{\"choices\"")
            .await
            .unwrap();
    })
    .await;
    let exec = NativeExecutor::new().unwrap();
    let fault = outcome(&exec, request(port, 1 << 40)).await.unwrap_err();
    assert_eq!(fault, TransportFault::Truncated);
}
