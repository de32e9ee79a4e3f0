//! Fixed-window rate limits shared by every Envoy worker, in bounded memory.
//!
//! Each limit (per email, per client address) is a table of `slots` shared-data keys. A key
//! hashes to one slot; a slot holds up to four entries of 20 bytes (the key's 64-bit
//! fingerprint, the start of its window, its count). Expired entries are dropped when the slot is
//! next written; when four live keys already share a slot, the one whose window started first is
//! evicted. Updates are compare-and-swap, retried on conflict, so concurrent workers never lose
//! a count.
//!
//! Memory is at most `slots × 80` bytes of values per limit whatever the number of distinct keys.
//! An evicted key starts a fresh window, so a limit can be exceeded by a key that lost its entry
//! (only when five keys are live in one slot at once), never enforced on a key that was not over
//! it. Two keys with the same 64-bit fingerprint would share a count.
//!
//! Envoy's compare-and-swap only guards keys that already exist, so every slot key is created
//! (empty) when the filter is configured, before traffic flows.

use std::hash::{Hash, Hasher};

/// `requests` per `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub requests: u32,
    pub window_seconds: u32,
}

/// The shared key-value store (proxy-wasm shared data in the filter, a map in tests).
pub trait SharedStore {
    /// The value and its compare-and-swap token, or `None` when the key does not exist.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// Stores `value` if the key's token is still `cas`. `Ok(false)` on a token mismatch.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, StoreError>;
    /// Creates the key with an empty value when it does not exist yet.
    fn create(&self, key: &str) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Admit,
    /// Over the limit; the window ends in this many seconds.
    Deny {
        retry_after: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    fingerprint: u64,
    window_start: u64,
    count: u32,
}

impl Entry {
    const SIZE: usize = 20;

    fn encode(&self) -> [u8; Entry::SIZE] {
        let mut out = [0u8; Entry::SIZE];
        out[..8].copy_from_slice(&self.fingerprint.to_le_bytes());
        out[8..16].copy_from_slice(&self.window_start.to_le_bytes());
        out[16..].copy_from_slice(&self.count.to_le_bytes());
        out
    }

    /// An empty or unreadable value is a free slot.
    fn decode(bytes: &[u8]) -> Option<Entry> {
        let fingerprint = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let window_start = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        let count = u32::from_le_bytes(bytes.get(16..20)?.try_into().ok()?);
        Some(Entry {
            fingerprint,
            window_start,
            count,
        })
    }
}

/// Entries per slot: a key lives in one slot, next to at most three others.
const WAYS: usize = 4;

/// How often a compare-and-swap is retried before giving up. Conflicts only happen between
/// requests for keys of the same slot at the same instant; a streak this long does not happen.
const MAX_ATTEMPTS: usize = 64;

/// One limit over one kind of key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limiter {
    prefix: String,
    slots: u32,
    window: Window,
}

impl Limiter {
    /// `namespace` keeps two filter configurations in one VM apart; `table` names the key kind.
    pub fn new(namespace: &str, table: &str, slots: u32, window: Window) -> Limiter {
        Limiter {
            prefix: format!("reset-gate/{namespace}/{table}/"),
            slots: slots.max(1),
            window,
        }
    }

    fn slot_key(&self, index: u32) -> String {
        format!("{}{index}", self.prefix)
    }

    /// How many keys the table can track at once.
    pub fn capacity(&self) -> usize {
        self.slots as usize * WAYS
    }

    /// Creates every slot key so that compare-and-swap guards all later updates.
    pub fn prepare(&self, store: &dyn SharedStore) -> Result<(), StoreError> {
        for i in 0..self.slots {
            store.create(&self.slot_key(i))?;
        }
        Ok(())
    }

    /// Counts one request for `key` at `now` (seconds) and says whether it is within the limit.
    pub fn check(
        &self,
        store: &dyn SharedStore,
        key: &str,
        now: u64,
    ) -> Result<Decision, StoreError> {
        let fingerprint = fingerprint(key);
        let slot = self.slot_key((fingerprint % u64::from(self.slots)) as u32);
        let window = u64::from(self.window.window_seconds);
        let live = |e: &Entry| now < e.window_start.saturating_add(window);
        for _ in 0..MAX_ATTEMPTS {
            let Some((value, cas)) = store.get(&slot)? else {
                // The slot vanished (it is created at configuration): create it and read again.
                store.create(&slot)?;
                continue;
            };
            let mut entries: Vec<Entry> = value
                .chunks_exact(Entry::SIZE)
                .filter_map(Entry::decode)
                .filter(|e| live(e))
                .collect();
            let decision = match entries.iter_mut().find(|e| e.fingerprint == fingerprint) {
                Some(e) if e.count >= self.window.requests => {
                    return Ok(Decision::Deny {
                        retry_after: e
                            .window_start
                            .saturating_add(window)
                            .saturating_sub(now)
                            .max(1),
                    })
                }
                Some(e) => {
                    e.count += 1;
                    Decision::Admit
                }
                None => {
                    if entries.len() >= WAYS {
                        // Full of live keys: the oldest window makes room.
                        if let Some(oldest) = entries
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, e)| e.window_start)
                            .map(|(i, _)| i)
                        {
                            entries.swap_remove(oldest);
                        }
                    }
                    entries.push(Entry {
                        fingerprint,
                        window_start: now,
                        count: 1,
                    });
                    Decision::Admit
                }
            };
            let mut encoded = Vec::with_capacity(entries.len() * Entry::SIZE);
            for e in &entries {
                encoded.extend_from_slice(&e.encode());
            }
            if store.set(&slot, &encoded, cas)? {
                return Ok(decision);
            }
        }
        Err(StoreError(format!(
            "rate-limit slot still contended after {MAX_ATTEMPTS} attempts"
        )))
    }
}

/// A stable 64-bit fingerprint (SipHash with fixed keys: the same in every worker's VM).
pub fn fingerprint(key: &str) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x7265_7365_742d_6761, 0x7465_2d6c_696d_6974);
    key.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// key → (value, token), and the last token handed out.
    type Table = (HashMap<String, (Vec<u8>, u32)>, u32);

    /// Envoy's semantics: every write bumps the token; a token only guards existing keys.
    #[derive(Default)]
    struct MapStore {
        inner: Mutex<Table>,
    }

    impl SharedStore for MapStore {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            Ok(self.inner.lock().unwrap().0.get(key).cloned())
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, StoreError> {
            let mut g = self.inner.lock().unwrap();
            g.1 += 1;
            let token = g.1;
            match g.0.get_mut(key) {
                Some(v) if cas != 0 && v.1 != cas => Ok(false),
                Some(v) => {
                    *v = (value.to_vec(), token);
                    Ok(true)
                }
                None => {
                    g.0.insert(key.to_string(), (value.to_vec(), token));
                    Ok(true)
                }
            }
        }
        fn create(&self, key: &str) -> Result<(), StoreError> {
            let mut g = self.inner.lock().unwrap();
            g.1 += 1;
            let token = g.1;
            g.0.entry(key.to_string()).or_insert((Vec::new(), token));
            Ok(())
        }
    }

    fn limiter(requests: u32, window_seconds: u32, slots: u32) -> Limiter {
        Limiter::new(
            "test",
            "email",
            slots,
            Window {
                requests,
                window_seconds,
            },
        )
    }

    fn prepared(l: &Limiter) -> MapStore {
        let s = MapStore::default();
        l.prepare(&s).unwrap();
        s
    }

    #[test]
    fn admits_exactly_n_per_window_then_tells_the_wait() {
        let l = limiter(3, 60, 64);
        let s = prepared(&l);
        for _ in 0..3 {
            assert_eq!(l.check(&s, "a@b.co", 1000).unwrap(), Decision::Admit);
        }
        assert_eq!(
            l.check(&s, "a@b.co", 1010).unwrap(),
            Decision::Deny { retry_after: 50 }
        );
        assert_eq!(
            l.check(&s, "a@b.co", 1059).unwrap(),
            Decision::Deny { retry_after: 1 }
        );
        assert_eq!(l.check(&s, "a@b.co", 1060).unwrap(), Decision::Admit);
    }

    #[test]
    fn keys_are_counted_apart() {
        let l = limiter(1, 60, 64);
        let s = prepared(&l);
        assert_eq!(l.check(&s, "a@b.co", 5).unwrap(), Decision::Admit);
        assert_eq!(l.check(&s, "c@d.co", 5).unwrap(), Decision::Admit);
        assert!(matches!(
            l.check(&s, "a@b.co", 5).unwrap(),
            Decision::Deny { .. }
        ));
    }

    #[test]
    fn memory_is_bounded_by_the_slots() {
        let l = limiter(1, 3600, 128);
        let s = prepared(&l);
        for i in 0..10_000 {
            l.check(&s, &format!("user{i}@example.com"), 100).unwrap();
        }
        let g = s.inner.lock().unwrap();
        assert_eq!(g.0.len(), 128);
        assert!(g.0.values().all(|(v, _)| v.len() <= WAYS * Entry::SIZE));
    }

    #[test]
    fn a_key_keeps_its_count_while_the_table_is_not_full() {
        let l = limiter(2, 3600, 4096);
        let s = prepared(&l);
        for i in 0..500 {
            let k = format!("user{i}@example.com");
            assert_eq!(l.check(&s, &k, 7).unwrap(), Decision::Admit);
            assert_eq!(l.check(&s, &k, 7).unwrap(), Decision::Admit);
        }
        let mut denied = 0;
        for i in 0..500 {
            if let Decision::Deny { .. } = l.check(&s, &format!("user{i}@example.com"), 8).unwrap()
            {
                denied += 1;
            }
        }
        assert_eq!(denied, 500);
    }

    #[test]
    fn concurrent_workers_admit_exactly_n() {
        let l = Arc::new(limiter(50, 60, 64));
        let s = Arc::new(prepared(&l));
        let admitted = Arc::new(Mutex::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (l, s, admitted) = (l.clone(), s.clone(), admitted.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        if l.check(&*s, "hot@example.com", 42).unwrap() == Decision::Admit {
                            *admitted.lock().unwrap() += 1;
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*admitted.lock().unwrap(), 50);
    }

    #[test]
    fn namespaces_keep_configurations_apart() {
        let w = Window {
            requests: 1,
            window_seconds: 60,
        };
        let a = Limiter::new("a", "ip", 16, w);
        let b = Limiter::new("b", "ip", 16, w);
        let s = MapStore::default();
        a.prepare(&s).unwrap();
        b.prepare(&s).unwrap();
        assert_eq!(a.check(&s, "1.2.3.4", 1).unwrap(), Decision::Admit);
        assert_eq!(b.check(&s, "1.2.3.4", 1).unwrap(), Decision::Admit);
    }

    #[test]
    fn entries_round_trip_and_garbage_is_free() {
        let e = Entry {
            fingerprint: 0xdead_beef,
            window_start: 17,
            count: 3,
        };
        assert_eq!(Entry::decode(&e.encode()), Some(e));
        assert_eq!(Entry::decode(b""), None);
        assert_eq!(Entry::decode(b"short"), None);
    }
}
