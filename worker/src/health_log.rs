//! The core's health transitions (a provider ejected, readmitted, cooling
//! down, rate-limited, out of budget) as console lines, for `wrangler tail`
//! and Workers Logs: one object per transition, `console.warn` (`console.log`
//! for a readmission), with the line in `message` and its fields beside it,
//! which Workers Logs index. The standalone worker logs them after each
//! request; the core keeps them (bounded) until then.

use f3dx_router_core::{HealthEventKind, HealthEvents, Router};
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
        .map(|e| Line {
            warn: !matches!(e.kind, HealthEventKind::Readmitted),
            fields: json!({
                "message": e.to_string(),
                "source": "f3dx_router",
                "provider": e.provider,
                "transition": e.kind.name(),
                "reason": e.kind.reason(),
                "for_s": e.lasts().map(|d| d.as_secs_f64()),
            }),
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

    use f3dx_router_core::{EjectReason, HealthEvent, Instant};

    use super::*;

    fn event(kind: HealthEventKind) -> HealthEvent {
        HealthEvent {
            at: Instant::from_micros(1_000),
            provider_index: 0,
            provider: "openai".to_owned(),
            kind,
        }
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
    fn nothing_taken_nothing_logged() {
        assert!(lines(&HealthEvents::default()).is_empty());
    }
}
