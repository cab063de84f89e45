//! `[runtime]`: how the host runs modules, for all of them (the on-disk
//! cache of compiled modules).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[runtime]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Whether compiled modules are kept on disk, so that the next start
    /// loads them instead of compiling them again.
    pub module_cache: bool,
    /// The cache's folder, relative to the settings file; unset:
    /// `$XDG_CACHE_HOME/fulfillment-host/modules` (else
    /// `$HOME/.cache/fulfillment-host/modules`); empty: no cache.
    pub module_cache_dir: Option<PathBuf>,
}

impl Default for RuntimeSettings {
    fn default() -> RuntimeSettings {
        RuntimeSettings {
            module_cache: true,
            module_cache_dir: None,
        }
    }
}

/// The folder of the compiled-module cache, resolved: where it is, or why
/// there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleCacheDir {
    /// Absolute, or relative to the working folder when the settings file's
    /// path is.
    At(PathBuf),
    /// `module_cache = false`, or `module_cache_dir = ""`.
    Off,
    /// No folder was set and neither `XDG_CACHE_HOME` (absolute) nor `HOME`
    /// is: there is nowhere to put it.
    NoHome,
}

impl ModuleCacheDir {
    /// The folder, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ModuleCacheDir::At(path) => Some(path),
            ModuleCacheDir::Off | ModuleCacheDir::NoHome => None,
        }
    }

    /// The default folder for this process's environment (what an absent
    /// settings file, or one without `[runtime]`, gets).
    pub fn default_for_user() -> ModuleCacheDir {
        RuntimeSettings::default().cache_dir(Path::new("."), |name| std::env::var_os(name))
    }
}

impl RuntimeSettings {
    /// Where the cache is, for a settings file in `base`, with `env` giving
    /// the environment's variables.
    pub(super) fn cache_dir(&self, base: &Path, env: impl Fn(&str) -> Option<std::ffi::OsString>) -> ModuleCacheDir {
        if !self.module_cache {
            return ModuleCacheDir::Off;
        }
        match &self.module_cache_dir {
            Some(dir) if dir.as_os_str().is_empty() => ModuleCacheDir::Off,
            Some(dir) => ModuleCacheDir::At(base.join(dir)),
            None => {
                // The XDG Base Directory spec: a relative XDG_CACHE_HOME is
                // to be ignored.
                let cache_home = env("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .filter(|path| path.is_absolute())
                    .or_else(|| env("HOME").filter(|home| !home.is_empty()).map(|home| PathBuf::from(home).join(".cache")));
                match cache_home {
                    Some(cache_home) => ModuleCacheDir::At(cache_home.join("fulfillment-host").join("modules")),
                    None => ModuleCacheDir::NoHome,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
        move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.into())
    }

    #[test]
    fn the_default_folder_follows_xdg_cache_home_then_home() {
        let base = Path::new("/etc/fulfillment");
        let settings = RuntimeSettings::default();
        assert_eq!(
            settings.cache_dir(base, env(&[("XDG_CACHE_HOME", "/var/cache/x"), ("HOME", "/home/op")])),
            ModuleCacheDir::At(PathBuf::from("/var/cache/x/fulfillment-host/modules"))
        );
        assert_eq!(
            settings.cache_dir(base, env(&[("XDG_CACHE_HOME", "relative"), ("HOME", "/home/op")])),
            ModuleCacheDir::At(PathBuf::from("/home/op/.cache/fulfillment-host/modules"))
        );
        assert_eq!(settings.cache_dir(base, env(&[])), ModuleCacheDir::NoHome);
    }

    #[test]
    fn a_set_folder_is_relative_to_the_settings_file_and_empty_or_false_turns_it_off() {
        let base = Path::new("/etc/fulfillment");
        let at = |dir: &str| RuntimeSettings {
            module_cache: true,
            module_cache_dir: Some(PathBuf::from(dir)),
        };
        assert_eq!(at("cache").cache_dir(base, env(&[])), ModuleCacheDir::At(PathBuf::from("/etc/fulfillment/cache")));
        assert_eq!(at("/var/cache/m").cache_dir(base, env(&[])), ModuleCacheDir::At(PathBuf::from("/var/cache/m")));
        assert_eq!(at("").cache_dir(base, env(&[])), ModuleCacheDir::Off);
        let off = RuntimeSettings {
            module_cache: false,
            module_cache_dir: Some(PathBuf::from("cache")),
        };
        assert_eq!(off.cache_dir(base, env(&[])), ModuleCacheDir::Off);
    }
}
