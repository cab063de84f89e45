//! The operator dashboard under `/dashboard`: server-rendered HTML pages
//! (askama templates in `host/templates/dashboard/`, checked at compile
//! time; no JavaScript) for support staff. A presentation layer beside the
//! JSON API, over the same services: a retry or a refund decision made here
//! runs exactly what the API runs ([`StaffActions`]).
//!
//! - `sign-in`, `sign-out`: sessions of admin tokens ([`session`]);
//! - `orders`: the list with filters, and an order's page with its lines,
//!   notes, attempt log, payment, job and refunds, and the staff actions
//!   ([`orders`]);
//! - `modules`: what the runtime loaded and how each module is doing
//!   ([`modules`]).
//!
//! [`StaffActions`]: crate::services::StaffActions

mod modules;
mod orders;
mod session;
mod sign_in;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api::AppState;
use crate::payments::PaymentError;
use crate::services::OrderError;

pub use session::{SESSION_COOKIE, Staff};

/// The dashboard's routes, for the API's router to serve (with its limits
/// and time-outs).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(|| async { Redirect::to("/dashboard/orders") }))
        .route("/dashboard/", get(|| async { Redirect::to("/dashboard/orders") }))
        .route("/dashboard/sign-in", get(sign_in::form).post(sign_in::sign_in))
        .route("/dashboard/sign-out", post(sign_in::sign_out))
        .route("/dashboard/orders", get(orders::list))
        .route("/dashboard/orders/{number}", get(orders::page))
        .route("/dashboard/orders/{number}/retry", post(orders::retry))
        .route("/dashboard/orders/{number}/refunds", post(orders::create_refund))
        .route("/dashboard/refunds/{id}/approve", post(orders::approve_refund))
        .route("/dashboard/refunds/{id}/deny", post(orders::deny_refund))
        .route("/dashboard/modules", get(modules::page))
        .layer(axum::middleware::from_fn(as_dashboard_page))
}

/// What every dashboard answer gets: headers that keep its pages out of
/// other sites' frames (clickjacking would get past every CSRF check: the
/// click is the member of staff's own) and out of caches (they hold
/// customers' data and the session's CSRF token); and an error the
/// extractors answer (a form or a path they refuse) as a page rather than
/// the API's JSON. (The outer layers' refusals, a body over the limit
/// declared up front or the request time-out, stay in the API's shape.)
async fn as_dashboard_page(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::{HeaderValue, header};
    let mut response = next.run(request).await;
    let status = response.status();
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if (status.is_client_error() || status.is_server_error()) && !is_html {
        let reason = status.canonical_reason().unwrap_or("Error").to_string();
        response = DashboardError::Refused(status, format!("The request was refused: {reason}.")).into_response();
    }
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Why a dashboard request was not served, as a page.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// Not signed in (or the session expired): to the sign-in page.
    #[error("sign in first")]
    SignInNeeded,
    /// A form post without this session's CSRF token, or from another origin.
    #[error("refused (CSRF): {0}")]
    Csrf(String),
    /// The request is malformed: what is wrong with it.
    #[error("{0}")]
    BadRequest(String),
    /// Refused outside the handlers, with this status.
    #[error("{1}")]
    Refused(StatusCode, String),
    #[error(transparent)]
    Service(#[from] OrderError),
    /// A template did not render.
    #[error("the page did not render: {0}")]
    Render(#[from] askama::Error),
}

impl DashboardError {
    fn status(&self) -> StatusCode {
        match self {
            DashboardError::SignInNeeded => StatusCode::SEE_OTHER,
            DashboardError::Csrf(_) => StatusCode::FORBIDDEN,
            DashboardError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DashboardError::Refused(status, _) => *status,
            DashboardError::Service(error) => service_status(error),
            DashboardError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The status of a service's refusal, as the API answers it.
fn service_status(error: &OrderError) -> StatusCode {
    match error {
        OrderError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        OrderError::NotFound(_) => StatusCode::NOT_FOUND,
        OrderError::NotFulfillable { .. } => StatusCode::NOT_ACCEPTABLE,
        OrderError::Conflict(_) => StatusCode::CONFLICT,
        OrderError::Busy(_) | OrderError::CheckoutPending { .. } => StatusCode::SERVICE_UNAVAILABLE,
        OrderError::Payment(PaymentError::Declined(_)) => StatusCode::PAYMENT_REQUIRED,
        OrderError::Payment(PaymentError::NotAllowed(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        OrderError::Payment(PaymentError::Processor(_)) => StatusCode::BAD_GATEWAY,
        OrderError::Dispatch(_)
        | OrderError::Storage(_)
        | OrderError::Corrupt(_)
        | OrderError::Transition(_)
        | OrderError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a refusal says to staff: the service's own words, but never the
/// insides of a failure of the host (those go to the log).
fn staff_message(error: &DashboardError) -> String {
    match error.status() {
        StatusCode::INTERNAL_SERVER_ERROR => {
            tracing::error!(%error, "a dashboard request failed");
            "internal error; see the host's log".to_string()
        }
        _ => error.to_string(),
    }
}

/// An error page.
#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage {
    title: String,
    message: String,
    signed_in: Option<String>,
    csrf: String,
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        if let DashboardError::SignInNeeded = self {
            return Redirect::to("/dashboard/sign-in").into_response();
        }
        let status = self.status();
        let page = ErrorPage {
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            message: staff_message(&self),
            signed_in: None,
            csrf: String::new(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, Html(format!("<!doctype html><p>{}</p>", status))).into_response(),
        }
    }
}

/// `template` as an HTML answer with `status`.
fn render(status: StatusCode, template: &impl Template) -> Result<Response, DashboardError> {
    Ok((status, Html(template.render()?)).into_response())
}
