//! Fulfills `Coupon` lines: the coupon exists once the order is placed, so
//! every line is complete. Revoking a coupon is not implemented, as in the
//! reference's CouponFulfillmentModule: staff handle it by hand.

use fulfillment_guest::{
    Guest, Line, LineOutcome, ModuleInfo, Order, Revocation, RevokeOutcome, claim_product_type,
    complete, module_info,
};

const PRODUCT_TYPE: &str = "Coupon";

struct Coupon;

impl Guest for Coupon {
    fn describe() -> ModuleInfo {
        module_info("coupon", env!("CARGO_PKG_VERSION"), &[PRODUCT_TYPE])
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
        RevokeOutcome::NotRevoked("revoking a coupon is not supported: disable it by hand".into())
    }
}

fulfillment_guest::export_module!(Coupon);
