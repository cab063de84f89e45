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
}

impl Default for DashboardSettings {
    fn default() -> DashboardSettings {
        DashboardSettings {
            session_minutes: NonZeroU64::new(8 * 60).unwrap_or(NonZeroU64::MIN),
            open_too_long_minutes: NonZeroU64::new(15).unwrap_or(NonZeroU64::MIN),
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
