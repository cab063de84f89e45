//! The shipped donation module (plugins/donation) as an Extism plugin, for
//! the peer benchmark (bench/benches/dispatch.rs, docs/performance.md, "Peer:
//! Extism"): it claims the lines whose product type is `Donation` and
//! completes every line it is given, with no attributes and no note.
//!
//! Built for wasm32-unknown-unknown with `cargo extism-plugins`. Both exports
//! take the order as fulfillment-host serializes it (`model::Order`, its
//! lines in `lines`) and answer JSON: `supports_lines` a list of booleans,
//! one per line; `fulfill_product` a line outcome per line, shaped as the
//! WIT's `line-outcome`.

use std::collections::BTreeMap;

use extism_pdk::{FnResult, Json, plugin_fn};
use serde::{Deserialize, Serialize};

const PRODUCT_TYPE: &str = "Donation";

/// What the WIT `order` record gives a component module, and its lines: the
/// plugin reads all of it, as the component's bindings lift all of it, so
/// that both do the same work. (The host's status, notes and the lines'
/// statuses are not in the WIT; serde skips them.)
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Order {
    number: String,
    user: User,
    date_placed: String,
    currency: String,
    total: String,
    email_opt_in: bool,
    basket_attributes: BTreeMap<String, String>,
    shipping: Shipping,
    billing_address: Option<BTreeMap<String, String>>,
    shipping_address: Option<BTreeMap<String, String>>,
    lines: Vec<Line>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct User {
    username: String,
    email: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Shipping {
    method: String,
    charge: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Line {
    id: u64,
    product: Product,
    quantity: u32,
    unit_price: String,
    /// What an earlier attempt stored on the line (the WIT's `stored-attributes`).
    attributes: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Product {
    sku: String,
    product_type: String,
    title: String,
    attributes: BTreeMap<String, String>,
}

/// The WIT's `line-outcome`: `{"line_id": 1, "outcome": {"complete": {...}}}`.
#[derive(Debug, Serialize)]
struct LineOutcome {
    line_id: u64,
    outcome: Outcome,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Complete(Completion),
}

#[derive(Debug, Serialize)]
struct Completion {
    attributes: BTreeMap<String, String>,
    note: Option<String>,
}

/// One boolean per line of the order: whether it is a donation.
#[plugin_fn]
pub fn supports_lines(Json(order): Json<Order>) -> FnResult<Json<Vec<bool>>> {
    Ok(Json(order.lines.iter().map(|line| line.product.product_type == PRODUCT_TYPE).collect()))
}

/// Every line of the order is complete: a donation has nothing to deliver.
#[plugin_fn]
pub fn fulfill_product(Json(order): Json<Order>) -> FnResult<Json<Vec<LineOutcome>>> {
    let outcomes = order
        .lines
        .iter()
        .map(|line| LineOutcome {
            line_id: line.id,
            outcome: Outcome::Complete(Completion {
                attributes: BTreeMap::new(),
                note: None,
            }),
        })
        .collect();
    Ok(Json(outcomes))
}
