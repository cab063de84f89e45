//! The bounds of a checkout, checked before anything is stored or charged:
//! everything the database or a processor could refuse is refused here,
//! with a 422 naming the field. docs/api.md and the OpenAPI schema state
//! the same bounds.

use super::OrderError;
use super::checkout::PlaceOrder;

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
/// `billing_address`, as JSON.
pub const MAX_ADDRESS_BYTES: usize = 4_096;
/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// Checks every text field and count of `input` against its bounds.
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
    address("billing_address", &input.billing_address)?;
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

/// A free-form JSON object (an address): bounded in size, with no control
/// characters in any key or string.
fn address(field: &str, value: &serde_json::Value) -> Result<(), OrderError> {
    use serde_json::Value;
    match value {
        Value::Null | Value::Object(_) => {}
        _ => return Err(OrderError::invalid(field, "must be an object")),
    }
    let size = serde_json::to_vec(value).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
    if size > MAX_ADDRESS_BYTES {
        return Err(OrderError::invalid(field, format!("is {size} bytes as JSON; at most {MAX_ADDRESS_BYTES} are taken")));
    }
    fn strings<'a>(path: String, value: &'a Value, found: &mut Vec<(String, &'a str)>) {
        match value {
            Value::String(text) => found.push((path, text)),
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    strings(format!("{path}[{index}]"), item, found);
                }
            }
            Value::Object(fields) => {
                for (key, item) in fields {
                    found.push((path.clone(), key));
                    strings(format!("{path}.{key}"), item, found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    strings(field.to_string(), value, &mut found);
    for (path, text) in found {
        self::text(&path, text, MAX_ADDRESS_BYTES)?;
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
        let error = address("billing_address", &serde_json::json!({"lines": ["ok", "bad\u{7}"]})).expect_err("BEL");
        assert_eq!(error.to_string(), "billing_address.lines[1]: must not contain control characters (found U+0007)");
        assert!(idempotency_key("abc-123").is_ok());
        assert!(idempotency_key("has space").is_err());
        assert!(idempotency_key(&"k".repeat(256)).is_err());
    }
}
