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
use crate::attempt::Skipped;
use crate::budget;
use crate::codec;
use crate::codec::params::{self, UnsupportedParams};
use crate::config::GROUPS_LISTED;
use crate::credentials::Credentials;
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
    /// Deployments of its groups passed over: they cannot carry the
    /// request's parameters (`unsupported_params: "error"`).
    pub skipped: Vec<Skipped>,
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
    let (candidates, last_resort, skipped) = match &checked {
        Ok((body, _)) => plan(shared, group, body, tokens, quality_key.as_ref(), now, why),
        Err(_) => (Vec::new(), false, Vec::new()),
    };
    // Only parameters no deployment can carry, or context windows, leave
    // a call nothing to try (a group is never empty, and the last resort
    // tries every deployment): nothing is sent.
    let skipped = match &checked {
        Ok((body, _)) if !skipped.is_empty() => skipped_records(shared, body, &skipped),
        _ => Vec::new(),
    };
    let checked = match checked {
        Ok(_) if candidates.is_empty() && !skipped.is_empty() => {
            Err(uncarried_message(shared, group, &skipped))
        }
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
        skipped,
    }
}

/// The error of a request no deployment of its groups can carry: the
/// parameters, and which deployment cannot carry which.
fn uncarried_message(shared: &Shared, group: usize, skipped: &[Skipped]) -> String {
    let table = &shared.config().table;
    let mut all: Vec<String> = Vec::new();
    let mut each = Vec::new();
    for record in skipped {
        for p in &record.params {
            if !all.contains(p) {
                all.push(p.clone());
            }
        }
        each.push(record.to_string());
    }
    let names: Vec<String> = all.iter().map(|p| format!("`{p}`")).collect();
    format!(
        "no deployment of model group {:?} or its fallbacks can carry the request's {} ({}); \
         remove them, add a deployment that carries them, or set unsupported_params: \"drop\" \
         to send the request without them",
        table.shown_name(group),
        names.join(", "),
        each.join("; ")
    )
}

/// The record of each deployment in `skipped`: who, and the parameters of
/// `body` it cannot carry.
fn skipped_records(shared: &Shared, body: &Map<String, Value>, skipped: &[usize]) -> Vec<Skipped> {
    let config = shared.config();
    let table = &config.table;
    skipped
        .iter()
        .map(|&d| {
            let deployment = &table.deployments[d];
            let provider = &config.providers[deployment.provider];
            Skipped {
                provider_index: deployment.provider,
                provider: provider.name.clone(),
                group: table
                    .declared
                    .then(|| table.groups[deployment.group].name.clone()),
                model: deployment.model.clone().filter(|_| table.declared),
                params: params::uncarried(provider.kind, body),
            }
        })
        .collect()
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
            skipped,
        } = prepare(&shared, body, options, now, None);
        let mut call = Call {
            shared,
            started: now,
            group,
            candidates,
            requests: Vec::new(),
            credentials: None,
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
            skipped,
            dropped: Vec::new(),
        };
        let checked = checked.and_then(|(body, stream)| {
            call.stream = stream;
            // Kept by deployment: a failure may add candidates later (a
            // larger context window, a content-policy fallback).
            // With the keys of now, kept for the whole call: every leg and
            // retry sends one of these requests.
            call.credentials = call.shared.credentials_now();
            let (encoded, dropped) = encode_all(
                &call.shared,
                call.credentials.as_deref(),
                group,
                &body,
                &headers,
            )?;
            call.requests = encoded.into_iter().map(|(d, r)| (d, Some(r))).collect();
            call.dropped = dropped;
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
/// deployments costs a call only its own groups'). A deployment that
/// cannot carry a parameter of the request gets no request (it is never
/// reached) or, with `unsupported_params: "drop"`, one without the
/// parameter: those it was dropped for come second, with what.
pub(super) fn encode_all(
    shared: &Shared,
    credentials: Option<&Credentials>,
    group: usize,
    body: &Map<String, Value>,
    headers: &CallerHeaders,
) -> Result<Encoded, String> {
    let table = &shared.config().table;
    let credentials = shared.credentials(credentials);
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
    let mut dropped = Vec::new();
    for g in groups {
        // The group's own list picks the caller's headers its deployments
        // get; a value that cannot be sent refuses the whole call.
        let forwarded = match forwarding {
            true => forward::select(headers, &table.groups[g].forward_headers)?,
            false => Vec::new(),
        };
        for &d in &table.groups[g].deployments {
            if encoded.iter().any(|(e, _)| *e == d)
                || dropped.iter().any(|(e, _): &(usize, _)| *e == d)
            {
                continue;
            }
            let deployment = &table.deployments[d];
            let p = credentials.provider(deployment.provider);
            // Another reason a request cannot be translated (a tool type
            // the kind lacks, a malformed message) still refuses the call,
            // as it says what to fix in the request itself.
            let fail = |m: String| {
                let kind = p.kind.as_str();
                format!("cannot send to provider {:?} ({kind}): {m}", p.name)
            };
            let mut request = if params::carries(p.kind, body) {
                codec::encode_for(p, deployment, body).map_err(fail)?
            } else if deployment.unsupported_params == UnsupportedParams::Drop {
                let names = params::uncarried(p.kind, body);
                let mut lean = body.clone();
                lean.retain(|k, _| !names.contains(k));
                let request = codec::encode_for(p, deployment, &lean).map_err(fail)?;
                dropped.push((d, names));
                request
            } else {
                continue;
            };
            forward::add(&mut request.headers, &forwarded);
            encoded.push((d, request));
        }
    }
    Ok((encoded, dropped))
}

/// What [`encode_all`] gives: each reachable deployment's request, and the
/// parameters dropped for some.
pub(super) type Encoded = (Vec<(usize, HttpRequest)>, Vec<(usize, Vec<String>)>);

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
/// last resort). A deployment that cannot carry the request's parameters
/// (`unsupported_params: "error"`) is left out of its group as if it were
/// not listed; those are returned third. With `why` (`explain`), each
/// decision is noted there.
fn plan(
    shared: &Shared,
    group: usize,
    body: &Map<String, Value>,
    tokens: u64,
    quality_key: Option<&(String, String)>,
    now: Instant,
    mut why: Option<&mut Why>,
) -> (Vec<usize>, bool, Vec<usize>) {
    let config = shared.config();
    let table = &config.table;
    // Whether deployment `d` can take the request: one branch for the
    // kinds that pass bodies through.
    let carries = |d: usize| {
        let deployment = &table.deployments[d];
        deployment.unsupported_params == UnsupportedParams::Drop
            || params::carries(config.providers[deployment.provider].kind, body)
    };
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
    let mut skipped = Vec::new();
    for &g in &order {
        for &d in &table.groups[g].deployments {
            if !carries(d) && !skipped.contains(&d) {
                skipped.push(d);
            }
        }
        let (mut these, out) = shared.candidates(g, now, tokens, &carries, why.as_deref_mut());
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
    (candidates, last_resort, skipped)
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
