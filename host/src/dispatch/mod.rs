//! Dispatch: which module fulfills which line of an order, and what the
//! answers do to the statuses.
//!
//! The reference's algorithm ([`fulfill_order`]): the modules, in settings
//! order, each claim the lines they support among those not yet claimed
//! (first claim wins), each offered only the lines of the product types it
//! declared (its lane; `"*"` for all); each module's `fulfill-product` gets
//! its claimed lines once; lines nobody claimed are configuration errors; the
//! order is
//! `Complete` when every line is, else `Fulfillment Error`. Unlike the
//! reference, a module's fault fails only that module's lines, what a module
//! keeps on an order is capped (`caps`), and a retry sends only the lines
//! that are not `Complete`.

mod caps;
mod claim;
mod error;
mod fulfill;
mod report;
mod revoke;

pub use claim::{Claim, plan};
pub use error::DispatchError;
pub use fulfill::fulfill_order;
pub use report::{Attempt, DispatchReport, ModuleCall};
pub use revoke::revoke_line;
