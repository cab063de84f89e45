//! Reading orders: one order, a page of them, an order's payment and job.

use super::OrderError;
use crate::storage::{self, Database, JobKind, JobRecord, OrderFilter, OrderPage, PaymentRecord, StoredOrder};

/// Reads orders and what belongs to them.
#[derive(Clone)]
pub struct OrderQueries {
    db: Database,
}

impl OrderQueries {
    pub fn new(db: Database) -> OrderQueries {
        OrderQueries { db }
    }

    /// The order numbered `number`.
    pub async fn order(&self, number: &str) -> Result<StoredOrder, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        storage::load_order(&mut connection, number)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("order {number}")))
    }

    /// A page of orders matching `filter`, newest first.
    pub async fn list_orders(&self, filter: &OrderFilter, page: u64, page_size: u64) -> Result<OrderPage, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        Ok(storage::list_orders(&mut connection, filter, page, page_size).await?)
    }

    /// The payment of a stored order, if it has one.
    pub async fn payment(&self, stored: &StoredOrder) -> Result<Option<PaymentRecord>, OrderError> {
        let Some(id) = stored.payment_source_id else {
            return Ok(None);
        };
        let mut connection = self.db.pool().acquire().await?;
        Ok(Some(storage::payment_for_order(&mut connection, id).await?))
    }

    /// The fulfillment job of a stored order.
    pub async fn fulfillment_job(&self, stored: &StoredOrder) -> Result<Option<JobRecord>, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        Ok(storage::job_of(&mut connection, self.db.backend(), JobKind::Fulfill, stored.id).await?)
    }
}
