//! [`Executor`]: runs the jobs of the queue, whatever their kind, always in
//! a task of their own that no HTTP request can drop.
//!
//! A worker hands it a job it claimed ([`Executor::run_one_due_job`]); a
//! request that queued a job leased to this host (sync mode, a refund
//! approval, a staff retry) hands it over with [`Executor::start`] and waits
//! for it up to `[fulfillment] sync_wait_ms`. Either way the job runs to its
//! end and stores its outcome, renewing its lease meanwhile; if this host
//! dies, the lease runs out and any host's worker runs the job again.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use super::checkout::CheckoutService;
use super::fulfillment::{AttemptBy, FulfillmentService};
use super::refunds::RefundService;
use super::OrderError;
use super::retry_policy::RetryPolicy;
use crate::metrics::Metrics;
use crate::queue::JobQueue;
use crate::storage::{ClaimedJob, JobKind, StoredOrder};

/// A job started by [`Executor::start`].
#[derive(Debug)]
pub struct Running(JoinHandle<Ran>);

/// How a job's run ended.
#[derive(Debug)]
enum Ran {
    /// It stored its outcome; a fulfillment attempt gives the order as it
    /// stored it.
    Stored(Option<Box<StoredOrder>>),
    /// It stored nothing (it is due again).
    NotStored,
}

impl Running {
    /// Waits up to `bound` for the job's run to end: true when it stored
    /// its outcome; false when it is still running (it goes on; the caller
    /// answers without it) or ended without storing anything (it is due
    /// again).
    pub async fn stored_within(&mut self, bound: Duration) -> bool {
        matches!(tokio::time::timeout(bound, &mut self.0).await, Ok(Ok(Ran::Stored(_))))
    }

    /// The same for a fulfillment attempt: the order as the attempt stored
    /// it, or None.
    pub async fn stored_order_within(&mut self, bound: Duration) -> Option<StoredOrder> {
        match tokio::time::timeout(bound, &mut self.0).await {
            Ok(Ok(Ran::Stored(order))) => order.map(|order| *order),
            _ => None,
        }
    }
}

/// Runs jobs by kind.
#[derive(Clone)]
pub struct Executor {
    queue: JobQueue,
    checkout: CheckoutService,
    fulfillment: FulfillmentService,
    refunds: RefundService,
    /// The backoff of runs that failed.
    retry: RetryPolicy,
    /// The jobs started for requests, so that a shutdown waits for them.
    started: TaskTracker,
    /// Counts the runs by kind.
    metrics: Metrics,
}

impl Executor {
    pub fn new(
        queue: JobQueue,
        checkout: CheckoutService,
        fulfillment: FulfillmentService,
        refunds: RefundService,
        retry: RetryPolicy,
        metrics: Metrics,
    ) -> Executor {
        Executor {
            queue,
            checkout,
            fulfillment,
            refunds,
            retry,
            started: TaskTracker::new(),
            metrics,
        }
    }

    pub fn queue(&self) -> &JobQueue {
        &self.queue
    }

    /// Starts `job` (leased to this host) in a task of its own.
    pub fn start(&self, job: ClaimedJob) -> Running {
        self.start_as(job, AttemptBy::Queue)
    }

    /// Starts a staff retry of a `fulfill` job (leased to this host).
    pub fn start_as(&self, job: ClaimedJob, by: AttemptBy) -> Running {
        let executor = self.clone();
        Running(self.started.spawn(async move { executor.run(&job, by, None).await }))
    }

    /// Starts the `fulfill` job (leased to this host) of an order this host
    /// has just stored, with the order as it was stored: the attempt does not
    /// read it back (sync mode's order placement).
    pub fn start_placed(&self, job: ClaimedJob, placed: StoredOrder) -> Running {
        let executor = self.clone();
        Running(self.started.spawn(async move { executor.run(&job, AttemptBy::Queue, Some(placed)).await }))
    }

    /// Runs `work` (a checkout, say) in a task of its own that a dropped
    /// request does not cancel and that a shutdown waits for, like the jobs
    /// requests start.
    pub fn track<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.started.spawn(work)
    }

    /// Waits for the jobs started for requests to end (bounded by the
    /// caller): a shutdown lets them finish before it releases this host's
    /// leases.
    pub async fn started_jobs_ended(&self) {
        self.started.close();
        self.started.wait().await;
    }

    /// Claims the job due first and runs it to its end; false when none was
    /// due. The workers' loop, and the hook tests call instead of waiting.
    pub async fn run_one_due_job(&self) -> Result<bool, OrderError> {
        let Some(job) = self.queue.claim().await? else {
            return Ok(false);
        };
        // In the worker's own task: a worker stopped past its shutdown grace
        // abandons the run, and its lease is released for another host.
        self.run(&job, AttemptBy::Queue, None).await;
        Ok(true)
    }

    /// Runs `job` while renewing its lease; whether it stored its outcome
    /// (and the order, for a fulfillment attempt). A run that failed before
    /// it could store anything (a database outage, say) is due again after
    /// the retry policy's backoff for its attempt.
    async fn run(&self, job: &ClaimedJob, by: AttemptBy, placed: Option<StoredOrder>) -> Ran {
        self.metrics.job_attempt(job.kind);
        let work = async {
            match job.kind {
                JobKind::Checkout => self.checkout.complete(job).await.map(|()| None),
                JobKind::Fulfill => self.fulfillment.attempt(job, by, placed).await.map(|order| Some(Box::new(order))),
                JobKind::Refund => self.refunds.run(job).await.map(|()| None),
            }
        };
        match self.queue.with_lease(job, work).await {
            Some(Ok(order)) => Ran::Stored(order),
            Some(Err(error)) => {
                let delay = self.retry.backoff(job.attempts.max(1));
                tracing::error!(job = job.id, kind = job.kind.as_str(), order = ?job.order_number, %error,
                    retry_in_ms = delay.as_millis() as u64, "job run failed");
                self.queue.postpone(job, delay, &error.to_string()).await;
                Ran::NotStored
            }
            None => {
                tracing::warn!(job = job.id, kind = job.kind.as_str(), order = ?job.order_number,
                    "lost the lease of a job; abandoning the run");
                Ran::NotStored
            }
        }
    }
}
