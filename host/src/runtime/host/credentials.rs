//! The credentials the host adds to a module's HTTP requests
//! (`[modules.credentials]`): a fixed header, a bearer token, or an OAuth2
//! client-credentials token fetched once, kept for every order of the module
//! and replaced before it expires. The module never sees them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use tokio::sync::Mutex;

use crate::settings::{AllowedHost, CredentialSettings, Secret};

/// The most of a token endpoint's answer the host reads.
const TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// A token whose answer has no `expires_in` is kept this long.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// Why the host could not get a credential for a request; nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The token endpoint could not be reached or did not answer in time.
    #[error("the token endpoint {url} could not be reached: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The token endpoint refused the client (400, 401, 403): the settings
    /// are wrong.
    #[error("the token endpoint {url} refused the client credentials: {status} {body}")]
    Refused { url: String, status: u16, body: String },
    /// The token endpoint failed (5xx, 408, 429) or answered something that
    /// is not a token.
    #[error("the token endpoint {url} failed: {message}")]
    Failed { url: String, message: String },
    /// The last fetch failed so, within [`RETRY_AFTER_FAILURE`]: the host
    /// does not ask again before then.
    #[error(transparent)]
    Recent(Arc<CredentialError>),
}

/// How long a failed token fetch answers for the requests that wait on it
/// (or come right after), so that a dead token endpoint costs one time-out,
/// not one per order.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// The header one destination gets.
pub enum Credential {
    /// Always the same header (`header` and `bearer`).
    Fixed { name: HeaderName, value: HeaderValue },
    /// Boxed: the client and its cache are much larger than a header.
    OAuth2(Box<OAuth2Client>),
}

impl Credential {
    /// The credential of `settings`, whose secrets were read when the
    /// settings were loaded.
    pub fn from_settings(settings: &CredentialSettings) -> Result<Credential, String> {
        let secret = |source: &crate::settings::SecretSource| {
            source
                .secret()
                .cloned()
                .ok_or_else(|| format!("the secret ({source:?}) was not read when the settings were loaded"))
        };
        Ok(match settings {
            CredentialSettings::Header { header, secret: source } => Credential::Fixed {
                name: header.header_name().clone(),
                value: sensitive(secret(source)?.expose())?,
            },
            CredentialSettings::Bearer { secret: source } => Credential::Fixed {
                name: reqwest::header::AUTHORIZATION,
                value: sensitive(&format!("Bearer {}", secret(source)?.expose()))?,
            },
            CredentialSettings::OAuth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                token_type,
                scope,
                refresh_before_ms,
            } => Credential::OAuth2(Box::new(OAuth2Client {
                token_url: token_url.url().clone(),
                client_id: client_id.clone(),
                client_secret: secret(client_secret)?,
                token_type: token_type.clone(),
                scope: scope.clone(),
                refresh_before: Duration::from_millis(*refresh_before_ms),
                cached: Mutex::new(TokenState::None),
            })),
        })
    }

    /// The header to add to a request, fetching a token first if needed.
    pub async fn header(&self, client: &reqwest::Client, timeout: Duration) -> Result<(HeaderName, HeaderValue), CredentialError> {
        match self {
            Credential::Fixed { name, value } => Ok((name.clone(), value.clone())),
            Credential::OAuth2(oauth) => Ok((reqwest::header::AUTHORIZATION, oauth.header(client, timeout).await?)),
        }
    }

    /// Whether a 401 to a request that carried `sent` should be retried once
    /// with a new token (only OAuth2 tokens can be renewed); forgets `sent`.
    pub async fn rejected(&self, sent: &HeaderValue) -> bool {
        match self {
            Credential::Fixed { .. } => false,
            Credential::OAuth2(oauth) => {
                oauth.forget(sent).await;
                true
            }
        }
    }
}

/// A header value that the HTTP stack will not print.
fn sensitive(value: &str) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::from_str(value).map_err(|_| "the secret is not a valid header value".to_string())?;
    value.set_sensitive(true);
    Ok(value)
}

/// The credentials of one module: at most one per destination.
#[derive(Default)]
pub struct Credentials {
    entries: Vec<Entry>,
}

struct Entry {
    destination: AllowedHost,
    credential: Credential,
    /// What it is, as settings.toml says it (for people).
    kind: String,
}

/// What `modules` and `GET /modules` show of a credential: where it is
/// sent and how, never its value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CredentialSummary {
    /// The destination of `allowed_hosts` it is sent to.
    pub destination: String,
    /// "header X-Edx-Api-Key", "bearer" or "oauth2-client-credentials".
    pub kind: String,
}

impl Credentials {
    pub fn from_settings<'a>(
        settings: impl IntoIterator<Item = (&'a AllowedHost, &'a CredentialSettings)>,
    ) -> Result<Credentials, String> {
        let entries = settings
            .into_iter()
            .map(|(destination, settings)| {
                let credential =
                    Credential::from_settings(settings).map_err(|why| format!("credentials for {destination}: {why}"))?;
                Ok(Entry {
                    destination: destination.clone(),
                    credential,
                    kind: settings.describe(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Credentials { entries })
    }

    /// The credential for a request to `url`, if the settings give one.
    pub fn for_url(&self, url: &reqwest::Url) -> Option<&Credential> {
        self.entries
            .iter()
            .find(|entry| entry.destination.allows(url))
            .map(|entry| &entry.credential)
    }

    /// Each destination and the kind of its credential.
    pub fn summary(&self) -> Vec<CredentialSummary> {
        self.entries
            .iter()
            .map(|entry| CredentialSummary {
                destination: entry.destination.to_string(),
                kind: entry.kind.clone(),
            })
            .collect()
    }
}

/// Names the destinations and kinds, never a value.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.summary()).finish()
    }
}

/// An OAuth2 client-credentials grant with its cached token.
pub struct OAuth2Client {
    token_url: reqwest::Url,
    client_id: String,
    client_secret: Secret,
    token_type: Option<String>,
    scope: Option<String>,
    refresh_before: Duration,
    /// The token in use (or the last failure); the lock also makes
    /// concurrent orders wait for one fetch instead of each fetching its own.
    cached: Mutex<TokenState>,
}

#[derive(Default)]
enum TokenState {
    #[default]
    None,
    Token(CachedToken),
    /// The last fetch failed; requests until `until` get this error.
    Failed { error: Arc<CredentialError>, until: Instant },
}

struct CachedToken {
    header: HeaderValue,
    /// When to fetch a new one: `refresh_before` ahead of its expiry.
    replace_at: Instant,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl OAuth2Client {
    async fn header(&self, client: &reqwest::Client, timeout: Duration) -> Result<HeaderValue, CredentialError> {
        let mut cached = self.cached.lock().await;
        match &*cached {
            TokenState::Token(token) if Instant::now() < token.replace_at => return Ok(token.header.clone()),
            TokenState::Failed { error, until } if Instant::now() < *until => {
                return Err(CredentialError::Recent(error.clone()));
            }
            _ => {}
        }
        match self.fetch(client, timeout).await {
            Ok(token) => {
                let header = token.header.clone();
                *cached = TokenState::Token(token);
                Ok(header)
            }
            Err(error) => {
                let error = Arc::new(error);
                *cached = TokenState::Failed {
                    error: error.clone(),
                    until: Instant::now() + RETRY_AFTER_FAILURE,
                };
                Err(CredentialError::Recent(error))
            }
        }
    }

    /// Drops the cached token if it is still `sent` (another order may have
    /// replaced it meanwhile).
    async fn forget(&self, sent: &HeaderValue) {
        let mut cached = self.cached.lock().await;
        if matches!(&*cached, TokenState::Token(token) if token.header == sent) {
            *cached = TokenState::None;
        }
    }

    async fn fetch(&self, client: &reqwest::Client, timeout: Duration) -> Result<CachedToken, CredentialError> {
        let url = self.token_url.to_string();
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        if let Some(token_type) = &self.token_type {
            form.push(("token_type", token_type));
        }
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let started = Instant::now();
        let transport = |source| CredentialError::Transport { url: url.clone(), source };
        let mut response = client
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .timeout(timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > TOKEN_RESPONSE_BYTES {
                return Err(CredentialError::Failed {
                    url,
                    message: format!("the answer is larger than {TOKEN_RESPONSE_BYTES} bytes"),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&bytes);
        if matches!(status.as_u16(), 400 | 401 | 403) {
            return Err(CredentialError::Refused {
                url,
                status: status.as_u16(),
                body: crate::text::escape_control(text.chars().take(300).collect::<String>().trim()).into_owned(),
            });
        }
        if !status.is_success() {
            return Err(CredentialError::Failed { url, message: format!("it answered {status}") });
        }
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|error| CredentialError::Failed {
            url: url.clone(),
            message: format!("the answer is not a token ({error})"),
        })?;
        let scheme = match answer.token_type.as_deref() {
            None => "Bearer".to_string(),
            Some(kind) if kind.eq_ignore_ascii_case("bearer") => "Bearer".to_string(),
            Some(kind) if kind.eq_ignore_ascii_case("jwt") => "JWT".to_string(),
            Some(kind) => kind.to_string(),
        };
        let header = sensitive(&format!("{scheme} {}", answer.access_token)).map_err(|why| CredentialError::Failed {
            url: url.clone(),
            message: format!("the access token cannot be sent: {why}"),
        })?;
        let lifetime = answer.expires_in.map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        if lifetime <= self.refresh_before {
            tracing::warn!(
                token_url = %url,
                expires_in_s = lifetime.as_secs(),
                refresh_before_ms = self.refresh_before.as_millis() as u64,
                "the token endpoint gives tokens that expire within refresh_before_ms: a new token is fetched for every request"
            );
        }
        tracing::info!(token_url = %url, expires_in_s = lifetime.as_secs(), elapsed_ms = started.elapsed().as_millis() as u64, "fetched an OAuth2 access token");
        Ok(CachedToken {
            header,
            replace_at: started + lifetime.saturating_sub(self.refresh_before),
        })
    }
}
