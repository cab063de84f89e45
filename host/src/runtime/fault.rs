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

impl fmt::Display for ModuleFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "module {} failed in {}: {}", self.module, self.call, self.reason)
    }
}

impl ModuleFault {
    pub fn new(module: &str, call: &'static str, kind: FaultKind, reason: String) -> ModuleFault {
        ModuleFault {
            module: module.to_string(),
            call,
            kind,
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
            return ModuleFault::new(module, call, FaultKind::OverBudget, cpu.to_string());
        }
        if let Some(wall) = error.chain().find(|cause| cause.is::<WallLimitExceeded>()) {
            return ModuleFault::new(module, call, FaultKind::TimedOut, wall.to_string());
        }
        if let Some(wasmtime::Trap::OutOfFuel) = error.downcast_ref::<wasmtime::Trap>() {
            let budget = fuel.map_or_else(String::new, |fuel| format!(" of {fuel}"));
            let reason = format!("exceeded its fuel budget{budget} for one call (fuel)");
            return ModuleFault::new(module, call, FaultKind::OverBudget, reason);
        }
        let cause = match error.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => format!("trap: {trap}"),
            None => format!("{error:#}"),
        };
        let mut reason = cause;
        if let Some(limit) = refused_growth {
            reason.push_str(&format!(" after it reached {limit}"));
        }
        let said = guest_last_words(stderr);
        if !said.is_empty() {
            reason.push_str(&format!(" ({said})"));
        }
        ModuleFault::new(module, call, FaultKind::Failed, reason)
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
