//! Asynchronous fulfillment: the workers that run the durable job queue.
//!
//! In async mode, placing an order writes a fulfillment job in the order's
//! transaction (see `orders`). Workers, tokio tasks in every `serve` process
//! and in `fulfillment-host worker`, claim due jobs with a lease, run one
//! attempt each through `OrderService::run_job` (orders -> dispatch ->
//! runtime, where the retry policy decides what comes next), and
//! renew the lease while the attempt runs. Any number of hosts can share
//! one PostgreSQL database: a claim skips the rows another host is
//! claiming, and a job whose host died is due again when its lease runs out.

mod worker;

pub use worker::{StopClaiming, Workers, run_workers_until};
