//! GCRA limiter throughput over 100 k keys (results in docs/benchmarks.md).
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]
//! Run: `cargo bench -p edgeguard-core --bench limiter`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgeguard_core::bundle::{Limit, LimitKey, Scope};
use edgeguard_core::limits::{Limiter, policy_header};

fn benches(c: &mut Criterion) {
    let limit = Limit {
        name: "api".into(),
        count: 100,
        window_secs: 900,
        burst: 20,
        key: LimitKey::Ip,
        key_name: None,
        scope: Scope::Local,
        shadow: false,
        on_error_deny: false,
        policy_header: policy_header("api", 100, 900),
        session: None,
        geo: None,
    };
    const KEYS: u32 = 100_000;
    let mut limiter = Limiter::new(200_000, 11);
    let keys: Vec<Vec<u8>> = (0..KEYS).map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255).into_bytes()).collect();
    let hashes: Vec<u64> = keys.iter().map(|k| limiter.key_hash(0, k)).collect();
    for h in &hashes {
        limiter.check(&limit, *h, 0);
    }
    let mut group = c.benchmark_group("limiter");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut now = 0u64;
    group.bench_function("check_100k_keys", |b| {
        b.iter(|| {
            i = (i + 7919) % hashes.len();
            now += 100;
            black_box(limiter.check(&limit, hashes[i], now))
        })
    });
    let mut j = 0usize;
    group.bench_function("hash_and_check_100k_keys", |b| {
        b.iter(|| {
            j = (j + 7919) % keys.len();
            now += 100;
            let h = limiter.key_hash(0, &keys[j]);
            black_box(limiter.check(&limit, h, now))
        })
    });
    group.finish();
    eprintln!(
        "limiter: {} keys, {} bytes of table, {:.1} bytes/key",
        limiter.len(),
        limiter.heap_bytes(),
        limiter.heap_bytes() as f64 / limiter.len() as f64
    );
}

criterion_group!(limiter_benches, benches);
criterion_main!(limiter_benches);
