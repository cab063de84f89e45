//! The claim phase: each module, in order, claims lines from the pool; a
//! module is offered only the lines in its lane (the product types it
//! declared in `describe`, or every line for the wildcard `"*"`).

use std::collections::HashSet;
use std::time::Instant;

use tracing::Instrument;

use crate::model::{Line, LineId, Order};
use super::ModuleCall;
use crate::runtime::{LoadedModule, ModuleFault, ModuleSession, Runtime};

/// Which module claimed which line (a dry run's answer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Claim {
    pub line_id: LineId,
    /// None when no module claimed the line.
    pub module: Option<String>,
    /// The modules whose lane the line is in (they declare its product type
    /// or `"*"`), in dispatch order: the only ones it was offered to.
    pub offered_to: Vec<String>,
}

/// One module's claim on an order: its live session and the lines it took.
pub(super) struct ModuleClaim<'m> {
    pub session: ModuleSession<'m>,
    pub lines: Vec<LineId>,
}

/// The claim phase's outcome.
pub(super) struct Claims<'m> {
    /// Modules that claimed at least one line, in dispatch order.
    pub claims: Vec<ModuleClaim<'m>>,
    /// Lines claimed by a module that then faulted, with the fault.
    pub faulted: Vec<(Vec<LineId>, ModuleFault)>,
    /// Faults of modules while deciding (they may have owned unclaimed lines).
    pub deciding_faults: Vec<ModuleFault>,
    /// Lines no module claimed.
    pub unclaimed: Vec<LineId>,
    /// Each module's claim calls (`supports-lines`, or 1.0's
    /// `supports-line`), timed.
    pub calls: Vec<ModuleCall>,
}

/// Offers `pool` (line ids of `order`) to the runtime's modules in order,
/// each line only to the modules whose lane it is in. A module with no line
/// of its lane left is not asked at all.
pub(super) async fn claim_lines<'m>(runtime: &'m Runtime, order: &Order, mut pool: Vec<LineId>) -> Claims<'m> {
    let mut claims = Claims {
        claims: Vec::new(),
        faulted: Vec::new(),
        deciding_faults: Vec::new(),
        unclaimed: Vec::new(),
        calls: Vec::new(),
    };
    for module in runtime.modules() {
        if pool.is_empty() {
            break;
        }
        let asked = pool.iter().filter(|line_id| in_lane(module, order, **line_id)).count();
        if asked == 0 {
            continue;
        }
        let span = tracing::info_span!("claim", module = module.name(), order = %order.number);
        let started = Instant::now();
        let result = claim_for_module(module, order, &mut pool).instrument(span.clone()).await;
        let mut call = ModuleCall {
            module: module.name().to_string(),
            call: module.contract_version().claim_function(),
            lines: asked,
            elapsed: started.elapsed(),
            fault: None,
        };
        match result {
            Ok(None) => {}
            Ok(Some(claim)) => claims.claims.push(claim),
            Err((lines, fault)) => {
                tracing::warn!(parent: &span, %fault, "module faulted while claiming lines");
                call.fault = Some(fault.reason.clone());
                if !lines.is_empty() {
                    claims.faulted.push((lines, fault.clone()));
                }
                claims.deciding_faults.push(fault);
            }
        }
        tracing::debug!(parent: &span, elapsed_us = call.elapsed.as_micros() as u64, "claim done");
        claims.calls.push(call);
    }
    claims.unclaimed = pool;
    claims
}

/// Whether line `line_id` of `order` is in `module`'s lane.
fn in_lane(module: &LoadedModule, order: &Order, line_id: LineId) -> bool {
    order
        .line(line_id)
        .is_some_and(|line| module.info().serves(&line.product.product_type))
}

/// Asks one module about every line of its lane in `pool`, removing what it
/// claims.
/// On a fault, the lines it had claimed are returned with the fault (they
/// are its lines; it can no longer fulfill them).
async fn claim_for_module<'m>(
    module: &'m LoadedModule,
    order: &Order,
    pool: &mut Vec<LineId>,
) -> Result<Option<ModuleClaim<'m>>, (Vec<LineId>, ModuleFault)> {
    let mut session = module.session(&order.number).await.map_err(|fault| (Vec::new(), fault))?;
    let offered: Vec<&Line> = pool
        .iter()
        .filter_map(|line_id| order.line(*line_id))
        .filter(|line| module.info().serves(&line.product.product_type))
        .collect();
    let (answers, fault) = match session.supports_lines(order, &offered).await {
        Ok(answers) => (answers, None),
        Err((answers, fault)) => (answers, Some(fault)),
    };
    let claimed: Vec<LineId> = offered
        .iter()
        .zip(answers)
        .filter(|(_, claims)| *claims)
        .map(|(line, _)| line.id)
        .collect();
    if !claimed.is_empty() {
        let claimed: HashSet<LineId> = claimed.iter().copied().collect();
        pool.retain(|line_id| !claimed.contains(line_id));
    }
    if let Some(fault) = fault {
        return Err((claimed, fault));
    }
    if claimed.is_empty() {
        return Ok(None);
    }
    Ok(Some(ModuleClaim {
        session,
        lines: claimed,
    }))
}

/// A dry run: which module would claim each line of `order` that is not
/// `Complete`. Nothing is fulfilled and the order is not changed.
pub async fn plan(runtime: &Runtime, order: &Order) -> Vec<Claim> {
    let pool = order
        .lines
        .iter()
        .filter(|line| line.status != crate::model::LineStatus::Complete)
        .map(|line| line.id)
        .collect();
    let claims = claim_lines(runtime, order, pool).await;
    let offered_to = |line_id: &LineId| -> Vec<String> {
        runtime
            .modules()
            .iter()
            .filter(|module| in_lane(module, order, *line_id))
            .map(|module| module.name().to_string())
            .collect()
    };
    let mut plan: Vec<Claim> = claims
        .claims
        .iter()
        .flat_map(|claim| {
            let module = claim.session.module().name().to_string();
            claim.lines.iter().map(move |line_id| Claim {
                line_id: *line_id,
                module: Some(module.clone()),
                offered_to: offered_to(line_id),
            })
        })
        .chain(claims.faulted.iter().flat_map(|(lines, fault)| {
            lines.iter().map(|line_id| Claim {
                line_id: *line_id,
                module: Some(fault.module.clone()),
                offered_to: offered_to(line_id),
            })
        }))
        .chain(claims.unclaimed.iter().map(|line_id| Claim {
            line_id: *line_id,
            module: None,
            offered_to: offered_to(line_id),
        }))
        .collect();
    plan.sort_by_cached_key(|claim| order.position(claim.line_id));
    plan
}
