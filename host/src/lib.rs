//! fulfillment-host: places orders and fulfills them through WebAssembly
//! component modules.
//!
//! The layers, each in its own module, with data flowing one way:
//! - [`settings`]: `settings.toml`, parsed and validated;
//! - [`model`]: orders, lines, money and statuses;
//! - [`dispatch`]: which module fulfills which line, and the status rules;
//! - [`runtime`]: the wasmtime engine, the loaded modules and the calls into
//!   them, with the host side of the WIT imports;
//! - [`storage`]: SQLite or PostgreSQL; [`payments`]: the processors;
//! - [`queue`]: the durable job queue (over `storage`);
//! - [`services`]: checkout, fulfillment, refunds, catalog, order reads and
//!   the job executor (use `dispatch`, `queue`, `storage`, `payments`);
//! - [`metrics`]: the Prometheus metrics of one host (recorded by
//!   `services` and `api`; reads `runtime`'s own per-module counters);
//! - [`jobs`]: the workers that run the queue (use `services`);
//! - [`api`]: the HTTP API (uses `services`); [`dashboard`]: the operator
//!   dashboard's pages, served beside it (uses `services`); [`app`]: all of
//!   it assembled;
//! - [`text`]: module-controlled text made safe for terminals and logs;
//!   [`logging`]: the log, as text or JSON lines.
//!
//! `dispatch` uses `runtime`; nothing below calls upward. The binary
//! (`main.rs`, `cli/`) is a thin shell over these.

pub mod api;
pub mod app;
pub mod dashboard;
pub mod dispatch;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod payments;
pub mod queue;
pub mod runtime;
pub mod services;
pub mod settings;
pub mod storage;
pub mod text;
