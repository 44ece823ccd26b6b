//! The edge cache, the fallback page and maintenance mode as the compiler checks them and the
//! engine decides them (docs/caching.md). The runtime side is tests/e2e/cache.test.mjs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use edgeguard_compiler::{Options, compile};
use edgeguard_core::explain::{Explanation, explain};
use edgeguard_core::{Draw, Engine, Overrides, Reason, RequestFacts};

const QUOTEKIT: &str = include_str!("../../../fixtures/quotekit.toml");

fn engine(source: &str) -> Engine {
    let out = compile(source, &Options::default());
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    Engine::new(out.bundle.unwrap()).unwrap()
}

fn send(engine: &Engine, method: &str, url: &str, headers: &[(&str, &str)]) -> Explanation {
    let host = url.split('/').nth(2).unwrap_or("lawnquote.online");
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    let req = RequestFacts { method, url, headers: &all, peer_ip: None, cf: Default::default() };
    let mut limiter = engine.new_limiter(1);
    let d = engine.decide_standalone(&req, &mut limiter, 0, Draw { request_id: 7, lane: 7 });
    explain(engine, &d)
}

fn codes(source: &str) -> Vec<String> {
    compile(source, &Options::default()).diagnostics.iter().map(|d| d.code.to_owned()).collect()
}

const BASE: &str = r#"
version = 1
[app]
hosts = ["a.example"]
[origins.app]
url = "https://app.example"
[api_keys.partner]
header = "x-partner-key"
sha256 = ["0000000000000000000000000000000000000000000000000000000000000001"]
[deploy]
active = "app"
sticky_cookie = "eg_lane"
[[routes]]
path = "/assets/**"
cache = { edge = "1h", stale_if_error = "1d" }
"#;

#[test]
fn the_key_is_the_normalized_public_url_with_the_version() {
    let e = engine(BASE);
    let a = send(&e, "GET", "https://a.example/assets/x/../app.js?v=1", &[]).cache.unwrap();
    assert_eq!(a.mode, "lookup");
    assert_eq!(a.key.as_deref(), Some("https://a.example/assets/app.js?v=1&edgeguard-cache=1"));
    assert_eq!((a.edge, a.stale_while_revalidate, a.stale_if_error), (3600, 0, 86_400));
    let bumped = engine(&format!("{BASE}[cache]\nversion = \"2026-12\"\n"));
    let b = send(&bumped, "GET", "https://a.example/assets/app.js", &[]).cache.unwrap();
    assert_eq!(b.key.as_deref(), Some("https://a.example/assets/app.js?edgeguard-cache=2026-12"));
    assert!(send(&e, "GET", "https://a.example/other", &[]).cache.is_none(), "a route without an edge cache");
}

#[test]
fn personal_requests_and_unsafe_methods_bypass() {
    let e = engine(BASE);
    let url = "https://a.example/assets/app.js";
    let bypass = |headers: &[(&str, &str)], method: &str| send(&e, method, url, headers).cache.unwrap().bypass;
    assert!(bypass(&[("authorization", "Bearer x")], "GET").unwrap().contains("authorization"));
    assert!(bypass(&[("x-partner-key", "k")], "GET").unwrap().contains("x-partner-key"), "an API key header is personal");
    // Default personal_cookies = ["*"]: any cookie but the edge's own lane cookie.
    assert!(bypass(&[("cookie", "theme=dark")], "GET").unwrap().contains("theme"));
    assert_eq!(bypass(&[("cookie", "eg_lane=a")], "GET"), None, "the lane cookie is the edge's own");
    assert!(bypass(&[], "POST").unwrap().contains("POST"));
    assert_eq!(bypass(&[], "HEAD"), None);
    // Narrowed: only the Supabase session is personal.
    let narrow = engine(&format!("{BASE}[cache]\npersonal_cookies = [\"sb-*-auth-token*\"]\n"));
    let cached = |cookie: &str| send(&narrow, "GET", url, &[("cookie", cookie)]).cache.unwrap().mode;
    assert_eq!(cached("ph_phc_x_posthog=1; theme=dark"), "lookup");
    assert_eq!(cached("theme=dark; sb-abc-auth-token.0=eyJ"), "bypass");
    // credentialed: the route says its answers are the same for everyone.
    let shared = engine(&BASE.replace("stale_if_error = \"1d\" }", "stale_if_error = \"1d\", credentialed = true }"));
    assert_eq!(send(&shared, "GET", url, &[("authorization", "Bearer x")]).cache.unwrap().mode, "lookup");
}

#[test]
fn quotekit_caches_build_assets_and_keeps_signed_in_pages_out() {
    let e = engine(QUOTEKIT);
    let asset = send(&e, "GET", "https://lawnquote.online/_next/static/chunks/app.js", &[]);
    let c = asset.cache.unwrap();
    assert_eq!((c.mode, c.edge), ("lookup", 365 * 86_400));
    assert_eq!(asset.response_headers["cache-control"], "public, max-age=31536000, immutable");
    let page = send(&e, "GET", "https://lawnquote.online/pricing", &[("accept", "text/html")]);
    assert_eq!(page.cache.as_ref().map(|c| (c.mode, c.edge, c.stale_if_error)), Some(("lookup", 0, 86_400)));
    assert_eq!(page.on_origin_failure, Some("a stored copy within stale_if_error, else the fallback page (503)"));
    let signed_in = send(&e, "GET", "https://lawnquote.online/dashboard", &[("cookie", "sb-ref-auth-token=eyJ")]);
    assert_eq!(signed_in.cache.unwrap().mode, "bypass");
    let api = send(&e, "GET", "https://lawnquote.online/api/quotes", &[("accept", "application/json")]);
    assert!(api.cache.is_none());
    assert_eq!(api.on_origin_failure, Some("problem+json (502/504)"));
}

#[test]
fn maintenance_refuses_all_but_the_allow_list_and_the_secret() {
    let mut e = engine(QUOTEKIT);
    e.set_overrides(Overrides { maintenance: true, ..Overrides::default() });
    e.set_maintenance_secret(Some("s3cret".into()));
    let page = send(&e, "GET", "https://lawnquote.online/dashboard", &[("accept", "text/html"), ("cf-connecting-ip", "198.51.100.1")]);
    assert_eq!((page.status, page.reason), (Some(503), Reason::Maintenance));
    assert_eq!(page.response_headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.response_headers["retry-after"], "1800");
    assert!(page.problem.is_none(), "a page request gets the fallback page, not problem+json");
    let api = send(&e, "POST", "https://lawnquote.online/api/quotes", &[("content-length", "2"), ("cf-connecting-ip", "198.51.100.1")]);
    assert_eq!(api.problem.unwrap()["type"], "https://edgeguard.dev/problems/maintenance");
    let office = send(&e, "GET", "https://lawnquote.online/dashboard", &[("cf-connecting-ip", "203.0.113.40")]);
    assert_eq!(office.reason, Reason::Ok);
    let secret = send(&e, "GET", "https://lawnquote.online/dashboard", &[("x-quotekit-maintenance", "s3cret")]);
    assert_eq!(secret.reason, Reason::Ok);
    let wrong = send(&e, "GET", "https://lawnquote.online/dashboard", &[("x-quotekit-maintenance", "s3creT")]);
    assert_eq!(wrong.reason, Reason::Maintenance);
    assert_eq!(send(&e, "GET", "https://lawnquote.online/__edge/health", &[]).reason, Reason::Health, "monitors still reach the edge");
    // Without a secret configured, no header value passes.
    e.set_maintenance_secret(Some(String::new()));
    assert_eq!(send(&e, "GET", "https://lawnquote.online/dashboard", &[("x-quotekit-maintenance", "")]).reason, Reason::Maintenance);
}

#[test]
fn check_finds_what_a_cache_table_or_a_fallback_page_gets_wrong() {
    let route = |cache: &str| format!("{BASE}[[routes]]\npath = \"/p\"\ncache = {cache}\n");
    assert!(codes(&route("{ }")).contains(&"W110".to_owned()), "keeps nothing");
    assert!(codes(&route("{ stale_while_revalidate = \"1m\" }")).contains(&"W110".to_owned()), "stale at once");
    assert!(codes(&route("{ edge = \"1.5s\" }")).contains(&"E010".to_owned()), "whole seconds");
    let gated = format!("{BASE}[[routes]]\npath = \"/partner/**\"\napi_key = \"partner\"\ncache = {{ edge = \"1m\", credentialed = true }}\n");
    assert!(codes(&gated).contains(&"W111".to_owned()));
    assert!(codes(&format!("{BASE}[cache]\nversion = \"\"\n")).contains(&"E110".to_owned()));
    let fallback = |table: &str| codes(&format!("{BASE}[fallback]\n{table}\n"));
    assert!(fallback("retry_after = \"1m\"").contains(&"E111".to_owned()), "no page");
    assert!(fallback("page = \"just text\"").contains(&"E111".to_owned()), "not HTML");
    assert!(fallback(&format!("page = \"<!doctype html>{}\"", "x".repeat(70_000))).contains(&"E111".to_owned()), "too large");
    assert!(fallback("page = \"<!doctype html><script src=/a.js></script>\"").contains(&"W112".to_owned()));
    assert!(fallback("page_file = \"missing.html\"").contains(&"E111".to_owned()), "no policy directory to read it from");
    assert!(fallback("page = \"<!doctype html><p>back soon</p>\"").is_empty());
}

#[test]
fn page_file_is_read_next_to_the_policy() {
    let dir = std::env::temp_dir().join(format!("edgeguard-fallback-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("down.html"), "<!doctype html><h1>down</h1>").unwrap();
    let source = format!("{BASE}[fallback]\npage_file = \"down.html\"\n");
    let out = compile(&source, &Options { base_dir: Some(dir.clone()), ..Options::default() });
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    assert_eq!(out.bundle.unwrap().fallback.unwrap().html, "<!doctype html><h1>down</h1>");
    let missing = compile(&source.replace("down.html", "gone.html"), &Options { base_dir: Some(dir.clone()), ..Options::default() });
    let d = missing.diagnostics.iter().find(|d| d.code == "E111").unwrap();
    assert!(d.message.contains("gone.html"), "{}", d.message);
    std::fs::remove_dir_all(dir).unwrap();
}
