//! `[modules.credentials."<destination>"]`: how the host authenticates the
//! requests it sends for a module to one of its `allowed_hosts`.
//!
//! Credentials belong to the host, not to modules: the host adds the header
//! to each request after checking the destination, so a module never sees a
//! secret, and neither do logs or the API. Secret values come from an
//! environment variable or a file (relative to the settings file), read once
//! when the settings are loaded; they are never written in settings.toml.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One destination's credential, as settings.toml writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CredentialSettings {
    /// A fixed header on every request, such as the LMS's
    /// `X-Edx-Api-Key: <secret>`.
    Header {
        /// The header's name.
        header: HeaderName,
        /// Its value.
        secret: SecretSource,
    },
    /// `Authorization: Bearer <secret>`.
    Bearer { secret: SecretSource },
    /// OAuth2 client credentials (RFC 6749 4.4): the host asks `token_url`
    /// for an access token with `grant_type=client_credentials`, sends it as
    /// `Authorization: <token_type> <access_token>`, keeps it for every order
    /// until `refresh_before_ms` before it expires, and fetches a new one
    /// when the destination answers 401.
    #[serde(rename = "oauth2-client-credentials")]
    OAuth2ClientCredentials {
        /// Where tokens come from (the LMS's `/oauth2/access_token`).
        token_url: TokenUrl,
        client_id: String,
        client_secret: SecretSource,
        /// Sent as the form field `token_type` (edX: `jwt`); the header's
        /// scheme is the `token_type` of the answer.
        #[serde(default)]
        token_type: Option<String>,
        /// Sent as the form field `scope`, when set.
        #[serde(default)]
        scope: Option<String>,
        /// A token is replaced this long before it expires (default 60 s).
        #[serde(default = "default_refresh_before_ms")]
        refresh_before_ms: u64,
    },
}

/// 60 s: a token is never sent in its last minute, so that a slow request
/// does not arrive after it expired.
fn default_refresh_before_ms() -> u64 {
    60_000
}

impl CredentialSettings {
    /// "header X-Edx-Api-Key", "bearer", "oauth2-client-credentials": what
    /// `modules` and `GET /modules` show (never a value).
    pub fn describe(&self) -> String {
        match self {
            CredentialSettings::Header { header, .. } => format!("header {header}"),
            CredentialSettings::Bearer { .. } => "bearer".to_string(),
            CredentialSettings::OAuth2ClientCredentials { .. } => "oauth2-client-credentials".to_string(),
        }
    }

    /// Reads every secret of the credential (relative files against `base`).
    pub(super) fn resolve(&mut self, base: &Path) -> Result<(), String> {
        match self {
            CredentialSettings::Header { secret, .. } | CredentialSettings::Bearer { secret } => {
                secret.resolve(base, "secret")
            }
            CredentialSettings::OAuth2ClientCredentials { client_secret, .. } => {
                client_secret.resolve(base, "client_secret")
            }
        }
    }
}

/// Where a secret's value comes from: `{ env = "NAME" }` or
/// `{ file = "path" }` (one line; a final newline is dropped).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    file: Option<PathBuf>,
    /// The value, once [`Settings::load`](super::Settings::load) read it.
    #[serde(skip)]
    value: Option<Secret>,
}

impl SecretSource {
    /// The value read when the settings were loaded.
    pub fn secret(&self) -> Option<&Secret> {
        self.value.as_ref()
    }

    fn resolve(&mut self, base: &Path, key: &str) -> Result<(), String> {
        let value = match (&self.env, &self.file) {
            (Some(name), None) => std::env::var(name)
                .map_err(|_| format!("{key}: environment variable `{name}` is not set (or not UTF-8)"))?,
            (None, Some(file)) => {
                let path = base.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|error| format!("{key}: cannot read secret file {}: {error}", path.display()))?;
                text.strip_suffix('\n')
                    .map(|line| line.strip_suffix('\r').unwrap_or(line))
                    .unwrap_or(&text)
                    .to_string()
            }
            _ => return Err(format!("{key}: write exactly one of `{{ env = \"NAME\" }}` or `{{ file = \"path\" }}`")),
        };
        if value.is_empty() {
            return Err(format!("{key}: the secret is empty"));
        }
        if value.chars().any(|c| c.is_control()) {
            return Err(format!("{key}: the secret contains a control character (a line break?)"));
        }
        self.value = Some(Secret(value));
        Ok(())
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.env, &self.file) {
            (Some(name), _) => write!(f, "env {name}"),
            (_, Some(file)) => write!(f, "file {}", file.display()),
            _ => f.write_str("unset"),
        }
    }
}

/// A secret value. It has no `Display` and its `Debug` hides it, so it
/// cannot end up in a log line or an error by accident.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An HTTP header name, checked when the settings are read; it keeps the
/// case it was written in, for people.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HeaderName {
    written: String,
    name: reqwest::header::HeaderName,
}

impl HeaderName {
    /// The name as the HTTP client sends it.
    pub fn header_name(&self) -> &reqwest::header::HeaderName {
        &self.name
    }
}

impl TryFrom<String> for HeaderName {
    type Error = String;

    fn try_from(written: String) -> Result<Self, Self::Error> {
        match reqwest::header::HeaderName::from_bytes(written.as_bytes()) {
            Ok(name) => Ok(HeaderName { written, name }),
            Err(_) => Err(format!("invalid header name `{written}`")),
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// The token endpoint: an absolute http or https URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TokenUrl(reqwest::Url);

impl TokenUrl {
    pub fn url(&self) -> &reqwest::Url {
        &self.0
    }
}

impl TryFrom<String> for TokenUrl {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let url = reqwest::Url::parse(&text).map_err(|error| format!("invalid token_url `{text}`: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("invalid token_url `{text}`: the scheme must be http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("invalid token_url `{text}`: credentials belong in client_id and client_secret"));
        }
        Ok(TokenUrl(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<CredentialSettings, String> {
        toml::from_str(toml).map_err(|error| error.to_string())
    }

    #[test]
    fn the_three_kinds_parse_and_unknown_keys_are_refused() {
        let header = parse("kind = \"header\"\nheader = \"X-Edx-Api-Key\"\nsecret = { env = \"K\" }").expect("header");
        assert_eq!(header.describe(), "header X-Edx-Api-Key");
        let oauth = parse(
            "kind = \"oauth2-client-credentials\"\ntoken_url = \"http://lms/oauth2/access_token\"\n\
             client_id = \"ecommerce\"\nclient_secret = { file = \"secret\" }\ntoken_type = \"jwt\"",
        )
        .expect("oauth2");
        assert_eq!(oauth.describe(), "oauth2-client-credentials");
        let unknown = parse("kind = \"bearer\"\nsecret = { env = \"K\" }\nvalue = \"inline\"").expect_err("unknown key");
        assert!(unknown.contains("value"), "{unknown}");
        let kind = parse("kind = \"basic\"\nsecret = { env = \"K\" }").expect_err("unknown kind");
        assert!(kind.contains("basic"), "{kind}");
        let bad_header = parse("kind = \"header\"\nheader = \"X Key\"\nsecret = { env = \"K\" }").expect_err("header");
        assert!(bad_header.contains("invalid header name `X Key`"), "{bad_header}");
    }

    #[test]
    fn a_secret_comes_from_a_file_and_never_shows_in_debug() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("key"), "s3cret-value\n").expect("write");
        let mut credential = parse("kind = \"bearer\"\nsecret = { file = \"key\" }").expect("bearer");
        credential.resolve(dir.path()).expect("resolves");
        let CredentialSettings::Bearer { secret } = &credential else { panic!("bearer") };
        assert_eq!(secret.secret().map(Secret::expose), Some("s3cret-value"));
        assert!(!format!("{credential:?}").contains("s3cret"), "{credential:?}");
    }

    #[test]
    fn a_missing_or_ambiguous_secret_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut missing = parse("kind = \"bearer\"\nsecret = { file = \"nope\" }").expect("bearer");
        let error = missing.resolve(dir.path()).expect_err("missing file");
        assert!(error.starts_with("secret: cannot read secret file ") && error.contains("nope"), "{error}");
        let mut both = parse("kind = \"bearer\"\nsecret = { file = \"a\", env = \"B\" }").expect("bearer");
        let error = both.resolve(dir.path()).expect_err("both");
        assert!(error.contains("exactly one"), "{error}");
        let mut unset = parse("kind = \"bearer\"\nsecret = { env = \"FULFILLMENT_TEST_SURELY_UNSET_VARIABLE\" }").expect("bearer");
        let error = unset.resolve(dir.path()).expect_err("unset");
        assert!(error.contains("`FULFILLMENT_TEST_SURELY_UNSET_VARIABLE` is not set"), "{error}");
    }
}
