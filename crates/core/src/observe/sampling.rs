//! Who gets sent: the sampling of info lines and page views, and the token bucket that caps the
//! events one isolate sends.

use crate::vocab::Nanos;

/// Parts per million: a share of 1.0.
pub const PPM: u32 = 1_000_000;

/// Whether a uniform 32-bit `draw` falls in a share of `ppm` millionths.
pub fn sampled(draw: u32, ppm: u32) -> bool {
    ppm >= PPM || (u64::from(draw).saturating_mul(u64::from(PPM)) >> 32) < u64::from(ppm)
}

/// A token bucket (GCRA) that caps the events one isolate sends.
#[derive(Debug, Clone)]
pub struct Budget {
    tat: Nanos,
    interval: Nanos,
    tolerance: Nanos,
}

impl Budget {
    /// `count` events per `window_secs`, all of them at once if they come together.
    pub fn new(count: u64, window_secs: u64) -> Budget {
        let count = count.max(1);
        let interval = window_secs.saturating_mul(1_000_000_000).checked_div(count).unwrap_or(1).max(1);
        Budget { tat: 0, interval, tolerance: interval.saturating_mul(count.saturating_sub(1)) }
    }

    pub fn take(&mut self, now: Nanos) -> bool {
        let tat = self.tat.max(now);
        if tat.saturating_sub(self.tolerance) > now {
            return false;
        }
        self.tat = tat.saturating_add(self.interval);
        true
    }
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn sampling_shares() {
        assert!(!sampled(0, 0) && !sampled(u32::MAX, 0));
        assert!(sampled(0, PPM) && sampled(u32::MAX, PPM));
        let hits = (0..10_000u32).filter(|i| sampled(i.wrapping_mul(429_497), 250_000)).count();
        assert!((2_400..=2_600).contains(&hits), "{hits}");
    }

    #[test]
    fn budget_caps_events() {
        let mut b = Budget::new(3, 60);
        assert!(b.take(0) && b.take(0) && b.take(0));
        assert!(!b.take(0));
        assert!(b.take(20_000_000_000), "one more every 20 s");
        assert!(!b.take(20_000_000_000));
    }
}
