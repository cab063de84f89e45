//! What the end-to-end tests stand on: the LMS stand-in (an external system
//! the enrollment and entitlement modules call), the gift-card and
//! subscription stand-ins (the services the JavaScript and Python example
//! modules call), a server that breaks HTTP
//! on purpose, the module artifacts, a
//! PostgreSQL schema per test, and `fulfillment-host` as a real process.

pub mod artifacts;
pub mod broken_server;
pub mod catalog;
pub mod digital;
pub mod host_process;
pub mod lms;
pub mod postgres;
