//! What the benchmarks share: the repository's settings and modules, and
//! orders of a chosen size.

use std::path::{Path, PathBuf};

use fulfillment_host::model::{Order, OrderDocument};
use fulfillment_host::runtime::{ModuleEngine, Runtime};
use fulfillment_host::settings::Settings;

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// settings.toml of the repository: the five shipped modules, in order.
pub fn shipped_settings() -> Settings {
    let path = root().join("settings.toml");
    Settings::load(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// settings.toml with only the module called `name`.
pub fn settings_with_only(name: &str) -> Settings {
    let mut settings = shipped_settings();
    settings.modules.retain(|module| module.name.to_string() == name);
    assert_eq!(settings.modules.len(), 1, "settings.toml has a module {name}");
    settings
}

/// The modules of `settings`, loaded on a new engine (run `cargo plugins`
/// first).
pub async fn runtime(settings: &Settings) -> Runtime {
    let engine = ModuleEngine::for_settings(settings).expect("an engine");
    Runtime::load_with(engine, settings).await.expect("the modules load: run `cargo plugins` first")
}

/// The same settings with the native baseline's plain Rust modules in place
/// of the `.wasm` files (fulfillment-host's `native-baseline` feature).
pub fn native(mut settings: Settings) -> Settings {
    settings.native_baseline = true;
    settings
}

/// An order of `lines` lines of the product types in `mix`, taken in turn
/// (the catalog's demo products, with what their modules need and no LMS):
/// `["Donation"]`, or `["Donation", "Coupon", "Enrollment Code"]`.
pub fn order(number: &str, lines: usize, mix: &[&str]) -> Order {
    let lines: Vec<serde_json::Value> = (0..lines)
        .map(|index| {
            let product_type = mix[index % mix.len()];
            let attributes = match product_type {
                "Enrollment Code" => serde_json::json!({"course_key": "course-v1:edX+DemoX+Demo_Course", "seat_type": "verified"}),
                _ => serde_json::json!({}),
            };
            serde_json::json!({
                "id": index + 1,
                "unit_price": "20.00",
                "product": {"sku": format!("SKU-{index}"), "product_type": product_type, "title": product_type, "attributes": attributes},
            })
        })
        .collect();
    let document = serde_json::json!({
        "number": number,
        "user": {"username": "alice", "email": "alice@example.com"},
        "date_placed": "2026-11-29T12:00:00Z",
        "currency": "USD",
        "lines": lines,
    });
    OrderDocument::parse(&document.to_string()).expect("a valid order")
}
