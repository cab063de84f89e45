//! `[dashboard]`: the operator dashboard's sessions and what it highlights.

use std::num::NonZeroU64;
use std::time::Duration;

use serde::Deserialize;

/// `[dashboard]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardSettings {
    /// How long a sign-in lasts, in minutes (it does not slide: staff sign
    /// in again after it).
    pub session_minutes: NonZeroU64,
    /// An order `Open` for longer than this many minutes stands out in the
    /// list, as a `Fulfillment Error` does: its fulfillment should have
    /// ended by then.
    pub open_too_long_minutes: NonZeroU64,
    /// The origin browsers reach the dashboard at (`https://ops.example.com`),
    /// when it is not the `Host` the server sees: behind a proxy. A form
    /// post whose `Origin` is not this one is refused (CSRF). Unset: the
    /// origin is `http://` and the request's `Host`.
    #[serde(deserialize_with = "origin")]
    pub public_origin: Option<String>,
}

/// `scheme://host[:port]`, without a path.
fn origin<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    let Some(text) = text else { return Ok(None) };
    let text = text.trim_end_matches('/').to_string();
    let valid = ["http://", "https://"]
        .iter()
        .any(|scheme| text.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty() && !rest.contains('/')));
    if !valid {
        return Err(serde::de::Error::custom(format!(
            "public_origin `{text}` is not an origin: scheme://host[:port], no path (https://ops.example.com)"
        )));
    }
    Ok(Some(text))
}

impl Default for DashboardSettings {
    fn default() -> DashboardSettings {
        DashboardSettings {
            session_minutes: NonZeroU64::new(8 * 60).unwrap_or(NonZeroU64::MIN),
            open_too_long_minutes: NonZeroU64::new(15).unwrap_or(NonZeroU64::MIN),
            public_origin: None,
        }
    }
}

impl DashboardSettings {
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_minutes.get().saturating_mul(60))
    }

    pub fn open_too_long(&self) -> Duration {
        Duration::from_secs(self.open_too_long_minutes.get().saturating_mul(60))
    }
}
