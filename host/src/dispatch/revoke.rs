//! Revocation, through the module that fulfilled the line.

use tracing::Instrument;

use crate::model::{LineId, Order};
use crate::runtime::{RevokeResult, Runtime};

use super::DispatchError;

/// Asks the module that fulfilled line `line_id` of `order` to revoke it.
/// A module fault counts as not revoked, with the fault as the reason.
pub async fn revoke_line(runtime: &Runtime, order: &Order, line_id: LineId) -> Result<RevokeResult, DispatchError> {
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
    let span = tracing::info_span!("revoke", order = %order.number, line = line_id, module = module_name);
    let call = async {
        let mut session = module.session(&order.number).await?;
        session.revoke_line(order, line).await
    };
    let result = call.instrument(span.clone()).await.unwrap_or_else(|fault| RevokeResult::NotRevoked {
        reason: fault.to_string(),
    });
    let result = super::caps::bounded_revoke(module.limits(), result);
    tracing::info!(parent: &span, ?result, "line revocation");
    Ok(result)
}
