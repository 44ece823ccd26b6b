//! Shadow policies (edgeguard_core::shadow): QuoteKit's policy answers, a candidate that blocks
//! one more route decides next to it, and exactly the requests it would answer differently are
//! reported — with the metrics that count them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use edgeguard_compiler::{Options, compile};
use edgeguard_core::observe::Observer;
use edgeguard_core::shadow::Shadow;
use edgeguard_core::{Draw, Engine, Overrides, RequestFacts};

const QUOTEKIT: &str = include_str!("../../../fixtures/quotekit.toml");

fn bytes(source: &str) -> Vec<u8> {
    let out = compile(source, &Options::default());
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    out.bundle.unwrap().to_bytes().unwrap()
}

/// QuoteKit, plus `/pricing` blocked.
fn candidate() -> String {
    let with_block = QUOTEKIT.replacen("[[routes]]", "[[routes]]\npath = \"/pricing\"\nblock = 404\n\n[[routes]]", 1);
    assert_ne!(with_block, QUOTEKIT);
    with_block
}

struct Pair {
    active: Engine,
    limiter: edgeguard_core::Limiter,
    shadow: Shadow,
    observer: Observer,
}

impl Pair {
    fn new(candidate: &str) -> Pair {
        let active = Engine::load(&bytes(QUOTEKIT)).unwrap();
        let limiter = active.new_limiter(1);
        let mut observer = Observer::new(active.bundle(), 2, 0);
        let shadow = Shadow::load(&bytes(candidate), 3).unwrap();
        observer.set_shadow(edgeguard_core::observe::short_revision(shadow.engine().bundle()));
        Pair { active, limiter, shadow, observer }
    }

    /// Decide with both; the disagreement line, if any.
    fn send(&mut self, method: &str, path: &str, now: u64) -> Option<serde_json::Value> {
        let url = format!("https://lawnquote.online{path}");
        let headers = [("host", "lawnquote.online"), ("cf-connecting-ip", "198.51.100.7"), ("content-length", "2")];
        let req = RequestFacts { method, url: &url, headers: &headers, peer_ip: None, cf: Default::default() };
        let draw = Draw { request_id: u128::from(now) + 1, lane: 7 };
        let a = self.active.decide_standalone(&req, &mut self.limiter, now, draw);
        let c = self.shadow.decide(&req, now, draw);
        let found = self.shadow.compare(&self.active, &a, &c, method, now);
        self.observer.shadow_decided(found.as_ref().map(|x| (x.active_reason, x.shadow_reason)));
        found.map(|x| serde_json::from_str(&x.line).unwrap())
    }
}

#[test]
fn only_the_disagreeing_requests_are_reported() {
    let mut pair = Pair::new(&candidate());
    let mut reported = Vec::new();
    for (i, path) in ["/", "/pricing", "/dashboard", "/pricing?plan=pro", "/api/debug-oauth", "/pricing/x"].iter().enumerate() {
        if let Some(line) = pair.send("GET", path, i as u64 * 1_000_000) {
            reported.push((path.to_owned(), line));
        }
    }
    let paths: Vec<&str> = reported.iter().map(|(p, _)| *p).collect();
    assert_eq!(paths, ["/pricing", "/pricing?plan=pro"]);
    let line = &reported[0].1;
    assert_eq!(line["msg"], "shadow policy disagrees");
    assert_eq!(line["level"], "warn");
    assert_eq!(line["path"], "/pricing");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["active"]["action"], "forward");
    assert_eq!(line["active"]["reason"], "ok");
    assert_eq!(line["shadow"]["action"], "reject");
    assert_eq!(line["shadow"]["status"], 404);
    assert_eq!(line["shadow"]["reason"], "blocked");
    assert_eq!(line["shadow"]["route"], "/pricing");
    assert_eq!(line["ts"], "1970-01-01T00:00:00.001Z");
    assert_ne!(line["revision"], line["shadow_revision"]);
    // The query string never reaches the log.
    assert_eq!(reported[1].1["path"], "/pricing");

    let metrics = pair.observer.render_metrics(pair.active.bundle(), 0);
    assert!(metrics.contains("edgeguard_shadow_decisions_total 6\n"), "{metrics}");
    assert!(metrics.contains("edgeguard_shadow_disagreements_total{active=\"ok\",shadow=\"blocked\"} 2\n"), "{metrics}");
    assert!(metrics.contains(&format!("edgeguard_shadow_info{{revision=\"{}\"}} 1\n", line["shadow_revision"].as_str().unwrap())));
}

#[test]
fn the_same_policy_never_disagrees() {
    // Same draws, same clock: even the canary lane and the limits agree.
    let mut pair = Pair::new(QUOTEKIT);
    for i in 0..200u64 {
        let path = ["/", "/api/quotes", "/api/debug-x", "/pricing", "/api/admin/users"][(i % 5) as usize];
        let method = if i % 3 == 0 { "POST" } else { "GET" };
        assert_eq!(pair.send(method, path, i * 10_000_000), None, "{method} {path}");
    }
    assert!(!pair.observer.render_metrics(pair.active.bundle(), 0).contains("edgeguard_shadow_disagreements_total{"));
}

#[test]
fn a_tighter_limit_is_reported_once_it_refuses() {
    // The candidate allows the api 3 requests per 15 minutes, bursts of 1, instead of 100 and 20.
    let tighter = QUOTEKIT.replacen("rate = \"100/15m\"\nburst = 20", "rate = \"3/15m\"\nburst = 1", 1);
    assert_ne!(tighter, QUOTEKIT, "the fixture's api limit moved");
    let mut pair = Pair::new(&tighter);
    let reported: Vec<u64> = (0..8u64).filter(|i| pair.send("GET", "/api/quotes", *i).is_some()).collect();
    assert!(!reported.is_empty() && reported[0] > 0, "the first requests agree: {reported:?}");
    assert!(reported.windows(2).all(|w| w[1] == w[0] + 1), "then every one is refused: {reported:?}");
}

#[test]
fn levers_follow_the_active_policy_by_origin_name() {
    let mut pair = Pair::new(&candidate());
    let green = pair.active.origin_index("green").unwrap();
    pair.active.set_overrides(Overrides { active: Some(green), canary_basis_points: Some(0), ..Overrides::default() });
    pair.shadow.follow_overrides(&pair.active);
    assert_eq!(pair.send("GET", "/dashboard", 0), None, "both send the page to green");
    // An unhealthy green moves both back to blue.
    pair.active.set_unhealthy(1 << green);
    pair.shadow.follow_health(&pair.active, 1 << green);
    assert_eq!(pair.send("GET", "/dashboard", 1), None);
}
