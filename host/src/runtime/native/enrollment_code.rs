//! plugins/enrollment-code as plain Rust: `quantity` voucher codes per line,
//! derived from the config's `code_secret` and the line's idempotency key.

use sha2::{Digest, Sha256};

use super::{NativeFuture, NativeModule};
use crate::model::{Line, LineId, LineStatus, Order};
use crate::runtime::bindings::config::Host as _;
use crate::runtime::session::LineResult;
use crate::runtime::state::HostState;

const MODULE: &str = "enrollment-code";
const PRODUCT_TYPE: &str = "Enrollment Code";
const DEFAULT_MAX_CODES: u32 = 1000;
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_LENGTH: usize = 16;

pub(super) struct EnrollmentCode;

/// The `index`th code of the line with `idempotency_key` (as the module's).
fn voucher_code(secret: &str, idempotency_key: &str, index: u32) -> String {
    let mut hasher = Sha256::new();
    for part in [secret.as_bytes(), idempotency_key.as_bytes(), &index.to_be_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .take(CODE_LENGTH)
        .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
        .collect()
}

fn issue(order: &Order, secret: &str, max_codes: u32, line: &Line) -> (LineId, LineResult) {
    if line.quantity > max_codes {
        let message = format!(
            "line {} asks for {} codes; the module issues at most {max_codes} per line (config `max_codes`)",
            line.id, line.quantity
        );
        return (line.id, LineResult::Failed { status: LineStatus::ConfigurationError, message });
    }
    let key = line.idempotency_key(&order.number);
    let codes: Vec<String> = (0..line.quantity).map(|index| voucher_code(secret, &key, index)).collect();
    let attributes = [
        ("voucher_codes", codes.join(",")),
        ("voucher_usage", "single-use".to_string()),
        ("voucher_benefit", "100%".to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    (line.id, LineResult::Complete { attributes, note: None })
}

impl NativeModule for EnrollmentCode {
    fn lane(&self) -> (&'static str, &'static str) {
        (MODULE, PRODUCT_TYPE)
    }

    fn fulfill_product<'a>(
        &'a self,
        host: &'a mut HostState,
        order: &'a Order,
        lines: &'a [&'a Line],
    ) -> NativeFuture<'a, Vec<(LineId, LineResult)>> {
        let results = match host.config.get("code_secret".into()).filter(|secret| !secret.trim().is_empty()) {
            Some(secret) => {
                let max_codes = host
                    .config
                    .get("max_codes".into())
                    .and_then(|text| text.parse().ok())
                    .unwrap_or(DEFAULT_MAX_CODES);
                lines.iter().map(|line| issue(order, &secret, max_codes, line)).collect()
            }
            None => {
                let message = format!("module {MODULE}: config key `code_secret` is not set in settings.toml");
                let failed = |line: &&Line| (line.id, LineResult::Failed { status: LineStatus::ConfigurationError, message: message.clone() });
                lines.iter().map(failed).collect()
            }
        };
        Box::pin(std::future::ready(results))
    }
}
