//! What the modules that call the edX LMS share: their config and the
//! reference's note for an error answer.

use crate::{Failure, FailureKind, JsonResponse, config, failure, required_config};

/// The LMS settings of a module's `config` table: `lms_url` (required),
/// `timeout_ms` (optional), and the legacy `api_key`.
///
/// The LMS's credentials belong in the host's settings
/// (`[modules.credentials."<lms>"]`): the host adds them to each request and
/// the module never sees them. A module still reads `api_key` from its
/// config and sends it as `X-Edx-Api-Key` when it is set, for settings
/// written before the host held credentials; the host's credential, when
/// there is one, replaces it.
#[derive(Debug, Clone)]
pub struct LmsConfig {
    /// Without a trailing slash.
    pub base_url: String,
    /// The legacy `api_key`, sent as `X-Edx-Api-Key`.
    pub api_key: Option<String>,
    /// Below the host's `http_timeout_ms`; None = the host's.
    pub timeout_ms: Option<u32>,
}

impl LmsConfig {
    /// Reads the config of `module`, or a configuration failure that names
    /// the key that is missing or wrong.
    pub fn from_config(module: &str) -> Result<LmsConfig, Failure> {
        let base_url = required_config(module, "lms_url")?.trim_end_matches('/').to_string();
        let api_key = config::get("api_key").filter(|key| !key.trim().is_empty());
        let timeout_ms = match config::get("timeout_ms") {
            None => None,
            Some(text) => Some(text.parse().map_err(|_| {
                failure(
                    FailureKind::Configuration,
                    format!("module {module}: config key `timeout_ms` must be a whole number of milliseconds, not `{text}`"),
                )
            })?),
        };
        Ok(LmsConfig {
            base_url,
            api_key,
            timeout_ms,
        })
    }

    /// The headers of a request: the legacy API key, if configured, and
    /// `extra`.
    pub fn headers<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut headers: Vec<(&str, &str)> = self.api_key.iter().map(|key| ("X-Edx-Api-Key", key.as_str())).collect();
        headers.extend_from_slice(extra);
        headers
    }
}

/// The failure for an LMS answer other than success, with the LMS's
/// `message` (or DRF's `detail`) or "(No detail provided.)" as the reference
/// notes it: a server error, but for 401. A 401 that reaches the module means
/// the LMS has no credential it accepts (the host renews an expired token
/// itself), which is the reference's "no API key configured": a
/// configuration error, which is not retried until the settings change.
pub fn error_answer(order_number: &str, subject: &str, response: &JsonResponse) -> Failure {
    let kind = if response.status == 401 {
        FailureKind::Configuration
    } else {
        FailureKind::Server
    };
    let mut message = format!(
        "Fulfillment of order {order_number} failed: the LMS answered {} for {subject}: {}",
        response.status,
        response.message().unwrap_or_else(|| NO_DETAIL.to_string())
    );
    if response.status == 401 {
        message.push_str(" (give the host the LMS's credentials in [modules.credentials])");
    }
    failure(kind, message)
}

/// The reference's text when an LMS error carries no message.
pub const NO_DETAIL: &str = "(No detail provided.)";
