//! `commerce:fulfillment/log`: module messages into `tracing`.

use crate::runtime::bindings::log::{Host, Level};

/// The most log bytes one store may write; past it, messages are dropped and
/// the host says so once, so a chatty module cannot flood the host's logs.
const LOG_BUDGET_BYTES: usize = 64 * 1024;
/// The longest single message written to the log; longer ones are cut.
const MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// Tags each message with the module and the order it is working on.
pub struct LogCtx {
    module: String,
    order: String,
    bytes_written: usize,
    dropped: bool,
}

impl LogCtx {
    pub fn new(module: &str, order: &str) -> LogCtx {
        LogCtx {
            module: module.to_string(),
            order: order.to_string(),
            bytes_written: 0,
            dropped: false,
        }
    }
}

impl Host for LogCtx {
    fn log(&mut self, level: Level, message: String) {
        self.bytes_written = self.bytes_written.saturating_add(message.len());
        if self.bytes_written > LOG_BUDGET_BYTES {
            if !self.dropped {
                self.dropped = true;
                tracing::warn!(module = %self.module, order = %self.order,
                    "module exceeded its log budget of {LOG_BUDGET_BYTES} bytes; dropping its further messages for this order");
            }
            return;
        }
        let message = truncated(&message, MAX_MESSAGE_BYTES);
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

/// `text` cut to at most `limit` bytes at a character boundary, marked when cut.
fn truncated(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= limit {
        return text.into();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}
