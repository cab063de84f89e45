//! The shared engine (with the linker and the compiled components) and the
//! runtime: the modules loaded from the settings, in dispatch order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{config, http, log};
use super::host::{ConfigCtx, HttpCtx, LogCtx};
use super::module::LoadedModule;
use super::state::HostState;
use super::LoadError;
use crate::settings::{ModuleSettings, Settings, Sha256Digest};

/// The most instances alive at once across all modules (each order being
/// dispatched holds at most one per module).
const MAX_LIVE_INSTANCES: u32 = 1_000;
/// The most linear memory one module instance may have. Growth past it fails
/// inside the guest (its allocator sees out-of-memory), never in the host.
pub(super) const MAX_MEMORY_BYTES: usize = 64 * 1024 * 1024;

/// What every store is made from: the engine, the linker with the host's
/// imports, and each component compiled once (by digest). Cheap to clone;
/// several runtimes (a reload of the settings, the tests) can share one, so a
/// module file is compiled once per process however often it is loaded.
#[derive(Clone)]
pub struct ModuleEngine(Arc<EngineInner>);

struct EngineInner {
    engine: Engine,
    linker: Linker<HostState>,
    compiled: Mutex<HashMap<Sha256Digest, Component>>,
}

impl ModuleEngine {
    pub fn new() -> Result<ModuleEngine, LoadError> {
        let mut pooling = PoolingAllocationConfig::new();
        pooling
            .total_component_instances(MAX_LIVE_INSTANCES)
            .total_core_instances(MAX_LIVE_INSTANCES * 4)
            .total_memories(MAX_LIVE_INSTANCES * 2)
            .total_tables(MAX_LIVE_INSTANCES * 4)
            .max_memory_size(MAX_MEMORY_BYTES);
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config).map_err(LoadError::Engine)?;

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
        })))
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.0.engine
    }

    pub(super) fn linker(&self) -> &Linker<HostState> {
        &self.0.linker
    }

    /// The component of `bytes` (whose digest is `digest`), compiled on
    /// first use.
    pub(super) fn component(&self, digest: Sha256Digest, bytes: &[u8]) -> wasmtime::Result<Component> {
        let compiled = |cache: &HashMap<Sha256Digest, Component>| cache.get(&digest).cloned();
        if let Some(component) = compiled(&self.cache()) {
            return Ok(component);
        }
        // Compiled outside the lock: another load may compile the same
        // bytes meanwhile; either result is the same component.
        let component = Component::from_binary(&self.0.engine, bytes)?;
        self.cache().insert(digest, component.clone());
        Ok(component)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Sha256Digest, Component>> {
        self.0.compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The engine, the HTTP client, and the modules loaded from the settings, in
/// dispatch order.
pub struct Runtime {
    shared: Arc<Shared>,
    modules: Vec<Arc<LoadedModule>>,
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
        })
    }

    /// A runtime with every enabled module of `settings` loaded, in order.
    pub async fn load(settings: &Settings) -> Result<Runtime, LoadError> {
        Runtime::load_with(ModuleEngine::new()?, settings).await
    }

    /// The same, on `engine`.
    pub async fn load_with(engine: ModuleEngine, settings: &Settings) -> Result<Runtime, LoadError> {
        let mut runtime = Runtime::with_engine(engine)?;
        for module in settings.enabled_modules() {
            runtime.add(module).await?;
        }
        Ok(runtime)
    }

    /// Loads one module and appends it to the dispatch order.
    pub async fn add(&mut self, settings: &ModuleSettings) -> Result<Arc<LoadedModule>, LoadError> {
        let module = Arc::new(LoadedModule::load(self.shared.clone(), settings).await?);
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
