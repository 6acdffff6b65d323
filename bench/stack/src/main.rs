//! One thread, sequential calls to the bench's nginx through each layer of
//! the native stack, the order rotated every round:
//!
//! - `floor`: a blocking std `TcpStream`, the request prebuilt, the answer
//!   read by Content-Length (no JSON);
//! - `hyper`: one hyper HTTP/1.1 connection (`client::conn::http1`) on a
//!   current-thread runtime, the answer parsed with serde_json;
//! - `hyper-util`: hyper-util's pooled client (what f3dx_router sends with);
//! - `reqwest`: reqwest 0.12 on the same runtime (what it sent with before);
//! - `f3dx_router`: `NativeRouter::route_blocking`, one OpenAI provider
//!   (request validated and encoded by the core, the answer decoded).
//!
//! Usage: `stack OK_BASE_URL CALLS ROUNDS WARMUP`; prints one JSON object:
//! per layer the per-call wall times (us) and the thread's CPU time per call.

use std::io::{Read, Write};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

const BODY: &[u8] = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

fn thread_cpu_us() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

type Layer<'a> = (&'static str, Box<dyn FnMut() + 'a>);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, calls, rounds, warmup] = &args[..] else {
        panic!("usage: stack OK_BASE_URL CALLS ROUNDS WARMUP");
    };
    let (calls, rounds, warmup): (usize, usize, usize) =
        (calls.parse().unwrap(), rounds.parse().unwrap(), warmup.parse().unwrap());
    let hostport = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let url = format!("{base}/chat/completions");
    let uri: hyper::Uri = url.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut raw = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {hostport}\r\ncontent-type: application/json\r\nauthorization: Bearer k\r\ncontent-length: {}\r\n\r\n",
        BODY.len()
    )
    .into_bytes();
    raw.extend_from_slice(BODY);
    let mut socket = std::net::TcpStream::connect(&hostport).unwrap();
    socket.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let floor = move || {
        socket.write_all(&raw).unwrap();
        let mut got = 0;
        loop {
            let n = socket.read(&mut buf[got..]).unwrap();
            assert!(n > 0, "nginx closed the connection");
            got += n;
            let Some(end) = buf[..got].windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = std::str::from_utf8(&buf[..end]).unwrap().to_ascii_lowercase();
            let length: usize = head
                .split("content-length:")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap()
                .parse()
                .unwrap();
            while got < end + 4 + length {
                got += socket.read(&mut buf[got..]).unwrap();
            }
            return;
        }
    };

    let mut sender = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&hostport).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        sender
    });
    let request = |with_host: bool| {
        let mut r = hyper::Request::post(uri.clone())
            .header("content-type", "application/json")
            .header("authorization", "Bearer k");
        if with_host {
            r = r.header("host", &hostport);
        }
        r.body(Full::new(Bytes::from_static(BODY))).unwrap()
    };
    let parse = |b: &[u8]| std::hint::black_box(serde_json::from_slice::<Value>(b).unwrap());
    let hyper_conn = || {
        rt.block_on(async {
            let resp = sender.send_request(request(true)).await.unwrap();
            assert_eq!(resp.status(), 200);
            parse(&resp.into_body().collect().await.unwrap().to_bytes());
        })
    };

    let pooled = {
        let _guard = rt.enter();
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.set_nodelay(true);
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, Full<Bytes>>(http)
    };
    let hyper_util_client = || {
        rt.block_on(async {
            let resp = pooled.request(request(false)).await.unwrap();
            assert_eq!(resp.status(), 200);
            parse(&resp.into_body().collect().await.unwrap().to_bytes());
        })
    };

    let reqwest_client = {
        let _guard = rt.enter();
        reqwest::Client::builder()
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let reqwest_call = || {
        rt.block_on(async {
            let resp = reqwest_client
                .post(&url)
                .header("content-type", "application/json")
                .header("authorization", "Bearer k")
                .body(BODY)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            parse(&resp.bytes().await.unwrap());
        })
    };

    let config = f3dx_router_core::RouterConfig::from_json(
        &json!({"providers": [{"name": "ok", "kind": "openai", "base_url": base, "api_key": "k"}]}),
        &|_| None,
        Default::default(),
    )
    .unwrap();
    let router = f3dx_router_native::NativeRouter::new(config).unwrap();
    let message: Value = serde_json::from_slice(BODY).unwrap();
    let routed = || {
        let r = router.route_blocking(message.clone()).unwrap().unwrap();
        std::hint::black_box(r);
    };

    let mut layers: Vec<Layer> = vec![
        ("floor", Box::new(floor)),
        ("hyper", Box::new(hyper_conn)),
        ("hyper-util", Box::new(hyper_util_client)),
        ("reqwest", Box::new(reqwest_call)),
        ("f3dx_router", Box::new(routed)),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); layers.len()];
    let mut cpu = vec![0.0; layers.len()];
    let per_round = calls.div_ceil(rounds.max(1));
    for round in 0..rounds.max(1) {
        for k in 0..layers.len() {
            let i = (k + round) % layers.len();
            let f = &mut layers[i].1;
            for _ in 0..warmup {
                f();
            }
            let c0 = thread_cpu_us();
            for _ in 0..per_round {
                let t = Instant::now();
                f();
                times[i].push(t.elapsed().as_secs_f64() * 1e6);
            }
            cpu[i] += thread_cpu_us() - c0;
        }
    }
    let out: serde_json::Map<String, Value> = layers
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let n = times[i].len();
            (
                (*name).to_owned(),
                json!({"times_us": times[i], "cpu_us_per_call": cpu[i] / n as f64}),
            )
        })
        .collect();
    println!("{}", Value::Object(out));
}
