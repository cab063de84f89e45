//! The host bindings of the WIT package in `wit/`: the one `bindgen!` call.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/1.0",
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
}

pub use generated::commerce::fulfillment::{config, http, log, types};
pub use generated::{FulfillmentModule, FulfillmentModulePre};

/// The names a component must export to implement the world.
pub const REQUIRED_EXPORTS: [&str; 4] = ["describe", "supports-line", "fulfill-product", "revoke-line"];
