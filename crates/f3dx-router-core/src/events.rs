//! Health transitions, as a host logs them: a provider was ejected, was
//! readmitted, started cooling down, ran out of its rate budget.
//!
//! The core decides these transitions (in `health` and the router's shared
//! state), so it also records them: each one once, when it happens, never
//! once per call that meets the state. They wait in a small bounded log
//! until the host takes them ([`crate::Router::take_health_events`]); when
//! the log is full the oldest goes and is counted. A host checks
//! [`crate::Router::has_health_events`] (one atomic load) after each call,
//! so a router whose providers behave costs it nothing more.
//!
//! Times are the core's [`Instant`]s, on the clock of the call that caused
//! the transition.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::time::Instant;

/// Transitions kept until a host takes them; past this the oldest goes.
pub const HEALTH_EVENTS_CAPACITY: usize = 256;

/// One health transition of one provider.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthEvent {
    /// When it happened.
    pub at: Instant,
    /// The provider's index in the config.
    pub provider_index: usize,
    /// The provider's name.
    pub provider: String,
    /// The model of the deployment (with `models`, when the table fixes
    /// the name sent): state is per provider and model.
    pub model: Option<String>,
    /// What happened.
    pub kind: HealthEventKind,
    /// The tenant and model a quality transition is for; `None` for the
    /// others, which are the provider's as a whole.
    pub scope: Option<QualityScope>,
}

/// The key of quality-aware routing a transition is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QualityScope {
    pub tenant: String,
    pub model: String,
}

impl HealthEvent {
    /// How long the state it entered lasts (from [`HealthEvent::at`]);
    /// `None` for a readmission.
    pub fn lasts(&self) -> Option<Duration> {
        match self.kind {
            HealthEventKind::Readmitted | HealthEventKind::QualityReadmitted => None,
            HealthEventKind::Ejected { until, .. }
            | HealthEventKind::Cooling { until, .. }
            | HealthEventKind::BudgetExhausted { until, .. }
            | HealthEventKind::QualityExcluded { until, .. } => Some(until - self.at),
        }
    }
}

impl fmt::Display for HealthEvent {
    /// One log line: `provider 'a' ejected for 30.0 s: 3 soft failures in a
    /// row` (the provider's name is the config's; no secret is in it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            HealthEventKind::Ejected { .. } => "ejected for",
            HealthEventKind::Readmitted => "readmitted",
            HealthEventKind::Cooling {
                cause: CoolingCause::RetryAfter,
                ..
            } => "cooling down for",
            HealthEventKind::Cooling {
                cause: CoolingCause::RateLimitHeaders,
                ..
            } => "rate-limited for",
            HealthEventKind::BudgetExhausted { .. } => "out of budget for about",
            HealthEventKind::QualityExcluded { .. } => "excluded",
            HealthEventKind::QualityReadmitted => "readmitted",
        };
        let lasts = self.lasts();
        write!(f, "provider '{}'", self.provider)?;
        if let Some(model) = &self.model {
            write!(f, " (model '{model}')")?;
        }
        write!(f, " {what}")?;
        if let Some(scope) = &self.scope {
            write!(f, " (tenant '{}', model '{}')", scope.tenant, scope.model)?;
            if lasts.is_some() {
                f.write_str(" for")?;
            }
        }
        if let Some(lasts) = lasts {
            write!(f, " {:.1} s", lasts.as_secs_f64())?;
        }
        write!(f, ": {}", self.kind.reason_words())
    }
}

/// What happened to a provider.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HealthEventKind {
    /// Routed around until `until`.
    Ejected {
        /// When the ejection ends (the provider is then half-open).
        until: Instant,
        /// Why.
        reason: EjectReason,
    },
    /// A success while half-open (its probe) readmitted it, with a fresh
    /// window.
    Readmitted,
    /// It asked to be left alone (or its rate-limit headers said a limit is
    /// spent) until `until`. Logged when it starts cooling, not when a later
    /// answer moves the end.
    Cooling {
        /// When the cooldown ends.
        until: Instant,
        /// Which answer said so.
        cause: CoolingCause,
    },
    /// The router's own budget for it (`rpm` or `tpm`) cannot take another
    /// call like the one that emptied it until `until`. Logged once per
    /// episode: again only after the budget was seen at least half full.
    BudgetExhausted {
        /// When a like call fits again (at the rates configured).
        until: Instant,
        /// Which budget.
        budget: BudgetKind,
    },
    /// Skipped for one tenant and model ([`HealthEvent::scope`]) until
    /// `until` (quality-aware routing): its schema pass rate there fell
    /// under the minimum, or its probe failed.
    QualityExcluded {
        until: Instant,
        /// Answers that matched the schema, of the window's `samples`.
        passes: u32,
        samples: u32,
        /// Excluded again because its probe failed.
        failed_probe: bool,
    },
    /// Its quality probe matched the schema: routed to again for that
    /// tenant and model, with a fresh window.
    QualityReadmitted,
}

impl HealthEventKind {
    /// A stable name: `ejected`, `readmitted`, `cooling`, `rate_limited`
    /// (cooling by rate-limit headers), `budget_exhausted`.
    pub fn name(&self) -> &'static str {
        match self {
            HealthEventKind::Ejected { .. } => "ejected",
            HealthEventKind::Readmitted => "readmitted",
            HealthEventKind::Cooling {
                cause: CoolingCause::RetryAfter,
                ..
            } => "cooling",
            HealthEventKind::Cooling {
                cause: CoolingCause::RateLimitHeaders,
                ..
            } => "rate_limited",
            HealthEventKind::BudgetExhausted { .. } => "budget_exhausted",
            HealthEventKind::QualityExcluded { .. } => "quality_excluded",
            HealthEventKind::QualityReadmitted => "quality_readmitted",
        }
    }

    /// A readmission (logged as information, not a warning).
    pub fn is_readmission(&self) -> bool {
        matches!(
            self,
            HealthEventKind::Readmitted | HealthEventKind::QualityReadmitted
        )
    }

    /// Why, as a stable name: an [`EjectReason::name`], `retry_after`,
    /// `rate_limit_headers`, `rpm`, `tpm`, `pass_rate` (a quality
    /// exclusion) or `failed_probe`; `None` for a readmission.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            HealthEventKind::Ejected { reason, .. } => Some(reason.name()),
            HealthEventKind::Readmitted | HealthEventKind::QualityReadmitted => None,
            HealthEventKind::Cooling {
                cause: CoolingCause::RetryAfter,
                ..
            } => Some("retry_after"),
            HealthEventKind::Cooling {
                cause: CoolingCause::RateLimitHeaders,
                ..
            } => Some("rate_limit_headers"),
            HealthEventKind::BudgetExhausted { budget, .. } => Some(budget.as_str()),
            HealthEventKind::QualityExcluded { failed_probe, .. } => Some(if *failed_probe {
                "failed_probe"
            } else {
                "pass_rate"
            }),
        }
    }

    /// Why, in words, for a log line.
    pub fn reason_words(&self) -> String {
        match self {
            HealthEventKind::Ejected { reason, .. } => reason.to_string(),
            HealthEventKind::Readmitted => "it answered while half-open (its probe)".to_owned(),
            HealthEventKind::Cooling {
                cause: CoolingCause::RetryAfter,
                ..
            } => "it answered with Retry-After".to_owned(),
            HealthEventKind::Cooling {
                cause: CoolingCause::RateLimitHeaders,
                ..
            } => "its rate-limit headers say a limit is spent".to_owned(),
            HealthEventKind::BudgetExhausted { budget, .. } => {
                format!("the router's {} budget for it is spent", budget.as_str())
            }
            HealthEventKind::QualityExcluded {
                failed_probe: true, ..
            } => "its probe's answer did not match the schema".to_owned(),
            HealthEventKind::QualityExcluded {
                passes, samples, ..
            } => format!(
                "schema pass rate {:.2} ({passes} of {samples} answers)",
                f64::from(*passes) / f64::from((*samples).max(1))
            ),
            HealthEventKind::QualityReadmitted => {
                "its probe's answer matched the schema".to_owned()
            }
        }
    }
}

/// Why a provider was ejected.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EjectReason {
    /// This many soft failures in a row.
    ConsecutiveFailures(u32),
    /// The window's error rate reached the limit.
    ErrorRate {
        /// Soft failures in the window.
        failures: u32,
        /// Outcomes in the window.
        outcomes: u32,
    },
    /// Its half-open probe failed.
    FailedProbe,
}

impl EjectReason {
    /// A stable name: `consecutive_failures`, `error_rate`, `failed_probe`.
    pub fn name(&self) -> &'static str {
        match self {
            EjectReason::ConsecutiveFailures(_) => "consecutive_failures",
            EjectReason::ErrorRate { .. } => "error_rate",
            EjectReason::FailedProbe => "failed_probe",
        }
    }
}

impl fmt::Display for EjectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EjectReason::ConsecutiveFailures(1) => f.write_str("a soft failure"),
            EjectReason::ConsecutiveFailures(n) => write!(f, "{n} soft failures in a row"),
            EjectReason::ErrorRate { failures, outcomes } => write!(
                f,
                "error rate {:.2} ({failures} soft failures in {outcomes} outcomes)",
                f64::from(failures) / f64::from(outcomes.max(1))
            ),
            EjectReason::FailedProbe => f.write_str("its half-open probe failed"),
        }
    }
}

/// What started a cooldown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoolingCause {
    /// A `Retry-After` (or `retry-after-ms`) on a soft failure.
    RetryAfter,
    /// The provider's own rate-limit headers said a limit is at 0.
    RateLimitHeaders,
}

/// One of the router's per-provider budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetKind {
    /// Requests per minute.
    Rpm,
    /// Tokens per minute.
    Tpm,
}

impl BudgetKind {
    /// `rpm` or `tpm`, as the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetKind::Rpm => "rpm",
            BudgetKind::Tpm => "tpm",
        }
    }
}

/// What [`crate::Router::take_health_events`] hands over.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthEvents {
    /// The transitions, oldest first.
    pub events: Vec<HealthEvent>,
    /// Transitions lost since the last take because the log was full (the
    /// oldest go first).
    pub dropped: u64,
}

impl HealthEvents {
    /// Nothing happened.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.dropped == 0
    }
}

/// The bounded log behind the router's lock.
#[derive(Debug)]
pub(crate) struct EventLog {
    events: VecDeque<HealthEvent>,
    dropped: u64,
    capacity: usize,
}

impl EventLog {
    pub(crate) fn new(capacity: usize) -> Self {
        EventLog {
            events: VecDeque::new(),
            dropped: 0,
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn push(&mut self, event: HealthEvent) {
        if self.events.len() >= self.capacity {
            self.events.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.events.push_back(event);
    }

    pub(crate) fn take(&mut self) -> HealthEvents {
        HealthEvents {
            events: self.events.drain(..).collect(),
            dropped: std::mem::take(&mut self.dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> HealthEvent {
        HealthEvent {
            at: Instant::from_micros(n),
            provider_index: 0,
            provider: "a".into(),
            model: None,
            kind: HealthEventKind::Readmitted,
            scope: None,
        }
    }

    #[test]
    fn the_log_is_bounded_and_drops_the_oldest() {
        let mut log = EventLog::new(3);
        for n in 0..5 {
            log.push(event(n));
        }
        let taken = log.take();
        assert_eq!(taken.dropped, 2);
        let at: Vec<u64> = taken.events.iter().map(|e| e.at.as_micros()).collect();
        assert_eq!(at, vec![2, 3, 4]);
        assert!(
            log.take().is_empty(),
            "a take empties it and resets the count"
        );
    }

    #[test]
    fn names_and_lengths() {
        let at = Instant::from_micros(1_000_000);
        let e = HealthEvent {
            at,
            provider_index: 1,
            provider: "b".into(),
            model: None,
            kind: HealthEventKind::Ejected {
                until: at + Duration::from_secs(30),
                reason: EjectReason::ErrorRate {
                    failures: 11,
                    outcomes: 20,
                },
            },
            scope: None,
        };
        assert_eq!(e.kind.name(), "ejected");
        assert_eq!(e.lasts(), Some(Duration::from_secs(30)));
        let HealthEventKind::Ejected { reason, .. } = e.kind else {
            unreachable!()
        };
        assert_eq!(reason.name(), "error_rate");
        assert_eq!(
            reason.to_string(),
            "error rate 0.55 (11 soft failures in 20 outcomes)"
        );
        let cooling = HealthEventKind::Cooling {
            until: at,
            cause: CoolingCause::RateLimitHeaders,
        };
        assert_eq!(cooling.name(), "rate_limited");
        assert_eq!(event(0).lasts(), None);
    }
}
