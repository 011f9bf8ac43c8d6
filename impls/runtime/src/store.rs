//! The in-memory key-value store each service owns: embedded in micro and monolith units,
//! served by a state unit for nano units.

use crate::digest::Digest;
use crate::model::StoreDef;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;

/// A service's key-value store.
#[derive(Debug, Default)]
pub struct Store {
    entries: Mutex<HashMap<String, Bytes>>,
}

impl Store {
    /// A store loaded with the service's initial data.
    pub fn seeded(def: &StoreDef) -> Self {
        let mut entries = HashMap::new();
        for seed in &def.seeds {
            for n in 0..seed.count {
                let key = format!("{}{}", seed.key_prefix, n);
                let value = filler_value(&key, seed.value_bytes);
                entries.insert(key, value);
            }
        }
        Store {
            entries: Mutex::new(entries),
        }
    }

    pub fn get_many(&self, keys: &[String]) -> Vec<Option<Bytes>> {
        let entries = self.lock();
        keys.iter().map(|key| entries.get(key).cloned()).collect()
    }

    pub fn put_many(&self, pairs: Vec<(String, Bytes)>) {
        let mut entries = self.lock();
        for (key, value) in pairs {
            entries.insert(key, value);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        // A panic while holding the lock cannot leave the map half-updated (each insert is
        // atomic from the map's view), so a poisoned lock is still safe to use.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A deterministic value of `len` bytes derived from `seed` (hex digits of its digest).
pub fn filler_value(seed: &str, len: usize) -> Bytes {
    let hex = Digest::new().add(seed.as_bytes()).hex();
    Bytes::from(hex.bytes().cycle().take(len).collect::<Vec<u8>>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DataSeed;

    #[test]
    fn seeded_store_holds_every_seed_key() {
        let def = StoreDef {
            service: "catalogue".into(),
            seeds: vec![DataSeed {
                key_prefix: "item:".into(),
                count: 10,
                value_bytes: 32,
            }],
        };
        let store = Store::seeded(&def);
        assert_eq!(store.len(), 10);
        let got = store.get_many(&["item:3".into(), "item:10".into()]);
        assert_eq!(got[0].as_ref().map(|v| v.len()), Some(32));
        assert!(got[1].is_none());
        store.put_many(vec![("item:10".into(), Bytes::from_static(b"x"))]);
        assert_eq!(store.len(), 11);
    }
}
