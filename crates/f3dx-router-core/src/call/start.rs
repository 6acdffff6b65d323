//! Starting a call: check the request, encode it for every provider, pick
//! the candidates, send the first legs.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::action::CallOptions;
use super::check::QualityCheck;
use super::legs::Trigger;
use super::request::{validate, StreamMode};
use super::state::Call;
use crate::budget;
use crate::codec;
use crate::config::GROUPS_LISTED;
use crate::explain::{Reason, Why};
use crate::forward::{self, CallerHeaders};
use crate::http::HttpRequest;
use crate::quality;
use crate::shared::Shared;
use crate::table::RoutingTable;
use crate::time::Instant;

/// What a call's start decides before it sends anything, shared by a call
/// and by `explain` (one rule): the checked request, its group, its quality
/// check and key, its `tpm` estimate, and its candidates in order.
pub(super) struct Prepared {
    /// The request and how it streams, or why it is refused.
    pub checked: Result<(Map<String, Value>, Option<StreamMode>), String>,
    pub group: usize,
    pub quality: Option<Box<QualityCheck>>,
    pub quality_key: Option<(String, String)>,
    pub tokens: u64,
    pub candidates: Vec<usize>,
    pub last_resort: bool,
}

/// Check `body` for a call with `options` at `now` and plan its
/// candidates; with `why` (`explain`), note every decision there without
/// changing any state.
pub(super) fn prepare(
    shared: &Shared,
    body: Value,
    options: CallOptions,
    now: Instant,
    why: Option<&mut Why>,
) -> Prepared {
    let checked =
        validate(body).and_then(|checked| quality::check_tenant(&options.tenant).map(|()| checked));
    let table = &shared.config().table;
    // The group the request's model picks.
    let checked = checked.and_then(|(body, stream)| {
        let model = body.get("model").and_then(Value::as_str).unwrap_or("");
        let group = table
            .group_for(model)
            .ok_or_else(|| unknown_model(table, model))?;
        Ok((body, stream, group))
    });
    let group = checked.as_ref().map_or(0, |c| c.2);
    // What the answer must be, and whose pass rates the call reads.
    let mut quality = None;
    let mut quality_key = None;
    let checked = checked.and_then(|(body, stream, _)| {
        if let Some(config) = table.groups[group].quality {
            let model = body.get("model").and_then(Value::as_str).unwrap_or("");
            let key = (options.tenant, model.to_owned());
            if let Some(expect) = shared.expect(&body)? {
                quality = Some(Box::new(QualityCheck {
                    expect,
                    config,
                    tenant: key.0.clone(),
                    model: key.1.clone(),
                    text: String::new(),
                    text_cap: 0,
                    text_over: false,
                }));
            }
            quality_key = Some(key);
        }
        Ok((body, stream))
    });
    // The `tpm` estimate, only where a deployment has a tokens budget.
    let tokens = match &checked {
        Ok((body, _)) if table.any_tpm => budget::estimate_tokens(body),
        _ => 0,
    };
    let (candidates, last_resort) = match &checked {
        Ok((body, _)) => plan(shared, group, body, tokens, quality_key.as_ref(), now, why),
        Err(_) => (Vec::new(), false),
    };
    // Only context windows leave a call nothing to try (a group is never
    // empty, and the last resort tries every deployment): the request is
    // too long for every deployment it could go to, and nothing is sent.
    let checked = match checked {
        Ok((body, _)) if candidates.is_empty() => Err(format!(
            "the request (about {} tokens with its max_tokens or max_completion_tokens) fits no \
             deployment's context_window in its model group or its fallbacks",
            budget::context_tokens(&body)
        )),
        other => other,
    };
    Prepared {
        checked,
        group,
        quality,
        quality_key,
        tokens,
        candidates,
        last_resort,
    }
}

impl Call {
    pub(crate) fn new(shared: Arc<Shared>, body: Value, now: Instant) -> Call {
        Call::with_options(shared, body, CallOptions::default(), now)
    }

    pub(crate) fn with_options(
        shared: Arc<Shared>,
        body: Value,
        mut options: CallOptions,
        now: Instant,
    ) -> Call {
        let headers = std::mem::take(&mut options.headers);
        let Prepared {
            checked,
            group,
            quality,
            quality_key,
            tokens,
            candidates,
            last_resort,
        } = prepare(&shared, body, options, now, None);
        let mut call = Call {
            shared,
            started: now,
            group,
            candidates,
            requests: Vec::new(),
            retries: Vec::new(),
            refusal: None,
            next_candidate: 0,
            attempts: Vec::new(),
            hedge_at: None,
            hedge_refused: false,
            last_dispatch: now,
            stopped: false,
            stream: None,
            committed: None,
            tokens,
            last_resort,
            invalid: None,
            actions: VecDeque::new(),
            finished: false,
            quality,
            quality_key,
        };
        let checked = checked.and_then(|(body, stream)| {
            call.stream = stream;
            // Kept by deployment: a failure may add candidates later (a
            // larger context window, a content-policy fallback).
            let encoded = encode_all(&call.shared, group, &body, &headers)?;
            call.requests = encoded.into_iter().map(|(d, r)| (d, Some(r))).collect();
            Ok(())
        });
        match checked {
            Ok(()) => {
                call.shared.fund_hedges(group);
                call.fill(now, Trigger::Start);
            }
            Err(message) => {
                call.stopped = true;
                call.invalid = Some(message);
            }
        }
        call.check_done(now);
        call
    }
}

/// Translate the request for every deployment of the call's groups (and
/// of their context-window and content-policy fallbacks, which a failure
/// may lead to), cooling ones included, so whether a request is accepted
/// never depends on health: each deployment once, with its request, in the
/// order the groups are tried (a small list: a table of hundreds of
/// deployments costs a call only its own groups').
pub(super) fn encode_all(
    shared: &Shared,
    group: usize,
    body: &Map<String, Value>,
    headers: &CallerHeaders,
) -> Result<Vec<(usize, HttpRequest)>, String> {
    let config = shared.config();
    let table = &config.table;
    // Caller headers cost a call nothing unless some group forwards them.
    let forwarding = !headers.is_empty() && table.any_forward_headers();
    let mut groups = groups_of(table, group);
    for i in 0..groups.len() {
        let g = &table.groups[groups[i]];
        for &f in g
            .context_window_fallbacks
            .iter()
            .chain(&g.content_policy_fallbacks)
        {
            if !groups.contains(&f) {
                groups.push(f);
            }
        }
    }
    let mut encoded: Vec<(usize, HttpRequest)> = Vec::new();
    for g in groups {
        // The group's own list picks the caller's headers its deployments
        // get; a value that cannot be sent refuses the whole call.
        let forwarded = match forwarding {
            true => forward::select(headers, &table.groups[g].forward_headers)?,
            false => Vec::new(),
        };
        for &d in &table.groups[g].deployments {
            if encoded.iter().any(|(e, _)| *e == d) {
                continue;
            }
            let deployment = &table.deployments[d];
            let p = &config.providers[deployment.provider];
            let mut request = codec::encode_for(p, deployment, body).map_err(|m| {
                let kind = p.kind.as_str();
                format!("cannot send to provider {:?} ({kind}): {m}", p.name)
            })?;
            forward::add(&mut request.headers, &forwarded);
            encoded.push((d, request));
        }
    }
    Ok(encoded)
}

/// The group `group` and every group its fallbacks lead to, in the order
/// they are tried (each once).
pub(super) fn groups_of(table: &RoutingTable, group: usize) -> Vec<usize> {
    let mut order = vec![group];
    let mut i = 0;
    while let Some(&g) = order.get(i) {
        for &f in &table.groups[g].fallbacks {
            if !order.contains(&f) {
                order.push(f);
            }
        }
        i += 1;
    }
    order
}

/// The deployments a call tries, in order: its group's usable ones (by its
/// policy), those excluded for its quality key last, then each fallback
/// group's the same way. A deployment whose `context_window` cannot hold
/// the request is left out; when that leaves the group none, its
/// `context_window_fallbacks` groups come first. A group with no usable
/// deployment is passed over; `true` when no group had one: every
/// deployment is then tried, each group's in the order they recover (the
/// last resort). With `why` (`explain`), each decision is noted there.
fn plan(
    shared: &Shared,
    group: usize,
    body: &Map<String, Value>,
    tokens: u64,
    quality_key: Option<&(String, String)>,
    now: Instant,
    mut why: Option<&mut Why>,
) -> (Vec<usize>, bool) {
    let table = &shared.config().table;
    let need = table
        .any_context_window
        .then(|| budget::context_tokens(body));
    let fits = |d: usize| match (need, table.deployments[d].context_window) {
        (Some(need), Some(window)) => need <= window,
        _ => true,
    };
    let mut order = groups_of(table, group);
    if !table.groups[group].deployments.iter().any(|&d| fits(d)) {
        // Too long for the whole group: its context-window fallbacks first.
        let extra: Vec<usize> = table.groups[group]
            .context_window_fallbacks
            .iter()
            .copied()
            .filter(|g| !order.contains(g))
            .collect();
        order.splice(1..1, extra);
    }
    let mut per_group = Vec::with_capacity(order.len());
    for &g in &order {
        let (mut these, out) = shared.candidates(g, now, tokens, why.as_deref_mut());
        these.retain(|&d| {
            let fit = fits(d);
            if let (false, Some(why), Some(need)) = (fit, why.as_deref_mut(), need) {
                let window = table.deployments[d].context_window.unwrap_or(0);
                why.left_out
                    .push((d, Reason::ContextWindow { need, window }));
            }
            fit
        });
        if let Some((tenant, model)) = quality_key {
            shared.quality_filter(&mut these, tenant, model, now, why.as_deref_mut());
        }
        per_group.push((these, out));
    }
    // A group with no usable deployment (all cooling, ejected or out of
    // budget) is passed over while a later group has one; only when none
    // has are they all tried, as a last resort.
    let last_resort = per_group.iter().all(|(_, out)| *out);
    let mut candidates = Vec::new();
    for (these, out) in per_group {
        if out && !last_resort {
            continue;
        }
        for d in these {
            if !candidates.contains(&d) {
                candidates.push(d);
            }
        }
    }
    (candidates, last_resort)
}

/// The error for a model no group serves: its name (when short) and the
/// groups there are.
fn unknown_model(table: &RoutingTable, model: &str) -> String {
    let names: Vec<&str> = table
        .groups
        .iter()
        .take(GROUPS_LISTED)
        .map(|g| g.name.as_str())
        .collect();
    let more = table.groups.len().saturating_sub(GROUPS_LISTED);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let asked = if model.is_empty() {
        "the request names no model".to_owned()
    } else if model.len() <= 256 {
        format!("model {model:?} matches no model group")
    } else {
        "the model matches no model group".to_owned()
    };
    format!("{asked}; the groups are {names:?}{more}")
}
