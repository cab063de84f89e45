//! A JSON body extractor whose rejections have the API's error shape.

use axum::extract::{FromRequest, Request};
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, JsonRejection};
use axum::http::StatusCode;

use super::ApiError;

/// Like `axum::Json`, but a malformed body, a missing field or an unknown
/// field is a 422 (400 for bad JSON syntax, 415 without a JSON content type,
/// 413 for a body over the limit, 408 for one that stalled past
/// `[server] body_read_timeout_ms`) in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(error) => ApiError::invalid(data_error_field(&error), error.body_text()),
                JsonRejection::JsonSyntaxError(error) => {
                    ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", error.body_text())
                }
                JsonRejection::MissingJsonContentType(error) => {
                    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", error.body_text())
                }
                JsonRejection::BytesRejection(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(error))) => {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", error.body_text())
                }
                JsonRejection::BytesRejection(error) if timed_out(&error) => ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    "the body was not sent in time: it stalled longer than the host waits",
                ),
                other => ApiError::new(other.status(), "bad_request", other.body_text()),
            }),
        }
    }
}

/// The field a body's data error is about: the JSON path serde stopped at
/// (`shipping_address.postcode`; for an unknown field, its own path:
/// `billing_address.company`); `body` when the error is about the whole
/// body (a missing top-level field).
fn data_error_field(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(error) = error.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            let path = error.path().to_string();
            return if path == "." { "body".to_string() } else { path };
        }
        cause = error.source();
    }
    "body".to_string()
}

/// Whether reading the body failed because it stalled (tower-http's body
/// time-out, somewhere in the error's sources).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}
