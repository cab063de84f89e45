//! The WebAssembly side: one engine, the loaded modules, and calls into them.
//!
//! Start at [`Runtime::load`]: it compiles every enabled module of the
//! settings once (or loads it from the on-disk [`CompileCache`]), checks
//! that it implements the `fulfillment-module` world, pre-links it against
//! the host's imports and asks it to `describe` itself.
//! A [`ModuleSession`] is one module's fresh `Store` and instance for one
//! order: no state survives from one order to the next.
//!
//! What a module can reach is decided here: `host/` holds the one file per
//! imported WIT interface (log, config, http), and WASI is linked with nothing
//! granted.

mod bindings;
mod breaker;
mod compile_cache;
mod convert;
mod engine;
mod fault;
mod host;
mod limiter;
mod load_error;
mod meter;
mod module;
#[cfg(feature = "native-baseline")]
mod native;
mod session;
mod state;
mod stats;
mod version;

pub use breaker::{Admission, BreakerView, CallPass, CircuitBreaker, CircuitState, LineHealth};
pub use compile_cache::{CacheDirError, CompileCache, ComponentOrigin};
pub use engine::{DisabledModule, ModuleEngine, Runtime};
pub use fault::{FaultCause, FaultKind, ModuleFault};
pub use host::CredentialSummary;
pub use meter::TICK;
pub use load_error::LoadError;
pub use module::{LoadedModule, ModuleInfo, WILDCARD_PRODUCT_TYPE};
pub use session::{LineResult, ModuleSession, RevokeResult};
pub use version::{ContractVersion, VersionError};
pub use stats::{CALL_SECONDS_BUCKETS, CallStats, FunctionSnapshot, ModuleFunction, ModuleStats};
