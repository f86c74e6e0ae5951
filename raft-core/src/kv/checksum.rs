//! CRC-32C (Castagnoli), the checksum that guards snapshots against corruption in storage or on
//! the wire. Table-driven, one byte at a time: simple, no dependency, fast enough for snapshots.

/// The reflected Castagnoli polynomial.
const POLYNOMIAL: u32 = 0x82F6_3B78;

const fn table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLYNOMIAL } else { crc >> 1 };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

static TABLE: [u32; 256] = table();

/// A running CRC-32C over bytes fed in pieces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Crc32c {
    state: u32,
}

impl Crc32c {
    /// A checksum over no bytes yet.
    pub(crate) fn new() -> Crc32c {
        Crc32c { state: !0 }
    }

    /// Feeds more bytes.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let mut crc = self.state;
        for &byte in bytes {
            crc = TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
        }
        self.state = crc;
    }

    /// The running state, for a snapshot of a restore in progress ([`Crc32c::resume`]).
    pub(crate) fn state(&self) -> u32 {
        self.state
    }

    /// Continues a checksum from [`Crc32c::state`].
    pub(crate) fn resume(state: u32) -> Crc32c {
        Crc32c { state }
    }

    /// The checksum of everything fed so far.
    pub(crate) fn value(&self) -> u32 {
        !self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_check_value() {
        let mut crc = Crc32c::new();
        crc.update(b"1234");
        crc.update(b"56789");
        assert_eq!(crc.value(), 0xE306_9283);
    }
}
