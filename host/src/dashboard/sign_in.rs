//! Signing in with an admin API token, and out.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use axum_extra::extract::Form;
use serde::Deserialize;

use super::session::{self, RequestOrigin, SESSION_COOKIE, SIGN_IN_CSRF_COOKIE, Staff};
use super::{DashboardError, render};
use crate::api::{AppState, authenticate, token_digest};
use crate::services::random_token;
use crate::settings::Role;

#[derive(Template)]
#[template(path = "dashboard/sign_in.html")]
struct SignInPage {
    csrf: String,
    error: Option<String>,
    signed_in: Option<String>,
}

/// The sign-in form, with a fresh double-submit CSRF token in its cookie.
pub async fn form(State(state): State<AppState>, jar: CookieJar) -> Result<Response, DashboardError> {
    let csrf = random_token()?;
    let page = SignInPage {
        csrf: csrf.clone(),
        error: None,
        signed_in: None,
    };
    let jar = jar.add(session::cookie(&state.dashboard, SIGN_IN_CSRF_COOKIE, csrf, None));
    Ok((jar, render(StatusCode::OK, &page)?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    csrf: Option<String>,
}

/// Signs in an admin token: 303 to the orders. A wrong token, or one
/// without the admin role, gets the form again (401, 403).
pub async fn sign_in(
    State(state): State<AppState>,
    origin: RequestOrigin,
    jar: CookieJar,
    Form(input): Form<SignInForm>,
) -> Result<Response, DashboardError> {
    origin.check()?;
    let expected = jar.get(SIGN_IN_CSRF_COOKIE).map(|cookie| cookie.value().to_string()).unwrap_or_default();
    if expected.is_empty() {
        return Err(DashboardError::Csrf("the sign-in form's CSRF cookie is missing: load the form again".into()));
    }
    session::check_token(&expected, input.csrf.as_deref())?;
    let token = input.token.trim();
    let refusal = match authenticate(&state.tokens, token) {
        None => Some((StatusCode::UNAUTHORIZED, "This token is not known to the host.")),
        Some(caller) if caller.role != Role::Admin => {
            Some((StatusCode::FORBIDDEN, "This token is not an admin token: only an admin token can sign in to the dashboard."))
        }
        Some(_) => None,
    };
    if let Some((status, message)) = refusal {
        let page = SignInPage {
            csrf: expected,
            error: Some(message.to_string()),
            signed_in: None,
        };
        return render(status, &page);
    }
    let caller = authenticate(&state.tokens, token).ok_or(DashboardError::SignInNeeded)?;
    let sessions = &state.services.sessions;
    // A new session id at every sign-in (never one the browser brought),
    // and the browser's earlier session ends.
    if let Some(earlier) = jar.get(SESSION_COOKIE) {
        sessions.sign_out(earlier.value()).await?;
    }
    let new = sessions.sign_in(&token_digest(token), &caller.name).await?;
    tracing::info!(token = %caller.name, "signed in to the dashboard");
    let jar = jar
        .remove(session::removal(&state.dashboard, SIGN_IN_CSRF_COOKIE))
        .add(session::cookie(&state.dashboard, SESSION_COOKIE, new.id, Some(sessions.ttl())));
    Ok((jar, Redirect::to("/dashboard/orders")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    csrf: Option<String>,
}

/// Ends the session: 303 to the sign-in form.
pub async fn sign_out(
    State(state): State<AppState>,
    staff: Staff,
    origin: RequestOrigin,
    jar: CookieJar,
    Form(input): Form<SignOutForm>,
) -> Result<Response, DashboardError> {
    staff.check_post(&origin, input.csrf.as_deref())?;
    state.services.sessions.sign_out(&staff.session_id).await?;
    tracing::info!(token = staff.name(), "signed out of the dashboard");
    Ok((jar.remove(session::removal(&state.dashboard, SESSION_COOKIE)), Redirect::to("/dashboard/sign-in")).into_response())
}
