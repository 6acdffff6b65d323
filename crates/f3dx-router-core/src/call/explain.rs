//! `explain`: what a call would do now, planned by the call's own start
//! (`start::prepare`, with a [`Why`] to note each decision in) and its
//! dispatch's claims read without claiming. Nothing is sent, and no state
//! changes: no picker advance, no probe claimed, no budget taken.

use serde_json::Value;

use super::action::CallOptions;
use super::start::{encode_all, prepare, Prepared};
use crate::codec::params;
use crate::explain::{Explanation, Planned, Reason, Why};
use crate::shared::Shared;
use crate::time::Instant;

/// What a call of `body` with `options` would try at `now`, and why each
/// other deployment it considered is left out; `Err` with the message of
/// the `InvalidRequest` a call would end with.
pub(crate) fn explain(
    shared: &Shared,
    body: Value,
    mut options: CallOptions,
    now: Instant,
) -> Result<Explanation, String> {
    let headers = std::mem::take(&mut options.headers);
    let mut why = Why::default();
    let Prepared {
        checked,
        group,
        quality_key,
        tokens,
        candidates,
        last_resort,
        ..
    } = prepare(shared, body, options, now, Some(&mut why));
    let (body, _) = checked?;
    // A request no deployment can take is refused by a call too.
    let (_, dropped) = encode_all(
        shared,
        shared.credentials_now().as_deref(),
        group,
        &body,
        &headers,
    )?;
    let config = shared.config();
    let table = &config.table;
    let asked = body.get("model").and_then(Value::as_str).unwrap_or("");
    let entry = |d: usize, reason: Option<Reason>| {
        let deployment = &table.deployments[d];
        let kind = config.providers[deployment.provider].kind;
        let params = match reason {
            Some(Reason::UnsupportedParams) => params::uncarried(kind, &body),
            _ => dropped
                .iter()
                .find(|(e, _)| *e == d)
                .map(|(_, names)| names.clone())
                .unwrap_or_default(),
        };
        Planned {
            params,
            deployment: d,
            group: table.shown_name(deployment.group).to_owned(),
            provider: config.providers[deployment.provider].name.clone(),
            model: table.model_sent(d, asked).to_owned(),
            reason,
            last_resort: last_resort && why.exhausted.contains(&deployment.group),
        }
    };
    let mut tried = Vec::with_capacity(candidates.len());
    // Left out: what planning kept out and no group tried after all (the
    // first reason of each).
    let mut left_out: Vec<Planned> = Vec::new();
    for &(d, r) in &why.left_out {
        if !candidates.contains(&d) && !left_out.iter().any(|p| p.deployment == d) {
            left_out.push(entry(d, Some(r)));
        }
    }
    for &d in &candidates {
        // A call skips, when its turn comes, what it cannot claim.
        let slot = table.deployments[d].slot;
        let refusal = shared.claim_refusal(slot, quality_key.as_ref(), now, tokens, last_resort);
        if let Some(reason) = refusal {
            left_out.push(entry(d, Some(reason)));
            continue;
        }
        // The note that says most: what kept it out (a last resort), then
        // a quality exclusion, then a weight of 0.
        let note = why
            .left_out
            .iter()
            .chain(&why.notes)
            .filter(|&&(n, _)| n == d)
            .map(|&(_, r)| r)
            .min_by_key(|r| match r {
                Reason::WeightZero => 2,
                Reason::QualityExcluded(_) => 1,
                _ => 0,
            });
        tried.push(entry(d, note));
    }
    Ok(Explanation {
        model: asked.to_owned(),
        group: table.shown_name(group).to_owned(),
        tried,
        left_out,
        last_resort,
    })
}
