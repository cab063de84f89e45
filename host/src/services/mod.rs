//! The services the HTTP API and the workers call, one job each, held
//! together in [`Services`]:
//!
//! - [`CheckoutService`]: validate, record the intent, charge, make the
//!   order (and complete a paid checkout whose request did not);
//! - [`FulfillmentService`]: one attempt of an order's fulfillment job, and
//!   the staff retry (calls `dispatch`);
//! - [`RefundService`]: create, approve or deny a refund, and carry it out
//!   (credit, then revoke);
//! - [`StaffActions`]: a staff retry and a refund decision, waited for as
//!   long as the caller may (the API and the dashboard share them);
//! - [`SessionService`]: the dashboard's sign-ins;
//! - [`CatalogService`]: the products; [`OrderQueries`]: reading orders;
//! - [`Executor`]: runs the jobs of the queue (`crate::queue`) by kind, in
//!   tasks no HTTP request can drop.
//!
//! Every piece of module or money work is a job, recorded in the database
//! before it starts.

mod catalog;
mod checkout;
mod error;
mod executor;
mod fulfillment;
mod orders;
mod refunds;
mod retry_policy;
mod sessions;
mod staff;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

pub use catalog::{CatalogService, NewProduct};
pub use checkout::{BasketLine, CheckoutService, PaymentInput, PlaceOrder, Placed};
pub use error::OrderError;
pub use executor::{Executor, Running};
pub use fulfillment::{AttemptBy, FulfillmentService};
pub use orders::{OrderDetail, OrderQueries, OrderSnapshot};
pub use refunds::{Processed, RefundAction, RefundService};
pub use retry_policy::{Next, RetryPolicy};
pub use sessions::{NewSession, SessionService, random_token};
pub use staff::{StaffActions, Waited, by_deadline};

/// The records the services hand out, as storage reads them: the API sees
/// them through here, never through `storage`.
pub use crate::storage::{
    AttemptRecord, CatalogProduct, CreditState, JobRecord, JobState, OrderFilter, OrderScope, PaymentEventRecord, PaymentRecord, RefundRecord,
    SessionRecord, StoredOrder,
};

use crate::metrics::Metrics;
use crate::payments::Payments;
use crate::queue::JobQueue;
use crate::runtime::Runtime;
use crate::settings::{DashboardSettings, FulfillmentMode, FulfillmentSettings, OrderSettings};
use crate::storage::Database;

/// The services of one process, sharing one database, runtime, payment
/// processors and job queue.
#[derive(Clone)]
pub struct Services {
    pub checkout: CheckoutService,
    pub fulfillment: FulfillmentService,
    pub refunds: RefundService,
    pub catalog: CatalogService,
    pub orders: OrderQueries,
    pub staff: StaffActions,
    pub sessions: SessionService,
    pub executor: Executor,
    pub db: Database,
    pub payments: Payments,
    pub settings: FulfillmentSettings,
    /// This host's metrics (`GET /metrics`), recorded by the services and
    /// the API.
    pub metrics: Metrics,
}

impl Services {
    pub fn new(
        db: Database,
        runtime: Arc<Runtime>,
        payments: Payments,
        orders: OrderSettings,
        fulfillment: FulfillmentSettings,
        dashboard: &DashboardSettings,
    ) -> Services {
        let queue = JobQueue::new(db.clone(), fulfillment.lease());
        let metrics = Metrics::new(runtime.clone());
        let checkout = CheckoutService::new(db.clone(), payments.clone(), queue.clone(), orders, fulfillment.mode, metrics.clone());
        let fulfillment_service =
            FulfillmentService::new(db.clone(), runtime.clone(), queue.clone(), fulfillment.clone(), metrics.clone());
        let refunds = RefundService::new(db.clone(), runtime, payments.clone(), queue.clone());
        let retry = RetryPolicy::from_settings(&fulfillment);
        let executor = Executor::new(queue, checkout.clone(), fulfillment_service.clone(), refunds.clone(), retry, metrics.clone());
        let orders = OrderQueries::new(db.clone());
        let staff = StaffActions::new(
            executor.clone(),
            fulfillment_service.clone(),
            refunds.clone(),
            orders.clone(),
            Duration::from_millis(fulfillment.sync_wait_ms),
        );
        Services {
            checkout,
            fulfillment: fulfillment_service,
            refunds,
            catalog: CatalogService::new(db.clone()),
            orders,
            staff,
            sessions: SessionService::new(db.clone(), dashboard.session_ttl()),
            executor,
            db,
            payments,
            settings: fulfillment,
            metrics,
        }
    }

    pub fn is_async(&self) -> bool {
        self.settings.mode == FulfillmentMode::Async
    }

    /// How long a request waits for the job it started.
    pub fn sync_wait(&self) -> Duration {
        Duration::from_millis(self.settings.sync_wait_ms)
    }

    pub fn queue(&self) -> &JobQueue {
        self.executor.queue()
    }

    pub fn runtime(&self) -> &Runtime {
        self.fulfillment.runtime()
    }
}
