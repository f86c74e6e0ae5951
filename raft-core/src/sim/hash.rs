//! Stable 64-bit hashers: the same value on every target and endianness.
//!
//! Two of them, for two jobs. [`StableHasher`] (FNV-1a, a byte at a time) derives values the
//! run depends on: the servers' random seeds and the state machine's chain hash, which is part
//! of every snapshot. [`TraceHasher`] (a word at a time, several times faster) sums up what
//! happened: the trace hash and the checker's own log chains, values that only get compared
//! with each other and never feed back into the run.

use core::hash::{Hash, Hasher};

/// FNV-1a over little-endian bytes, with `usize` widened to 64 bits so that a 32-bit wasm build
/// and a 64-bit native build hash identically. Not for hash tables facing untrusted input.
#[derive(Clone, Copy, Debug)]
pub struct StableHasher {
    state: u64,
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher { state: FNV_OFFSET_BASIS }
    }
}

impl StableHasher {
    /// A hasher continuing from an earlier `finish()` value.
    pub fn with_state(state: u64) -> StableHasher {
        StableHasher { state }
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.state ^= u64::from(byte);
            self.state = self.state.wrapping_mul(FNV_PRIME);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }
    fn write_u16(&mut self, i: u16) {
        self.write(&i.to_le_bytes());
    }
    fn write_u32(&mut self, i: u32) {
        self.write(&i.to_le_bytes());
    }
    fn write_u64(&mut self, i: u64) {
        self.write(&i.to_le_bytes());
    }
    fn write_u128(&mut self, i: u128) {
        self.write(&i.to_le_bytes());
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as u64);
    }
}

/// A multiplicative word hasher: each 64-bit word is mixed in with a rotation, an xor and a
/// multiplication by an odd constant, so every step is a bijection of the state and two inputs
/// of the same shape that differ in one word always hash differently. Byte strings go in eight
/// bytes at a time (little-endian, the last word zero-padded; the length written before them
/// by `Hash` keeps padding unambiguous). Not for hash tables facing untrusted input.
#[derive(Clone, Copy, Debug)]
pub struct TraceHasher {
    state: u64,
}

/// An odd constant with well-spread bits (the golden ratio's fraction, 2^64 / φ).
const TRACE_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl TraceHasher {
    /// A hasher continuing from an earlier `finish()` value.
    pub fn with_state(state: u64) -> TraceHasher {
        TraceHasher { state }
    }

    fn mix(&mut self, word: u64) {
        self.state = (self.state.rotate_left(23) ^ word).wrapping_mul(TRACE_MULTIPLIER);
    }
}

impl Hasher for TraceHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut le = [0u8; 8];
            le.copy_from_slice(word);
            self.mix(u64::from_le_bytes(le));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut le = [0u8; 8];
            le[..tail.len()].copy_from_slice(tail);
            self.mix(u64::from_le_bytes(le));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.mix(i as u64);
        self.mix((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
    fn write_i64(&mut self, i: i64) {
        self.mix(i as u64);
    }
    fn write_isize(&mut self, i: isize) {
        self.mix(i as u64);
    }
}

/// Folds `value` into a running trace hash (see [`TraceHasher`]).
pub fn trace_combine<T: Hash + ?Sized>(running: u64, value: &T) -> u64 {
    let mut hasher = TraceHasher::with_state(running);
    value.hash(&mut hasher);
    hasher.finish()
}

/// Hashes one value with a fresh [`StableHasher`].
pub fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = StableHasher::default();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Folds `value` into a running hash.
pub fn combine<T: Hash + ?Sized>(running: u64, value: &T) -> u64 {
    let mut hasher = StableHasher::with_state(running);
    value.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashers_are_pinned() {
        // The values every target must produce: a change here changes every trace hash, or
        // (for the stable hasher) every run.
        assert_eq!(stable_hash(&(7u64, 'x', &b"abc"[..])), 0x399b_4873_7285_e107);
        assert_eq!(trace_combine(0, &(7u64, 'x', &b"abc"[..])), 0x80d6_e9b5_600d_b89d);
    }

    #[test]
    fn trace_hash_sees_every_byte_of_a_string() {
        let base = trace_combine(1, &b"0123456789abcdef0"[..]);
        for k in 0..17 {
            let mut bytes = *b"0123456789abcdef0";
            bytes[k] ^= 1;
            assert_ne!(trace_combine(1, &bytes[..]), base, "byte {k}");
        }
        assert_ne!(trace_combine(1, &b"ab"[..]), trace_combine(1, &b"ab\0"[..]), "padding");
    }
}
