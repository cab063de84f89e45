//! Fulfillment: one attempt of an order's `fulfill` job, and the staff
//! "Retry fulfillment" action, which runs the same attempt under the same
//! job's lease.

use super::OrderError;
use super::retry_policy::{Next, RetryPolicy};
use crate::dispatch::{self, DispatchReport};
use crate::model::{NoteKind, Order, OrderNote, OrderStatus};
use crate::metrics::Metrics;
use crate::queue::JobQueue;
use crate::runtime::Runtime;
use crate::settings::{FulfillmentMode, FulfillmentSettings};
use crate::storage::{self, AttemptLog, ClaimedJob, Database, JobKind, JobRecord, JobState, JobUpdate, StoredOrder};
use std::sync::Arc;

/// Who asked for an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptBy {
    /// A worker (or the request that placed the order): the attempt counts
    /// against the retries, and the retry policy decides what is next.
    Queue,
    /// Staff: the attempt does not count; the job keeps `prior` unless the
    /// order is now Complete.
    Staff { prior: JobState },
}

/// Runs fulfillment attempts and stores what they did.
#[derive(Clone)]
pub struct FulfillmentService {
    db: Database,
    runtime: Arc<Runtime>,
    queue: JobQueue,
    settings: FulfillmentSettings,
    /// Counts attempts' durations, orders' final statuses and give-ups.
    metrics: Metrics,
}

impl FulfillmentService {
    pub fn new(
        db: Database,
        runtime: Arc<Runtime>,
        queue: JobQueue,
        settings: FulfillmentSettings,
        metrics: Metrics,
    ) -> FulfillmentService {
        FulfillmentService {
            db,
            runtime,
            queue,
            settings,
            metrics,
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Runs one attempt of `job` (whose lease this host holds): fulfills
    /// the order's lines that are not `Complete`, decides what is next, and
    /// stores the order and the job's next state in one transaction, if the
    /// lease is still this host's. A lost lease stores nothing: the host
    /// that took the job over does the work (and the modules' idempotency
    /// keys keep a line from being fulfilled twice at the remote system).
    ///
    /// `placed` is the order as this host has just stored it, with the job
    /// (sync mode): it is used instead of reading the order back. Gives the
    /// order as the attempt stored it.
    pub async fn attempt(&self, job: &ClaimedJob, by: AttemptBy, placed: Option<StoredOrder>) -> Result<StoredOrder, OrderError> {
        let number = job.order_number.clone().unwrap_or_default();
        let mut stored = match placed.filter(|placed| placed.id == job.subject_id && placed.order.number == number) {
            Some(placed) => placed,
            None => {
                let mut connection = self.db.pool().acquire().await?;
                storage::load_order(&mut connection, &number)
                    .await?
                    .ok_or_else(|| OrderError::NotFound(format!("order {number}")))?
            }
        };
        let policy = RetryPolicy::from_settings(&self.settings);
        // Attempts whose host died before storing them count too: a job
        // that keeps killing its hosts is given up, not retried forever.
        let exhausted = by == AttemptBy::Queue && job.attempts > policy.max_retries.saturating_add(1);
        let prior_status = stored.order.status;
        let report = if stored.order.status.is_fulfillable() && !exhausted {
            let started = std::time::Instant::now();
            let report = dispatch::fulfill_order(&self.runtime, &mut stored.order).await?;
            self.metrics.fulfillment_attempt(started.elapsed());
            Some(report)
        } else {
            None
        };
        let made = if exhausted { job.attempts - 1 } else { job.attempts };
        let (state, retry_in_ms) = match by {
            AttemptBy::Staff { .. } if stored.order.status == OrderStatus::Complete => (JobState::Done, 0),
            // A job waiting for its next retry keeps waiting its backoff.
            AttemptBy::Staff { prior: JobState::Queued } => {
                (JobState::Queued, i64::try_from(policy.backoff(job.attempts.max(1)).as_millis()).unwrap_or(i64::MAX))
            }
            AttemptBy::Staff { prior } => (prior, 0),
            AttemptBy::Queue => {
                let next = if exhausted { Next::GiveUp } else { policy.next(&stored.order, job.attempts) };
                self.next_state(next, made, &mut stored.order)
            }
        };
        let update = JobUpdate {
            state,
            attempts: made,
            retry_in_ms,
            last_error: failed_lines_summary(&stored.order),
        };
        let mut transaction = self.db.begin_write().await?;
        match &report {
            Some(report) => storage::save_fulfillment(&mut transaction, &mut stored, &attempt_log(report)).await?,
            None => storage::save_notes(&mut transaction, &mut stored).await?,
        }
        if !self.queue.finish(&mut transaction, job, &update).await? {
            transaction.rollback().await?;
            return Err(OrderError::Conflict(format!(
                "the lease of order {number}'s fulfillment job was lost to another host; this attempt is not stored"
            )));
        }
        transaction.commit().await?;
        let status = stored.order.status;
        if status != prior_status && matches!(status, OrderStatus::Complete | OrderStatus::FulfillmentError) {
            self.metrics.order_finished(status);
        }
        if state == JobState::GaveUp && by == AttemptBy::Queue {
            self.metrics.job_given_up();
        }
        tracing::info!(order = %number, attempt = job.attempts, state = state.as_str(), retry_in_ms, "fulfillment attempt done");
        Ok(stored)
    }

    /// The job's state after a counted attempt. In sync mode a failed order
    /// waits for staff (the reference's behavior); in async mode the retry
    /// policy schedules the next attempt.
    fn next_state(&self, next: Next, made: u32, order: &mut Order) -> (JobState, i64) {
        let millis = |delay: std::time::Duration| i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        match (self.settings.mode, next) {
            (_, Next::Done) => (JobState::Done, 0),
            (_, Next::Failed) | (FulfillmentMode::Sync, _) => (JobState::Failed, 0),
            (FulfillmentMode::Async, Next::RetryIn(delay)) => (JobState::Queued, millis(delay)),
            (FulfillmentMode::Async, Next::GiveUp) => {
                order.notes.push(OrderNote {
                    kind: NoteKind::Error,
                    message: format!("Giving up after {made} attempts"),
                    line_id: None,
                    module: None,
                });
                (JobState::GaveUp, 0)
            }
        }
    }

    /// Takes the lease of order `number`'s job for a staff retry: refuses
    /// an order that is not fulfillable (406 in the API) and one whose job
    /// a worker of any host holds (409).
    pub async fn lease_for_retry(&self, number: &str) -> Result<(ClaimedJob, AttemptBy), OrderError> {
        let mut transaction = self.db.begin_write().await?;
        let job = self.fulfillable_order_job(&mut transaction, number).await?;
        let Some(claimed) = self.queue.lease(&mut transaction, job.id).await? else {
            return Err(OrderError::Conflict(format!(
                "order {number} is being fulfilled right now; retry when it is done"
            )));
        };
        transaction.commit().await?;
        Ok((claimed, AttemptBy::Staff { prior: job.state }))
    }

    /// The fulfillment job of order `number`, if the order is fulfillable.
    async fn fulfillable_order_job(&self, connection: &mut sqlx::AnyConnection, number: &str) -> Result<JobRecord, OrderError> {
        let stored = storage::load_order(connection, number)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("order {number}")))?;
        require_fulfillable(&stored)?;
        storage::job_of(connection, self.db.backend(), JobKind::Fulfill, stored.id)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("the fulfillment job of order {number}")))
    }
}

fn require_fulfillable(stored: &StoredOrder) -> Result<(), OrderError> {
    if stored.order.status.is_fulfillable() {
        Ok(())
    } else {
        Err(OrderError::NotFulfillable {
            number: stored.order.number.clone(),
            status: stored.order.status,
        })
    }
}

/// The attempt-log rows of a dispatch.
fn attempt_log(report: &DispatchReport) -> Vec<AttemptLog> {
    report
        .attempts
        .iter()
        .map(|attempt| AttemptLog {
            line_id: attempt.line_id,
            module: attempt.module.clone(),
            outcome: attempt.status.as_str(),
            message: attempt.message.clone(),
            elapsed_ms: i64::try_from(attempt.elapsed.as_millis()).unwrap_or(i64::MAX),
        })
        .collect()
}

/// "line 2: Fulfillment Server Error; line 3: …", or None when nothing failed.
fn failed_lines_summary(order: &Order) -> Option<String> {
    let failed: Vec<String> = order
        .lines
        .iter()
        .filter(|line| line.status.is_error())
        .map(|line| format!("line {}: {}", line.id, line.status))
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}
