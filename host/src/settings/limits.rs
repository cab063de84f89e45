//! `[modules.limits]`, `[modules.circuit_breaker]` and `on_load_failure`:
//! how much one module may use, and what the host does when it misbehaves.
//!
//! Every limit has a default that is safe for an untrusted module, so an
//! operator who writes nothing still gets a bounded module. docs/security.md
//! explains each one; docs/configuration.md lists them.

use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// The most linear memory any module may be given: the pooling allocator
/// reserves this much address space per memory slot.
pub const MEMORY_CEILING_BYTES: u64 = 1024 * 1024 * 1024;
/// The least linear memory a module may be given: one WebAssembly page.
const MEMORY_FLOOR_BYTES: u64 = 64 * 1024;
/// The most elements any table of any module may have (the pooling
/// allocator reserves this many per table slot).
pub const TABLE_CEILING_ELEMENTS: u32 = 100_000;

/// What one module may use. Counted per call into the module (CPU, fuel,
/// wall time, output) or per order the module works on (memory, log bytes,
/// HTTP calls), and per module across orders (in-flight orders).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ModuleLimits {
    /// Guest execution time per call, in milliseconds (epoch interruption,
    /// 10 ms granularity). Time waiting on host HTTP is not counted.
    #[schema(value_type = u32)]
    pub cpu_ms: NonZeroU32,
    /// Optional deterministic budget of WebAssembly fuel per call (roughly
    /// one unit per instruction). Unset: no fuel metering at all.
    #[schema(value_type = Option<u64>)]
    pub fuel: Option<NonZeroU64>,
    /// The longest one call may take in wall time, in milliseconds, host
    /// waits (HTTP, sleeps) included; also the longest an order waits for
    /// one of the module's in-flight slots.
    #[schema(value_type = u32)]
    pub wall_ms: NonZeroU32,
    /// Linear memory per instance, in bytes (at most 1 GiB).
    #[serde(deserialize_with = "memory_bytes")]
    pub memory_bytes: u64,
    /// Elements per table (function pointers), per instance (at most 100,000).
    #[serde(deserialize_with = "table_elements")]
    pub table_elements: u32,
    /// Bytes of output one call may return: attribute names and values,
    /// notes and failure messages together.
    #[schema(value_type = u32)]
    pub output_bytes: NonZeroU32,
    /// Bytes of attributes (names and values) the module may keep on one
    /// line, what the line had before included. A line whose attributes
    /// would grow past it fails (`Fulfillment Server Error`) and nothing of
    /// the answer is stored.
    pub line_attributes_bytes: u32,
    /// Bytes of attributes the module may keep on all its lines of one
    /// order together; the line that would go past it fails the same way.
    pub order_attributes_bytes: u32,
    /// Bytes of one note or failure message of the module (and of a revoke
    /// reason) that are stored; the rest is cut, and the note says so.
    #[schema(value_type = u32)]
    pub note_bytes: NonZeroU32,
    /// Log bytes the module may write while working on one order (all its
    /// calls for that order together); the rest is dropped (and the host
    /// says so once).
    pub log_bytes: u32,
    /// Host HTTP calls the module may make while working on one order.
    pub http_calls: u32,
    /// The longest one HTTP call may take, from connecting to the last body
    /// byte, in milliseconds. A module may ask for less, never more.
    #[schema(value_type = u32)]
    pub http_timeout_ms: NonZeroU32,
    /// The largest request body the module may send, in bytes.
    pub http_request_bytes: u64,
    /// The largest response body the host reads for the module, in bytes.
    pub http_response_bytes: u64,
    /// Orders the module may work on at once (one instance each). Another
    /// order waits for a slot, up to `wall_ms`.
    #[schema(value_type = u32)]
    pub max_in_flight: NonZeroU32,
}

impl Default for ModuleLimits {
    fn default() -> ModuleLimits {
        ModuleLimits {
            cpu_ms: NonZeroU32::new(1_000).expect("nonzero"),
            fuel: None,
            wall_ms: NonZeroU32::new(60_000).expect("nonzero"),
            memory_bytes: 64 * 1024 * 1024,
            table_elements: 10_000,
            output_bytes: NonZeroU32::new(256 * 1024).expect("nonzero"),
            // A line of 1,000 enrollment codes keeps about 17 KiB.
            line_attributes_bytes: 64 * 1024,
            order_attributes_bytes: 256 * 1024,
            // As long as a module's log line (runtime/host/log.rs).
            note_bytes: NonZeroU32::new(4 * 1024).expect("not zero"),
            log_bytes: 64 * 1024,
            http_calls: 100,
            // The reference's ENROLLMENT_FULFILLMENT_TIMEOUT.
            http_timeout_ms: NonZeroU32::new(7_000).expect("nonzero"),
            http_request_bytes: 1024 * 1024,
            http_response_bytes: 1024 * 1024,
            max_in_flight: NonZeroU32::new(32).expect("nonzero"),
        }
    }
}

impl ModuleLimits {
    pub fn cpu(&self) -> Duration {
        Duration::from_millis(u64::from(self.cpu_ms.get()))
    }

    pub fn wall(&self) -> Duration {
        Duration::from_millis(u64::from(self.wall_ms.get()))
    }

    pub fn http_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.http_timeout_ms.get()))
    }
}

fn memory_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let bytes = u64::deserialize(deserializer)?;
    if (MEMORY_FLOOR_BYTES..=MEMORY_CEILING_BYTES).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(serde::de::Error::custom(format!(
            "memory_bytes = {bytes} is out of range: use {MEMORY_FLOOR_BYTES} (one page) to {MEMORY_CEILING_BYTES} (1 GiB)"
        )))
    }
}

fn table_elements<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let elements = u32::deserialize(deserializer)?;
    if (1..=TABLE_CEILING_ELEMENTS).contains(&elements) {
        Ok(elements)
    } else {
        Err(serde::de::Error::custom(format!(
            "table_elements = {elements} is out of range: use 1 to {TABLE_CEILING_ELEMENTS}"
        )))
    }
}

/// When to stop calling a module whose remote system is down.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreakerSettings {
    /// Lines failing with a network or timeout error in a row that open the
    /// circuit; 0 turns the breaker off.
    pub failures: u32,
    /// How long an open circuit stays open before one probe call, in
    /// milliseconds.
    pub cool_down_ms: u64,
}

impl Default for CircuitBreakerSettings {
    fn default() -> CircuitBreakerSettings {
        CircuitBreakerSettings {
            failures: 5,
            cool_down_ms: 30_000,
        }
    }
}

impl CircuitBreakerSettings {
    pub fn cool_down(&self) -> Duration {
        Duration::from_millis(self.cool_down_ms)
    }
}

/// What the host does when a module cannot be loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoadFailurePolicy {
    /// The host does not start (the safe default: nothing is half-configured).
    #[default]
    Stop,
    /// The host starts without the module, which shows as disabled with the
    /// reason; lines only it would have claimed are configuration errors.
    Disable,
}
