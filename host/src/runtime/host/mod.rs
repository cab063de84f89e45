//! The host side of each interface the modules import, one file each.

mod config;
mod credentials;
mod http;
mod log;

pub use config::ConfigCtx;
pub use credentials::CredentialSummary;
pub use http::{HttpCtx, HttpPolicy};
pub use log::LogCtx;
