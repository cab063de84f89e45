//! The module boundary: host order data to WIT records, WIT answers to host
//! results.

use std::collections::BTreeMap;

use super::bindings::types as wit;
use crate::model::{LineStatus, Money, Order};

fn attributes(map: &BTreeMap<String, String>) -> Vec<wit::Attribute> {
    map.iter()
        .map(|(name, value)| wit::Attribute {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn money(amount: Money) -> wit::Money {
    wit::Money {
        minor_units: amount.minor_units,
        currency: amount.currency.code().to_string(),
    }
}

/// The order as a module sees it.
pub fn order(order: &Order) -> wit::Order {
    wit::Order {
        number: order.number.clone(),
        user: wit::User {
            username: order.user.username.clone(),
            email: order.user.email.clone(),
        },
        date_placed: order.date_placed_text(),
        currency: order.currency.code().to_string(),
        total: money(order.total),
        email_opt_in: order.email_opt_in,
        basket_attributes: attributes(&order.basket_attributes),
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

/// The line status a failure kind maps to.
pub fn failure_status(kind: wit::FailureKind) -> LineStatus {
    match kind {
        wit::FailureKind::Configuration => LineStatus::ConfigurationError,
        wit::FailureKind::Network => LineStatus::NetworkError,
        wit::FailureKind::Timeout => LineStatus::TimeoutError,
        wit::FailureKind::Server => LineStatus::ServerError,
    }
}

/// Attributes from a module, as a map (later names win).
pub fn attribute_map(attributes: Vec<wit::Attribute>) -> BTreeMap<String, String> {
    attributes
        .into_iter()
        .map(|attribute| (attribute.name, attribute.value))
        .collect()
}
