//! Refund and refund-line statuses and the only transitions allowed
//! between them: the reference's refund pipelines, to the letter.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::TransitionError;

/// A refund's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum RefundStatus {
    #[serde(rename = "Open")]
    Open,
    #[serde(rename = "Denied")]
    Denied,
    #[serde(rename = "Payment Refund Error")]
    PaymentRefundError,
    #[serde(rename = "Payment Refunded")]
    PaymentRefunded,
    #[serde(rename = "Revocation Error")]
    RevocationError,
    #[serde(rename = "Complete")]
    Complete,
}

/// A refund line's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum RefundLineStatus {
    #[serde(rename = "Open")]
    Open,
    #[serde(rename = "Denied")]
    Denied,
    #[serde(rename = "Revocation Error")]
    RevocationError,
    #[serde(rename = "Complete")]
    Complete,
}

impl RefundStatus {
    pub const ALL: [RefundStatus; 6] = [
        RefundStatus::Open,
        RefundStatus::Denied,
        RefundStatus::PaymentRefundError,
        RefundStatus::PaymentRefunded,
        RefundStatus::RevocationError,
        RefundStatus::Complete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Open => "Open",
            RefundStatus::Denied => "Denied",
            RefundStatus::PaymentRefundError => "Payment Refund Error",
            RefundStatus::PaymentRefunded => "Payment Refunded",
            RefundStatus::RevocationError => "Revocation Error",
            RefundStatus::Complete => "Complete",
        }
    }

    pub fn parse(text: &str) -> Option<RefundStatus> {
        RefundStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether the pipeline allows `self -> to`.
    pub fn can_become(self, to: RefundStatus) -> bool {
        use RefundStatus::*;
        matches!(
            (self, to),
            (Open, Denied | PaymentRefundError | PaymentRefunded)
                | (PaymentRefundError, PaymentRefunded | PaymentRefundError)
                | (PaymentRefunded, RevocationError | Complete)
                | (RevocationError, RevocationError | Complete)
        )
    }

    /// Moves to `to`, or refuses if the pipeline does not allow it.
    pub fn transition(&mut self, to: RefundStatus) -> Result<(), TransitionError> {
        if !self.can_become(to) {
            return Err(TransitionError {
                what: "refund",
                from: self.to_string(),
                to: to.to_string(),
            });
        }
        *self = to;
        Ok(())
    }
}

impl RefundLineStatus {
    pub const ALL: [RefundLineStatus; 4] = [
        RefundLineStatus::Open,
        RefundLineStatus::Denied,
        RefundLineStatus::RevocationError,
        RefundLineStatus::Complete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefundLineStatus::Open => "Open",
            RefundLineStatus::Denied => "Denied",
            RefundLineStatus::RevocationError => "Revocation Error",
            RefundLineStatus::Complete => "Complete",
        }
    }

    pub fn parse(text: &str) -> Option<RefundLineStatus> {
        RefundLineStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether the pipeline allows `self -> to`.
    pub fn can_become(self, to: RefundLineStatus) -> bool {
        use RefundLineStatus::*;
        matches!(
            (self, to),
            (Open, Denied | RevocationError | Complete) | (RevocationError, RevocationError | Complete)
        )
    }

    /// Moves to `to`, or refuses if the pipeline does not allow it.
    pub fn transition(&mut self, to: RefundLineStatus) -> Result<(), TransitionError> {
        if !self.can_become(to) {
            return Err(TransitionError {
                what: "refund line",
                from: self.to_string(),
                to: to.to_string(),
            });
        }
        *self = to;
        Ok(())
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RefundLineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_transitions_are_exactly_the_pipeline() {
        let allowed: Vec<(&str, &str)> = RefundStatus::ALL
            .iter()
            .flat_map(|from| RefundStatus::ALL.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_become(*to))
            .map(|(from, to)| (from.as_str(), to.as_str()))
            .collect();
        assert_eq!(
            allowed,
            [
                ("Open", "Denied"),
                ("Open", "Payment Refund Error"),
                ("Open", "Payment Refunded"),
                ("Payment Refund Error", "Payment Refund Error"),
                ("Payment Refund Error", "Payment Refunded"),
                ("Payment Refunded", "Revocation Error"),
                ("Payment Refunded", "Complete"),
                ("Revocation Error", "Revocation Error"),
                ("Revocation Error", "Complete"),
            ]
        );
    }

    #[test]
    fn refund_line_transitions_are_exactly_the_pipeline() {
        let allowed: Vec<(&str, &str)> = RefundLineStatus::ALL
            .iter()
            .flat_map(|from| RefundLineStatus::ALL.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_become(*to))
            .map(|(from, to)| (from.as_str(), to.as_str()))
            .collect();
        assert_eq!(
            allowed,
            [
                ("Open", "Denied"),
                ("Open", "Revocation Error"),
                ("Open", "Complete"),
                ("Revocation Error", "Revocation Error"),
                ("Revocation Error", "Complete"),
            ]
        );
        let mut denied = RefundStatus::Denied;
        let error = denied.transition(RefundStatus::PaymentRefunded).expect_err("Denied is final");
        assert_eq!(error.to_string(), "refund status cannot change from `Denied` to `Payment Refunded`");
    }
}
