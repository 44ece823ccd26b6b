//! The findings of the outside security review (issue #15), each a test that failed before
//! its fix: IPv6 clients keyed by prefix, Next.js internal headers stripped, the client address
//! read from CF-Connecting-IP by default, API key guessing rate-limited, Server Actions refused
//! where a route does not take them. The runtime side of each is in tests/e2e.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use edgeguard_compiler::{Options, compile};
use edgeguard_core::engine::{client_key, is_stripped_request_header};
use edgeguard_core::explain::{Explanation, explain};
use edgeguard_core::{Action, Draw, Engine, Limiter, Reason, RequestFacts};

const QUOTEKIT: &str = include_str!("../../../fixtures/quotekit.toml");
const UUID: &str = "123e4567-e89b-12d3-a456-426614174000";

/// An engine and one limiter that keeps its counts across requests.
struct Edge {
    engine: Engine,
    limiter: Limiter,
}

impl Edge {
    fn new(source: &str) -> Edge {
        let out = compile(source, &Options::default());
        assert!(!out.has_errors(), "{:#?}", out.diagnostics);
        let engine = Engine::new(out.bundle.unwrap()).unwrap();
        let limiter = engine.new_limiter(42);
        Edge { engine, limiter }
    }

    /// `method url` with `headers` at `secs`, as the worker decides it (global limits counted
    /// standalone, as `explain` and `edgeguard test` do).
    fn send(&mut self, method: &str, url: &str, headers: &[(&str, &str)], secs: u64) -> Explanation {
        let host = url.split('/').nth(2).unwrap_or("lawnquote.online");
        let mut all = vec![("host", host)];
        all.extend_from_slice(headers);
        let req = RequestFacts { method, url, headers: &all, peer_ip: None, cf: Default::default() };
        let d = self.engine.decide_standalone(&req, &mut self.limiter, secs * 1_000_000_000, Draw { request_id: 7, lane: 7 });
        explain(&self.engine, &d)
    }
}

fn email(edge: &mut Edge, ip: &str, secs: u64) -> Explanation {
    let url = format!("https://lawnquote.online/api/quotes/{UUID}/email");
    edge.send("POST", &url, &[("cf-connecting-ip", ip), ("content-length", "2"), ("cookie", "sb-x-auth-token=1")], secs)
}

#[test]
fn finding_1_an_ipv6_client_is_one_bucket_per_64() {
    let mut edge = Edge::new(QUOTEKIT);
    // quote-email: 5 per hour. Each request from another address of one /64.
    let statuses: Vec<Option<u16>> = (1..=6).map(|i| email(&mut edge, &format!("2001:db8:aa:bb::{i:x}"), 0).status).collect();
    assert_eq!(statuses[..5], [None; 5], "forwarded: {statuses:?}");
    assert_eq!(statuses[5], Some(429), "the sixth address of the same /64 is the same client");
    // Another /64 is another client; an IPv4-mapped address is its IPv4 client.
    assert_eq!(email(&mut edge, "2001:db8:aa:cc::1", 0).status, None);
    for _ in 0..5 {
        assert_eq!(email(&mut edge, "198.51.100.9", 0).status, None);
    }
    assert_eq!(email(&mut edge, "::ffff:198.51.100.9", 0).status, Some(429));
}

#[test]
fn finding_1_the_prefix_is_configurable_and_checked() {
    let a: core::net::IpAddr = "2001:db8:1:2:3::1".parse().unwrap();
    let b: core::net::IpAddr = "2001:db8:1:2:4::1".parse().unwrap();
    assert_eq!(client_key(a, 64).as_bytes(), client_key(b, 64).as_bytes());
    assert_ne!(client_key(a, 80).as_bytes(), client_key(b, 80).as_bytes());
    assert_ne!(client_key(a, 128).as_bytes(), client_key(b, 128).as_bytes());
    assert_ne!(client_key(a, 48).as_bytes(), client_key(a, 64).as_bytes(), "a /48 and a /64 of the same bits are other keys");
    let v4: core::net::IpAddr = "203.0.113.5".parse().unwrap();
    let mapped: core::net::IpAddr = "::ffff:203.0.113.5".parse().unwrap();
    assert_eq!(client_key(mapped, 64).as_bytes(), client_key(v4, 64).as_bytes());
    // In the policy: [client_ip] ipv6_prefix, 32–128.
    let policy = |p: i64| format!("version = 1\n[client_ip]\nipv6_prefix = {p}\n[origins.app]\nurl = \"https://app.fly.dev\"\n");
    assert_eq!(compile(&policy(56), &Options::default()).bundle.unwrap().client_ip.ipv6_prefix, 56);
    for bad in [31, 129, -1] {
        let out = compile(&policy(bad), &Options::default());
        assert!(out.diagnostics.iter().any(|d| d.code == "E062"), "{bad}: {:?}", out.diagnostics);
    }
}

#[test]
fn finding_2_nextjs_internal_headers_are_stripped() {
    for name in [
        "x-middleware-subrequest",
        "X-Middleware-Subrequest",
        "x-middleware-subrequest-id",
        "x-middleware-rewrite",
        "x-middleware-override-headers",
        "x-invoke-path",
        "x-invoke-status",
        "x-matched-path",
        "x-now-route-matches",
    ] {
        assert!(is_stripped_request_header(name), "{name}");
    }
    // The client headers Next.js does read from browsers stay.
    for name in ["next-action", "rsc", "next-router-state-tree", "x-middleware-prefetch", "x-nextjs-data"] {
        assert!(!is_stripped_request_header(name), "{name}");
    }
    // A policy adds its own.
    let policy = "version = 1\n[sanitize]\nstrip_headers = [\"X-Internal-Token\"]\n[origins.app]\nurl = \"https://app.fly.dev\"\n";
    let engine = Engine::new(compile(policy, &Options::default()).bundle.unwrap()).unwrap();
    assert!(engine.strips_request_header("x-internal-token"));
    assert!(engine.strips_request_header("x-middleware-subrequest"));
    assert!(!engine.strips_request_header("x-internal-other"));
}

#[test]
fn finding_4_the_client_address_is_cf_connecting_ip_by_default() {
    // No [client_ip]: what the worker reads, CF-Connecting-IP, is the client — ip_deny matches
    // it and limits count per client, as `explain` shows.
    let policy = "version = 1\n[app]\nhosts = [\"app.test\"]\n[[routes]]\npath = \"/**\"\nip_deny = [\"198.51.100.0/24\"]\nlimit = { rate = \"2/1m\" }\n[origins.app]\nurl = \"https://app.fly.dev\"\n";
    let bundle = compile(policy, &Options::default()).bundle.unwrap();
    assert_eq!(bundle.client_ip.from.as_deref(), Some("cf-connecting-ip"));
    let mut edge = Edge::new(policy);
    let denied = edge.send("GET", "https://app.test/", &[("cf-connecting-ip", "198.51.100.7")], 0);
    assert_eq!((denied.status, denied.reason), (Some(403), Reason::Forbidden));
    for ip in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(edge.send("GET", "https://app.test/", &[("cf-connecting-ip", ip)], 0).action, Action::Forward);
        assert_eq!(edge.send("GET", "https://app.test/", &[("cf-connecting-ip", ip)], 0).action, Action::Forward);
        assert_eq!(edge.send("GET", "https://app.test/", &[("cf-connecting-ip", ip)], 0).status, Some(429), "{ip}: its own bucket");
    }
}

#[test]
fn finding_5_guessing_an_api_key_is_rate_limited() {
    let mut edge = Edge::new(QUOTEKIT);
    let metrics = |edge: &mut Edge, key: &str, secs: u64| {
        edge.send("GET", "https://lawnquote.online/api/admin/metrics", &[("cf-connecting-ip", "203.0.113.50"), ("x-api-key", key)], secs)
    };
    for i in 0..10 {
        let e = metrics(&mut edge, &format!("guess-{i}"), 0);
        assert_eq!((e.status, e.reason), (Some(401), Reason::Unauthorized), "wrong key {i}");
    }
    let locked = metrics(&mut edge, "guess-10", 0);
    assert_eq!((locked.status, locked.reason), (Some(429), Reason::RateLimited), "the eleventh wrong key");
    assert_eq!(locked.response_headers["retry-after"], "6");
    // Locked out, the right key gets 429 too: a guess that hits learns nothing.
    assert_eq!(metrics(&mut edge, "demo-metrics-key", 0).status, Some(429));
    // Another client is not locked out; after the wait, the right key works again.
    let other = edge.send("GET", "https://lawnquote.online/api/admin/metrics", &[("cf-connecting-ip", "203.0.113.51"), ("x-api-key", "demo-metrics-key")], 0);
    assert_ne!(other.status, Some(429));
    assert_ne!(metrics(&mut edge, "demo-metrics-key", 6).status, Some(429));
    // failures = "off" counts nothing.
    let open = QUOTEKIT.replacen("[api_keys.metrics]", "[api_keys.metrics]\nfailures = \"off\"", 1);
    assert_ne!(open, QUOTEKIT);
    let mut edge = Edge::new(&open);
    for i in 0..20 {
        assert_eq!(metrics(&mut edge, &format!("guess-{i}"), 0).status, Some(401));
    }
}

#[test]
fn finding_5_a_key_hash_from_the_docs_is_a_warning() {
    let out = compile(QUOTEKIT, &Options::default());
    let w: Vec<_> = out.diagnostics.iter().filter(|d| d.code == "W062").collect();
    assert_eq!(w.len(), 1, "QuoteKit's metrics key is the docs' demo key: {:?}", out.diagnostics);
    let own = QUOTEKIT.replace("f449e8d17b6f79dd2781f6b03268f5fb48d739d96f0c6a4572e9a42d4a00112a", &"ab".repeat(32));
    assert!(compile(&own, &Options::default()).diagnostics.iter().all(|d| d.code != "W062"));
}

/// Every key hash edgeguard's docs, fixtures and starters print is in the compiler's list.
#[test]
fn finding_5_the_known_hashes_are_the_docs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["docs", "fixtures", "tests/e2e", "crates/cli/src/starters", "npm"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "md" || e == "toml") {
                files.push(p);
            }
        }
    }
    files.push(root.join("README.md"));
    let mut found = std::collections::BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // The strings of every `sha256 = [ … ]` list, over as many lines as it takes.
        for (at, _) in text.match_indices("sha256 = [") {
            let list = &text[at..text[at..].find(']').map_or(text.len(), |end| at + end)];
            for part in list.split('"').skip(1).step_by(2) {
                if part.len() == 64 && part.bytes().all(|b| b.is_ascii_hexdigit()) {
                    found.insert(part.to_owned());
                }
            }
        }
    }
    let known: std::collections::BTreeSet<String> = edgeguard_compiler::access::KNOWN_KEY_HASHES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(found, known, "update KNOWN_KEY_HASHES in crates/compiler/src/access.rs");
}

#[test]
fn finding_7_server_actions_only_where_a_route_takes_them() {
    let policy = "version = 1\n[app]\nhosts = [\"app.test\"]\n[defaults]\nserver_actions = false\n[[routes]]\npath = \"/quotes/**\"\nserver_actions = true\n[origins.app]\nurl = \"https://app.fly.dev\"\n";
    let mut edge = Edge::new(policy);
    let action = [("cf-connecting-ip", "203.0.113.9"), ("next-action", "7f3a9c"), ("content-length", "2")];
    let refused = edge.send("POST", "https://app.test/settings", &action, 0);
    assert_eq!((refused.status, refused.reason), (Some(403), Reason::Forbidden));
    assert!(refused.detail.contains("Server Actions"), "{}", refused.detail);
    assert_eq!(edge.send("POST", "https://app.test/quotes/new", &action, 0).action, Action::Forward);
    // A POST without Next-Action (a form, an API call) is not a Server Action.
    let form = [("cf-connecting-ip", "203.0.113.9"), ("content-length", "2")];
    assert_eq!(edge.send("POST", "https://app.test/settings", &form, 0).action, Action::Forward);
    // Without the key, every route takes them (as before).
    let open = Edge::new("version = 1\n[origins.app]\nurl = \"https://app.fly.dev\"\n");
    let mut open = open;
    assert_eq!(open.send("POST", "https://app.test/settings", &action, 0).action, Action::Forward);
}
