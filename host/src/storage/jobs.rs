//! `fulfillment_jobs`: the durable queue of asynchronous fulfillment.
//!
//! A job is claimed by taking its lease: `lease_owner` (a token of one
//! claim, `<host>/<n>`) and `lease_until`; the claim counts the attempt.
//! On PostgreSQL the claim skips rows another host is claiming at the same
//! moment (`FOR UPDATE SKIP LOCKED`), so many hosts share one queue without
//! waiting on each other; SQLite runs one write at a
//! time, which makes the same statement safe within one file. Every later
//! write to a job checks that the lease is still the writer's: a worker that
//! lost its lease (it stalled past `lease_until` and another host took the
//! job) cannot overwrite the other's work.

use sqlx::{AnyConnection, Row};

use super::{Backend, StorageError};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to run at `run_at` (or running, while leased).
    Queued,
    /// The order is `Complete`.
    Done,
    /// Lines failed in ways a retry cannot fix (configuration errors).
    Failed,
    /// Out of retries.
    GaveUp,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::GaveUp => "gave-up",
        }
    }

    fn parse(text: &str) -> Result<JobState, StorageError> {
        Ok(match text {
            "queued" => JobState::Queued,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "gave-up" => JobState::GaveUp,
            other => {
                return Err(StorageError::Corrupt {
                    table: "fulfillment_jobs",
                    message: format!("unknown state `{other}`"),
                });
            }
        })
    }
}

/// A job a worker holds the lease of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub order_number: String,
    /// Attempts started, this one included (an attempt whose host died
    /// counts too).
    pub attempts: u32,
    /// The lease's token: every later write to the job must show it.
    pub lease: String,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: i64,
    pub order_number: String,
    pub state: JobState,
    pub attempts: u32,
    pub run_at_ms: i64,
    pub last_error: Option<String>,
    /// The host that made the last attempt.
    pub worked_by: Option<String>,
}

/// What a worker writes back when it is done with a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUpdate {
    pub state: JobState,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// When it is due again (for `Queued`).
    pub run_at_ms: i64,
    pub last_error: Option<String>,
}

/// Queues the first attempt of order `order_id`, due at `now_ms`.
pub async fn insert_job(connection: &mut AnyConnection, order_id: i64, order_number: &str, now_ms: i64) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO fulfillment_jobs (order_id, order_number, state, attempts, run_at, created_at, updated_at)
         VALUES ($1, $2, 'queued', 0, $3, $3, $3)",
    )
    .bind(order_id)
    .bind(order_number)
    .bind(now_ms)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Takes the lease of the job due first, if any, with the token `owner`
/// until `lease_until_ms`, counting an attempt of it.
pub async fn claim_due_job(
    connection: &mut AnyConnection,
    backend: Backend,
    owner: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<Option<ClaimedJob>, StorageError> {
    let skip_locked = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // The due row is picked once, in a CTE: as `id IN (subquery ... LIMIT
    // 1)`, PostgreSQL may run the subquery more than once and update more
    // than one row.
    let query = format!(
        "WITH due AS (
             SELECT id FROM fulfillment_jobs
             WHERE state = 'queued' AND run_at <= $3 AND (lease_until IS NULL OR lease_until < $3)
             ORDER BY run_at, id LIMIT 1 {skip_locked})
         UPDATE fulfillment_jobs
         SET lease_owner = $1, lease_until = $2, updated_at = $3, attempts = fulfillment_jobs.attempts + 1
         FROM due
         WHERE fulfillment_jobs.id = due.id
         RETURNING fulfillment_jobs.id, fulfillment_jobs.order_number, fulfillment_jobs.attempts"
    );
    let row = sqlx::query(&query)
        .bind(owner)
        .bind(lease_until_ms)
        .bind(now_ms)
        .fetch_optional(&mut *connection)
        .await?;
    row.map(|row| {
        Ok(ClaimedJob {
            id: row.try_get("id")?,
            order_number: row.try_get("order_number")?,
            attempts: attempts(row.try_get("attempts")?),
            lease: owner.to_string(),
        })
    })
    .transpose()
}

/// Takes the lease of order `order_id`'s job with the token `owner` if
/// nobody holds it, whatever the job's state (a staff retry of an order
/// whose job gave up). False when a lease is held, or the order has no job.
pub async fn lease_order_job(
    connection: &mut AnyConnection,
    order_id: i64,
    owner: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<bool, StorageError> {
    let result = sqlx::query(
        "UPDATE fulfillment_jobs SET lease_owner = $1, lease_until = $2, updated_at = $3
         WHERE order_id = $4 AND (lease_until IS NULL OR lease_until < $3)",
    )
    .bind(owner)
    .bind(lease_until_ms)
    .bind(now_ms)
    .bind(order_id)
    .execute(&mut *connection)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Extends `owner`'s lease of job `id`; false when it is no longer theirs.
pub async fn renew_lease(connection: &mut AnyConnection, id: i64, owner: &str, lease_until_ms: i64) -> Result<bool, StorageError> {
    let result = sqlx::query("UPDATE fulfillment_jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
        .bind(lease_until_ms)
        .bind(id)
        .bind(owner)
        .execute(&mut *connection)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Writes `update` and releases the lease, if the token `owner` still
/// holds it (call it in the transaction that saves the fulfillment, so that
/// both or neither are written); `host` made the attempt. False when the
/// lease was lost.
pub async fn finish_job(
    connection: &mut AnyConnection,
    id: i64,
    owner: &str,
    host: &str,
    update: &JobUpdate,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let result = sqlx::query(
        "UPDATE fulfillment_jobs
         SET state = $1, attempts = $2, run_at = $3, last_error = $4, lease_owner = NULL, lease_until = NULL,
             updated_at = $5, worked_by = $8
         WHERE id = $6 AND lease_owner = $7",
    )
    .bind(update.state.as_str())
    .bind(i64::from(update.attempts))
    .bind(update.run_at_ms)
    .bind(update.last_error.as_deref())
    .bind(now_ms)
    .bind(id)
    .bind(owner)
    .bind(host)
    .execute(&mut *connection)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Releases `owner`'s lease of job `id` without changing it (the work was
/// abandoned; it is due again at once).
pub async fn release_lease(connection: &mut AnyConnection, id: i64, owner: &str) -> Result<(), StorageError> {
    sqlx::query("UPDATE fulfillment_jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
        .bind(id)
        .bind(owner)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// The job of order `order_number`, if it has one.
pub async fn job_for_order(connection: &mut AnyConnection, order_number: &str) -> Result<Option<JobRecord>, StorageError> {
    let row = sqlx::query(
        "SELECT id, order_number, state, attempts, run_at, last_error, worked_by
         FROM fulfillment_jobs WHERE order_number = $1",
    )
    .bind(order_number)
    .fetch_optional(&mut *connection)
    .await?;
    row.map(|row| {
        let state: String = row.try_get("state")?;
        Ok(JobRecord {
            id: row.try_get("id")?,
            order_number: row.try_get("order_number")?,
            state: JobState::parse(&state)?,
            attempts: attempts(row.try_get("attempts")?),
            run_at_ms: row.try_get("run_at")?,
            last_error: row.try_get("last_error")?,
            worked_by: row.try_get("worked_by")?,
        })
    })
    .transpose()
}

/// How many jobs are in each state (for the health endpoint and the tests).
pub async fn count_jobs(connection: &mut AnyConnection) -> Result<Vec<(JobState, u64)>, StorageError> {
    let rows = sqlx::query("SELECT state, CAST(COUNT(*) AS BIGINT) AS n FROM fulfillment_jobs GROUP BY state ORDER BY state")
        .fetch_all(&mut *connection)
        .await?;
    rows.iter()
        .map(|row| {
            let state: String = row.try_get("state")?;
            let count: i64 = row.try_get("n")?;
            Ok((JobState::parse(&state)?, count.max(0) as u64))
        })
        .collect()
}

fn attempts(stored: i64) -> u32 {
    u32::try_from(stored).unwrap_or(u32::MAX)
}

/// Releases every lease of host `host` (tokens `<host>/<n>`: a host
/// abandoning its jobs on shutdown); returns how many.
pub async fn release_leases_of(connection: &mut AnyConnection, host: &str) -> Result<u64, StorageError> {
    let result = sqlx::query("UPDATE fulfillment_jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner LIKE $1")
        .bind(format!("{host}/%"))
        .execute(&mut *connection)
        .await?;
    Ok(result.rows_affected())
}
