//! Byte scans that run over every request's headers and every per-request JSON string,
//! eight bytes per step.
//!
//! The word tricks are the classic "has a byte less than n" and "has a zero byte" tests
//! (Hacker's Delight §6-1; Sean Anderson's bit hacks). They can flag a word with no such
//! byte only when it holds one elsewhere, so a word-level "no" is exact and a "yes" is
//! confirmed byte by byte: the answer is always the plain loop's.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte is below `below` (0 for none) or equal to one of `equal`. The word test
/// for "below" holds up to 128; a larger `below` takes the plain loop.
pub fn any_below_or_in(bytes: &[u8], below: u8, equal: &[u8]) -> bool {
    let hit = |b: u8| b < below || equal.contains(&b);
    if below > 128 {
        return bytes.iter().any(|&b| hit(b));
    }
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let Ok(array) = <[u8; 8]>::try_from(word) else { return word.iter().any(|&b| hit(b)) };
        let x = u64::from_le_bytes(array);
        let mut flags = 0u64;
        if below > 0 {
            flags |= x.wrapping_sub(ONES.wrapping_mul(u64::from(below))) & !x & HIGHS;
        }
        for &e in equal {
            let y = x ^ ONES.wrapping_mul(u64::from(e));
            flags |= y.wrapping_sub(ONES) & !y & HIGHS;
        }
        if flags != 0 && word.iter().any(|&b| hit(b)) {
            return true;
        }
    }
    words.remainder().iter().any(|&b| hit(b))
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;

    /// The plain loop's answer over a fixed spread of inputs: the property below without
    /// proptest, so that it runs on wasm32 too.
    #[test]
    #[allow(clippy::arithmetic_side_effects)]
    fn same_as_plain_loop_on_fixed_inputs() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let r = next();
            let bytes: Vec<u8> = (0..r % 40).map(|_| next().to_le_bytes()[0] | 0x20).collect();
            let below = (r >> 8) as u8 % 0x30;
            let equal: Vec<u8> = (0..(r >> 16) % 3).map(|_| 0x20 + (next() % 0x60) as u8).collect();
            let plain = bytes.iter().any(|&b| b < below || equal.contains(&b));
            assert_eq!(any_below_or_in(&bytes, below, &equal), plain, "{bytes:?} below {below} or in {equal:?}");
        }
    }

    // proptest needs threads, failure files and OS randomness: native runs only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        /// The same answer as the plain loop, for any bytes (high bytes included, where the
        /// word tricks can misfire) and any targets.
        #[test]
        fn same_as_plain_loop(bytes in proptest::collection::vec(any::<u8>(), 0..40), below in any::<u8>(), equal in proptest::collection::vec(any::<u8>(), 0..3)) {
            let plain = bytes.iter().any(|&b| b < below || equal.contains(&b));
            prop_assert_eq!(any_below_or_in(&bytes, below, &equal), plain);
        }
    }
}
