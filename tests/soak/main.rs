//! The host's memory does not grow with faults: a thousand orders, each with
//! a line for a module that traps, spins, bombs its memory, overflows its
//! stack, floods its log or returns too much, and a donation line that must
//! complete every time. Resident memory is read before and after.
//!
//! A test binary of its own, so that no other test shares the process whose
//! memory it measures.

use std::path::Path;

use fulfillment_host::dispatch;
use fulfillment_host::model::{LineStatus, Order, OrderDocument};
use fulfillment_host::runtime::Runtime;
use fulfillment_host::settings::Settings;
use fulfillment_tests::artifacts::module_path;
use serde_json::json;

/// Orders run before the first reading, so that pools, caches and the
/// allocator's arenas are warm.
const WARM_UP: usize = 100;
const FAULTS: usize = 1_000;
/// What the process may grow by over the thousand faults: far below what a
/// leak of one instance per fault would cost (every fault touches at least
/// a 64 KiB page of guest memory; the memory bomb 4 MiB).
const GROWTH_ALLOWED_BYTES: u64 = 32 * 1024 * 1024;

/// (product type, behaviour, extra config, limits): one fixture per fault.
const FAULT_MODULES: [(&str, &str, &str, &str); 6] = [
    ("Trap", "trap-in-fulfill", "", ""),
    ("Loop", "loop", "", "cpu_ms = 10"),
    ("Bomb", "memory-bomb", "", "memory_bytes = 4194304"),
    ("Deep", "stack-overflow", "", ""),
    ("Chatty", "log-flood", "log_messages = \"1000\"", "log_bytes = 1024"),
    ("Big", "huge-output", "output_bytes = \"100000\"", "output_bytes = 65536"),
];

fn settings() -> Settings {
    let mut toml = String::new();
    for (product_type, behaviour, config, limits) in FAULT_MODULES {
        toml.push_str(&format!(
            "[[modules]]\nname = \"{}\"\npath = {:?}\n[modules.config]\nclaim = \"{product_type}\"\nbehaviour = \"{behaviour}\"\n{config}\n[modules.limits]\n{limits}\n[modules.circuit_breaker]\nfailures = 0\n",
            behaviour,
            module_path("misbehaving").display().to_string(),
        ));
    }
    toml.push_str(&format!("[[modules]]\nname = \"donation\"\npath = {:?}\n", module_path("donation").display().to_string()));
    let mut settings = Settings::parse(&toml, Path::new("/soak/settings.toml")).expect("valid settings");
    // The test run's compiled-module cache, not the user's.
    settings.module_cache =
        fulfillment_host::settings::ModuleCacheDir::At(fulfillment_tests::host_process::shared_module_cache_dir());
    settings
}

fn order(number: usize) -> Order {
    let (fault_type, _, _, _) = FAULT_MODULES[number % FAULT_MODULES.len()];
    let document = json!({
        "number": format!("SOAK-{number}"),
        "user": {"username": "alice", "email": "alice@example.com"},
        "date_placed": "2026-11-30T12:00:00Z",
        "currency": "USD",
        "lines": [
            {"id": 1, "unit_price": "1.00", "product": {"sku": "F", "product_type": fault_type, "title": "F"}},
            {"id": 2, "unit_price": "1.00", "product": {"sku": "D", "product_type": "Donation", "title": "D"}},
        ],
    });
    OrderDocument::parse(&document.to_string()).expect("valid order")
}

/// VmRSS of this process, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

async fn run(runtime: &Runtime, numbers: std::ops::Range<usize>) {
    for number in numbers {
        let mut order = order(number);
        dispatch::fulfill_order(runtime, &mut order).await.expect("dispatch runs");
        // A log flood is cut at the budget; the module's line still completes.
        let (fault_type, _, _, _) = FAULT_MODULES[number % FAULT_MODULES.len()];
        let expected_error = fault_type != "Chatty";
        assert_eq!(order.lines[0].status.is_error(), expected_error, "order {number}: {:?}", order.notes);
        assert_eq!(order.lines[1].status, LineStatus::Complete, "order {number}: the donation line completes");
    }
}

#[tokio::test]
async fn a_thousand_faults_leave_the_hosts_memory_where_it_was() {
    let runtime = Runtime::load(&settings()).await.expect("modules load");
    run(&runtime, 0..WARM_UP).await;
    let before = resident_bytes();
    run(&runtime, WARM_UP..WARM_UP + FAULTS).await;
    let after = resident_bytes();
    let growth = after.saturating_sub(before);
    println!("resident memory: {} KiB before, {} KiB after {FAULTS} faults (+{} KiB)", before / 1024, after / 1024, growth / 1024);
    assert!(
        growth < GROWTH_ALLOWED_BYTES,
        "resident memory grew by {growth} bytes over {FAULTS} faults (from {before} to {after})"
    );
}
