//! A small least-recently-used cache of style targets, keyed by blob key.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// Values (style targets) by blob key, the most recently used last.
///
/// The set of keys is shared with the async side, which skips fetching a cached target.
#[derive(Debug)]
pub(crate) struct StyleCache<T> {
    capacity: usize,
    entries: VecDeque<(String, T)>,
    keys: Arc<Mutex<HashSet<String>>>,
}

impl<T> StyleCache<T> {
    pub(crate) fn new(capacity: usize, keys: Arc<Mutex<HashSet<String>>>) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: VecDeque::new(),
            keys,
        }
    }

    /// Returns the target under `key`, marking it recently used.
    pub(crate) fn get(&mut self, key: &str) -> Option<&T> {
        let pos = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(pos)?;
        self.entries.push_back(entry);
        self.entries.back().map(|(_, t)| t)
    }

    /// Stores a target, evicting the least recently used one when full.
    pub(crate) fn insert(&mut self, key: String, target: T) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = self.entries.iter().position(|(k, _)| *k == key) {
            self.entries.remove(pos);
        }
        while self.entries.len() >= self.capacity {
            if let Some((old, _)) = self.entries.pop_front() {
                keys.remove(&old);
            }
        }
        keys.insert(key.clone());
        self.entries.push_back((key, target));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_key() {
        let keys = Arc::new(Mutex::new(HashSet::new()));
        let mut cache = StyleCache::new(2, Arc::clone(&keys));
        cache.insert("a".into(), 1);
        cache.insert("b".into(), 2);
        assert_eq!(cache.get("a"), Some(&1));
        cache.insert("c".into(), 3);
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.get("a"), Some(&1));
        let mut held: Vec<String> = keys.lock().unwrap().iter().cloned().collect();
        held.sort();
        assert_eq!(held, ["a", "c"]);
    }
}
