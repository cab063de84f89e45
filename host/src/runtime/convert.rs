//! The module boundary: the host's order to each contract version's WIT
//! records, and each version's answers to host results.
//!
//! The records that 1.0 and 1.1 share (money, attributes, a line, the
//! outcomes) have the same fields in both, but they are distinct Rust types
//! (one `bindgen!` per version): [`shared_records!`] writes their conversions
//! once for both. The order differs: each version has its own `order`.

use std::collections::BTreeMap;

use super::session::{LineResult, RevokeResult};
use crate::model::{LineId, LineStatus, Order};

/// The conversions of the records every 1.x version shares, for the version
/// whose types are `$wit`.
macro_rules! shared_records {
    ($wit:path) => {
        use $wit as wit;

        fn attributes(map: &BTreeMap<String, String>) -> Vec<wit::Attribute> {
            map.iter()
                .map(|(name, value)| wit::Attribute {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect()
        }

        fn money(amount: crate::model::Money) -> wit::Money {
            wit::Money {
                minor_units: amount.minor_units,
                currency: amount.currency.code().to_string(),
            }
        }

        fn user(order: &Order) -> wit::User {
            wit::User {
                username: order.user.username.clone(),
                email: order.user.email.clone(),
            }
        }

        /// A line as a module sees it.
        pub fn line(order: &Order, line: &crate::model::Line) -> wit::Line {
            wit::Line {
                id: line.id,
                product: wit::Product {
                    sku: line.product.sku.clone(),
                    product_type: line.product.product_type.clone(),
                    title: line.product.title.clone(),
                    attributes: attributes(&line.product.attributes),
                },
                quantity: line.quantity,
                unit_price: money(line.unit_price),
                idempotency_key: line.idempotency_key(&order.number),
                stored_attributes: attributes(&line.attributes),
            }
        }

        /// Attributes from a module, as a map (later names win).
        fn attribute_map(attributes: Vec<wit::Attribute>) -> BTreeMap<String, String> {
            attributes
                .into_iter()
                .map(|attribute| (attribute.name, attribute.value))
                .collect()
        }

        /// What a module answered for a line, as the host keeps it.
        pub fn line_result(outcome: wit::LineOutcome) -> (LineId, LineResult) {
            let result = match outcome.outcome {
                wit::Outcome::Complete(completion) => LineResult::Complete {
                    attributes: attribute_map(completion.attributes),
                    note: completion.note,
                },
                wit::Outcome::Failed(failure) => LineResult::Failed {
                    status: match failure.kind {
                        wit::FailureKind::Configuration => LineStatus::ConfigurationError,
                        wit::FailureKind::Network => LineStatus::NetworkError,
                        wit::FailureKind::Timeout => LineStatus::TimeoutError,
                        wit::FailureKind::Server => LineStatus::ServerError,
                    },
                    message: failure.message,
                },
            };
            (outcome.line_id, result)
        }

        /// The bytes of one outcome that the host keeps: attributes, note,
        /// message.
        pub fn outcome_size(outcome: &wit::LineOutcome) -> usize {
            match &outcome.outcome {
                wit::Outcome::Complete(completion) => {
                    completion
                        .attributes
                        .iter()
                        .map(|attribute| attribute.name.len() + attribute.value.len())
                        .sum::<usize>()
                        + completion.note.as_ref().map_or(0, String::len)
                }
                wit::Outcome::Failed(failure) => failure.message.len(),
            }
        }

        /// What a module answered to `revoke-line`, with the bytes it holds.
        pub fn revoke_result(outcome: wit::RevokeOutcome) -> (RevokeResult, usize) {
            match outcome {
                wit::RevokeOutcome::Revoked(note) => {
                    let size = note.as_ref().map_or(0, String::len);
                    (RevokeResult::Revoked { note }, size)
                }
                wit::RevokeOutcome::NotRevoked(reason) => {
                    let size = reason.len();
                    (RevokeResult::NotRevoked { reason }, size)
                }
            }
        }

        /// What `describe` answered, with the bytes it holds.
        pub fn module_info(info: wit::ModuleInfo) -> (super::super::ModuleInfo, usize) {
            let size = info.name.len() + info.version.len() + info.product_types.iter().map(String::len).sum::<usize>();
            let info = super::super::ModuleInfo {
                name: info.name,
                version: info.version,
                product_types: info.product_types,
            };
            (info, size)
        }
    };
}

/// `commerce:fulfillment@1.0.0`.
pub mod v1_0 {
    use super::*;
    shared_records!(crate::runtime::bindings::v1_0::types);

    /// The order as a 1.0 module sees it: no shipping, no addresses.
    pub fn order(order: &Order) -> wit::Order {
        wit::Order {
            number: order.number.clone(),
            user: user(order),
            date_placed: order.date_placed_text(),
            currency: order.currency.code().to_string(),
            total: money(order.total),
            email_opt_in: order.email_opt_in,
            basket_attributes: attributes(&order.basket_attributes),
        }
    }
}

/// `commerce:fulfillment@1.1.0`.
pub mod v1_1 {
    use super::*;
    use crate::model::Address;
    shared_records!(crate::runtime::bindings::v1_1::types);

    fn address(address: &Address) -> wit::Address {
        wit::Address {
            first_name: address.first_name.clone(),
            last_name: address.last_name.clone(),
            line1: address.line1.clone(),
            line2: address.line2.clone(),
            city: address.city.clone(),
            state: address.state.clone(),
            postcode: address.postcode.clone(),
            country: address.country.clone(),
            phone_number: address.phone_number.clone(),
        }
    }

    /// The order as a 1.1 module sees it.
    pub fn order(order: &Order) -> wit::Order {
        wit::Order {
            number: order.number.clone(),
            user: user(order),
            date_placed: order.date_placed_text(),
            currency: order.currency.code().to_string(),
            total: money(order.total),
            email_opt_in: order.email_opt_in,
            basket_attributes: attributes(&order.basket_attributes),
            shipping: wit::Shipping {
                method: order.shipping.method.clone(),
                charge: money(order.shipping.charge),
            },
            billing_address: order.billing_address.as_ref().map(address),
            shipping_address: order.shipping_address.as_ref().map(address),
        }
    }

    /// The revocation of `line` for refund `refund_id`.
    pub fn revocation(order: &Order, line: &crate::model::Line, refund_id: u64) -> wit::Revocation {
        wit::Revocation {
            cause: wit::RevocationCause::Refund(refund_id),
            idempotency_key: format!("{}-refund-{refund_id}", line.idempotency_key(&order.number)),
        }
    }
}
