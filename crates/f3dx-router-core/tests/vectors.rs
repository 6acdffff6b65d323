//! Runner 1 of the shared vectors (`tests/vectors/*.json`): the core stepped
//! on a virtual clock that jumps from event to event. Nothing sleeps, and
//! timings are exact.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use f3dx_router_core::endpoint::{self, Answer};
use f3dx_router_core::{
    Action, Attempt, AttemptId, CallOptions, HostLimits, HttpRequest, Instant, Output,
    ResponseHead, RouteError, Routed, Router, RouterConfig, TransportFault,
};
use serde_json::{json, Value};

const WALL_CLOCK_ORIGIN: u64 = 1_700_000_000;

#[derive(Debug)]
enum Event {
    Head(ResponseHead),
    Body(Vec<u8>),
    /// A piece of a streamed body, then its clean end.
    Chunk(Vec<u8>),
    End,
    Fault(TransportFault),
}

/// What the caller of a streamed call received.
#[derive(Debug, Default)]
struct Streamed {
    committed: Option<String>,
    /// The attempts as of the commit point (the stream's route headers).
    commit_attempts: Vec<Attempt>,
    chunks: usize,
    content: String,
    /// The body the front door sends (SSE events), as the endpoint frames it.
    body: Vec<u8>,
}

/// A mock provider's script, played in virtual time.
struct Mock {
    refuse: bool,
    responses: Vec<Value>,
    next: usize,
}

struct Received {
    path: String,
    headers: Vec<(String, String)>,
    json: Value,
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

#[test]
fn shared_vectors() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("tests/vectors exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected at least 30 vectors, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let vector: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        if let Err(e) = run_vector(&vector) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

fn run_vector(vector: &Value) -> Result<(), String> {
    let mut config = vector["config"].clone();
    let providers = config["providers"]
        .as_array_mut()
        .ok_or("config.providers")?;
    for (i, p) in providers.iter_mut().enumerate() {
        p["base_url"] = json!(format!("http://127.0.0.1:{}/v1", 20000 + i));
    }
    let config = RouterConfig::from_json(&config, &|_| None, HostLimits::default())
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = config.providers.iter().map(|p| p.name.clone()).collect();
    let router = Router::new(config);
    let mut mocks: HashMap<String, Mock> = HashMap::new();
    for (name, m) in vector["mocks"].as_object().ok_or("mocks")? {
        mocks.insert(
            name.clone(),
            Mock {
                refuse: m["refuse"].as_bool().unwrap_or(false),
                responses: m["responses"].as_array().cloned().unwrap_or_default(),
                next: 0,
            },
        );
    }
    let mut now = Instant::ZERO;
    for (i, call) in vector["calls"]
        .as_array()
        .ok_or("calls")?
        .iter()
        .enumerate()
    {
        now = now + Duration::from_millis(call["gap_ms"].as_u64().unwrap_or(0));
        if let Some(r) = call.get("record_quality") {
            // A result the caller checked itself, reported through the API.
            let text = |k: &str| r[k].as_str().unwrap_or_default();
            let passed = r["passed"].as_bool().ok_or("record_quality.passed")?;
            router
                .record_quality(text("provider"), text("tenant"), text("model"), passed, now)
                .map_err(|e| format!("call {i}: record_quality: {e}"))?;
            continue;
        }
        if let Some(k) = call.get("set_api_key") {
            // A key rotated between calls.
            set_api_key(&router, k).map_err(|e| format!("call {i}: {e}"))?;
            continue;
        }
        // Every call enters through the front door, as a host's would.
        let parsed = front_door_call(&router, call);
        let chat = match parsed {
            Ok(chat) => chat,
            Err(answer) => {
                // Refused at the door: nothing sent, nothing else to check.
                check_front_door(&call["expect"]["front_door"], &answer, &answer.body)
                    .map_err(|e| format!("call {i}: {e}"))?;
                if let Some(m) = expect_nothing_sent(&call["expect"]) {
                    return Err(format!("call {i}: {m}"));
                }
                continue;
            }
        };
        let streamed_call = chat.streamed;
        if let Some(want) = call["expect"].get("explain") {
            // What explain says before the call, at the call's start.
            let got = router
                .explain(chat.body.clone(), chat.options.clone(), now)
                .map_err(|e| format!("call {i}: explain: {e}"))?
                .to_json(now);
            if let Some(m) = subset_mismatch(want, &got, "explain") {
                return Err(format!("call {i}: {m}; explain: {got}"));
            }
        }
        let during = call.get("during");
        let (result, received, ended, streamed) = run_call(
            &router,
            &names,
            &mut mocks,
            chat.body,
            chat.options,
            now,
            during,
        )
        .map_err(|e| format!("call {i}: {e}"))?;
        let latency = ended - now;
        now = ended;
        check(&call["expect"], &result, &received, latency, &streamed)
            .map_err(|e| format!("call {i}: {e}"))?;
        if let Some(want) = call["expect"].get("front_door") {
            let (answer, body) = match (&streamed.committed, streamed_call) {
                (Some(provider), true) => {
                    let head = endpoint::stream_head(provider, &streamed.commit_attempts);
                    (head, streamed.body.clone())
                }
                _ => {
                    let answer = match &result {
                        Ok(r) => endpoint::routed(r),
                        Err(e) => endpoint::route_error(e),
                    };
                    let body = answer.body.clone();
                    (answer, body)
                }
            };
            check_front_door(want, &answer, &body).map_err(|e| format!("call {i}: {e}"))?;
        }
        if let Some(want) = call["expect"].get("hedges") {
            let h = router.stats(now).hedges;
            let got =
                json!({"sent": h.sent, "won": h.won, "skipped_for_budget": h.skipped_for_budget});
            if let Some(m) = subset_mismatch(want, &got, "hedges") {
                return Err(format!("call {i}: {m}"));
            }
        }
    }
    Ok(())
}

type CallResult = Result<Routed, RouteError>;
/// Requests each provider received during one call, by provider name.
type ReceivedBy = BTreeMap<String, Vec<Received>>;

fn run_call(
    router: &Router,
    names: &[String],
    mocks: &mut HashMap<String, Mock>,
    request: Value,
    options: CallOptions,
    start: Instant,
    mut during: Option<&Value>,
) -> Result<(CallResult, ReceivedBy, Instant, Streamed), String> {
    let mut call = router.start_call_with(request, options, start);
    let mut streamed = Streamed::default();
    let mut now = start;
    // (time, sequence, attempt, event): the sequence keeps arrival order stable.
    let mut queue: Vec<(Instant, u64, AttemptId, Event)> = Vec::new();
    let mut seq = 0u64;
    let mut received = ReceivedBy::new();
    for _ in 0..10_000 {
        while let Some(action) = call.poll_action() {
            match action {
                Action::Send {
                    attempt,
                    provider,
                    request,
                } => {
                    let name = &names[provider];
                    received
                        .entry(name.clone())
                        .or_default()
                        .push(record(&request));
                    // A key set while the call is in flight: once its
                    // request to `after_sent_to` is out.
                    if let Some(d) = during.filter(|d| d["after_sent_to"] == json!(name)) {
                        set_api_key(router, &d["set_api_key"])?;
                        during = None;
                    }
                    let mock = mocks
                        .get_mut(name)
                        .ok_or_else(|| format!("no mock for {name}"))?;
                    for (delay, event) in play(mock)? {
                        seq += 1;
                        queue.push((now + delay, seq, attempt, event));
                    }
                }
                Action::Cancel { attempt } => queue.retain(|(_, _, id, _)| *id != attempt),
                Action::Commit {
                    provider, attempts, ..
                } => {
                    streamed.committed = Some(provider);
                    streamed.commit_attempts = attempts;
                }
                Action::Chunk(chunk) => {
                    streamed.chunks += 1;
                    chunk.write_event(&mut streamed.body);
                    let chunk = chunk.value();
                    let delta = &chunk["choices"][0]["delta"]["content"];
                    streamed
                        .content
                        .push_str(delta.as_str().unwrap_or_default());
                }
                Action::Complete(result) => {
                    if let Some(d) = during {
                        return Err(format!(
                            "during: nothing was sent to {}",
                            d["after_sent_to"]
                        ));
                    }
                    if streamed.committed.is_some() {
                        let end = Some(Output::Complete(result.clone()));
                        endpoint::write_output(&mut streamed.body, end);
                    }
                    return Ok((result, received, now, streamed));
                }
            }
        }
        let next_event = queue.iter().map(|(t, s, _, _)| (*t, *s)).min();
        let next_timer = call.poll_timeout();
        match (next_event, next_timer) {
            (Some((t, s)), timer) if timer.is_none_or(|d: Instant| t <= d) => {
                let i = queue
                    .iter()
                    .position(|(qt, qs, _, _)| (*qt, *qs) == (t, s))
                    .unwrap();
                let (t, _, id, event) = queue.remove(i);
                now = t;
                match event {
                    Event::Head(h) => call.handle_head(id, h, now),
                    Event::Body(b) => call.handle_body(id, b, now),
                    Event::Chunk(b) => call.handle_chunk(id, b, now),
                    Event::End => call.handle_end(id, now),
                    Event::Fault(f) => call.handle_fault(id, f, now),
                }
            }
            (Some(_), Some(d)) | (None, Some(d)) => {
                assert!(d >= now, "time went backwards");
                now = d;
                call.handle_timeout(now);
            }
            (None, None) => return Err("stuck: no event, no timer, no result".into()),
            (Some(_), None) => unreachable!("handled by the first arm"),
        }
    }
    Err("did not finish within 10000 steps".into())
}

/// A vector's `set_api_key` step: `{"provider", "api_key"}`.
fn set_api_key(router: &Router, step: &Value) -> Result<(), String> {
    let text = |k: &str| step[k].as_str().ok_or(format!("set_api_key.{k}"));
    router
        .set_api_key(text("provider")?, text("api_key")?)
        .map_err(|e| format!("set_api_key: {e}"))
}

fn record(request: &HttpRequest) -> Received {
    let after_scheme = request.url.split_once("://").map_or("", |(_, r)| r);
    let path = after_scheme
        .find('/')
        .map_or("/", |i| &after_scheme[i..])
        .to_owned();
    Received {
        path,
        headers: request.headers.clone(),
        json: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
    }
}

/// What the mock does with its next request, as (delay, event) pairs.
fn play(mock: &mut Mock) -> Result<Vec<(Duration, Event)>, String> {
    if mock.refuse {
        return Ok(vec![(
            Duration::ZERO,
            Event::Fault(TransportFault::ConnectionRefused),
        )]);
    }
    let r = mock
        .responses
        .get(mock.next)
        .cloned()
        .ok_or("mock script exhausted")?;
    mock.next += 1;
    let delay = Duration::from_millis(r["delay_ms"].as_u64().unwrap_or(0));
    let status = r["status"].as_u64().unwrap_or(200) as u16;
    let (body, content_type) = match (&r["json"], &r["text"]) {
        (Value::Null, Value::String(t)) => (t.clone().into_bytes(), "text/plain"),
        (Value::Null, _) => (Vec::new(), "text/plain"),
        (j, _) => (serde_json::to_vec(j).unwrap(), "application/json"),
    };
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    for (n, v) in r["headers"].as_object().into_iter().flatten() {
        headers.push((
            n.to_ascii_lowercase(),
            v.as_str().unwrap_or_default().to_owned(),
        ));
    }
    let head = ResponseHead {
        status,
        headers,
        received_unix_secs: WALL_CLOCK_ORIGIN + delay.as_secs(),
    };
    if let Some(events) = r["events"].as_array() {
        return Ok(stream_events(delay, head, events));
    }
    Ok(match r["fault"].as_str() {
        None => vec![(delay, Event::Head(head)), (delay, Event::Body(body))],
        Some("reset") => vec![(delay, Event::Fault(TransportFault::ConnectionReset))],
        Some("stall") => vec![],
        Some("truncate") => vec![
            (delay, Event::Head(head)),
            (delay, Event::Fault(TransportFault::Truncated)),
        ],
        Some(other) => return Err(format!("unknown fault {other:?}")),
    })
}

/// A streamed answer as the mock plays it (tests/mock_provider.py): the
/// head, then each event after its own delay (counted from the one before),
/// then the end. A fault mid-stream cuts the body (the hosts read a reset
/// after the head as a truncation); a stall sends nothing more.
fn stream_events(
    delay: Duration,
    mut head: ResponseHead,
    events: &[Value],
) -> Vec<(Duration, Event)> {
    head.headers.retain(|(n, _)| n != "content-type");
    head.headers
        .push(("content-type".to_owned(), "text/event-stream".to_owned()));
    let mut at = delay;
    let mut out = vec![(at, Event::Head(head))];
    for ev in events {
        at += Duration::from_millis(ev["delay_ms"].as_u64().unwrap_or(0));
        match ev["fault"].as_str() {
            Some("stall") => return out,
            Some(_) => {
                out.push((at, Event::Fault(TransportFault::Truncated)));
                return out;
            }
            None => {}
        }
        let text = match (&ev["raw"], &ev["data"]) {
            (Value::String(raw), _) => raw.clone(),
            (_, data) => {
                let data = match data {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string(other).unwrap(),
                };
                let name = ev["event"]
                    .as_str()
                    .map_or(String::new(), |e| format!("event: {e}\n"));
                format!("{name}data: {data}\n\n")
            }
        };
        out.push((at, Event::Chunk(text.into_bytes())));
    }
    out.push((at, Event::End));
    out
}

fn check(
    expect: &Value,
    result: &CallResult,
    received: &ReceivedBy,
    latency: Duration,
    streamed: &Streamed,
) -> Result<(), String> {
    if let Some(content) = expect.get("content") {
        expect_eq("content", content, &json!(streamed.content))?;
    }
    if let Some(chunks) = expect.get("chunks") {
        expect_eq("chunks", chunks, &json!(streamed.chunks))?;
    }
    let outcome = expect["outcome"].as_str().ok_or("expect.outcome")?;
    let (actual_outcome, attempts) = match result {
        Ok(r) => ("success", r.attempts.clone()),
        Err(e) => (e.kind(), e.attempts().to_vec()),
    };
    if actual_outcome != outcome {
        return Err(format!(
            "outcome {actual_outcome:?}, expected {outcome:?}; result: {}",
            describe(result)
        ));
    }
    match result {
        Ok(r) => {
            expect_eq("provider", &expect["provider"], &json!(r.provider))?;
            if let Some(m) = optional_subset(&expect["response"], &r.response, "response") {
                return Err(m);
            }
            if let Some(want) = expect.get("schema_valid") {
                expect_eq("schema_valid", want, &json!(r.schema_valid))?;
            }
        }
        Err(e) => {
            if let RouteError::Hard {
                provider, status, ..
            } = e
            {
                expect_eq("provider", &expect["provider"], &json!(provider))?;
                expect_eq("status", &expect["status"], &json!(status))?;
            }
            if let RouteError::StreamInterrupted { provider, .. } = e {
                expect_eq("provider", &expect["provider"], &json!(provider))?;
            }
            let message = e.to_string();
            for needle in expect["error_contains"].as_array().into_iter().flatten() {
                let needle = needle.as_str().unwrap_or_default();
                if !message.contains(needle) {
                    return Err(format!("error message lacks {needle:?}: {message}"));
                }
            }
        }
    }
    if let Some(want) = expect["attempts"].as_array() {
        let got: Vec<Value> = attempts
            .iter()
            .map(|a| {
                json!({"provider": a.provider, "outcome": a.outcome.as_str(), "status": a.status,
                       "fault": a.fault.as_ref().map(|f| f.name()), "group": a.group,
                       "dropped": a.dropped})
            })
            .collect();
        if want.len() != got.len() {
            return Err(format!(
                "{} attempts, expected {}: {got:?}",
                got.len(),
                want.len()
            ));
        }
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            if let Some(m) = subset_mismatch(w, g, &format!("attempts[{i}]")) {
                return Err(format!("{m}; all attempts: {got:?}"));
            }
        }
    }
    if let Some(want) = expect.get("skipped") {
        let skipped = match result {
            Ok(r) => &r.skipped[..],
            Err(e) => e.skipped(),
        };
        let got: Vec<Value> = skipped
            .iter()
            .map(|s| json!({"provider": s.provider, "group": s.group, "params": s.params}))
            .collect();
        if let Some(m) = subset_mismatch(want, &json!(got), "skipped") {
            return Err(format!("{m}; all skipped: {got:?}"));
        }
    }
    if let Some(bounds) = expect.get("latency_ms") {
        let ms = latency.as_secs_f64() * 1000.0;
        let min = bounds["min"].as_f64().unwrap_or(0.0);
        let max = bounds["max"].as_f64().unwrap_or(f64::INFINITY);
        if ms < min || ms > max {
            return Err(format!("latency {ms} ms outside [{min}, {max}]"));
        }
    }
    for (provider, want) in expect["upstream"].as_object().into_iter().flatten() {
        let got = received.get(provider).map_or(&[][..], |v| v.as_slice());
        let want = want.as_array().ok_or("upstream entries must be lists")?;
        if want.len() != got.len() {
            return Err(format!(
                "{provider} received {} requests, expected {}",
                got.len(),
                want.len()
            ));
        }
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            let at = format!("upstream.{provider}[{i}]");
            expect_eq(&format!("{at}.path"), &w["path"], &json!(g.path))?;
            let headers: serde_json::Map<String, Value> = g
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), json!(v)))
                .collect();
            if let Some(m) = optional_subset(
                &w["headers"],
                &Value::Object(headers),
                &format!("{at}.headers"),
            ) {
                return Err(m);
            }
            for absent in w["absent_headers"].as_array().into_iter().flatten() {
                let absent = absent.as_str().unwrap_or_default();
                if g.headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(absent))
                {
                    return Err(format!("{at}: header {absent:?} must be absent"));
                }
            }
            if let Some(m) = optional_subset(&w["json"], &g.json, &format!("{at}.json")) {
                return Err(m);
            }
        }
    }
    Ok(())
}

fn describe(result: &CallResult) -> String {
    match result {
        Ok(r) => format!("success from {}", r.provider),
        Err(e) => e.to_string(),
    }
}

fn expect_eq(what: &str, want: &Value, got: &Value) -> Result<(), String> {
    if want.is_null() || want == got {
        Ok(())
    } else {
        Err(format!("{what}: got {got}, expected {want}"))
    }
}

/// `None` when `want` is a subset of `got` (see tests/vectors/README.md);
/// else where they first differ.
fn subset_mismatch(want: &Value, got: &Value, at: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w.iter().find_map(|(k, wv)| match g.get(k) {
            None => Some(format!("{at}.{k}: missing (expected {wv})")),
            Some(gv) => subset_mismatch(wv, gv, &format!("{at}.{k}")),
        }),
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (wv, gv))| subset_mismatch(wv, gv, &format!("{at}[{i}]"))),
        (w, g) if w == g => None,
        (w, g) => Some(format!("{at}: got {g}, expected {w}")),
    }
}

/// As [`subset_mismatch`], for an optional expectation (absent = no check).
fn optional_subset(want: &Value, got: &Value, at: &str) -> Option<String> {
    if want.is_null() {
        None
    } else {
        subset_mismatch(want, got, at)
    }
}

/// The call a vector's call makes at the front door: its `http` (method,
/// path, `body_text`) or a POST of its `request` to /v1/chat/completions,
/// with its tenant as the `x-f3dx-tenant` header and its `headers`.
/// `Err`: what the door
/// answers instead.
fn front_door_call(router: &Router, call: &Value) -> Result<endpoint::ChatCall, Answer> {
    let http = &call["http"];
    let method = http["method"].as_str().unwrap_or("POST");
    let path = http["path"].as_str().unwrap_or("/v1/chat/completions");
    let body = match http["body_text"].as_str() {
        Some(text) => text.as_bytes().to_vec(),
        None => serde_json::to_vec(&call["request"]).unwrap(),
    };
    endpoint::route(method, path)?;
    let mut chat = endpoint::parse_call(&body, call["tenant"].as_str(), "")?;
    // The call's own headers, as the request's (tests/vectors/README.md).
    if let Some(headers) = call["headers"].as_object() {
        let pairs = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str().unwrap_or("")));
        chat.options.headers = endpoint::caller_headers(router, pairs);
    }
    Ok(chat)
}

/// For a call refused at the door: every `upstream` expectation is empty.
fn expect_nothing_sent(expect: &Value) -> Option<String> {
    let upstream = expect["upstream"].as_object()?;
    upstream
        .iter()
        .find(|(_, want)| want.as_array().is_none_or(|w| !w.is_empty()))
        .map(|(name, _)| format!("upstream.{name}: a call refused at the door sends nothing"))
}

/// The `front_door` expectation (tests/vectors/README.md) against what the
/// endpoint answers: `answer`'s status and headers, and `body` (for a
/// stream, its events).
fn check_front_door(want: &Value, answer: &Answer, body: &[u8]) -> Result<(), String> {
    if want.is_null() {
        return Err(format!(
            "answered at the door ({}) without a front_door expectation",
            answer.status
        ));
    }
    expect_eq("front_door.status", &want["status"], &json!(answer.status))?;
    let headers: serde_json::Map<String, Value> = answer
        .headers
        .iter()
        .map(|(n, v)| {
            let v = if *n == "x-f3dx-trace" {
                without_starts(v)
            } else {
                v.clone()
            };
            ((*n).to_owned(), json!(v))
        })
        .collect();
    if let Some(m) = optional_subset(
        &want["headers"],
        &Value::Object(headers.clone()),
        "front_door.headers",
    ) {
        return Err(m);
    }
    for absent in want["absent_headers"].as_array().into_iter().flatten() {
        let absent = absent.as_str().unwrap_or_default();
        if headers.contains_key(absent) {
            return Err(format!("front_door.headers: {absent:?} must be absent"));
        }
    }
    let text = String::from_utf8_lossy(body);
    let streamed = headers.get("content-type") == Some(&json!("text/event-stream"));
    let (end, error) = if streamed {
        let last = text
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .last()
            .unwrap_or_default();
        match last.strip_prefix("data: ") {
            Some("[DONE]") => ("done", Value::Null),
            Some(data) => {
                let event: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                match event.get("error") {
                    Some(e) => ("interrupted", e.clone()),
                    None => ("neither", Value::Null),
                }
            }
            None => ("neither", Value::Null),
        }
    } else {
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| format!("front_door: the body is not JSON: {e}"))?;
        ("", value.get("error").cloned().unwrap_or(Value::Null))
    };
    if let Some(want_end) = want.get("end") {
        expect_eq("front_door.end", want_end, &json!(end))?;
    }
    if let Some(want_body) = want.get("body").and_then(Value::as_str) {
        if text != want_body {
            return Err(format!(
                "front_door.body: expected {want_body:?}, got {text:?}"
            ));
        }
    }
    if let Some(want_error) = want.get("error") {
        if let Some(m) = subset_mismatch(want_error, &error, "front_door.error") {
            return Err(m);
        }
    }
    Ok(())
}

/// A trace without its `@start_ms` parts (times differ by host).
fn without_starts(trace: &str) -> String {
    trace
        .split(", ")
        .map(|entry| entry.split('@').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(", ")
}
