//! The limits on a request's head (URI length, header bytes and count),
//! enforced below hyper's own so that the answer has the error shape (hyper
//! answers 414 and 431 itself with an empty body), and the answer every
//! error made outside a handler gets: a JSON body in the error shape.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::settings::ServerSettings;

/// What `[server]` allows in a request's head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl HeadLimits {
    pub fn of(server: &ServerSettings) -> HeadLimits {
        HeadLimits {
            max_uri_bytes: server.max_uri_bytes.get(),
            max_header_bytes: server.max_header_bytes.get(),
            max_headers: server.max_headers.get(),
        }
    }

    /// 414 for a longer URI, 431 for more header bytes (names, values and
    /// their `: ` and CRLF) or more headers than allowed.
    pub fn check(&self, request: &Request) -> Result<(), ApiError> {
        let uri = request.uri().path_and_query().map_or(0, |path| path.as_str().len());
        if uri > self.max_uri_bytes {
            return Err(ApiError::new(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                format!("the URI has {uri} bytes; at most {} are accepted", self.max_uri_bytes),
            ));
        }
        let headers = request.headers();
        if headers.len() > self.max_headers {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                format!("{} headers were sent; at most {} are accepted", headers.len(), self.max_headers),
            ));
        }
        let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
        if bytes > self.max_header_bytes {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                format!("the headers have {bytes} bytes; at most {} are accepted", self.max_header_bytes),
            ));
        }
        Ok(())
    }

    /// The buffer hyper may fill with a request's head: room for our
    /// limits and the request line, so that ours answer first (hyper's
    /// minimum is 8 KiB).
    pub fn hyper_buffer(&self) -> usize {
        (self.max_uri_bytes + self.max_header_bytes + 1024).max(8 * 1024)
    }

    /// Hyper's header count: above ours, so that ours answer first.
    pub fn hyper_max_headers(&self) -> usize {
        self.max_headers.saturating_mul(2).max(100)
    }
}

/// The middleware of [`HeadLimits`].
pub async fn enforce(limits: HeadLimits, request: Request, next: Next) -> Response {
    match limits.check(&request) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Gives an error answer that is neither JSON nor a dashboard page (made by
/// axum or a tower layer: 404 and 405 of the router, 413 of the body limit,
/// 503 of the request time-out) the error shape, keeping its status and
/// headers (`Allow`).
pub async fn error_shape(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json") || value.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let shaped = ApiError::for_status(status).into_response();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let (shaped_parts, body) = shaped.into_parts();
    for (name, value) in &shaped_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, body)
}
