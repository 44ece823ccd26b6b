//! The shield's regression corpus (issue #21): QuoteKit's own traffic — every request of its case
//! file before the shield's own probe cases, and a request for every route of its Next.js app
//! (fixtures/nextjs-app) with the query strings Next.js adds — matches no signature, so no
//! client of QuoteKit's ever gets a suspicion point for using the app. Also the engine side of
//! the shield over the compiled QuoteKit policy: threshold, cool-down, problem+json, shadow mode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use edgeguard_compiler::{Options, compile};
use edgeguard_core::explain::{Explanation, explain};
use edgeguard_core::{Action, CfFacts, Draw, Engine, Limiter, Reason, RequestFacts};

const QUOTEKIT: &str = include_str!("../../../fixtures/quotekit.toml");
const CASES: &str = include_str!("../../../fixtures/quotekit.cases.toml");
const CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const UUID: &str = "123e4567-e89b-12d3-a456-426614174000";
const SEC: u64 = 1_000_000_000;

fn engine(source: &str) -> Engine {
    let out = compile(source, &Options::default());
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    let mut engine = Engine::new(out.bundle.unwrap()).unwrap();
    engine.set_report_client(true);
    engine
}

fn send(engine: &Engine, limiter: &mut Limiter, method: &str, url: &str, headers: &[(&str, &str)], ip: &str, now: u64) -> Explanation {
    let host = url.split('/').nth(2).unwrap_or("lawnquote.online");
    let mut all: Vec<(&str, &str)> = vec![("host", host), ("cf-connecting-ip", ip)];
    all.extend_from_slice(headers);
    let req = RequestFacts { method, url, headers: &all, peer_ip: None, cf: CfFacts::NONE };
    let d = engine.decide_standalone(&req, limiter, now, Draw { request_id: 7, lane: 1 });
    explain(engine, &d)
}

/// Every `request` (and `before` request) of the case file above its shield section, with the
/// case's headers — but for the cases that send malformed targets on purpose (`reason =
/// "bad_request"`: a traversal above the root, a `%00`) or a dot segment (`/x/../debug-…`, which
/// no browser sends: the URL standard resolves dot segments before a request leaves it), which
/// are attacks the edge refuses or sees through, not QuoteKit's traffic. Each of those counts one suspicion point; `edgeguard test` runs every
/// case on a fresh limiter, so the case file never suspends its client.
fn own_case_requests() -> Vec<(String, Vec<(String, String)>)> {
    let end = CASES.find("# ── Shield").expect("the case file has a shield section");
    let doc: toml::Table = toml::from_str(&CASES[..end]).unwrap();
    let header_table = |v: Option<&toml::Value>| -> Vec<(String, String)> {
        v.and_then(toml::Value::as_table).map_or_else(Vec::new, |t| t.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
    };
    let mut out = Vec::new();
    for case in doc["case"].as_array().unwrap() {
        let line = case["request"].as_str().unwrap();
        if case.get("expect").and_then(|e| e.get("reason")).and_then(toml::Value::as_str) == Some("bad_request") || line.contains("/../") || line.contains("/./") {
            continue;
        }
        let headers = header_table(case.get("headers"));
        out.push((case["request"].as_str().unwrap().to_owned(), headers));
        for before in case.get("before").and_then(toml::Value::as_array).into_iter().flatten() {
            out.push((before["request"].as_str().unwrap().to_owned(), header_table(before.get("headers"))));
        }
    }
    assert!(out.len() > 70, "the corpus shrank: {}", out.len());
    out
}

/// The URL paths of the Next.js app's pages and route handlers, parameters filled in.
fn nextjs_paths() -> Vec<String> {
    fn walk(dir: &Path, segments: &mut Vec<String>, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                if name.starts_with('_') {
                    continue; // a private folder: never a route
                }
                let segment = if name.starts_with('(') {
                    None // a route group: not part of the URL
                } else if name.starts_with("[[...") || name.starts_with("[...") {
                    Some("a/b/c".to_owned())
                } else if name.starts_with('[') {
                    Some(UUID.to_owned())
                } else {
                    Some(name)
                };
                let pushed = segment.is_some();
                segments.extend(segment);
                walk(&entry.path(), segments, out);
                if pushed {
                    segments.pop();
                }
            } else if name.starts_with("page.") || name.starts_with("route.") {
                out.push(format!("/{}", segments.join("/")));
            } else if name == "favicon.ico" {
                out.push(format!("/{}", segments.iter().chain([&name]).cloned().collect::<Vec<_>>().join("/")));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/nextjs-app/app");
    let mut out = Vec::new();
    walk(&root, &mut Vec::new(), &mut out);
    assert!(out.len() > 60, "the Next.js fixture has {} routes", out.len());
    out
}

#[test]
fn quotekit_traffic_matches_no_signature() {
    let engine = engine(QUOTEKIT);
    let mut limiter = engine.new_limiter(1);
    let mut checked = 0;
    let mut check = |method: &str, url: &str, headers: &[(&str, &str)]| {
        let e = send(&engine, &mut limiter, method, url, headers, "198.51.100.7", 0);
        // Requests for another host (421) are refused before the shield and not counted.
        let Some(s) = e.client.suspicion.as_ref() else {
            assert!(matches!(e.reason, Reason::HostNotAllowed | Reason::BadRequest), "{method} {url}: {e:#?}");
            return;
        };
        assert_eq!((s.score, s.matched), (0, None), "{method} {url} {headers:?}");
        checked += 1;
    };
    for (line, headers) in own_case_requests() {
        let (method, url) = line.split_once(' ').unwrap();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        check(method, url, &headers);
    }
    let browser = [("user-agent", CHROME), ("referer", "https://lawnquote.online/dashboard"), ("accept", "*/*")];
    for path in nextjs_paths() {
        for suffix in ["", "?_rsc=1x2y3", "?page=2&sort=created_at&order=desc", "?from=2026-01-01&to=2026-12-31&status=draft%2Csent"] {
            check("GET", &format!("https://lawnquote.online{path}{suffix}"), &browser);
        }
    }
    for url in [
        "https://lawnquote.online/_next/image?url=%2Fimages%2Fhero.webp&w=1920&q=75",
        "https://lawnquote.online/_next/static/chunks/app/(dashboard)/quotes/page-4f2a9c.js",
        "https://lawnquote.online/_next/static/css/app/layout.css?v=1733500000",
        "https://lawnquote.online/auth/callback?code=4f2a9c&next=%2Fdashboard",
        "https://lawnquote.online/quotes/new?client=O%27Brien+Lawn+%26+Garden",
        "https://lawnquote.online/search?q=mowing+(weekly)+%2B+edging",
        "https://lawnquote.online/.well-known/security.txt",
        "https://lawnquote.online/robots.txt",
        "https://lawnquote.online/sitemap.xml",
    ] {
        check("GET", url, &browser);
    }
    assert!(checked > 300, "{checked} requests");
}

#[test]
fn a_probe_sequence_suspends_the_client_and_the_cooldown_lifts_it() {
    let engine = engine(QUOTEKIT);
    let mut limiter = engine.new_limiter(2);
    let probes = ["/.env", "/.git/config", "/wp-login.php", "/backup.sql", "/phpmyadmin/index.php"];
    for (i, path) in probes.iter().enumerate() {
        let e = send(&engine, &mut limiter, "GET", &format!("https://lawnquote.online{path}"), &[], "203.0.113.9", i as u64 * SEC);
        let s = e.client.suspicion.as_ref().unwrap();
        assert!(s.matched.is_some(), "{path}");
        if i + 1 < probes.len() {
            assert_ne!(e.reason, Reason::ShieldBlocked, "{path}");
            assert_eq!(s.score as usize, i + 1);
        } else {
            assert_eq!((e.action, e.status, e.reason), (Action::Reject, Some(403), Reason::ShieldBlocked));
            assert_eq!(e.response_headers["retry-after"], "900");
            let problem = e.problem.as_ref().unwrap();
            assert_eq!(problem["type"], "https://edgeguard.dev/problems/shield-blocked");
            assert_eq!(problem["title"], "Client suspended");
            assert_eq!(problem["retry_after"], 900);
        }
    }
    // Suspended on every path, the edge's health endpoint included; another client is not.
    let e = send(&engine, &mut limiter, "GET", "https://lawnquote.online/dashboard", &[("user-agent", CHROME)], "203.0.113.9", 60 * SEC);
    assert_eq!(e.reason, Reason::ShieldBlocked);
    assert_eq!(e.response_headers["retry-after"], "844");
    let e = send(&engine, &mut limiter, "GET", "https://lawnquote.online/__edge/health", &[], "203.0.113.9", 61 * SEC);
    assert_eq!(e.reason, Reason::ShieldBlocked);
    let e = send(&engine, &mut limiter, "GET", "https://lawnquote.online/dashboard", &[], "203.0.113.10", 61 * SEC);
    assert_eq!(e.action, Action::Forward);
    // Served again after the cool-down (15 min from the fifth probe).
    let e = send(&engine, &mut limiter, "GET", "https://lawnquote.online/dashboard", &[], "203.0.113.9", (4 + 900) * SEC);
    assert_eq!(e.action, Action::Forward, "{e:#?}");
}

#[test]
fn shadow_mode_counts_and_refuses_nothing() {
    let source = QUOTEKIT.replace("[shield]\nmode = \"enforce\"", "[shield]\nmode = \"shadow\"");
    assert_ne!(source, QUOTEKIT);
    let engine = engine(&source);
    let mut limiter = engine.new_limiter(3);
    let mut last = None;
    for i in 0..7u64 {
        last = Some(send(&engine, &mut limiter, "GET", "https://lawnquote.online/wp-admin/", &[], "203.0.113.9", i * SEC));
    }
    let e = last.unwrap();
    assert_eq!(e.action, Action::Forward);
    assert!(e.shadow_refused);
    assert!(e.detail.contains("shadow"), "{}", e.detail);
    assert_eq!(e.client.suspicion.as_ref().unwrap().mode, "shadow");
}

#[test]
fn geo_rules_read_only_request_cf() {
    let engine = engine(QUOTEKIT);
    let mut limiter = engine.new_limiter(4);
    let decide = |limiter: &mut Limiter, headers: &[(&str, &str)], cf: CfFacts| {
        let mut all: Vec<(&str, &str)> = vec![("host", "lawnquote.online"), ("cf-connecting-ip", "198.51.100.7")];
        all.extend_from_slice(headers);
        let req = RequestFacts { method: "GET", url: "https://lawnquote.online/pricing", headers: &all, peer_ip: None, cf };
        engine.decide_standalone(&req, limiter, 0, Draw::default())
    };
    let ir = CfFacts { country: Some("IR"), ..CfFacts::NONE };
    assert_eq!(decide(&mut limiter, &[], ir).reason, Reason::GeoDenied);
    // A client-sent header naming a country changes nothing.
    assert_eq!(decide(&mut limiter, &[("cf-ipcountry", "IR")], CfFacts::NONE).action, Action::Forward);
    let d = decide(&mut limiter, &[], CfFacts { country: Some("de"), continent: Some("EU"), asn: Some(3320), ..CfFacts::NONE });
    assert_eq!(d.action, Action::Forward);
    let e = explain(&engine, &d);
    assert_eq!((e.client.country.as_deref(), e.client.continent.as_deref(), e.client.asn), (Some("DE"), Some("EU"), Some(3320)));
}

#[test]
fn a_limit_with_a_geo_condition_counts_only_there() {
    let source = r#"
version = 1
[defaults]
limit = "abroad"
[limits.abroad]
rate = "1/1h"
burst = 1
geo = { countries = ["BR"] }
"#;
    let engine = engine(source);
    let mut limiter = engine.new_limiter(5);
    let mut decide = |country: Option<&'static str>| {
        let headers = [("host", "a.example")];
        let req = RequestFacts { method: "GET", url: "https://a.example/", headers: &headers, peer_ip: "192.0.2.1".parse().ok(), cf: CfFacts { country, ..CfFacts::NONE } };
        engine.decide_standalone(&req, &mut limiter, 0, Draw::default()).reason
    };
    assert_eq!(decide(Some("US")), Reason::Ok);
    assert_eq!(decide(Some("US")), Reason::Ok, "outside the condition: never counted");
    assert_eq!(decide(Some("BR")), Reason::Ok);
    assert_eq!(decide(Some("BR")), Reason::RateLimited);
    assert_eq!(decide(None), Reason::RateLimited, "an unknown location is counted");
}
