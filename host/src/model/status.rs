//! Order and line statuses and the only transitions allowed between them,
//! as the reference's pipelines define them. Anything else is refused.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An order's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum OrderStatus {
    #[serde(rename = "Pending")]
    Pending,
    #[serde(rename = "Payment Error")]
    PaymentError,
    #[serde(rename = "Open")]
    Open,
    #[serde(rename = "Complete")]
    Complete,
    #[serde(rename = "Fulfillment Error")]
    FulfillmentError,
}

/// A line's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum LineStatus {
    #[serde(rename = "Open")]
    Open,
    #[serde(rename = "Complete")]
    Complete,
    #[serde(rename = "Fulfillment Configuration Error")]
    ConfigurationError,
    #[serde(rename = "Fulfillment Network Error")]
    NetworkError,
    #[serde(rename = "Fulfillment Timeout Error")]
    TimeoutError,
    #[serde(rename = "Fulfillment Server Error")]
    ServerError,
}

/// A status change that the pipeline does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} status cannot change from `{from}` to `{to}`")]
pub struct TransitionError {
    pub what: &'static str,
    pub from: String,
    pub to: String,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "Pending",
            OrderStatus::PaymentError => "Payment Error",
            OrderStatus::Open => "Open",
            OrderStatus::Complete => "Complete",
            OrderStatus::FulfillmentError => "Fulfillment Error",
        }
    }

    /// Whether the pipeline allows `self -> to`.
    pub fn can_become(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Pending, Open | PaymentError) | (Open, Complete | FulfillmentError) | (FulfillmentError, Complete)
        )
    }

    /// Whether fulfillment may run on an order in this status.
    pub fn is_fulfillable(self) -> bool {
        matches!(self, OrderStatus::Open | OrderStatus::FulfillmentError)
    }

    /// Moves to `to`, or refuses if the pipeline does not allow it.
    /// Staying in the same status is a no-op.
    pub fn transition(&mut self, to: OrderStatus) -> Result<(), TransitionError> {
        if *self == to {
            return Ok(());
        }
        if !self.can_become(to) {
            return Err(TransitionError {
                what: "order",
                from: self.to_string(),
                to: to.to_string(),
            });
        }
        *self = to;
        Ok(())
    }
}

impl LineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Open => "Open",
            LineStatus::Complete => "Complete",
            LineStatus::ConfigurationError => "Fulfillment Configuration Error",
            LineStatus::NetworkError => "Fulfillment Network Error",
            LineStatus::TimeoutError => "Fulfillment Timeout Error",
            LineStatus::ServerError => "Fulfillment Server Error",
        }
    }

    pub fn is_error(self) -> bool {
        !matches!(self, LineStatus::Open | LineStatus::Complete)
    }

    /// Whether the pipeline allows `self -> to`: Open becomes anything but
    /// Open; an error becomes Complete or another error (a retry that fails
    /// differently); Complete is final.
    pub fn can_become(self, to: LineStatus) -> bool {
        match self {
            LineStatus::Open => to != LineStatus::Open,
            LineStatus::Complete => false,
            _ => to == LineStatus::Complete || to.is_error(),
        }
    }

    /// Moves to `to`, or refuses if the pipeline does not allow it.
    pub fn transition(&mut self, to: LineStatus) -> Result<(), TransitionError> {
        if !self.can_become(to) {
            return Err(TransitionError {
                what: "line",
                from: self.to_string(),
                to: to.to_string(),
            });
        }
        *self = to;
        Ok(())
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for LineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::PaymentError,
        OrderStatus::Open,
        OrderStatus::Complete,
        OrderStatus::FulfillmentError,
    ];

    #[test]
    fn order_transitions_are_exactly_the_pipeline() {
        let allowed: Vec<(&str, &str)> = ORDER
            .iter()
            .flat_map(|from| ORDER.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_become(*to))
            .map(|(from, to)| (from.as_str(), to.as_str()))
            .collect();
        assert_eq!(
            allowed,
            [
                ("Pending", "Payment Error"),
                ("Pending", "Open"),
                ("Open", "Complete"),
                ("Open", "Fulfillment Error"),
                ("Fulfillment Error", "Complete"),
            ]
        );
    }

    #[test]
    fn complete_lines_never_change() {
        let mut status = LineStatus::Complete;
        let error = status.transition(LineStatus::ServerError).expect_err("Complete is final");
        assert_eq!(error.to_string(), "line status cannot change from `Complete` to `Fulfillment Server Error`");
        assert_eq!(status, LineStatus::Complete);
        let mut status = LineStatus::NetworkError;
        assert!(status.transition(LineStatus::TimeoutError).is_ok());
        assert!(status.transition(LineStatus::Complete).is_ok());
        assert!(!LineStatus::NetworkError.can_become(LineStatus::Open));
    }

    #[test]
    fn status_strings_are_the_reference_strings() {
        let json = serde_json::to_string(&LineStatus::ConfigurationError).expect("serializes");
        assert_eq!(json, "\"Fulfillment Configuration Error\"");
        let parsed: OrderStatus = serde_json::from_str("\"Fulfillment Error\"").expect("parses");
        assert_eq!(parsed, OrderStatus::FulfillmentError);
    }
}
