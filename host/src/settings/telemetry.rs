//! What the host tells its operators: `[metrics]` (who may read `GET
//! /metrics`) and `[logging]` (the log's format).

use serde::Deserialize;

use super::Sha256Digest;

/// `[metrics]`: who may read `GET /metrics` besides an admin API token
/// (which always may).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Hex SHA-256 of a scrape token (`Authorization: Bearer <token>`):
    /// it may read the metrics and nothing else, so a Prometheus server
    /// does not need an admin token.
    pub token_sha256: Option<Sha256Digest>,
    /// Anyone may read the metrics, without a token (for a host whose port
    /// only the monitoring network reaches).
    pub public: bool,
}

/// `[logging]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSettings {
    /// `text` (for people) or `json` (one JSON object a line, for a log
    /// collector); `--log-format` overrides it.
    pub format: LogFormat,
}

/// The log's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object a line, with the event's and its spans' fields
    /// (`order`, `module`, ...) at the top level.
    Json,
}
