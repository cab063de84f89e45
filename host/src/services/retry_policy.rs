//! The retry policy: which failures are worth another attempt, and when.

use std::time::Duration;

use crate::model::{LineStatus, Order};
use crate::settings::FulfillmentSettings;

/// The reference's policy by default: up to 11 retries, the n-th after
/// `2^(n-1)` seconds, with some jitter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub max: Duration,
    pub jitter_percent: u32,
}

/// What to do with a job after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Every line is `Complete`.
    Done,
    /// Some line may succeed later: try again after the delay.
    RetryIn(Duration),
    /// What failed cannot be fixed by trying again (configuration errors).
    Failed,
    /// Retryable lines are left, but the retries are used up.
    GiveUp,
}

impl RetryPolicy {
    pub fn from_settings(settings: &FulfillmentSettings) -> RetryPolicy {
        RetryPolicy {
            max_retries: settings.max_retries,
            base: Duration::from_millis(settings.backoff_base_ms),
            max: Duration::from_millis(settings.backoff_max_ms),
            jitter_percent: settings.jitter_percent,
        }
    }

    /// The wait before retry `retry` (1 for the first retry), without
    /// jitter: `base * 2^(retry-1)`, at most `max`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).map_or(self.max, |delay| delay.min(self.max))
    }

    /// The backoff moved by up to `jitter_percent` either way, at random.
    pub fn jittered(&self, retry: u32) -> Duration {
        let delay = self.backoff(retry);
        if self.jitter_percent == 0 {
            return delay;
        }
        let spread = delay.as_millis() as u64 * u64::from(self.jitter_percent) / 100;
        let offset = fastrand::u64(0..=spread * 2);
        Duration::from_millis((delay.as_millis() as u64 + offset).saturating_sub(spread))
    }

    /// After attempt number `attempts` (1 for the first) left `order` as it
    /// is: what next. Only network, timeout and server errors are retried.
    pub fn next(&self, order: &Order, attempts: u32) -> Next {
        let statuses = || order.lines.iter().map(|line| line.status);
        if statuses().all(|status| status == LineStatus::Complete) {
            return Next::Done;
        }
        let retryable = statuses().any(|status| {
            matches!(status, LineStatus::NetworkError | LineStatus::TimeoutError | LineStatus::ServerError)
        });
        if !retryable {
            return Next::Failed;
        }
        let retries_made = attempts.saturating_sub(1);
        if retries_made >= self.max_retries {
            return Next::GiveUp;
        }
        Next::RetryIn(self.jittered(retries_made + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter_percent: u32) -> RetryPolicy {
        RetryPolicy::from_settings(&FulfillmentSettings {
            jitter_percent,
            ..FulfillmentSettings::default()
        })
    }

    #[test]
    fn the_default_backoff_is_the_references_two_to_the_n_seconds() {
        let policy = policy(0);
        let waits: Vec<u64> = (1..=11).map(|retry| policy.backoff(retry).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]);
        assert_eq!(policy.max_retries, 11);
        assert_eq!(policy.backoff(40), Duration::from_secs(3600), "capped at backoff_max_ms");
    }

    #[test]
    fn jitter_stays_within_its_percentage() {
        let policy = policy(10);
        for _ in 0..1000 {
            let wait = policy.jittered(4).as_millis();
            assert!((7_200..=8_800).contains(&wait), "{wait}");
        }
    }
}
