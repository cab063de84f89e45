//! Payment processors: collect payment before an order exists, credit it on
//! a refund.
//!
//! Two processors are built in. `free` takes only a total of 0 (no money
//! moves). `test` is deterministic, for storefront development and tests; its
//! tokens decide the outcome:
//!
//! | token | charge |
//! |---|---|
//! | `tok_success` (or any token starting with it) | succeeds |
//! | `tok_decline` | declined: "card declined" |
//! | `tok_insufficient_funds` | declined: "insufficient funds" |
//! | `tok_error` | processor error |
//!
//! Credits (refunds) on `test` always succeed, except for a charge made with
//! `tok_success_refund_error`, whose credits fail with a processor error.
//!
//! Every charge and credit carries an idempotency key, as real processors
//! take one: the same key gives the same receipt and moves money once. The
//! host records its intent (the checkout, the refund's credit) before it
//! calls the processor, and after a crash asks [`Payments::find_charge`]
//! whether a charge of that key went through.

use std::sync::{Arc, Mutex};

use crate::model::Money;

/// Why a charge or a credit did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The payer's side said no: no money moved.
    #[error("payment declined: {0}")]
    Declined(String),
    /// The processor failed: no money moved, try again later.
    #[error("payment processor error: {0}")]
    Processor(String),
    /// The request cannot be paid this way.
    #[error("{0}")]
    NotAllowed(String),
}

/// A successful charge or credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The processor's reference for it.
    pub reference: String,
}

/// One charge the `test` processor made (for tests to count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The caller's idempotency key.
    pub key: String,
    pub reference: String,
    pub amount: Money,
    /// Negative for credits.
    pub signed_minor_units: i64,
}

/// The built-in processors.
#[derive(Debug, Clone, Default)]
pub struct Payments {
    ledger: Arc<Mutex<Vec<LedgerEntry>>>,
}

impl Payments {
    pub fn new() -> Payments {
        Payments::default()
    }

    /// Charges `amount` through `processor` with `token`, once per `key`:
    /// a repeated key gives the first charge's receipt.
    pub fn charge(&self, processor: &str, token: &str, amount: Money, key: &str) -> Result<Receipt, PaymentError> {
        if amount.minor_units < 0 {
            return Err(PaymentError::NotAllowed(format!("cannot charge a negative amount ({amount})")));
        }
        match processor {
            "free" if amount.minor_units == 0 => Ok(Receipt {
                reference: "free".to_string(),
            }),
            "free" => Err(PaymentError::NotAllowed(format!(
                "processor `free` takes only a total of 0, not {amount}"
            ))),
            "test" => {
                if token == "tok_decline" {
                    return Err(PaymentError::Declined("card declined".into()));
                }
                if token == "tok_insufficient_funds" {
                    return Err(PaymentError::Declined("insufficient funds".into()));
                }
                if token == "tok_error" {
                    return Err(PaymentError::Processor("the test processor is unavailable (tok_error)".into()));
                }
                if !token.starts_with("tok_success") {
                    return Err(PaymentError::Declined(format!("unknown test token `{token}`")));
                }
                let mut ledger = self.lock();
                if let Some(done) = ledger.iter().find(|entry| entry.key == key) {
                    return Ok(Receipt {
                        reference: done.reference.clone(),
                    });
                }
                let reference = format!("test_ch_{}_{}", ledger.len() + 1, token);
                ledger.push(LedgerEntry {
                    key: key.to_string(),
                    reference: reference.clone(),
                    amount,
                    signed_minor_units: amount.minor_units,
                });
                Ok(Receipt { reference })
            }
            other => Err(PaymentError::NotAllowed(format!(
                "unknown payment processor `{other}`: use `test` or `free`"
            ))),
        }
    }

    /// Credits `amount` back on the charge `charge_reference` of
    /// `processor`, once per `key`.
    pub fn credit(&self, processor: &str, charge_reference: &str, amount: Money, key: &str) -> Result<Receipt, PaymentError> {
        if amount.minor_units < 0 {
            return Err(PaymentError::NotAllowed(format!("cannot credit a negative amount ({amount})")));
        }
        match processor {
            "free" => Ok(Receipt {
                reference: "free".to_string(),
            }),
            "test" if charge_reference.ends_with("tok_success_refund_error") => {
                Err(PaymentError::Processor("the test processor refuses this credit".into()))
            }
            "test" => {
                let mut ledger = self.lock();
                if let Some(done) = ledger.iter().find(|entry| entry.key == key) {
                    return Ok(Receipt {
                        reference: done.reference.clone(),
                    });
                }
                let reference = format!("test_re_{}", ledger.len() + 1);
                ledger.push(LedgerEntry {
                    key: key.to_string(),
                    reference: reference.clone(),
                    amount,
                    signed_minor_units: -amount.minor_units,
                });
                Ok(Receipt { reference })
            }
            other => Err(PaymentError::NotAllowed(format!("unknown payment processor `{other}`"))),
        }
    }

    /// The charge made with idempotency key `key`, if one went through.
    /// `free` moves no money, so it never has one to find.
    pub fn find_charge(&self, processor: &str, key: &str) -> Result<Option<Receipt>, PaymentError> {
        match processor {
            "free" => Ok(None),
            "test" => Ok(self
                .lock()
                .iter()
                .find(|entry| entry.key == key && entry.reference.starts_with("test_ch_"))
                .map(|entry| Receipt {
                    reference: entry.reference.clone(),
                })),
            other => Err(PaymentError::NotAllowed(format!("unknown payment processor `{other}`"))),
        }
    }

    /// Every charge and credit of the `test` processor so far.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LedgerEntry>> {
        self.ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
