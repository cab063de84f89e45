//! The catalog the API and process tests sell from, as `[[products]]`.

/// A seat in `course_key` (49.00 USD, verified) and a donation (10.00 USD).
pub fn seat_and_donation(course_key: &str) -> String {
    format!(
        r#"[[products]]
sku = "SEAT"
product_type = "Seat"
title = "Seat"
price = "49.00"
currency = "USD"
attributes = {{ course_key = "{course_key}", certificate_type = "verified" }}

[[products]]
sku = "DONATION"
product_type = "Donation"
title = "Donation"
price = "10.00"
currency = "USD"
"#
    )
}
