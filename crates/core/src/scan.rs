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
    use super::*;
    use proptest::prelude::*;

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
