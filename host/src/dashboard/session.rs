//! Who is signed in, and whether a form post may change anything.
//!
//! A browser signs in with an admin API token; it then holds only the id of
//! a session (cookie `fh_session`: HttpOnly, SameSite=Strict, Path=/dashboard),
//! which the database knows by its SHA-256 ([`SessionService`]). The token's
//! digest stays on the session and is checked against `[[api.tokens]]` on
//! every request: a token removed from the settings (or no longer admin)
//! signs its sessions out.
//!
//! Every state-changing request is a form POST, refused (403) unless both
//! hold: it carries the session's CSRF token (the sign-in form: the token
//! of its double-submit cookie), and the browser does not say it comes from
//! another origin (`Origin`, when sent, must be `[dashboard] public_origin`
//! or `http://` and this `Host`; `Sec-Fetch-Site`, when sent, same-origin). SameSite=Strict alone is not enough: a page on another port
//! of the same host is the same *site*.
//!
//! [`SessionService`]: crate::services::SessionService

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{HOST, ORIGIN};
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::DashboardError;
use crate::api::{AppState, Caller, caller_by_digest};
use crate::services::{OrderScope, SessionRecord};
use crate::settings::{DashboardSettings, Role, Sha256Digest};

/// The cookie that holds the session id.
pub const SESSION_COOKIE: &str = "fh_session";
/// The double-submit cookie of the sign-in form.
pub const SIGN_IN_CSRF_COOKIE: &str = "fh_sign_in_csrf";
/// The path of the dashboard's cookies.
const COOKIE_PATH: &str = "/dashboard";

/// A signed-in member of staff: an admin token's live session.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The session id (the cookie's value).
    pub session_id: String,
    pub session: SessionRecord,
    /// The token as the settings have it now: its scope bounds the orders
    /// the pages show and act on, as it bounds the API's.
    pub caller: Caller,
}

impl Staff {
    /// The name of the token the session signed in with.
    pub fn name(&self) -> &str {
        &self.caller.name
    }

    /// The orders this member of staff may see.
    pub fn scope(&self) -> &OrderScope {
        &self.caller.scope
    }

    /// Refuses a form post without this session's CSRF token, or from
    /// another origin.
    pub fn check_post(&self, parts: &RequestOrigin, csrf: Option<&str>) -> Result<(), DashboardError> {
        parts.check()?;
        check_token(&self.session.csrf, csrf)
    }
}

impl<S> FromRequestParts<S> for Staff
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    /// Signed out: to the sign-in page.
    type Rejection = DashboardError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let jar = CookieJar::from_headers(&parts.headers);
        let session_id = jar
            .get(SESSION_COOKIE)
            .map(|cookie| cookie.value().to_string())
            .ok_or(DashboardError::SignInNeeded)?;
        let session = state
            .services
            .sessions
            .find(&session_id)
            .await?
            .ok_or(DashboardError::SignInNeeded)?;
        // The token must still be in the settings, and still an admin's.
        let caller = Sha256Digest::try_from(session.token_sha256.clone())
            .ok()
            .and_then(|digest| caller_by_digest(&state.tokens, &digest))
            .filter(|caller| caller.role == Role::Admin)
            .ok_or(DashboardError::SignInNeeded)?;
        Ok(Staff {
            session_id,
            session,
            caller,
        })
    }
}

/// What a request says of where it comes from, and the origin it should
/// come from.
#[derive(Debug, Clone)]
pub struct RequestOrigin {
    /// `[dashboard] public_origin`, or `http://` and the `Host` header.
    expected: Option<String>,
    origin: Option<String>,
    fetch_site: Option<String>,
}

impl RequestOrigin {
    /// 403 when the browser says the request comes from another origin
    /// (an opaque `null` origin included: a sandboxed frame, say).
    pub fn check(&self) -> Result<(), DashboardError> {
        if let Some(site) = &self.fetch_site
            && site != "same-origin"
            && site != "none"
        {
            return Err(DashboardError::Csrf(format!("the request comes from another site (Sec-Fetch-Site: {site})")));
        }
        if let Some(origin) = &self.origin
            && Some(origin) != self.expected.as_ref()
        {
            return Err(DashboardError::Csrf(format!("the request comes from another origin ({origin})")));
        }
        Ok(())
    }
}

impl<S> FromRequestParts<S> for RequestOrigin
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = |name| parts.headers.get(name).and_then(|value: &axum::http::HeaderValue| value.to_str().ok()).map(str::to_string);
        let expected = AppState::from_ref(state)
            .dashboard
            .public_origin
            .clone()
            .or_else(|| header(HOST).map(|host| format!("http://{host}")));
        Ok(RequestOrigin {
            expected,
            origin: header(ORIGIN),
            fetch_site: header(axum::http::HeaderName::from_static("sec-fetch-site")),
        })
    }
}

/// 403 unless `sent` is `expected` (compared in constant time).
pub fn check_token(expected: &str, sent: Option<&str>) -> Result<(), DashboardError> {
    let Some(sent) = sent.filter(|sent| !sent.is_empty()) else {
        return Err(DashboardError::Csrf("the form carries no CSRF token".into()));
    };
    let same = expected.len() == sent.len()
        && expected.bytes().zip(sent.bytes()).fold(0_u8, |differ, (a, b)| differ | (a ^ b)) == 0;
    if same { Ok(()) } else { Err(DashboardError::Csrf("the form's CSRF token is not this session's".into())) }
}

/// A dashboard cookie: HttpOnly, SameSite=Strict, on /dashboard, for
/// `max_age` (the browser's session when None); Secure when browsers reach
/// the dashboard over HTTPS (`[dashboard] public_origin`).
pub fn cookie(settings: &DashboardSettings, name: &'static str, value: String, max_age: Option<std::time::Duration>) -> Cookie<'static> {
    let secure = settings.public_origin.as_deref().is_some_and(|origin| origin.starts_with("https://"));
    let mut cookie = Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path(COOKIE_PATH)
        .build();
    if let Some(max_age) = max_age {
        cookie.set_max_age(time::Duration::try_from(max_age).ok());
    }
    cookie
}

/// The removal of cookie `name`.
pub fn removal(settings: &DashboardSettings, name: &'static str) -> Cookie<'static> {
    let mut cookie = cookie(settings, name, String::new(), None);
    cookie.make_removal();
    cookie
}
