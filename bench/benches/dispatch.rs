//! Module calls and dispatch, in process (no database, no HTTP, no LMS),
//! each beside the native baseline (the same modules' logic as plain Rust
//! behind the same runtime and dispatch: fulfillment-host's
//! `native-baseline` feature).
//!
//! `cargo plugins && cargo bench -p fulfillment-bench` (docs/performance.md);
//! again with `RUST_BACKTRACE=1` to see what backtraces cost (the standard
//! library reads it once per process).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fulfillment_bench::{native, order, runtime, settings_with_only, shipped_settings};
use fulfillment_host::dispatch;
use fulfillment_host::runtime::{LineResult, Runtime};

/// One donation line through the donation module alone: a fresh instance
/// (instantiate + supports-lines + fulfill-product, as every order gets),
/// and the two calls on one warm instance (what wasmtime allows at best;
/// the host never reuses an instance across orders); then the same session
/// and calls on the native baseline. The line must be claimed and complete,
/// as in benches/extism.rs (the peer, on the same order).
fn module_call(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let wasm = tokio.block_on(runtime(&settings_with_only("donation")));
    let native = tokio.block_on(runtime(&native(settings_with_only("donation"))));
    let order = order("EDX-1", 1, &["Donation"]);
    let lines: Vec<_> = order.lines.iter().collect();

    let mut group = c.benchmark_group("module_call");
    for (name, runtime) in [("fresh_instance", &wasm), ("native", &native)] {
        let module = runtime.module("donation").expect("loaded").clone();
        group.bench_function(format!("{name}/donation/1_line"), |b| {
            b.to_async(&tokio).iter(|| async {
                let mut session = module.session(&order.number).await.expect("a session");
                let claims = session.supports_lines(&order, &lines).await.expect("claims");
                assert_eq!(claims, [true]);
                let results = session.fulfill_product(&order, &lines).await.expect("fulfilled");
                assert!(matches!(results[..], [(1, LineResult::Complete { .. })]), "{results:?}");
                results
            })
        });
    }
    let module = wasm.module("donation").expect("loaded").clone();
    let mut warm = tokio.block_on(module.session(&order.number)).expect("a session");
    group.bench_function("warm_instance/donation/1_line", |b| {
        b.iter(|| {
            tokio.block_on(async {
                let claims = warm.supports_lines(&order, &lines).await.expect("claims");
                assert_eq!(claims, [true]);
                let results = warm.fulfill_product(&order, &lines).await.expect("fulfilled");
                assert!(matches!(results[..], [(1, LineResult::Complete { .. })]), "{results:?}");
                results
            })
        })
    });
    group.finish();
}

/// One order through settings.toml's five modules, by size: donation lines
/// only (the donation module's lane: the other four are skipped without an
/// instance), and a mix of donations, coupons and enrollment codes (three
/// modules claim, none calls the LMS); `five_modules` runs the .wasm
/// modules, `native` the native baseline.
fn dispatch_order(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let wasm = tokio.block_on(runtime(&shipped_settings()));
    let native = tokio.block_on(runtime(&native(shipped_settings())));
    for (modules, runtime) in [("five_modules", &wasm), ("native", &native)] {
        for (name, mix) in [("donations", &["Donation"][..]), ("mixed", &["Donation", "Coupon", "Enrollment Code"][..])] {
            dispatch_group(c, &tokio, runtime, &format!("dispatch/{modules}/{name}"), mix);
        }
    }
}

fn dispatch_group(c: &mut Criterion, tokio: &tokio::runtime::Runtime, runtime: &Runtime, group: &str, mix: &[&str]) {
    let mut group = c.benchmark_group(group);
    for lines in [1, 10, 100, 1000] {
        if mix.len() > 1 && lines == 1 {
            continue;
        }
        let template = order("EDX-2", lines, mix);
        group.throughput(Throughput::Elements(lines as u64));
        if lines >= 1000 {
            group.sample_size(20).measurement_time(Duration::from_secs(10));
        }
        group.bench_with_input(BenchmarkId::from_parameter(lines), &template, |b, template| {
            b.to_async(tokio).iter(|| async {
                let mut order = template.clone();
                dispatch::fulfill_order(runtime, &mut order).await.expect("dispatched");
                assert_eq!(order.status, fulfillment_host::model::OrderStatus::Complete, "{:?}", order.notes);
                order
            })
        });
    }
    group.finish();
}

criterion_group!(benches, module_call, dispatch_order);
criterion_main!(benches);
