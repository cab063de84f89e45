//! Revocation, through the module that fulfilled the line.

use tracing::Instrument;

use crate::model::{LineId, Order};
use crate::runtime::{RevokeResult, Runtime};

use super::DispatchError;

/// Asks the module that fulfilled line `line_id` of `order` to revoke it,
/// for refund `refund_id` (a 1.1 module is told which refund asks; a 1.0
/// module is not). A module fault counts as not revoked, with the fault as
/// the reason.
pub async fn revoke_line(
    runtime: &Runtime,
    order: &Order,
    line_id: LineId,
    refund_id: u64,
) -> Result<RevokeResult, DispatchError> {
    let line = order.line(line_id).ok_or_else(|| DispatchError::UnknownLine {
        number: order.number.clone(),
        line_id,
    })?;
    let module_name = line.fulfilled_by.as_deref().ok_or_else(|| DispatchError::NotFulfilled {
        number: order.number.clone(),
        line_id,
    })?;
    let module = runtime.module(module_name).ok_or_else(|| DispatchError::ModuleNotLoaded {
        number: order.number.clone(),
        line_id,
        module: module_name.to_string(),
    })?;
    let span = tracing::info_span!("revoke", order = %order.number, line = line_id, refund = refund_id, module = module_name);
    let call = async {
        let mut session = module.session(&order.number).await?;
        session.revoke_line(order, line, refund_id).await
    };
    let result = call.instrument(span.clone()).await.unwrap_or_else(|fault| RevokeResult::NotRevoked {
        reason: fault.to_string(),
    });
    let result = super::caps::bounded_revoke(module.limits(), result);
    tracing::info!(parent: &span, ?result, "line revocation");
    Ok(result)
}
