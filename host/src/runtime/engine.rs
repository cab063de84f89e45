//! The shared engine (with the linker and the compiled components) and the
//! runtime: the modules loaded from the settings, in dispatch order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{config, http, log};
use super::compile_cache::{CompileCache, ComponentOrigin};
use super::host::{ConfigCtx, HttpCtx, LogCtx};
use super::meter::TICK;
use super::module::LoadedModule;
use super::state::HostState;
use super::LoadError;
use crate::settings::{
    LoadFailurePolicy, MEMORY_CEILING_BYTES, ModuleCacheDir, ModuleSettings, Settings, Sha256Digest,
    TABLE_CEILING_ELEMENTS,
};

/// The most instances alive at once across all modules (each order being
/// dispatched holds at most one per module, and each module at most its
/// `max_in_flight`).
const MAX_LIVE_INSTANCES: u32 = 1_000;

/// How much of a freed instance's linear memory and tables stays resident
/// for the next instance in its slot (reset in place instead of decommitted).
/// At most this much RSS per idle slot (wasmtime keeps up to 100 idle slots).
const KEEP_RESIDENT_MEMORY_BYTES: usize = 4 << 20;
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;

/// What every store is made from: the engine, the linker with the host's
/// imports, and each component compiled once (by digest). Cheap to clone;
/// several runtimes (a reload of the settings, the tests) can share one, so a
/// module file is compiled once per process however often it is loaded; with
/// an on-disk cache ([`ModuleEngine::build_cached`]), once per machine.
#[derive(Clone)]
pub struct ModuleEngine(Arc<EngineInner>);

struct EngineInner {
    engine: Engine,
    linker: Linker<HostState>,
    compiled: Mutex<HashMap<Sha256Digest, (Component, ComponentOrigin)>>,
    /// The on-disk cache of compiled components, when there is a usable one.
    disk_cache: Option<CompileCache>,
    meters_fuel: bool,
    /// Stops the epoch ticker when the engine goes.
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl ModuleEngine {
    /// An engine without fuel metering (CPU deadlines still apply).
    pub fn new() -> Result<ModuleEngine, LoadError> {
        ModuleEngine::build(false)
    }

    /// An engine with fuel metering when `settings` gives any module a fuel
    /// budget. Metering costs every module some speed, so it is on only
    /// when asked for.
    /// The engine caches compiled modules in `[runtime] module_cache_dir`.
    pub fn for_settings(settings: &Settings) -> Result<ModuleEngine, LoadError> {
        ModuleEngine::build_cached(
            settings.enabled_modules().any(|module| module.limits.fuel.is_some()),
            &settings.module_cache,
        )
    }

    /// An engine that meters fuel or not, without an on-disk cache.
    pub fn build(meter_fuel: bool) -> Result<ModuleEngine, LoadError> {
        ModuleEngine::build_cached(meter_fuel, &ModuleCacheDir::Off)
    }

    /// An engine that meters fuel or not, and keeps compiled components in
    /// `cache_dir` (a folder that cannot be used is logged, never an error).
    pub fn build_cached(meter_fuel: bool, cache_dir: &ModuleCacheDir) -> Result<ModuleEngine, LoadError> {
        // Per-module caps (memory_bytes, table_elements) are enforced by each
        // store's limiter, below these engine-wide ceilings.
        let mut pooling = PoolingAllocationConfig::new();
        pooling
            .total_component_instances(MAX_LIVE_INSTANCES)
            .total_core_instances(MAX_LIVE_INSTANCES * 4)
            .total_memories(MAX_LIVE_INSTANCES * 2)
            .total_tables(MAX_LIVE_INSTANCES * 4)
            .max_memory_size(MEMORY_CEILING_BYTES as usize)
            .table_elements(TABLE_CEILING_ELEMENTS as usize)
            // A slot freed by one order is reset for the next one without
            // giving its pages back to the kernel: up to these many bytes,
            // its dirty pages (found with the PAGEMAP_SCAN ioctl, Linux 6.7+;
            // without it, the first bytes) are reset to the module's initial
            // image in place. With the default (an madvise of the whole
            // memory) every instance page-faulted its memory in again and
            // flushed TLBs: 28 us for a fresh instance plus one line's calls,
            // 15 us with these (docs/performance.md). Nothing of one order
            // survives into the next either way.
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY_BYTES)
            .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
            .epoch_interruption(true)
            .consume_fuel(meter_fuel);
        let engine = Engine::new(&config).map_err(LoadError::Engine)?;
        let disk_cache = match cache_dir {
            ModuleCacheDir::At(dir) => CompileCache::open(dir, &engine),
            ModuleCacheDir::Off => None,
            ModuleCacheDir::NoHome => {
                tracing::warn!("no folder for the compiled-module cache (neither XDG_CACHE_HOME nor HOME is set): compiling every module; set [runtime] module_cache_dir");
                None
            }
        };
        let ticker_stop = start_epoch_ticker(&engine)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(LoadError::Engine)?;
        log::add_to_linker::<HostState, HasLog>(&mut linker, |state| &mut state.log)
            .map_err(LoadError::Engine)?;
        config::add_to_linker::<HostState, HasConfig>(&mut linker, |state| &mut state.config)
            .map_err(LoadError::Engine)?;
        http::add_to_linker::<HostState, HasHttp>(&mut linker, |state| &mut state.http)
            .map_err(LoadError::Engine)?;
        Ok(ModuleEngine(Arc::new(EngineInner {
            engine,
            linker,
            compiled: Mutex::new(HashMap::new()),
            disk_cache,
            meters_fuel: meter_fuel,
            ticker_stop,
        })))
    }

    /// Whether modules may have a `fuel` budget on this engine.
    pub fn meters_fuel(&self) -> bool {
        self.0.meters_fuel
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.0.engine
    }

    pub(super) fn linker(&self) -> &Linker<HostState> {
        &self.0.linker
    }

    #[cfg(test)]
    pub(super) fn disk_cache(&self) -> Option<&CompileCache> {
        self.0.disk_cache.as_ref()
    }

    /// The folder of the on-disk cache, when it is in use.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.0.disk_cache.as_ref().map(CompileCache::dir)
    }

    /// Where the component of `digest` came from when this engine first
    /// loaded it (compiled, or from the on-disk cache), and how long that
    /// took; None if it has not loaded it.
    pub fn origin(&self, digest: Sha256Digest) -> Option<ComponentOrigin> {
        self.memory().get(&digest).map(|(_, origin)| *origin)
    }

    /// The component of `bytes` (whose digest is `digest`): compiled once
    /// per engine, from the on-disk cache when it holds a good entry, else
    /// compiled with cranelift (and then stored there).
    pub(super) fn component(&self, digest: Sha256Digest, bytes: &[u8]) -> wasmtime::Result<Component> {
        if let Some((component, _)) = self.memory().get(&digest).cloned() {
            return Ok(component);
        }
        // Loaded or compiled outside the lock: another load may do the same
        // bytes meanwhile; either result is the same component.
        let started = std::time::Instant::now();
        let disk_cache = self.0.disk_cache.as_ref();
        let (component, origin) = match disk_cache.and_then(|cache| cache.load(&self.0.engine, digest)) {
            Some(component) => (component, ComponentOrigin::Cached(started.elapsed())),
            None => {
                let component = Component::from_binary(&self.0.engine, bytes)?;
                let origin = ComponentOrigin::Compiled(started.elapsed());
                if let Some(cache) = disk_cache {
                    cache.store(digest, &component);
                }
                (component, origin)
            }
        };
        self.memory().insert(digest, (component.clone(), origin));
        Ok(component)
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<Sha256Digest, (Component, ComponentOrigin)>> {
        self.0.compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Advances the engine's epoch every [`TICK`] on a thread of its own, until
/// the returned flag is set: the clock of every module's CPU deadline.
fn start_epoch_ticker(engine: &Engine) -> Result<Arc<AtomicBool>, LoadError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (engine, stopped) = (engine.clone(), stop.clone());
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        })
        .map_err(|error| LoadError::Engine(wasmtime::Error::msg(format!("cannot start the epoch ticker: {error}"))))?;
    Ok(stop)
}

/// The engine, the HTTP client, and the modules loaded from the settings, in
/// dispatch order, with the modules that could not be loaded.
pub struct Runtime {
    shared: Arc<Shared>,
    modules: Vec<Arc<LoadedModule>>,
    disabled: Vec<DisabledModule>,
}

/// A module of the settings that is not running, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledModule {
    pub name: String,
    pub path: std::path::PathBuf,
    /// "enabled = false in settings.toml", or the load error.
    pub reason: String,
    /// Whether it failed to load (as opposed to being switched off).
    pub load_failed: bool,
}

/// What a loaded module needs to open sessions.
pub(super) struct Shared {
    pub engine: ModuleEngine,
    pub http_client: reqwest::Client,
}

impl Runtime {
    /// A runtime with no modules yet, on a new engine.
    pub fn new() -> Result<Runtime, LoadError> {
        Runtime::with_engine(ModuleEngine::new()?)
    }

    /// A runtime with no modules yet, on `engine`.
    pub fn with_engine(engine: ModuleEngine) -> Result<Runtime, LoadError> {
        let http_client = reqwest::Client::builder()
            // A redirect could lead outside allowed_hosts: the module gets
            // the 3xx and decides.
            .redirect(reqwest::redirect::Policy::none())
            // Proxies from the environment are the host's business, not a
            // way for a module's request to go elsewhere.
            .no_proxy()
            .user_agent(concat!("fulfillment-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| LoadError::Engine(wasmtime::Error::msg(error.to_string())))?;
        Ok(Runtime {
            shared: Arc::new(Shared { engine, http_client }),
            modules: Vec::new(),
            disabled: Vec::new(),
        })
    }

    /// A runtime with every enabled module of `settings` loaded, in order.
    pub async fn load(settings: &Settings) -> Result<Runtime, LoadError> {
        Runtime::load_with(ModuleEngine::for_settings(settings)?, settings).await
    }

    /// The same, on `engine`. A module that fails to load stops the load,
    /// unless its `on_load_failure` is `disable`: then it is left out and
    /// listed in [`Runtime::disabled`] with the reason.
    pub async fn load_with(engine: ModuleEngine, settings: &Settings) -> Result<Runtime, LoadError> {
        let mut runtime = Runtime::with_engine(engine)?;
        for module in &settings.modules {
            if !module.enabled {
                runtime.disabled.push(DisabledModule {
                    name: module.name.to_string(),
                    path: module.path.clone(),
                    reason: "enabled = false in settings.toml".into(),
                    load_failed: false,
                });
                continue;
            }
            #[cfg(feature = "native-baseline")]
            let added = if settings.native_baseline {
                runtime.add_native(module).await
            } else {
                runtime.add(module).await
            };
            #[cfg(not(feature = "native-baseline"))]
            let added = runtime.add(module).await;
            match added.map_err(|error| error.in_settings(&settings.path)) {
                Ok(loaded) => {
                    if let Some(origin) = runtime.shared.engine.origin(loaded.digest()) {
                        tracing::info!(module = %module.name, origin = origin.as_str(), ms = origin.took().as_secs_f64() * 1e3, "module ready: {origin}");
                    }
                }
                Err(error) if module.on_load_failure == LoadFailurePolicy::Disable => {
                    tracing::error!(module = %module.name, %error, "module disabled: it failed to load (on_load_failure = \"disable\")");
                    runtime.disabled.push(DisabledModule {
                        name: module.name.to_string(),
                        path: module.path.clone(),
                        reason: error.to_string(),
                        load_failed: true,
                    });
                }
                Err(error) => return Err(error),
            }
        }
        Ok(runtime)
    }

    /// The modules of the settings that are not running, in settings order.
    pub fn disabled(&self) -> &[DisabledModule] {
        &self.disabled
    }

    /// Loads one module and appends it to the dispatch order.
    pub async fn add(&mut self, settings: &ModuleSettings) -> Result<Arc<LoadedModule>, LoadError> {
        let module = Arc::new(LoadedModule::load(self.shared.clone(), settings).await?);
        self.modules.push(module.clone());
        Ok(module)
    }

    /// Appends the native baseline's module for `settings` (runtime/native).
    #[cfg(feature = "native-baseline")]
    async fn add_native(&mut self, settings: &ModuleSettings) -> Result<Arc<LoadedModule>, LoadError> {
        let module = Arc::new(LoadedModule::load_native(self.shared.clone(), settings).await?);
        self.modules.push(module.clone());
        Ok(module)
    }

    /// The loaded modules, in dispatch order.
    pub fn modules(&self) -> &[Arc<LoadedModule>] {
        &self.modules
    }

    /// The loaded module named `name` in settings.toml.
    pub fn module(&self, name: &str) -> Option<&Arc<LoadedModule>> {
        self.modules.iter().find(|module| module.name() == name)
    }
}

/// `HasData` projections: each interface's host side sees only its own
/// context, not the whole store.
struct HasLog;
impl wasmtime::component::HasData for HasLog {
    type Data<'a> = &'a mut LogCtx;
}
struct HasConfig;
impl wasmtime::component::HasData for HasConfig {
    type Data<'a> = &'a mut ConfigCtx;
}
struct HasHttp;
impl wasmtime::component::HasData for HasHttp {
    type Data<'a> = &'a mut HttpCtx;
}
