//! The CPU deadline of one call into a module: guest execution time, not
//! wall time.
//!
//! The engine's epoch advances every [`TICK`]; at each tick a running guest
//! enters the store's epoch callback ([`CallMeter::on_epoch`]). The meter
//! knows how long the call's future has spent being polled, which is the
//! time the guest (and the host's synchronous imports) ran: while the guest
//! waits on host HTTP or a sleep, the future is parked and nothing is
//! charged. Over the budget, the callback traps the call. Under it, a guest
//! that has held the thread for a whole tick yields to tokio, so a spinning
//! module shares its worker with the other orders instead of blocking it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::UpdateDeadline;

/// How often the engine's epoch advances: the granularity of CPU deadlines
/// and the longest a guest runs before it yields to other tasks.
pub const TICK: Duration = Duration::from_millis(10);

/// The error a call traps with when it used up its CPU time.
#[derive(Debug, thiserror::Error)]
#[error("exceeded its CPU time limit of {} ms (cpu_ms)", limit.as_millis())]
pub struct CpuLimitExceeded {
    pub limit: Duration,
}

/// The error a call ends with when it ran past its wall-time limit.
#[derive(Debug, thiserror::Error)]
#[error("exceeded its wall-time limit of {} ms for one call (wall_ms)", limit.as_millis())]
pub struct WallLimitExceeded {
    pub limit: Duration,
}

/// The CPU time of the current call, shared by the store's epoch callback
/// and the future that runs the call.
#[derive(Debug)]
pub struct CallMeter {
    limit: Duration,
    state: Mutex<MeterState>,
}

#[derive(Debug, Default)]
struct MeterState {
    /// Time spent in finished polls of this call.
    spent: Duration,
    /// When the poll in progress started, if one is.
    polling_since: Option<Instant>,
}

impl CallMeter {
    pub fn new(limit: Duration) -> Arc<CallMeter> {
        Arc::new(CallMeter {
            limit,
            state: Mutex::new(MeterState::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MeterState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts metering a new call from zero.
    pub fn reset(&self) {
        *self.state() = MeterState::default();
    }

    /// The store's epoch callback: trap past the budget, else yield if the
    /// guest has held the thread for a tick, else carry on.
    pub fn on_epoch(&self) -> wasmtime::Result<UpdateDeadline> {
        let state = self.state();
        let this_poll = state.polling_since.map_or(Duration::ZERO, |since| since.elapsed());
        if state.spent + this_poll >= self.limit {
            return Err(CpuLimitExceeded { limit: self.limit }.into());
        }
        if this_poll >= TICK {
            Ok(UpdateDeadline::Yield(1))
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    }

    /// Runs `call` to completion, charging its polls to this meter, within
    /// `wall` of wall time.
    pub async fn run<F, R>(self: &Arc<Self>, wall: Duration, call: F) -> wasmtime::Result<R>
    where
        F: Future<Output = wasmtime::Result<R>>,
    {
        self.reset();
        let metered = Metered {
            meter: self.clone(),
            call: Box::pin(call),
        };
        match tokio::time::timeout(wall, metered).await {
            Ok(result) => result,
            // Dropping the call's future abandons the guest mid-call; the
            // session is not entered again.
            Err(_) => Err(WallLimitExceeded { limit: wall }.into()),
        }
    }
}

/// A call whose polls are timed.
struct Metered<F> {
    meter: Arc<CallMeter>,
    call: Pin<Box<F>>,
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let started = Instant::now();
        self.meter.state().polling_since = Some(started);
        let poll = self.call.as_mut().poll(cx);
        let mut state = self.meter.state();
        state.polling_since = None;
        state.spent += started.elapsed();
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_call_is_not_charged_and_a_spent_budget_traps() {
        let meter = CallMeter::new(Duration::from_millis(5));
        assert!(matches!(meter.on_epoch(), Ok(UpdateDeadline::Continue(1))));
        meter.state().spent = Duration::from_millis(5);
        let error = meter.on_epoch().err().expect("over budget");
        assert_eq!(error.to_string(), "exceeded its CPU time limit of 5 ms (cpu_ms)");
        meter.reset();
        assert!(matches!(meter.on_epoch(), Ok(UpdateDeadline::Continue(1))), "a new call starts from zero");
    }

    #[test]
    fn a_guest_that_held_the_thread_for_a_tick_yields() {
        let meter = CallMeter::new(Duration::from_secs(60));
        meter.state().polling_since = Some(Instant::now() - TICK);
        assert!(matches!(meter.on_epoch(), Ok(UpdateDeadline::Yield(1))));
    }
}
