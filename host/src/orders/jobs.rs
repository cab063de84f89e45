//! The order side of asynchronous fulfillment: claiming due jobs, running
//! one attempt of a job, and what the attempt decides (done, retry later,
//! failed, give up). The loop that calls this is `crate::jobs`.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::retry_policy::{Next, RetryPolicy};
use super::{OrderError, OrderService};
use crate::dispatch;
use crate::model::{NoteKind, OrderNote};
use crate::storage::{self, ClaimedJob, JobState, JobUpdate};

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

    /// A new lease token of this host: `<host>/<n>`.
    pub(super) fn new_lease(&self) -> String {
        format!("{}/{}", self.host_id, self.leases_taken.fetch_add(1, Ordering::Relaxed))
    }

    /// When a lease taken or renewed now runs out.
    pub(super) fn lease_until(&self) -> i64 {
        storage::now_ms() + self.fulfillment.lease().as_millis() as i64
    }

    /// Takes the lease of the next due job, if there is one, counting an
    /// attempt of it.
    pub async fn claim_job(&self) -> Result<Option<ClaimedJob>, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        let lease = self.new_lease();
        let now = storage::now_ms();
        Ok(storage::claim_due_job(&mut connection, self.db.backend(), &lease, now, self.lease_until()).await?)
    }

    /// Gives back every job this host holds; returns how many.
    pub async fn release_all_jobs(&self) -> Result<u64, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        Ok(storage::release_leases_of(&mut connection, &self.host_id).await?)
    }

    /// Gives back the lease `lease` of job `id` (the work was abandoned).
    pub(super) async fn release_lease(&self, id: i64, lease: &str) {
        let released = async {
            let mut connection = self.db.pool().acquire().await?;
            storage::release_lease(&mut connection, id, lease).await
        };
        if let Err(error) = released.await {
            tracing::warn!(job = id, %error, "cannot release a job's lease; it runs out by itself");
        }
    }

    /// Runs `work` while renewing the lease `lease` of job `id` every third
    /// of `lease_ms`. None when the lease was lost (another host took the
    /// job, or renewals failed until the lease ran out): `work` is then
    /// dropped, abandoned mid-way.
    pub async fn with_lease<T>(&self, id: i64, lease: &str, work: impl Future<Output = T>) -> Option<T> {
        let every = (self.fulfillment.lease() / 3).max(Duration::from_millis(10));
        let keep = async {
            let mut held_until = Instant::now() + self.fulfillment.lease();
            loop {
                tokio::time::sleep(every).await;
                let renewed = async {
                    let mut connection = self.db.pool().acquire().await?;
                    storage::renew_lease(&mut connection, id, lease, self.lease_until()).await
                };
                match renewed.await {
                    Ok(true) => held_until = Instant::now() + self.fulfillment.lease(),
                    Ok(false) => return,
                    Err(error) if Instant::now() + every < held_until => {
                        tracing::warn!(job = id, %error, "cannot renew a job's lease; trying again");
                    }
                    Err(error) => {
                        tracing::warn!(job = id, %error, "cannot renew a job's lease before it runs out");
                        return;
                    }
                }
            }
        };
        tokio::select! {
            done = work => Some(done),
            () = keep => None,
        }
    }

    /// Runs one attempt of `job` (whose lease this host holds): fulfills the
    /// order's lines that are not `Complete`, decides by the retry policy,
    /// and stores the order and the job's next state in one transaction, if
    /// the lease is still this host's. A lost lease stores nothing: the host
    /// that took the job over does the work (and the modules' idempotency
    /// keys keep a line from being fulfilled twice at the remote system).
    pub async fn run_job(&self, job: &ClaimedJob) -> Result<(), OrderError> {
        let _guard = self.locks.lock(&job.order_number).await;
        let mut stored = self.order(&job.order_number).await?;
        let attempt = job.attempts;
        let policy = RetryPolicy::from_settings(&self.fulfillment);
        // Attempts whose host died before storing them count too: a job
        // that keeps killing its hosts is given up, not retried forever.
        let exhausted = attempt > policy.max_retries.saturating_add(1);
        let report = if stored.order.status.is_fulfillable() && !exhausted {
            Some(dispatch::fulfill_order(&self.runtime, &mut stored.order).await?)
        } else {
            None
        };
        let next = if exhausted { Next::GiveUp } else { policy.next(&stored.order, attempt) };
        let made = if exhausted { attempt - 1 } else { attempt };
        if next == Next::GiveUp {
            stored.order.notes.push(OrderNote {
                kind: NoteKind::Error,
                message: format!("Giving up after {made} attempts"),
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
            attempts: made,
            run_at_ms: now + retry_in.map_or(0, |delay| delay.as_millis() as i64),
            last_error: failed_lines_summary(&stored.order),
        };
        if !storage::finish_job(&mut transaction, job.id, &job.lease, &self.host_id, &update, now).await? {
            transaction.rollback().await?;
            return Err(OrderError::Conflict(format!(
                "the lease of order {}'s fulfillment job was lost to another host; this attempt is not stored",
                job.order_number
            )));
        }
        transaction.commit().await?;
        tracing::info!(order = %job.order_number, attempt, state = state.as_str(),
            retry_in_ms = retry_in.map(|delay| delay.as_millis() as u64), "fulfillment job attempt done");
        Ok(())
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
