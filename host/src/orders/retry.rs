//! The staff "Retry fulfillment" action.

use super::{OrderError, OrderService};
use crate::dispatch::{self, DispatchReport};
use crate::model::OrderStatus;
use crate::storage::{self, JobRecord, JobState, JobUpdate, StoredOrder};

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
        let Some(job) = self.fulfillment_job(number).await? else {
            let report = self.fulfill_stored(&mut stored).await?;
            return Ok((stored, report));
        };
        let lease = self.new_lease();
        {
            let mut connection = self.db.pool().acquire().await?;
            let now = storage::now_ms();
            if !storage::lease_order_job(&mut connection, stored.id, &lease, now, self.lease_until()).await? {
                return Err(OrderError::Conflict(format!(
                    "order {number} is being fulfilled by a worker right now; retry when it is done"
                )));
            }
        }
        let retried = self.with_lease(job.id, &lease, self.retry_under_lease(number, &job, &lease)).await;
        match retried {
            Some(Ok(done)) => Ok(done),
            Some(Err(error)) => {
                self.release_lease(job.id, &lease).await;
                Err(error)
            }
            None => Err(lost_lease(number)),
        }
    }

    /// The retry of an order whose job's lease `lease` this host holds.
    async fn retry_under_lease(
        &self,
        number: &str,
        job: &JobRecord,
        lease: &str,
    ) -> Result<(StoredOrder, DispatchReport), OrderError> {
        // Read again: a worker may have finished with the order meanwhile.
        let mut stored = self.order(number).await?;
        if !stored.order.status.is_fulfillable() {
            return Err(OrderError::NotFulfillable {
                number: number.to_string(),
                status: stored.order.status,
            });
        }
        let report = dispatch::fulfill_order(&self.runtime, &mut stored.order).await?;
        let mut transaction = self.db.pool().begin().await?;
        storage::save_fulfillment(&mut transaction, &mut stored, &report).await?;
        // A staff retry does not count against the job's retries.
        let update = JobUpdate {
            state: if stored.order.status == OrderStatus::Complete { JobState::Done } else { job.state },
            attempts: job.attempts,
            run_at_ms: job.run_at_ms,
            last_error: job.last_error.clone(),
        };
        if !storage::finish_job(&mut transaction, job.id, lease, &self.host_id, &update, storage::now_ms()).await? {
            transaction.rollback().await?;
            return Err(lost_lease(number));
        }
        transaction.commit().await?;
        Ok((stored, report))
    }
}

fn lost_lease(number: &str) -> OrderError {
    OrderError::Conflict(format!(
        "the retry of order {number} took longer than its lease and a worker took the order over; nothing of the retry is stored"
    ))
}
