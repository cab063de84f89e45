//! One error shape for every answer: `{"error": {"code", "message", "field"?}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::services::OrderError;
use crate::payments::PaymentError;

/// An API error: its status code, a stable `code` and a message for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The input field at fault, for 422.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 401: no or unknown token.
    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send a valid `Authorization: Bearer <token>` header")
    }

    /// 403: the token's role may not do this.
    pub fn forbidden(needed: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("this needs a token with the `{needed}` role"))
    }

    /// 422 for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::Invalid { field, message } => ApiError::invalid(field, message),
            OrderError::NotFound(what) => ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found")),
            OrderError::NotFulfillable { .. } => {
                ApiError::new(StatusCode::NOT_ACCEPTABLE, "not_fulfillable", error.to_string())
            }
            OrderError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            OrderError::Payment(PaymentError::Declined(reason)) => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment_declined", format!("payment declined: {reason}"))
            }
            OrderError::Payment(PaymentError::Processor(reason)) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "payment_processor_error", reason)
            }
            OrderError::Payment(PaymentError::NotAllowed(reason)) => ApiError::invalid("payment", reason),
            OrderError::CheckoutPending { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "order_pending", error.to_string())
            }
            OrderError::Busy(message) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message),
            OrderError::Dispatch(_) | OrderError::Storage(_) | OrderError::Corrupt(_) | OrderError::Transition(_) => {
                tracing::error!(error = %error, "request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the host's log")
            }
        }
    }
}
