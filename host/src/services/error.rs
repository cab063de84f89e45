use crate::dispatch::DispatchError;
use crate::model::{OrderStatus, TransitionError};
use crate::payments::PaymentError;
use crate::storage::StorageError;

/// Why an order operation did not happen (or only partly).
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The request is wrong; `field` names the offending input.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// No such order, refund or product.
    #[error("{0} not found")]
    NotFound(String),
    /// The order cannot be fulfilled in its status.
    #[error("order {number} is not fulfillable: its status is `{status}`")]
    NotFulfillable { number: String, status: OrderStatus },
    /// The request conflicts with an earlier one (idempotency key reused with
    /// another body, a line already being refunded, a refund not in a state
    /// to process, work another host holds).
    #[error("{0}")]
    Conflict(String),
    /// The processor declined or failed: nothing was charged, no order made.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The checkout is recorded, and its payment may have gone through, but
    /// its order is not made yet: the checkout's job makes it from the
    /// record (without charging again). The client repeats the request with
    /// the same idempotency key to get the order.
    #[error("{message}")]
    CheckoutPending { checkout_id: i64, message: String },
    /// The database could not take the work before anything happened
    /// (nothing was charged); try again.
    #[error("{0}")]
    Busy(String),
    /// A stored record does not read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The host itself failed (a task panicked, no random bytes).
    #[error("{0}")]
    Internal(String),
}

impl OrderError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> OrderError {
        OrderError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for OrderError {
    fn from(error: sqlx::Error) -> Self {
        OrderError::Storage(StorageError::Query(error))
    }
}
