//! Keys: each distinct combination of key-column values gets a small id, so per-key state
//! lives in vectors indexed by it. Evicted keys free their id for the next new key.
//!
//! A key cell is trimmed of surrounding ASCII whitespace first: CSV writers pad cells
//! (`BTC, ETH`), and a padded key is the same instrument. A cell of only whitespace is
//! the empty key.
//!
//! A key is a tuple of its cells, and is kept as one; its text ([`key_text`]) joins the
//! cells with `/`, escaping `/` and `\` inside a cell when there are several, so two
//! keys never print alike.

use std::collections::HashMap;

/// A key's id: a slot in the per-key state, reused after the key is evicted.
pub type KeyId = u32;

/// The keys seen so far.
#[derive(Debug, Default, Clone)]
pub struct KeyTable {
    ids: HashMap<Box<[u8]>, KeyId>,
    names: Vec<String>,
    parts: Vec<Vec<String>>,
    last: Option<KeyId>,
    last_bytes: Vec<u8>,
    scratch: Vec<u8>,
    /// Ids of evicted keys, for new keys to take.
    free: Vec<KeyId>,
    /// Per id: whether a key holds it now.
    held: Vec<bool>,
    /// Keys created, a returning evicted key counted again.
    created: u64,
}

/// Separates the parts of a composite key in its interned bytes (a unit separator cannot
/// occur in a CSV cell users type, and would only merge keys, never lose rows).
const SEPARATOR: u8 = 0x1f;

impl KeyTable {
    /// The id of the key made of `parts` (one per key column), adding it if new.
    /// Returns the id and whether the key is new.
    pub fn intern<'a>(&mut self, parts: impl IntoIterator<Item = &'a [u8]>) -> (KeyId, bool) {
        self.scratch.clear();
        let mut count = 0;
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                self.scratch.push(SEPARATOR);
            }
            self.scratch.extend_from_slice(trim(part));
            count = i + 1;
        }
        // Rows of one key often come in runs: skip the hash for a repeat.
        if let Some(id) = self.last {
            if self.last_bytes == self.scratch {
                return (id, false);
            }
        }
        let (id, new) = match self.ids.get(self.scratch.as_slice()) {
            Some(&id) => (id, false),
            None => {
                let text = String::from_utf8_lossy(&self.scratch);
                let parts: Vec<String> = if count == 0 {
                    Vec::new()
                } else {
                    text.split(SEPARATOR as char).map(str::to_owned).collect()
                };
                let id = match self.free.pop() {
                    Some(id) => {
                        self.names[id as usize] = key_text(&parts);
                        self.parts[id as usize] = parts;
                        self.held[id as usize] = true;
                        id
                    }
                    None => {
                        let id = KeyId::try_from(self.names.len()).expect("fewer than 2^32 keys");
                        self.names.push(key_text(&parts));
                        self.parts.push(parts);
                        self.held.push(true);
                        id
                    }
                };
                self.ids.insert(self.scratch.clone().into_boxed_slice(), id);
                self.created += 1;
                (id, true)
            }
        };
        self.last = Some(id);
        self.last_bytes.clear();
        self.last_bytes.extend_from_slice(&self.scratch);
        (id, new)
    }

    /// The key's text (see [`key_text`]; empty for rules without key columns).
    pub fn name(&self, id: KeyId) -> &str {
        &self.names[id as usize]
    }

    /// The key's values, one per key column.
    pub fn parts(&self, id: KeyId) -> &[String] {
        &self.parts[id as usize]
    }

    /// How many ids are in use or free: the length of per-key state vectors.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no key was seen.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Keys held now (not evicted).
    pub fn live(&self) -> usize {
        self.ids.len()
    }

    /// Keys created so far; a key that comes back after its eviction counts again.
    pub fn created(&self) -> u64 {
        self.created
    }

    /// Whether `id` is held now.
    pub fn is_live(&self, id: KeyId) -> bool {
        self.held[id as usize]
    }

    /// Forgets the keys whose `evict[id]` is set; their ids go to the next new keys (their
    /// names stay readable until then).
    pub fn evict(&mut self, evict: &[bool]) {
        self.ids.retain(|_, id| !evict[*id as usize]);
        for (id, _) in evict.iter().enumerate().filter(|(_, &e)| e) {
            self.held[id] = false;
            self.free.push(id as KeyId);
        }
        if self.last.is_some_and(|id| evict[id as usize]) {
            self.last = None;
        }
    }
}

/// The text of a key made of `parts`: a single part as it is (`BTC/USDT`); several joined
/// with `/`, each with `\` and `/` escaped as `\\` and `\/`, so that (`a`, `b/c`) is
/// `a/b\/c` and (`a/b`, `c`) is `a\/b/c`.
pub fn key_text<S: AsRef<str>>(parts: &[S]) -> String {
    if let [only] = parts {
        return only.as_ref().to_owned();
    }
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            text.push('/');
        }
        for c in part.as_ref().chars() {
            if c == '/' || c == '\\' {
                text.push('\\');
            }
            text.push(c);
        }
    }
    text
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_get_ids_in_order_of_first_sight() {
        let mut keys = KeyTable::default();
        assert_eq!(keys.intern([&b"binance"[..], b"BTC"]), (0, true));
        assert_eq!(keys.intern([&b"binance"[..], b"ETH"]), (1, true));
        assert_eq!(keys.intern([&b" binance"[..], b"BTC "]), (0, false));
        assert_eq!(keys.name(1), "binance/ETH");
        assert_eq!(keys.parts(1), ["binance", "ETH"]);
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn evicted_ids_go_to_new_keys() {
        let mut keys = KeyTable::default();
        for k in [&b"a"[..], b"b", b"c"] {
            keys.intern([k]);
        }
        keys.evict(&[false, true, false]);
        assert_eq!(keys.live(), 2);
        assert_eq!(keys.intern([&b"d"[..]]), (1, true));
        assert_eq!(keys.name(1), "d");
        // the evicted key is new again, in a fresh slot
        assert_eq!(keys.intern([&b"b"[..]]), (3, true));
        assert_eq!(keys.intern([&b"a"[..]]), (0, false));
        assert_eq!((keys.len(), keys.live(), keys.created()), (4, 4, 5));
    }

    #[test]
    fn keys_with_slashes_print_apart() {
        let mut keys = KeyTable::default();
        let (a, _) = keys.intern([&b"a"[..], b"b/c"]);
        let (b, _) = keys.intern([&b"a/b"[..], b"c"]);
        let (c, _) = keys.intern([&b"a\\"[..], b"/c"]);
        assert_eq!(keys.name(a), r"a/b\/c");
        assert_eq!(keys.name(b), r"a\/b/c");
        assert_eq!(keys.name(c), r"a\\/\/c");
        assert_eq!(
            key_text(&["BTC/USDT"]),
            "BTC/USDT",
            "one part needs no escape"
        );
        assert_eq!(key_text::<&str>(&[]), "");
    }

    #[test]
    fn parts_do_not_run_together() {
        let mut keys = KeyTable::default();
        let (a, _) = keys.intern([&b"ab"[..], b"c"]);
        let (b, _) = keys.intern([&b"a"[..], b"bc"]);
        assert_ne!(a, b);
    }
}
