//! What a module's `Store` holds: one context per capability the host grants.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use std::sync::Arc;

use super::host::{ConfigCtx, HttpCtx, LogCtx};
use super::limiter::GrowthLimiter;
use super::meter::CallMeter;

/// How much of a module's stderr the host keeps per store: enough for a
/// panic message, which then goes into the note of a failed line.
const STDERR_CAPTURE_BYTES: usize = 4096;

/// The data of one module's store for one order.
pub struct HostState {
    /// WASI with nothing granted: the standard library of a `wasm32-wasip2`
    /// guest imports it, but gets no files, environment, sockets or stdin.
    wasi: WasiCtx,
    table: ResourceTable,
    /// The guest's stderr, kept for fault notes.
    pub stderr: MemoryOutputPipe,
    pub log: LogCtx,
    pub config: ConfigCtx,
    pub http: HttpCtx,
    /// The memory and table caps.
    pub limiter: GrowthLimiter,
    /// The CPU time of the call in progress (read by the epoch callback).
    pub meter: Arc<CallMeter>,
}

impl HostState {
    pub fn new(log: LogCtx, config: ConfigCtx, http: HttpCtx, limiter: GrowthLimiter, meter: Arc<CallMeter>) -> HostState {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            stderr,
            log,
            config,
            http,
            limiter,
            meter,
        }
    }

    /// What the guest wrote to stderr, lossily decoded and trimmed.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).trim().to_string()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
