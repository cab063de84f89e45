//! Orders, their lines and notes.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::{Currency, LineStatus, Money, OrderStatus};

/// A line's id, unique within its order.
pub type LineId = u64;

/// An order: who bought what, and how far its fulfillment got.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    /// "EDX-100001".
    pub number: String,
    pub user: User,
    #[serde(with = "time::serde::rfc3339")]
    pub date_placed: OffsetDateTime,
    pub currency: Currency,
    /// Lines plus shipping.
    pub total: Money,
    pub email_opt_in: bool,
    pub basket_attributes: BTreeMap<String, String>,
    pub shipping: Shipping,
    /// Where the invoice goes, if the storefront gave it.
    pub billing_address: Option<Address>,
    /// Where physical goods go, if the storefront gave it.
    pub shipping_address: Option<Address>,
    pub status: OrderStatus,
    pub lines: Vec<Line>,
    /// Notes for staff, oldest first.
    pub notes: Vec<OrderNote>,
}

/// How an order is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shipping {
    /// The storefront's method code; [`Shipping::NONE`] for digital goods.
    pub method: String,
    /// Included in the order's total.
    pub charge: Money,
}

impl Shipping {
    /// The method of an order with nothing to ship.
    pub const NONE: &'static str = "no-shipping-required";

    /// Nothing to ship, for nothing.
    pub fn none(currency: Currency) -> Shipping {
        Shipping {
            method: Shipping::NONE.to_string(),
            charge: Money::zero(currency),
        }
    }
}

/// A postal address as the storefront gave it: every field optional. The
/// API's bounds (services/validate.rs, docs/api.md) are Oscar's column
/// lengths, which edX's ecommerce stores addresses in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub last_name: Option<String>,
    /// The street lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub city: Option<String>,
    /// State, province or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub postcode: Option<String>,
    /// ISO 3166-1 alpha-2, upper case: "US".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 2, max_length = 2, pattern = r"^[A-Z]{2}$", example = "US")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub phone_number: Option<String>,
}

impl Address {
    /// Whether no field is given (`{}`): the API takes it as no address.
    pub fn is_empty(&self) -> bool {
        *self == Address::default()
    }

    /// The fields by name, in the record's order, for validation and views.
    pub fn fields(&self) -> [(&'static str, Option<&str>); 9] {
        [
            ("first_name", self.first_name.as_deref()),
            ("last_name", self.last_name.as_deref()),
            ("line1", self.line1.as_deref()),
            ("line2", self.line2.as_deref()),
            ("city", self.city.as_deref()),
            ("state", self.state.as_deref()),
            ("postcode", self.postcode.as_deref()),
            ("country", self.country.as_deref()),
            ("phone_number", self.phone_number.as_deref()),
        ]
    }

    /// The address in a JSON object stored before addresses were records
    /// (billing addresses were kept as given): its known fields that are
    /// strings; None for no object or an object with none of them.
    pub fn from_stored_json(value: &serde_json::Value) -> Option<Address> {
        let fields = value.as_object()?;
        let field = |name: &str| fields.get(name).and_then(serde_json::Value::as_str).map(str::to_string);
        let address = Address {
            first_name: field("first_name"),
            last_name: field("last_name"),
            line1: field("line1"),
            line2: field("line2"),
            city: field("city"),
            state: field("state"),
            postcode: field("postcode"),
            country: field("country"),
            phone_number: field("phone_number"),
        };
        (!address.is_empty()).then_some(address)
    }
}

/// The person an order is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub username: String,
    pub email: String,
}

/// A catalog product as bought.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub sku: String,
    /// "Seat", "Coupon", "Enrollment Code", "Course Entitlement", "Donation", ...
    pub product_type: String,
    pub title: String,
    pub attributes: BTreeMap<String, String>,
}

/// One line of an order.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub id: LineId,
    pub product: Product,
    pub quantity: u32,
    pub unit_price: Money,
    pub status: LineStatus,
    /// The module that claimed the line; revocation goes through it.
    pub fulfilled_by: Option<String>,
    /// What modules stored on the line (entitlement uuid, voucher codes).
    pub attributes: BTreeMap<String, String>,
}

/// Whether a note reports a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NoteKind {
    Info,
    Error,
}

/// A note on an order, for staff: why a line failed, what a module said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderNote {
    pub kind: NoteKind,
    pub message: String,
    /// The line the note is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_id: Option<LineId>,
    /// The module that caused the note, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

impl Order {
    /// The line with `id`.
    pub fn line(&self, id: LineId) -> Option<&Line> {
        self.position(id).map(|index| &self.lines[index])
    }

    pub fn line_mut(&mut self, id: LineId) -> Option<&mut Line> {
        self.position(id).map(|index| &mut self.lines[index])
    }

    /// Where the line with `id` is in `lines`. At once for the usual ids 1,
    /// 2, 3 ... in order (orders the host makes, most order documents), by
    /// search otherwise: dispatch looks lines up by id for each line, which
    /// would make an order of 1,000 lines cost a million comparisons.
    pub fn position(&self, id: LineId) -> Option<usize> {
        let guess = usize::try_from(id).ok().and_then(|id| id.checked_sub(1));
        match guess {
            Some(index) if self.lines.get(index).is_some_and(|line| line.id == id) => Some(index),
            _ => self.lines.iter().position(|line| line.id == id),
        }
    }

    /// The date placed as the modules and the LMS see it:
    /// "2026-11-29T12:00:00Z" (UTC, whole seconds).
    pub fn date_placed_text(&self) -> String {
        let utc = self.date_placed.to_offset(time::UtcOffset::UTC);
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        );
        utc.format(&format).unwrap_or_else(|_| utc.unix_timestamp().to_string())
    }
}

impl Line {
    /// Stable across every attempt to fulfill this line: "EDX-100001-2".
    pub fn idempotency_key(&self, order_number: &str) -> String {
        format!("{order_number}-{}", self.id)
    }
}

impl Serialize for Money {
    /// A decimal string: the currency is the order's.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_decimal_string())
    }
}
