//! The order side of asynchronous fulfillment: claiming due jobs, running
//! one attempt of a job, and what the attempt decides (done, retry later,
//! failed, give up). The loop that calls this is `crate::jobs`.

use std::time::Duration;

use super::{OrderError, OrderService};
use crate::dispatch::{self, DispatchReport};
use crate::jobs::{Next, RetryPolicy};
use crate::model::{NoteKind, OrderNote, OrderStatus};
use crate::storage::{self, ClaimedJob, JobState, JobUpdate};

/// What one attempt of a job did.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub order_number: String,
    pub order_status: OrderStatus,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    pub state: JobState,
    /// When the next attempt is due, for `Queued`.
    pub retry_in: Option<Duration>,
    pub report: Option<DispatchReport>,
}

impl OrderService {
    /// The fulfillment job of order `number` (async mode), if it has one.
    pub async fn fulfillment_job(&self, number: &str) -> Result<Option<storage::JobRecord>, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        Ok(storage::job_for_order(&mut connection, number).await?)
    }

    /// How many jobs are in each state.
    pub async fn job_counts(&self) -> Result<Vec<(JobState, u64)>, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        Ok(storage::count_jobs(&mut connection).await?)
    }

    /// Takes the lease of up to `limit` due jobs for this host.
    pub async fn claim_jobs(&self, limit: u32) -> Result<Vec<ClaimedJob>, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        let now = storage::now_ms();
        let until = now + self.fulfillment.lease().as_millis() as i64;
        Ok(storage::claim_due_jobs(&mut connection, self.db.backend(), &self.host_id, now, until, limit).await?)
    }

    /// Extends this host's lease of job `id`; false when it lost it.
    pub async fn renew_job_lease(&self, id: i64) -> Result<bool, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        let until = storage::now_ms() + self.fulfillment.lease().as_millis() as i64;
        Ok(storage::renew_lease(&mut connection, id, &self.host_id, until).await?)
    }

    /// Gives job `id` back without running it (it is due again at once).
    pub async fn release_job(&self, id: i64) -> Result<(), OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        Ok(storage::release_lease(&mut connection, id, &self.host_id).await?)
    }

    /// Gives back every job this host holds; returns how many.
    pub async fn release_all_jobs(&self) -> Result<u64, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        Ok(storage::release_leases_of(&mut connection, &self.host_id).await?)
    }

    /// Runs one attempt of `job` (whose lease this host holds): fulfills the
    /// order's lines that are not `Complete`, decides by the retry policy,
    /// and stores the order and the job's next state in one transaction, if
    /// the lease is still this host's. A lost lease stores nothing: the host
    /// that took the job over does the work (and the modules' idempotency
    /// keys keep a line from being fulfilled twice at the remote system).
    pub async fn run_job(&self, job: &ClaimedJob) -> Result<JobOutcome, OrderError> {
        let _guard = self.locks.lock(&job.order_number).await;
        let mut stored = self.order(&job.order_number).await?;
        let attempt = job.attempts.saturating_add(1);
        let report = if stored.order.status.is_fulfillable() {
            Some(dispatch::fulfill_order(&self.runtime, &mut stored.order).await?)
        } else {
            None
        };
        let policy = RetryPolicy::from_settings(&self.fulfillment);
        let next = policy.next(&stored.order, attempt);
        if next == Next::GiveUp {
            stored.order.notes.push(OrderNote {
                kind: NoteKind::Error,
                message: format!("Giving up after {attempt} attempts"),
                line_id: None,
                module: None,
            });
        }
        let (state, retry_in) = match next {
            Next::Done => (JobState::Done, None),
            Next::RetryIn(delay) => (JobState::Queued, Some(delay)),
            Next::Failed => (JobState::Failed, None),
            Next::GiveUp => (JobState::GaveUp, None),
        };
        let mut transaction = self.db.pool().begin().await?;
        if let Some(report) = &report {
            storage::save_fulfillment(&mut transaction, &mut stored, report).await?;
        } else {
            storage::save_notes(&mut transaction, &mut stored).await?;
        }
        // The next attempt is due `retry_in` after this one is logged.
        let now = storage::now_ms();
        let update = JobUpdate {
            state,
            attempts: attempt,
            run_at_ms: now + retry_in.map_or(0, |delay| delay.as_millis() as i64),
            last_error: failed_lines_summary(&stored.order),
        };
        if !storage::finish_job(&mut transaction, job.id, &self.host_id, &update, now).await? {
            transaction.rollback().await?;
            return Err(OrderError::Conflict(format!(
                "the lease of order {}'s fulfillment job was lost to another host; this attempt is not stored",
                job.order_number
            )));
        }
        transaction.commit().await?;
        let outcome = JobOutcome {
            order_number: job.order_number.clone(),
            order_status: stored.order.status,
            attempt,
            state,
            retry_in,
            report,
        };
        tracing::info!(order = %outcome.order_number, attempt, state = state.as_str(),
            retry_in_ms = retry_in.map(|delay| delay.as_millis() as u64), "fulfillment job attempt done");
        Ok(outcome)
    }
}

/// "line 2: Fulfillment Server Error; line 3: …", or None when nothing failed.
fn failed_lines_summary(order: &crate::model::Order) -> Option<String> {
    let failed: Vec<String> = order
        .lines
        .iter()
        .filter(|line| line.status.is_error())
        .map(|line| format!("line {}: {}", line.id, line.status))
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}
