//! End-to-end tests: real modules built from plugins/ and tests/fixtures/,
//! loaded by the real runtime, calling a real HTTP LMS stand-in on a
//! loopback port. One test binary, one link step.
//!
//! Run with `scripts/test` (it builds the modules first).

mod addresses;
mod api;
mod build_scripts;
mod harness;
mod jobs;
mod breaker;
mod browser;
mod caps;
mod chromium;
mod components;
mod contract;
mod credentials;
mod dashboard;
mod dispatch;
mod enrollment;
mod entitlement;
mod faults;
mod lanes;
mod logs;
mod metrics;
mod loading;
mod money;
mod payments;
mod refund_contract;
mod revocation;
mod scopes;
mod startup;
mod support;
mod transport;
mod versions;
