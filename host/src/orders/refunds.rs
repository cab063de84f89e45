//! Refunds: created for lines of a Complete order; approving one credits the
//! payment, then revokes each line through the module that fulfilled it.
//! Statuses follow the reference's refund pipelines.

use super::{OrderError, OrderService};
use crate::dispatch;
use crate::model::{LineId, OrderStatus};
use crate::runtime::RevokeResult;
use crate::storage::{self, RefundLineRecord, RefundRecord};

/// What staff decide about a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RefundAction {
    Approve,
    Deny,
}

impl OrderService {
    /// Creates an `Open` refund for `line_ids` of the Complete order `number`.
    pub async fn create_refund(&self, number: &str, line_ids: &[LineId]) -> Result<RefundRecord, OrderError> {
        let _guard = self.locks.lock(number).await;
        let stored = self.order(number).await?;
        if stored.order.status != OrderStatus::Complete {
            return Err(OrderError::Conflict(format!(
                "order {number} is `{}`: only Complete orders can be refunded",
                stored.order.status
            )));
        }
        if line_ids.is_empty() {
            return Err(OrderError::invalid("line_ids", "name at least one line"));
        }
        let mut transaction = self.db.pool().begin().await?;
        let mut lines = Vec::with_capacity(line_ids.len());
        for (index, line_id) in line_ids.iter().enumerate() {
            let line = stored
                .order
                .line(*line_id)
                .ok_or_else(|| OrderError::invalid(format!("line_ids[{index}]"), format!("order {number} has no line {line_id}")))?;
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM refund_lines JOIN refunds ON refunds.id = refund_lines.refund_id
                 WHERE refunds.order_id = $1 AND refund_lines.line_id = $2 AND refund_lines.status <> 'Denied'",
            )
            .bind(stored.id)
            .bind(*line_id as i64)
            .fetch_one(&mut *transaction)
            .await?;
            if taken > 0 || lines.iter().any(|earlier: &RefundLineRecord| earlier.line_id == *line_id) {
                return Err(OrderError::Conflict(format!("line {line_id} of order {number} is already being refunded")));
            }
            let amount = line
                .unit_price
                .checked_mul(line.quantity)
                .map_err(|error| OrderError::invalid(format!("line_ids[{index}]"), error.to_string()))?;
            lines.push(RefundLineRecord {
                line_id: *line_id,
                status: "Open".to_string(),
                amount_minor: amount.minor_units,
                reason: None,
            });
        }
        let mut refund = RefundRecord {
            id: 0,
            order_id: stored.id,
            status: "Open".to_string(),
            total_minor: lines.iter().map(|line| line.amount_minor).sum(),
            currency: stored.order.currency.code().to_string(),
            lines,
        };
        refund.id = storage::insert_refund(&mut transaction, &refund).await?;
        transaction.commit().await?;
        Ok(refund)
    }

    /// Approves (credit, then revoke) or denies refund `id`. Approving a refund
    /// in `Payment Refund Error` tries the credit again; one in `Revocation
    /// Error` tries the failed revocations again.
    pub async fn process_refund(&self, id: i64, action: RefundAction) -> Result<(String, RefundRecord), OrderError> {
        let (number, _) = self.refund_order(id).await?;
        let _guard = self.locks.lock(&number).await;
        let (number, mut refund) = self.refund_order(id).await?;
        let stored = self.order(&number).await?;
        match (action, refund.status.as_str()) {
            (RefundAction::Deny, "Open") => {
                refund.status = "Denied".into();
                for line in &mut refund.lines {
                    line.status = "Denied".into();
                }
            }
            (RefundAction::Approve, "Open" | "Payment Refund Error") => {
                if refund.total_minor > 0 && !self.credit(&stored, &mut refund).await? {
                    self.save_refund(&refund).await?;
                    return Ok((number, refund));
                }
                refund.status = "Payment Refunded".into();
                self.revoke(&stored, &mut refund).await;
            }
            (RefundAction::Approve, "Revocation Error") => self.revoke(&stored, &mut refund).await,
            (_, status) => {
                return Err(OrderError::Conflict(format!("refund {id} is `{status}`: it cannot be {action:?}d now").to_lowercase()))
            }
        }
        self.save_refund(&refund).await?;
        Ok((number, refund))
    }

    async fn refund_order(&self, id: i64) -> Result<(String, RefundRecord), OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        let refund = storage::load_refund(&mut connection, id)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("refund {id}")))?;
        let number: String = sqlx::query_scalar("SELECT number FROM orders WHERE id = $1")
            .bind(refund.order_id)
            .fetch_one(&mut *connection)
            .await?;
        Ok((number, refund))
    }

    /// Credits the refund's total; false (and `Payment Refund Error`) when the
    /// processor refuses.
    async fn credit(&self, stored: &storage::StoredOrder, refund: &mut RefundRecord) -> Result<bool, OrderError> {
        let Some(source_id) = stored.payment_source_id else {
            return Ok(true);
        };
        let mut connection = self.db.pool().acquire().await?;
        let payment = storage::payment_for_order(&mut connection, source_id).await?;
        let amount = crate::model::Money {
            minor_units: refund.total_minor,
            currency: stored.order.currency,
        };
        match self.payments.credit(&payment.processor, &payment.reference, amount) {
            Ok(receipt) => {
                storage::insert_payment_event(&mut connection, source_id, "Refunded", refund.total_minor, &receipt.reference)
                    .await?;
                Ok(true)
            }
            Err(error) => {
                tracing::warn!(refund = refund.id, %error, "credit failed");
                refund.status = "Payment Refund Error".into();
                Ok(false)
            }
        }
    }

    /// Revokes each line that is not revoked yet; the refund becomes
    /// `Complete` when all are, else `Revocation Error`.
    async fn revoke(&self, stored: &storage::StoredOrder, refund: &mut RefundRecord) {
        let skip_revocation = refund.total_minor == 0;
        for line in &mut refund.lines {
            if line.status == "Complete" {
                continue;
            }
            if skip_revocation {
                line.status = "Complete".into();
                continue;
            }
            match dispatch::revoke_line(&self.runtime, &stored.order, line.line_id).await {
                Ok(RevokeResult::Revoked { note }) => {
                    line.status = "Complete".into();
                    line.reason = note;
                }
                Ok(RevokeResult::NotRevoked { reason }) => {
                    line.status = "Revocation Error".into();
                    line.reason = Some(reason);
                }
                Err(error) => {
                    line.status = "Revocation Error".into();
                    line.reason = Some(error.to_string());
                }
            }
        }
        refund.status = if refund.lines.iter().all(|line| line.status == "Complete") {
            "Complete".into()
        } else {
            "Revocation Error".into()
        };
    }

    async fn save_refund(&self, refund: &RefundRecord) -> Result<(), OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        storage::update_refund(&mut connection, refund).await?;
        Ok(())
    }
}
