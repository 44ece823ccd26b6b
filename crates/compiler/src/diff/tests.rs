use super::*;
use super::cidr::{canonical_cidrs, cidr_text};
use super::csp::covers;
use edgeguard_core::cidr::Cidr;
use super::headers::{cache_verdict, security_value_verdict};
use crate::{Options, compile};

const BASE: &str = r#"
version = 1
[app]
name = "t"
hosts = ["a.example"]
[https]
hsts = { max_age = "1y", include_subdomains = true }
[headers]
preset = "helmet"
[headers.set]
"X-Frame-Options" = "DENY"
[csp.directives]
default-src = ["'self'"]
script-src = ["'self'"]
object-src = ["'none'"]
[defaults]
limit = "api"
max_body = "1MiB"
[limits.api]
rate = "100/15m"
burst = 20
[api_keys.metrics]
sha256 = ["f449e8d17b6f79dd2781f6b03268f5fb48d739d96f0c6a4572e9a42d4a00112a"]
[origins.app]
url = "https://app.example"
[[routes]]
path = "/api/**"
cache = "no-store"
[[routes]]
path = "/api/admin/**"
require_cookie = "sb-*-auth-token*"
ip_allow = ["203.0.113.0/24"]
[[routes]]
path = "/api/metrics"
api_key = "metrics"
methods = ["GET"]
[[routes]]
path = "/api/debug-*"
block = 404
"#;

fn bundle(source: &str) -> Bundle {
    let out = compile(source, &Options::default());
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    out.bundle.unwrap()
}

fn changes(old: &str, new: &str) -> Vec<Change> {
    diff(&bundle(old), &bundle(new))
}

fn one(old: &str, new: &str) -> Change {
    let c = changes(old, new);
    assert_eq!(c.len(), 1, "{c:#?}");
    c.into_iter().next().unwrap()
}

#[test]
fn a_cache_that_exposes_personal_answers_is_weakened_and_a_longer_one_is_not() {
    let route = |cache: &str| format!("{BASE}[[routes]]\npath = \"/pricing\"\ncache = {cache}\n");
    let short = route("{ edge = \"1m\" }");
    let long = route("{ edge = \"1h\", stale_if_error = \"1d\" }");
    let shared = route("{ edge = \"1m\", credentialed = true }");
    let c = one(&short, &long);
    assert_eq!((c.key.as_str(), c.verdict), ("edge_cache", Verdict::Neutral), "{c:?}");
    assert_eq!(c.change, "edge cache edge 1m → edge 1h, stale_if_error 1d");
    assert_eq!(one(&short, &shared).verdict, Verdict::Weakened);
    assert_eq!(one(&shared, &short).verdict, Verdict::Strengthened);
    let edge = changes(&route("\"no-store\""), &short).into_iter().find(|c| c.key == "edge_cache");
    assert_eq!(edge.map(|c| c.verdict), Some(Verdict::Neutral), "caching what is not personal is neutral");
    // Fewer personal cookies: requests with the dropped one are cached like anyone's.
    let narrow = format!("{short}[cache]\npersonal_cookies = [\"sb-*\"]\n");
    let c = one(&short, &narrow);
    assert_eq!((c.area, c.key.as_str(), c.verdict), (Area::Cache, "personal_cookies", Verdict::Weakened), "{c:?}");
    assert_eq!(one(&narrow, &short).verdict, Verdict::Strengthened);
    let bumped = format!("{short}[cache]\nversion = \"2\"\npersonal_cookies = [\"*\"]\n");
    assert_eq!(one(&short, &bumped).verdict, Verdict::Neutral);
    let open = format!("{short}[maintenance]\nallow_ips = [\"198.51.100.0/24\"]\n");
    assert_eq!(one(&short, &open).verdict, Verdict::Weakened);
}

#[test]
fn the_review_settings_have_verdicts() {
    // Server Actions accepted where they were refused.
    let refused = BASE.replace("[defaults]\n", "[defaults]\nserver_actions = false\n");
    let c = one(&refused, BASE);
    assert_eq!((c.key.as_str(), c.verdict), ("server_actions", Verdict::Weakened), "{c:?}");
    assert_eq!(one(BASE, &refused).verdict, Verdict::Strengthened);
    // A longer IPv6 prefix gives one client more buckets.
    let wide = BASE.replace("[origins.app]", "[client_ip]\nipv6_prefix = 128\n[origins.app]");
    let c = one(BASE, &wide);
    assert_eq!((c.area, c.key.as_str(), c.verdict), (Area::ClientIp, "ipv6_prefix", Verdict::Weakened), "{c:?}");
    // A header no longer stripped.
    let strip = BASE.replace("[origins.app]", "[sanitize]\nstrip_headers = [\"x-internal\"]\n[origins.app]");
    assert_eq!(one(&strip, BASE).verdict, Verdict::Weakened);
    assert_eq!(one(BASE, &strip).verdict, Verdict::Strengthened);
    // API key guessing: not counted, or counted more loosely.
    let off = BASE.replace("[api_keys.metrics]", "[api_keys.metrics]\nfailures = \"off\"");
    let c = one(BASE, &off);
    assert_eq!((c.area, c.key.as_str(), c.verdict), (Area::ApiKeys, "failures", Verdict::Weakened), "{c:?}");
    let loose = BASE.replace("[api_keys.metrics]", "[api_keys.metrics]\nfailures = \"100/1m\"");
    let c = changes(BASE, &loose);
    assert_eq!(c.iter().map(|c| (c.key.as_str(), c.verdict)).collect::<Vec<_>>(), [("failures", Verdict::Weakened); 2], "rate and burst: {c:#?}");
    assert!(changes(&loose, BASE).iter().all(|c| c.verdict == Verdict::Strengthened));
}

#[test]
fn identical_and_reordered_policies_have_no_changes() {
    assert!(changes(BASE, BASE).is_empty());
    let reordered = BASE
        .replace("[[routes]]\npath = \"/api/debug-*\"\nblock = 404\n", "")
        .replace("version = 1\n", "version = 1\n[[routes]]\npath = \"/api/debug-*\"\nblock = 404\n")
        .replace(r#"ip_allow = ["203.0.113.0/24"]"#, r#"ip_allow = ["203.0.113.128/25", "203.0.113.0/25"]"#)
        .replace(r#"max_body = "1MiB""#, r#"max_body = "1024KiB""#);
    assert!(changes(BASE, &reordered).is_empty(), "{:#?}", changes(BASE, &reordered));
}

#[test]
fn route_rules() {
    let c = one(BASE, &BASE.replace("require_cookie = \"sb-*-auth-token*\"\n", ""));
    assert_eq!((c.area, c.subject.as_str(), c.verdict), (Area::Routes, "/api/admin/**", Verdict::Weakened));
    assert_eq!(c.change, "require_cookie \"sb-*-auth-token*\" removed");
    assert_eq!(c.label(), "route /api/admin/**");

    let c = one(BASE, &BASE.replace("require_cookie = \"sb-*-auth-token*\"", "require_cookie = \"sb-*\""));
    assert_eq!(c.verdict, Verdict::Weakened, "{c:?}");
    let c = one(&BASE.replace("require_cookie = \"sb-*-auth-token*\"", "require_cookie = \"sb-*\""), BASE);
    assert_eq!(c.verdict, Verdict::Strengthened, "{c:?}");

    let c = one(BASE, &BASE.replace("203.0.113.0/24", "203.0.0.0/16"));
    assert_eq!((c.verdict, c.change.as_str()), (Verdict::Weakened, "ip_allow widened: now also allows 203.0.0.0/16"));
    let c = one(BASE, &BASE.replace("203.0.113.0/24", "203.0.113.0/25"));
    assert_eq!(c.verdict, Verdict::Strengthened);

    let c = one(BASE, &BASE.replace("methods = [\"GET\"]", "methods = [\"GET\", \"DELETE\"]"));
    assert_eq!((c.verdict, c.change.as_str()), (Verdict::Weakened, "methods added: DELETE"));

    let c = one(BASE, &BASE.replace("api_key = \"metrics\"\n", ""));
    assert_eq!((c.verdict, c.change.as_str()), (Verdict::Weakened, "api_key metrics removed"));
}

#[test]
fn defaults_changes_are_reported_once_with_the_inheriting_routes() {
    let c = one(BASE, &BASE.replace("max_body = \"1MiB\"", "max_body = \"10MiB\""));
    assert_eq!((c.area, c.verdict), (Area::Defaults, Verdict::Weakened));
    assert_eq!(c.change, "max_body raised from 1MiB to 10MiB (and 4 routes that inherit it)");
}

#[test]
fn headers_and_hsts_are_site_wide_once() {
    let c = one(BASE, &BASE.replace("\"X-Frame-Options\" = \"DENY\"", "\"X-Frame-Options\" = \"SAMEORIGIN\""));
    assert_eq!((c.area, c.subject.as_str(), c.verdict), (Area::Headers, "X-Frame-Options", Verdict::Weakened));
    assert_eq!(c.change, "DENY → SAMEORIGIN");
    let c = one(BASE, &BASE.replace("max_age = \"1y\"", "max_age = \"1d\""));
    assert_eq!((c.area, c.subject.as_str(), c.verdict), (Area::Https, "hsts", Verdict::Weakened));
    assert_eq!(c.change, "max-age lowered from 1y to 1d");
}

#[test]
fn csp_sources_and_fallbacks() {
    let c = one(BASE, &BASE.replace("script-src = [\"'self'\"]", "script-src = [\"'self'\", \"'unsafe-inline'\"]"));
    assert_eq!((c.area, c.subject.as_str(), c.change.as_str(), c.verdict), (Area::Csp, "script-src", "'unsafe-inline' introduced", Verdict::Weakened));
    // Removing script-src falls back to default-src 'self': nothing new is allowed.
    let c = one(BASE, &BASE.replace("script-src = [\"'self'\"]\n", ""));
    assert_eq!(c.verdict, Verdict::Neutral, "{c:?}");
    let c = one(BASE, &BASE.replace("object-src = [\"'none'\"]\n", ""));
    assert_eq!(c.verdict, Verdict::Weakened, "{c:?}");
    assert!(c.change.contains("now allows 'self'"), "{c:?}");
    let c = one(BASE, &BASE.replace("script-src = [\"'self'\"]", "script-src = [\"'self'\", \"https:\"]"));
    assert_eq!(c.change, "sources added: https:");
    let c = one(&BASE.replace("script-src = [\"'self'\"]", "script-src = [\"https:\"]"), &BASE.replace("script-src = [\"'self'\"]", "script-src = [\"https:\", \"https://js.example\"]"));
    assert_eq!(c.verdict, Verdict::Neutral, "covered by https: — {c:?}");
}

#[test]
fn added_and_removed_routes_compare_with_the_rule_that_takes_over() {
    let c = one(BASE, &BASE.replace("[[routes]]\npath = \"/api/debug-*\"\nblock = 404\n", ""));
    assert_eq!((c.subject.as_str(), c.verdict), ("/api/debug-*", Verdict::Weakened));
    assert!(c.change.starts_with("removed; its paths now get /api/**: block 404 removed"), "{c:?}");

    let plain = format!("{BASE}[[routes]]\npath = \"/api/new\"\ncache = \"no-store\"\n");
    let c = one(BASE, &plain);
    assert_eq!(c.verdict, Verdict::Neutral, "{c:?}");
    let guarded = format!("{BASE}[[routes]]\npath = \"/api/new\"\ncache = \"no-store\"\nrequire_headers = [\"x-sig\"]\n");
    assert_eq!(one(BASE, &guarded).verdict, Verdict::Strengthened);
    let open = format!("{BASE}[[routes]]\npath = \"/api/admin/open\"\n");
    let c = one(BASE, &open);
    assert_eq!(c.verdict, Verdict::Weakened, "{c:?}");
    assert!(c.change.contains("compared with /api/admin/**"), "{c:?}");
}

#[test]
fn limits() {
    let c = one(BASE, &BASE.replace("rate = \"100/15m\"", "rate = \"100/1m\""));
    assert_eq!((c.area, c.subject.as_str(), c.key.as_str(), c.verdict), (Area::Limits, "api", "rate", Verdict::Weakened));
    let c = one(BASE, &BASE.replace("rate = \"100/15m\"", "rate = \"400/1h\""));
    assert_eq!(c.verdict, Verdict::Neutral);
    // `mode = "shadow"` in a policy is refused by the schema check today; flip the bundle.
    let old = bundle(BASE);
    let mut new = old.clone();
    new.limits.iter_mut().filter(|l| l.name == "api").for_each(|l| l.shadow = true);
    let c = diff(&old, &new);
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!((c[0].key.as_str(), c[0].change.as_str(), c[0].verdict), ("mode", "made shadow (counts, never refuses)", Verdict::Weakened));
    assert_eq!(diff(&new, &old)[0].verdict, Verdict::Strengthened);
    let c = one(BASE, &BASE.replace("burst = 20", "burst = 20\nscope = \"global\""));
    assert_eq!(c.verdict, Verdict::Strengthened);
    let global = BASE.replace("burst = 20", "burst = 20\nscope = \"global\"\non_error = \"deny\"");
    let c = one(&global, &global.replace("on_error = \"deny\"", "on_error = \"allow\""));
    assert_eq!((c.key.as_str(), c.verdict), ("on_error", Verdict::Weakened));
    let c = one(BASE, &BASE.replace("limit = \"api\"", "limit = \"none\""));
    assert_eq!((c.area, c.verdict), (Area::Defaults, Verdict::Weakened));
    assert!(c.change.starts_with("limit api removed (no rate limit)"), "{c:?}");
}

#[test]
fn cidr_canonical_form() {
    let c = |s: &str| {
        let (ip, p) = s.split_once('/').unwrap();
        Cidr::new(ip.parse().unwrap(), p.parse().unwrap()).unwrap()
    };
    let merged = canonical_cidrs(&[c("10.0.0.128/26"), c("10.0.0.0/25"), c("10.0.0.192/26"), c("10.0.0.5/32")]);
    assert_eq!(merged.iter().map(cidr_text).collect::<Vec<_>>(), ["10.0.0.0/24"]);
    assert_eq!(cidr_text(&c("2001:db8::/32")), "2001:db8::/32");
    assert_eq!(cidr_text(&c("203.0.113.7/32")), "203.0.113.7");
}

#[test]
fn csp_source_coverage() {
    assert!(covers("https:", "https://a.example"));
    assert!(covers("http:", "https:"));
    assert!(covers("*", "https://a.example"));
    assert!(!covers("*", "data:"));
    assert!(covers("https://*.example.com", "https://a.example.com"));
    assert!(!covers("https://*.example.com", "https://example.com"));
    assert!(covers("https://cdn.example/js/", "https://cdn.example/js/app.js"));
    assert!(!covers("'self'", "'unsafe-inline'"));
}

#[test]
fn header_ranks() {
    assert_eq!(security_value_verdict("referrer-policy", "no-referrer", "strict-origin-when-cross-origin"), Verdict::Weakened);
    assert_eq!(security_value_verdict("referrer-policy", "unsafe-url", "same-origin"), Verdict::Strengthened);
    assert_eq!(security_value_verdict("x-frame-options", "DENY", "sameorigin"), Verdict::Weakened);
    assert_eq!(security_value_verdict("permissions-policy", "camera=(), microphone=()", "camera=()"), Verdict::Weakened);
    assert_eq!(security_value_verdict("permissions-policy", "camera=(self)", "camera=()"), Verdict::Strengthened);
    assert_eq!(cache_verdict(Some("no-store"), Some("public, max-age=60")), Verdict::Weakened);
    assert_eq!(cache_verdict(Some("max-age=60"), Some("max-age=600")), Verdict::Neutral);
}

#[test]
fn a_thousand_routes_compare_in_linear_time() {
    let policy = |changed: bool| {
        let mut p = String::from("version = 1\n[limits.api]\nrate = \"1/1s\"\n[origins.a]\nurl = \"https://a.example\"\n");
        for i in 0..1000 {
            p.push_str(&format!("[[routes]]\npath = \"/r{i}/:id\"\nparams = {{ id = \"uuid\" }}\nlimit = \"api\"\n"));
            if i % 5 == 0 && !(changed && i % 100 == 0) {
                p.push_str("require_cookie = \"s*\"\n");
            }
            if i % 9 == 0 {
                p.push_str(&format!("cache = \"max-age={}\"\n", i % 3));
            }
        }
        p
    };
    let (a, b) = (bundle(&policy(false)), bundle(&policy(true)));
    let started = std::time::Instant::now();
    let c = diff(&a, &b);
    let took = started.elapsed();
    assert_eq!(c.len(), 10);
    assert!(c.iter().all(|c| c.verdict == Verdict::Weakened && c.change == "require_cookie \"s*\" removed"));
    let budget = std::time::Duration::from_millis(if cfg!(debug_assertions) { 1000 } else { 50 });
    assert!(took < budget, "diff of 2 × 1000 routes took {took:?}");
}

#[test]
fn locate_finds_keys_routes_and_tables() {
    let src = BASE.replace("/api/admin/**", "/api/admin/[...rest]");
    let find = |area: Area, subject: &str, key: &str| {
        let c = change(area, subject, key, Verdict::Neutral, String::new(), None, None);
        locate(&src, &c).map(|l| src.lines().nth(l - 1).unwrap().trim().to_owned())
    };
    assert_eq!(find(Area::Routes, "/api/admin/**", "require_cookie").as_deref(), Some("require_cookie = \"sb-*-auth-token*\""));
    assert_eq!(find(Area::Routes, "/api/admin/**", "max_body").as_deref(), Some("path = \"/api/admin/[...rest]\""));
    assert_eq!(find(Area::Https, "hsts", "hsts").as_deref(), Some("hsts = { max_age = \"1y\", include_subdomains = true }"));
    assert_eq!(find(Area::Headers, "X-Frame-Options", "X-Frame-Options").as_deref(), Some("\"X-Frame-Options\" = \"DENY\""));
    assert_eq!(find(Area::Csp, "object-src", "object-src").as_deref(), Some("object-src = [\"'none'\"]"));
    assert_eq!(find(Area::Limits, "api", "burst").as_deref(), Some("burst = 20"));
    assert_eq!(find(Area::Routes, "/nowhere", "path"), None);
}
