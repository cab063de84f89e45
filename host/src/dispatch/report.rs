//! What a dispatch did: for the attempt log, `run-module` and tracing.

use std::time::Duration;

use crate::model::{LineId, LineStatus};

/// One line's attempt in one dispatch, for the attempt log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attempt {
    pub line_id: LineId,
    /// The module that claimed the line; None when none did.
    pub module: Option<String>,
    pub status: LineStatus,
    /// The failure message or completion note.
    pub message: Option<String>,
    /// How long the module's call took (all its lines share it).
    #[serde(rename = "elapsed_ms", serialize_with = "serialize_millis")]
    pub elapsed: Duration,
}

fn serialize_millis<S: serde::Serializer>(elapsed: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(elapsed.as_secs_f64() * 1000.0)
}

/// One call into a module, timed: a module's `supports-line` calls for an
/// order count as one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModuleCall {
    pub module: String,
    /// "supports-lines" (1.0: "supports-line") or "fulfill-product".
    pub call: &'static str,
    /// How many lines the call was about.
    pub lines: usize,
    #[serde(rename = "elapsed_ms", serialize_with = "serialize_millis")]
    pub elapsed: Duration,
    /// The fault, when the module trapped.
    pub fault: Option<String>,
}

/// What one dispatch did, line by line and call by call.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DispatchReport {
    /// In the order of the order's lines.
    pub attempts: Vec<Attempt>,
    /// In the order they were made (fulfill calls run concurrently).
    pub calls: Vec<ModuleCall>,
}
