//! The host bindings of the WIT packages in `wit/`: one `bindgen!` per
//! contract version the host serves (`wit/1.0`, `wit/1.1`), each in a module
//! of its own, as Zed serves its extension API versions side by side.
//!
//! The imports (`log`, `config`, `http`) are the same functions in every 1.x
//! version: the linker is given the newest version's, and wasmtime's
//! semver-compatible lookup links a 1.0 module's imports of `@1.0.0` to them.
//! Each version's exports have their own types (1.1's order has more fields),
//! so the host converts its model to each version's records (`convert`).

/// `commerce:fulfillment@1.1.0`: its imports are the ones the host links.
pub mod v1_1 {
    wasmtime::component::bindgen!({
        path: "../wit/1.1",
        world: "fulfillment-module",
        // `http.send` waits on the network: async, so a module waiting on an
        // answer never blocks a tokio worker. Exports are async for the same
        // reason: their calls run on tokio.
        imports: {
            "commerce:fulfillment/http.send": async,
            default: tracing,
        },
        exports: { default: async },
    });

    pub use commerce::fulfillment::types;

    /// The exports a 1.1 component must have.
    pub const REQUIRED_EXPORTS: [&str; 4] = ["describe", "supports-lines", "fulfill-product", "revoke-line"];
}

/// `commerce:fulfillment@1.0.0`, frozen: only its exports are used (its
/// imports are served by 1.1's, above).
pub mod v1_0 {
    wasmtime::component::bindgen!({
        path: "../wit/1.0",
        world: "fulfillment-module",
        imports: { "commerce:fulfillment/http.send": async },
        exports: { default: async },
    });

    pub use commerce::fulfillment::types;

    /// The exports a 1.0 component must have.
    pub const REQUIRED_EXPORTS: [&str; 4] = ["describe", "supports-line", "fulfill-product", "revoke-line"];
}

pub use v1_1::commerce::fulfillment::{config, http, log};
