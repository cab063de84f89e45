//! Bearer tokens: each `[[api.tokens]]` entry is a token's SHA-256, a role,
//! and which orders it may read (`orders`, `user`): its [`OrderScope`].

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use sha2::Digest;

use super::{ApiError, AppState};
use crate::services::OrderScope;
use crate::settings::{OrderAccess, Role, Sha256Digest, TokenSettings};

/// The caller, from a valid `Authorization: Bearer` header.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's `name`: recorded on the orders it places.
    pub name: String,
    pub role: Role,
    /// The orders it may see; the others are not found.
    pub scope: OrderScope,
}

impl Caller {
    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Checkout => Err(ApiError::forbidden("admin")),
        }
    }
}

/// A caller whose token has the `admin` role: 401 or 403 before anything
/// else of the request (its path, query or body) is read.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl<S> FromRequestParts<S> for Admin
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Admin(caller))
    }
}

/// Finds the token among `tokens` by its digest.
pub fn authenticate(tokens: &[TokenSettings], token: &str) -> Option<Caller> {
    caller_by_digest(tokens, &Sha256Digest::of(token.as_bytes()))
}

/// The caller of the token whose SHA-256 is `digest`, if `tokens` has it.
pub fn caller_by_digest(tokens: &[TokenSettings], digest: &Sha256Digest) -> Option<Caller> {
    tokens.iter().find(|entry| entry.sha256 == *digest).map(|entry| Caller {
        name: entry.name.clone(),
        role: entry.role,
        scope: OrderScope {
            placed_by: (entry.order_access() == OrderAccess::Own).then(|| entry.name.clone()),
            username: entry.user.clone(),
        },
    })
}

/// The SHA-256 of `token`, as settings.toml wants it.
pub fn token_digest(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let token = header.strip_prefix("Bearer ").ok_or_else(ApiError::unauthorized)?;
        authenticate(&state.tokens, token.trim()).ok_or_else(ApiError::unauthorized)
    }
}
