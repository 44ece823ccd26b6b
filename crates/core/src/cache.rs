//! The edge cache and what keeps pages up when the origin is not: which requests may be answered
//! from the Workers Cache API, under which key, which origin answers may be stored, and the
//! fallback page (origin down, maintenance mode). The shell does the I/O (`caches.default`,
//! `waitUntil`, the clock); every rule lives here, so `explain`, the playground and the worker
//! agree on what is cached.

use std::borrow::Cow;

pub use crate::bundle::{CacheSettings, EdgeCache, Fallback, Maintenance};
use crate::bundle::{Bundle, Route};
use crate::request::RequestFacts;

/// The CSP of the fallback page: a static page with no scripts, whatever the app's CSP allows.
pub const FALLBACK_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The query parameter that carries the cache version in every key; the shell adds
/// `&edgeguard-vary=…` for answers that vary on request headers.
pub const VERSION_PARAM: &str = "edgeguard-cache";

/// What the edge cache does with one forwarded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Look it up, and store a storable answer, under `key`.
    Use { key: String, rule: EdgeCache },
    /// The route caches, but not this request: why.
    Bypass { rule: EdgeCache, why: Cow<'static, str> },
}

impl Plan {
    pub fn rule(&self) -> EdgeCache {
        match self {
            Plan::Use { rule, .. } | Plan::Bypass { rule, .. } => *rule,
        }
    }
}

/// The cache plan of a request forwarded on `route` (`None`: the route has no edge cache).
/// Only GET and HEAD are looked up; a request carrying a personal credential bypasses unless
/// the route is `credentialed`. `host` and `path_and_query` are the normalized ones the router
/// used, so `/a/../b` and `/b` share a key.
pub fn plan(bundle: &Bundle, route: &Route, req: &RequestFacts, host: &str, path_and_query: &str) -> Option<Plan> {
    let rule = route.edge_cache?;
    if !matches!(req.method, "GET" | "HEAD") {
        return Some(Plan::Bypass { rule, why: Cow::Owned(format!("{} is never answered from the cache", req.method)) });
    }
    if !rule.credentialed
        && let Some(why) = personal(bundle, req)
    {
        return Some(Plan::Bypass { rule, why });
    }
    Some(Plan::Use { key: key(&bundle.cache.version, host, path_and_query), rule })
}

/// `https://<host><path>?<query>&edgeguard-cache=<version>`: the public URL, so a purge by
/// host or prefix reaches it, and the version, so changing it misses every older copy.
pub fn key(version: &str, host: &str, path_and_query: &str) -> String {
    let sep = if path_and_query.contains('?') { '&' } else { '?' };
    let mut out = String::with_capacity(host.len().saturating_add(path_and_query.len()).saturating_add(version.len()).saturating_add(32));
    out.push_str("https://");
    out.push_str(host);
    out.push_str(path_and_query);
    out.push(sep);
    out.push_str(VERSION_PARAM);
    out.push('=');
    for b in version.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a request is personal (its answer may be about one user), or `None`.
pub fn personal(bundle: &Bundle, req: &RequestFacts) -> Option<Cow<'static, str>> {
    let settings = &bundle.cache;
    if let Some(name) = settings.personal_headers.iter().find(|h| req.header(h).is_some()) {
        return Some(Cow::Owned(format!("the request carries `{name}`: its answer may be personal")));
    }
    let lane = bundle.deploy.sticky_cookie.as_str();
    let found = req.cookies().find(|(name, _)| *name != lane && settings.personal_cookies.iter().any(|g| g.matches(name)));
    found.map(|(name, _)| Cow::Owned(format!("the request carries the cookie `{name}`: its answer may be personal")))
}

/// Whether an origin answer may be stored, and the request headers it varies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storable {
    /// Store it; the answer varies on these request headers (lowercase, sorted, no duplicates).
    Yes { vary: Vec<String> },
    /// Never stored: why.
    No(&'static str),
}

/// The careful CDN's rule: only a complete success (200, 203, 204), never one that sets a
/// cookie, says `private`, `no-store` or `no-cache`, or varies on everything (`Vary: *`).
/// `Accept-Encoding` is left out of the variance: the runtime negotiates encodings itself.
pub fn storable(status: u16, cache_control: &str, set_cookie: bool, vary: &str) -> Storable {
    if !matches!(status, 200 | 203 | 204) {
        return Storable::No("status");
    }
    if set_cookie {
        return Storable::No("set-cookie");
    }
    for directive in cache_control.split(',') {
        let name = directive.split('=').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("private") || name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Storable::No("cache-control");
        }
    }
    let mut names: Vec<String> = Vec::new();
    for name in vary.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "*" {
            return Storable::No("vary");
        }
        let lower = name.to_ascii_lowercase();
        if lower != "accept-encoding" {
            names.push(lower);
        }
    }
    names.sort();
    names.dedup();
    Storable::Yes { vary: names }
}

/// Whether a request is for a page (a browser navigation: `GET`/`HEAD` accepting `text/html`),
/// the requests the fallback page answers; API calls keep problem+json. It runs for every
/// request of a policy with a fallback page, so it allocates nothing.
pub fn wants_page(req: &RequestFacts) -> bool {
    matches!(req.method, "GET" | "HEAD") && req.header("accept").is_some_and(|a| a.as_bytes().windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

/// Whether a request may reach the app during maintenance: from an allowed address, or with
/// the bypass header holding the secret (compared in constant time).
pub fn maintenance_allows(m: &Maintenance, req: &RequestFacts, client_ip: Option<core::net::IpAddr>, secret: Option<&str>) -> bool {
    if client_ip.is_some_and(|ip| m.allow_ips.iter().any(|c| c.contains(ip))) {
        return true;
    }
    match (m.bypass_header.as_deref().and_then(|h| req.header(h)), secret) {
        (Some(given), Some(secret)) if !secret.is_empty() => constant_time_eq(given.as_bytes(), secret.as_bytes()),
        _ => false,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn storable_refuses_what_a_careful_cdn_refuses() {
        assert_eq!(storable(200, "public, max-age=60", false, "RSC, Accept-Encoding, rsc"), Storable::Yes { vary: vec!["rsc".into()] });
        assert_eq!(storable(200, "", true, ""), Storable::No("set-cookie"));
        assert_eq!(storable(200, "Private, max-age=60", false, ""), Storable::No("cache-control"));
        assert_eq!(storable(200, "no-store", false, ""), Storable::No("cache-control"));
        assert_eq!(storable(200, "max-age=0, no-cache", false, ""), Storable::No("cache-control"));
        assert_eq!(storable(206, "", false, ""), Storable::No("status"));
        assert_eq!(storable(304, "", false, ""), Storable::No("status"));
        assert_eq!(storable(500, "", false, ""), Storable::No("status"));
        assert_eq!(storable(200, "", false, "*"), Storable::No("vary"));
    }

    #[test]
    fn key_carries_host_path_query_and_an_escaped_version() {
        assert_eq!(key("1", "a.example", "/p?x=1"), "https://a.example/p?x=1&edgeguard-cache=1");
        assert_eq!(key("v 2&", "a.example", "/p"), "https://a.example/p?edgeguard-cache=v%202%26");
    }

    #[test]
    fn a_page_request_accepts_html_in_any_case() {
        let req = |method, accept| {
            let headers: &'static [(&str, &str)] = match accept {
                Some("html") => &[("accept", "Text/HTML,application/xhtml+xml")],
                Some(_) => &[("accept", "application/json")],
                None => &[],
            };
            wants_page(&RequestFacts { method, url: "/", headers, peer_ip: None, cf: Default::default() })
        };
        assert!(req("GET", Some("html")) && req("HEAD", Some("html")));
        assert!(!req("POST", Some("html")) && !req("GET", Some("json")) && !req("GET", None));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
