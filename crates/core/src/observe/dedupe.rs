//! The CSP report dedupe: one report per page, directive and blocked URL per window.

use std::collections::HashMap;

use super::{NANOS_PER_MS, Violation};
use crate::vocab::{BuildPreHashed, Nanos};

/// Most distinct CSP report keys remembered for dedupe per isolate.
const DEDUPE_CAP: usize = 4096;

/// Remembers recent reports so a page that violates its CSP on every load reports once per
/// window. Bounded: when full, expired keys are dropped, and if none has expired the table
/// starts over (a burst of distinct reports can then repeat once).
pub struct Dedupe {
    seen: HashMap<u64, Nanos, BuildPreHashed>,
    window: Nanos,
    hasher: foldhash::quality::FixedState,
}

impl Dedupe {
    pub fn new(window_ms: u64, seed: u64) -> Dedupe {
        Dedupe { seen: HashMap::with_hasher(BuildPreHashed), window: window_ms.saturating_mul(NANOS_PER_MS), hasher: foldhash::quality::FixedState::with_seed(seed) }
    }

    /// Whether `v` is new within the window (and remember it).
    pub fn admit(&mut self, v: &Violation, now: Nanos) -> bool {
        use core::hash::{BuildHasher, Hasher};
        if self.window == 0 {
            return true;
        }
        let mut h = self.hasher.build_hasher();
        for part in [&v.document_uri, &v.effective_directive, &v.blocked_uri] {
            h.write(part.as_bytes());
            h.write_u8(0xff);
        }
        let key = h.finish();
        if self.seen.get(&key).is_some_and(|until| *until > now) {
            return false;
        }
        if self.seen.len() >= DEDUPE_CAP {
            self.seen.retain(|_, until| *until > now);
            if self.seen.len() >= DEDUPE_CAP {
                self.seen.clear();
            }
        }
        self.seen.insert(key, now.saturating_add(self.window));
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn dedupe_window_and_cap() {
        let v = |doc: &str| Violation {
            document_uri: doc.into(),
            effective_directive: "script-src".into(),
            blocked_uri: "inline".into(),
            disposition: "enforce".into(),
            source_file: None,
            line: None,
            column: None,
            status_code: None,
            sample: None,
        };
        let mut d = Dedupe::new(60_000, 1);
        let s = 1_000_000_000u64;
        assert!(d.admit(&v("https://a/"), 0));
        assert!(!d.admit(&v("https://a/"), 30 * s));
        assert!(d.admit(&v("https://a/other"), 30 * s));
        assert!(d.admit(&v("https://a/"), 61 * s), "the window has passed");
        for i in 0..10_000 {
            d.admit(&v(&format!("https://a/{i}")), 100 * s);
            assert!(d.len() <= DEDUPE_CAP);
        }
        let mut off = Dedupe::new(0, 1);
        assert!(off.admit(&v("x"), 0) && off.admit(&v("x"), 0));
    }
}
