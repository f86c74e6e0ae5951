//! [`Key`]: a store key that orders like its bytes but compares without leaving the tree node.
//!
//! A `BTreeMap<Bytes, _>` follows every key's pointer to compare it: a lookup in a large store
//! touches one far-away cache line per key compared, and profiles of the native node showed
//! those misses as the largest cost of applying a put. A [`Key`] keeps its first eight bytes
//! and its length inline, so most comparisons (all of them, for keys of at most eight bytes)
//! are settled by two integers already in the node.

use bytes::Bytes;
use core::borrow::Borrow;
use core::cmp::Ordering;

/// How many leading bytes of a key are kept inline.
const INLINE_BYTES: usize = 8;

/// A key of the store. Its order is exactly the lexicographic order of its bytes, so it can be
/// looked up by `&[u8]` as well ([`Borrow`]) and lists come out in byte order.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    /// The first [`INLINE_BYTES`] bytes, big-endian, zero-padded: comparing two of them
    /// compares the keys' leading bytes.
    head: u64,
    /// The key's length (bounded by [`crate::kv::KEY_BYTES_MAX`]).
    len: usize,
    bytes: Bytes,
}

impl Key {
    /// Wraps `bytes` (a reference count, no copy).
    pub(crate) fn new(bytes: Bytes) -> Key {
        let mut head = [0u8; INLINE_BYTES];
        let leading = bytes.len().min(INLINE_BYTES);
        head[..leading].copy_from_slice(&bytes[..leading]);
        Key { head: u64::from_be_bytes(head), len: bytes.len(), bytes }
    }

    /// The key's bytes.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        // Different heads differ at a byte both keys have, or where the shorter key's padding
        // (zero) meets a nonzero byte of the longer one: either way the heads order the keys.
        // Equal heads with both keys inline: the shorter one is a prefix of the longer.
        match self.head.cmp(&other.head) {
            Ordering::Equal if self.len <= INLINE_BYTES && other.len <= INLINE_BYTES => {
                self.len.cmp(&other.len)
            }
            Ordering::Equal => self.bytes[..].cmp(&other.bytes[..]),
            unequal => unequal,
        }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn orders_exactly_like_the_bytes() {
        let samples: [&[u8]; 16] = [
            b"",
            b"\0",
            b"\0\0",
            b"a",
            b"a\0",
            b"a\0\0\0\0\0\0",
            b"a\0\0\0\0\0\0\0",
            b"a\0\0\0\0\0\0\0\0",
            b"a\0\0\0\0\0\0\0\x01",
            b"ab",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghi",
            b"abcdefgi",
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ];
        for a in samples {
            for b in samples {
                let (ka, kb) = (Key::new(Bytes::copy_from_slice(a)), Key::new(Bytes::copy_from_slice(b)));
                assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(ka == kb, a == b);
            }
        }
        let mut keys: Vec<Key> = samples.iter().rev().map(|s| Key::new(Bytes::copy_from_slice(s))).collect();
        keys.sort();
        let sorted: Vec<&[u8]> = keys.iter().map(|k| &k.bytes()[..]).collect();
        let mut expected = samples.to_vec();
        expected.sort();
        assert_eq!(sorted, expected);
    }
}
