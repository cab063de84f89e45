//! How `dispatch` and `run-module` show an order's outcome.

use std::process::ExitCode;

use fulfillment_host::dispatch::{Claim, DispatchReport};
use fulfillment_host::model::{NoteKind, Order, OrderStatus};

use super::EXIT_ORDER_FAILED;

/// Prints each line's module, status and attributes, the notes, and the
/// timed module calls.
pub fn outcome(order: &Order, report: &DispatchReport) {
    println!("order {}: {}", order.number, order.status);
    println!("  {:<6} {:<28} {:<20} {:<20} status", "line", "sku", "product type", "module");
    for line in &order.lines {
        println!(
            "  {:<6} {:<28} {:<20} {:<20} {}",
            line.id,
            line.product.sku,
            line.product.product_type,
            line.fulfilled_by.as_deref().unwrap_or("-"),
            line.status
        );
        for (name, value) in &line.attributes {
            println!("  {:<6} {name} = {value}", "");
        }
    }
    if !order.notes.is_empty() {
        println!("notes:");
        for note in &order.notes {
            let kind = match note.kind {
                NoteKind::Info => "Info",
                NoteKind::Error => "Error",
            };
            let line = note.line_id.map(|id| format!(" line {id}")).unwrap_or_default();
            let module = note.module.as_deref().map(|name| format!(" ({name})")).unwrap_or_default();
            println!("  [{kind}]{line}{module}: {}", note.message);
        }
    }
    if !report.calls.is_empty() {
        println!("module calls:");
        for call in &report.calls {
            let fault = call.fault.as_deref().map(|fault| format!("  FAULT: {fault}")).unwrap_or_default();
            println!(
                "  {:<20} {:<16} {:>3} line(s) {:>10.3} ms{fault}",
                call.module,
                call.call,
                call.lines,
                call.elapsed.as_secs_f64() * 1000.0
            );
        }
    }
}

/// Prints which module would claim each line.
pub fn plan(order: &Order, plan: &[Claim]) {
    println!("order {} (dry run: nothing fulfilled)", order.number);
    println!("  {:<6} {:<28} {:<20} would be claimed by", "line", "sku", "product type");
    for claim in plan {
        let Some(line) = order.line(claim.line_id) else { continue };
        println!(
            "  {:<6} {:<28} {:<20} {}",
            line.id,
            line.product.sku,
            line.product.product_type,
            claim.module.as_deref().unwrap_or("(no module: Fulfillment Configuration Error)")
        );
    }
}

/// Prints the outcome (as JSON: the order and the report) and gives the
/// exit code: success for a `Complete` order.
pub fn finish(order: &Order, report: &DispatchReport, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let document = serde_json::json!({ "order": order, "report": report });
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        outcome(order, report);
    }
    Ok(if order.status == OrderStatus::Complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ORDER_FAILED)
    })
}
