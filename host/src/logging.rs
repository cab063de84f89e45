//! The host's log on stderr: text lines for people, or JSON lines for a log
//! collector (`[logging] format = "json"`, or `--log-format json`).
//!
//! A JSON line is one object: `timestamp`, `level`, `target`, the event's
//! fields (`message` among them) and the fields of every span it happened
//! in, all at the top level, so that the lines of a fulfillment carry the
//! `order` and the `module` they are about (the spans of `dispatch` name
//! them) and a collector can filter on them without knowing the spans.
//! `spans` lists the spans' names, outermost first ("dispatch:module_call").

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::settings::LogFormat;

/// Installs the process's log: `format` on stderr, filtered by `filter`,
/// coloured (text only) when `colours`.
pub fn init(format: LogFormat, filter: tracing_subscriber::EnvFilter, colours: bool) {
    let log = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => log.with_ansi(colours).init(),
        LogFormat::Json => log.fmt_fields(JsonFields::new()).event_format(JsonLines).init(),
    }
}

/// Writes a JSON log line that must reach stderr whatever the log filter
/// says (`RUST_LOG=warn` would otherwise hide where `serve` listens, and
/// `off` a command's error): the shape of the other lines, at `level`.
pub fn announce_json(level: tracing::Level, message: &str, fields: &[(&str, &str)]) {
    let mut line = Map::new();
    let now = time::OffsetDateTime::now_utc();
    let timestamp = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    line.insert("timestamp".into(), Value::String(timestamp));
    line.insert("level".into(), Value::String(level.as_str().into()));
    line.insert("target".into(), Value::String("fulfillment_host".into()));
    line.insert("message".into(), Value::String(message.into()));
    for (name, value) in fields {
        line.insert((*name).into(), Value::String((*value).into()));
    }
    eprintln!("{}", Value::Object(line));
}

/// Formats an event as one JSON object a line, its spans' fields merged in
/// (see the module's documentation). The spans' fields are those
/// `JsonFields` recorded as a JSON object.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    fn format_event(&self, context: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let metadata = event.metadata();
        let mut line = Map::new();
        let now = time::OffsetDateTime::now_utc();
        let timestamp = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(metadata.level().as_str().into()));
        line.insert("target".into(), Value::String(metadata.target().into()));
        let mut spans = Vec::new();
        if let Some(scope) = context.event_scope() {
            // Outermost first: an inner span's field wins over an outer one's.
            for span in scope.from_root() {
                spans.push(span.name());
                let extensions = span.extensions();
                let recorded = extensions.get::<FormattedFields<N>>().map(|fields| fields.fields.as_str());
                if let Some(Ok(Value::Object(fields))) = recorded.map(serde_json::from_str::<Value>) {
                    line.extend(fields);
                }
            }
        }
        if !spans.is_empty() {
            line.insert("spans".into(), Value::String(spans.join(":")));
        }
        // The event's own fields win over its spans'.
        event.record(&mut FieldsOf(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Collects an event's fields into a JSON object.
struct FieldsOf<'a>(&'a mut Map<String, Value>);

impl Visit for FieldsOf<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// Lines written into memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn a_line_has_the_event_and_span_fields_at_the_top_level() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let dispatch = tracing::info_span!("dispatch", order = "EDX-1", status = tracing::field::Empty);
            let _entered = dispatch.enter();
            dispatch.record("status", "Complete");
            let call = tracing::info_span!("module_call", module = "donation", order = "EDX-1");
            call.in_scope(|| tracing::info!(outcome = "1 of 1 complete", elapsed_ms = 3u64, "module call done"));
        });
        let bytes = captured.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let text = String::from_utf8(bytes).expect("UTF-8");
        let line: Value = serde_json::from_str(text.trim_end()).expect("one JSON line");
        assert_eq!(line["message"], "module call done", "{line}");
        assert_eq!((&line["order"], &line["module"]), (&"EDX-1".into(), &"donation".into()), "{line}");
        assert_eq!((&line["status"], &line["elapsed_ms"]), (&"Complete".into(), &3.into()), "{line}");
        assert_eq!((&line["spans"], &line["level"]), (&"dispatch:module_call".into(), &"INFO".into()), "{line}");
    }
}
