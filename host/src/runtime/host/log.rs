//! `commerce:fulfillment/log`: module messages into `tracing`.

use crate::runtime::bindings::log::{Host, Level};
use crate::text::{escape_control, truncated};

/// The longest single message written to the log; longer ones are cut.
const MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// Tags each message with the module and the order it is working on, writes
/// its control characters as visible escapes (a newline cannot start a forged
/// log line, an ESC cannot reach the operator's terminal), and keeps to the
/// module's `log_bytes` budget for the order (all its calls for the order
/// share it): past it, messages are dropped and the host says so once, so a
/// chatty module cannot flood the host's logs.
pub struct LogCtx {
    module: String,
    order: String,
    budget: usize,
    bytes_written: usize,
    dropped: usize,
}

impl LogCtx {
    pub fn new(module: &str, order: &str, budget: usize) -> LogCtx {
        LogCtx {
            module: module.to_string(),
            order: order.to_string(),
            budget,
            bytes_written: 0,
            dropped: 0,
        }
    }

    /// How many messages were dropped for being over the budget.
    #[cfg(test)]
    fn dropped(&self) -> usize {
        self.dropped
    }
}

impl Host for LogCtx {
    fn log(&mut self, level: Level, message: String) {
        self.bytes_written = self.bytes_written.saturating_add(message.len());
        if self.bytes_written > self.budget {
            if self.dropped == 0 {
                tracing::warn!(module = %self.module, order = %self.order,
                    "module exceeded its log budget of {} bytes (log_bytes); dropping its further messages for this order", self.budget);
            }
            self.dropped += 1;
            return;
        }
        let message = escape_control(&truncated(&message, MAX_MESSAGE_BYTES)).into_owned();
        let (module, order) = (&self.module, &self.order);
        match level {
            Level::Trace => tracing::trace!(target: "module", module, order, "{message}"),
            Level::Debug => tracing::debug!(target: "module", module, order, "{message}"),
            Level::Info => tracing::info!(target: "module", module, order, "{message}"),
            Level::Warn => tracing::warn!(target: "module", module, order, "{message}"),
            Level::Error => tracing::error!(target: "module", module, order, "{message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_past_the_budget_are_dropped() {
        let mut log = LogCtx::new("chatty", "EDX-1", 10);
        log.log(Level::Info, "12345".into());
        log.log(Level::Info, "12345".into());
        assert_eq!(log.dropped(), 0);
        log.log(Level::Info, "1".into());
        log.log(Level::Info, "1".into());
        assert_eq!(log.dropped(), 2);
    }
}
