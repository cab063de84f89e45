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
//! `tok_success_refund_error`, whose credits are refused (declined).
//!
//! A `test` reference is `test_ch_` (a charge) or `test_re_` (a credit) and
//! 32 random hex digits, so references stay unique across processes and
//! restarts, as a real processor's are. A reference never carries the
//! payment token, and no error names it: the token is the payer's secret.
//! Its ledger lives in memory, or, with `[payments] test_ledger = PATH`, in
//! a file of JSON lines shared by every process that names it and kept
//! across restarts, as a real processor keeps its records.
//!
//! Every charge and credit carries an idempotency key, as real processors
//! take one: the same key gives the same receipt and moves money once. The
//! host records its intent (the checkout, the refund's credit) before it
//! calls the processor, and after a crash asks [`Payments::find_charge`]
//! whether a charge of that key went through.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::model::{Currency, Money};

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
    /// A charge whose credits the processor refuses (made with
    /// `tok_success_refund_error`).
    pub refuses_credits: bool,
}

/// The built-in processors.
#[derive(Debug, Clone, Default)]
pub struct Payments {
    ledger: Arc<Mutex<Ledger>>,
}

/// The `test` processor's records.
#[derive(Debug, Default)]
struct Ledger {
    entries: Vec<LedgerEntry>,
    /// Where they are kept, if not only in memory.
    file: Option<PathBuf>,
}

/// A ledger entry as a line of the ledger file.
#[derive(serde::Serialize, serde::Deserialize)]
struct LedgerLine {
    key: String,
    reference: String,
    currency: String,
    minor_units: i64,
    signed_minor_units: i64,
    #[serde(default)]
    refuses_credits: bool,
}

impl Ledger {
    /// Reads the entries other processes wrote to the file meanwhile.
    fn refresh(&mut self) -> Result<(), PaymentError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(unavailable(file, &error)),
        };
        self.entries = text
            .lines()
            .filter_map(|line| serde_json::from_str::<LedgerLine>(line).ok())
            .filter_map(|line| {
                let currency: Currency = line.currency.parse().ok()?;
                Some(LedgerEntry {
                    key: line.key,
                    reference: line.reference,
                    amount: Money {
                        minor_units: line.minor_units,
                        currency,
                    },
                    signed_minor_units: line.signed_minor_units,
                    refuses_credits: line.refuses_credits,
                })
            })
            .collect();
        Ok(())
    }

    /// Records `entry` (in the file first: an entry that cannot be kept is
    /// a processor error, and nothing moved).
    fn push(&mut self, entry: LedgerEntry) -> Result<(), PaymentError> {
        if let Some(file) = &self.file {
            let line = LedgerLine {
                key: entry.key.clone(),
                reference: entry.reference.clone(),
                currency: entry.amount.currency.code().to_string(),
                minor_units: entry.amount.minor_units,
                signed_minor_units: entry.signed_minor_units,
                refuses_credits: entry.refuses_credits,
            };
            let mut text = serde_json::to_string(&line).map_err(|error| PaymentError::Processor(error.to_string()))?;
            text.push('\n');
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .and_then(|mut opened| opened.write_all(text.as_bytes()).and_then(|()| opened.sync_data()));
            written.map_err(|error| unavailable(file, &error))?;
        }
        self.entries.push(entry);
        Ok(())
    }

    fn find(&self, key: &str, prefix: &str) -> Option<Receipt> {
        self.entries
            .iter()
            .find(|entry| entry.key == key && entry.reference.starts_with(prefix))
            .map(|entry| Receipt {
                reference: entry.reference.clone(),
            })
    }
}

/// `prefix` and two draws of fastrand's generator in hex (32 digits). Each
/// thread's generator is seeded from the OS's randomness, so references stay
/// unique across processes and restarts without a counter to share; the
/// generator's state is 64 bits, so this is a 64-bit chance of a collision,
/// not 128 (ample for a test processor).
fn new_reference(prefix: &str) -> String {
    format!("{prefix}{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

fn unavailable(file: &std::path::Path, error: &std::io::Error) -> PaymentError {
    PaymentError::Processor(format!("the test processor's ledger {} is unavailable: {error}", file.display()))
}

impl Payments {
    /// The processors, with the `test` ledger in memory.
    pub fn new() -> Payments {
        Payments::default()
    }

    /// The processors, with the `test` ledger kept in `file`.
    pub fn with_ledger_file(file: PathBuf) -> Payments {
        Payments {
            ledger: Arc::new(Mutex::new(Ledger {
                entries: Vec::new(),
                file: Some(file),
            })),
        }
    }

    /// Whether `processor` can take a charge of `amount` at all: checked
    /// before anything is recorded, so that a wrong processor is a plain 422.
    pub fn accepts(&self, processor: &str, amount: Money) -> Result<(), PaymentError> {
        match processor {
            "free" if amount.minor_units != 0 => Err(PaymentError::NotAllowed(format!(
                "processor `free` takes only a total of 0, not {amount}"
            ))),
            "free" | "test" => Ok(()),
            other => Err(PaymentError::NotAllowed(format!(
                "unknown payment processor `{other}`: use `test` or `free`"
            ))),
        }
    }

    /// Charges `amount` through `processor` with `token`, once per `key`:
    /// a repeated key gives the first charge's receipt.
    pub fn charge(&self, processor: &str, token: &str, amount: Money, key: &str) -> Result<Receipt, PaymentError> {
        if amount.minor_units < 0 {
            return Err(PaymentError::NotAllowed(format!("cannot charge a negative amount ({amount})")));
        }
        match processor {
            // Nothing moves, but the reference is still the payment's own.
            "free" if amount.minor_units == 0 => Ok(Receipt {
                reference: new_reference("free_"),
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
                    // The token is the payer's secret: never echoed.
                    return Err(PaymentError::Declined(
                        "unknown test token (use tok_success, tok_decline, tok_insufficient_funds or tok_error)".into(),
                    ));
                }
                let mut ledger = self.lock();
                ledger.refresh()?;
                if let Some(done) = ledger.find(key, "test_ch_") {
                    return Ok(done);
                }
                let reference = new_reference("test_ch_");
                ledger.push(LedgerEntry {
                    key: key.to_string(),
                    reference: reference.clone(),
                    amount,
                    signed_minor_units: amount.minor_units,
                    refuses_credits: token == "tok_success_refund_error",
                })?;
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
                reference: new_reference("free_"),
            }),
            "test" => {
                let mut ledger = self.lock();
                ledger.refresh()?;
                if ledger.entries.iter().any(|entry| entry.reference == charge_reference && entry.refuses_credits) {
                    return Err(PaymentError::Declined("the test processor refuses this credit".into()));
                }
                if let Some(done) = ledger.find(key, "test_re_") {
                    return Ok(done);
                }
                let reference = new_reference("test_re_");
                ledger.push(LedgerEntry {
                    key: key.to_string(),
                    reference: reference.clone(),
                    amount,
                    signed_minor_units: -amount.minor_units,
                    refuses_credits: false,
                })?;
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
            "test" => {
                let mut ledger = self.lock();
                ledger.refresh()?;
                Ok(ledger.find(key, "test_ch_"))
            }
            other => Err(PaymentError::NotAllowed(format!("unknown payment processor `{other}`"))),
        }
    }

    /// Every charge and credit of the `test` processor so far.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        let mut ledger = self.lock();
        if let Err(error) = ledger.refresh() {
            tracing::warn!(%error, "cannot read the test ledger");
        }
        ledger.entries.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
