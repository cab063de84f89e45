//! Orders and payments: placing an order (payment first, then the order,
//! then fulfillment), staff retries, refunds, and the catalog.
//!
//! Start at [`OrderService`]. It owns the database, the payment processors
//! and the runtime, and is what the HTTP API calls; it calls `dispatch`.

mod catalog;
mod error;
mod locks;
mod place;
mod refunds;
mod retry;

use std::sync::Arc;

pub use catalog::NewProduct;
pub use error::OrderError;
pub use place::{BasketLine, PaymentInput, PlaceOrder, Placed};
pub use refunds::RefundAction;

use crate::payments::Payments;
use crate::runtime::Runtime;
use crate::settings::OrderSettings;
use crate::storage::Database;

/// Everything the order operations need.
#[derive(Clone)]
pub struct OrderService {
    db: Database,
    runtime: Arc<Runtime>,
    payments: Payments,
    settings: OrderSettings,
    locks: locks::OrderLocks,
}

impl OrderService {
    pub fn new(db: Database, runtime: Arc<Runtime>, payments: Payments, settings: OrderSettings) -> OrderService {
        OrderService {
            db,
            runtime,
            payments,
            settings,
            locks: locks::OrderLocks::default(),
        }
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
