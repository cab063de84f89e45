//! A JSON body extractor whose rejections have the API's error shape.

use axum::extract::{FromRequest, Request};
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;

use super::ApiError;

/// Like `axum::Json`, but a malformed body, a missing field or an unknown
/// field is a 422 (400 for bad JSON syntax, 415 without a JSON content type)
/// in the API's error shape.
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
                JsonRejection::JsonDataError(error) => ApiError::invalid("body", error.body_text()),
                JsonRejection::JsonSyntaxError(error) => {
                    ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", error.body_text())
                }
                JsonRejection::MissingJsonContentType(error) => {
                    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", error.body_text())
                }
                other => ApiError::new(other.status(), "bad_request", other.body_text()),
            }),
        }
    }
}
