//! Orders and payments: placing an order (payment first, then the order,
//! then fulfillment), staff retries, refunds, and the catalog.
//!
//! Start at [`OrderService`]. It owns the database, the payment processors
//! and the runtime, and is what the HTTP API calls; it calls `dispatch`.

mod catalog;
mod error;
mod jobs;
mod locks;
mod place;
mod refunds;
mod retry;
mod retry_policy;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::Notify;

pub use catalog::NewProduct;
pub use error::OrderError;
pub use place::{BasketLine, PaymentInput, PlaceOrder, Placed};
pub use refunds::RefundAction;

use crate::payments::Payments;
use crate::runtime::Runtime;
use crate::settings::{FulfillmentMode, FulfillmentSettings, OrderSettings};
use crate::storage::Database;

/// Everything the order operations need.
#[derive(Clone)]
pub struct OrderService {
    db: Database,
    runtime: Arc<Runtime>,
    payments: Payments,
    settings: OrderSettings,
    fulfillment: FulfillmentSettings,
    locks: locks::OrderLocks,
    /// This process, as the owner of job leases: unique per process run.
    host_id: Arc<str>,
    /// Numbers this process's job leases: each claim has a token of its own.
    leases_taken: Arc<AtomicU64>,
    /// Woken when an order is queued here, so that a local worker takes it
    /// at once instead of at its next poll.
    jobs_queued: Arc<Notify>,
}

impl OrderService {
    pub fn new(
        db: Database,
        runtime: Arc<Runtime>,
        payments: Payments,
        settings: OrderSettings,
        fulfillment: FulfillmentSettings,
    ) -> OrderService {
        OrderService {
            db,
            runtime,
            payments,
            settings,
            fulfillment,
            locks: locks::OrderLocks::default(),
            host_id: host_id().into(),
            leases_taken: Arc::new(AtomicU64::new(0)),
            jobs_queued: Arc::new(Notify::new()),
        }
    }

    /// Whether placing an order queues its fulfillment.
    pub fn is_async(&self) -> bool {
        self.fulfillment.mode == FulfillmentMode::Async
    }

    pub fn fulfillment_settings(&self) -> &FulfillmentSettings {
        &self.fulfillment
    }

    /// This process's name in job leases.
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// Resolves when an order was queued by this process (or spuriously).
    pub async fn job_queued(&self) {
        self.jobs_queued.notified().await;
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn payments(&self) -> &Payments {
        &self.payments
    }
}

/// `hostname-pid-random`: tells the hosts sharing a database apart in job
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
