//! Why a module could not be loaded: [`LoadError`].

use std::path::PathBuf;

/// Why a module could not be loaded. Every variant names the module and the
/// file, so the operator knows which `[[modules]]` entry to fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The engine could not be set up (a host problem, not a module's).
    #[error("cannot set up the WebAssembly engine: {0:#}")]
    Engine(wasmtime::Error),
    /// The file does not exist: its path as resolved, and the settings file
    /// that names it (none for a file given on the command line).
    #[error(
        "module `{module}`: {} does not exist{}",
        path.display(),
        settings.as_ref().map(|settings| format!(" (the `path` of the module in {}, resolved against that file's folder)", settings.display())).unwrap_or_default()
    )]
    NotFound {
        module: String,
        /// Absolute.
        path: PathBuf,
        settings: Option<PathBuf>,
    },
    /// The file could not be read. (The I/O error is in the message, not a
    /// `source`: printed with its causes it would show twice.)
    #[error("module `{module}`: cannot read {}: {error}", path.display())]
    Read {
        module: String,
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file's SHA-256 is not the `sha256` pinned in settings.toml.
    #[error("module `{module}`: {} has sha256 {actual}, but settings.toml pins {expected}; refusing to load it", path.display())]
    DigestMismatch {
        module: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The file is not WebAssembly at all.
    #[error("module `{module}`: {} is not a WebAssembly file", path.display())]
    NotWasm { module: String, path: PathBuf },
    /// The file is a core module, not a component.
    #[error("module `{module}`: {} is a core WebAssembly module, not a component; build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)", path.display())]
    CoreModule { module: String, path: PathBuf },
    /// The component does not compile.
    #[error("module `{module}`: {} is not a valid component: {message}", path.display())]
    Invalid {
        module: String,
        path: PathBuf,
        message: String,
    },
    /// The component is built against a version of the contract that the
    /// host does not serve.
    #[error("module `{module}`: {}: {error}", path.display())]
    Version {
        module: String,
        path: PathBuf,
        error: super::version::VersionError,
    },
    /// Exports of the `fulfillment-module` world are missing.
    #[error(
        "module `{module}`: {} does not implement the world commerce:fulfillment/fulfillment-module@{version}: missing export(s) {}; it exports {}",
        path.display(),
        missing.join(", "),
        if exported.is_empty() { "nothing".to_string() } else { exported.join(", ") }
    )]
    MissingExports {
        module: String,
        path: PathBuf,
        /// The version its imports say it is built against.
        version: super::ContractVersion,
        missing: Vec<String>,
        /// What it exports instead (a CLI app exports `wasi:cli/run`).
        exported: Vec<String>,
    },
    /// The exports are there with the wrong types, or the component imports
    /// something the host does not grant.
    #[error("module `{module}`: {} does not fit the host: {message}", path.display())]
    Incompatible {
        module: String,
        path: PathBuf,
        message: String,
    },
    /// The module has a `fuel` budget, but the engine was built without fuel
    /// metering (only a runtime built from the settings turns it on).
    #[error("module `{module}`: {} sets limits.fuel, but this engine does not meter fuel", path.display())]
    FuelUnavailable { module: String, path: PathBuf },
    /// A credential of `[modules.credentials]` cannot be used.
    #[error("module `{module}`: {message}")]
    Credentials { module: String, message: String },
    /// `describe` trapped. The message holds what the module wrote, with its
    /// control characters escaped (it reaches terminals and logs).
    #[error("module `{module}`: {}: describe() failed: {}", path.display(), crate::text::escape_control(message))]
    Describe {
        module: String,
        path: PathBuf,
        message: String,
    },
}

impl LoadError {
    /// The same error, saying which settings file named the module.
    pub(super) fn in_settings(self, settings_path: &std::path::Path) -> LoadError {
        match self {
            LoadError::NotFound { module, path, settings: None } => LoadError::NotFound {
                module,
                path,
                settings: Some(settings_path.to_path_buf()),
            },
            other => other,
        }
    }
}
