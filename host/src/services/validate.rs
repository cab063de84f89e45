//! The bounds of a checkout, checked before anything is stored or charged:
//! everything the database or a processor could refuse is refused here,
//! with a 422 naming the field. docs/api.md and the OpenAPI schema state
//! the same bounds.

use super::OrderError;
use super::checkout::PlaceOrder;
use crate::model::Address;

/// Lines in one basket.
pub const MAX_BASKET_LINES: usize = 100;
/// Units of one line.
pub const MAX_QUANTITY: u32 = 1_000;
/// `user.username` (Django's username length).
pub const MAX_USERNAME_CHARS: usize = 150;
/// `user.email` (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// `shipping_method`, `payment.processor`, a sku.
pub const MAX_NAME_CHARS: usize = 128;
/// `payment.token`.
pub const MAX_TOKEN_CHARS: usize = 255;
/// Decimal amounts (`total`, `shipping_charge`).
pub const MAX_AMOUNT_CHARS: usize = 24;
/// An address's names, street lines, city and state (Oscar's columns,
/// which edX's ecommerce stores addresses in).
pub const MAX_ADDRESS_LINE_CHARS: usize = 255;
/// An address's `postcode` (Oscar's column).
pub const MAX_POSTCODE_CHARS: usize = 64;
/// An address's `phone_number` (Oscar's column).
pub const MAX_PHONE_NUMBER_CHARS: usize = 128;
/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// Checks every text field and count of `input` against its bounds, but
/// for the addresses (see [`addresses`]).
pub fn checkout(input: &PlaceOrder) -> Result<(), OrderError> {
    text("user.username", &input.user.username, MAX_USERNAME_CHARS)?;
    if input.user.username.trim().is_empty() {
        return Err(OrderError::invalid("user.username", "must not be empty"));
    }
    text("user.email", &input.user.email, MAX_EMAIL_CHARS)?;
    if let Some(method) = &input.shipping_method {
        text("shipping_method", method, MAX_NAME_CHARS)?;
    }
    if let Some(charge) = &input.shipping_charge {
        text("shipping_charge", charge, MAX_AMOUNT_CHARS)?;
    }
    text("total", &input.total, MAX_AMOUNT_CHARS)?;
    text("currency", &input.currency, 3)?;
    text("payment.processor", &input.payment.processor, MAX_NAME_CHARS)?;
    text("payment.token", &input.payment.token, MAX_TOKEN_CHARS)?;
    if input.basket.is_empty() {
        return Err(OrderError::invalid("basket", "the basket is empty"));
    }
    if input.basket.len() > MAX_BASKET_LINES {
        return Err(OrderError::invalid(
            "basket",
            format!("has {} lines; at most {MAX_BASKET_LINES} are taken", input.basket.len()),
        ));
    }
    for (index, item) in input.basket.iter().enumerate() {
        text(&format!("basket[{index}].sku"), &item.sku, MAX_NAME_CHARS)?;
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            return Err(OrderError::invalid(
                format!("basket[{index}].quantity"),
                format!("must be from 1 to {MAX_QUANTITY}, not {}", item.quantity),
            ));
        }
    }
    Ok(())
}

/// A checkout's addresses, read from the JSON the storefront sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    pub billing: Option<Address>,
    pub shipping: Option<Address>,
}

/// Reads `input`'s addresses as address records and checks them (see
/// [`address`]); `null`, `{}` and an absent field are no address. Kept
/// apart from [`checkout`] because a body refused here may be the retry of
/// one the host took before addresses were records: the caller looks for
/// its replay first.
pub fn addresses(input: &PlaceOrder) -> Result<Addresses, OrderError> {
    Ok(Addresses {
        billing: address_json("billing_address", &input.billing_address)?,
        shipping: address_json("shipping_address", &input.shipping_address)?,
    })
}

/// The address in `value`, the JSON of body field `field`: an error names
/// the field it is about (`billing_address.company` for a key the record
/// does not have, `billing_address.city` for a number, `billing_address`
/// for a string), as the body's other fields' errors do.
fn address_json(field: &str, value: &serde_json::Value) -> Result<Option<Address>, OrderError> {
    let read: Option<Address> = serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let named = if path == "." { field.to_string() } else { format!("{field}.{path}") };
        OrderError::invalid(named, error.into_inner().to_string())
    })?;
    address(field, read.as_ref())?;
    Ok(read.filter(|address| !address.is_empty()))
}

/// The `Idempotency-Key` header's value.
pub fn idempotency_key(key: &str) -> Result<(), OrderError> {
    let field = "Idempotency-Key";
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(OrderError::invalid(field, format!("must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters long")));
    }
    if !key.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(OrderError::invalid(field, "must be visible ASCII characters only"));
    }
    Ok(())
}

/// A text field: at most `max_chars` characters, no control characters
/// (NUL, which PostgreSQL cannot store, among them).
pub fn text(field: &str, value: &str, max_chars: usize) -> Result<(), OrderError> {
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(OrderError::invalid(field, format!("is {chars} characters long; at most {max_chars} are taken")));
    }
    if let Some(control) = value.chars().find(|character| character.is_control()) {
        return Err(OrderError::invalid(
            field,
            format!("must not contain control characters (found U+{:04X})", u32::from(control)),
        ));
    }
    Ok(())
}

/// An address: every field bounded (see the constants), without control
/// characters; `country` two upper-case letters (ISO 3166-1 alpha-2).
/// Errors name the field: `shipping_address.postcode`.
pub fn address(field: &str, address: Option<&Address>) -> Result<(), OrderError> {
    let Some(address) = address else {
        return Ok(());
    };
    for (name, value) in address.fields() {
        let Some(value) = value else {
            continue;
        };
        let path = format!("{field}.{name}");
        let max_chars = match name {
            "postcode" => MAX_POSTCODE_CHARS,
            "phone_number" => MAX_PHONE_NUMBER_CHARS,
            "country" => 2,
            _ => MAX_ADDRESS_LINE_CHARS,
        };
        text(&path, value, max_chars)?;
        if name == "country" && !(value.len() == 2 && value.bytes().all(|byte| byte.is_ascii_uppercase())) {
            return Err(OrderError::invalid(path, format!("must be two upper-case letters (ISO 3166-1 alpha-2, like `US`), not `{value}`")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_lengths_are_named() {
        let error = text("user.email", "a\0b", 10).expect_err("NUL refused");
        assert_eq!(error.to_string(), "user.email: must not contain control characters (found U+0000)");
        let error = text("user.username", &"x".repeat(151), MAX_USERNAME_CHARS).expect_err("too long");
        assert_eq!(error.to_string(), "user.username: is 151 characters long; at most 150 are taken");
        assert!(text("user.username", "zoë", MAX_USERNAME_CHARS).is_ok());
        let bell = Address { line2: Some("bad\u{7}".into()), ..Address::default() };
        let error = address("billing_address", Some(&bell)).expect_err("BEL");
        assert_eq!(error.to_string(), "billing_address.line2: must not contain control characters (found U+0007)");
        let long = Address { postcode: Some("9".repeat(65)), ..Address::default() };
        let error = address("shipping_address", Some(&long)).expect_err("too long");
        assert_eq!(error.to_string(), "shipping_address.postcode: is 65 characters long; at most 64 are taken");
        for country in ["us", "USA", "U", "Ü1"] {
            let foreign = Address { country: Some(country.into()), ..Address::default() };
            let error = address("shipping_address", Some(&foreign)).expect_err("not alpha-2");
            assert!(error.to_string().starts_with("shipping_address.country: "), "{country}: {error}");
        }
        let edx = Address {
            first_name: Some("Zoë".into()),
            last_name: Some("Ng".into()),
            line1: Some("1 Main St".into()),
            line2: Some(String::new()),
            city: Some("Cambridge".into()),
            state: Some("MA".into()),
            postcode: Some("02139".into()),
            country: Some("US".into()),
            phone_number: None,
        };
        assert!(address("billing_address", Some(&edx)).is_ok());
        assert!(address("billing_address", None).is_ok());
        assert!(idempotency_key("abc-123").is_ok());
        assert!(idempotency_key("has space").is_err());
        assert!(idempotency_key(&"k".repeat(256)).is_err());
    }

    /// The addresses as sent are read into records here, each error naming
    /// its field as the body's extractor names the others.
    #[test]
    fn an_address_as_sent_is_read_naming_the_wrong_field() {
        use serde_json::json;
        for (sent, field) in [
            (json!({"country": "US", "company": "edX"}), "billing_address.company"),
            (json!({"city": 7}), "billing_address.city"),
            (json!("1 Main St"), "billing_address"),
            (json!({"line1": "x".repeat(256)}), "billing_address.line1"),
        ] {
            let error = address_json("billing_address", &sent).expect_err("refused");
            assert!(error.to_string().starts_with(&format!("{field}: ")), "{sent}: {error}");
        }
        for none in [json!(null), json!({}), json!({"line2": null})] {
            assert_eq!(address_json("shipping_address", &none).expect("no address"), None, "{none}");
        }
        let read = address_json("shipping_address", &json!({"line1": "1 Main St", "line2": null})).expect("an address");
        assert_eq!(read, Some(Address { line1: Some("1 Main St".into()), ..Address::default() }));
    }
}
