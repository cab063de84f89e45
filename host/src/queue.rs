//! [`JobQueue`]: the one durable queue of module and money work, as the
//! services and the executor see it. The SQL is in `storage::jobs`; this
//! type adds this process's lease tokens, the lease length, lease renewal
//! while work runs, and a wake-up for the local workers.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::AnyConnection;
use tokio::sync::Notify;

use crate::storage::{self, ClaimedJob, Database, JobKind, JobState, JobUpdate, NewJob, StorageError};

/// The queue, with this process's identity as a lease holder.
#[derive(Clone)]
pub struct JobQueue {
    db: Database,
    /// This process, as the owner of leases: unique per process run.
    host_id: Arc<str>,
    /// Numbers this process's leases: each claim has a token of its own.
    leases_taken: Arc<AtomicU64>,
    lease: Duration,
    /// Woken when a job is queued here, so that a local worker takes it at
    /// once instead of at its next poll.
    queued: Arc<Notify>,
}

impl JobQueue {
    pub fn new(db: Database, lease: Duration) -> JobQueue {
        JobQueue {
            db,
            host_id: host_id().into(),
            leases_taken: Arc::new(AtomicU64::new(0)),
            lease,
            queued: Arc::new(Notify::new()),
        }
    }

    /// This process's name in leases.
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// A new lease token of this host: `<host>/<n>`.
    fn new_token(&self) -> String {
        format!("{}/{}", self.host_id, self.leases_taken.fetch_add(1, Ordering::Relaxed))
    }

    /// Queues a job in the caller's transaction, for a worker to claim
    /// `due_in` from now. Call [`JobQueue::wake`] after the commit.
    pub async fn enqueue(
        &self,
        transaction: &mut AnyConnection,
        kind: JobKind,
        subject_id: i64,
        order_number: Option<&str>,
        due_in: Duration,
    ) -> Result<i64, StorageError> {
        let job = NewJob {
            kind,
            subject_id,
            order_number,
            due_in_ms: i64::try_from(due_in.as_millis()).unwrap_or(i64::MAX),
            leased_to: None,
        };
        storage::insert_job(transaction, self.db.backend(), &job).await
    }

    /// Queues a job in the caller's transaction, leased to this host from
    /// the start, to run at once here (by the services' `Executor`). If
    /// this host dies before it is done, the lease runs out and any host's
    /// worker takes it.
    pub async fn enqueue_leased(
        &self,
        transaction: &mut AnyConnection,
        kind: JobKind,
        subject_id: i64,
        order_number: Option<&str>,
    ) -> Result<ClaimedJob, StorageError> {
        let lease = self.new_token();
        let job = NewJob {
            kind,
            subject_id,
            order_number,
            due_in_ms: 0,
            leased_to: Some((&lease, self.lease_ms())),
        };
        let id = storage::insert_job(transaction, self.db.backend(), &job).await?;
        Ok(ClaimedJob {
            id,
            kind,
            subject_id,
            order_number: order_number.map(str::to_string),
            attempts: 1,
            lease,
        })
    }

    /// Wakes a local worker (after a commit that queued a job).
    pub fn wake(&self) {
        self.queued.notify_one();
    }

    /// Resolves when a job was queued by this process (or spuriously).
    pub async fn woken(&self) {
        self.queued.notified().await;
    }

    /// Takes the lease of the next due job, if there is one, counting an
    /// attempt of it.
    pub async fn claim(&self) -> Result<Option<ClaimedJob>, StorageError> {
        // A read first: an idle worker's poll takes no write lock.
        {
            let mut connection = self.db.pool().acquire().await?;
            if !storage::any_job_due(&mut connection, self.db.backend()).await? {
                return Ok(None);
            }
        }
        let mut transaction = self.db.begin_write().await?;
        let claimed = storage::claim_due_job(&mut transaction, self.db.backend(), &self.new_token(), self.lease_ms()).await?;
        transaction.commit().await?;
        Ok(claimed)
    }

    /// Takes the lease of job `id` if nobody holds it, in the caller's
    /// transaction, without counting an attempt (staff asked for the work).
    pub async fn lease(&self, connection: &mut AnyConnection, id: i64) -> Result<Option<ClaimedJob>, StorageError> {
        storage::lease_job(connection, self.db.backend(), id, &self.new_token(), self.lease_ms()).await
    }

    /// Writes the job's next state and releases its lease, in the caller's
    /// transaction (the one that stores the attempt's work). False when the
    /// lease was lost: roll the transaction back.
    pub async fn finish(&self, transaction: &mut AnyConnection, job: &ClaimedJob, update: &JobUpdate) -> Result<bool, StorageError> {
        storage::finish_job(transaction, self.db.backend(), job.id, &job.lease, &self.host_id, update).await
    }

    /// Renews `job`'s lease in the caller's transaction: false when it was
    /// lost (roll back what the transaction did).
    pub async fn renew(&self, transaction: &mut AnyConnection, job: &ClaimedJob) -> Result<bool, StorageError> {
        storage::renew_lease(transaction, self.db.backend(), job.id, &job.lease, self.lease_ms()).await
    }

    /// Makes the job (`kind`, `subject_id`) queued and due now, in the
    /// caller's transaction.
    pub async fn make_due_now(&self, transaction: &mut AnyConnection, kind: JobKind, subject_id: i64) -> Result<(), StorageError> {
        storage::make_job_due_now(transaction, self.db.backend(), kind, subject_id).await
    }

    /// Marks job (`kind`, `subject_id`) done in the caller's transaction:
    /// its work was done there.
    pub async fn complete(&self, transaction: &mut AnyConnection, kind: JobKind, subject_id: i64) -> Result<(), StorageError> {
        storage::complete_job_of(transaction, self.db.backend(), kind, subject_id).await
    }

    /// Gives back `job`'s lease without changing it (the work was
    /// abandoned; the job is due again at once).
    pub async fn release(&self, job: &ClaimedJob) {
        let released = async {
            let mut transaction = self.db.begin_write().await?;
            storage::release_lease(&mut transaction, job.id, &job.lease).await?;
            Ok::<(), StorageError>(transaction.commit().await?)
        };
        if let Err(error) = released.await {
            tracing::warn!(job = job.id, %error, "cannot release a job's lease; it runs out by itself");
        }
    }

    /// Gives back `job`'s lease after a run that failed before it could
    /// store anything, due again after `delay`. If even this fails, the
    /// lease runs out by itself.
    pub async fn postpone(&self, job: &ClaimedJob, delay: Duration, error: &str) {
        let postponed = async {
            let mut transaction = self.db.begin_write().await?;
            let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            storage::postpone_job(&mut transaction, self.db.backend(), job.id, &job.lease, delay_ms, error).await?;
            Ok::<(), StorageError>(transaction.commit().await?)
        };
        if let Err(error) = postponed.await {
            tracing::warn!(job = job.id, %error, "cannot postpone a job; its lease runs out by itself");
        }
    }

    /// Gives back every lease this host holds; returns how many.
    pub async fn release_all(&self) -> Result<u64, StorageError> {
        let mut transaction = self.db.begin_write().await?;
        let released = storage::release_leases_of(&mut transaction, &self.host_id).await?;
        transaction.commit().await?;
        Ok(released)
    }

    /// How many jobs are in each state.
    pub async fn counts(&self) -> Result<Vec<(JobState, u64)>, StorageError> {
        let mut connection = self.db.pool().acquire().await?;
        storage::count_jobs(&mut connection).await
    }

    /// Runs `work` while renewing `job`'s lease every third of the lease.
    /// None when the lease was lost (another host took the job, or renewals
    /// failed until the lease ran out): `work` is then dropped, abandoned
    /// mid-way, and stores nothing.
    pub async fn with_lease<T>(&self, job: &ClaimedJob, work: impl Future<Output = T>) -> Option<T> {
        let every = (self.lease / 3).max(Duration::from_millis(10));
        let keep = async {
            let mut held_until = Instant::now() + self.lease;
            loop {
                tokio::time::sleep(every).await;
                let renewed = async {
                    let mut transaction = self.db.begin_write().await?;
                    let renewed = storage::renew_lease(&mut transaction, self.db.backend(), job.id, &job.lease, self.lease_ms()).await?;
                    transaction.commit().await?;
                    Ok::<bool, StorageError>(renewed)
                };
                match renewed.await {
                    Ok(true) => held_until = Instant::now() + self.lease,
                    Ok(false) => return,
                    Err(error) if Instant::now() + every < held_until => {
                        tracing::warn!(job = job.id, %error, "cannot renew a job's lease; trying again");
                    }
                    Err(error) => {
                        tracing::warn!(job = job.id, %error, "cannot renew a job's lease before it runs out");
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
}

/// `hostname-pid-random`: tells the hosts sharing a database apart in
/// leases and logs, and a restarted process from its previous run.
fn host_id() -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_string());
    format!("{hostname}-{}-{:06x}", std::process::id(), fastrand::u32(..0x100_0000))
}
