//! `[fulfillment]`: synchronous or asynchronous fulfillment, the workers,
//! and the retry policy of the job queue.

use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// When an order is fulfilled after it is placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FulfillmentMode {
    /// Started by the request that places the order, in this process (the
    /// reference's default): the answer carries the fulfilled order, or
    /// `202` with the order as it stands when fulfillment outlasts
    /// `sync_wait_ms` (it goes on, and stores its outcome). A failed order
    /// waits for a staff retry.
    #[default]
    Sync,
    /// By a worker of any host: the answer is `201` with the order `Open`;
    /// failed lines are retried by the retry policy.
    Async,
}

/// `[fulfillment]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FulfillmentSettings {
    pub mode: FulfillmentMode,
    /// Jobs one process works on at once (`serve`, `worker`).
    pub workers: NonZeroU32,
    /// Retries after the first attempt (the reference: 11, so 12 attempts).
    pub max_retries: u32,
    /// The wait before retry n is `backoff_base_ms * 2^(n-1)` (the
    /// reference: 1 s, 2 s, 4 s, … 1024 s) ...
    pub backoff_base_ms: u64,
    /// ... at most this long ...
    pub backoff_max_ms: u64,
    /// ... give or take up to this percentage, at random, so that jobs that
    /// failed together do not all retry in the same instant.
    #[serde(deserialize_with = "percent")]
    pub jitter_percent: u32,
    /// How long a claimed job stays claimed without its worker renewing the
    /// claim. A job of a host that died is taken by another after this.
    pub lease_ms: NonZeroU64,
    /// How often an idle worker looks for due jobs (jobs placed on the same
    /// host wake it at once).
    pub poll_ms: NonZeroU64,
    /// On SIGTERM, how long the host lets jobs in progress finish before it
    /// abandons them (their claims are released for other hosts).
    pub shutdown_grace_ms: u64,
    /// How long a request waits for the job it started (sync fulfillment,
    /// a refund approval, a staff retry) before it answers `202` with where
    /// things stand; the job runs on. Keep it under `[server]
    /// request_timeout_ms`.
    pub sync_wait_ms: u64,
}

impl Default for FulfillmentSettings {
    fn default() -> FulfillmentSettings {
        FulfillmentSettings {
            mode: FulfillmentMode::Sync,
            workers: NonZeroU32::new(4).expect("nonzero"),
            max_retries: 11,
            backoff_base_ms: 1_000,
            backoff_max_ms: 3_600_000,
            jitter_percent: 10,
            lease_ms: NonZeroU64::new(60_000).expect("nonzero"),
            poll_ms: NonZeroU64::new(500).expect("nonzero"),
            shutdown_grace_ms: 30_000,
            sync_wait_ms: 25_000,
        }
    }
}

impl FulfillmentSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.get())
    }

    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms.get())
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

fn percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let value = u32::deserialize(deserializer)?;
    if value <= 100 {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!("jitter_percent = {value} is over 100")))
    }
}
