//! The native baseline (cargo feature `native-baseline`; benchmark-only):
//! the shipped modules' logic as plain Rust, run behind the same runtime and
//! dispatch as the WebAssembly modules, so that a benchmark or a load run can
//! tell what WebAssembly costs (docs/performance.md). Never in a release:
//! these modules run unsandboxed, without limits.
//!
//! A runtime loads them instead of the `.wasm` files when the settings ask
//! for it (`Settings::native_baseline`, which `serve --native-baseline`
//! sets), by each `[[modules]]` entry's name. Each session still gets its
//! store (its HTTP, config and log contexts: the enrollment module's
//! requests go through the host's HTTP policy and credentials as a module's
//! do), but no instance. What they cover: the donation, coupon,
//! enrollment-code and enrollment modules' fulfillment as in `plugins/`;
//! the course-entitlement module's lane only (its lines fail with a
//! configuration error), and no revocations (a refund's revoke is refused).

mod enrollment;
mod enrollment_code;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::module::ModuleInfo;
use super::session::{LineResult, RevokeResult};
use super::state::HostState;
use crate::model::{Line, LineId, LineStatus, Order};

/// A future a native module returns (it may wait on the network).
pub(super) type NativeFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A module's exports as plain Rust, on the host's own model. Each shipped
/// module claims the lines of its one product type.
pub(super) trait NativeModule: Send + Sync {
    /// Its name and the product type it claims.
    fn lane(&self) -> (&'static str, &'static str);

    fn describe(&self) -> ModuleInfo {
        let (name, product_type) = self.lane();
        ModuleInfo {
            name: name.to_string(),
            version: "native-baseline".to_string(),
            product_types: vec![product_type.to_string()],
        }
    }

    /// One answer per line, as `supports-lines`.
    fn supports_lines(&self, _order: &Order, lines: &[&Line]) -> Vec<bool> {
        let (_, product_type) = self.lane();
        lines.iter().map(|line| line.product.product_type == product_type).collect()
    }

    /// One result per line, as `fulfill-product`.
    fn fulfill_product<'a>(
        &'a self,
        host: &'a mut HostState,
        order: &'a Order,
        lines: &'a [&'a Line],
    ) -> NativeFuture<'a, Vec<(LineId, LineResult)>>;

    fn revoke_line(&self, line: &Line) -> RevokeResult {
        RevokeResult::NotRevoked {
            reason: format!("the native baseline does not revoke (line {})", line.id),
        }
    }
}

/// The native module for the `[[modules]]` entry called `name`.
pub(super) fn by_name(name: &str) -> Option<Arc<dyn NativeModule>> {
    Some(match name {
        "donation" => Arc::new(ByProductType { name: "donation", product_type: "Donation", completes: true }),
        "coupon" => Arc::new(ByProductType { name: "coupon", product_type: "Coupon", completes: true }),
        "enrollment-code" => Arc::new(enrollment_code::EnrollmentCode),
        "enrollment" => Arc::new(enrollment::Enrollment),
        "course-entitlement" => Arc::new(ByProductType {
            name: "course-entitlement",
            product_type: "Course Entitlement",
            completes: false,
        }),
        _ => return None,
    })
}

/// The names [`by_name`] knows, for the error that names a module it does not.
pub(super) const NATIVE_MODULES: &str = "donation, coupon, enrollment-code, enrollment, course-entitlement";

/// The donation and coupon modules (nothing to deliver: every line is
/// complete), and a module whose logic the baseline does not have (it
/// declares its lane, so that dispatch offers it the same lines, and fails
/// what it is given).
struct ByProductType {
    name: &'static str,
    product_type: &'static str,
    completes: bool,
}

impl NativeModule for ByProductType {
    fn lane(&self) -> (&'static str, &'static str) {
        (self.name, self.product_type)
    }

    fn fulfill_product<'a>(
        &'a self,
        _host: &'a mut HostState,
        _order: &'a Order,
        lines: &'a [&'a Line],
    ) -> NativeFuture<'a, Vec<(LineId, LineResult)>> {
        let result = |line: &&Line| {
            let result = if self.completes {
                LineResult::Complete { attributes: Default::default(), note: None }
            } else {
                let message = format!("the native baseline has no {} logic", self.name);
                LineResult::Failed { status: LineStatus::ConfigurationError, message }
            };
            (line.id, result)
        };
        Box::pin(std::future::ready(lines.iter().map(result).collect()))
    }
}
