//! How the LMS authenticates callers, as edx-platform does it:
//!
//! - `POST /oauth2/access_token` (django-oauth-toolkit with edX's
//!   `token_type=jwt`): client credentials in a form body give
//!   `{"access_token", "token_type": "JWT", "expires_in", "scope"}`; without
//!   `token_type=jwt` an opaque `Bearer` token. A wrong client is 401
//!   `{"error": "invalid_client"}`, another grant 400
//!   `{"error": "unsupported_grant_type"}`.
//! - The Enrollment API takes `X-Edx-Api-Key` (the LMS's EDX_API_KEY), a JWT
//!   (`Authorization: JWT <token>`) or an OAuth2 bearer token.
//! - The Entitlements API takes a JWT only (JwtAuthentication and session);
//!   an API key is 401 `{"detail": "Authentication credentials were not
//!   provided."}`.
//! - A JWT is HS256-signed with the LMS's key; a bad signature is 401
//!   "Error decoding signature.", an expired one 401 "Signature has expired.".

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// DRF's text when a request carries no usable credentials.
pub const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
/// The OAuth2 client the stand-in knows (the ecommerce worker's).
pub const CLIENT_ID: &str = "ecommerce-worker";
/// Its secret.
pub const CLIENT_SECRET: &str = "ecommerce-worker-secret";
/// The service user whose tokens the client gets: staff, as edX's
/// `ecommerce_worker` is.
pub const SERVICE_USER: &str = "ecommerce_worker";

/// Which credentials an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    /// The Enrollment API: API key, JWT or bearer token.
    ApiKeyOrToken,
    /// The Entitlements API: JWT only.
    JwtOnly,
}

/// Why a request is refused: the DRF `detail` of the 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub &'static str);

pub(super) fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}

/// A signed JWT for `username`, valid for `lifetime_s`.
pub(super) fn sign_jwt(key: &[u8], issuer: &str, username: &str, lifetime_s: u64) -> String {
    let issued = now_s();
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let payload = json!({
        "iss": issuer,
        "aud": "lms-key",
        "iat": issued,
        "exp": issued + lifetime_s,
        "preferred_username": username,
        "administrator": true,
        "scopes": ["read", "write", "email", "profile"],
        "version": "1.2.0",
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = URL_SAFE_NO_PAD.encode(signature(key, &signing_input));
    format!("{signing_input}.{signature}")
}

fn signature(key: &[u8], input: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The username of a valid JWT signed with `key`, or the refusal.
pub(super) fn verify_jwt(key: &[u8], token: &str) -> Result<String, Refusal> {
    let decoding = Refusal("Error decoding signature.");
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signed), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(decoding);
    };
    let given = URL_SAFE_NO_PAD.decode(signed).map_err(|_| decoding.clone())?;
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{header}.{payload}").as_bytes());
    mac.verify_slice(&given).map_err(|_| decoding.clone())?;
    let claims: Value = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(decoding.clone())?;
    let expires = claims.get("exp").and_then(Value::as_u64).ok_or(decoding.clone())?;
    if expires <= now_s() {
        return Err(Refusal("Signature has expired."));
    }
    claims
        .get("preferred_username")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or(decoding)
}
