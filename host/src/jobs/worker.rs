//! The worker pool of one process and its graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::orders::OrderService;
use crate::storage::ClaimedJob;

/// The workers of this process. Stop them with [`Workers::shutdown`].
pub struct Workers {
    service: OrderService,
    stop: Arc<watch::Sender<bool>>,
    tasks: JoinSet<()>,
}

/// Tells the workers to stop claiming jobs (the first step of a shutdown,
/// which may come before the rest of it).
#[derive(Clone)]
pub struct StopClaiming(Arc<watch::Sender<bool>>);

impl StopClaiming {
    pub fn now(&self) {
        let _ = self.0.send(true);
    }
}

impl Workers {
    /// Starts `[fulfillment] workers` workers on `service`.
    pub fn start(service: OrderService) -> Workers {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let count = service.fulfillment_settings().workers.get();
        for index in 0..count {
            tasks.spawn(work(service.clone(), stopped.clone(), index));
        }
        tracing::info!(workers = count, host = service.host_id(), "fulfillment workers started");
        Workers {
            service,
            stop: Arc::new(stop),
            tasks,
        }
    }

    /// A handle that stops the claiming of new jobs.
    pub fn stop_claiming(&self) -> StopClaiming {
        StopClaiming(self.stop.clone())
    }

    /// Stops claiming jobs, lets the attempts in progress finish for up to
    /// `shutdown_grace_ms`, then abandons the rest and releases every lease
    /// this host still holds, so that another host takes those jobs at once.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let grace = self.service.fulfillment_settings().shutdown_grace();
        let finished = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "fulfillment attempts still running after the grace period: abandoning them");
            self.tasks.shutdown().await;
        }
        match self.service.release_all_jobs().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "released the leases of abandoned jobs"),
            Err(error) => tracing::error!(%error, "cannot release job leases; they run out by themselves"),
        }
        tracing::info!("fulfillment workers stopped");
    }
}

/// Runs the workers of `service` until `shutdown` resolves, then stops them
/// gracefully: `fulfillment-host worker`.
pub async fn run_workers_until(service: OrderService, shutdown: impl Future<Output = ()>) {
    let workers = Workers::start(service);
    shutdown.await;
    workers.shutdown().await;
}

/// One worker: claim a due job, run it, repeat; wait for a queued order or
/// the next poll when there is nothing to do.
async fn work(service: OrderService, mut stopped: watch::Receiver<bool>, index: u32) {
    let poll = service.fulfillment_settings().poll();
    while !*stopped.borrow() {
        match service.claim_job().await {
            Ok(Some(job)) => run_leased(&service, &job).await,
            Ok(None) => {
                tokio::select! {
                    () = service.job_queued() => {}
                    () = tokio::time::sleep(poll) => {}
                    _ = stopped.changed() => {}
                }
            }
            Err(error) => {
                tracing::error!(worker = index, %error, "cannot claim fulfillment jobs");
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    _ = stopped.changed() => {}
                }
            }
        }
    }
}

/// Runs one attempt of `job` while renewing its lease; if the lease is lost
/// (this host stalled and another took the job), the attempt is abandoned.
async fn run_leased(service: &OrderService, job: &ClaimedJob) {
    match service.with_lease(job.id, &job.lease, service.run_job(job)).await {
        Some(Ok(_)) => {}
        // The lease is kept: the job is due again when it runs out, which
        // spaces out the attempts of a job that keeps failing this way (a
        // database outage, say); each counts against its retries.
        Some(Err(error)) => {
            tracing::error!(order = %job.order_number, %error, "fulfillment job attempt failed; it is due again when its lease runs out");
        }
        None => {
            tracing::warn!(order = %job.order_number, "lost the lease of a fulfillment job; abandoning the attempt");
        }
    }
}
