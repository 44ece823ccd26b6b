//! The bypass suite: for every access rule of the language (block, only_in, methods,
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
//! require_cookie, api_key, ip_allow / ip_deny, limits, max_body), requests crafted to reach the
//! protected resource anyway. Every case asserts that the edge refuses, or that it forwards
//! exactly the normalized path the origin (Next.js) routes to the same rule: `path` and `route`
//! of the `explain` answer. The same cases run in workerd in tests/e2e/bypass.test.mjs.
//!
//! The property test at the end checks normalization itself: for any path built from segments
//! full of escapes, dots and slashes, the edge's normalized path and route equal what an
//! independent reference normalizer (below) says the origin sees.

use edgeguard_compiler::{Options, compile};
use edgeguard_core::engine::is_stripped_request_header;
use edgeguard_core::explain::{Explanation, explain};
use edgeguard_core::{Action, Draw, Engine, Limiter, Reason, RequestFacts};
use proptest::prelude::*;

const QUOTEKIT: &str = include_str!("../../../fixtures/quotekit.toml");
const UUID: &str = "123e4567-e89b-12d3-a456-426614174000";
const HOST: &str = "lawnquote.online";
const CLIENT: &str = "198.51.100.7";

/// A small policy for the IP rules (QuoteKit has none enabled).
const IPS: &str = r#"
version = 1
[app]
name = "ips"
hosts = ["ips.example"]
[client_ip]
from = "cf-connecting-ip"
[[routes]]
path = "/admin/**"
ip_allow = ["203.0.113.0/24", "2001:db8::/32"]
[[routes]]
path = "/**"
ip_deny = ["198.51.100.0/24", "2001:db8:bad::/48"]
[origins.app]
url = "https://app.example"
"#;

struct Edge {
    engine: Engine,
    limiter: Limiter,
    /// Keep the limiter between requests (only the limits test wants its counts).
    counting: bool,
}

impl Edge {
    fn new(source: &str, env: Option<&str>) -> Edge {
        let out = compile(source, &Options { env: env.map(str::to_owned), ..Options::default() });
        assert!(!out.has_errors(), "{:#?}", out.diagnostics);
        let engine = Engine::new(out.bundle.unwrap()).unwrap();
        let limiter = engine.new_limiter(42);
        Edge { engine, limiter, counting: false }
    }

    /// Send exactly these headers (no Host or client address added).
    fn raw(&mut self, method: &str, url: &str, headers: &[(&str, &str)]) -> Explanation {
        let req = RequestFacts { method, url, headers, peer_ip: None, cf: Default::default() };
        if !self.counting {
            self.limiter = self.engine.new_limiter(42);
        }
        let d = self.engine.decide_standalone(&req, &mut self.limiter, 0, Draw { request_id: 0xabc, lane: 1234 });
        explain(&self.engine, &d)
    }

    /// A request over https (`https://lawnquote.online` + `path`, unless `path` is absolute
    /// already) with the QuoteKit Host and a client address, plus `headers`.
    fn get(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Explanation {
        let mut all: Vec<(&str, &str)> = vec![("host", HOST), ("cf-connecting-ip", CLIENT)];
        all.extend_from_slice(headers);
        let url = if path.starts_with('/') { format!("https://{HOST}{path}") } else { path.to_owned() };
        self.raw(method, &url, &all)
    }
}

fn qk() -> Edge {
    Edge::new(QUOTEKIT, None)
}

/// The edge refused with this status (and never forwarded).
#[track_caller]
fn refused(e: &Explanation, status: u16) {
    assert_eq!((e.action, e.status), (Action::Reject, Some(status)), "{e:#?}");
    assert!(e.origin.is_none());
}

/// The request was handled under `route` with the origin seeing `path` (when forwarded).
#[track_caller]
fn under(e: &Explanation, path: &str, route: Option<&str>) {
    assert_eq!(e.path, path, "{e:#?}");
    assert_eq!(e.route.as_deref(), route, "{e:#?}");
}

/// Forwarded to the origin with exactly this path under this route.
#[track_caller]
fn forwarded(e: &Explanation, path: &str, route: Option<&str>) {
    assert_eq!(e.action, Action::Forward, "{e:#?}");
    under(e, path, route);
}

// ── Path encodings against every path-based rule ────────────────────────────────────────────

/// Ways of writing a path that an edge and an origin have disagreed about, each with what
/// the edge must make of it: `Err(())` refused with 400, `Ok(path)` the path the origin gets.
fn spellings(path: &str) -> Vec<(String, Result<String, ()>)> {
    let (head, last) = path.rsplit_once('/').unwrap();
    let first_char = &last[..1];
    let rest = &last[1..];
    let byte = first_char.as_bytes()[0];
    let same = || Ok(path.to_owned());
    vec![
        (path.to_owned(), same()),
        // percent-encoding of an unreserved character: single, lower and upper case hex
        (format!("{head}/%{byte:02x}{rest}"), same()),
        (format!("{head}/%{byte:02X}{rest}"), same()),
        // double encoding: `%2561` is the text `%61`, not `a`; the origin decodes once
        (format!("{head}/%25{byte:02x}{rest}"), Ok(format!("{head}/%25{byte:02x}{rest}"))),
        // empty, `.` and `..` segments, plain and encoded
        (format!("/{path}"), same()),
        (path.replacen('/', "//", 2), same()),
        (format!("{head}/./{last}"), same()),
        (format!("{head}/x/../{last}"), same()),
        (format!("{head}/x/%2e%2e/{last}"), same()),
        (format!("{head}/x/%2E./{last}"), same()),
        (format!("{head}/%2e/{last}"), same()),
        (format!("/x/..{path}"), same()),
        // trailing slash: same resource (Next.js redirects it to the bare path)
        (format!("{path}/"), Ok(format!("{path}/"))),
        (format!("{path}/."), Ok(format!("{path}/"))),
        // trailing dot, `;param`: a different segment to the edge and to Next.js alike
        (format!("{path}."), Ok(format!("{path}."))),
        (format!("{path};x=1"), Ok(format!("{path};x=1"))),
        (format!("{path}%3Bx=1"), Ok(format!("{path}%3Bx=1"))),
        // encoded slash, backslash, NUL; backslash as separator; bad escapes; above the root
        (format!("{head}%2f{last}"), Err(())),
        (format!("{head}%2F{last}"), Err(())),
        (format!("{head}%5c{last}"), Err(())),
        (format!("{head}\\{last}"), Err(())),
        (format!("{path}%00"), Err(())),
        (format!("{path}%"), Err(())),
        (format!("{path}%g0"), Err(())),
        (format!("/..{path}"), Err(())),
        (format!("/%2e%2e{path}"), Err(())),
        (format!("{path}%20"), Ok(format!("{path}%20"))),
        (format!("{path} x"), Err(())),
        (format!("{path}\t"), Err(())),
        // overlong UTF-8 for `/` and `.` stays encoded: no origin decodes it to ASCII
        (format!("{head}%C0%AF{last}"), Ok(format!("{head}%C0%AF{last}"))),
        (format!("{head}/%c0%ae%c0%ae/{last}"), Ok(format!("{head}/%C0%AE%C0%AE/{last}"))),
        (format!("{head}%E0%80%AF{last}"), Ok(format!("{head}%E0%80%AF{last}"))),
        // fullwidth solidus and letters: Unicode, not ASCII, on both sides (no NFKC on paths)
        (format!("{head}%EF%BC%8F{last}"), Ok(format!("{head}%EF%BC%8F{last}"))),
        (format!("{head}\u{ff0f}{last}"), Ok(format!("{head}%EF%BC%8F{last}"))),
        (format!("{head}/\u{ff41}{}", &last[1..]), Ok(format!("{head}/%EF%BD%81{}", &last[1..]))),
        // case of the path: Next.js routes are case-sensitive
        (path.to_ascii_uppercase(), Ok(path.to_ascii_uppercase())),
    ]
}

/// Every spelling of `path` is refused with 400, or handled exactly as the canonical
/// `expected_route` would be when it is the same path; a different path must land under a
/// route other than the protected one, or be refused by it all the same.
#[track_caller]
fn check_spellings(edge: &mut Edge, method: &str, path: &str, headers: &[(&str, &str)], route: &str, status: Option<u16>) -> usize {
    let canonical = edge.get(method, path, headers);
    assert_eq!(canonical.route.as_deref(), Some(route), "{canonical:#?}");
    let mut n = 0;
    for (spelled, expected) in spellings(path) {
        let e = edge.get(method, &spelled, headers);
        match expected {
            Err(()) => {
                assert_eq!((e.action, e.status, e.reason), (Action::Reject, Some(400), Reason::BadRequest), "{spelled}: {e:#?}");
            }
            Ok(p) if p == path || p == format!("{path}/") => {
                // The same resource: the same rule and the same answer as the canonical path.
                assert_eq!(e.path, p, "{spelled}");
                assert_eq!(e.route.as_deref(), Some(route), "{spelled}: {e:#?}");
                assert_eq!((e.action, e.status), (canonical.action, canonical.status), "{spelled}: {e:#?}");
                if let Some(s) = status {
                    refused(&e, s);
                }
            }
            Ok(p) => {
                // Another path: the origin gets exactly it, and routes it like the edge did.
                assert_eq!(e.path, p, "{spelled}: {e:#?}");
                let direct = edge.get(method, &p, headers);
                assert_eq!(direct.route, e.route, "{spelled}: the edge and the origin route `{p}` differently");
                assert_eq!((direct.action, direct.status), (e.action, e.status), "{spelled}");
            }
        }
        n += 1;
    }
    n
}

#[test]
fn block_cannot_be_reached_by_another_spelling() {
    let mut edge = qk();
    let mut n = 0;
    for (path, route) in [
        ("/api/debug-oauth", "/api/debug-*"),
        ("/api/test-supabase-connection", "/api/test-supabase-connection"),
        ("/api/formbricks/test", "/api/formbricks/test"),
        ("/api/supabase/functions/run", "/api/supabase/functions/**"),
        ("/debug/env", "/debug/**"),
        ("/test-edge-functions/x", "/test-edge-functions/**"),
    ] {
        n += check_spellings(&mut edge, "GET", path, &[], route, Some(404));
    }
    // The prefix of a `**` block is blocked too, however it is written.
    for p in ["/api/supabase/functions", "/api/supabase/functions/", "/api//supabase/./functions", "/api/supabase/%66unctions"] {
        refused(&edge.get("GET", p, &[]), 404);
        n += 1;
    }
    // The static sibling of the blocked glob stays reachable, and only it.
    forwarded(&edge.get("POST", "/api/debug-%73ubscription", &[("content-length", "0")]), "/api/debug-subscription", Some("/api/debug-subscription"));
    refused(&edge.get("POST", "/api/debug-subscription2", &[("content-length", "0")]), 404);
    println!("block: {} cases", n + 2);
}

#[test]
fn only_in_is_the_policy_environment_not_the_client_s() {
    let mut prod = qk();
    let mut staging = Edge::new(QUOTEKIT, Some("staging"));
    for path in ["/api/debug-oauth", "/debug/x", "/api/supabase/functions/f"] {
        refused(&prod.get("GET", path, &[]), 404);
        // Nothing a client sends selects the environment.
        for (n, v) in [("x-environment", "staging"), ("x-edgeguard-env", "staging"), ("cookie", "env=staging")] {
            refused(&prod.get("GET", &format!("{path}?env=staging"), &[(n, v)]), 404);
        }
        let e = staging.raw("GET", &format!("https://quotekit-staging.fly.dev{path}"), &[("host", "quotekit-staging.fly.dev")]);
        assert_eq!(e.action, Action::Forward, "{e:#?}");
        assert_eq!(e.path, path);
    }
}

#[test]
fn methods_cannot_be_smuggled() {
    let mut edge = qk();
    let pdf = format!("/api/quotes/{UUID}/pdf");
    let route = Some("/api/quotes/:id/pdf");
    check_spellings(&mut edge, "DELETE", &pdf, &[], "/api/quotes/:id/pdf", Some(405));
    for method in ["DELETE", "PUT", "POST", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "BREW", "get", "Get", "gEt"] {
        let e = edge.get(method, &pdf, &[]);
        refused(&e, 405);
        under(&e, &pdf, route);
        assert_eq!(e.response_headers["allow"], "GET, HEAD");
    }
    // Not a method at all: refused before routing.
    for method in ["GET ", " GET", "GE T", "G\u{0}T", "", "GET\r\n"] {
        refused(&edge.get(method, &pdf, &[]), 400);
    }
    // Method overrides: stripped before forwarding, so an allowed method stays the one the
    // origin runs (Next.js ignores them anyway; other frameworks honour them).
    for name in ["X-HTTP-Method-Override", "x-http-method-override", "X-Method-Override", "X-HTTP-Method"] {
        assert!(is_stripped_request_header(name), "{name}");
        let e = edge.get("GET", &pdf, &[(name, "DELETE")]);
        forwarded(&e, &pdf, route);
        assert!(!e.forward_headers.keys().any(|k| k.eq_ignore_ascii_case(name)));
        // …and they do not turn a refused method into an allowed one either.
        refused(&edge.get("DELETE", &pdf, &[(name, "GET")]), 405);
    }
    // HEAD is GET without a body; the body methods on a GET-only route stay refused.
    forwarded(&edge.get("HEAD", &pdf, &[]), &pdf, route);
}

#[test]
fn require_session_cannot_be_skipped() {
    let mut edge = qk();
    check_spellings(&mut edge, "GET", "/api/admin/users", &[], "/api/admin/**", Some(401));
    let route = Some("/api/admin/**");
    // Test sessions signed with the policy's test_secret, at the edge's clock.
    let clock = 1_800_000_000;
    edge.engine.sessions().accept_test_tokens(clock);
    let source = edge.engine.bundle().sessions.first().unwrap().clone();
    let admin = serde_json::json!({ "sub": "u-1", "app_metadata": { "role": "admin" } });
    let (_, cookie) = edgeguard_core::sessions::test_header(&source, &admin, clock, 3600, false, Some(1)).unwrap();
    let (_, bearer) = edgeguard_core::sessions::test_header(&source, &admin, clock, 3600, false, None).unwrap();
    let token = bearer.strip_prefix("Bearer ").unwrap().to_owned();
    let (name, value) = cookie.split_once('=').unwrap();
    forwarded(&edge.get("GET", "/api/admin/users", &[("cookie", &cookie)]), "/api/admin/users", route);
    forwarded(&edge.get("GET", "/api/admin/users", &[("authorization", &bearer)]), "/api/admin/users", route);
    // The scheme is case-insensitive (RFC 9110); the header name too.
    forwarded(&edge.get("GET", "/api/admin/users", &[("AUTHORIZATION", &format!("bearer {token}"))]), "/api/admin/users", route);
    forwarded(&edge.get("GET", "/api/admin/users", &[("COOKIE", &cookie)]), "/api/admin/users", route);
    // Repeated Cookie headers (HTTP/2 sends one per cookie).
    forwarded(&edge.get("GET", "/api/admin/users", &[("cookie", "a=1"), ("cookie", &cookie)]), "/api/admin/users", route);
    // A cookie with the session's name and anything else in it is no session.
    let upper = format!("{}={value}", name.to_ascii_uppercase());
    let in_value = format!("a={cookie}");
    let empty = format!("{name}=");
    let bare = name.to_owned();
    let tampered = {
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = base64_url(&serde_json::json!({ "sub": "u-2", "app_metadata": { "role": "admin" }, "exp": clock + 3600, "aud": "authenticated" }).to_string());
        parts[1] = &forged_payload;
        format!("Bearer {}", parts.join("."))
    };
    let unsigned = format!("Bearer {}.{}.", base64_url(r#"{"alg":"none"}"#), base64_url(&serde_json::json!({ "sub": "u-1", "app_metadata": { "role": "admin" }, "exp": clock + 3600 }).to_string()));
    let hs_as_rs = format!("Bearer {}", token.replacen(&base64_url(r#"{"alg":"HS256","typ":"JWT"}"#), &base64_url(r#"{"alg":"RS256","typ":"JWT"}"#), 1));
    for (header, v) in [
        ("cookie", upper.as_str()),                       // cookie names are case-sensitive
        ("cookie", in_value.as_str()),                    // the cookie in another cookie's value
        ("cookie", empty.as_str()),                       // empty value
        ("cookie", bare.as_str()),                        // no value at all
        ("cookie", "sb-abc-auth-token=eyJhbGciOi"),       // the right name, no token
        ("authorization", tampered.as_str()),             // a payload changed after signing
        ("authorization", unsigned.as_str()),             // alg: none
        ("authorization", hs_as_rs.as_str()),             // an HS256 signature claimed as RS256
        ("authorization", &format!("Basic {token}")),     // another scheme
        ("cookie2", cookie.as_str()),                     // the cookie in another header is no cookie
        ("set-cookie", cookie.as_str()),
        ("x-cookie", cookie.as_str()),
    ] {
        let e = edge.get("GET", "/api/admin/users", &[(header, v)]);
        // RS256 is checked against the JWKS, which this offline engine has none of: 503, the
        // answer of an edge that cannot fetch it. Never forwarded either way.
        refused(&e, if v == hs_as_rs { 503 } else { 401 });
        under(&e, "/api/admin/users", route);
    }
    // A value with CR, LF or NUL never reaches the matcher.
    for v in [format!("{cookie}\r\nx-a: b"), format!("{cookie}\0"), format!("a=1\n{cookie}")] {
        refused(&edge.get("GET", "/api/admin/users", &[("cookie", &v)]), 400);
    }
    // /api/admin itself is covered by `**`.
    for p in ["/api/admin", "/api/admin/", "/api//admin", "/api/./admin/.", "/api/%61dmin"] {
        let e = edge.get("GET", p, &[]);
        refused(&e, 401);
        assert_eq!(e.route.as_deref(), route);
    }
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[test]
fn api_key_cannot_be_skipped() {
    let mut edge = qk();
    check_spellings(&mut edge, "GET", "/api/admin/metrics", &[("x-api-key", "wrong")], "/api/admin/metrics", Some(401));
    let route = Some("/api/admin/metrics");
    // Spellings that leave the metrics route land under /api/admin/**, which wants the cookie.
    for p in ["/api/admin/metrics.", "/api/admin/metrics;", "/api/admin/METRICS", "/api/admin/metrics%00x"] {
        let e = edge.get("GET", p, &[]);
        assert_eq!(e.action, Action::Reject, "{p}: {e:#?}");
        assert!(matches!(e.status, Some(400 | 401)), "{p}: {e:#?}");
    }
    for (name, value, ok) in [
        ("x-api-key", "demo-metrics-key", true),
        ("X-API-KEY", "demo-metrics-key", true),
        ("x-api-key", "  demo-metrics-key  ", true),
        ("x-api-key", "demo-metrics-key\0", false),
        ("x-api-key", "DEMO-METRICS-KEY", false),
        ("x-api-key", "demo-metrics-ke", false),
        ("x-api-key", "demo-metrics-key, x", false),
        ("x-api-key", "f449e8d17b6f79dd2781f6b03268f5fb48d739d96f0c6a4572e9a42d4a00112a", false),
        ("x-api-key", "", false),
        ("x_api_key", "demo-metrics-key", false),
        ("api-key", "demo-metrics-key", false),
        ("authorization", "Bearer demo-metrics-key", false),
    ] {
        let e = edge.get("GET", "/api/admin/metrics", &[(name, value)]);
        if ok {
            forwarded(&e, "/api/admin/metrics", route);
        } else {
            assert_eq!(e.action, Action::Reject, "{name}: {value:?}");
            if value.contains('\0') {
                refused(&e, 400);
            } else {
                refused(&e, 401);
                under(&e, "/api/admin/metrics", route);
            }
        }
    }
    // Duplicate headers: the first is the key (as Node and workerd's `get` would join them,
    // `wrong, demo-metrics-key` is no key either).
    refused(&edge.get("GET", "/api/admin/metrics", &[("x-api-key", "wrong"), ("x-api-key", "demo-metrics-key")]), 401);
    refused(&edge.get("GET", "/api/admin/metrics", &[("x-api-key", "wrong, demo-metrics-key")]), 401);
}

#[test]
fn ip_rules_trust_one_header_only() {
    let mut edge = Edge::new(IPS, None);
    let go = |edge: &mut Edge, path: &str, headers: &[(&str, &str)]| {
        let mut all = vec![("host", "ips.example")];
        all.extend_from_slice(headers);
        edge.raw("GET", &format!("https://ips.example{path}"), &all)
    };
    // ip_allow: only the trusted header's value counts.
    forwarded(&go(&mut edge, "/admin/x", &[("cf-connecting-ip", "203.0.113.9")]), "/admin/x", Some("/admin/**"));
    forwarded(&go(&mut edge, "/admin/x", &[("cf-connecting-ip", "2001:db8::1")]), "/admin/x", Some("/admin/**"));
    forwarded(&go(&mut edge, "/admin/x", &[("CF-Connecting-IP", " 203.0.113.9 ")]), "/admin/x", Some("/admin/**"));
    for headers in [
        &[("cf-connecting-ip", "6.6.6.6"), ("x-forwarded-for", "203.0.113.9")][..],
        &[("cf-connecting-ip", "6.6.6.6"), ("x-real-ip", "203.0.113.9")][..],
        &[("cf-connecting-ip", "6.6.6.6"), ("forwarded", "for=203.0.113.9")][..],
        &[("cf-connecting-ip", "6.6.6.6"), ("true-client-ip", "203.0.113.9")][..],
        &[("x-forwarded-for", "203.0.113.9")][..],
        // a list: the rightmost entry (the nearest proxy's) is the client
        &[("cf-connecting-ip", "203.0.113.9, 6.6.6.6")][..],
        // a second line: the last one counts, as when a runtime joins them with `, `
        &[("cf-connecting-ip", "203.0.113.9"), ("cf-connecting-ip", "6.6.6.6")][..],
        // not an address: no client address, and ip_allow admits no unknown client
        &[("cf-connecting-ip", "203.0.113.9:443")][..],
        &[("cf-connecting-ip", "[2001:db8::1]")][..],
        &[("cf-connecting-ip", "203.0.113.9 6.6.6.6")][..],
        &[("cf-connecting-ip", "0203.0.113.9")][..],
        &[("cf-connecting-ip", "")][..],
    ] {
        let e = go(&mut edge, "/admin/x", headers);
        refused(&e, 403);
        under(&e, "/admin/x", Some("/admin/**"));
    }
    // Spellings of the path stay under the ip_allow rule.
    for p in ["/admin", "/admin/", "//admin/x", "/x/../admin/x", "/%61dmin/x", "/admin/./x"] {
        refused(&go(&mut edge, p, &[("cf-connecting-ip", "6.6.6.6")]), 403);
    }
    // ip_deny: the same header, and every form of a denied address.
    for ip in ["198.51.100.7", "::ffff:198.51.100.7", "::ffff:c633:6407", "2001:db8:bad::1", "2001:DB8:BAD::1"] {
        let e = go(&mut edge, "/page", &[("cf-connecting-ip", ip), ("x-forwarded-for", "192.0.2.1")]);
        refused(&e, 403);
        under(&e, "/page", Some("/**"));
    }
    let e = go(&mut edge, "/page", &[("cf-connecting-ip", "192.0.2.1"), ("x-forwarded-for", "198.51.100.7")]);
    forwarded(&e, "/page", Some("/**"));
    // The origin gets the trusted address, never the client's own forwarding headers.
    assert_eq!(e.forward_headers["x-forwarded-for"], "192.0.2.1");
    assert_eq!(e.forward_headers["x-real-ip"], "192.0.2.1");
    for name in ["x-forwarded-for", "X-Forwarded-Host", "x-forwarded-proto", "x-real-ip", "forwarded", "x-request-id"] {
        assert!(is_stripped_request_header(name), "{name}");
    }
}

#[test]
fn limits_count_the_client_not_the_spelling() {
    let mut edge = qk();
    edge.counting = true;
    let email = format!("/api/quotes/{UUID}/email");
    let body = [("content-length", "2")];
    for _ in 0..5 {
        assert_eq!(edge.get("POST", &email, &body).action, Action::Forward);
    }
    let upper = format!("/api/quotes/{}/email", UUID.to_ascii_uppercase());
    let spelled = [
        email.clone(),
        format!("{email}/"),
        format!("/{email}"),
        format!("/api/./quotes/{UUID}/email"),
        format!("/api/quotes/{UUID}/x/../email"),
        format!("/api/quotes/{UUID}/%65mail"),
        format!("{email}?a=1"),
        format!("https://{HOST}{email}"),
        format!("https://LAWNQUOTE.online.:443{email}"),
        upper,
    ];
    for p in &spelled {
        let e = edge.get("POST", p, &body);
        refused(&e, 429);
        assert_eq!(e.route.as_deref(), Some("/api/quotes/:id/email"), "{p}");
    }
    // Spoofed forwarding headers do not make a new client.
    for (n, v) in [("x-forwarded-for", "192.0.2.50"), ("x-real-ip", "192.0.2.50"), ("forwarded", "for=192.0.2.50"), ("true-client-ip", "192.0.2.50")] {
        refused(&edge.get("POST", &email, &[("content-length", "2"), (n, v)]), 429);
    }
    // A second cf-connecting-ip line does not either: the last one is the client, and a
    // rotating first line changes nothing.
    let url = format!("https://{HOST}{email}");
    let e = edge.raw("POST", &url, &[("host", HOST), ("cf-connecting-ip", "192.0.2.50"), ("cf-connecting-ip", CLIENT), ("content-length", "2")]);
    refused(&e, 429);
    // The route's other methods are refused before they are counted.
    refused(&edge.get("GET", &email, &[]), 405);
    // Header-keyed limits count the trimmed value.
    let mut edge = qk();
    edge.counting = true;
    let key = [("x-api-key", "demo-metrics-key")];
    for _ in 0..2 {
        assert_eq!(edge.get("GET", "/api/admin/metrics", &key).action, Action::Forward);
    }
    refused(&edge.get("GET", "/api/admin/metrics", &key), 429);
    refused(&edge.get("GET", "/api/admin/%6detrics", &[("X-Api-Key", " demo-metrics-key ")]), 429);
}

#[test]
fn max_body_cannot_be_outrun() {
    let mut edge = qk();
    let stripe = "/api/webhooks/stripe";
    let sig = ("stripe-signature", "t=1");
    let route = Some("/api/webhooks/stripe");
    forwarded(&edge.get("POST", stripe, &[sig, ("content-length", "1048576")]), stripe, route);
    refused(&edge.get("POST", stripe, &[sig, ("content-length", "1048577")]), 413);
    for cl in ["+5", "-1", "0x10", "1e3", "5 5", "", "99999999999999999999", "１"] {
        let e = edge.get("POST", stripe, &[sig, ("content-length", cl)]);
        refused(&e, 400);
    }
    for headers in [
        // a small length, then the real one: two parsers, two bodies
        &[sig, ("content-length", "2"), ("content-length", "2000000")][..],
        &[sig, ("content-length", "2, 2000000")][..],
        // chunked with a small Content-Length: the origin reads the chunks
        &[sig, ("content-length", "2"), ("transfer-encoding", "chunked")][..],
        &[sig, ("transfer-encoding", "chunked"), ("Content-Length", "2")][..],
        &[sig, ("content-length", "2"), ("Transfer-Encoding", "gzip, chunked")][..],
    ] {
        let e = edge.get("POST", stripe, headers);
        refused(&e, 400);
        assert_eq!(e.reason, Reason::BadRequest);
    }
    // Chunked without a length on a max_body route: 411, whatever the method.
    for method in ["POST", "PUT", "PATCH", "DELETE", "GET"] {
        let e = edge.get(method, "/api/quotes", &[("transfer-encoding", "chunked")]);
        if method == "PUT" || method == "PATCH" || method == "DELETE" {
            refused(&e, 405);
        } else {
            refused(&e, 411);
        }
    }
    refused(&edge.get("POST", stripe, &[sig, ("TRANSFER-ENCODING", "chunked")]), 411);
    // Spellings of the webhook path keep its 1 MiB cap.
    for p in ["/api/webhooks/stripe/", "/api//webhooks/stripe", "/api/webhooks/%73tripe"] {
        let e = edge.get("POST", p, &[sig, ("content-length", "2000000")]);
        refused(&e, 413);
        assert_eq!(e.route.as_deref(), route);
    }
}

#[test]
fn headers_that_parsers_disagree_about_are_refused() {
    let mut edge = qk();
    // CR, LF and NUL in any header value.
    for v in ["a\rb", "a\nb", "a\r\nx-injected: 1", "a\0b", "\r\n"] {
        refused(&edge.get("GET", "/pricing", &[("x-anything", v)]), 400);
    }
    // Header names that are not tokens (a space before the colon, obs-fold, empty).
    for n in ["x-a ", " x-a", "x:a", "", "x\ta", "host ", "x-a\r\n"] {
        refused(&edge.get("GET", "/pricing", &[(n, "v")]), 400);
    }
    // Too many and too large.
    let many: Vec<(String, String)> = (0..101).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    refused(&edge.get("GET", "/pricing", &refs), 431);
    let big = "a".repeat(33 * 1024);
    refused(&edge.get("GET", "/pricing", &[("cookie", &big)]), 431);
    let split: Vec<String> = (0..10).map(|_| "b".repeat(4000)).collect();
    let refs: Vec<(&str, &str)> = split.iter().map(|v| ("x-part", v.as_str())).collect();
    refused(&edge.get("GET", "/pricing", &refs), 431);
    let long = format!("/{}", "a".repeat(9000));
    refused(&edge.get("GET", &long, &[]), 414);
}

#[test]
fn host_tricks() {
    let mut edge = qk();
    let page = |edge: &mut Edge, url: &str, headers: &[(&str, &str)]| {
        let mut all = vec![("cf-connecting-ip", CLIENT)];
        all.extend_from_slice(headers);
        edge.raw("GET", url, &all)
    };
    // Port, trailing dot and case name the same host: in the Host header (the plain-http
    // request is redirected to the canonical https URL) and in an absolute-form target.
    for host in ["lawnquote.online", "LawnQuote.Online", "lawnquote.online.", "lawnquote.online:443", "LAWNQUOTE.ONLINE.:8443"] {
        let e = page(&mut edge, "/pricing?a=1", &[("host", host)]);
        assert_eq!((e.action, e.location.as_deref()), (Action::Redirect, Some("https://lawnquote.online/pricing?a=1")), "{host}");
        let e = page(&mut edge, &format!("https://{host}/pricing"), &[("host", host)]);
        forwarded(&e, "/pricing", Some("/**"));
        assert_eq!(e.forward_headers["x-forwarded-host"], "lawnquote.online");
    }
    // Not the host, or not a host at all.
    for host in ["evil.example", "lawnquote.online.evil.example", "lawnquote.onlinex", "xlawnquote.online", "lawnquote.online..", "lawnquote..online"] {
        let e = page(&mut edge, "/pricing", &[("host", host)]);
        assert_eq!(e.action, Action::Reject, "{host}: {e:#?}");
        assert!(matches!(e.status, Some(400 | 421)), "{host}");
    }
    for host in ["lawnquote.online:443:1", "lawnquote.online:https", "user@lawnquote.online", "lawnquote.online/x", "lawnquote.online evil", "", "lawnquote.online, evil.example"] {
        refused(&page(&mut edge, "/pricing", &[("host", host)]), 400);
    }
    refused(&page(&mut edge, "/pricing", &[]), 400);
    // A second Host header: RFC 9112 says 400, whichever comes first.
    refused(&page(&mut edge, "/pricing", &[("host", "lawnquote.online"), ("host", "evil.example")]), 400);
    refused(&page(&mut edge, "/pricing", &[("host", "evil.example"), ("Host", "lawnquote.online")]), 400);
    // Absolute form: the target's authority is the host (RFC 9112 §3.2.2), whatever Host says,
    // and it is what the origin is told.
    let e = page(&mut edge, "https://lawnquote.online/pricing", &[("host", "evil.example")]);
    forwarded(&e, "/pricing", Some("/**"));
    assert_eq!(e.forward_headers["x-forwarded-host"], "lawnquote.online");
    refused(&page(&mut edge, "https://evil.example/pricing", &[("host", HOST)]), 421);
    // An absolute-form target cannot smuggle a userinfo or an empty host.
    refused(&page(&mut edge, "https://lawnquote.online@evil.example/pricing", &[("host", HOST)]), 400);
    refused(&page(&mut edge, "https:///pricing", &[("host", HOST)]), 400);
    refused(&page(&mut edge, "evil.example/pricing", &[("host", HOST)]), 400);
    // `//evil.example/x` is a path: its empty segment collapses, so neither the redirect nor
    // the origin can read it as a scheme-relative URL to another host.
    let e = page(&mut edge, "//evil.example/pricing", &[("host", HOST)]);
    assert_eq!(e.location.as_deref(), Some("https://lawnquote.online/evil.example/pricing"));
    forwarded(&page(&mut edge, "https://lawnquote.online//evil.example/pricing", &[("host", HOST)]), "/evil.example/pricing", Some("/**"));
    // Absolute-form spellings of a protected path stay protected.
    for url in ["https://lawnquote.online/api//admin/users", "HTTPS://LAWNQUOTE.ONLINE/api/%61dmin/users", "https://lawnquote.online:443/api/x/../admin/users"] {
        let e = page(&mut edge, url, &[("host", HOST)]);
        refused(&e, 401);
        under(&e, "/api/admin/users", Some("/api/admin/**"));
    }
}

// ── Property: the edge normalizes as the origin will ─────────────────────────────────────────

/// What the origin routes for a raw path, written independently of the engine from the
/// documented rules (docs/policy.md, "Path normalization") and the WHATWG URL path parser that
/// Node and Next.js use:
///
/// 1. The path is split on `/`; a raw `\` is refused (WHATWG would turn it into `/`).
/// 2. Each segment's escapes are decoded when they name an unreserved character; other escapes
///    are kept with upper-case hex; `%2F`, `%5C` and `%00` are refused, as is a `%` without two
///    hex digits. Raw bytes above 0x7E are percent-encoded as UTF-8; spaces and controls are
///    refused.
/// 3. Dot segments are those that *decode* to `.` or `..` (WHATWG: `.`, `%2e`, `.%2E`, …);
///    `.` is dropped, `..` removes the previous segment and is refused at the root.
/// 4. Empty segments are dropped (Next.js redirects `//` to `/`); a final `/`, `.` or `..`
///    leaves a trailing slash.
fn reference(raw: &str) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    let pieces: Vec<&str> = raw.strip_prefix('/')?.split('/').collect();
    let mut trailing = false;
    for (i, piece) in pieces.iter().enumerate() {
        let mut seg = String::new();
        let b = piece.as_bytes();
        let mut j = 0;
        while j < b.len() {
            let c = b[j];
            if c == b'%' {
                let hex = piece.get(j + 1..j + 3)?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                let v = u8::from_str_radix(hex, 16).ok()?;
                if v == b'/' || v == b'\\' || v == 0 {
                    return None;
                }
                if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                    seg.push(v as char);
                } else {
                    seg.push_str(&format!("%{v:02X}"));
                }
                j += 3;
            } else if c == b'\\' || c <= 0x20 || c == 0x7f {
                return None;
            } else if c >= 0x80 {
                seg.push_str(&format!("%{c:02X}"));
                j += 1;
            } else {
                seg.push(c as char);
                j += 1;
            }
        }
        if i + 1 == pieces.len() {
            trailing = matches!(seg.as_str(), "" | "." | "..");
        }
        match seg.as_str() {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            _ => out.push(seg),
        }
    }
    let mut path = String::new();
    for s in &out {
        path.push('/');
        path.push_str(s);
    }
    if path.is_empty() || trailing {
        path.push('/');
    }
    Some(path)
}

#[test]
fn reference_normalizer_examples() {
    for (raw, want) in [
        ("/", Some("/")),
        ("/api//admin", Some("/api/admin")),
        ("/api/./admin/", Some("/api/admin/")),
        ("/api/x/../admin", Some("/api/admin")),
        ("/api/%2e%2E/admin", Some("/admin")),
        ("/a/.", Some("/a/")),
        ("/a/b/..", Some("/a/")),
        ("/a/%3a", Some("/a/%3A")),
        ("/caf\u{e9}", Some("/caf%C3%A9")),
        ("/a%2fb", None),
        ("/..", None),
        ("/a\\b", None),
        ("/a%+1", None),
    ] {
        assert_eq!(reference(raw).as_deref(), want, "{raw}");
    }
}

fn segment() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "a", "api", "admin", "users", "metrics", "debug-oauth", "debug-", "quotes", "supabase", "functions", "webhooks", "stripe",
        "123e4567-e89b-12d3-a456-426614174000", "in_1", ".", "..", "%2e", "%2E", "%2e%2e", ".%2E", "%61", "%41", "%7e", "%7E", "~",
        "%2f", "%2F", "%5c", "%00", "%zz", "%", "%4", "\u{fc}", "%C3%BC", "%c3%bc", "%EF%BC%8F", "\u{ff0f}", "%C0%AF", "%c0%ae", ";x",
        ";", "%3B", "%3b", "", "-", "_", "%20", " ", "\\", "%25", "%2561", "?", "#", "+", "%2B", "@", ":", "%3A", "\u{1f600}",
    ]);
    prop::collection::vec(atoms, 1..4).prop_map(|parts| parts.concat())
}

fn path() -> impl Strategy<Value = String> {
    (prop::collection::vec(segment(), 0..7), any::<bool>()).prop_map(|(segs, trailing)| {
        let mut p = String::new();
        for s in segs {
            p.push('/');
            p.push_str(&s);
        }
        if p.is_empty() || trailing {
            p.push('/');
        }
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// For any path: refused by the edge exactly when the reference refuses it; otherwise the
    /// origin receives the reference's path and the edge applied the rule of that path.
    #[test]
    fn decide_routes_like_the_origin(raw in path()) {
        let engine = {
            static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
            ENGINE.get_or_init(|| qk().engine)
        };
        let run = |target: &str| {
            let headers = [("host", HOST), ("cf-connecting-ip", CLIENT), ("cookie", "sb-a-auth-token=1")];
            let req = RequestFacts { method: "GET", url: target, headers: &headers, peer_ip: None, cf: Default::default() };
            let mut limiter = engine.new_limiter(1);
            explain(engine, &engine.decide_standalone(&req, &mut limiter, 0, Draw::default()))
        };
        // `?` and `#` end the path: the query is kept as is, a fragment is refused.
        let (path_part, query) = match raw.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (raw.clone(), None),
        };
        let e = run(&raw);
        let expected = if raw.contains('#') || query.as_deref().is_some_and(|q| q.bytes().any(|b| b <= b' ' || b == 0x7f)) {
            None
        } else {
            reference(&path_part)
        };
        match expected {
            None => {
                prop_assert_eq!((e.action, e.status, e.reason), (Action::Reject, Some(400), Reason::BadRequest), "{}: {:#?}", raw, e);
            }
            Some(p) => {
                let forwarded = match &query { Some(q) => format!("{p}?{q}"), None => p.clone() };
                prop_assert_eq!(&e.path, &forwarded, "{}", raw);
                let origin = run(&p);
                prop_assert_eq!(&origin.path, &p);
                prop_assert_eq!(&e.route, &origin.route, "{}: edge and origin rules differ", raw);
                prop_assert_eq!((e.action, e.status, e.reason), (origin.action, origin.status, origin.reason), "{}", raw);
            }
        }
    }
}
