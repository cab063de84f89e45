//! One fulfillment or refund at a time per order, within this process, so
//! that two staff clicking "retry" never fulfill a line twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

#[derive(Clone, Default)]
pub(super) struct OrderLocks(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl OrderLocks {
    /// Waits until no other task holds `number`'s lock, then holds it.
    pub async fn lock(&self, number: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks.entry(number.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}
