//! The JSON form of an order given to `run-module` and `dispatch`
//! (documented in docs/order-json.md), and its validation into an [`Order`].

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use super::{Address, Currency, Line, LineStatus, Money, MoneyError, Order, OrderStatus, Product, Shipping, User};

/// An order as JSON. Amounts are decimal strings in the order's currency.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderDocument {
    pub number: String,
    pub user: User,
    /// RFC 3339; now when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub date_placed: Option<OffsetDateTime>,
    pub currency: String,
    /// Checked against the lines plus shipping when given.
    #[serde(default)]
    pub total: Option<String>,
    /// "no-shipping-required" when absent.
    #[serde(default)]
    pub shipping_method: Option<String>,
    #[serde(default)]
    pub shipping_charge: Option<String>,
    /// Address records (every field optional, no other field); `{}` is none.
    #[serde(default)]
    pub billing_address: Option<Address>,
    #[serde(default)]
    pub shipping_address: Option<Address>,
    #[serde(default)]
    pub email_opt_in: bool,
    #[serde(default)]
    pub basket_attributes: BTreeMap<String, AttributeValue>,
    /// "Open" when absent; "Fulfillment Error" to try a retry.
    #[serde(default)]
    pub status: Option<OrderStatus>,
    pub lines: Vec<LineDocument>,
}

/// A line as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineDocument {
    pub id: u64,
    pub product: ProductDocument,
    #[serde(default = "one")]
    pub quantity: u32,
    pub unit_price: String,
    /// "Open" when absent.
    #[serde(default)]
    pub status: Option<LineStatus>,
    #[serde(default)]
    pub fulfilled_by: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// A product as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductDocument {
    pub sku: String,
    pub product_type: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// An attribute value: a string, or a number or boolean taken as its text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Text(String),
    Bool(bool),
    Number(serde_json::Number),
}

fn one() -> u32 {
    1
}

/// An order document that does not describe a valid order; `field` is the
/// JSON path of the offending value ("lines[1].unit_price").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct OrderDocumentError {
    pub field: String,
    pub message: String,
}

impl OrderDocument {
    /// Parses and validates an order from JSON text.
    pub fn parse(json: &str) -> Result<Order, OrderDocumentError> {
        let document: OrderDocument = serde_json::from_str(json).map_err(|error| OrderDocumentError {
            field: format!("line {} column {}", error.line(), error.column()),
            message: error.to_string(),
        })?;
        document.into_order()
    }

    /// Validates the document: a known currency, amounts in it, unique line
    /// ids, quantities of at least 1, and a total that adds up.
    pub fn into_order(self) -> Result<Order, OrderDocumentError> {
        let fail = |field: &str, message: String| OrderDocumentError {
            field: field.to_string(),
            message,
        };
        if self.number.trim().is_empty() {
            return Err(fail("number", "must not be empty".into()));
        }
        if self.shipping_method.as_deref().is_some_and(|method| method.trim().is_empty()) {
            return Err(fail("shipping_method", "must not be empty".into()));
        }
        let currency: Currency = self.currency.parse().map_err(money_error_at("currency"))?;
        let mut lines: Vec<Line> = Vec::with_capacity(self.lines.len());
        let mut computed = Money::zero(currency);
        for (index, line) in self.lines.into_iter().enumerate() {
            let field = |name: &str| format!("lines[{index}].{name}");
            if lines.iter().any(|earlier| earlier.id == line.id) {
                return Err(fail(&field("id"), format!("line id {} is used twice", line.id)));
            }
            if line.quantity == 0 {
                return Err(fail(&field("quantity"), "must be at least 1".into()));
            }
            if line.product.sku.trim().is_empty() {
                return Err(fail(&field("product.sku"), "must not be empty".into()));
            }
            let unit_price =
                Money::parse(&line.unit_price, currency).map_err(money_error_at(&field("unit_price")))?;
            computed = unit_price
                .checked_mul(line.quantity)
                .and_then(|amount| computed.checked_add(amount))
                .map_err(money_error_at(&field("unit_price")))?;
            lines.push(Line {
                id: line.id,
                product: Product {
                    sku: line.product.sku,
                    product_type: line.product.product_type,
                    title: line.product.title,
                    attributes: texts(line.product.attributes),
                },
                quantity: line.quantity,
                unit_price,
                status: line.status.unwrap_or(LineStatus::Open),
                fulfilled_by: line.fulfilled_by,
                attributes: texts(line.attributes),
            });
        }
        if lines.is_empty() {
            return Err(fail("lines", "an order needs at least one line".into()));
        }
        let shipping_charge = match &self.shipping_charge {
            Some(charge) => Money::parse(charge, currency).map_err(money_error_at("shipping_charge"))?,
            None => Money::zero(currency),
        };
        computed = computed.checked_add(shipping_charge).map_err(money_error_at("shipping_charge"))?;
        let total = match &self.total {
            Some(total) => {
                let total = Money::parse(total, currency).map_err(money_error_at("total"))?;
                if total != computed {
                    return Err(fail(
                        "total",
                        format!(
                            "is {} but the lines and shipping add up to {}",
                            total.to_decimal_string(),
                            computed.to_decimal_string()
                        ),
                    ));
                }
                total
            }
            None => computed,
        };
        Ok(Order {
            number: self.number,
            user: self.user,
            date_placed: self.date_placed.unwrap_or_else(OffsetDateTime::now_utc),
            currency,
            total,
            email_opt_in: self.email_opt_in,
            basket_attributes: texts(self.basket_attributes),
            shipping: Shipping {
                method: self.shipping_method.unwrap_or_else(|| Shipping::NONE.to_string()),
                charge: shipping_charge,
            },
            billing_address: self.billing_address.filter(|address| !address.is_empty()),
            shipping_address: self.shipping_address.filter(|address| !address.is_empty()),
            status: self.status.unwrap_or(OrderStatus::Open),
            lines,
            notes: Vec::new(),
        })
    }
}

/// Turns a money error into an error at `field`.
fn money_error_at(field: &str) -> impl Fn(MoneyError) -> OrderDocumentError + '_ {
    move |error| OrderDocumentError {
        field: field.to_string(),
        message: error.to_string(),
    }
}

fn texts(attributes: BTreeMap<String, AttributeValue>) -> BTreeMap<String, String> {
    attributes
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                AttributeValue::Text(text) => text,
                AttributeValue::Bool(flag) => flag.to_string(),
                AttributeValue::Number(number) => number.to_string(),
            };
            (name, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{
        "number": "EDX-100001",
        "user": {"username": "alice", "email": "alice@example.com"},
        "date_placed": "2026-11-29T12:00:00Z",
        "currency": "USD",
        "total": "59.00",
        "shipping_charge": "0.00",
        "lines": [
            {"id": 1, "unit_price": "49.00", "product": {"sku": "SEAT", "product_type": "Seat",
             "attributes": {"course_key": "course-v1:edX+DemoX+Demo", "id_verification_required": true}}},
            {"id": 2, "quantity": 2, "unit_price": "5.00", "product": {"sku": "DON", "product_type": "Donation"}}
        ]
    }"#;

    #[test]
    fn parses_a_valid_order() {
        let order = OrderDocument::parse(ORDER).expect("valid order");
        assert_eq!(order.total.minor_units, 5900);
        assert_eq!(order.lines[1].quantity, 2);
        assert_eq!(order.lines[0].product.attributes["id_verification_required"], "true");
        assert_eq!(order.date_placed_text(), "2026-11-29T12:00:00Z");
        assert_eq!(order.status, OrderStatus::Open);
        assert_eq!(order.shipping.method, "no-shipping-required");
        assert_eq!((order.billing_address, order.shipping_address), (None, None));
    }

    #[test]
    fn parses_shipping_and_addresses() {
        let shipped = ORDER.replace(
            "\"shipping_charge\": \"0.00\",",
            r#""shipping_method": "ups-ground", "shipping_charge": "0.00",
               "billing_address": {"first_name": "Alice", "country": "US"},
               "shipping_address": {"line1": "1 Main St", "postcode": "02139", "country": "US", "phone_number": "+1 617 555 0100"},"#,
        );
        let order = OrderDocument::parse(&shipped).expect("valid order");
        assert_eq!(order.shipping.method, "ups-ground");
        let billing = order.billing_address.expect("a billing address");
        assert_eq!((billing.first_name.as_deref(), billing.country.as_deref(), billing.city), (Some("Alice"), Some("US"), None));
        let shipping = order.shipping_address.expect("a shipping address");
        assert_eq!((shipping.line1.as_deref(), shipping.postcode.as_deref()), (Some("1 Main St"), Some("02139")));
        assert_eq!(shipping.phone_number.as_deref(), Some("+1 617 555 0100"));

        let empty = ORDER.replace("\"shipping_charge\": \"0.00\",", r#""shipping_charge": "0.00", "shipping_address": {},"#);
        assert_eq!(OrderDocument::parse(&empty).expect("valid order").shipping_address, None, "{{}} is no address");
        let unknown = ORDER.replace("\"shipping_charge\": \"0.00\",", r#""shipping_charge": "0.00", "billing_address": {"company": "X"},"#);
        let error = OrderDocument::parse(&unknown).expect_err("unknown address field");
        assert!(error.to_string().contains("unknown field `company`"), "{error}");
        let blank = ORDER.replace("\"shipping_charge\": \"0.00\",", r#""shipping_charge": "0.00", "shipping_method": " ","#);
        assert_eq!(OrderDocument::parse(&blank).expect_err("blank method").field, "shipping_method");
    }

    #[test]
    fn errors_name_the_field() {
        let wrong_total = ORDER.replace("\"59.00\"", "\"60.00\"");
        let error = OrderDocument::parse(&wrong_total).expect_err("total mismatch");
        assert_eq!(error.to_string(), "total: is 60.00 but the lines and shipping add up to 59.00");
        let bad_price = ORDER.replace("\"5.00\"", "\"5\"");
        let error = OrderDocument::parse(&bad_price).expect_err("bad price");
        assert!(error.to_string().starts_with("lines[1].unit_price: invalid amount `5` for USD"), "{error}");
        let duplicate = ORDER.replace("\"id\": 2", "\"id\": 1");
        let error = OrderDocument::parse(&duplicate).expect_err("duplicate id");
        assert_eq!(error.to_string(), "lines[1].id: line id 1 is used twice");
        let unknown = ORDER.replace("\"currency\": \"USD\"", "\"currency\": \"USD\", \"colour\": 1");
        let error = OrderDocument::parse(&unknown).expect_err("unknown field");
        assert!(error.to_string().contains("unknown field `colour`"), "{error}");
    }
}
