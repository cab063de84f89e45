//! Reading orders: one order or a page of them, each with its payment and
//! its fulfillment job as they stood together (one snapshot), in a fixed
//! number of queries; only those within the caller's [`OrderScope`] (one
//! outside it is not found).

use super::OrderError;
use crate::storage::{
    self, AttemptRecord, Database, JobKind, JobRecord, OrderFilter, OrderScope, PaymentEventRecord, PaymentRecord, StoredOrder,
};

/// An order with its payment and its fulfillment job, read together.
#[derive(Debug, Clone)]
pub struct OrderSnapshot {
    pub stored: StoredOrder,
    pub payment: Option<PaymentRecord>,
    pub job: Option<JobRecord>,
}

/// An order with everything staff look at: its snapshot, the newest
/// entries of its attempt log and its payment's events.
#[derive(Debug, Clone)]
pub struct OrderDetail {
    pub snapshot: OrderSnapshot,
    /// How many attempts the log holds in all ...
    pub attempt_count: u64,
    /// ... and the newest of them, newest first.
    pub attempts: Vec<AttemptRecord>,
    pub payment_events: Vec<PaymentEventRecord>,
}

/// Reads orders and what belongs to them.
#[derive(Clone)]
pub struct OrderQueries {
    db: Database,
}

impl OrderQueries {
    pub fn new(db: Database) -> OrderQueries {
        OrderQueries { db }
    }

    /// The order numbered `number` with its payment and job, if `scope`
    /// covers it.
    pub async fn snapshot(&self, scope: &OrderScope, number: &str) -> Result<OrderSnapshot, OrderError> {
        let mut transaction = self.db.begin_snapshot().await?;
        let stored = storage::load_order(&mut transaction, number)
            .await?
            .filter(|stored| scope.covers(stored))
            .ok_or_else(|| OrderError::NotFound(format!("order {number}")))?;
        let mut snapshots = self.with_payments_and_jobs(&mut transaction, vec![stored]).await?;
        transaction.commit().await?;
        snapshots.pop().ok_or_else(|| OrderError::NotFound(format!("order {number}")))
    }

    /// The snapshot of `stored`, an order as this host has just stored it
    /// (the order placed by a request, after its attempt): its payment and
    /// job are read, the order is not read back. Not found unless `scope`
    /// covers it.
    pub async fn snapshot_of(&self, scope: &OrderScope, stored: StoredOrder) -> Result<OrderSnapshot, OrderError> {
        if !scope.covers(&stored) {
            return Err(OrderError::NotFound(format!("order {}", stored.order.number)));
        }
        let number = stored.order.number.clone();
        // Two reads of rows this request's own writes made: no transaction.
        let mut connection = self.db.pool().acquire().await?;
        let mut snapshots = self.with_payments_and_jobs(&mut connection, vec![stored]).await?;
        snapshots.pop().ok_or_else(|| OrderError::NotFound(format!("order {number}")))
    }

    /// Order `number` (if `scope` covers it) with its newest
    /// `attempt_limit` attempts and its payment's events, read together.
    pub async fn detail(&self, scope: &OrderScope, number: &str, attempt_limit: u32) -> Result<OrderDetail, OrderError> {
        let mut transaction = self.db.begin_snapshot().await?;
        let stored = storage::load_order(&mut transaction, number)
            .await?
            .filter(|stored| scope.covers(stored))
            .ok_or_else(|| OrderError::NotFound(format!("order {number}")))?;
        let (attempt_count, attempts) = storage::attempts_of_order(&mut transaction, stored.id, attempt_limit).await?;
        let payment_events = match stored.payment_source_id {
            Some(id) => storage::payment_events(&mut transaction, id).await?,
            None => Vec::new(),
        };
        let mut snapshots = self.with_payments_and_jobs(&mut transaction, vec![stored]).await?;
        transaction.commit().await?;
        let snapshot = snapshots.pop().ok_or_else(|| OrderError::NotFound(format!("order {number}")))?;
        Ok(OrderDetail {
            snapshot,
            attempt_count,
            attempts,
            payment_events,
        })
    }

    /// Page `page` (from 1) of `page_size` orders within `scope` matching
    /// `filter`, newest first, and how many match in all: six queries,
    /// whatever the size.
    pub async fn page(
        &self,
        scope: &OrderScope,
        filter: &OrderFilter,
        page: u64,
        page_size: u64,
    ) -> Result<(u64, Vec<OrderSnapshot>), OrderError> {
        let mut transaction = self.db.begin_snapshot().await?;
        let found = storage::list_orders(&mut transaction, scope, filter, page, page_size).await?;
        let snapshots = self.with_payments_and_jobs(&mut transaction, found.orders).await?;
        transaction.commit().await?;
        Ok((found.count, snapshots))
    }

    async fn with_payments_and_jobs(
        &self,
        connection: &mut sqlx::AnyConnection,
        orders: Vec<StoredOrder>,
    ) -> Result<Vec<OrderSnapshot>, OrderError> {
        let payment_ids: Vec<i64> = orders.iter().filter_map(|stored| stored.payment_source_id).collect();
        let mut payments = storage::payments_by_ids(connection, &payment_ids).await?;
        let order_ids: Vec<i64> = orders.iter().map(|stored| stored.id).collect();
        let mut jobs = storage::jobs_of(connection, self.db.backend(), JobKind::Fulfill, &order_ids).await?;
        Ok(orders
            .into_iter()
            .map(|stored| OrderSnapshot {
                payment: stored.payment_source_id.and_then(|id| payments.remove(&id)),
                job: jobs.remove(&stored.id),
                stored,
            })
            .collect())
    }
}

/// Not found unless `scope` covers order `number` (which must exist).
pub(super) async fn require_in_scope(
    connection: &mut sqlx::AnyConnection,
    scope: &OrderScope,
    number: &str,
) -> Result<(), OrderError> {
    if *scope == OrderScope::all() {
        return Ok(());
    }
    match storage::load_order(connection, number).await? {
        Some(stored) if scope.covers(&stored) => Ok(()),
        _ => Err(OrderError::NotFound(format!("order {number}"))),
    }
}
