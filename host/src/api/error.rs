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

    /// The answer for an error `status` made outside a handler (by axum,
    /// hyper or a tower layer), in the error shape.
    pub fn for_status(status: StatusCode) -> ApiError {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such endpoint"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "the endpoint does not take this method (see `Allow`)"),
            StatusCode::REQUEST_TIMEOUT => ("body_timeout", "the body was not sent in time"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body is larger than the host accepts"),
            StatusCode::SERVICE_UNAVAILABLE => ("timeout", "the request took too long; work it started goes on"),
            status if status.is_server_error() => ("internal", "internal error; see the host's log"),
            _ => ("bad_request", status.canonical_reason().unwrap_or("bad request")),
        };
        ApiError::new(status, code, message)
    }
}

/// The shape of every error answer.
// For the OpenAPI document only: answers are made by `ApiError`'s
// `IntoResponse`.
#[derive(Debug, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_request", "message": "is 58.99 but the basket and shipping add up to 59.00", "field": "total"}}))]
#[allow(dead_code)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people; it may change.
    pub message: String,
    /// The field, header or parameter at fault (422): `total`,
    /// `basket[1].sku`, `Idempotency-Key`, `page`.
    pub field: Option<String>,
}

/// The stable codes of errors (docs/api.md tells when each is answered).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ErrorCode {
    BadRequest,
    MalformedJson,
    Unauthorized,
    PaymentDeclined,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotFulfillable,
    BodyTimeout,
    Conflict,
    PayloadTooLarge,
    UriTooLong,
    UnsupportedMediaType,
    InvalidRequest,
    HeadersTooLarge,
    Internal,
    PaymentProcessorError,
    Busy,
    OrderPending,
    Timeout,
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
            OrderError::Dispatch(_)
            | OrderError::Storage(_)
            | OrderError::Corrupt(_)
            | OrderError::Transition(_)
            | OrderError::Internal(_) => {
                tracing::error!(error = %error, "request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the host's log")
            }
        }
    }
}
