//! The workers that run the durable job queue, in every `serve` process
//! (both fulfillment modes) and in `fulfillment-host worker`.
//!
//! Every piece of module or money work is a job written in the transaction
//! that records its intent (see `services` and `queue`): completing a paid
//! checkout, fulfilling an order, crediting and revoking a refund. Workers
//! claim due jobs with a lease and hand them to the `Executor`, which
//! renews the lease while the job runs. Any number of hosts can share one
//! PostgreSQL database: a claim skips the rows another host is claiming,
//! and a job whose host died is due again when its lease runs out.

mod worker;

pub use worker::{StopClaiming, Workers, run_workers_until};
