//! Table-driven test of every pipeline stage and reason code over fixtures/quotekit.toml,
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! through the same path `edgeguard explain` uses: compile → Engine → decide → explain.

use edgeguard_compiler::{Options, compile};
use edgeguard_core::explain::{Explanation, explain};
use edgeguard_core::{Action, Draw, Engine, Limiter, Reason, RequestFacts};

const QUOTEKIT: &str = include_str!("../../../fixtures/quotekit.toml");
const UUID: &str = "123e4567-e89b-12d3-a456-426614174000";

struct Edge {
    engine: Engine,
    limiter: Limiter,
}

impl Edge {
    fn new(source: &str, env: Option<&str>) -> Edge {
        let out = compile(source, &Options { env: env.map(str::to_owned), ..Options::default() });
        assert!(!out.has_errors(), "{:#?}", out.diagnostics);
        let engine = Engine::new(out.bundle.unwrap()).unwrap();
        let limiter = engine.new_limiter(42);
        Edge { engine, limiter }
    }

    fn send(&mut self, method: &str, url: &str, headers: &[(&str, &str)]) -> Explanation {
        self.send_at(method, url, headers, 0)
    }

    fn send_at(&mut self, method: &str, url: &str, headers: &[(&str, &str)], now: u64) -> Explanation {
        let host = url.split('/').nth(2).unwrap_or("lawnquote.online");
        let mut all: Vec<(&str, &str)> = vec![("host", host), ("cf-connecting-ip", "198.51.100.7")];
        all.extend_from_slice(headers);
        let req = RequestFacts { method, url, headers: &all, peer_ip: None, cf: Default::default() };
        let d = self.engine.decide_standalone(&req, &mut self.limiter, now, Draw { request_id: 0xabc, lane: 1234 });
        explain(&self.engine, &d)
    }
}

fn qk() -> Edge {
    Edge::new(QUOTEKIT, None)
}

fn assert_reject(e: &Explanation, status: u16, reason: Reason) {
    assert_eq!((e.action, e.status, e.reason), (Action::Reject, Some(status), reason), "{e:#?}");
    let problem = e.problem.as_ref().expect("refusals carry a problem body");
    assert_eq!(problem["status"], status);
    assert_eq!(problem["request_id"], e.response_headers["x-request-id"].as_str());
    assert_eq!(e.response_headers["content-type"], "application/problem+json");
    // Refusals carry the security headers too.
    assert!(e.response_headers.contains_key("content-security-policy"));
    assert!(e.response_headers.contains_key("x-content-type-options"));
}

#[test]
fn sanitize_stage() {
    let mut edge = qk();
    for path in ["/api/a%2fb", "/api/%00", "/../etc/passwd", "/api/%zz", "/a\\b"] {
        let e = edge.send("GET", &format!("https://lawnquote.online{path}"), &[]);
        assert_reject(&e, 400, Reason::BadRequest);
    }
    let long = format!("https://lawnquote.online/{}", "a".repeat(9000));
    assert_reject(&edge.send("GET", &long, &[]), 414, Reason::UriTooLong);
    let many: Vec<(String, String)> = (0..120).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_reject(&edge.send("GET", "https://lawnquote.online/", &refs), 431, Reason::HeadersTooLarge);
    let big = "x".repeat(40 * 1024);
    assert_reject(&edge.send("GET", "https://lawnquote.online/", &[("cookie", &big)]), 431, Reason::HeadersTooLarge);
    assert_reject(&edge.send("GET", "https://lawnquote.online/", &[("x-bad", "a\r\nb")]), 400, Reason::BadRequest);
    assert_reject(&edge.send("G(T", "https://lawnquote.online/", &[]), 400, Reason::BadRequest);
}

#[test]
fn host_stage() {
    let mut edge = qk();
    assert_reject(&edge.send("GET", "https://evil.example/", &[]), 421, Reason::HostNotAllowed);
    let e = edge.send("GET", "https://LawnQuote.Online.:443/pricing", &[]);
    assert_eq!((e.action, e.reason), (Action::Forward, Reason::Ok), "host case, trailing dot and port are normalized");
}

#[test]
fn health_stage() {
    let mut edge = qk();
    // Answered before the https redirect so plain-http probes work.
    let e = edge.send("GET", "http://lawnquote.online/__edge/health", &[]);
    assert_eq!((e.action, e.status, e.reason), (Action::Respond, Some(200), Reason::Health));
    assert_eq!(e.response_headers["cache-control"], "no-store");
    assert_eq!(e.response_headers["content-type"], "application/health+json");
    let e = edge.send("POST", "https://lawnquote.online/__edge/health", &[]);
    assert_reject(&e, 405, Reason::MethodNotAllowed);
    assert_eq!(e.response_headers["allow"], "GET, HEAD");
}

#[test]
fn https_stage() {
    let mut edge = qk();
    let e = edge.send("GET", "http://lawnquote.online/pricing?plan=pro", &[]);
    assert_eq!((e.action, e.status, e.reason), (Action::Redirect, Some(301), Reason::HttpsRedirect));
    assert_eq!(e.location.as_deref(), Some("https://lawnquote.online/pricing?plan=pro"));
    assert!(!e.response_headers.contains_key("strict-transport-security"), "HSTS only on https");
    // http on www goes to https on www first (HSTS preload rule), then to the apex.
    let e = edge.send("POST", "http://www.lawnquote.online/api/quotes", &[]);
    assert_eq!((e.status, e.location.as_deref()), (Some(308), Some("https://www.lawnquote.online/api/quotes")));
    let e = edge.send("GET", "https://www.lawnquote.online/pricing", &[]);
    assert_eq!((e.action, e.status, e.reason), (Action::Redirect, Some(301), Reason::CanonicalHost));
    assert_eq!(e.location.as_deref(), Some("https://lawnquote.online/pricing"));
    assert_eq!(e.response_headers["strict-transport-security"], "max-age=31536000; includeSubDomains", "the https redirect carries HSTS");
    assert!(e.rate_limit.is_none(), "no RateLimit fields on 3xx");
}

#[test]
fn route_stage() {
    let mut edge = qk();
    let e = edge.send("GET", "https://lawnquote.online/api/debug-oauth", &[]);
    assert_reject(&e, 404, Reason::Blocked);
    assert_eq!(e.route.as_deref(), Some("/api/debug-*"));
    assert_reject(&edge.send("GET", "https://lawnquote.online/api/supabase/functions/x/y", &[]), 404, Reason::Blocked);
    assert_reject(&edge.send("GET", "https://lawnquote.online/debug", &[]), 404, Reason::Blocked);
    // Kept reachable: the billing UI calls it.
    let e = edge.send("POST", "https://lawnquote.online/api/debug-subscription", &[]);
    assert_eq!((e.action, e.route.as_deref(), e.origin.as_deref()), (Action::Forward, Some("/api/debug-subscription"), Some("blue")));
    // Typed parameter.
    let e = edge.send("GET", &format!("https://lawnquote.online/api/quotes/{UUID}/pdf"), &[]);
    assert_eq!((e.action, e.route.as_deref()), (Action::Forward, Some("/api/quotes/:id/pdf")));
    let e = edge.send("GET", "https://lawnquote.online/api/quotes/1%20or%201=1/pdf", &[]);
    assert_reject(&e, 404, Reason::NotFound);
    assert_eq!(e.route.as_deref(), Some("/api/quotes/:id/pdf"));
    // Methods.
    let e = edge.send("DELETE", &format!("https://lawnquote.online/api/quotes/{UUID}/pdf"), &[]);
    assert_reject(&e, 405, Reason::MethodNotAllowed);
    assert_eq!(e.response_headers["allow"], "GET, HEAD");
    // Regex parameter.
    let e = edge.send("GET", "https://lawnquote.online/api/billing-history/in_1Abc/invoice", &[]);
    assert_eq!(e.action, Action::Forward);
    assert_reject(&edge.send("GET", "https://lawnquote.online/api/billing-history/pm_1/invoice", &[]), 404, Reason::NotFound);
    // Path normalization decides the route the origin will see.
    let e = edge.send("GET", "https://lawnquote.online/api/x/../debug-%61ccount", &[]);
    assert_reject(&e, 404, Reason::Blocked);
    assert_eq!(e.path, "/api/debug-account");
}

#[test]
fn access_stage() {
    let mut edge = qk();
    let e = edge.send("GET", "https://lawnquote.online/api/admin/users", &[]);
    assert_reject(&e, 401, Reason::SessionMissing);
    assert_eq!(e.route.as_deref(), Some("/api/admin/**"));
    assert_reject(&edge.send("GET", "https://lawnquote.online/api/admin", &[]), 401, Reason::SessionMissing);
    // A cookie with the session's name is not a session; a verified admin's (chunked) is.
    let e = edge.send("GET", "https://lawnquote.online/api/admin/users", &[("cookie", "theme=dark; sb-xyz-auth-token.0=abc")]);
    assert_reject(&e, 401, Reason::SessionInvalid);
    edge.engine.sessions().accept_test_tokens(1_800_000_000);
    let source = edge.engine.bundle().sessions.first().unwrap().clone();
    let admin = serde_json::json!({ "sub": "u-1", "app_metadata": { "role": "admin" } });
    let (_, cookie) = edgeguard_core::sessions::test_header(&source, &admin, 1_800_000_000, 3600, false, Some(3)).unwrap();
    assert!(cookie.contains("sb-test-auth-token.2="), "{cookie}");
    let e = edge.send("GET", "https://lawnquote.online/api/admin/users", &[("cookie", &format!("theme=dark; {cookie}"))]);
    assert_eq!(e.action, Action::Forward, "{e:#?}");
    // Webhook.
    let url = "https://lawnquote.online/api/webhooks/stripe";
    assert_reject(&edge.send("POST", url, &[("content-length", "10")]), 400, Reason::MissingHeader);
    let sig = ("stripe-signature", "t=1,v1=abc");
    assert_reject(&edge.send("POST", url, &[sig, ("content-length", "2000000")]), 413, Reason::PayloadTooLarge);
    assert_reject(&edge.send("POST", url, &[sig, ("transfer-encoding", "chunked")]), 411, Reason::LengthRequired);
    assert_eq!(edge.send("POST", url, &[sig, ("content-length", "1000")]).action, Action::Forward);
    // API key: SHA-256 of the presented key against the policy's hashes.
    let url = "https://lawnquote.online/api/admin/metrics";
    assert_reject(&edge.send("GET", url, &[]), 401, Reason::Unauthorized);
    assert_reject(&edge.send("GET", url, &[("x-api-key", "wrong")]), 401, Reason::Unauthorized);
    let e = edge.send("GET", url, &[("x-api-key", "demo-metrics-key")]);
    assert_eq!(e.action, Action::Forward, "{e:#?}");
    assert_eq!(e.rate_limit.as_ref().map(|r| (r.limit, r.remaining)), Some((10, 1)));
}

#[test]
fn ip_rules_forbid() {
    let src = "version = 1\n[origins.a]\nurl = \"https://a.fly.dev\"\n[[routes]]\npath = \"/ops/**\"\nip_allow = [\"203.0.113.0/24\"]\n[[routes]]\npath = \"/x\"\nip_deny = [\"198.51.100.0/24\"]\n";
    let mut edge = Edge::new(src, None);
    // The trusted client address comes from the peer here (no [client_ip] header).
    let mut send = |url: &str, ip: &str| {
        let req = RequestFacts { method: "GET", url, headers: &[("host", "a")], peer_ip: ip.parse().ok(), cf: Default::default() };
        let d = edge.engine.decide(&req, &mut edge.limiter, 0, Draw::default());
        explain(&edge.engine, &d)
    };
    assert_eq!(send("https://a/ops/x", "203.0.113.9").action, Action::Forward);
    assert_reject(&send("https://a/ops/x", "192.0.2.1"), 403, Reason::Forbidden);
    assert_reject(&send("https://a/x", "198.51.100.20"), 403, Reason::Forbidden);
    assert_eq!(send("https://a/x", "192.0.2.1").action, Action::Forward);
}

#[test]
fn limits_stage() {
    let mut edge = qk();
    let url = format!("https://lawnquote.online/api/quotes/{UUID}/email");
    let mut last = None;
    for i in 0..5 {
        let e = edge.send("POST", &url, &[("content-length", "2")]);
        assert_eq!(e.action, Action::Forward, "request {i}");
        assert_eq!(e.rate_limit.as_ref().map(|r| r.remaining), Some(4 - i));
        assert_eq!(e.response_headers["ratelimit"], format!("\"quote-email\";r={};t={}", 4 - i, 720 * (i + 1)));
        last = Some(e);
    }
    assert_eq!(last.unwrap().response_headers["ratelimit-policy"], "\"quote-email\";q=5;w=3600");
    let e = edge.send("POST", &url, &[("content-length", "2")]);
    assert_reject(&e, 429, Reason::RateLimited);
    assert_eq!(e.response_headers["retry-after"], "720");
    let problem = e.problem.unwrap();
    assert_eq!(problem["type"], "https://iana.org/assignments/http-problem-types#quota-exceeded");
    assert_eq!(problem["retry_after"], 720);
    // A second client-ip line does not buy a fresh bucket: the last line's rightmost entry
    // counts (workerd joins repeated lines with `, `), so a line added before it changes nothing.
    let spoof = edge.send("POST", &url, &[("cf-connecting-ip", "198.51.100.8"), ("cf-connecting-ip", "198.51.100.7"), ("content-length", "2")]);
    assert_reject(&spoof, 429, Reason::RateLimited);
    // The same client recovers after one emission interval.
    let recovered = edge.send_at("POST", &url, &[("content-length", "2")], 720 * 1_000_000_000);
    assert_eq!(recovered.action, Action::Forward);
}

#[test]
fn forward_stage() {
    let mut edge = qk();
    let e = edge.send(
        "GET",
        "https://lawnquote.online/dashboard",
        &[("x-forwarded-for", "6.6.6.6"), ("x-real-ip", "6.6.6.6"), ("cf-ray", "8c1f-IAD")],
    );
    assert_eq!((e.action, e.status, e.reason, e.origin.as_deref()), (Action::Forward, None, Reason::Ok, Some("blue")));
    assert_eq!(e.route.as_deref(), Some("/**"));
    assert_eq!(e.forward_headers["x-forwarded-for"], "198.51.100.7");
    assert_eq!(e.forward_headers["x-real-ip"], "198.51.100.7");
    assert_eq!(e.forward_headers["x-forwarded-proto"], "https");
    assert_eq!(e.forward_headers["x-forwarded-host"], "lawnquote.online");
    assert_eq!(e.forward_headers["forwarded"], "for=198.51.100.7;host=\"lawnquote.online\";proto=https");
    assert_eq!(e.forward_headers["x-request-id"], "8c1f-IAD", "the trusted cf-ray is kept as the request id");
    assert!(edgeguard_core::engine::is_stripped_request_header("X-Forwarded-Port"));
}

#[test]
fn respond_stage() {
    let mut edge = qk();
    let e = edge.send("GET", "https://lawnquote.online/dashboard", &[]);
    let h = &e.response_headers;
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
    assert_eq!(h["strict-transport-security"], "max-age=31536000; includeSubDomains");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    let csp = &h["content-security-policy"];
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
    assert!(csp.contains("https://*.supabase.co wss://*.supabase.co"), "{csp}");
    assert!(csp.contains("report-uri /__edge/csp-report"), "{csp}");
    assert!(!h.contains_key("content-security-policy-report-only"));
    assert!(e.remove_headers.contains(&"x-powered-by".to_owned()) && e.remove_headers.contains(&"server".to_owned()));
    let e = edge.send("GET", "https://lawnquote.online/_next/static/chunks/app.js", &[]);
    assert_eq!(e.response_headers["cache-control"], "public, max-age=31536000, immutable");
    assert!(e.remove_headers.contains(&"set-cookie".to_owned()));
    assert!(e.rate_limit.is_none(), "static assets are not limited");
    let e = edge.send("GET", "https://lawnquote.online/api/quotes", &[]);
    assert_eq!(e.response_headers["cache-control"], "no-store");
}

#[test]
fn staging_overlay() {
    let mut edge = Edge::new(QUOTEKIT, Some("staging"));
    let e = edge.send("GET", "https://quotekit-staging.fly.dev/api/debug-oauth", &[]);
    assert_eq!(e.action, Action::Forward, "debug routes are only blocked in production");
    assert_eq!(e.response_headers["x-robots-tag"], "noindex, nofollow");
    assert_eq!(e.response_headers["x-frame-options"], "DENY", "overlay tables merge key by key");
    assert_reject(&edge.send("GET", "https://lawnquote.online/", &[]), 421, Reason::HostNotAllowed);
}

// Issue #15: staging unblocks the debug routes, so it must not forward them to production.
#[test]
fn staging_forwards_the_debug_routes_to_its_own_origins() {
    let staging = Options { env: Some("staging".into()), ..Options::default() };
    let w031 = |src: &str| -> Vec<String> {
        let out = compile(src, &staging);
        out.diagnostics.iter().filter(|d| d.code == "W031").map(|d| d.message.split('`').nth(1).unwrap().to_owned()).collect()
    };
    assert_eq!(w031(QUOTEKIT), Vec::<String>::new());
    let mut edge = Edge::new(QUOTEKIT, Some("staging"));
    for path in ["/api/debug-oauth", "/debug/session"] {
        let e = edge.send("GET", &format!("https://quotekit-staging.fly.dev{path}"), &[]);
        assert_eq!(e.action, Action::Forward, "{e:#?}");
        let origins = &edge.engine.bundle().origins;
        assert!(origins.iter().all(|o| o.url == "https://quotekit-staging.fly.dev"), "{origins:#?}");
    }
    // Without its own origins, every production-only route of the overlay is flagged.
    let cut = QUOTEKIT.find("[env.staging.origins.blue]").unwrap();
    let inherited = &QUOTEKIT[..cut];
    assert_eq!(
        w031(inherited),
        ["/api/debug-*", "/api/test-supabase-connection", "/api/formbricks/test", "/api/supabase/functions/**", "/test-edge-functions/**", "/debug/**"]
    );
    assert!(compile(inherited, &Options::default()).diagnostics.iter().all(|d| d.code != "W031"), "production blocks them");
}

#[test]
fn canary_lane_is_drawn_and_sticky() {
    let src = QUOTEKIT.replace("canary = { origin = \"green\", percent = 0 }", "canary = { origin = \"green\", percent = 25 }");
    let mut edge = Edge::new(&src, None);
    let mut decide = |lane: u32, cookie: Option<&str>| {
        let mut headers = vec![("host", "lawnquote.online")];
        if let Some(c) = cookie {
            headers.push(("cookie", c));
        }
        let req = RequestFacts { method: "GET", url: "https://lawnquote.online/", headers: &headers, peer_ip: None, cf: Default::default() };
        let d = edge.engine.decide(&req, &mut edge.limiter, 0, Draw { request_id: 1, lane });
        explain(&edge.engine, &d)
    };
    let e = decide(100, None);
    assert_eq!(e.origin.as_deref(), Some("green"));
    assert_eq!(e.response_headers["set-cookie"], "eg_lane=green; Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=Lax");
    assert_eq!(decide(9_000, None).origin.as_deref(), Some("blue"));
    let e = decide(100, Some("eg_lane=blue"));
    assert_eq!(e.origin.as_deref(), Some("blue"), "the cookie keeps the client on its lane");
    assert!(!e.response_headers.contains_key("set-cookie"));
}

#[test]
fn bundle_bytes_are_deterministic_and_versioned() {
    let a = compile(QUOTEKIT, &Options::default()).bundle.unwrap().to_bytes().unwrap();
    let b = compile(QUOTEKIT, &Options::default()).bundle.unwrap().to_bytes().unwrap();
    assert_eq!(a, b);
    let bundle = edgeguard_core::Bundle::from_bytes(&a).unwrap();
    assert_eq!(bundle.revision.len(), 64);
    let mut other_version = a.clone();
    other_version[4] = 9;
    assert!(matches!(edgeguard_core::Bundle::from_bytes(&other_version), Err(edgeguard_core::LoadError::FormatVersion { found: 9, .. })));
    for cut in [0, 3, 8, 20, a.len() / 2, a.len() - 1] {
        assert!(edgeguard_core::Bundle::from_bytes(&a[..cut]).is_err());
    }
    // Any damaged byte past the magic and version is refused as a whole, never loaded half right.
    for i in (8..a.len()).step_by(7) {
        let mut flipped = a.clone();
        flipped[i] ^= 0x5a;
        assert_eq!(edgeguard_core::Engine::load(&flipped).err(), Some(edgeguard_core::LoadError::Checksum), "byte {i}");
    }
}

#[test]
fn revision_names_the_compiled_bundle() {
    use sha2::{Digest, Sha256};
    let production = compile(QUOTEKIT, &Options::default()).bundle.unwrap();
    let bytes = production.to_bytes().unwrap();
    // The revision is the SHA-256 of the encoded body (after magic, version and digest).
    let hex: String = Sha256::digest(&bytes[40..]).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(production.revision, hex);
    assert_eq!(edgeguard_core::Bundle::from_bytes(&bytes).unwrap(), production);
    // The environment overlay is part of it: staging and production report different revisions.
    let staging = compile(QUOTEKIT, &Options { env: Some("staging".into()), ..Options::default() }).bundle.unwrap();
    assert_ne!(staging.revision, production.revision);
    // A comment is not: the same compiled policy keeps its revision.
    let commented = format!("# reviewed 2026-12-06\n{QUOTEKIT}");
    assert_eq!(compile(&commented, &Options::default()).bundle.unwrap().revision, production.revision);
}

#[test]
fn overrides_move_traffic_and_shadow_refuses_nothing() {
    let mut edge = qk();
    let green = edge.engine.origin_index("green");
    edge.engine.set_overrides(edgeguard_core::Overrides { active: green, canary_basis_points: None, shadow: false, maintenance: false });
    assert_eq!(edge.send("GET", "https://lawnquote.online/", &[]).origin.as_deref(), Some("green"), "active override");
    edge.engine.set_overrides(edgeguard_core::Overrides { active: None, canary_basis_points: Some(10_000), shadow: false, maintenance: false });
    let e = edge.send("GET", "https://lawnquote.online/", &[]);
    assert_eq!(e.origin.as_deref(), Some("green"), "canary at 100 % sends new clients to green");
    assert!(e.response_headers["set-cookie"].starts_with("eg_lane=green;"));
    edge.engine.set_overrides(edgeguard_core::Overrides { active: None, canary_basis_points: None, shadow: true, maintenance: false });
    let e = edge.send("GET", "https://lawnquote.online/api/debug-oauth", &[]);
    assert_eq!((e.action, e.reason, e.shadow_refused), (Action::Forward, Reason::Ok, true));
    assert!(e.detail.contains("blocked"), "{}", e.detail);
    // Malformed requests are refused even in shadow mode.
    assert_reject(&edge.send("GET", "https://lawnquote.online/a%2fb", &[]), 400, Reason::BadRequest);
}

#[test]
fn health_report_follows_the_draft() {
    use edgeguard_core::health::{Probe, report};
    let edge = qk();
    let bundle = edge.engine.bundle();
    let probe = |origin: u16, status: Option<u16>| Probe { origin, status, millis: 12, time: "2026-11-25T18:00:00Z".into(), ..Probe::default() };
    let (code, body) = report(bundle, &[probe(0, Some(200)), probe(1, Some(200))]);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, json["status"].as_str()), (200, Some("pass")));
    assert_eq!(json["releaseId"], bundle.revision.as_str());
    assert_eq!(json["checks"]["origin:responseTime"][0]["componentId"], "blue");
    assert_eq!(json["checks"]["origin:responseTime"][0]["observedUnit"], "ms");
    let (code, body) = report(bundle, &[probe(0, Some(200)), probe(1, None)]);
    assert_eq!((code, serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"].as_str()), (200, Some("warn")));
    // The active origin down but the other healthy (routing moves to it): warn; all down: 503.
    assert_eq!(report(bundle, &[probe(0, Some(500)), probe(1, Some(200))]).0, 200);
    let (code, body) = report(bundle, &[probe(0, None), probe(1, Some(503))]);
    assert_eq!(code, 503);
    assert!(body.contains("\"status\":\"fail\""));
}

/// The app's own health answer: each dependency its own check per origin; a failing one, or a
/// slow origin, is `warn` overall while an origin answers.
#[test]
fn health_report_reads_the_apps_answer() {
    use edgeguard_core::health::{Probe, report};
    let edge = qk();
    let bundle = edge.engine.bundle();
    assert_eq!(bundle.health.as_ref().map(|h| h.warn_after_ms), Some(100), "QuoteKit's roadmap target is the default");
    let probe = |origin: u16, millis: u64, body: &str| Probe {
        origin,
        status: Some(200),
        millis,
        time: "2026-12-07T10:00:00Z".into(),
        body: Some(body.to_owned()),
        ..Probe::default()
    };
    let healthy = r#"{"status":"healthy","checks":{"database":"healthy","stripe":"healthy","supabase":"healthy"}}"#;
    let stripe_down = r#"{"status":"degraded","checks":{"database":"healthy","stripe":"unhealthy","supabase":"healthy"}}"#;
    let run = |probes: &[Probe]| {
        let (code, body) = report(bundle, probes);
        (code, serde_json::from_str::<serde_json::Value>(&body).unwrap())
    };
    let (code, json) = run(&[probe(0, 10, healthy), probe(1, 12, healthy)]);
    assert_eq!((code, json["status"].as_str()), (200, Some("pass")));
    let ids: Vec<_> = json["checks"]["stripe"].as_array().unwrap().iter().map(|c| (c["componentId"].as_str().unwrap(), c["status"].as_str().unwrap())).collect();
    assert_eq!(ids, [("blue", "pass"), ("green", "pass")]);
    let (code, json) = run(&[probe(0, 10, stripe_down), probe(1, 12, healthy)]);
    assert_eq!((code, json["status"].as_str()), (200, Some("warn")));
    assert_eq!(json["checks"]["stripe"][0]["status"], "fail");
    assert_eq!(json["checks"]["origin:responseTime"][0]["status"], "warn");
    assert_eq!(json["checks"]["origin:responseTime"][0]["output"], "the app reports `degraded`");
    let (code, json) = run(&[probe(0, 150, healthy), probe(1, 12, healthy)]);
    assert_eq!((code, json["status"].as_str()), (200, Some("warn")));
    assert_eq!(json["checks"]["origin:responseTime"][0]["output"], "answered in 150 ms, over the 100 ms threshold");
    let (code, json) = run(&[probe(0, 10, "OK"), probe(1, 12, "<html></html>")]);
    assert_eq!((code, json["status"].as_str()), (200, Some("warn")), "answering, so still routed to");
    assert_eq!(json["checks"]["origin:responseTime"][1]["output"], "health answer is not JSON");
}

#[test]
fn origin_failures_are_problem_json() {
    use edgeguard_core::decision::OriginFailure;
    let body: serde_json::Value = serde_json::from_str(&OriginFailure::Timeout.problem_json("blue", "r1", "/api/x?y=1")).unwrap();
    assert_eq!((body["status"].as_u64(), body["instance"].as_str()), (Some(504), Some("/api/x")));
    assert_eq!(OriginFailure::Unreachable.status(), 502);
}
