use crate::dispatch::DispatchError;
use crate::model::OrderStatus;
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
    /// to process).
    #[error("{0}")]
    Conflict(String),
    /// The processor declined or failed: nothing was charged, no order made.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// Payment was taken but the order could not be stored: the payment is
    /// recorded (payment source `payment_source_id`) for staff to resolve.
    #[error("payment {reference} was collected and recorded as payment source {payment_source_id}, but the order could not be created: {cause}")]
    PaidWithoutOrder {
        reference: String,
        payment_source_id: i64,
        cause: StorageError,
    },
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error(transparent)]
    Storage(#[from] StorageError),
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
