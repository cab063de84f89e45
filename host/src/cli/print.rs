//! How the commands print: `dispatch` and `run-module` show an order's
//! outcome, every command writes through [`emit`].
//!
//! Text a module controls (attributes, notes, messages, what `describe`
//! says) goes through [`esc`]: its control characters are shown as escapes,
//! so a module cannot fake lines of the output or send the terminal commands.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use fulfillment_host::dispatch::{Claim, DispatchReport};
use fulfillment_host::model::{NoteKind, Order, OrderStatus};

use super::EXIT_ORDER_FAILED;

/// `text` with its control characters escaped, for the terminal.
pub fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    fulfillment_host::text::escape_control(text)
}

/// Writes `text` to stdout. A reader that closed the pipe (`| head`) has
/// all it wanted: the rest is dropped quietly (no panic, no error).
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(anyhow::anyhow!("cannot write to stdout: {error}")),
    }
}

/// Each line's module, status and attributes, the notes, and the timed
/// module calls.
pub fn outcome(order: &Order, report: &DispatchReport) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "order {}: {}", esc(&order.number), order.status)?;
    writeln!(out, "  {:<6} {:<28} {:<20} {:<20} status", "line", "sku", "product type", "module")?;
    for line in &order.lines {
        writeln!(
            out,
            "  {:<6} {:<28} {:<20} {:<20} {}",
            line.id,
            esc(&line.product.sku),
            esc(&line.product.product_type),
            line.fulfilled_by.as_deref().unwrap_or("-"),
            line.status
        )?;
        for (name, value) in &line.attributes {
            writeln!(out, "  {:<6} {} = {}", "", esc(name), esc(value))?;
        }
    }
    if !order.notes.is_empty() {
        writeln!(out, "notes:")?;
        for note in &order.notes {
            let kind = match note.kind {
                NoteKind::Info => "Info",
                NoteKind::Error => "Error",
            };
            let line = note.line_id.map(|id| format!(" line {id}")).unwrap_or_default();
            let module = note.module.as_deref().map(|name| format!(" ({name})")).unwrap_or_default();
            writeln!(out, "  [{kind}]{line}{module}: {}", esc(&note.message))?;
        }
    }
    if !report.calls.is_empty() {
        writeln!(out, "module calls:")?;
        for call in &report.calls {
            let fault = call.fault.as_deref().map(|fault| format!("  FAULT: {}", esc(fault))).unwrap_or_default();
            writeln!(
                out,
                "  {:<20} {:<16} {:>3} line(s) {:>10.3} ms{fault}",
                call.module,
                call.call,
                call.lines,
                call.elapsed.as_secs_f64() * 1000.0
            )?;
        }
    }
    Ok(out)
}

/// Which module would claim each line.
pub fn plan(order: &Order, plan: &[Claim]) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "order {} (dry run: nothing fulfilled)", esc(&order.number))?;
    writeln!(out, "  {:<6} {:<28} {:<20} would be claimed by", "line", "sku", "product type")?;
    for claim in plan {
        let Some(line) = order.line(claim.line_id) else { continue };
        let nobody = if claim.offered_to.is_empty() {
            "(no module declares its product type: Fulfillment Configuration Error)"
        } else {
            "(no module: Fulfillment Configuration Error)"
        };
        writeln!(
            out,
            "  {:<6} {:<28} {:<20} {}",
            line.id,
            esc(&line.product.sku),
            esc(&line.product.product_type),
            claim.module.as_deref().unwrap_or(nobody)
        )?;
    }
    Ok(out)
}

/// Prints the outcome (as JSON: the order and the report) and gives the
/// exit code: success for a `Complete` order.
pub fn finish(order: &Order, report: &DispatchReport, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let document = serde_json::json!({ "order": order, "report": report });
        emit(&format!("{}\n", serde_json::to_string_pretty(&document)?))?;
    } else {
        emit(&outcome(order, report)?)?;
    }
    Ok(if order.status == OrderStatus::Complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ORDER_FAILED)
    })
}
