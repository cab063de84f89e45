//! Money: integer minor units plus an ISO 4217 currency. Never floats.
//!
//! In JSON an amount is a decimal string with exactly the currency's number
//! of decimals ("49.00" for USD, "5000" for JPY), so that no client has to
//! guess the exponent and no float ever carries a price.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency, such as `USD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// The three-letter code: "USD".
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// How many decimals the minor unit has: 2 for USD, 0 for JPY.
    pub fn exponent(self) -> u32 {
        self.0.exponent().map_or(0, u32::from)
    }
}

/// In the OpenAPI document: a string, one of the ISO 4217 codes.
impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use iso_currency::IntoEnumIterator;
        let codes: Vec<&'static str> = iso_currency::Currency::iter().map(|currency| currency.code()).collect();
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(codes))
            .description(Some("An ISO 4217 currency code"))
            .examples([serde_json::json!("USD")])
            .into()
    }
}

impl utoipa::ToSchema for Currency {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Currency")
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        iso_currency::Currency::from_code(code)
            .map(Currency)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// An amount in minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor_units: i64,
    pub currency: Currency,
}

/// Why an amount or a currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency `{0}`: expected an ISO 4217 code such as USD")]
    UnknownCurrency(String),
    #[error("invalid amount `{amount}` for {currency}: expected a decimal string with {exponent} decimals, such as \"{example}\"")]
    InvalidAmount {
        amount: String,
        currency: Currency,
        exponent: u32,
        example: String,
    },
    #[error("amounts in different currencies: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount out of range")]
    Overflow,
}

impl Money {
    pub fn zero(currency: Currency) -> Money {
        Money {
            minor_units: 0,
            currency,
        }
    }

    /// Parses a decimal string such as "49.00" in `currency`. The number of
    /// decimals must be the currency's exponent exactly: "49" and "49.0" are
    /// refused for USD, so that a misplaced point never changes a price.
    pub fn parse(amount: &str, currency: Currency) -> Result<Money, MoneyError> {
        let exponent = currency.exponent();
        let invalid = || MoneyError::InvalidAmount {
            amount: amount.to_string(),
            currency,
            exponent,
            example: Money {
                minor_units: 4900 * 10_i64.pow(exponent) / 100,
                currency,
            }
            .to_decimal_string(),
        };
        let (negative, digits) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (digits, ""),
        };
        let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        let fraction_ok = if exponent == 0 {
            !digits.contains('.')
        } else {
            fraction.len() == exponent as usize && all_digits(fraction)
        };
        if !all_digits(whole) || !fraction_ok {
            return Err(invalid());
        }
        let magnitude = format!("{whole}{fraction}")
            .parse::<i64>()
            .map_err(|_| MoneyError::Overflow)?;
        Ok(Money {
            minor_units: if negative { -magnitude } else { magnitude },
            currency,
        })
    }

    /// The amount as a decimal string with the currency's decimals: "49.00".
    pub fn to_decimal_string(self) -> String {
        let exponent = self.currency.exponent();
        let sign = if self.minor_units < 0 { "-" } else { "" };
        let magnitude = self.minor_units.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{magnitude}");
        }
        let scale = 10_u64.pow(exponent);
        format!(
            "{sign}{}.{:0width$}",
            magnitude / scale,
            magnitude % scale,
            width = exponent as usize
        )
    }

    /// `self + other`, refusing different currencies and overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let minor_units = self
            .minor_units
            .checked_add(other.minor_units)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor_units,
            currency: self.currency,
        })
    }

    /// `self * quantity`, refusing overflow.
    pub fn checked_mul(self, quantity: u32) -> Result<Money, MoneyError> {
        let minor_units = self
            .minor_units
            .checked_mul(i64::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor_units,
            currency: self.currency,
        })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.to_decimal_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        "USD".parse().expect("USD is a currency")
    }

    #[test]
    fn parses_and_formats_with_the_currency_exponent() {
        let jpy: Currency = "JPY".parse().expect("JPY is a currency");
        let bhd: Currency = "BHD".parse().expect("BHD is a currency");
        assert_eq!(Money::parse("49.00", usd()).map(|m| m.minor_units), Ok(4900));
        assert_eq!(Money::parse("0.05", usd()).map(|m| m.minor_units), Ok(5));
        assert_eq!(Money::parse("-1.50", usd()).map(|m| m.minor_units), Ok(-150));
        assert_eq!(Money::parse("5000", jpy).map(|m| m.minor_units), Ok(5000));
        assert_eq!(Money::parse("1.250", bhd).map(|m| m.minor_units), Ok(1250));
        assert_eq!(Money { minor_units: 4900, currency: usd() }.to_decimal_string(), "49.00");
        assert_eq!(Money { minor_units: -5, currency: usd() }.to_decimal_string(), "-0.05");
        assert_eq!(Money { minor_units: 5000, currency: jpy }.to_decimal_string(), "5000");
    }

    #[test]
    fn refuses_amounts_with_the_wrong_number_of_decimals() {
        for amount in ["49", "49.0", "49.000", "", ".50", "4a.00", "49.", "1e3", "+1.00"] {
            let error = Money::parse(amount, usd()).expect_err(amount);
            assert!(error.to_string().contains("expected a decimal string with 2 decimals, such as \"49.00\""), "{error}");
        }
        let jpy: Currency = "JPY".parse().expect("JPY is a currency");
        assert!(Money::parse("50.00", jpy).is_err());
    }

    #[test]
    fn refuses_unknown_currencies_and_mixed_sums() {
        assert_eq!("XYZ".parse::<Currency>(), Err(MoneyError::UnknownCurrency("XYZ".into())));
        let eur: Currency = "EUR".parse().expect("EUR is a currency");
        assert!(matches!(
            Money::zero(usd()).checked_add(Money::zero(eur)),
            Err(MoneyError::CurrencyMismatch(_, _))
        ));
        let big = Money { minor_units: i64::MAX, currency: usd() };
        assert_eq!(big.checked_mul(2), Err(MoneyError::Overflow));
    }
}
