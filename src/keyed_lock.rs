//! One async lock per key, held across awaits and forgotten once nobody holds or waits for
//! it: for work that must not run twice at once for the same thing (an idempotency key, a
//! commit's statuses) while different things proceed in parallel.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// The locks, by key.
pub struct KeyedLocks<K>(Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>);

/// A held lock; dropping it frees the key.
pub struct Held<'a, K: Hash + Eq + Clone> {
    locks: &'a KeyedLocks<K>,
    key: K,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<K: Hash + Eq + Clone> KeyedLocks<K> {
    /// No key locked.
    pub fn new() -> KeyedLocks<K> {
        KeyedLocks(Mutex::new(HashMap::new()))
    }

    /// Waits until `key` is free, then holds it.
    pub async fn lock(&self, key: K) -> Held<'_, K> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        Held {
            locks: self,
            key,
            guard: Some(lock.lock_owned().await),
        }
    }

    /// How many keys are held or awaited now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }

    /// Whether no key is held or awaited.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Hash + Eq + Clone> Default for KeyedLocks<K> {
    fn default() -> Self {
        KeyedLocks::new()
    }
}

impl<K: Hash + Eq + Clone> Drop for Held<'_, K> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&self.key).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_key_and_free_keys_are_forgotten() {
        let locks: KeyedLocks<u32> = KeyedLocks::new();
        let a = locks.lock(1).await;
        let _b = locks.lock(2).await;
        assert_eq!(locks.len(), 2);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock(1)).await;
        assert!(waiting.is_err(), "key 1 is held");
        drop(a);
        drop(locks.lock(1).await);
        drop(_b);
        assert!(locks.is_empty());
    }
}
