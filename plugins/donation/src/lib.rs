//! Fulfills `Donation` lines: nothing to deliver, so every line is complete,
//! and a refund revokes at once (as the reference's DonationsFromCheckoutTestFulfillmentModule).

use fulfillment_guest::{
    Guest, Line, LineOutcome, ModuleInfo, Order, Revocation, RevokeOutcome, claim_product_type,
    complete, module_info,
};

const PRODUCT_TYPE: &str = "Donation";

struct Donation;

impl Guest for Donation {
    fn describe() -> ModuleInfo {
        module_info("donation", env!("CARGO_PKG_VERSION"), &[PRODUCT_TYPE])
    }

    fn supports_lines(_order: Order, lines: Vec<Line>) -> Vec<bool> {
        claim_product_type(&lines, PRODUCT_TYPE)
    }

    fn fulfill_product(_order: Order, lines: Vec<Line>, _email_opt_in: bool) -> Vec<LineOutcome> {
        lines
            .iter()
            .map(|line| complete(line, Vec::new()))
            .collect()
    }

    fn revoke_line(_order: Order, _line: Line, _revocation: Revocation) -> RevokeOutcome {
        RevokeOutcome::Revoked(None)
    }
}

fulfillment_guest::export_module!(Donation);
