//! The cache against real engines and real files in a temporary folder.
//! The components are tiny (an empty component, and one with a custom
//! section so that its digest differs); the tests with the shipped modules
//! run as processes (host/tests/cli.rs).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use super::{CompileCache, ComponentOrigin, HEADER_BYTES, TEMP_PREFIX};
use crate::runtime::ModuleEngine;
use crate::settings::{ModuleCacheDir, Sha256Digest};

/// An empty component: the magic, then version 0x0d, layer 1.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

/// An empty component with a custom section named `name`: valid, and of
/// another digest for each name.
fn component_named(name: &str) -> Vec<u8> {
    let mut bytes = EMPTY_COMPONENT.to_vec();
    let payload_len = 1 + name.len();
    bytes.push(0); // custom section
    bytes.push(u8::try_from(payload_len).expect("short name"));
    bytes.push(u8::try_from(name.len()).expect("short name"));
    bytes.extend_from_slice(name.as_bytes());
    bytes
}

fn engine(fuel: bool) -> Engine {
    let mut config = Config::new();
    config.consume_fuel(fuel);
    Engine::new(&config).expect("engine")
}

/// The cache in a new temporary folder (`<tmp>/modules`, created by open).
fn fresh(engine: &Engine) -> (tempfile::TempDir, CompileCache) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cache = CompileCache::open(&tmp.path().join("modules"), engine).expect("the cache opens");
    (tmp, cache)
}

/// Compiles `bytes` and stores the entry; returns its digest.
fn stored(cache: &CompileCache, engine: &Engine, bytes: &[u8]) -> Sha256Digest {
    let digest = Sha256Digest::of(bytes);
    let component = Component::from_binary(engine, bytes).expect("compiles");
    cache.store(digest, &component);
    digest
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|item| item.expect("item").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_stored_component_loads_in_another_cache_of_the_same_engine_and_no_temp_file_stays() {
    let engine = engine(false);
    let (tmp, cache) = fresh(&engine);
    let digest = stored(&cache, &engine, EMPTY_COMPONENT);
    let dir = tmp.path().join("modules");
    let entry = cache.entry_path(digest);
    assert_eq!(names_in(&dir), vec![entry.file_name().expect("name").to_string_lossy().into_owned()]);
    assert!(entry.file_name().expect("name").to_string_lossy().starts_with(&format!("{digest}-")));
    assert_eq!(fs::metadata(&dir).expect("dir").permissions().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(&entry).expect("entry").permissions().mode() & 0o777, 0o600);

    // Another process's view: a new cache on the same folder.
    let reopened = CompileCache::open(&dir, &engine).expect("opens again");
    let component = reopened.load(&engine, digest).expect("a hit");
    assert_eq!(component.component_type().exports(&engine).count(), 0);
}

#[test]
fn a_missing_entry_is_a_miss() {
    let engine = engine(false);
    let (_tmp, cache) = fresh(&engine);
    assert!(cache.load(&engine, Sha256Digest::of(EMPTY_COMPONENT)).is_none());
}

/// Writes `bytes` over the entry of `digest`, checks it is ignored, then
/// that a store replaces it with one that loads.
fn ignored_then_rebuilt(cache: &CompileCache, engine: &Engine, digest: Sha256Digest, bytes: &[u8], module: &[u8]) {
    fs::write(cache.entry_path(digest), bytes).expect("write the bad entry");
    assert!(cache.load(engine, digest).is_none(), "a bad entry must not be used");
    stored(cache, engine, module);
    assert!(cache.load(engine, digest).is_some(), "the rebuilt entry loads");
}

#[test]
fn a_corrupt_entry_is_ignored_and_rebuilt() {
    let engine = engine(false);
    let (_tmp, cache) = fresh(&engine);
    let digest = stored(&cache, &engine, EMPTY_COMPONENT);
    let mut bytes = fs::read(cache.entry_path(digest)).expect("entry");
    let middle = HEADER_BYTES + (bytes.len() - HEADER_BYTES) / 2;
    bytes[middle] ^= 0x5a;
    ignored_then_rebuilt(&cache, &engine, digest, &bytes, EMPTY_COMPONENT);
}

#[test]
fn a_truncated_entry_is_ignored_and_rebuilt() {
    let engine = engine(false);
    let (_tmp, cache) = fresh(&engine);
    let digest = stored(&cache, &engine, EMPTY_COMPONENT);
    let bytes = fs::read(cache.entry_path(digest)).expect("entry");
    for cut in [bytes.len() - 1, HEADER_BYTES + 1, HEADER_BYTES - 1, 0] {
        ignored_then_rebuilt(&cache, &engine, digest, &bytes[..cut], EMPTY_COMPONENT);
    }
}

#[test]
fn another_modules_entry_under_this_key_is_ignored_and_rebuilt() {
    let engine = engine(false);
    let (_tmp, cache) = fresh(&engine);
    let other = component_named("other");
    let other_digest = stored(&cache, &engine, &other);
    let digest = Sha256Digest::of(EMPTY_COMPONENT);
    fs::rename(cache.entry_path(other_digest), cache.entry_path(digest)).expect("rename");
    let bytes = fs::read(cache.entry_path(digest)).expect("entry");
    ignored_then_rebuilt(&cache, &engine, digest, &bytes, EMPTY_COMPONENT);
}

#[test]
fn an_entry_of_an_engine_with_fuel_metering_has_another_key_and_is_ignored_under_this_one() {
    let plain = engine(false);
    let fueled = engine(true);
    let (tmp, cache) = fresh(&plain);
    let fuel_cache = CompileCache::open(&tmp.path().join("modules"), &fueled).expect("opens");
    let digest = stored(&fuel_cache, &fueled, EMPTY_COMPONENT);
    assert_ne!(cache.entry_path(digest), fuel_cache.entry_path(digest), "fuel makes another engine hash");
    assert!(cache.load(&plain, digest).is_none(), "not under this engine's key");
    let bytes = fs::read(fuel_cache.entry_path(digest)).expect("entry");
    ignored_then_rebuilt(&cache, &plain, digest, &bytes, EMPTY_COMPONENT);
    // Both entries are kept, each engine loads its own.
    assert!(fuel_cache.load(&fueled, digest).is_some());
}

#[test]
fn a_random_file_under_the_key_is_ignored_and_rebuilt() {
    let engine = engine(false);
    let (_tmp, cache) = fresh(&engine);
    let digest = Sha256Digest::of(EMPTY_COMPONENT);
    let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    ignored_then_rebuilt(&cache, &engine, digest, &noise, EMPTY_COMPONENT);
}

#[test]
fn an_artifact_with_a_matching_header_but_not_from_wasmtime_is_refused_by_wasmtime() {
    // A header that checks out around bytes that are not an artifact (what
    // a bug, not an attacker, could write): wasmtime's own check refuses it.
    let engine = engine(false);
    let (_tmp, cache) = fresh(&engine);
    let digest = stored(&cache, &engine, EMPTY_COMPONENT);
    let mut bytes = fs::read(cache.entry_path(digest)).expect("entry");
    let junk = vec![0x90u8; 256];
    bytes.truncate(HEADER_BYTES);
    bytes[72..80].copy_from_slice(&(junk.len() as u64).to_le_bytes());
    bytes[80..84].copy_from_slice(&crc32fast::hash(&junk).to_le_bytes());
    bytes.extend_from_slice(&junk);
    ignored_then_rebuilt(&cache, &engine, digest, &bytes, EMPTY_COMPONENT);
}

#[test]
fn a_folder_writable_by_others_or_owned_by_another_user_is_refused() {
    let engine = engine(false);
    let tmp = tempfile::tempdir().expect("temp dir");
    let open_dir = tmp.path().join("open");
    fs::create_dir(&open_dir).expect("mkdir");
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).expect("chmod");
    assert!(CompileCache::open(&open_dir, &engine).is_none(), "0777 is refused");
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o770)).expect("chmod");
    assert!(CompileCache::open(&open_dir, &engine).is_none(), "group-writable is refused");
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(CompileCache::open(&open_dir, &engine).is_some(), "0755 is the user's alone to write");

    if rustix::process::geteuid().is_root() {
        let foreign = tmp.path().join("foreign");
        fs::create_dir(&foreign).expect("mkdir");
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).expect("chown to nobody");
        fs::set_permissions(&foreign, fs::Permissions::from_mode(0o700)).expect("chmod");
        assert!(CompileCache::open(&foreign, &engine).is_none(), "another user's folder is refused");
    } else {
        eprintln!("skipped: the foreign-owner case needs root to chown a folder");
    }
}

#[test]
fn a_folder_that_cannot_be_created_leaves_no_cache_and_the_engine_still_compiles() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("a-file");
    fs::write(&file, "not a folder").expect("write");
    let engine = engine(false);
    assert!(CompileCache::open(&file.join("modules"), &engine).is_none());
    assert!(CompileCache::open(&file, &engine).is_none(), "a file is not a folder");

    let module_engine = ModuleEngine::build_cached(false, &ModuleCacheDir::At(file.join("modules"))).expect("the engine builds");
    assert!(module_engine.cache_dir().is_none());
    let digest = Sha256Digest::of(EMPTY_COMPONENT);
    module_engine.component(digest, EMPTY_COMPONENT).expect("compiles without the cache");
    assert!(matches!(module_engine.origin(digest), Some(ComponentOrigin::Compiled(_))));
}

#[test]
fn a_folder_that_cannot_be_written_still_loads_and_compiles() {
    // As root, permissions do not stop writes: a folder whose entry name is
    // taken by a folder makes the rename fail instead.
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("modules");
    let engine = ModuleEngine::build_cached(false, &ModuleCacheDir::At(dir.clone())).expect("engine");
    let cache = engine.disk_cache().expect("a cache");
    let digest = Sha256Digest::of(EMPTY_COMPONENT);
    fs::create_dir(cache.entry_path(digest)).expect("block the entry's name");
    engine.component(digest, EMPTY_COMPONENT).expect("compiles");
    assert!(matches!(engine.origin(digest), Some(ComponentOrigin::Compiled(_))));
    assert!(
        names_in(&dir).iter().all(|name| !name.starts_with(TEMP_PREFIX)),
        "the failed write left its temp file: {:?}",
        names_in(&dir)
    );
    // Warned once; the next store is skipped.
    assert!(cache.writes_failed.load(std::sync::atomic::Ordering::Relaxed));
}

#[test]
fn a_second_engine_on_the_folder_loads_from_the_cache_and_says_so() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = ModuleCacheDir::At(tmp.path().join("modules"));
    let digest = Sha256Digest::of(EMPTY_COMPONENT);

    let first = ModuleEngine::build_cached(false, &dir).expect("engine");
    first.component(digest, EMPTY_COMPONENT).expect("compiles");
    assert!(matches!(first.origin(digest), Some(ComponentOrigin::Compiled(_))), "{:?}", first.origin(digest));

    let second = ModuleEngine::build_cached(false, &dir).expect("engine");
    second.component(digest, EMPTY_COMPONENT).expect("loads");
    assert!(matches!(second.origin(digest), Some(ComponentOrigin::Cached(_))), "{:?}", second.origin(digest));

    // Fuel metering is another engine: it compiles, beside the first entry.
    let fueled = ModuleEngine::build_cached(true, &dir).expect("engine");
    fueled.component(digest, EMPTY_COMPONENT).expect("compiles");
    assert!(matches!(fueled.origin(digest), Some(ComponentOrigin::Compiled(_))));
    assert_eq!(names_in(&tmp.path().join("modules")).len(), 2);
}

#[test]
fn concurrent_writers_of_one_entry_leave_one_whole_entry() {
    let engine = engine(false);
    let (tmp, cache) = fresh(&engine);
    let component = Component::from_binary(&engine, EMPTY_COMPONENT).expect("compiles");
    let digest = Sha256Digest::of(EMPTY_COMPONENT);
    let dir = tmp.path().join("modules");
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let cache = CompileCache::open(&dir, &engine).expect("opens");
            let component = component.clone();
            scope.spawn(move || {
                for _ in 0..20 {
                    cache.store(digest, &component);
                }
            });
        }
        // A reader meanwhile sees a whole entry or none.
        for _ in 0..200 {
            if fs::metadata(cache.entry_path(digest)).is_ok() {
                assert!(cache.load(&engine, digest).is_some(), "a reader saw a partial entry");
            }
        }
    });
    assert_eq!(names_in(&dir).len(), 1, "{:?}", names_in(&dir));
    assert!(cache.load(&engine, digest).is_some());
}

#[test]
fn open_prunes_old_temp_files_and_old_entries_of_other_engines_only() {
    let engine = engine(false);
    let (tmp, cache) = fresh(&engine);
    let dir = tmp.path().join("modules");
    let ours = stored(&cache, &engine, EMPTY_COMPONENT);
    let other = "0".repeat(64);
    let set_age = |name: &str, age: Duration| {
        let file = fs::File::options().write(true).create(true).truncate(false).open(dir.join(name)).expect("file");
        file.set_modified(SystemTime::now() - age).expect("set mtime");
    };
    let two_days = Duration::from_secs(2 * 24 * 3600);
    let other_old = format!("{other}-{}.cwasm", "f".repeat(32));
    let other_fresh = format!("{}-{}.cwasm", "1".repeat(64), "f".repeat(32));
    let temp_old = format!("{TEMP_PREFIX}{other}-1-0");
    let temp_fresh = format!("{TEMP_PREFIX}{other}-2-0");
    let unrelated = "README".to_string();
    set_age(&other_old, two_days);
    set_age(&other_fresh, Duration::from_secs(60));
    set_age(&temp_old, Duration::from_secs(2 * 3600));
    set_age(&temp_fresh, Duration::from_secs(60));
    set_age(&unrelated, Duration::from_secs(365 * 24 * 3600));
    let ours_name = cache.entry_path(ours).file_name().expect("name").to_string_lossy().into_owned();
    set_age(&ours_name, two_days);

    CompileCache::open(&dir, &engine).expect("opens");
    let mut expected = vec![ours_name.clone(), other_fresh, temp_fresh, unrelated];
    expected.sort();
    assert_eq!(names_in(&dir), expected);

    // A load marks the entry as used; 31 days unused, it goes.
    assert!(cache.load(&engine, ours).is_some());
    let modified = fs::metadata(dir.join(&ours_name)).and_then(|m| m.modified()).expect("mtime");
    assert!(modified > SystemTime::now() - Duration::from_secs(3600), "the load marked the entry as used");
    set_age(&ours_name, Duration::from_secs(31 * 24 * 3600));
    CompileCache::open(&dir, &engine).expect("opens");
    assert!(!dir.join(&ours_name).exists());
}

/// What `run` logged, without colours.
fn logged<T>(run: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("the log buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let result = tracing::subscriber::with_default(subscriber, run);
    let text = String::from_utf8_lossy(&captured.0.lock().expect("the log buffer")).into_owned();
    (result, text)
}

/// Makes the entry of `digest` what `plant` leaves at its path (from a
/// valid entry, passed as its bytes), checks that a load ignores it with a
/// warning naming the file, then that a store replaces it with the cache's
/// own entry, which loads.
fn planted_entry_is_ignored_then_rebuilt(plant: impl FnOnce(&Path, &[u8])) {
    let engine = engine(false);
    let (_tmp, cache) = fresh(&engine);
    let digest = stored(&cache, &engine, EMPTY_COMPONENT);
    let entry = cache.entry_path(digest);
    let valid = fs::read(&entry).expect("the entry");
    fs::remove_file(&entry).expect("remove the entry");
    plant(&entry, &valid);
    let (loaded, log) = logged(|| cache.load(&engine, digest));
    assert!(loaded.is_none(), "a planted entry must not be used (it has a valid header and checksum)");
    assert!(log.contains("WARN") && log.contains(&entry.display().to_string()), "a warning naming the file: {log}");
    stored(&cache, &engine, EMPTY_COMPONENT);
    let metadata = fs::symlink_metadata(&entry).expect("the rebuilt entry");
    assert!(metadata.file_type().is_file(), "the store replaced what was planted");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert!(cache.load(&engine, digest).is_some(), "the rebuilt entry loads");
}

#[test]
fn an_entry_that_is_a_symbolic_link_is_ignored_and_rebuilt() {
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let target = elsewhere.path().join("planted.cwasm");
    planted_entry_is_ignored_then_rebuilt(|entry, valid| {
        fs::write(&target, valid).expect("the link's target");
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::symlink(&target, entry).expect("symlink");
    });
    assert!(fs::read(&target).is_ok_and(|bytes| bytes.len() > HEADER_BYTES), "the link's target is left alone");
}

#[test]
fn an_entry_writable_by_the_group_or_others_is_ignored_and_rebuilt() {
    for mode in [0o666, 0o620, 0o602] {
        planted_entry_is_ignored_then_rebuilt(|entry, valid| {
            fs::write(entry, valid).expect("the planted entry");
            fs::set_permissions(entry, fs::Permissions::from_mode(mode)).expect("chmod");
        });
    }
}

#[test]
fn an_entry_owned_by_another_user_is_ignored_and_rebuilt() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: giving a file to another user needs root");
        return;
    }
    planted_entry_is_ignored_then_rebuilt(|entry, valid| {
        fs::write(entry, valid).expect("the planted entry");
        fs::set_permissions(entry, fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::chown(entry, Some(65534), Some(65534)).expect("chown to nobody");
    });
}

/// The folder is checked at each load and store, not only when the cache
/// opens: one swapped for a link to another folder, or for a folder of
/// another user, or opened up to the group after the start, is not read
/// (its entry would check out) nor written.
#[test]
fn a_folder_swapped_or_opened_up_after_the_start_is_neither_read_nor_written() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: giving a folder to another user needs root (that case opens the folder to others instead)");
    }
    // Each case changes the cache's folder, which holds a valid entry.
    type ChangeOfTheFolder = fn(&Path);
    let cases: [(&str, ChangeOfTheFolder); 3] = [
        ("a link to another folder of this user's", |dir| {
            let other = dir.with_extension("other");
            fs::rename(dir, &other).expect("move the folder away");
            std::os::unix::fs::symlink(&other, dir).expect("symlink");
        }),
        ("opened up to the group", |dir| {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o770)).expect("chmod");
        }),
        ("a folder of another user", |dir| {
            if rustix::process::geteuid().is_root() {
                std::os::unix::fs::chown(dir, Some(65534), Some(65534)).expect("chown to nobody");
            } else {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).expect("chmod");
            }
        }),
    ];
    let mut outcomes = Vec::new();
    for (case, change) in cases {
        let engine = engine(false);
        let (tmp, cache) = fresh(&engine);
        let dir = tmp.path().join("modules");
        let digest = stored(&cache, &engine, EMPTY_COMPONENT);
        change(&dir);
        let (loaded, log) = logged(|| cache.load(&engine, digest));
        let warned = log.contains("WARN") && log.contains(&dir.display().to_string());
        let other = component_named("other");
        let other_digest = Sha256Digest::of(&other);
        stored(&cache, &engine, &other);
        let written = fs::symlink_metadata(cache.entry_path(other_digest)).is_ok();
        outcomes.push((case, loaded.is_some(), warned, written));
    }
    let refused = |case| (case, false, true, false);
    assert_eq!(
        outcomes,
        ["a link to another folder of this user's", "opened up to the group", "a folder of another user"].map(refused),
        "(case, its valid entry loaded, a warning named the folder, a store wrote into it)"
    );
}
