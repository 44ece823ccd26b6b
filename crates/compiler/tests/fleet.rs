#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! Fleet features in the engine: global limits (Durable Object protocol, fast path, on_error),
//! health-aware routing and failover, and their compile-time checks.

use edgeguard_compiler::diagnostics::line_col;
use edgeguard_compiler::{Options, compile};
use edgeguard_core::decision::GlobalVerdict;
use edgeguard_core::{Action, Draw, Engine, Reason, RequestFacts};

const BASE: &str = r#"version = 1
[client_ip]
from = "cf-connecting-ip"
[origins.blue]
url = "https://blue.fly.dev"
[origins.green]
url = "https://green.fly.dev"
[deploy]
active = "blue"
canary = { origin = "green", percent = 50 }
failover = true
[limits.global]
rate = "3/1m"
scope = "global"
[limits.strict]
rate = "3/1m"
scope = "global"
on_error = "deny"
[[routes]]
path = "/g"
limit = "global"
[[routes]]
path = "/strict"
limit = "strict"
[[routes]]
path = "/pinned"
origin = "green"
"#;

fn engine(src: &str) -> Engine {
    let out = compile(src, &Options::default());
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    Engine::new(out.bundle.unwrap()).unwrap()
}

fn req<'a>(method: &'a str, url: &'a str, headers: &'a [(&'a str, &'a str)]) -> RequestFacts<'a> {
    RequestFacts { method, url, headers, peer_ip: None, cf: Default::default() }
}

#[test]
fn global_limits_ask_the_shard_and_remember_refusals() {
    let e = engine(BASE);
    let mut isolate = e.new_limiter(1);
    let mut object = e.new_limiter(2); // the Durable Object's own state
    let headers = [("host", "a"), ("cf-connecting-ip", "198.51.100.1")];
    let r = req("GET", "https://a/g", &headers);
    let mut shard = None;
    for i in 0..4 {
        let d = e.decide(&r, &mut isolate, 0, Draw::default());
        let check = d.global.expect("a global limit asks its shard");
        assert!(check.shard < 16, "default shard count is 16");
        assert_eq!(*shard.get_or_insert(check.shard), check.shard, "a key always maps to one shard");
        let outcome = e.global_check(&mut object, check.limit, check.key, 0).unwrap();
        let d = e.settle_global(&mut isolate, &r, d, GlobalVerdict::Answer(outcome), 0, Draw::default());
        if i < 3 {
            assert_eq!(d.action, Action::Forward);
            assert_eq!(d.rate_limit.map(|r| r.remaining), Some(2 - i));
        } else {
            assert_eq!((d.action, d.status, d.reason), (Action::Reject, Some(429), Reason::RateLimited));
            assert_eq!(d.rate_limit.map(|r| r.retry_after_secs), Some(20));
        }
    }
    // Fast path: the isolate refuses this client without asking the shard until it may retry.
    let d = e.decide(&r, &mut isolate, 5_000_000_000, Draw::default());
    assert_eq!((d.status, d.global), (Some(429), None));
    assert_eq!(d.rate_limit.map(|r| r.retry_after_secs), Some(15));
    // The key hash is the same in every isolate (keyed by the bundle, not the isolate seed).
    let other_isolate = Engine::new(e.bundle().clone()).unwrap();
    let d2 = other_isolate.decide(&r, &mut other_isolate.new_limiter(99), 0, Draw::default());
    let d1 = e.decide(&req("GET", "https://a/g", &[("host", "a"), ("cf-connecting-ip", "198.51.100.2")]), &mut isolate, 0, Draw::default());
    assert_eq!(d2.global.map(|g| g.key), Some(e.decide(&r, &mut e.new_limiter(5), 0, Draw::default()).global.unwrap().key));
    assert_ne!(d1.global.map(|g| g.key), d2.global.map(|g| g.key));
}

#[test]
fn on_error_allow_and_deny() {
    let e = engine(BASE);
    let mut lim = e.new_limiter(1);
    let h = [("host", "a")];
    let g = req("GET", "https://a/g", &h);
    let d = e.decide(&g, &mut lim, 0, Draw::default());
    let d = e.settle_global(&mut lim, &g, d, GlobalVerdict::Unavailable, 0, Draw::default());
    assert_eq!(d.action, Action::Forward, "on_error defaults to allow");
    assert!(d.detail.contains("could not be reached"));
    let strict = req("GET", "https://a/strict", &h);
    let d = e.decide(&strict, &mut lim, 0, Draw::default());
    let d = e.settle_global(&mut lim, &strict, d, GlobalVerdict::Unavailable, 0, Draw::default());
    assert_eq!((d.status, d.reason), (Some(429), Reason::RateLimited));
    assert_eq!(d.rate_limit.map(|r| r.retry_after_secs), Some(1));
    // The global shadow switch lets it through, saying why.
    let mut shadowed = engine(BASE);
    shadowed.set_overrides(edgeguard_core::Overrides { shadow: true, ..Default::default() });
    let d = shadowed.decide(&strict, &mut lim, 0, Draw::default());
    let d = shadowed.settle_global(&mut lim, &strict, d, GlobalVerdict::Unavailable, 0, Draw::default());
    assert_eq!((d.action, d.shadowed), (Action::Forward, Some(Reason::RateLimited)));
}

#[test]
fn the_shadow_switch_forwards_the_shards_refusals() {
    let mut e = engine(BASE);
    e.set_overrides(edgeguard_core::Overrides { shadow: true, ..Default::default() });
    let (mut isolate, mut object) = (e.new_limiter(1), e.new_limiter(2));
    let headers = [("host", "a"), ("cf-connecting-ip", "198.51.100.1")];
    let r = req("GET", "https://a/g", &headers);
    let settled: Vec<_> = (0..4)
        .map(|_| {
            let d = e.decide(&r, &mut isolate, 0, Draw::default());
            let check = d.global.expect("a global limit asks its shard");
            let outcome = e.global_check(&mut object, check.limit, check.key, 0).unwrap();
            let d = e.settle_global(&mut isolate, &r, d, GlobalVerdict::Answer(outcome), 0, Draw::default());
            (d.action, d.shadowed)
        })
        .collect();
    // The fourth is over the shard's 3 per minute: forwarded, saying it would have been refused.
    assert_eq!(settled[3], (Action::Forward, Some(Reason::RateLimited)));
    assert!(settled[..3].iter().all(|s| *s == (Action::Forward, None)), "{settled:?}");
    // The isolate remembers the shard's refusal; its fast path is shadowed as well.
    let d = e.decide(&r, &mut isolate, 5_000_000_000, Draw::default());
    assert_eq!((d.action, d.global, d.shadowed), (Action::Forward, None, Some(Reason::RateLimited)));
}

#[test]
fn standalone_decisions_settle_global_limits_locally() {
    let e = engine(BASE);
    let mut lim = e.new_limiter(1);
    let h = [("host", "a")];
    let statuses: Vec<Option<u16>> = (0..4).map(|_| e.decide_standalone(&req("GET", "https://a/g", &h), &mut lim, 0, Draw::default()).status).collect();
    assert_eq!(statuses, vec![None, None, None, Some(429)]);
}

#[test]
fn unhealthy_origins_are_skipped_and_failover_picks_the_other() {
    let mut e = engine(BASE);
    let mut lim = e.new_limiter(1);
    let h = [("host", "a")];
    let origin = |e: &Engine, lim: &mut edgeguard_core::Limiter, lane: u32, cookie: Option<&str>| {
        let mut headers = vec![("host", "a")];
        if let Some(c) = cookie {
            headers.push(("cookie", c));
        }
        let d = e.decide(&req("GET", "https://a/page", &headers), lim, 0, Draw { request_id: 0, lane });
        (d.origin.map(|o| e.bundle().origins[o as usize].name.clone()), d.failover.map(|o| e.bundle().origins[o as usize].name.clone()), d.set_lane_cookie)
    };
    assert_eq!(origin(&e, &mut lim, 10, None), (Some("green".into()), Some("blue".into()), true));
    assert_eq!(origin(&e, &mut lim, 9_000, None), (Some("blue".into()), Some("green".into()), true));
    // Green's probe failed: no canary traffic, sticky green clients included, no failover to it.
    e.set_unhealthy(1 << e.origin_index("green").unwrap());
    assert_eq!(origin(&e, &mut lim, 10, None), (Some("blue".into()), None, false));
    assert_eq!(origin(&e, &mut lim, 10, Some("eg_lane=green")), (Some("blue".into()), None, false));
    // Blue's probe failed while green is healthy: active traffic moves to green.
    e.set_unhealthy(1 << e.origin_index("blue").unwrap());
    assert_eq!(origin(&e, &mut lim, 9_000, None).0, Some("green".into()));
    e.set_unhealthy(0);
    // POST never fails over; pinned routes never fail over.
    let d = e.decide(&req("POST", "https://a/page", &h), &mut lim, 0, Draw::default());
    assert_eq!(d.failover, None);
    let d = e.decide(&req("GET", "https://a/pinned", &h), &mut lim, 0, Draw::default());
    assert_eq!((d.origin, d.failover), (e.origin_index("green"), None));
}

#[test]
fn canary_split_is_within_two_points_over_a_thousand_clients() {
    let src = BASE.replace("percent = 50", "percent = 5");
    let e = engine(&src);
    let mut lim = e.new_limiter(1);
    let green = e.origin_index("green");
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut to_green = 0;
    for _ in 0..10_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let d = e.decide(&req("GET", "https://a/page", &[("host", "a")]), &mut lim, 0, Draw { request_id: 0, lane: rng as u32 });
        to_green += u32::from(d.origin == green);
    }
    let percent = f64::from(to_green) / 100.0;
    assert!((percent - 5.0).abs() <= 2.0, "{percent} %");
}

fn error_at(src: &str, code: &str, needle: &str) {
    let out = compile(src, &Options::default());
    let at = src.find(needle).unwrap();
    let found: Vec<_> = out.diagnostics.iter().filter(|d| d.code == code).map(|d| line_col(src, d.span.start)).collect();
    assert!(found.contains(&line_col(src, at)), "{code} at {needle}: {:#?}", out.diagnostics);
    let d = out.diagnostics.iter().find(|d| d.code == code).unwrap();
    assert!(d.help.is_some());
}

#[test]
fn fleet_configuration_errors() {
    error_at(&format!("{BASE}[limiter]\nglobal_shards = 0\n"), "E053", "0\n");
    error_at(&BASE.replace("percent = 50", "percent = 150"), "E081", "150");
    error_at(&BASE.replace("active = \"blue\"", "active = \"blu\""), "E052", "\"blu\"");
    error_at(&BASE.replace("failover = true", "failover_methods = [\"GET\", \"POST\"]"), "E081", "\"POST\"");
    let single = "version = 1\n[origins.blue]\nurl = \"https://b.fly.dev\"\n[deploy]\nfailover = true\n";
    error_at(single, "E081", "true");
    let cf = format!("{BASE}[limits.cf]\nrate = \"100/15m\"\nscope = \"cloudflare\"\n");
    error_at(&cf, "E053", "\"100/15m\"");
    let ok = format!("{BASE}[limits.cf]\nrate = \"100/1m\"\nscope = \"cloudflare\"\n");
    assert!(!compile(&ok, &Options::default()).has_errors());
}
