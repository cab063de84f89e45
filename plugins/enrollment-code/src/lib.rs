//! Fulfills `Enrollment Code` lines with `quantity` single-use, 100%-off
//! voucher codes for the product's course, stored on the line as the
//! attribute `voucher_codes` (comma-separated).
//!
//! The codes are derived, not drawn: a SHA-256 over the config's
//! `code_secret`, the line's idempotency key and the code's index, so a retry
//! yields the same codes and no code is ever issued twice for one line. The
//! secret keeps them unguessable.
//!
//! Config: `code_secret` (required), `max_codes` (optional, default 1000: a
//! larger quantity is a configuration error rather than a huge line).

use fulfillment_guest::{
    FailureKind, Guest, Line, LineOutcome, ModuleInfo, Order, Revocation, RevokeOutcome, attr,
    claim_product_type, complete, config, fail_all, failed, failure, module_info, required_config,
};
use sha2::{Digest, Sha256};

const MODULE: &str = "enrollment-code";
const PRODUCT_TYPE: &str = "Enrollment Code";
const DEFAULT_MAX_CODES: u32 = 1000;
/// Crockford's base32: no I, L, O or U, so codes read aloud without doubt.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_LENGTH: usize = 16;

struct EnrollmentCode;

/// The `index`th code of the line with `idempotency_key`.
fn voucher_code(secret: &str, idempotency_key: &str, index: u32) -> String {
    let mut hasher = Sha256::new();
    for part in [
        secret.as_bytes(),
        idempotency_key.as_bytes(),
        &index.to_be_bytes(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    digest
        .iter()
        .take(CODE_LENGTH)
        .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
        .collect()
}

fn issue(secret: &str, max_codes: u32, line: &Line) -> LineOutcome {
    if line.quantity > max_codes {
        return failed(
            line,
            failure(
                FailureKind::Configuration,
                format!(
                    "line {} asks for {} codes; the module issues at most {max_codes} per line (config `max_codes`)",
                    line.id, line.quantity
                ),
            ),
        );
    }
    let codes: Vec<String> = (0..line.quantity)
        .map(|index| voucher_code(secret, &line.idempotency_key, index))
        .collect();
    complete(
        line,
        vec![
            attr("voucher_codes", codes.join(",")),
            attr("voucher_usage", "single-use"),
            attr("voucher_benefit", "100%"),
        ],
    )
}

impl Guest for EnrollmentCode {
    fn describe() -> ModuleInfo {
        module_info(MODULE, env!("CARGO_PKG_VERSION"), &[PRODUCT_TYPE])
    }

    fn supports_lines(_order: Order, lines: Vec<Line>) -> Vec<bool> {
        claim_product_type(&lines, PRODUCT_TYPE)
    }

    fn fulfill_product(_order: Order, lines: Vec<Line>, _email_opt_in: bool) -> Vec<LineOutcome> {
        let secret = match required_config(MODULE, "code_secret") {
            Ok(secret) => secret,
            Err(why) => return fail_all(&lines, &why),
        };
        let max_codes = config::get("max_codes")
            .and_then(|text| text.parse().ok())
            .unwrap_or(DEFAULT_MAX_CODES);
        lines
            .iter()
            .map(|line| issue(&secret, max_codes, line))
            .collect()
    }

    fn revoke_line(_order: Order, line: Line, _revocation: Revocation) -> RevokeOutcome {
        RevokeOutcome::NotRevoked(format!(
            "enrollment codes are not revoked automatically: disable the codes of line {} by hand",
            line.id
        ))
    }
}

fulfillment_guest::export_module!(EnrollmentCode);
