//! `decide` and `compile` benchmarks (results in docs/benchmarks.md).
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]
//! Run: `cargo bench -p edgeguard-compiler --bench engine`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use edgeguard_compiler::{Options, compile};
use edgeguard_core::shadow::Shadow;
use edgeguard_core::{Draw, Engine, Reason, RequestFacts};

const QUOTEKIT: &str = include_str!("../../../fixtures/quotekit.toml");
const UUID: &str = "123e4567-e89b-12d3-a456-426614174000";

/// A policy with `n` routes of realistic shapes: static, typed, glob and catch-all.
pub fn generated_policy(n: usize) -> String {
    let mut s = String::from("version = 1\n[origins.app]\nurl = \"https://app.fly.dev\"\n[limits.api]\nrate = \"100/15m\"\nburst = 20\n[defaults]\nlimit = \"api\"\n");
    for i in 0..n {
        let (path, extra) = match i % 5 {
            0 => (format!("/svc{i}/items"), "methods = [\"GET\", \"POST\"]\n".to_owned()),
            1 => (format!("/svc{i}/items/:id"), "params = { id = \"int\" }\n".to_owned()),
            2 => (format!("/svc{i}/files/**"), "cache = \"public, max-age=60\"\n".to_owned()),
            3 => (format!("/svc{i}/debug-*"), "block = 404\n".to_owned()),
            _ => (format!("/svc{i}/users/:user/orders/:order"), "params = { user = \"uuid\", order = \"re:o-[0-9]+\" }\n".to_owned()),
        };
        s.push_str(&format!("[[routes]]\npath = \"{path}\"\n{extra}"));
    }
    s
}

fn engine(source: &str) -> Engine {
    let out = compile(source, &Options::default());
    let Some(bundle) = out.bundle else { panic!("{:#?}", out.diagnostics) };
    Engine::new(bundle).unwrap()
}

/// Method, URL and the request's extra headers.
type Sample = (&'static str, String, Vec<(&'static str, &'static str)>);

fn bench_decide(c: &mut Criterion, name: &str, engine: &Engine, requests: &[Sample]) {
    let mut limiter = engine.new_limiter(7);
    bench_requests(c, name, requests, |req, now, draw| black_box(engine.decide(black_box(req), &mut limiter, now, draw)).reason);
}

/// The active policy's decision and a shadow candidate's (edgeguard_core::shadow), compared:
/// what a worker built with `--shadow` does per request, against `bench_decide` alone.
fn bench_decide_with_shadow(c: &mut Criterion, name: &str, engine: &Engine, candidate: &[u8], requests: &[Sample]) {
    let mut limiter = engine.new_limiter(7);
    let mut shadow = Shadow::load(candidate, 9).unwrap();
    bench_requests(c, name, requests, |req, now, draw| {
        let active = engine.decide(black_box(req), &mut limiter, now, draw);
        let theirs = shadow.decide(req, now, draw);
        black_box(shadow.compare(engine, &active, &theirs, req.method, now));
        active.reason
    });
}

/// Time `per_request` over `requests`, each from one of 10 000 client addresses.
fn bench_requests(c: &mut Criterion, name: &str, requests: &[Sample], mut per_request: impl FnMut(&RequestFacts, u64, Draw) -> Reason) {
    let ips: Vec<String> = (0..10_000u32).map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)).collect();
    let mut i = 0usize;
    let mut now = 0u64;
    c.bench_function(name, |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            now += 1_000;
            let (method, url, extra) = &requests[i % requests.len()];
            let mut headers: Vec<(&str, &str)> = Vec::with_capacity(extra.len() + 3);
            headers.push(("host", "lawnquote.online"));
            headers.push(("cf-connecting-ip", &ips[i % ips.len()]));
            // A whole browser user agent and a referer: the bot check and the shield read both.
            if !extra.iter().any(|(n, _)| *n == "user-agent") {
                headers.push(("user-agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"));
            }
            headers.push(("referer", "https://lawnquote.online/dashboard"));
            headers.extend(extra.iter().copied());
            let req = RequestFacts { method, url, headers: &headers, peer_ip: None, cf: Default::default() };
            black_box(per_request(&req, now, Draw { request_id: i as u128, lane: i as u32 }))
        })
    });
}

/// QuoteKit's policy without the `bots`, `geo_deny` lines and the `[shield]` table.
fn without_client_rules(source: &str) -> String {
    let mut out = String::new();
    let mut in_shield = false;
    for line in source.lines() {
        if line.starts_with('[') {
            in_shield = line == "[shield]";
        }
        if in_shield || line.starts_with("bots = ") || line.starts_with("geo_deny = ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(!out.contains("[shield]") && out.len() < source.len());
    out
}

fn benches(c: &mut Criterion) {
    let qk = engine(QUOTEKIT);
    let requests: Vec<Sample> = vec![
        ("GET", "https://lawnquote.online/dashboard".to_owned(), vec![("cookie", "sb-abc-auth-token=eyJhbGciOi")]),
        ("GET", "https://lawnquote.online/_next/static/chunks/app-4f3a.js".to_owned(), vec![]),
        ("GET", "https://lawnquote.online/api/quotes".to_owned(), vec![("cookie", "sb-abc-auth-token=eyJhbGciOi")]),
        ("GET", format!("https://lawnquote.online/api/quotes/{UUID}/pdf"), vec![]),
        ("POST", "https://lawnquote.online/api/webhooks/stripe".to_owned(), vec![("stripe-signature", "t=1,v1=ab"), ("content-length", "1500")]),
        ("GET", "https://lawnquote.online/api/admin/users".to_owned(), vec![]),
        ("GET", "https://lawnquote.online/api/debug-oauth".to_owned(), vec![]),
        ("GET", "http://lawnquote.online/pricing".to_owned(), vec![]),
        ("GET", "https://lawnquote.online/__edge/health".to_owned(), vec![]),
        ("POST", "https://lawnquote.online/api/debug-subscription".to_owned(), vec![("content-length", "20")]),
    ];
    bench_decide(c, "decide/quotekit_mixed", &qk, &requests);
    // The same policy without its `bots`, `geo_deny` and `[shield]` (issue #21): the difference
    // is what the three cost per request.
    let plain = without_client_rules(QUOTEKIT);
    bench_decide(c, "decide/quotekit_mixed_without_bots_geo_shield", &engine(&plain), &requests);
    let bots: Vec<Sample> = vec![
        ("GET", "https://lawnquote.online/pricing".to_owned(), vec![("user-agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")]),
        ("GET", "https://lawnquote.online/api/quotes".to_owned(), vec![("user-agent", "python-requests/2.32.3")]),
        ("GET", "https://lawnquote.online/.env".to_owned(), vec![]),
        ("GET", "https://lawnquote.online/search?q=1%27%20union%20select%20password%20from%20users".to_owned(), vec![]),
    ];
    bench_decide(c, "decide/quotekit_bots_and_probes", &qk, &bots);
    // The candidate blocks one more route (not among the requests): every decision agrees.
    let candidate = QUOTEKIT.replacen("[[routes]]", "[[routes]]\npath = \"/pricing/legacy\"\nblock = 404\n\n[[routes]]", 1);
    let candidate = compile(&candidate, &Options::default()).bundle.unwrap().to_bytes().unwrap();
    bench_decide_with_shadow(c, "decide/quotekit_mixed_with_shadow", &qk, &candidate, &requests);

    sessions(c);

    let big = generated_policy(1000);
    let big_engine = engine(&big);
    let big_requests: Vec<Sample> = (0..1000)
        .step_by(37)
        .map(|i| {
            let url = match i % 5 {
                0 => format!("https://lawnquote.online/svc{i}/items"),
                1 => format!("https://lawnquote.online/svc{i}/items/42"),
                2 => format!("https://lawnquote.online/svc{i}/files/a/b/c.txt"),
                3 => format!("https://lawnquote.online/svc{i}/debug-x"),
                _ => format!("https://lawnquote.online/svc{i}/users/{UUID}/orders/o-77"),
            };
            ("GET", url, vec![])
        })
        .collect();
    bench_decide(c, "decide/1000_routes", &big_engine, &big_requests);

    c.bench_function("compile/quotekit", |b| b.iter(|| black_box(compile(black_box(QUOTEKIT), &Options::default()))));
    c.bench_function("compile/1000_routes", |b| b.iter(|| black_box(compile(black_box(&big), &Options::default()))));
}

/// Verified sessions (docs/sessions.md): the admin route with a session remembered from an
/// earlier request (Bearer, and supabase-js's cookie in two chunks), against the same route in a
/// policy without `require_session` and with an address-keyed limit; and a first HS256
/// verification (parse, HMAC, claims) on a fresh isolate state.
fn sessions(c: &mut Criterion) {
    let admin = "GET";
    let url = "https://lawnquote.online/api/admin/users".to_owned();
    let without = QUOTEKIT
        .replace("require_session = { source = \"supabase\", claims = { \"app_metadata.role\" = \"admin\" } }\n", "")
        .replace("[limits.admin]\nrate = \"60/1m\"\nburst = 20\nkey = \"session:sub\"", "[limits.admin]\nrate = \"60/1m\"\nburst = 20\nkey = \"ip\"");
    assert_ne!(without, QUOTEKIT);
    let plain = engine(&without);
    bench_decide(c, "decide/admin_without_session_rule", &plain, &[(admin, url.clone(), vec![])]);

    let mut qk = engine(QUOTEKIT);
    let clock = 1_800_000_000;
    qk.sessions().accept_test_tokens(clock);
    let source = qk.bundle().sessions[0].clone();
    let claims = serde_json::json!({ "sub": "u-1", "app_metadata": { "role": "admin" } });
    let (_, bearer) = edgeguard_core::sessions::test_header(&source, &claims, clock, 86_400, false, None).unwrap();
    let (_, cookie) = edgeguard_core::sessions::test_header(&source, &claims, clock, 86_400, false, Some(2)).unwrap();
    let bearer: &'static str = Box::leak(bearer.into_boxed_str());
    let cookie: &'static str = Box::leak(cookie.into_boxed_str());
    bench_decide(c, "decide/admin_cached_session_bearer", &qk, &[(admin, url.clone(), vec![("authorization", bearer)])]);
    bench_decide(c, "decide/admin_cached_session_cookie", &qk, &[(admin, url, vec![("cookie", cookie)])]);

    let headers = [("authorization", bearer)];
    let req = RequestFacts { method: admin, url: "/api/admin/users", headers: &headers, peer_ip: None, cf: edgeguard_core::request::CfFacts::NONE };
    c.bench_function("sessions/first_hs256_verification", |b| {
        b.iter_batched(
            || {
                let mut state = edgeguard_core::sessions::Sessions::new(1, 3);
                state.accept_test_tokens(clock);
                state
            },
            |mut state| black_box(state.resolve(&qk.bundle().sessions, 0, black_box(&req), 0)),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
