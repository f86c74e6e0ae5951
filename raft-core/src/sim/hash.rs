//! A stable 64-bit hasher for trace hashes: the same value on every target and endianness.

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
