//! Stage 7: GCRA rate limiting with an injected clock and bounded memory.
//!
//! Each key holds one number, its theoretical arrival time (TAT, nanoseconds). A request is
//! admitted when `TAT - τ ≤ now`, where `T = window / count` is the emission interval and
//! `τ = T × (burst − 1)` the burst tolerance; admitting moves the TAT to `max(TAT, now) + T`.
//! Over any interval of length `d` this admits at most `burst + d / T` requests.
//!
//! Keys are stored as 64-bit keyed hashes in one table shared by every limit, capped at
//! `max_keys`. A key whose TAT is in the past is indistinguishable from a fresh key, so when
//! the table is full those are dropped first; if that is not enough, the keys closest to full
//! recovery (lowest TAT) go next. A flood of new client addresses therefore costs the
//! attacker its own buckets and never grows memory.

use core::hash::{BuildHasher, Hasher};
use std::collections::HashMap;

use crate::bundle::Limit;
use crate::vocab::NANOS_PER_SEC;
pub use crate::vocab::{BuildPreHashed, Nanos, PreHashed, ceil_secs, policy_header, rate_limit_header};

/// The answer for one request against one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// Requests still allowed right now after this one (`r`).
    pub remaining: u64,
    /// Seconds until the full burst is available again (`t`).
    pub reset_secs: u64,
    /// Seconds until the next request would be admitted (0 when allowed).
    pub retry_after_secs: u64,
}


/// Per-isolate limiter state for every limit of a bundle.
pub struct Limiter {
    tats: HashMap<u64, Nanos, BuildPreHashed>,
    /// Global-limit keys the Durable Object refused, with the time they may retry: refused in
    /// the isolate until then without a round trip (the fast path never admits, so it cannot
    /// make a global limit less exact).
    refused_until: HashMap<u64, Nanos, BuildPreHashed>,
    hasher: foldhash::quality::FixedState,
    max_keys: usize,
    evictions: u64,
    /// The shield's suspicion counts (`[shield]`), per client, in this isolate.
    pub shield: crate::shield::Tracker,
}

/// GCRA's refusal of a key whose state is `tat` (at least `now`) with burst tolerance `tau`:
/// `None` when it admits.
fn refusal(tat: Nanos, tau: Nanos, now: Nanos) -> Option<Outcome> {
    let allow_at = tat.saturating_sub(tau);
    (allow_at > now).then(|| Outcome {
        allowed: false,
        remaining: 0,
        reset_secs: ceil_secs(tat.saturating_sub(now)),
        retry_after_secs: ceil_secs(allow_at.saturating_sub(now)).max(1),
    })
}

impl Limiter {
    /// `seed` keys the hash so clients cannot aim collisions at each other's buckets; shells
    /// pass a random value once per isolate.
    pub fn new(max_keys: u32, seed: u64) -> Limiter {
        let max_keys = (max_keys as usize).max(16);
        Limiter {
            tats: HashMap::with_capacity_and_hasher(max_keys.min(4096), BuildPreHashed),
            refused_until: HashMap::with_hasher(BuildPreHashed),
            hasher: foldhash::quality::FixedState::with_seed(seed),
            max_keys,
            evictions: 0,
            shield: crate::shield::Tracker::new(max_keys / 8),
        }
    }

    /// The hash identifying `(limit, key)`.
    pub fn key_hash(&self, limit: u16, key: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u16(limit);
        h.write(key);
        h.finish()
    }

    /// The hash the shield tracks a client under (its limit key bytes).
    pub fn shield_hash(&self, client: &[u8]) -> u64 {
        crate::shield::client_hash(&self.hasher, client)
    }

    /// The hash identifying `(limit, key)` for a key given in pieces (no concatenation).
    pub fn key_hash_parts(&self, limit: u16, parts: &[&[u8]]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u16(limit);
        for part in parts {
            h.write(part);
        }
        h.finish()
    }

    pub fn len(&self) -> usize {
        self.tats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tats.is_empty()
    }

    /// Keys evicted so far because the table was full.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Approximate heap bytes held by the table.
    pub fn heap_bytes(&self) -> usize {
        // hashbrown: one (u64, u64) slot plus one control byte per bucket.
        self.tats.capacity().saturating_mul(17)
    }

    /// Remember that a global limiter refused `key_hash` until `until`.
    pub fn remember_refusal(&mut self, key_hash: u64, until: Nanos, now: Nanos) {
        if self.refused_until.len() >= self.max_keys / 4 {
            self.refused_until.retain(|_, t| *t > now);
            if self.refused_until.len() >= self.max_keys / 4 {
                self.refused_until.clear();
            }
        }
        self.refused_until.insert(key_hash, until);
    }

    /// Nanoseconds the key must still wait if a global limiter refused it recently.
    pub fn known_refusal(&self, key_hash: u64, now: Nanos) -> Option<Nanos> {
        self.refused_until.get(&key_hash).filter(|t| **t > now).map(|t| t.saturating_sub(now))
    }

    /// Check and, when admitted, record one request.
    pub fn check(&mut self, limit: &Limit, key_hash: u64, now: Nanos) -> Outcome {
        let t = emission_interval(limit);
        let tau = t.saturating_mul(limit.burst.saturating_sub(1));
        let stored = self.tats.get(&key_hash).copied();
        let tat = stored.unwrap_or(now).max(now);
        if let Some(refused) = refusal(tat, tau, now) {
            return refused;
        }
        let new_tat = tat.saturating_add(t);
        if stored.is_none() && self.tats.len() >= self.max_keys {
            self.make_room(now);
        }
        self.tats.insert(key_hash, new_tat);
        let used = new_tat.saturating_sub(now);
        let headroom = tau.saturating_add(t).saturating_sub(used);
        Outcome {
            allowed: true,
            remaining: headroom.checked_div(t).unwrap_or(0),
            reset_secs: ceil_secs(used),
            retry_after_secs: 0,
        }
    }

    /// What `check` would answer if it refused, without counting anything: a gate that must not
    /// let a locked-out client through (API key failures), checked before the key is.
    pub fn would_refuse(&self, limit: &Limit, key_hash: u64, now: Nanos) -> Option<Outcome> {
        let tau = emission_interval(limit).saturating_mul(limit.burst.saturating_sub(1));
        refusal(self.tats.get(&key_hash).copied()?.max(now), tau, now)
    }

    /// A key's state (its theoretical arrival time), for a shell that persists it: a global
    /// limiter's Durable Object writes it to storage after each admitted request.
    pub fn tat(&self, key_hash: u64) -> Option<Nanos> {
        self.tats.get(&key_hash).copied()
    }

    /// Put back a key's state saved earlier (a Durable Object that restarted), so a restart
    /// hands no client a fresh burst. A state already over is skipped; a later one already held
    /// is kept; the table's bound holds as for any new key.
    pub fn restore(&mut self, key_hash: u64, tat: Nanos, now: Nanos) {
        if tat <= now {
            return;
        }
        match self.tats.get_mut(&key_hash) {
            Some(held) => *held = (*held).max(tat),
            None => {
                if self.tats.len() >= self.max_keys {
                    self.make_room(now);
                }
                self.tats.insert(key_hash, tat);
            }
        }
    }

    /// Drop recovered keys; if still over 90 % full, drop the 10 % closest to recovery.
    fn make_room(&mut self, now: Nanos) {
        let before = self.tats.len();
        self.tats.retain(|_, tat| *tat > now);
        let target = self.max_keys.saturating_sub(self.max_keys / 10).max(1);
        if self.tats.len() > target {
            let excess = self.tats.len().saturating_sub(target);
            let mut tats: Vec<Nanos> = self.tats.values().copied().collect();
            if let Some(nth) = excess.checked_sub(1) {
                let (_, threshold, _) = tats.select_nth_unstable(nth);
                let threshold = *threshold;
                let mut budget = excess;
                self.tats.retain(|_, tat| {
                    if budget > 0 && *tat <= threshold {
                        budget = budget.saturating_sub(1);
                        false
                    } else {
                        true
                    }
                });
            }
        }
        self.evictions = self.evictions.saturating_add(before.saturating_sub(self.tats.len()) as u64);
    }
}

/// `T`: nanoseconds between two requests at the sustained rate (at least 1).
pub fn emission_interval(limit: &Limit) -> Nanos {
    limit.window_secs.saturating_mul(NANOS_PER_SEC).checked_div(limit.count).unwrap_or(u64::MAX).max(1)
}



#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;

    fn limit(count: u64, window_secs: u64, burst: u64) -> Limit {
        Limit::local_per_ip("api", count, window_secs, burst)
    }

    #[test]
    fn headers_are_structured_fields() {
        assert_eq!(policy_header("api", 100, 900), "\"api\";q=100;w=900");
        assert_eq!(rate_limit_header("api", 42, 30), "\"api\";r=42;t=30");
    }

    #[test]
    fn burst_then_steady_rate() {
        let l = limit(100, 900, 20); // T = 9 s
        let mut lim = Limiter::new(1000, 7);
        let k = lim.key_hash(0, b"1.2.3.4");
        let s = NANOS_PER_SEC;
        for i in 0..20 {
            let o = lim.check(&l, k, 0);
            assert!(o.allowed, "request {i} within burst");
            assert_eq!(o.remaining, 19 - i);
        }
        let o = lim.check(&l, k, 0);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_secs, 9);
        assert!(!lim.check(&l, k, 8 * s).allowed);
        assert!(lim.check(&l, k, 9 * s).allowed);
        assert!(!lim.check(&l, k, 9 * s).allowed);
        // Another key is independent.
        let other = lim.key_hash(0, b"5.6.7.8");
        assert!(lim.check(&l, other, 9 * s).allowed);
        // The same key under another limit is independent too.
        assert_ne!(lim.key_hash(1, b"1.2.3.4"), k);
    }

    #[test]
    fn recovers_fully_after_the_burst_window() {
        let l = limit(10, 60, 10);
        let mut lim = Limiter::new(1000, 1);
        let k = lim.key_hash(0, b"k");
        for _ in 0..10 {
            assert!(lim.check(&l, k, 0).allowed);
        }
        let o = lim.check(&l, k, 60 * NANOS_PER_SEC);
        assert!(o.allowed);
        assert_eq!(o.remaining, 9);
    }

    #[test]
    fn restored_state_refuses_as_before_the_restart() {
        let l = limit(10, 60, 10);
        let mut before = Limiter::new(1000, 1);
        let k = before.key_hash(0, b"k");
        for _ in 0..10 {
            assert!(before.check(&l, k, 0).allowed);
        }
        let saved = before.tat(k).unwrap_or_default();
        // A new limiter (a restarted Durable Object) with the saved state: still no burst.
        let mut after = Limiter::new(1000, 2);
        after.restore(k, saved, NANOS_PER_SEC);
        assert!(!after.check(&l, k, NANOS_PER_SEC).allowed);
        assert!(after.check(&l, k, 6 * NANOS_PER_SEC).allowed, "one token back after 6 s");
        // A state already over is not restored; a later one held is kept.
        let mut fresh = Limiter::new(1000, 3);
        fresh.restore(k, saved, saved);
        assert!(fresh.is_empty());
        fresh.restore(k, saved, 0);
        fresh.restore(k, 1, 0);
        assert_eq!(fresh.tat(k), Some(saved));
    }

    #[test]
    fn eviction_prefers_recovered_keys() {
        let l = limit(1, 10, 1);
        let mut lim = Limiter::new(100, 3);
        for i in 0u32..100 {
            lim.check(&l, lim.key_hash(0, &i.to_le_bytes()), 0);
        }
        assert_eq!(lim.len(), 100);
        // At t = 20 s every key has recovered: room is made by dropping all of them.
        lim.check(&l, lim.key_hash(0, b"new"), 20 * NANOS_PER_SEC);
        assert_eq!(lim.len(), 1);
    }

    // proptest needs threads, failure files and OS randomness: native runs only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        #[test]
        fn never_admits_more_than_burst_plus_rate(
            count in 1u64..50,
            window in 1u64..120,
            burst in 1u64..30,
            gaps in proptest::collection::vec(0u64..3_000_000_000, 1..300),
        ) {
            let l = limit(count, window, burst);
            let t = emission_interval(&l);
            let mut lim = Limiter::new(1000, 9);
            let k = lim.key_hash(0, b"client");
            let mut now = 0u64;
            let mut admitted: Vec<u64> = Vec::new();
            for g in gaps {
                now += g;
                if lim.check(&l, k, now).allowed {
                    admitted.push(now);
                }
            }
            // For every window [a, b] of admitted requests: count ≤ burst + (b - a) / T.
            for (i, a) in admitted.iter().enumerate() {
                for (j, b) in admitted.iter().enumerate().skip(i) {
                    let n = (j - i + 1) as u64;
                    prop_assert!(n <= burst + (b - a) / t, "{} admitted in {} ns", n, b - a);
                }
            }
        }

        #[test]
        fn key_cap_holds(cap in 16u32..500, keys in 1u32..5000, step in 0u64..2_000_000_000) {
            let l = limit(5, 60, 5);
            let mut lim = Limiter::new(cap, 5);
            let mut now = 0;
            for i in 0..keys {
                lim.check(&l, lim.key_hash(0, &i.to_le_bytes()), now);
                now += step / 100;
                prop_assert!(lim.len() <= cap as usize);
            }
        }
    }
}
