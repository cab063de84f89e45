//! The order data the host works on: orders, lines, money and statuses.
//!
//! These types are the host's own; `runtime` converts them to and from the
//! WIT types at the module boundary, and later the storage layer maps them to
//! rows. Status strings are the reference's (Open edX), kept to the letter.

mod document;
mod money;
mod order;
mod refund;
mod status;

pub use document::{OrderDocument, OrderDocumentError};
pub use money::{Currency, Money, MoneyError};
pub use order::{Address, Line, LineId, NoteKind, Order, OrderNote, Product, Shipping, User};
pub use refund::{RefundLineStatus, RefundStatus};
pub use status::{LineStatus, OrderStatus, TransitionError};
