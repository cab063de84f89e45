//! The staff "Retry fulfillment" action.

use super::{OrderError, OrderService};
use crate::dispatch::{self, DispatchReport};
use crate::model::OrderStatus;
use crate::storage::{self, JobState, JobUpdate, StoredOrder};

impl OrderService {
    /// Fulfills again the lines of order `number` that are not `Complete`.
    /// Refuses an order that is not fulfillable (406 in the API).
    ///
    /// An order with a fulfillment job (async mode) is retried under the
    /// job's lease, so that no worker of any host works on it meanwhile (a
    /// worker holding it makes this a conflict); the retry does not count
    /// against the job's retries, and a retry that completes the order ends
    /// its job.
    pub async fn retry_fulfillment(&self, number: &str) -> Result<(StoredOrder, DispatchReport), OrderError> {
        let _guard = self.locks.lock(number).await;
        let mut stored = self.order(number).await?;
        if !stored.order.status.is_fulfillable() {
            return Err(OrderError::NotFulfillable {
                number: number.to_string(),
                status: stored.order.status,
            });
        }
        let job = {
            let mut connection = self.db.pool().acquire().await?;
            let job = storage::job_for_order(&mut connection, number).await?;
            if job.is_some() {
                let now = storage::now_ms();
                let until = now + self.fulfillment.lease().as_millis() as i64;
                if !storage::lease_order_job(&mut connection, stored.id, &self.host_id, now, until).await? {
                    return Err(OrderError::Conflict(format!(
                        "order {number} is being fulfilled by a worker right now; retry when it is done"
                    )));
                }
            }
            job
        };
        // The order may have changed while the worker that held it finished.
        if job.is_some() {
            stored = self.order(number).await?;
        }
        let dispatched = dispatch::fulfill_order(&self.runtime, &mut stored.order).await;
        let report = match dispatched {
            Ok(report) => report,
            Err(error) => {
                if let Some(job) = &job {
                    self.release_job(job.id).await?;
                }
                return Err(error.into());
            }
        };
        let mut transaction = self.db.pool().begin().await?;
        storage::save_fulfillment(&mut transaction, &mut stored, &report).await?;
        if let Some(job) = job {
            let update = JobUpdate {
                state: if stored.order.status == OrderStatus::Complete { JobState::Done } else { job.state },
                attempts: job.attempts,
                run_at_ms: job.run_at_ms,
                last_error: job.last_error,
            };
            storage::finish_job(&mut transaction, job.id, &self.host_id, &update, storage::now_ms()).await?;
        }
        transaction.commit().await?;
        Ok((stored, report))
    }
}
