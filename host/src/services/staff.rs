//! What support staff do to an order, from the API or the dashboard alike:
//! retry its fulfillment, approve or deny a refund. Each runs its work as
//! the order's (or refund's) job, leased and started in a task no request
//! can drop, and waits for it up to `[fulfillment] sync_wait_ms` and the
//! caller's deadline: the caller answers with what was stored by then.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Executor, FulfillmentService, OrderError, OrderQueries, Processed, RefundAction, RefundService};
use crate::storage::OrderScope;

/// Where a staff action stands when its caller stops waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// Its work ended and stored its outcome (or there was none left).
    Ended,
    /// Its work goes on (here or on another host); it stores its outcome.
    StillRunning,
}

/// Staff actions on orders and refunds.
#[derive(Clone)]
pub struct StaffActions {
    executor: Executor,
    fulfillment: FulfillmentService,
    refunds: RefundService,
    orders: OrderQueries,
    sync_wait: Duration,
}

impl StaffActions {
    pub fn new(
        executor: Executor,
        fulfillment: FulfillmentService,
        refunds: RefundService,
        orders: OrderQueries,
        sync_wait: Duration,
    ) -> StaffActions {
        StaffActions {
            executor,
            fulfillment,
            refunds,
            orders,
            sync_wait,
        }
    }

    /// Retries the fulfillment of order `number` (not found unless `scope`
    /// covers it): the lines that are not Complete, under the order's job
    /// lease. Not fulfillable unless the order is Open or Fulfillment
    /// Error; a conflict while a worker holds its job.
    pub async fn retry_fulfillment(&self, scope: &OrderScope, number: &str, deadline: Instant) -> Result<Waited, OrderError> {
        self.orders.snapshot(scope, number).await?;
        let (fulfillment, executor, number) = (self.fulfillment.clone(), self.executor.clone(), number.to_string());
        let leasing = self.executor.track(async move {
            let (job, by) = fulfillment.lease_for_retry(&number).await?;
            Ok(executor.start_as(job, by))
        });
        Ok(match by_deadline(leasing, deadline).await? {
            Some(mut running) => self.waited(running.stored_within(self.wait_until(deadline)).await),
            None => Waited::StillRunning,
        })
    }

    /// Takes staff's decision on refund `id` (see [`RefundService::process`]).
    pub async fn process_refund(
        &self,
        scope: &OrderScope,
        id: i64,
        action: RefundAction,
        deadline: Instant,
    ) -> Result<Waited, OrderError> {
        let (refunds, executor, scope) = (self.refunds.clone(), self.executor.clone(), scope.clone());
        let processing = self.executor.track(async move {
            Ok(match refunds.process(&scope, id, action).await? {
                Processed::Settled(_) => (Waited::Ended, None),
                Processed::InProgress(_) => (Waited::StillRunning, None),
                Processed::Run(job) => (Waited::Ended, Some(executor.start(job))),
            })
        });
        Ok(match by_deadline(processing, deadline).await? {
            Some((waited, None)) => waited,
            Some((_, Some(mut running))) => self.waited(running.stored_within(self.wait_until(deadline)).await),
            None => Waited::StillRunning,
        })
    }

    fn wait_until(&self, deadline: Instant) -> Duration {
        self.sync_wait.min(deadline.saturating_duration_since(Instant::now()))
    }

    fn waited(&self, stored: bool) -> Waited {
        if stored { Waited::Ended } else { Waited::StillRunning }
    }
}

/// The result of `task` (started with [`Executor::track`], so it goes on
/// whatever happens to the caller), or None when `deadline` comes first.
pub async fn by_deadline<T>(task: JoinHandle<Result<T, OrderError>>, deadline: Instant) -> Result<Option<T>, OrderError> {
    match tokio::time::timeout_at(deadline, task).await {
        Ok(Ok(result)) => result.map(Some),
        Ok(Err(failed)) => Err(OrderError::Internal(format!("a request's task failed: {failed}"))),
        Err(_) => Ok(None),
    }
}
