//! Path and query extractors whose rejections have the API's error shape
//! and name the parameter at fault (as [`ApiJson`](super::json::ApiJson)
//! does for bodies).

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, RawPathParams};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

/// Like `axum::extract::Path`, but a parameter that does not parse (a
/// refund id that is not a number) is a 422 naming it.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                let message = error.body_text();
                let key = match error.into_kind() {
                    ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::InvalidUtf8InPathParam { key } => Some(key),
                    ErrorKind::DeserializeError { key, .. } => Some(key),
                    _ => None,
                };
                // A single parameter's error does not name it: the route's
                // only parameter is the one.
                let key = match key {
                    Some(key) => key,
                    None => RawPathParams::from_request_parts(parts, state)
                        .await
                        .ok()
                        .and_then(|params| params.iter().next().map(|(key, _)| key.to_string()))
                        .unwrap_or_else(|| "path".to_string()),
                };
                Err(ApiError::invalid(key, message))
            }
            Err(other) => Err(ApiError::new(other.status(), "bad_request", other.body_text())),
        }
    }
}

/// Like `axum::extract::Query`, but a parameter that does not parse, or an
/// unknown one (with `deny_unknown_fields`), is a 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(ApiQuery).map_err(|error| {
            let message = error.inner().to_string();
            let path = error.path().to_string();
            let field = if path != "." {
                path
            } else {
                // serde names an unknown field in its message only:
                // "unknown field `colour`, expected one of ...".
                message
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split('`').next())
                    .unwrap_or("query")
                    .to_string()
            };
            ApiError::invalid(field, message)
        })
    }
}
