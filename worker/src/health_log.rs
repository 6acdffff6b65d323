//! The core's health transitions (a provider ejected, readmitted, cooling
//! down, rate-limited, out of budget) as console lines, for `wrangler tail`
//! and Workers Logs: one object per transition, `console.warn` (`console.log`
//! for a readmission), with the line in `message` and its fields beside it,
//! which Workers Logs index. The standalone worker logs them after each
//! request; the core keeps them (bounded) until then.

use f3dx_router_core::{HealthEvents, Router};
use serde_json::{json, Value};
use worker::worker_sys::web_sys;

use crate::embed::to_js;

/// One console line: its level and its object.
#[derive(Debug, PartialEq)]
pub struct Line {
    /// `console.warn`; else `console.log`.
    pub warn: bool,
    pub fields: Value,
}

/// The lines of `taken`, oldest first, and one for those the core dropped.
pub fn lines(taken: &HealthEvents) -> Vec<Line> {
    let mut lines: Vec<Line> = taken
        .events
        .iter()
        .map(|e| {
            let mut fields = json!({
                "message": e.to_string(),
                "source": "f3dx_router",
                "provider": e.provider,
                "transition": e.kind.name(),
                "reason": e.kind.reason(),
                "for_s": e.lasts().map(|d| d.as_secs_f64()),
            });
            // With a routing table the state is one deployment's.
            if let Some(model) = &e.model {
                fields["model_sent"] = Value::from(model.as_str());
            }
            if let Some(scope) = &e.scope {
                fields["tenant"] = Value::from(scope.tenant.as_str());
                fields["model"] = Value::from(scope.model.as_str());
            }
            Line {
                warn: !e.kind.is_readmission(),
                fields,
            }
        })
        .collect();
    if taken.dropped > 0 {
        lines.push(Line {
            warn: true,
            fields: json!({
                "message": format!(
                    "{} provider health transitions were not logged: more happened between two requests than the router keeps",
                    taken.dropped
                ),
                "source": "f3dx_router",
                "dropped": taken.dropped,
            }),
        });
    }
    lines
}

/// Log what waits (one atomic load when nothing does).
pub fn log(router: &Router) {
    if !router.has_health_events() {
        return;
    }
    for line in lines(&router.take_health_events()) {
        let Ok(value) = to_js(&line.fields) else {
            continue;
        };
        if line.warn {
            web_sys::console::warn_1(&value);
        } else {
            web_sys::console::log_1(&value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use f3dx_router_core::{EjectReason, HealthEvent, HealthEventKind, Instant, QualityScope};

    use super::*;

    fn event(kind: HealthEventKind) -> HealthEvent {
        HealthEvent {
            at: Instant::from_micros(1_000),
            provider_index: 0,
            provider: "openai".to_owned(),
            model: None,
            kind,
            scope: None,
        }
    }

    #[test]
    fn a_deployments_transition_names_its_model() {
        let mut cooling = event(HealthEventKind::Readmitted);
        cooling.model = Some("gpt-4o-mini".to_owned());
        let line = &lines(&HealthEvents {
            events: vec![cooling],
            dropped: 0,
        })[0];
        assert_eq!(line.fields["model_sent"], "gpt-4o-mini");
        let message = line.fields["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("provider 'openai' (model 'gpt-4o-mini') readmitted"),
            "{message}"
        );
        let plain = &lines(&HealthEvents {
            events: vec![event(HealthEventKind::Readmitted)],
            dropped: 0,
        })[0];
        assert!(plain.fields.get("model_sent").is_none());
    }

    #[test]
    fn a_line_per_transition_and_one_for_the_dropped() {
        let until = Instant::from_micros(1_000) + Duration::from_secs(30);
        let taken = HealthEvents {
            events: vec![
                event(HealthEventKind::Ejected {
                    until,
                    reason: EjectReason::ConsecutiveFailures(5),
                }),
                event(HealthEventKind::Readmitted),
            ],
            dropped: 3,
        };
        let lines = lines(&taken);
        assert_eq!(
            lines[0],
            Line {
                warn: true,
                fields: json!({
                    "message": "provider 'openai' ejected for 30.0 s: 5 soft failures in a row",
                    "source": "f3dx_router",
                    "provider": "openai",
                    "transition": "ejected",
                    "reason": "consecutive_failures",
                    "for_s": 30.0,
                }),
            }
        );
        assert!(!lines[1].warn, "a readmission is not a warning");
        assert_eq!(lines[1].fields["transition"], "readmitted");
        assert_eq!(lines[1].fields["for_s"], Value::Null);
        assert!(lines[2].warn);
        assert_eq!(lines[2].fields["dropped"], 3);
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn a_quality_transition_names_its_tenant_and_model() {
        let mut excluded = event(HealthEventKind::QualityExcluded {
            until: Instant::from_micros(1_000) + Duration::from_secs(60),
            passes: 1,
            samples: 5,
            failed_probe: false,
        });
        excluded.scope = Some(QualityScope {
            tenant: "acme".to_owned(),
            model: "gpt-4o".to_owned(),
        });
        let mut readmitted = excluded.clone();
        readmitted.kind = HealthEventKind::QualityReadmitted;
        let lines = lines(&HealthEvents {
            events: vec![excluded, readmitted],
            dropped: 0,
        });
        assert_eq!(
            lines[0].fields,
            json!({
                "message": "provider 'openai' excluded (tenant 'acme', model 'gpt-4o') for 60.0 s: schema pass rate 0.20 (1 of 5 answers)",
                "source": "f3dx_router",
                "provider": "openai",
                "transition": "quality_excluded",
                "reason": "pass_rate",
                "for_s": 60.0,
                "tenant": "acme",
                "model": "gpt-4o",
            })
        );
        assert!(lines[0].warn);
        assert!(!lines[1].warn, "a readmission is not a warning");
        assert_eq!(lines[1].fields["transition"], "quality_readmitted");
    }

    #[test]
    fn nothing_taken_nothing_logged() {
        assert!(lines(&HealthEvents::default()).is_empty());
    }
}
