//! The on-disk cache of compiled components: [`CompileCache`].
//!
//! Compiling a component with cranelift takes 0.1 s for a small Rust module
//! and 7-9 s for a 12-18 MB JavaScript or Python one; loading the compiled
//! artifact takes milliseconds. An entry is
//! `<dir>/<module sha256>-<engine hash>.cwasm`: the module's SHA-256 and the
//! first 128 bits of the SHA-256 of the engine's
//! `precompile_compatibility_hash()` (which covers the wasmtime version and
//! every setting that changes the code: fuel metering makes another engine).
//!
//! Nothing in the folder is trusted. An entry is this header, then
//! wasmtime's artifact:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | [`MAGIC`] (its last byte is the format's version) |
//! | 32 | the module's SHA-256 |
//! | 32 | the engine hash (all 256 bits) |
//! | 8 | the artifact's length, little-endian |
//! | 4 | the artifact's CRC-32 (IEEE), little-endian |
//! | 4 | zero |
//!
//! An entry whose length, magic, digest, engine hash or checksum is not what
//! this load expects is logged (warn, with the file and the reason), ignored,
//! and replaced by a fresh compile. The checksum is against damage (a torn
//! write after a power cut, a truncated copy), not against an attacker: one
//! who can write the folder can write a matching checksum for code of their
//! own. That is why the folder must be the host user's own and writable by
//! nobody else (it is created 0700; another owner, or write access for the
//! group or others, makes the host ignore it), and so must each entry. The
//! folder's path is resolved once, when the cache opens; each load and each
//! store then opens the folder again without following a link, checks it
//! (owner, mode) through that handle, and opens the entry relative to it,
//! without following a link, checking the opened file (a regular file, the
//! host user's, not writable by the group or others) before reading it: a
//! folder above the cache that another user can write lets them swap the
//! cache folder, or plant an entry, after the start, and neither is read.
//! A folder or entry that fails is logged (warn, naming it) and not used.
//! CRC-32 rather than SHA-256:
//! on a 40 MiB artifact here, SHA-256 takes 26 ms (with SHA-NI) and
//! CRC-32 2.6 ms (docs/performance.md), and a load from the cache should
//! take tens of milliseconds; the length and the two digests in the header
//! already catch a truncated, foreign or misplaced entry.
//!
//! Writes go to a temporary file in the same folder, renamed over the entry:
//! a reader sees a whole entry or none, two processes writing the same entry
//! each rename a whole one, and a crash mid-write leaves only a temporary
//! file, which is never read (and is deleted an hour later). The cache never
//! stops a start: a folder that cannot be created, read or written is
//! logged once and the host compiles as if there were no cache.
//!
//! The folder is bounded by age: when an engine opens it, entries of other
//! engine hashes (another wasmtime version, or fuel on vs off) not used for
//! [`OTHER_ENGINE_MAX_AGE`], and any entry not used for [`ENTRY_MAX_AGE`],
//! are deleted; a load from the cache marks its entry as used. Entries of
//! other engines are not deleted at once because two engines may share the
//! folder (a `check` of a module with a fuel budget beside a `serve` without
//! any), and each would keep deleting the other's.

use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use sha2::Digest as _;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::settings::Sha256Digest;

/// The first bytes of an entry: "fulfillment-host compiled module", format 1.
const MAGIC: [u8; 8] = *b"FHCWASM\x01";
/// The header's length: magic, module digest, engine hash, length, CRC, pad.
const HEADER_BYTES: usize = 8 + 32 + 32 + 8 + 4 + 4;
/// The file name's suffix of an entry.
const ENTRY_SUFFIX: &str = ".cwasm";
/// The file name's prefix of a write in progress (or of one a crash cut).
const TEMP_PREFIX: &str = ".tmp-";
/// Hex digits of the engine hash in an entry's name (128 bits).
const ENGINE_HASH_NAME_DIGITS: usize = 32;
/// Entries of another engine unused this long are deleted.
pub const OTHER_ENGINE_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Any entry unused this long is deleted.
pub const ENTRY_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// A temporary file this old is what a crash left (a write takes seconds).
const TEMP_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// Why the cache folder cannot be used at all (logged once, then the host
/// compiles without it).
#[derive(Debug, thiserror::Error)]
pub enum CacheDirError {
    #[error("cannot create it: {0}")]
    Create(std::io::Error),
    #[error("cannot open it: {0}")]
    Open(std::io::Error),
    #[error("cannot read its metadata: {0}")]
    Metadata(std::io::Error),
    #[error("it is not a folder")]
    NotADirectory,
    /// Its path is resolved when the cache opens: a link there later was
    /// put in its place.
    #[error("it is a symbolic link now (it was resolved when the host started); refusing to load code from it")]
    SymbolicLink,
    #[error("it is owned by uid {owner}, not by this process's user (uid {user}); refusing to load code from it")]
    ForeignOwner { owner: u32, user: u32 },
    #[error("its mode is {mode:04o}: the group or others may write it; refusing to load code from it (chmod 700 it)")]
    WritableByOthers { mode: u32 },
}

/// Why one entry was not used (logged with the file, then rebuilt).
#[derive(Debug, thiserror::Error)]
enum EntryError {
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    #[error("it is a symbolic link, not an entry the host wrote")]
    SymbolicLink,
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it is owned by uid {owner}, not by this process's user (uid {user})")]
    ForeignOwner { owner: u32, user: u32 },
    #[error("its mode is {mode:04o}: the group or others may write it")]
    WritableByOthers { mode: u32 },
    #[error("it is {actual} bytes long, expected {expected} (truncated or padded)")]
    Length { actual: u64, expected: u64 },
    #[error("it is not an entry of this cache (no header)")]
    Magic,
    #[error("it holds another module (sha256 {0})")]
    OtherModule(String),
    #[error("it was compiled by another engine")]
    OtherEngine,
    #[error("its checksum does not match its contents (damaged)")]
    Checksum,
    #[error("wasmtime refused it: {0:#}")]
    Deserialize(wasmtime::Error),
}

/// Where a component came from this time, and how long that took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentOrigin {
    /// Compiled with cranelift (no usable cache entry).
    Compiled(Duration),
    /// Loaded from the on-disk cache.
    Cached(Duration),
}

impl ComponentOrigin {
    /// "compiled" or "cached".
    pub fn as_str(&self) -> &'static str {
        match self {
            ComponentOrigin::Compiled(_) => "compiled",
            ComponentOrigin::Cached(_) => "cached",
        }
    }

    /// How long compiling or loading took.
    pub fn took(&self) -> Duration {
        match self {
            ComponentOrigin::Compiled(took) | ComponentOrigin::Cached(took) => *took,
        }
    }
}

impl std::fmt::Display for ComponentOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentOrigin::Compiled(took) => write!(f, "compiled in {:.1} ms", took.as_secs_f64() * 1e3),
            ComponentOrigin::Cached(took) => write!(f, "loaded from the compile cache in {:.1} ms", took.as_secs_f64() * 1e3),
        }
    }
}

/// The cache folder of one engine.
#[derive(Debug)]
pub struct CompileCache {
    /// Resolved (no links) when the cache opened.
    dir: PathBuf,
    engine_hash: [u8; 32],
    /// Set after the first failed write: warned once, no more writes.
    writes_failed: AtomicBool,
}

impl CompileCache {
    /// The cache in `dir` (created 0700 if missing) for `engine`, with old
    /// entries pruned; None, with a warning, when the folder cannot be used.
    pub fn open(dir: &Path, engine: &Engine) -> Option<CompileCache> {
        // Absolute, so that the logs name the folder whatever the working one.
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let dir = dir.as_path();
        match CompileCache::try_open(dir, engine) {
            Ok(cache) => Some(cache),
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "the compiled-module cache folder cannot be used: compiling every module");
                None
            }
        }
    }

    fn try_open(dir: &Path, engine: &Engine) -> Result<CompileCache, CacheDirError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(CacheDirError::Create)?;
        // The links the settings' path goes through are resolved now, once:
        // later, a link in the folder's place is refused (`open_folder`).
        let dir = fs::canonicalize(dir).map_err(CacheDirError::Metadata)?;
        open_folder(&dir)?;
        let cache = CompileCache {
            dir,
            engine_hash: engine_hash(engine),
            writes_failed: AtomicBool::new(false),
        };
        cache.prune(SystemTime::now());
        Ok(cache)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry's path for the module of `digest` on this engine.
    pub fn entry_path(&self, digest: Sha256Digest) -> PathBuf {
        self.dir.join(self.entry_name(digest))
    }

    /// The entry's file name in the folder.
    fn entry_name(&self, digest: Sha256Digest) -> String {
        format!("{digest}-{}{ENTRY_SUFFIX}", &hex::encode(self.engine_hash)[..ENGINE_HASH_NAME_DIGITS])
    }

    /// The component of `digest` from its entry, if there is one that
    /// checks out; a bad entry is logged and ignored (the next store
    /// replaces it), and so is the whole folder if it no longer passes
    /// the checks it passed when the cache opened.
    pub fn load(&self, engine: &Engine, digest: Sha256Digest) -> Option<Component> {
        let folder = match open_folder(&self.dir) {
            Ok(folder) => folder,
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "the compiled-module cache folder cannot be used now: compiling the module");
                return None;
            }
        };
        let path = self.entry_path(digest);
        let mut file = match open_entry(&folder, &self.entry_name(digest)) {
            Ok(Some(file)) => file,
            Ok(None) => return None,
            Err(error) => {
                self.ignore(&path, &error);
                return None;
            }
        };
        match self.read_entry(&mut file, engine, digest) {
            Ok(component) => {
                // Marks the entry as used, for the pruning (best effort).
                let _ = file.set_modified(SystemTime::now());
                Some(component)
            }
            Err(error) => {
                self.ignore(&path, &error);
                None
            }
        }
    }

    fn read_entry(&self, file: &mut File, engine: &Engine, digest: Sha256Digest) -> Result<Component, EntryError> {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(EntryError::Read)?;
        let header = bytes.get(..HEADER_BYTES).ok_or(EntryError::Length {
            actual: bytes.len() as u64,
            expected: HEADER_BYTES as u64,
        })?;
        let field = |from: usize, to: usize| &header[from..to];
        if field(0, 8) != MAGIC {
            return Err(EntryError::Magic);
        }
        if field(8, 40) != digest.as_bytes() {
            return Err(EntryError::OtherModule(hex::encode(field(8, 40))));
        }
        if field(40, 72) != self.engine_hash {
            return Err(EntryError::OtherEngine);
        }
        let length = u64::from_le_bytes(field(72, 80).try_into().map_err(|_| EntryError::Magic)?);
        let crc = u32::from_le_bytes(field(80, 84).try_into().map_err(|_| EntryError::Magic)?);
        let expected = (HEADER_BYTES as u64).saturating_add(length);
        if bytes.len() as u64 != expected {
            return Err(EntryError::Length {
                actual: bytes.len() as u64,
                expected,
            });
        }
        let artifact = &bytes[HEADER_BYTES..];
        if crc32fast::hash(artifact) != crc {
            return Err(EntryError::Checksum);
        }
        deserialize(engine, artifact).map_err(EntryError::Deserialize)
    }

    fn ignore(&self, path: &Path, error: &EntryError) {
        tracing::warn!(entry = %path.display(), %error, "ignoring a compiled-module cache entry: compiling the module again");
    }

    /// Writes the entry of `component` (whose module's digest is `digest`)
    /// atomically. A failure is logged once; later stores are skipped.
    pub fn store(&self, digest: Sha256Digest, component: &Component) {
        if self.writes_failed.load(Ordering::Relaxed) {
            return;
        }
        if let Err(error) = self.try_store(digest, component)
            && !self.writes_failed.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(dir = %self.dir.display(), error = %format!("{error:#}"), "cannot write to the compiled-module cache: modules will be compiled again at the next start");
        }
    }

    fn try_store(&self, digest: Sha256Digest, component: &Component) -> anyhow::Result<()> {
        let artifact = component.serialize()?;
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(digest.as_bytes());
        header.extend_from_slice(&self.engine_hash);
        header.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(&artifact).to_le_bytes());
        header.extend_from_slice(&[0; 4]);
        let entry = self.entry_path(digest);
        let folder = open_folder(&self.dir).map_err(|error| anyhow::anyhow!("the folder cannot be used now: {error}"))?;
        let entry_name = self.entry_name(digest);
        let temp_name = format!("{TEMP_PREFIX}{digest}-{}-{:016x}", std::process::id(), fastrand::u64(..));
        let written = (|| -> std::io::Result<()> {
            // O_EXCL: never follows a link or reuses a file someone
            // planted under that name.
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let mut file = File::from(rustix::fs::openat(&folder, temp_name.as_str(), flags, Mode::RUSR | Mode::WUSR)?);
            file.write_all(&header)?;
            file.write_all(&artifact)?;
            // A crash between the write and the rename (process tests).
            fail::fail_point!("compile-cache-before-rename", |_| std::process::abort());
            drop(file);
            // A rename replaces a link or a planted file at the entry's
            // name itself, never what a link points to.
            Ok(rustix::fs::renameat(&folder, temp_name.as_str(), &folder, entry_name.as_str())?)
        })();
        if let Err(error) = written {
            let _ = rustix::fs::unlinkat(&folder, temp_name.as_str(), AtFlags::empty());
            return Err(anyhow::Error::new(error).context(format!("writing {}", entry.display())));
        }
        Ok(())
    }

    /// Deletes what the bounds say is old (see the module's doc).
    fn prune(&self, now: SystemTime) {
        let Ok(listing) = fs::read_dir(&self.dir) else {
            return;
        };
        let ours = format!("-{}{ENTRY_SUFFIX}", &hex::encode(self.engine_hash)[..ENGINE_HASH_NAME_DIGITS]);
        for item in listing.flatten() {
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            let max_age = if name.starts_with(TEMP_PREFIX) {
                TEMP_MAX_AGE
            } else if !name.ends_with(ENTRY_SUFFIX) {
                continue;
            } else if name.ends_with(&ours) {
                ENTRY_MAX_AGE
            } else {
                OTHER_ENGINE_MAX_AGE
            };
            let unused_for = item
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok());
            if unused_for.is_some_and(|age| age > max_age) {
                match fs::remove_file(item.path()) {
                    Ok(()) => tracing::info!(entry = %item.path().display(), "pruned an old compiled-module cache entry"),
                    Err(error) => tracing::debug!(entry = %item.path().display(), %error, "cannot prune a cache entry"),
                }
            }
        }
    }
}

/// The folder at `dir` (already resolved), opened without following a
/// link, if it is the host user's and nobody else may write it.
fn open_folder(dir: &Path) -> Result<File, CacheDirError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let folder = match rustix::fs::open(dir, flags, Mode::empty()) {
        Ok(folder) => File::from(folder),
        Err(Errno::LOOP) => return Err(CacheDirError::SymbolicLink),
        Err(Errno::NOTDIR) => return Err(CacheDirError::NotADirectory),
        Err(errno) => return Err(CacheDirError::Open(errno.into())),
    };
    // Of the folder just opened (fstat), not of whatever the path names now.
    let metadata = folder.metadata().map_err(CacheDirError::Metadata)?;
    if !metadata.is_dir() {
        return Err(CacheDirError::NotADirectory);
    }
    let user = rustix::process::geteuid().as_raw();
    if metadata.uid() != user {
        return Err(CacheDirError::ForeignOwner {
            owner: metadata.uid(),
            user,
        });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(CacheDirError::WritableByOthers { mode });
    }
    Ok(folder)
}

/// The entry `name` in `folder`, opened without following a link, if it is
/// a regular file of the host user's that nobody else may write; None if
/// there is none.
fn open_entry(folder: &File, name: &str) -> Result<Option<File>, EntryError> {
    // O_NONBLOCK: a FIFO planted under the name must not hang the start.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let file = match rustix::fs::openat(folder, name, flags, Mode::empty()) {
        Ok(file) => File::from(file),
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => return Err(EntryError::SymbolicLink),
        Err(errno) => return Err(EntryError::Read(errno.into())),
    };
    // Of the file just opened (fstat): what is read is what was checked.
    let metadata = file.metadata().map_err(EntryError::Read)?;
    if !metadata.file_type().is_file() {
        return Err(EntryError::NotAFile);
    }
    let user = rustix::process::geteuid().as_raw();
    if metadata.uid() != user {
        return Err(EntryError::ForeignOwner {
            owner: metadata.uid(),
            user,
        });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(EntryError::WritableByOthers { mode });
    }
    Ok(Some(file))
}

/// Turns checked artifact bytes into a component.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` runs the bytes' machine code as the
    // module's, so they must be an artifact that wasmtime's own
    // `Component::serialize` produced. They are: they come from an entry
    // (a regular file, not a link, of this user's, writable by nobody
    // else) of a folder that only this user can write (both checked through
    // the handles the bytes were read with, at this load; such a user could
    // as well replace the host's binary), whose
    // header names this module's digest and this engine's compatibility
    // hash and whose CRC-32 matches, so they are what `store` wrote for
    // this module on an engine of this configuration. The bytes are read
    // into memory and checked there, and those same bytes are deserialized
    // (wasmtime copies them), so a change to the file after the check
    // cannot reach the code (unlike `deserialize_file`, which maps the
    // file). wasmtime itself checks the artifact's version and
    // configuration again.
    unsafe { Component::deserialize(engine, artifact) }
}

/// The engine's compatibility hash as 256 stable bits: the SHA-256 of what
/// `precompile_compatibility_hash()` feeds a hasher.
fn engine_hash(engine: &Engine) -> [u8; 32] {
    struct Sha256Hasher(sha2::Sha256);
    impl Hasher for Sha256Hasher {
        fn finish(&self) -> u64 {
            // Unused: the whole digest is taken below.
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha256Hasher(sha2::Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

#[cfg(test)]
mod tests;
