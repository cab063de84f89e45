//! Memory and table caps of one store (`memory_bytes`, `table_elements`).
//!
//! A growth past the cap is refused the WebAssembly way: `memory.grow`
//! returns -1 and the guest's allocator sees out-of-memory, inside the guest.
//! The limiter remembers the refusal so the fault note can say which limit
//! the module ran into.

use wasmtime::ResourceLimiter;

/// The caps, and the first growth they refused.
#[derive(Debug)]
pub struct GrowthLimiter {
    memory_bytes: usize,
    table_elements: usize,
    refused: Option<String>,
}

impl GrowthLimiter {
    pub fn new(memory_bytes: u64, table_elements: u32) -> GrowthLimiter {
        GrowthLimiter {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            table_elements: usize::try_from(table_elements).unwrap_or(usize::MAX),
            refused: None,
        }
    }

    /// What the limiter refused, as "its memory limit of 64 MiB (memory_bytes)".
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }
}

impl ResourceLimiter for GrowthLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired <= self.memory_bytes {
            return Ok(true);
        }
        self.refused.get_or_insert_with(|| {
            format!("its memory limit of {} (memory_bytes)", human_bytes(self.memory_bytes))
        });
        Ok(false)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired <= self.table_elements {
            return Ok(true);
        }
        self.refused.get_or_insert_with(|| {
            format!("its table limit of {} elements (table_elements)", self.table_elements)
        });
        Ok(false)
    }
}

/// "64 MiB", "512 KiB" or "1000 bytes".
fn human_bytes(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() {
        let mut limiter = GrowthLimiter::new(2 * 1024 * 1024, 100);
        assert!(limiter.memory_growing(0, 2 * 1024 * 1024, None).expect("no error"));
        assert_eq!(limiter.refused(), None);
        assert!(!limiter.memory_growing(0, 2 * 1024 * 1024 + 65536, None).expect("no error"));
        assert!(!limiter.table_growing(0, 101, None).expect("no error"));
        assert_eq!(limiter.refused(), Some("its memory limit of 2 MiB (memory_bytes)"));
    }
}
