//! The circuit breaker of one module: when the system behind a module is
//! down, stop calling it for a while instead of letting every order wait for
//! its time-outs.
//!
//! Closed: calls go through; each line that fails with a network or timeout
//! error counts, a complete line resets the count. At `failures` in a row the
//! circuit opens: for `cool_down_ms` the module is not called and its lines
//! fail at once. Then it is half-open: one call goes through as a probe
//! (others still fail at once); if the probe completes a line the circuit
//! closes, if it fails the same way the circuit opens again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::settings::CircuitBreakerSettings;

/// How one line of a call went, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineHealth {
    /// Complete: the system behind the module answers.
    Healthy,
    /// A network or timeout error (or a module that ran out of time).
    Unreachable,
    /// Anything else (a configuration or server error): says nothing.
    Neutral,
}

/// A module's breaker. Cheap to share.
#[derive(Debug)]
pub struct CircuitBreaker {
    settings: CircuitBreakerSettings,
    state: Arc<Mutex<BreakerState>>,
}

#[derive(Debug)]
struct BreakerState {
    phase: Phase,
    consecutive_failures: u32,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { since: SystemTime, until: Instant },
    /// Cool-down over; `probing` while the one probe call is out.
    HalfOpen { probing: bool },
}

/// Whether a call may go ahead.
#[derive(Debug)]
pub enum Admission {
    /// Call the module, then [`CallPass::record`] how its lines went.
    Call(CallPass),
    /// Do not call: the circuit is open (or another call is the probe).
    Refused { failures: u32, retry_in: Duration },
}

/// Leave to make one call. Dropped without [`CallPass::record`] (the call
/// was abandoned), a probe gives its turn to the next call.
#[derive(Debug)]
pub struct CallPass {
    state: Arc<Mutex<BreakerState>>,
    settings: CircuitBreakerSettings,
    probe: bool,
    recorded: bool,
}

/// Where the circuit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    HalfOpen,
    Open,
}

impl CircuitState {
    /// The value of the `fulfillment_module_circuit_breaker_state` gauge: 0
    /// closed, 1 half-open, 2 open.
    pub fn gauge_value(self) -> i64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::HalfOpen => 1,
            CircuitState::Open => 2,
        }
    }
}

/// The breaker as `GET /api/v1/modules` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BreakerView {
    /// "closed", "open" or "half-open".
    pub state: &'static str,
    /// Lines in a row that failed with a network or timeout error.
    pub consecutive_failures: u32,
    /// The setting: 0 means the breaker is off.
    pub failures_to_open: u32,
    /// When the circuit opened (RFC 3339), while it is open.
    pub opened_at: Option<String>,
    /// Milliseconds until the next probe, while it is open.
    pub probe_in_ms: Option<u64>,
}

impl CircuitBreaker {
    pub fn new(settings: CircuitBreakerSettings) -> CircuitBreaker {
        CircuitBreaker {
            settings,
            state: Arc::new(Mutex::new(BreakerState {
                phase: Phase::Closed,
                consecutive_failures: 0,
            })),
        }
    }

    fn lock(state: &Mutex<BreakerState>) -> std::sync::MutexGuard<'_, BreakerState> {
        state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the module may be called now.
    pub fn admit(&self) -> Admission {
        let mut state = Self::lock(&self.state);
        let pass = |probe| {
            Admission::Call(CallPass {
                state: self.state.clone(),
                settings: self.settings.clone(),
                probe,
                recorded: false,
            })
        };
        match state.phase {
            Phase::Closed => pass(false),
            Phase::Open { until, .. } => {
                let now = Instant::now();
                if now < until {
                    Admission::Refused {
                        failures: state.consecutive_failures,
                        retry_in: until - now,
                    }
                } else {
                    state.phase = Phase::HalfOpen { probing: true };
                    pass(true)
                }
            }
            Phase::HalfOpen { probing: false } => {
                state.phase = Phase::HalfOpen { probing: true };
                pass(true)
            }
            Phase::HalfOpen { probing: true } => Admission::Refused {
                failures: state.consecutive_failures,
                retry_in: Duration::ZERO,
            },
        }
    }

    /// Where the circuit is now (open until a call after its cool-down
    /// makes it half-open).
    pub fn state(&self) -> CircuitState {
        match Self::lock(&self.state).phase {
            Phase::Closed => CircuitState::Closed,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
            Phase::Open { .. } => CircuitState::Open,
        }
    }

    pub fn view(&self) -> BreakerView {
        let state = Self::lock(&self.state);
        let (name, opened_at, probe_in) = match state.phase {
            Phase::Closed => ("closed", None, None),
            Phase::Open { since, until } => (
                "open",
                Some(rfc3339(since)),
                Some(until.saturating_duration_since(Instant::now()).as_millis() as u64),
            ),
            Phase::HalfOpen { .. } => ("half-open", None, None),
        };
        BreakerView {
            state: name,
            consecutive_failures: state.consecutive_failures,
            failures_to_open: self.settings.failures,
            opened_at,
            probe_in_ms: probe_in,
        }
    }
}

impl CallPass {
    /// Counts how the call's lines went and moves the circuit accordingly.
    pub fn record(mut self, lines: impl IntoIterator<Item = LineHealth>) {
        self.recorded = true;
        let mut state = CircuitBreaker::lock(&self.state);
        let mut any_healthy = false;
        let mut any_unreachable = false;
        for health in lines {
            match health {
                LineHealth::Healthy => {
                    any_healthy = true;
                    state.consecutive_failures = 0;
                }
                LineHealth::Unreachable => {
                    any_unreachable = true;
                    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                }
                LineHealth::Neutral => {}
            }
        }
        let threshold = self.settings.failures;
        let trips = threshold > 0 && state.consecutive_failures >= threshold;
        let failed_probe = self.probe && any_unreachable && !any_healthy;
        state.phase = match state.phase {
            // A call that started before the circuit opened and ends after:
            // it does not push the cool-down back.
            Phase::Open { .. } if !self.probe => state.phase,
            _ if trips || failed_probe => {
                tracing::warn!(failures = state.consecutive_failures, cool_down_ms = self.settings.cool_down_ms,
                    "circuit opened: the module is not called until the cool-down is over");
                Phase::Open {
                    since: SystemTime::now(),
                    until: Instant::now() + self.settings.cool_down(),
                }
            }
            _ => Phase::Closed,
        };
    }
}

impl Drop for CallPass {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            let mut state = CircuitBreaker::lock(&self.state);
            if let Phase::HalfOpen { probing: true } = state.phase {
                state.phase = Phase::HalfOpen { probing: false };
            }
        }
    }
}

fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use LineHealth::*;

    fn breaker(failures: u32, cool_down_ms: u64) -> CircuitBreaker {
        CircuitBreaker::new(CircuitBreakerSettings { failures, cool_down_ms })
    }

    fn call(breaker: &CircuitBreaker, lines: &[LineHealth]) {
        match breaker.admit() {
            Admission::Call(pass) => pass.record(lines.iter().copied()),
            Admission::Refused { .. } => panic!("refused"),
        }
    }

    #[test]
    fn failures_in_a_row_open_the_circuit_and_a_success_resets_the_count() {
        let breaker = breaker(3, 3_600_000);
        call(&breaker, &[Unreachable, Unreachable]);
        call(&breaker, &[Healthy]);
        assert_eq!(breaker.view().consecutive_failures, 0);
        call(&breaker, &[Unreachable, Neutral, Unreachable]);
        assert_eq!(breaker.view().state, "closed");
        call(&breaker, &[Unreachable]);
        assert_eq!(breaker.view().state, "open");
        assert!(matches!(breaker.admit(), Admission::Refused { failures: 3, .. }));
    }

    #[test]
    fn after_the_cool_down_one_probe_decides() {
        let breaker = breaker(1, 0);
        call(&breaker, &[Unreachable]);
        assert_eq!(breaker.view().state, "open");
        let Admission::Call(probe) = breaker.admit() else { panic!("the probe is let through") };
        assert_eq!(breaker.view().state, "half-open");
        assert!(matches!(breaker.admit(), Admission::Refused { .. }), "only one probe at a time");
        drop(probe);
        let Admission::Call(probe) = breaker.admit() else { panic!("an abandoned probe frees the turn") };
        probe.record([Healthy]);
        assert_eq!(breaker.view().state, "closed");
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let breaker = breaker(0, 3_600_000);
        for _ in 0..10 {
            call(&breaker, &[Unreachable]);
        }
        assert_eq!(breaker.view().state, "closed");
    }
}
