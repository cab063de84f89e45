//! The staff "Retry fulfillment" action.

use super::{OrderError, OrderService};
use crate::dispatch::DispatchReport;
use crate::storage::StoredOrder;

impl OrderService {
    /// Fulfills again the lines of order `number` that are not `Complete`.
    /// Refuses an order that is not fulfillable (406 in the API).
    pub async fn retry_fulfillment(&self, number: &str) -> Result<(StoredOrder, DispatchReport), OrderError> {
        let _guard = self.locks.lock(number).await;
        let mut stored = self.order(number).await?;
        if !stored.order.status.is_fulfillable() {
            return Err(OrderError::NotFulfillable {
                number: number.to_string(),
                status: stored.order.status,
            });
        }
        let report = self.fulfill_stored(&mut stored).await?;
        Ok((stored, report))
    }
}
