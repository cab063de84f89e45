use std::fmt;

use super::meter::{CpuLimitExceeded, WallLimitExceeded};

/// A module that did not behave: it trapped (a panic, `unreachable`, stack
/// overflow, out of memory), ran past a time limit, returned output the host
/// will not use, or could not be instantiated. Affects only the lines of
/// that module in that order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModuleFault {
    pub module: String,
    /// The export being called: "supports-line", "fulfill-product", ...
    pub call: &'static str,
    pub kind: FaultKind,
    /// What exactly went wrong (the `kind` follows from it): the metrics
    /// count faults by it.
    pub cause: FaultCause,
    /// What happened, for people; includes the guest's panic message when it
    /// wrote one to stderr, and the limit it ran into.
    pub reason: String,
}

/// What kind of fault, which decides the status of the module's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A trap, an instantiation failure, output over its limit or a broken
    /// answer: `Fulfillment Server Error`.
    Failed,
    /// A wall-time limit (the module waited on something too long), or no
    /// free in-flight slot in time: `Fulfillment Timeout Error`.
    TimedOut,
    /// The module computed past its CPU time or fuel: also `Fulfillment
    /// Timeout Error`, but its own doing (a loop), not a sign that the system
    /// behind it is down, so the circuit breaker does not count it.
    OverBudget,
}

/// What exactly went wrong in a call: the `kind` label of
/// `fulfillment_module_failures_total`. Each cause has one [`FaultKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultCause {
    /// The guest trapped: a panic, `unreachable`, a stack overflow.
    Trap,
    /// The guest trapped after the host refused it memory or table growth
    /// (`memory_bytes`, `table_elements`).
    OutOfMemory,
    /// The call ran past its wall-time limit (`wall_ms`).
    Timeout,
    /// No in-flight slot of the module freed up in time (`max_in_flight`).
    NoSlot,
    /// The guest computed past its CPU time (`cpu_ms`).
    CpuTime,
    /// The guest used up its fuel budget (`fuel`).
    Fuel,
    /// The answer was larger than `output_bytes`.
    OutputTooLarge,
    /// Anything else the call failed with (an instantiation error, say).
    Error,
}

impl FaultCause {
    pub const ALL: [FaultCause; 8] = [
        FaultCause::Trap,
        FaultCause::OutOfMemory,
        FaultCause::Timeout,
        FaultCause::NoSlot,
        FaultCause::CpuTime,
        FaultCause::Fuel,
        FaultCause::OutputTooLarge,
        FaultCause::Error,
    ];

    /// The label value: "trap", "out-of-memory", "timeout", "no-slot",
    /// "cpu-time", "fuel", "output-too-large", "error".
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCause::Trap => "trap",
            FaultCause::OutOfMemory => "out-of-memory",
            FaultCause::Timeout => "timeout",
            FaultCause::NoSlot => "no-slot",
            FaultCause::CpuTime => "cpu-time",
            FaultCause::Fuel => "fuel",
            FaultCause::OutputTooLarge => "output-too-large",
            FaultCause::Error => "error",
        }
    }

    /// The kind of fault, which decides the lines' status.
    pub fn kind(self) -> FaultKind {
        match self {
            FaultCause::Trap | FaultCause::OutOfMemory | FaultCause::OutputTooLarge | FaultCause::Error => FaultKind::Failed,
            FaultCause::Timeout | FaultCause::NoSlot => FaultKind::TimedOut,
            FaultCause::CpuTime | FaultCause::Fuel => FaultKind::OverBudget,
        }
    }

    /// A trap of the guest (out of memory included).
    pub fn is_trap(self) -> bool {
        matches!(self, FaultCause::Trap | FaultCause::OutOfMemory)
    }

    /// A time-out: its lines get `Fulfillment Timeout Error`.
    pub fn is_timeout(self) -> bool {
        matches!(self.kind(), FaultKind::TimedOut | FaultKind::OverBudget)
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ModuleFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "module {} failed in {}: {}", self.module, self.call, self.reason)
    }
}

impl ModuleFault {
    pub fn new(module: &str, call: &'static str, cause: FaultCause, reason: String) -> ModuleFault {
        ModuleFault {
            module: module.to_string(),
            call,
            kind: cause.kind(),
            cause,
            reason,
        }
    }

    /// Builds the fault for `error` raised by `call`, with what the guest
    /// wrote to stderr (a Rust panic message or an allocation failure lands
    /// there) and the growth limit it ran into, if any.
    pub fn from_error(
        module: &str,
        call: &'static str,
        error: &wasmtime::Error,
        stderr: &str,
        refused_growth: Option<&str>,
        fuel: Option<u64>,
    ) -> ModuleFault {
        // wasmtime wraps what the epoch callback returned in a backtrace
        // context: look through the chain.
        if let Some(cpu) = error.chain().find(|cause| cause.is::<CpuLimitExceeded>()) {
            return ModuleFault::new(module, call, FaultCause::CpuTime, cpu.to_string());
        }
        if let Some(wall) = error.chain().find(|cause| cause.is::<WallLimitExceeded>()) {
            return ModuleFault::new(module, call, FaultCause::Timeout, wall.to_string());
        }
        if let Some(wasmtime::Trap::OutOfFuel) = error.downcast_ref::<wasmtime::Trap>() {
            let budget = fuel.map_or_else(String::new, |fuel| format!(" of {fuel}"));
            let reason = format!("exceeded its fuel budget{budget} for one call (fuel)");
            return ModuleFault::new(module, call, FaultCause::Fuel, reason);
        }
        let trap = error.downcast_ref::<wasmtime::Trap>();
        let cause = match (trap, refused_growth) {
            (Some(_), Some(_)) => FaultCause::OutOfMemory,
            (Some(_), None) => FaultCause::Trap,
            (None, _) => FaultCause::Error,
        };
        let mut reason = match trap {
            Some(trap) => format!("trap: {trap}"),
            None => format!("{error:#}"),
        };
        if let Some(limit) = refused_growth {
            reason.push_str(&format!(" after it reached {limit}"));
        }
        let said = guest_last_words(stderr);
        if !said.is_empty() {
            reason.push_str(&format!(" ({said})"));
        }
        ModuleFault::new(module, call, cause, reason)
    }
}

/// The useful part of the guest's stderr: a Rust panic's first lines, or
/// else the last line (an allocation failure), at most 500 bytes, with its
/// control characters escaped (it goes into notes and logs).
fn guest_last_words(stderr: &str) -> String {
    let said = || {
        stderr
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE"))
    };
    let panic: Vec<&str> = said().skip_while(|line| !line.contains("panicked at")).take(3).collect();
    let text = if panic.is_empty() {
        said().next_back().unwrap_or("").to_string()
    } else {
        panic.join(" ")
    };
    let mut end = text.len().min(500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    crate::text::escape_control(&text[..end]).into_owned()
}
