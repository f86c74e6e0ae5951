//! The seeded pseudo-random generator: the core's only source of randomness.
//!
//! SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and the same sequence on every target,
//! which is what deterministic replay needs. It is not for cryptography.

/// A deterministic pseudo-random number generator seeded by the caller.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[low, high)`; `low` when the range is empty.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        let span = high - low;
        // Multiply-shift maps 64 random bits onto the span without a division (Lemire 2019);
        // the bias is below 2^-32 for the spans used here.
        low + mul_high(self.next_u64(), span)
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.range(0, denominator) < numerator
    }
}

/// The high 64 bits of the 128-bit product `a * b`.
#[inline]
fn mul_high(a: u64, b: u64) -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        mul_high_by_halves(a, b)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        ((u128::from(a) * u128::from(b)) >> 64) as u64
    }
}

/// [`mul_high`] from 32-bit halves, for wasm: it has no 64×64→128 multiply, and the compiler's
/// generic 128-bit multiply there is a call to a routine that multiplies full 128-bit operands.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn mul_high_by_halves(a: u64, b: u64) -> u64 {
    const LOW: u64 = 0xFFFF_FFFF;
    let (a_low, a_high) = (a & LOW, a >> 32);
    let (b_low, b_high) = (b & LOW, b >> 32);
    let high_low = a_high * b_low;
    // At most (2^32 - 1)^2 + 2 * (2^32 - 1) = 2^64 - 1: no overflow.
    let middle = ((a_low * b_low) >> 32) + (high_low & LOW) + a_low * b_high;
    a_high * b_high + (high_low >> 32) + (middle >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_half_by_halves_is_the_128_bit_products() {
        let mut rng = Rng::new(7);
        let edges = [0, 1, 2, 0xFFFF_FFFF, 0x1_0000_0000, u64::MAX - 1, u64::MAX];
        let pairs = edges.iter().flat_map(|&a| edges.iter().map(move |&b| (a, b)));
        let random = (0..10_000).map(|_| (rng.next_u64(), rng.next_u64()));
        for (a, b) in pairs.chain(random) {
            assert_eq!(mul_high_by_halves(a, b), ((u128::from(a) * u128::from(b)) >> 64) as u64, "{a} * {b}");
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn range_stays_in_bounds() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            let x = rng.range(10, 20);
            assert!((10..20).contains(&x));
        }
        assert_eq!(rng.range(5, 5), 5);
    }
}
