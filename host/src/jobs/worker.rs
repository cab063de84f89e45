//! The worker pool of one process and its graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::services::Services;

/// The workers of this process. Stop them with [`Workers::shutdown`].
pub struct Workers {
    services: Services,
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
    /// Starts `[fulfillment] workers` workers on `services`.
    pub fn start(services: Services) -> Workers {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let count = services.settings.workers.get();
        for index in 0..count {
            tasks.spawn(work(services.clone(), stopped.clone(), index));
        }
        tracing::info!(workers = count, host = services.queue().host_id(), "job workers started");
        Workers {
            services,
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
        let grace = self.services.settings.shutdown_grace();
        let executor = self.services.executor.clone();
        let finished = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
            // And the jobs that requests started (sync fulfillment, refunds,
            // staff retries), which run on after their answers.
            executor.started_jobs_ended().await;
        })
        .await;
        if finished.is_err() {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "fulfillment attempts still running after the grace period: abandoning them");
            self.tasks.shutdown().await;
        }
        match self.services.queue().release_all().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "released the leases of abandoned jobs"),
            Err(error) => tracing::error!(%error, "cannot release job leases; they run out by themselves"),
        }
        tracing::info!("fulfillment workers stopped");
    }
}

/// Runs the workers of `service` until `shutdown` resolves, then stops them
/// gracefully: `fulfillment-host worker`.
pub async fn run_workers_until(services: Services, shutdown: impl Future<Output = ()>) {
    let workers = Workers::start(services);
    shutdown.await;
    workers.shutdown().await;
}

/// One worker: claim a due job, run it, repeat; wait for a queued job or
/// the next poll when there is nothing to do.
async fn work(services: Services, mut stopped: watch::Receiver<bool>, index: u32) {
    let poll = services.settings.poll();
    while !*stopped.borrow() {
        match services.executor.run_one_due_job().await {
            Ok(true) => {}
            Ok(false) => {
                tokio::select! {
                    () = services.queue().woken() => {}
                    () = tokio::time::sleep(poll) => {}
                    _ = stopped.changed() => {}
                }
            }
            Err(error) => {
                tracing::error!(worker = index, %error, "cannot claim jobs");
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    _ = stopped.changed() => {}
                }
            }
        }
    }
}
