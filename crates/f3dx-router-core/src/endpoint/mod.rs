//! The OpenAI-compatible front door's HTTP contract, for every host that
//! serves one (the Worker, standalone and embedded, and the Python
//! transports): which requests are served, how a request body becomes a
//! call, and what each outcome is answered with. Pure code, like the rest
//! of the core: bytes and values in, status, headers and bytes out.
//!
//! A host does, in order:
//!
//! 0. [`models_request`] with the method and path: a `GET .../models`
//!    (or `.../models/{id}`) is answered with [`models_answer`];
//! 1. [`route`] with the method and path: a 404 [`Answer`] for anything but
//!    `POST .../chat/completions` (under any base path);
//! 2. [`parse_call`] with the body bytes and the `x-f3dx-tenant` header: a
//!    [`ChatCall`] (the core decided whether it streams), or the 400;
//! 3. a whole call: [`routed`] or [`route_error`] with its result; a
//!    streamed one: [`route_error`] for a failure before its commit point,
//!    else [`stream_head`] at the commit point, then each output framed
//!    with [`write_output`] (events, `data: [DONE]`, or the interrupted
//!    event for a failure after the commit point).
//!
//! Errors are in OpenAI's shape (`{"error": {"message", "type", "code"}}`,
//! see [`answer`]); every answer carries `x-f3dx-attempts`, and, when known,
//! `x-f3dx-provider` and `x-f3dx-trace` ([`route_headers`]).

mod answer;
mod frame;

pub use answer::{
    error, json, not_found, request_too_large, route_error, route_headers, routed, stream_head,
    trace, Answer,
};
pub use frame::{interrupted_event, write_event, write_output, DONE};

use serde_json::Value;

use crate::call::CallOptions;
use crate::forward::CallerHeaders;
use crate::models_json::{listed_ids, openai_model};
use crate::quality;
use crate::router::Router;

/// The one route served, as the end of the path (any base path before it).
pub const CHAT_PATH: &str = "/chat/completions";

/// The request header naming the call's tenant (quality-aware routing).
pub const TENANT_HEADER: &str = "x-f3dx-tenant";

/// Largest request body a host that reads the body itself accepts (the
/// Worker: an isolate has 128 MB; the Python transports get the body from
/// their HTTP library, which read it already).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Whether `method` and `path` are the route served (a trailing `/` is
/// accepted, as clients that join a base URL with a `/` send it).
pub fn is_chat_route(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("POST")
        && (path.ends_with(CHAT_PATH)
            || path
                .strip_suffix('/')
                .is_some_and(|p| p.ends_with(CHAT_PATH)))
}

/// `Ok` for the route served, else the 404 to answer.
pub fn route(method: &str, path: &str) -> Result<(), Answer> {
    if is_chat_route(method, path) {
        Ok(())
    } else {
        Err(not_found(method, path))
    }
}

/// What a `GET .../models` request asks (OpenAI's model list, so an SDK's
/// `models.list()` and `models.retrieve(id)` work through a front door).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelsRequest {
    /// `GET .../models`: every model id the router lists.
    List,
    /// `GET .../models/{id}`: one model (the id percent-decoded).
    Retrieve(String),
}

/// The models request `method` and `path` make, if any (under any base
/// path; a trailing `/` accepted). A host asks this before [`route`].
pub fn models_request(method: &str, path: &str) -> Option<ModelsRequest> {
    if !method.eq_ignore_ascii_case("GET") {
        return None;
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.ends_with("/models") {
        return Some(ModelsRequest::List);
    }
    // The last `/models/`: an id may hold a `/` (`meta-llama/Llama-3`).
    let at = path.rfind("/models/")?;
    let id = percent_decode(&path[at + "/models/".len()..])?;
    (!id.is_empty()).then_some(ModelsRequest::Retrieve(id))
}

/// The answer to a models request: OpenAI's list (`{"object": "list",
/// "data": [{"id", "object": "model", "created", "owned_by"}]}`), or one
/// model, or a 404 `model_not_found` for an id no group serves. With
/// `models` the list holds each group named by a model (patterns are not
/// ids), and an id any group matches is found; without, the providers'
/// fixed `model`s are listed, and any id is found (any model is routed).
pub fn models_answer(router: &Router, request: &ModelsRequest) -> Answer {
    let config = router.config();
    match request {
        ModelsRequest::List => {
            let data: Vec<Value> = listed_ids(config).into_iter().map(openai_model).collect();
            json(200, &serde_json::json!({"object": "list", "data": data}))
        }
        ModelsRequest::Retrieve(id) if config.table.group_for(id).is_some() => {
            json(200, &openai_model(id))
        }
        ModelsRequest::Retrieve(id) => {
            let shown = if id.len() <= 256 {
                id.as_str()
            } else {
                "(a long id)"
            };
            let message = format!("The model {shown:?} matches no model group of this router");
            error(404, "invalid_request_error", "model_not_found", &message)
        }
    }
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are
/// not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The headers of a request that some group of `router` forwards
/// (`forward_headers`), for [`ChatCall`]'s options: `headers` is not read
/// at all when no group forwards any (a host should not even collect
/// them then: [`crate::RoutingTable::any_forward_headers`]). Which of them
/// an attempt gets, and the checks of their values, are the call's.
pub fn caller_headers<N, V>(
    router: &Router,
    headers: impl IntoIterator<Item = (N, V)>,
) -> CallerHeaders
where
    N: AsRef<str> + Into<String>,
    V: Into<String>,
{
    let table = router.models();
    if !table.any_forward_headers() {
        return CallerHeaders::new();
    }
    headers
        .into_iter()
        .filter(|(n, _)| table.forwards_header(n.as_ref()))
        .collect()
}

/// A request to route: its body, options, and whether it streams.
#[derive(Debug, Clone)]
pub struct ChatCall {
    /// The request, as JSON (the core checks it when the call starts).
    pub body: Value,
    /// Per-call options (the tenant).
    pub options: CallOptions,
    /// Whether the answer is a stream (`"stream": true`).
    pub streamed: bool,
}

/// The call a request body asks for, or the 400 to answer: a body that is
/// not JSON, or a tenant the core cannot take. `tenant_header` is the
/// request's `x-f3dx-tenant` ([`TENANT_HEADER`]), which overrides the
/// host's `default_tenant`. (The session header of a later issue will be
/// read here too.)
pub fn parse_call(
    body: &[u8],
    tenant_header: Option<&str>,
    default_tenant: &str,
) -> Result<ChatCall, Answer> {
    let tenant = tenant_header.unwrap_or(default_tenant);
    quality::check_tenant(tenant).map_err(|m| {
        error(
            400,
            "invalid_request_error",
            "invalid_tenant",
            &format!("{TENANT_HEADER}: {m}"),
        )
    })?;
    // serde_json's message gives a position, never the text.
    let body: Value = serde_json::from_slice(body).map_err(|e| {
        let message = format!("the request body is not JSON: {e}");
        error(400, "invalid_request_error", "invalid_json", &message)
    })?;
    Ok(ChatCall {
        streamed: crate::driver::is_stream_request(&body),
        body,
        options: CallOptions {
            tenant: tenant.to_owned(),
            headers: Default::default(),
        },
    })
}

#[cfg(test)]
mod tests;
