//! The peer: Extism (the `extism` host crate 1.30, wasmtime 43) running the
//! donation module's logic as a plugin (bench/extism-donation: JSON in and
//! out), for the same order as `module_call/fresh_instance/donation/1_line`
//! in dispatch.rs, in the same `cargo bench` run.
//!
//! `cargo extism-plugins && cargo bench -p fulfillment-bench -- module_call`
//! (docs/performance.md, "Peer: Extism"). A binary of its own: the process
//! that runs our wasmtime 48 does not also load Extism's wasmtime 43.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use extism::{CompiledPlugin, Plugin, PluginBuilder};
use fulfillment_bench::order;
use fulfillment_host::model::Order;
use serde::Deserialize;

/// The command that builds the plugin (.cargo/config.toml).
const BUILD_COMMAND: &str = "cargo extism-plugins";

/// The target folder this bench was built in: CARGO_TARGET_TMPDIR is its
/// `tmp` (cargo sets it for benches; it follows CARGO_TARGET_DIR).
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// The plugin's bytes, or a panic naming the command that builds them: the
/// bench has no build script, so that a dev build of the bench crate does
/// not build wasm too.
fn plugin_wasm() -> Vec<u8> {
    let path = target_dir().join("wasm32-unknown-unknown/plugin/extism_donation.wasm");
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}: run `{BUILD_COMMAND}` first", path.display()))
}

/// A wasmtime cache configuration for Extism's default on-disk cache, in
/// the target folder rather than the user's ~/.cache (a test run should not
/// write there); Extism reads a file, not a folder.
fn cache_config() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let folder = tmp.join("extism-cache");
    let file = tmp.join("extism-cache.toml");
    std::fs::create_dir_all(&folder).unwrap_or_else(|error| panic!("{}: {error}", folder.display()));
    // A TOML basic string: the path's backslashes and quotes escaped.
    let quoted = folder.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    std::fs::write(&file, format!("[cache]\ndirectory = \"{quoted}\"\n"))
        .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
    file
}

/// What `fulfill_product` answers for a line, as the plugin writes it (the
/// WIT's `line-outcome`).
#[derive(Debug, Deserialize)]
struct LineOutcome {
    line_id: u64,
    outcome: Outcome,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum Outcome {
    Complete {
        attributes: BTreeMap<String, String>,
        note: Option<String>,
    },
    Failed {
        kind: String,
        message: String,
    },
}

/// What a JSON host does for one order with one module: the order to JSON
/// (serde_json, once: both calls are given the order with its lines, and
/// here the module claims them all), `supports_lines`, `fulfill_product`,
/// each answer parsed; the line must be claimed and complete.
fn claim_and_fulfill(plugin: &mut Plugin, order: &Order) -> Vec<LineOutcome> {
    let input = serde_json::to_vec(order).expect("an order serializes");
    let answer: &[u8] = plugin.call("supports_lines", input.as_slice()).expect("supports_lines");
    let claims: Vec<bool> = serde_json::from_slice(answer).expect("supports_lines answers a list of booleans");
    assert_eq!(claims, [true]);
    let answer: &[u8] = plugin.call("fulfill_product", input.as_slice()).expect("fulfill_product");
    let outcomes: Vec<LineOutcome> = serde_json::from_slice(answer).expect("fulfill_product answers line outcomes");
    assert!(
        matches!(outcomes[..], [LineOutcome { line_id: 1, outcome: Outcome::Complete { .. } }]),
        "{outcomes:?}"
    );
    outcomes
}

/// One donation line through the plugin: a new plugin instance per order
/// (from a `CompiledPlugin`, Extism's precompiled plugin; and from the wasm
/// bytes with `Plugin::new`'s own path, its on-disk cache hit and not), and
/// the two calls on one warm instance.
fn extism_module_call(c: &mut Criterion) {
    let wasm = plugin_wasm();
    let order = order("EDX-1", 1, &["Donation"]);
    // No WASI: the plugin imports only Extism's own functions.
    let compiled = CompiledPlugin::new(PluginBuilder::new(wasm.as_slice()).with_wasi(false).with_cache_disabled())
        .expect("the plugin compiles");
    let cache_config = cache_config();

    let mut group = c.benchmark_group("module_call");
    group.bench_function("extism/fresh_instance/donation/1_line", |b| {
        b.iter(|| {
            let mut plugin = Plugin::new_from_compiled(&compiled).expect("a plugin instance");
            claim_and_fulfill(&mut plugin, &order)
        })
    });
    // What `Plugin::new(&wasm, [], false)` does, its wasmtime cache in the
    // target folder: an engine, the wasm hashed and loaded from the cache
    // (compiled once, by the first iteration), then the calls.
    group.bench_function("extism/plugin_new/donation/1_line", |b| {
        b.iter(|| {
            let mut plugin = PluginBuilder::new(wasm.as_slice())
                .with_wasi(false)
                .with_cache_config(&cache_config)
                .build()
                .expect("a plugin");
            claim_and_fulfill(&mut plugin, &order)
        })
    });
    // The same without a cache: cranelift compiles the plugin (and Extism's
    // kernel module) for every order.
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    group.bench_function("extism/plugin_new_uncached/donation/1_line", |b| {
        b.iter(|| {
            let mut plugin = PluginBuilder::new(wasm.as_slice())
                .with_wasi(false)
                .with_cache_disabled()
                .build()
                .expect("a plugin");
            claim_and_fulfill(&mut plugin, &order)
        })
    });
    group.sample_size(100).measurement_time(Duration::from_secs(5));
    let mut warm = Plugin::new_from_compiled(&compiled).expect("a plugin instance");
    group.bench_function("extism/warm_instance/donation/1_line", |b| b.iter(|| claim_and_fulfill(&mut warm, &order)));
    group.finish();
}

criterion_group!(benches, extism_module_call);
criterion_main!(benches);
