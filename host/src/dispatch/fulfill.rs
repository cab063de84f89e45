//! The fulfill phase and the status rules: [`fulfill_order`].

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::DispatchError;
use super::caps;
use super::claim::{ModuleClaim, claim_lines};
use super::report::{Attempt, DispatchReport, ModuleCall};
use crate::model::{LineId, LineStatus, NoteKind, Order, OrderNote, OrderStatus};
use crate::runtime::{Admission, CallPass, FaultKind, LineHealth, LineResult, ModuleFault, Runtime};

/// What one module's `fulfill-product` call produced.
struct ModuleRun {
    module: String,
    lines: Vec<LineId>,
    answers: Result<Vec<(LineId, LineResult)>, ModuleFault>,
    elapsed: Duration,
}

/// Fulfills every line of `order` that is not `Complete` and sets the line
/// and order statuses, the lines' `fulfilled_by` and attributes, and a note
/// for every failed line. Refuses an order that is not fulfillable.
///
/// Modules claim lines one after another (the order decides who wins);
/// their `fulfill-product` calls then run concurrently.
pub async fn fulfill_order(runtime: &Runtime, order: &mut Order) -> Result<DispatchReport, DispatchError> {
    if !order.status.is_fulfillable() {
        return Err(DispatchError::NotFulfillable {
            number: order.number.clone(),
            status: order.status,
        });
    }
    let pool: Vec<LineId> = order
        .lines
        .iter()
        .filter(|line| line.status != LineStatus::Complete)
        .map(|line| line.id)
        .collect();
    let span = tracing::info_span!(
        "dispatch",
        order = %order.number,
        lines = pool.len(),
        status = tracing::field::Empty,
        elapsed_ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let report = dispatch(runtime, order, pool).instrument(span.clone()).await?;
    span.record("status", order.status.as_str());
    span.record("elapsed_ms", started.elapsed().as_millis() as u64);
    tracing::info!(parent: &span, status = %order.status, "order dispatched");
    Ok(report)
}

async fn dispatch(runtime: &Runtime, order: &mut Order, pool: Vec<LineId>) -> Result<DispatchReport, DispatchError> {
    let claims = claim_lines(runtime, order, pool).await;
    let runs = {
        let order: &Order = order;
        futures_util::future::join_all(claims.claims.into_iter().map(|claim| run_claim(order, claim))).await
    };
    let mut report = DispatchReport {
        attempts: Vec::new(),
        calls: claims.calls,
    };
    for run in runs {
        report.calls.push(ModuleCall {
            module: run.module.clone(),
            call: "fulfill-product",
            lines: run.lines.len(),
            elapsed: run.elapsed,
            fault: run.answers.as_ref().err().map(|fault| fault.reason.clone()),
        });
        let elapsed = run.elapsed;
        let module = run.module.clone();
        let answers = caps::bounded(runtime, order, &module, checked_answers(run));
        for (line_id, result) in answers {
            apply(order, line_id, Some(&module), result, elapsed, &mut report)?;
        }
    }
    for (lines, fault) in claims.faulted {
        for line_id in lines {
            let result = LineResult::Failed {
                status: fault_status(&fault),
                message: fault.to_string(),
            };
            apply(order, line_id, Some(&fault.module), result, Duration::ZERO, &mut report)?;
        }
    }
    for line_id in claims.unclaimed {
        let result = unclaimed_result(runtime, order, line_id, &claims.deciding_faults);
        apply(order, line_id, None, result, Duration::ZERO, &mut report)?;
    }
    let all_complete = order.lines.iter().all(|line| line.status == LineStatus::Complete);
    order.status.transition(if all_complete {
        OrderStatus::Complete
    } else {
        OrderStatus::FulfillmentError
    })?;
    report
        .attempts
        .sort_by_cached_key(|attempt| order.position(attempt.line_id));
    Ok(report)
}

/// Calls `fulfill-product` on one module with its claimed lines, unless its
/// circuit breaker is open: then the lines fail at once with a network error.
async fn run_claim(order: &Order, claim: ModuleClaim<'_>) -> ModuleRun {
    let ModuleClaim { mut session, lines } = claim;
    let module = session.module().name().to_string();
    let pass = match session.module().breaker().admit() {
        Admission::Call(pass) => pass,
        Admission::Refused { failures, retry_in } => {
            let message = format!(
                "module {module} was not called: its last {failures} lines failed with network or timeout errors, so its circuit breaker is open (next probe in {} s)",
                retry_in.as_secs()
            );
            tracing::info!(module = %module, order = %order.number, "circuit open: lines failed without calling the module");
            let answers = lines
                .iter()
                .map(|line_id| {
                    let failed = LineResult::Failed {
                        status: LineStatus::NetworkError,
                        message: message.clone(),
                    };
                    (*line_id, failed)
                })
                .collect();
            return ModuleRun {
                module,
                lines,
                answers: Ok(answers),
                elapsed: Duration::ZERO,
            };
        }
    };
    let span = tracing::info_span!(
        "module_call",
        module = %module,
        order = %order.number,
        lines_claimed = lines.len(),
        outcome = tracing::field::Empty,
        elapsed_ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let claimed: Vec<_> = lines.iter().filter_map(|id| order.line(*id)).collect();
    let answers = session.fulfill_product(order, &claimed).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let outcome = match &answers {
        Ok(answers) => {
            let complete = answers
                .iter()
                .filter(|(_, result)| matches!(result, LineResult::Complete { .. }))
                .count();
            format!("{complete} of {} complete", lines.len())
        }
        Err(fault) => format!("fault: {}", fault.reason),
    };
    span.record("outcome", outcome.as_str());
    span.record("elapsed_ms", elapsed.as_millis() as u64);
    tracing::info!(parent: &span, %outcome, "module call done");
    record_health(pass, &lines, &answers);
    ModuleRun {
        module,
        lines,
        answers,
        elapsed,
    }
}

/// Tells the module's breaker how the call went, as soon as it returns (a
/// probe must not wait for the other modules' calls).
fn record_health(pass: CallPass, lines: &[LineId], answers: &Result<Vec<(LineId, LineResult)>, ModuleFault>) {
    match answers {
        Ok(answers) => pass.record(answers.iter().map(|(_, result)| line_health(result))),
        // A module out of CPU or fuel looped on its own: that says nothing
        // about the system behind it.
        Err(fault) if fault.kind == FaultKind::OverBudget => pass.record(lines.iter().map(|_| LineHealth::Neutral)),
        Err(fault) => {
            let failed = LineResult::Failed {
                status: fault_status(fault),
                message: String::new(),
            };
            pass.record(lines.iter().map(|_| line_health(&failed)));
        }
    }
}

/// The status of the lines of a module that faulted.
fn fault_status(fault: &ModuleFault) -> LineStatus {
    match fault.kind {
        FaultKind::TimedOut | FaultKind::OverBudget => LineStatus::TimeoutError,
        FaultKind::Failed => LineStatus::ServerError,
    }
}

/// What a line's result tells the module's circuit breaker.
fn line_health(result: &LineResult) -> LineHealth {
    match result {
        LineResult::Complete { .. } => LineHealth::Healthy,
        LineResult::Failed {
            status: LineStatus::NetworkError | LineStatus::TimeoutError,
            ..
        } => LineHealth::Unreachable,
        LineResult::Failed { .. } => LineHealth::Neutral,
    }
}

/// Exactly one result per claimed line. An answer for a line the module was
/// not given, or two answers for one line, make the whole answer
/// untrustworthy: every line of the module fails. A missing answer fails
/// only its line.
fn checked_answers(run: ModuleRun) -> Vec<(LineId, LineResult)> {
    let server_error = |message: String| LineResult::Failed {
        status: LineStatus::ServerError,
        message,
    };
    let answers = match run.answers {
        Ok(answers) => answers,
        Err(fault) => {
            let failed = LineResult::Failed {
                status: fault_status(&fault),
                message: fault.to_string(),
            };
            return run.lines.iter().map(|id| (*id, failed.clone())).collect();
        }
    };
    let claimed: HashSet<LineId> = run.lines.iter().copied().collect();
    let mut seen = HashSet::new();
    let mut bad_output = None;
    for (line_id, _) in &answers {
        if !claimed.contains(line_id) {
            bad_output = Some(format!("returned an outcome for line {line_id}, which it was not given"));
            break;
        }
        if !seen.insert(*line_id) {
            bad_output = Some(format!("returned two outcomes for line {line_id}"));
            break;
        }
    }
    if let Some(why) = bad_output {
        let message = format!("module {} {why}; none of its outcomes are used", run.module);
        return run.lines.iter().map(|id| (*id, server_error(message.clone()))).collect();
    }
    let mut answers = answers;
    for line_id in &run.lines {
        if !seen.contains(line_id) {
            answers.push((
                *line_id,
                server_error(format!("module {} returned no outcome for line {line_id}", run.module)),
            ));
        }
    }
    answers
}

/// The result for a line no module claimed: a configuration error (saying
/// which modules were considered and what they declare when none declares
/// its product type, and naming the modules that failed to load, which may
/// have been its owners), unless a module whose lane the line is in faulted
/// before it could say whether the line was its own: then a timeout error if
/// every such module ran out of time, else a server error; a retry may fix
/// either.
fn unclaimed_result(runtime: &Runtime, order: &Order, line_id: LineId, deciding_faults: &[ModuleFault]) -> LineResult {
    let line = order.line(line_id);
    let what = match line {
        Some(line) => format!(
            "line {line_id} (product type `{}`, sku {})",
            line.product.product_type, line.product.sku
        ),
        None => format!("line {line_id}"),
    };
    let product_type = line.map(|line| line.product.product_type.as_str());
    let in_lane = |module: &str| match (runtime.module(module), product_type) {
        (Some(module), Some(product_type)) => module.info().serves(product_type),
        _ => true,
    };
    let faults: Vec<&ModuleFault> = deciding_faults.iter().filter(|fault| in_lane(&fault.module)).collect();
    if faults.is_empty() {
        let mut message = format!("No fulfillment module claimed {what}");
        if let Some(product_type) = product_type
            && !runtime.modules().iter().any(|module| module.info().serves(product_type))
        {
            message.push_str(&format!(
                "; no module declares product type `{product_type}`: considered {}",
                considered(runtime)
            ));
        }
        for disabled in runtime.disabled().iter().filter(|module| module.load_failed) {
            message.push_str(&format!("; module {} is disabled because it failed to load", disabled.name));
        }
        return LineResult::Failed {
            status: LineStatus::ConfigurationError,
            message,
        };
    }
    let status = if faults.iter().all(|fault| matches!(fault.kind, FaultKind::TimedOut | FaultKind::OverBudget)) {
        LineStatus::TimeoutError
    } else {
        LineStatus::ServerError
    };
    let faults: Vec<String> = faults.iter().map(ToString::to_string).collect();
    LineResult::Failed {
        status,
        message: format!("No fulfillment module claimed {what}, but {}", faults.join("; ")),
    }
}

/// The running modules and their lanes, for a note: "donation (declares
/// Donation), coupon (declares Coupon)".
fn considered(runtime: &Runtime) -> String {
    if runtime.modules().is_empty() {
        return "no module (none is running)".into();
    }
    runtime
        .modules()
        .iter()
        .map(|module| format!("{} (declares {})", module.name(), module.info().lane()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sets one line's status, owner and attributes, and notes what happened.
fn apply(
    order: &mut Order,
    line_id: LineId,
    module: Option<&str>,
    result: LineResult,
    elapsed: Duration,
    report: &mut DispatchReport,
) -> Result<(), DispatchError> {
    let number = order.number.clone();
    let line = order
        .line_mut(line_id)
        .ok_or(DispatchError::UnknownLine { number, line_id })?;
    line.fulfilled_by = module.map(str::to_string);
    let (status, note) = match result {
        LineResult::Complete { attributes, note } => {
            line.attributes.extend(attributes);
            (LineStatus::Complete, note.map(|message| (NoteKind::Info, message)))
        }
        LineResult::Failed { status, message } => (status, Some((NoteKind::Error, message))),
    };
    line.status.transition(status)?;
    if status.is_error() {
        tracing::warn!(order = %order.number, line = line_id, module, %status, "line failed");
    }
    let message = note.as_ref().map(|(_, message)| message.clone());
    if let Some((kind, message)) = note {
        order.notes.push(OrderNote {
            kind,
            message,
            line_id: Some(line_id),
            module: module.map(str::to_string),
        });
    }
    report.attempts.push(Attempt {
        line_id,
        module: module.map(str::to_string),
        status,
        message,
        elapsed,
    });
    Ok(())
}
