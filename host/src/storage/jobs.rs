//! `jobs`: the one durable queue of module and money work (completing a
//! paid checkout, fulfilling an order, crediting and revoking a refund).
//!
//! A job is claimed by taking its lease: `lease_owner` (a token of one
//! claim, `<host>/<n>`) and `lease_until`; a claim counts the attempt. On
//! PostgreSQL the claim skips rows another host is claiming at the same
//! moment (`FOR UPDATE SKIP LOCKED`), so many hosts share one queue without
//! waiting on each other; SQLite runs one write at a time, which makes the
//! same statement safe within one file. Every later write to a job checks
//! that the lease is still the writer's: a worker that lost its lease (it
//! stalled past `lease_until` and another host took the job) cannot
//! overwrite the other's work. Due times and leases are read from the
//! database's clock ([`Backend::now_ms`]), never a host's.

use sqlx::{AnyConnection, Row};

use super::{Backend, StorageError, placeholders};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Complete a checkout whose request did not: subject `checkouts.id`.
    Checkout,
    /// Fulfill an order's lines that are not Complete: subject `orders.id`.
    Fulfill,
    /// Credit an approved refund, then revoke its lines: subject `refunds.id`.
    Refund,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Checkout => "checkout",
            JobKind::Fulfill => "fulfill",
            JobKind::Refund => "refund",
        }
    }

    fn parse(text: &str) -> Result<JobKind, StorageError> {
        Ok(match text {
            "checkout" => JobKind::Checkout,
            "fulfill" => JobKind::Fulfill,
            "refund" => JobKind::Refund,
            other => return Err(corrupt(format!("unknown kind `{other}`"))),
        })
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to run at `run_at` (or running, while leased).
    Queued,
    /// Its work is done (the order is `Complete`, the refund settled, the
    /// checkout an order or abandoned).
    Done,
    /// What failed cannot be fixed by trying again (configuration errors).
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
            other => return Err(corrupt(format!("unknown state `{other}`"))),
        })
    }
}

fn corrupt(message: String) -> StorageError {
    StorageError::Corrupt { table: "jobs", message }
}

/// A job a worker holds the lease of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: JobKind,
    pub subject_id: i64,
    pub order_number: Option<String>,
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
    pub kind: JobKind,
    pub subject_id: i64,
    pub order_number: Option<String>,
    pub state: JobState,
    pub attempts: u32,
    pub run_at_ms: i64,
    pub last_error: Option<String>,
    /// The host that made the last attempt.
    pub worked_by: Option<String>,
    /// Whether a lease is held on it now (by the database's clock).
    pub leased: bool,
}

/// The row as read, before its text columns are parsed.
#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    kind: String,
    subject_id: i64,
    order_number: Option<String>,
    state: String,
    attempts: i64,
    run_at: i64,
    last_error: Option<String>,
    worked_by: Option<String>,
    leased: i64,
}

impl TryFrom<JobRow> for JobRecord {
    type Error = StorageError;

    fn try_from(row: JobRow) -> Result<JobRecord, StorageError> {
        Ok(JobRecord {
            id: row.id,
            kind: JobKind::parse(&row.kind)?,
            subject_id: row.subject_id,
            order_number: row.order_number,
            state: JobState::parse(&row.state)?,
            attempts: attempts(row.attempts),
            run_at_ms: row.run_at,
            last_error: row.last_error,
            worked_by: row.worked_by,
            leased: row.leased != 0,
        })
    }
}

/// What a worker writes back when it is done with an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUpdate {
    pub state: JobState,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// For `Queued`: due again this long after now.
    pub retry_in_ms: i64,
    pub last_error: Option<String>,
}

/// A new job: what, about which order, and who holds it from the start.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: JobKind,
    pub subject_id: i64,
    pub order_number: Option<&'a str>,
    /// Due this long after now.
    pub due_in_ms: i64,
    /// `(token, lease_ms)`: created leased by the host that runs it at once
    /// (so that no worker takes it meanwhile); None for a worker to claim.
    pub leased_to: Option<(&'a str, i64)>,
}

/// Queues a job; returns its id. Call it in the transaction that records
/// the work's intent.
pub async fn insert_job(connection: &mut AnyConnection, backend: Backend, job: &NewJob<'_>) -> Result<i64, StorageError> {
    let now = backend.now_ms();
    let query = format!(
        "INSERT INTO jobs (kind, subject_id, order_number, state, attempts, run_at, lease_owner, lease_until,
             created_at, updated_at)
         VALUES ($1, $2, $3, 'queued', $4, {now} + $5, $6, {now} + $7, {now}, {now}) RETURNING id"
    );
    let (owner, lease_ms) = match job.leased_to {
        Some((owner, lease_ms)) => (Some(owner), Some(lease_ms)),
        None => (None, None),
    };
    let row = sqlx::query(&query)
        .bind(job.kind.as_str())
        .bind(job.subject_id)
        .bind(job.order_number)
        // A job created leased is being attempted by its creator: one attempt.
        .bind(i64::from(owner.is_some()))
        .bind(job.due_in_ms)
        .bind(owner)
        .bind(lease_ms)
        .fetch_one(&mut *connection)
        .await?;
    Ok(row.try_get("id")?)
}

/// Whether a job is due and not leased (a read: no write lock).
pub async fn any_job_due(connection: &mut AnyConnection, backend: Backend) -> Result<bool, StorageError> {
    let now = backend.now_ms();
    let query = format!(
        "SELECT id FROM jobs
         WHERE state = 'queued' AND run_at <= {now} AND (lease_until IS NULL OR lease_until < {now}) LIMIT 1"
    );
    Ok(sqlx::query(&query).fetch_optional(&mut *connection).await?.is_some())
}

/// Takes the lease of the job due first, if any, with the token `owner`
/// for `lease_ms`, counting an attempt of it.
pub async fn claim_due_job(
    connection: &mut AnyConnection,
    backend: Backend,
    owner: &str,
    lease_ms: i64,
) -> Result<Option<ClaimedJob>, StorageError> {
    let now = backend.now_ms();
    let skip_locked = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // The due row is picked once, in a CTE: as `id IN (subquery ... LIMIT
    // 1)`, PostgreSQL may run the subquery more than once and update more
    // than one row.
    let query = format!(
        "WITH due AS (
             SELECT id FROM jobs
             WHERE state = 'queued' AND run_at <= {now} AND (lease_until IS NULL OR lease_until < {now})
             ORDER BY run_at, id LIMIT 1 {skip_locked})
         UPDATE jobs
         SET lease_owner = $1, lease_until = {now} + $2, updated_at = {now}, attempts = jobs.attempts + 1
         FROM due
         WHERE jobs.id = due.id
         RETURNING jobs.id, jobs.kind, jobs.subject_id, jobs.order_number, jobs.attempts"
    );
    let row = sqlx::query(&query)
        .bind(owner)
        .bind(lease_ms)
        .fetch_optional(&mut *connection)
        .await?;
    row.map(|row| claimed(&row, owner)).transpose()
}

/// The job a claim's `RETURNING id, kind, subject_id, order_number,
/// attempts` row names, leased with the token `owner`.
fn claimed(row: &sqlx::any::AnyRow, owner: &str) -> Result<ClaimedJob, StorageError> {
    let kind: String = row.try_get("kind")?;
    Ok(ClaimedJob {
        id: row.try_get("id")?,
        kind: JobKind::parse(&kind)?,
        subject_id: row.try_get("subject_id")?,
        order_number: row.try_get("order_number")?,
        attempts: attempts(row.try_get("attempts")?),
        lease: owner.to_string(),
    })
}

/// Takes the lease of job `id` with the token `owner` if nobody holds it,
/// whatever the job's state (a staff retry of an order whose job gave up),
/// without counting an attempt. None when a lease is held.
pub async fn lease_job(
    connection: &mut AnyConnection,
    backend: Backend,
    id: i64,
    owner: &str,
    lease_ms: i64,
) -> Result<Option<ClaimedJob>, StorageError> {
    let now = backend.now_ms();
    let query = format!(
        "UPDATE jobs SET lease_owner = $1, lease_until = {now} + $2, updated_at = {now}
         WHERE id = $3 AND (lease_until IS NULL OR lease_until < {now})
         RETURNING id, kind, subject_id, order_number, attempts"
    );
    let row = sqlx::query(&query)
        .bind(owner)
        .bind(lease_ms)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    row.map(|row| claimed(&row, owner)).transpose()
}

/// Extends `owner`'s lease of job `id` by `lease_ms`; false when it is no
/// longer theirs.
pub async fn renew_lease(
    connection: &mut AnyConnection,
    backend: Backend,
    id: i64,
    owner: &str,
    lease_ms: i64,
) -> Result<bool, StorageError> {
    let now = backend.now_ms();
    let query = format!("UPDATE jobs SET lease_until = {now} + $1 WHERE id = $2 AND lease_owner = $3");
    let result = sqlx::query(&query)
        .bind(lease_ms)
        .bind(id)
        .bind(owner)
        .execute(&mut *connection)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Writes `update` and releases the lease, if the token `owner` still
/// holds it (call it in the transaction that stores the attempt's work, so
/// that both or neither are written); `host` made the attempt. False when
/// the lease was lost.
pub async fn finish_job(
    connection: &mut AnyConnection,
    backend: Backend,
    id: i64,
    owner: &str,
    host: &str,
    update: &JobUpdate,
) -> Result<bool, StorageError> {
    let now = backend.now_ms();
    let query = format!(
        "UPDATE jobs
         SET state = $1, attempts = $2, run_at = {now} + $3, last_error = $4, lease_owner = NULL,
             lease_until = NULL, updated_at = {now}, worked_by = $5
         WHERE id = $6 AND lease_owner = $7"
    );
    let result = sqlx::query(&query)
        .bind(update.state.as_str())
        .bind(i64::from(update.attempts))
        .bind(update.retry_in_ms)
        .bind(update.last_error.as_deref())
        .bind(host)
        .bind(id)
        .bind(owner)
        .execute(&mut *connection)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Marks job (`kind`, `subject_id`) done whoever holds it: the work it was
/// queued for was done by the request that queued it (a checkout that made
/// its order), in the same transaction.
pub async fn complete_job_of(
    connection: &mut AnyConnection,
    backend: Backend,
    kind: JobKind,
    subject_id: i64,
) -> Result<(), StorageError> {
    let now = backend.now_ms();
    let query = format!(
        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = {now}
         WHERE kind = $1 AND subject_id = $2"
    );
    sqlx::query(&query)
        .bind(kind.as_str())
        .bind(subject_id)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Gives back `owner`'s lease of job `id` after a run that failed before
/// it could store anything (a database error, say), due again in
/// `retry_in_ms`, with the error.
pub async fn postpone_job(
    connection: &mut AnyConnection,
    backend: Backend,
    id: i64,
    owner: &str,
    retry_in_ms: i64,
    error: &str,
) -> Result<(), StorageError> {
    let now = backend.now_ms();
    let query = format!(
        "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, run_at = {now} + $1, last_error = $2, updated_at = {now}
         WHERE id = $3 AND lease_owner = $4"
    );
    sqlx::query(&query)
        .bind(retry_in_ms)
        .bind(error)
        .bind(id)
        .bind(owner)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Makes the job (`kind`, `subject_id`) queued and due now, whatever its
/// state.
pub async fn make_job_due_now(
    connection: &mut AnyConnection,
    backend: Backend,
    kind: JobKind,
    subject_id: i64,
) -> Result<(), StorageError> {
    let now = backend.now_ms();
    let query = format!("UPDATE jobs SET state = 'queued', run_at = {now}, updated_at = {now} WHERE kind = $1 AND subject_id = $2");
    sqlx::query(&query)
        .bind(kind.as_str())
        .bind(subject_id)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Releases `owner`'s lease of job `id` without changing it (the work was
/// abandoned; it is due again at once).
pub async fn release_lease(connection: &mut AnyConnection, id: i64, owner: &str) -> Result<(), StorageError> {
    sqlx::query("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
        .bind(id)
        .bind(owner)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// The columns of a [`JobRow`], with whether a lease is held now.
fn job_select(backend: Backend) -> String {
    let now = backend.now_ms();
    format!(
        "SELECT id, kind, subject_id, order_number, state, attempts, run_at, last_error, worked_by,
                CAST(CASE WHEN lease_until IS NOT NULL AND lease_until >= {now} THEN 1 ELSE 0 END AS BIGINT) AS leased
         FROM jobs"
    )
}

/// The job (`kind`, `subject_id`), if there is one.
pub async fn job_of(
    connection: &mut AnyConnection,
    backend: Backend,
    kind: JobKind,
    subject_id: i64,
) -> Result<Option<JobRecord>, StorageError> {
    let query = format!("{} WHERE kind = $1 AND subject_id = $2", job_select(backend));
    let row: Option<JobRow> = sqlx::query_as(&query)
        .bind(kind.as_str())
        .bind(subject_id)
        .fetch_optional(&mut *connection)
        .await?;
    row.map(JobRecord::try_from).transpose()
}

/// The jobs of `kind` about `subject_ids`, by subject: one query, however
/// many.
pub async fn jobs_of(
    connection: &mut AnyConnection,
    backend: Backend,
    kind: JobKind,
    subject_ids: &[i64],
) -> Result<std::collections::HashMap<i64, JobRecord>, StorageError> {
    if subject_ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let query = format!(
        "{} WHERE kind = $1 AND subject_id IN ({})",
        job_select(backend),
        placeholders(2, subject_ids.len())
    );
    let mut query = sqlx::query_as::<_, JobRow>(&query).bind(kind.as_str());
    for id in subject_ids {
        query = query.bind(*id);
    }
    query
        .fetch_all(&mut *connection)
        .await?
        .into_iter()
        .map(|row| JobRecord::try_from(row).map(|job| (job.subject_id, job)))
        .collect()
}

/// How many jobs are in each state (for the health endpoint and the tests).
pub async fn count_jobs(connection: &mut AnyConnection) -> Result<Vec<(JobState, u64)>, StorageError> {
    let rows = sqlx::query("SELECT state, CAST(COUNT(*) AS BIGINT) AS n FROM jobs GROUP BY state ORDER BY state")
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
    // The host's name is matched literally: `_` and `%` are not wildcards.
    let literal = host.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let result = sqlx::query("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner LIKE $1 ESCAPE '\\'")
        .bind(format!("{literal}/%"))
        .execute(&mut *connection)
        .await?;
    Ok(result.rows_affected())
}
