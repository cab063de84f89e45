use std::fmt;

/// A module that did not behave: it trapped (a panic, `unreachable`, stack
/// overflow, out of memory), or it could not be instantiated. Affects only
/// the lines of that module in that order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModuleFault {
    pub module: String,
    /// The export being called: "supports-line", "fulfill-product", ...
    pub call: &'static str,
    /// What happened, for people; includes the guest's panic message when it
    /// wrote one to stderr.
    pub reason: String,
}

impl fmt::Display for ModuleFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "module {} failed in {}: {}", self.module, self.call, self.reason)
    }
}

impl ModuleFault {
    /// Builds the fault for `error` raised by `call`, with what the guest
    /// wrote to stderr (a Rust panic message lands there).
    pub fn from_error(module: &str, call: &'static str, error: &wasmtime::Error, stderr: &str) -> ModuleFault {
        let cause = match error.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => format!("trap: {trap}"),
            None => format!("{error:#}"),
        };
        let panic = stderr
            .lines()
            .skip_while(|line| !line.contains("panicked at"))
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        let reason = if panic.is_empty() { cause } else { format!("{cause} ({panic})") };
        ModuleFault {
            module: module.to_string(),
            call,
            reason,
        }
    }
}
