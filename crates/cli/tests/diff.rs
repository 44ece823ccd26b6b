//! `edgeguard diff`, run as a user runs it: crafted pairs of policies in a temporary directory,
//! one test per verdict rule, the output formats, exit codes and the 1 000-route timing.

// clippy.toml exempts `#[test]` functions; the helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use tempfile::TempDir;

fn edgeguard() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("edgeguard")
}

struct Dir(TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

/// A policy with something of every kind the diff compares.
const BASE: &str = r#"
version = 1

[app]
name = "shop"
hosts = ["shop.example", "www.shop.example"]
canonical_host = "shop.example"

[https]
redirect = true
hsts = { max_age = "1y", include_subdomains = true }

[headers]
preset = "helmet"
remove = ["Server"]

[headers.set]
"X-Frame-Options" = "DENY"
"Referrer-Policy" = "strict-origin-when-cross-origin"

[csp]
mode = "enforce"

[csp.directives]
default-src = ["'self'"]
script-src = ["'self'", "https://js.stripe.com"]
object-src = ["'none'"]
base-uri = ["'self'"]
frame-ancestors = ["'none'"]

[defaults]
limit = "api"
max_body = "10MiB"

[limits.api]
rate = "100/15m"
burst = 20

[limits.admin]
rate = "60/1m"
burst = 10

[api_keys.metrics]
header = "x-api-key"
sha256 = ["f449e8d17b6f79dd2781f6b03268f5fb48d739d96f0c6a4572e9a42d4a00112a"]

[origins.blue]
url = "https://blue.example.net"
timeout = "10s"

[origins.green]
url = "https://green.example.net"

[deploy]
active = "blue"
canary = { origin = "green", percent = 0 }

[[routes]]
path = "/api/**"
cache = "no-store"

[[routes]]
path = "/api/admin/**"
require_cookie = "sb-*-auth-token*"
ip_allow = ["203.0.113.0/24"]
ip_deny = ["203.0.113.66"]
limit = "admin"
cache = "no-store"

[[routes]]
path = "/api/admin/metrics"
methods = ["GET", "HEAD"]
api_key = "metrics"
cache = "no-store"

[[routes]]
path = "/api/webhooks/stripe"
methods = ["POST"]
require_headers = ["stripe-signature"]
max_body = "1MiB"
cache = "no-store"

[[routes]]
path = "/api/quotes/[id]/pdf"
methods = ["GET", "HEAD"]
params = { id = "uuid" }

[[routes]]
path = "/api/debug-*"
block = 404
cache = "no-store"

[[routes]]
path = "/_next/static/**"
methods = ["GET", "HEAD"]
limit = "none"
cache = "public, max-age=31536000, immutable"
"#;

/// BASE with tables, routes and keys in another order, `:id` for `[id]`, equal sizes and CIDR
/// lists written differently: the same policy.
const REORDERED: &str = r#"
version = 1

[[routes]]
path = "/_next/static/**"
cache = "public, max-age=31536000, immutable"
limit = "none"
methods = ["HEAD", "GET"]

[[routes]]
path = "/api/debug-*"
cache = "no-store"
block = 404

[[routes]]
path = "/api/quotes/:id/pdf"
params = { id = "uuid" }
methods = ["HEAD", "GET"]

[[routes]]
path = "/api/webhooks/stripe"
cache = "no-store"
max_body = "1024KiB"
require_headers = ["Stripe-Signature"]
methods = ["POST"]

[[routes]]
path = "/api/admin/metrics"
cache = "no-store"
api_key = "metrics"
methods = ["HEAD", "GET"]

[[routes]]
path = "/api/admin/**"
cache = "no-store"
limit = "admin"
ip_deny = ["203.0.113.66/32"]
ip_allow = ["203.0.113.128/25", "203.0.113.0/25"]
require_cookie = "sb-*-auth-token*"

[[routes]]
path = "/api/**"
cache = "no-store"

[deploy]
canary = { percent = 0, origin = "green" }
active = "blue"

[origins.green]
url = "https://green.example.net"

[origins.blue]
timeout = "10s"
url = "https://blue.example.net"

[api_keys.metrics]
sha256 = ["f449e8d17b6f79dd2781f6b03268f5fb48d739d96f0c6a4572e9a42d4a00112a"]
header = "x-api-key"

[limits.admin]
burst = 10
rate = "60/1m"

[limits.api]
burst = 20
rate = "100/15m"

[defaults]
max_body = "10MiB"
limit = "api"

[csp.directives]
frame-ancestors = ["'none'"]
base-uri = ["'self'"]
object-src = ["'none'"]
script-src = ["https://js.stripe.com", "'self'"]
default-src = ["'self'"]

[csp]
mode = "enforce"

[headers.set]
"referrer-policy" = "strict-origin-when-cross-origin"
"x-frame-options" = "DENY"

[headers]
remove = ["server"]
preset = "helmet"

[https]
hsts = { include_subdomains = true, max_age = 31536000 }
redirect = true

[app]
canonical_host = "shop.example"
hosts = ["www.shop.example", "shop.example"]
name = "shop"
"#;

/// BASE with `from` replaced by `to` (which must occur exactly once).
fn edit(from: &str, to: &str) -> String {
    assert_eq!(BASE.matches(from).count(), 1, "`{from}` must occur once in BASE");
    BASE.replacen(from, to, 1)
}

fn run(dir: &Dir, old: &str, new: &str, args: &[&str]) -> Output {
    let a = dir.write("old.toml", old);
    let b = dir.write("new.toml", new);
    edgeguard().arg("diff").arg(&a).arg(&b).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", stdout(out), String::from_utf8_lossy(&out.stderr))
    })
}

/// Every change as (area, subject, verdict, change).
fn changes(old: &str, new: &str) -> Vec<(String, String, String, String)> {
    let dir = Dir::new();
    let out = run(&dir, old, new, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    json(&out)["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_owned();
            (s("area"), s("subject"), s("verdict"), s("change"))
        })
        .collect()
}

/// The one change between two policies.
fn only(old: &str, new: &str) -> (String, String, String, String) {
    let all = changes(old, new);
    assert_eq!(all.len(), 1, "expected exactly one change, got {all:#?}");
    all.into_iter().next().unwrap()
}

#[track_caller]
fn expect(change: &(String, String, String, String), area: &str, subject: &str, verdict: &str, text: &str) {
    assert_eq!((change.0.as_str(), change.1.as_str(), change.2.as_str()), (area, subject, verdict), "{change:?}");
    assert!(change.3.contains(text), "`{}` should mention `{text}`", change.3);
}

// ---- no changes -------------------------------------------------------------------------------

#[test]
fn a_policy_against_itself_has_no_changes() {
    let dir = Dir::new();
    let out = run(&dir, BASE, BASE, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "no changes\n");
    let v = json(&run(&dir, BASE, BASE, &["--format", "json"]));
    assert_eq!(v["summary"], serde_json::json!({ "weakened": 0, "strengthened": 0, "neutral": 0 }));
    assert_eq!(v["changes"], serde_json::json!([]));
}

#[test]
fn reordering_tables_routes_and_keys_is_no_change() {
    assert_eq!(changes(BASE, REORDERED), []);
    assert_eq!(changes(REORDERED, BASE), []);
}

#[test]
fn quotekit_against_itself_has_no_changes() {
    let quotekit = std::fs::read_to_string(fixture("quotekit.toml")).unwrap();
    assert_eq!(changes(&quotekit, &quotekit), []);
}

// ---- https and HSTS ---------------------------------------------------------------------------

#[test]
fn hsts_lowered_is_weakened_and_raised_is_strengthened() {
    let lower = edit(r#"max_age = "1y""#, r#"max_age = "1d""#);
    expect(&only(BASE, &lower), "https", "hsts", "weakened", "max-age lowered from 1y to 1d");
    expect(&only(&lower, BASE), "https", "hsts", "strengthened", "max-age raised from 1d to 1y");
}

#[test]
fn hsts_removed_is_weakened() {
    let off = edit("hsts = { max_age = \"1y\", include_subdomains = true }", "hsts = false");
    expect(&only(BASE, &off), "https", "hsts", "weakened", "Strict-Transport-Security removed");
    expect(&only(&off, BASE), "https", "hsts", "strengthened", "added");
}

#[test]
fn include_subdomains_dropped_is_weakened() {
    let without = edit("include_subdomains = true", "include_subdomains = false");
    expect(&only(BASE, &without), "https", "hsts", "weakened", "includeSubDomains dropped");
}

#[test]
fn https_redirect_turned_off_is_weakened() {
    let off = edit("redirect = true", "redirect = false");
    let all = changes(BASE, &off);
    assert!(all.iter().any(|c| c.0 == "https" && c.1 == "redirect" && c.2 == "weakened"), "{all:#?}");
    expect(&only(&off, BASE), "https", "redirect", "strengthened", "turned on");
}

#[test]
fn hosts_added_is_weakened_and_removed_strengthened() {
    let more = edit(r#"hosts = ["shop.example", "www.shop.example"]"#, r#"hosts = ["shop.example", "www.shop.example", "shop.example.org"]"#);
    expect(&only(BASE, &more), "app", "hosts", "weakened", "hosts added: shop.example.org");
    expect(&only(&more, BASE), "app", "hosts", "strengthened", "hosts removed: shop.example.org");
}

// ---- security headers -------------------------------------------------------------------------

#[test]
fn x_frame_options_deny_to_sameorigin_is_weakened() {
    let lax = edit(r#""X-Frame-Options" = "DENY""#, r#""X-Frame-Options" = "SAMEORIGIN""#);
    expect(&only(BASE, &lax), "headers", "X-Frame-Options", "weakened", "DENY → SAMEORIGIN");
    expect(&only(&lax, BASE), "headers", "X-Frame-Options", "strengthened", "SAMEORIGIN → DENY");
}

#[test]
fn referrer_policy_to_a_laxer_one_is_weakened() {
    let lax = edit(r#""Referrer-Policy" = "strict-origin-when-cross-origin""#, r#""Referrer-Policy" = "unsafe-url""#);
    expect(&only(BASE, &lax), "headers", "Referrer-Policy", "weakened", "unsafe-url");
    let strict = edit(r#""Referrer-Policy" = "strict-origin-when-cross-origin""#, r#""Referrer-Policy" = "no-referrer""#);
    expect(&only(BASE, &strict), "headers", "Referrer-Policy", "strengthened", "no-referrer");
}

#[test]
fn a_security_header_removed_is_weakened() {
    let dropped = edit(r#"remove = ["Server"]"#, r#"remove = ["Server", "X-Content-Type-Options"]"#);
    expect(&only(BASE, &dropped), "headers", "X-Content-Type-Options", "weakened", "nosniff → removed from responses");
    expect(&only(&dropped, BASE), "headers", "X-Content-Type-Options", "strengthened", "removed from responses → nosniff");
    // On one route only: reported on that route.
    let on_route = edit("path = \"/api/webhooks/stripe\"\n", "path = \"/api/webhooks/stripe\"\nheaders = { remove = [\"X-Frame-Options\"] }\n");
    expect(&only(BASE, &on_route), "routes", "/api/webhooks/stripe", "weakened", "header X-Frame-Options: DENY → removed from responses");
}

#[test]
fn no_longer_stripping_server_is_weakened() {
    let kept = edit(r#"remove = ["Server"]"#, "remove = []");
    expect(&only(BASE, &kept), "headers", "Server", "weakened", "removed from responses → not set");
}

// ---- CSP --------------------------------------------------------------------------------------

#[test]
fn csp_source_added_is_weakened_and_removed_strengthened() {
    let more = edit(r#"script-src = ["'self'", "https://js.stripe.com"]"#, r#"script-src = ["'self'", "https://js.stripe.com", "https://cdn.example.org"]"#);
    expect(&only(BASE, &more), "csp", "script-src", "weakened", "sources added: https://cdn.example.org");
    expect(&only(&more, BASE), "csp", "script-src", "strengthened", "sources removed: https://cdn.example.org");
}

#[test]
fn unsafe_inline_introduced_is_weakened() {
    let unsafe_inline = edit(r#"script-src = ["'self'", "https://js.stripe.com"]"#, r#"script-src = ["'self'", "'unsafe-inline'", "https://js.stripe.com"]"#);
    expect(&only(BASE, &unsafe_inline), "csp", "script-src", "weakened", "'unsafe-inline' introduced");
    let unsafe_eval = edit(r#"script-src = ["'self'", "https://js.stripe.com"]"#, r#"script-src = ["'self'", "https://js.stripe.com", "'unsafe-eval'"]"#);
    expect(&only(BASE, &unsafe_eval), "csp", "script-src", "weakened", "'unsafe-eval' introduced");
}

#[test]
fn csp_report_only_or_off_is_weakened() {
    let report_only = edit(r#"mode = "enforce""#, r#"mode = "report-only""#);
    expect(&only(BASE, &report_only), "csp", "mode", "weakened", "enforce → report-only");
    expect(&only(&report_only, BASE), "csp", "mode", "strengthened", "report-only → enforce");
    let off = edit(r#"mode = "enforce""#, r#"mode = "off""#);
    expect(&only(BASE, &off), "csp", "mode", "weakened", "enforce → off");
}

#[test]
fn csp_directive_removed_or_loosened_is_weakened() {
    // frame-ancestors has no fallback: nothing restricts framing any more.
    let no_frame = edit("frame-ancestors = [\"'none'\"]\n", "");
    expect(&only(BASE, &no_frame), "csp", "frame-ancestors", "weakened", "directive removed (nothing restricts it now)");
    // object-src falls back to default-src 'self', which allows more than 'none'.
    let no_object = edit("object-src = [\"'none'\"]\n", "");
    expect(&only(BASE, &no_object), "csp", "object-src", "weakened", "falls back to default-src");
    let base_uri = edit(r#"base-uri = ["'self'"]"#, r#"base-uri = ["'self'", "https:"]"#);
    expect(&only(BASE, &base_uri), "csp", "base-uri", "weakened", "sources added: https:");
    // A source already covered by another is no loosening.
    let covered = edit(r#"base-uri = ["'self'"]"#, r#"base-uri = ["'self'", "https:", "https://a.example"]"#);
    expect(&only(&base_uri, &covered), "csp", "base-uri", "neutral", "same effect");
}

// ---- routes: access rules ---------------------------------------------------------------------

#[test]
fn require_cookie_removed_is_weakened_and_added_strengthened() {
    let none = edit("require_cookie = \"sb-*-auth-token*\"\n", "");
    expect(&only(BASE, &none), "routes", "/api/admin/**", "weakened", "require_cookie \"sb-*-auth-token*\" removed");
    expect(&only(&none, BASE), "routes", "/api/admin/**", "strengthened", "require_cookie \"sb-*-auth-token*\" added");
    let wider = edit(r#"require_cookie = "sb-*-auth-token*""#, r#"require_cookie = "*""#);
    expect(&only(BASE, &wider), "routes", "/api/admin/**", "weakened", "widened");
}

#[test]
fn require_session_removed_is_weakened_and_a_changed_claim_is_shown() {
    let quotekit = std::fs::read_to_string(fixture("quotekit.toml")).unwrap();
    let rule = r#"require_session = { source = "supabase", claims = { "app_metadata.role" = "admin" } }"#;
    assert!(quotekit.contains(rule));
    let none = quotekit.replace(&format!("{rule}\n"), "");
    expect(&only(&quotekit, &none), "routes", "/api/admin/**", "weakened", r#"require_session "supabase" { app_metadata.role = admin } removed"#);
    expect(&only(&none, &quotekit), "routes", "/api/admin/**", "strengthened", "added");
    let owners = quotekit.replace(rule, r#"require_session = { source = "supabase", claims = { "app_metadata.role" = ["admin", "owner"] } }"#);
    expect(&only(&quotekit, &owners), "routes", "/api/admin/**", "weakened", "admin|owner");
    expect(&only(&owners, &quotekit), "routes", "/api/admin/**", "strengthened", "→");
    let any_user = quotekit.replace(rule, r#"require_session = "supabase""#);
    expect(&only(&quotekit, &any_user), "routes", "/api/admin/**", "weakened", r#"→ "supabase""#);
}

#[test]
fn api_key_removed_is_weakened() {
    let none = edit("api_key = \"metrics\"\n", "");
    expect(&only(BASE, &none), "routes", "/api/admin/metrics", "weakened", "api_key metrics removed");
    expect(&only(&none, BASE), "routes", "/api/admin/metrics", "strengthened", "api_key metrics required");
}

#[test]
fn ip_allow_removed_or_widened_is_weakened() {
    let none = edit("ip_allow = [\"203.0.113.0/24\"]\n", "");
    expect(&only(BASE, &none), "routes", "/api/admin/**", "weakened", "ip_allow removed");
    expect(&only(&none, BASE), "routes", "/api/admin/**", "strengthened", "ip_allow added: 203.0.113.0/24");
    let wider = edit(r#"ip_allow = ["203.0.113.0/24"]"#, r#"ip_allow = ["203.0.113.0/24", "198.51.100.0/24"]"#);
    expect(&only(BASE, &wider), "routes", "/api/admin/**", "weakened", "ip_allow widened: now also allows 198.51.100.0/24");
    let narrower = edit(r#"ip_allow = ["203.0.113.0/24"]"#, r#"ip_allow = ["203.0.113.0/26"]"#);
    expect(&only(BASE, &narrower), "routes", "/api/admin/**", "strengthened", "ip_allow narrowed");
}

#[test]
fn ip_deny_entries_removed_is_weakened() {
    let none = edit("ip_deny = [\"203.0.113.66\"]\n", "");
    expect(&only(BASE, &none), "routes", "/api/admin/**", "weakened", "ip_deny entries removed: 203.0.113.66");
    expect(&only(&none, BASE), "routes", "/api/admin/**", "strengthened", "ip_deny entries added: 203.0.113.66");
}

#[test]
fn require_headers_removed_is_weakened() {
    let none = edit("require_headers = [\"stripe-signature\"]\n", "");
    expect(&only(BASE, &none), "routes", "/api/webhooks/stripe", "weakened", "require_headers removed: stripe-signature");
    expect(&only(&none, BASE), "routes", "/api/webhooks/stripe", "strengthened", "require_headers added: stripe-signature");
}

#[test]
fn methods_added_is_weakened_and_removed_strengthened() {
    let more = edit("methods = [\"POST\"]", "methods = [\"POST\", \"PUT\"]");
    expect(&only(BASE, &more), "routes", "/api/webhooks/stripe", "weakened", "methods added: PUT");
    expect(&only(&more, BASE), "routes", "/api/webhooks/stripe", "strengthened", "methods removed: PUT");
}

#[test]
fn max_body_raised_or_removed_is_weakened() {
    let raised = edit(r#"max_body = "1MiB""#, r#"max_body = "5MiB""#);
    expect(&only(BASE, &raised), "routes", "/api/webhooks/stripe", "weakened", "max_body raised from 1MiB to 5MiB");
    expect(&only(&raised, BASE), "routes", "/api/webhooks/stripe", "strengthened", "max_body lowered");
    // In [defaults]: reported once, with the routes that inherit it.
    let no_default = edit("max_body = \"10MiB\"\n", "");
    expect(&only(BASE, &no_default), "defaults", "defaults", "weakened", "max_body 10MiB removed (no size limit) (and 6 routes that inherit it)");
}

#[test]
fn block_removed_is_weakened_and_added_strengthened() {
    let unblocked = edit("block = 404\n", "");
    expect(&only(BASE, &unblocked), "routes", "/api/debug-*", "weakened", "block 404 removed (reachable in production)");
    expect(&only(&unblocked, BASE), "routes", "/api/debug-*", "strengthened", "blocked with 404");
}

#[test]
fn typed_parameter_made_untyped_is_weakened() {
    let any = edit("params = { id = \"uuid\" }\n", "");
    expect(&only(BASE, &any), "routes", "/api/quotes/:id/pdf", "weakened", "parameter :id accepts any segment (was uuid)");
}

// ---- routes: limits ---------------------------------------------------------------------------

#[test]
fn limit_raised_is_weakened_and_lowered_strengthened() {
    let raised = edit(r#"rate = "100/15m""#, r#"rate = "300/15m""#);
    expect(&only(BASE, &raised), "limits", "api", "weakened", "rate raised from 100/15m to 300/15m");
    expect(&only(&raised, BASE), "limits", "api", "strengthened", "rate lowered");
    let burst = edit("burst = 20", "burst = 50");
    expect(&only(BASE, &burst), "limits", "api", "weakened", "burst raised from 20 to 50");
    // The same rate written another way.
    let same = edit(r#"rate = "100/15m""#, r#"rate = "400/1h""#);
    expect(&only(BASE, &same), "limits", "api", "neutral", "same rate");
}

#[test]
fn limit_removed_from_a_route_is_weakened() {
    let none = edit("limit = \"admin\"\n", "limit = \"none\"\n");
    expect(&only(BASE, &none), "routes", "/api/admin/**", "weakened", "limit admin removed (no rate limit)");
    // Switching to a laxer limit is compared by value.
    let laxer = edit("limit = \"admin\"\n", "limit = \"api\"\n");
    let all = changes(BASE, &laxer);
    assert!(all.iter().all(|c| c.1 == "/api/admin/**"), "{all:#?}");
    assert!(all.iter().any(|c| c.2 == "weakened" && c.3.contains("burst raised from 10 to 20")), "{all:#?}");
}

#[test]
fn limit_scope_to_local_is_weakened() {
    let global = edit("burst = 20", "burst = 20\nscope = \"global\"");
    expect(&only(&global, BASE), "limits", "api", "weakened", "scope global → local");
    expect(&only(BASE, &global), "limits", "api", "strengthened", "scope local → global");
}

/// `mode = "shadow"` is compared from bundles here: the bundle is written the way `edgeguard
/// compile` writes it, with the one flag flipped.
#[test]
fn limit_made_shadow_is_weakened() {
    let dir = Dir::new();
    let compiled = edgeguard_compiler::compile(BASE, &edgeguard_compiler::Options::default());
    let mut bundle = compiled.bundle.unwrap();
    let old = dir.write("old.bundle", bundle.to_bytes().unwrap());
    for limit in bundle.limits.iter_mut().filter(|l| l.name == "api") {
        limit.shadow = true;
    }
    let new = dir.write("new.bundle", bundle.to_bytes().unwrap());
    let out = edgeguard().arg("diff").arg(&old).arg(&new).args(["--format", "json"]).output().unwrap();
    let v = json(&out);
    assert_eq!(v["summary"], serde_json::json!({ "weakened": 1, "strengthened": 0, "neutral": 0 }), "{v}");
    assert_eq!(v["changes"][0]["subject"], "api");
    assert_eq!(v["changes"][0]["change"], "made shadow (counts, never refuses)");
    let back = edgeguard().arg("diff").arg(&new).arg(&old).args(["--format", "json"]).output().unwrap();
    assert_eq!(json(&back)["changes"][0]["verdict"], "strengthened");
}

// ---- routes added and removed -----------------------------------------------------------------

#[test]
fn removing_a_route_with_auth_is_weakened() {
    let gone = edit("[[routes]]\npath = \"/api/admin/metrics\"\nmethods = [\"GET\", \"HEAD\"]\napi_key = \"metrics\"\ncache = \"no-store\"\n", "");
    let c = only(BASE, &gone);
    expect(&c, "routes", "/api/admin/metrics", "weakened", "removed; its paths now get /api/admin/**");
    // /api/admin/** requires the cookie, but no API key, and allows every method.
    assert!(c.3.contains("api_key metrics removed"), "{c:?}");
}

#[test]
fn a_new_route_with_only_more_restrictions_is_strengthened() {
    let added = format!("{BASE}\n[[routes]]\npath = \"/api/orders\"\nmethods = [\"GET\"]\nrequire_cookie = \"session\"\ncache = \"no-store\"\n");
    expect(&only(BASE, &added), "routes", "/api/orders", "strengthened", "added; compared with /api/**");
}

#[test]
fn a_new_route_with_the_same_rules_is_neutral() {
    let added = format!("{BASE}\n[[routes]]\npath = \"/api/orders\"\ncache = \"no-store\"\n");
    expect(&only(BASE, &added), "routes", "/api/orders", "neutral", "same rules as /api/**");
    let elsewhere = format!("{BASE}\n[[routes]]\npath = \"/about\"\n");
    expect(&only(BASE, &elsewhere), "routes", "/about", "neutral", "same rules as [defaults]");
}

#[test]
fn a_new_route_that_opens_up_is_weakened() {
    let added = format!("{BASE}\n[[routes]]\npath = \"/api/admin/export\"\n");
    let c = only(BASE, &added);
    expect(&c, "routes", "/api/admin/export", "weakened", "compared with /api/admin/**");
    assert!(c.3.contains("require_cookie \"sb-*-auth-token*\" removed"), "{c:?}");
}

// ---- neutral changes --------------------------------------------------------------------------

#[test]
fn operational_changes_are_neutral() {
    expect(&only(BASE, &edit(r#"timeout = "10s""#, r#"timeout = "5s""#)), "origins", "blue", "neutral", "timeout 10s → 5s");
    expect(&only(BASE, &edit("percent = 0", "percent = 5")), "deploy", "canary", "neutral", "green 0.00% → green 5.00%");
    let cache = edit(r#"cache = "public, max-age=31536000, immutable""#, r#"cache = "public, max-age=86400""#);
    expect(&only(BASE, &cache), "routes", "/_next/static/**", "neutral", "cache public, max-age=31536000, immutable → public, max-age=86400");
    // Losing no-store is a security-relevant cache change.
    let stored = edit("path = \"/api/**\"\ncache = \"no-store\"", "path = \"/api/**\"\ncache = \"private, max-age=60\"");
    expect(&only(BASE, &stored), "routes", "/api/**", "neutral", "no-store → private");
    let public = edit("path = \"/api/**\"\ncache = \"no-store\"", "path = \"/api/**\"\ncache = \"public, max-age=60\"");
    expect(&only(BASE, &public), "routes", "/api/**", "weakened", "no-store → public, max-age=60");
}

// ---- the QuoteKit fixture ---------------------------------------------------------------------

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(name)
}

#[test]
fn quotekit_with_the_debug_block_removed_and_hsts_lowered() {
    let original = std::fs::read_to_string(fixture("quotekit.toml")).unwrap();
    let debug_block = "[[routes]]\npath = \"/api/debug-*\"\nblock = 404\nonly_in = [\"production\"]\n";
    assert_eq!(original.matches(debug_block).count(), 1, "the fixture changed; update this test");
    let hsts = r#"hsts = { max_age = "1y", include_subdomains = true, preload = false }"#;
    assert_eq!(original.matches(hsts).count(), 1, "the fixture changed; update this test");
    let changed = original
        .replace(debug_block, "[[routes]]\npath = \"/api/debug-*\"\n")
        .replace(hsts, r#"hsts = { max_age = "1d", include_subdomains = true, preload = false }"#);

    let dir = Dir::new();
    let old = dir.write("quotekit.toml", &original);
    let new = dir.write("quotekit-new.toml", &changed);
    let out = edgeguard().arg("diff").arg(&old).arg(&new).args(["--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["summary"], serde_json::json!({ "weakened": 2, "strengthened": 0, "neutral": 0 }), "{v:#}");
    let got: Vec<(&str, &str, &str)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["area"].as_str().unwrap(), c["subject"].as_str().unwrap(), c["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [("https", "hsts", "weakened"), ("routes", "/api/debug-*", "weakened")]);

    edgeguard()
        .arg("diff")
        .arg(&old)
        .arg(&new)
        .assert()
        .success()
        .stdout(predicate::str::contains("- weakened     https hsts: max-age lowered from 1y to 1d"))
        .stdout(predicate::str::contains("- weakened     route /api/debug-*: block 404 removed (reachable in production)"))
        .stdout(predicate::str::ends_with("\n2 weakened, 0 strengthened, 0 neutral\n"));

    // The whole route removed: its paths fall back to /api/**, which does not block them.
    let without = original.replace(&format!("{debug_block}cache = \"no-store\"\n"), "");
    let c = only(&original, &without);
    expect(&c, "routes", "/api/debug-*", "weakened", "removed; its paths now get /api/**: block 404 removed");
}

#[test]
fn env_applies_to_both_policies() {
    let gated = edit("block = 404\n", "block = 404\nonly_in = [\"production\"]\n");
    let unblocked = edit("block = 404\n", "");
    // In production the route is blocked in `gated` only; in staging in neither.
    assert_eq!(changes(&unblocked, &gated).len(), 1);
    let dir = Dir::new();
    let out = run(&dir, &unblocked, &gated, &["--env", "staging"]);
    assert_eq!((out.status.code(), stdout(&out).as_str()), (Some(0), "no changes\n"));
}

// ---- exit codes -------------------------------------------------------------------------------

#[test]
fn fail_on_weakened() {
    let dir = Dir::new();
    let weaker = edit("require_cookie = \"sb-*-auth-token*\"\n", "");
    assert_eq!(run(&dir, BASE, &weaker, &["--fail-on", "weakened"]).status.code(), Some(1));
    assert_eq!(run(&dir, BASE, &weaker, &[]).status.code(), Some(0), "without --fail-on a diff never fails");
    // Only strengthened or neutral changes pass.
    assert_eq!(run(&dir, &weaker, BASE, &["--fail-on", "weakened"]).status.code(), Some(0));
    let neutral = edit(r#"timeout = "10s""#, r#"timeout = "5s""#);
    assert_eq!(run(&dir, BASE, &neutral, &["--fail-on", "weakened"]).status.code(), Some(0));
    assert_eq!(run(&dir, BASE, BASE, &["--fail-on", "weakened"]).status.code(), Some(0));
}

#[test]
fn fail_on_any() {
    let dir = Dir::new();
    let neutral = edit(r#"timeout = "10s""#, r#"timeout = "5s""#);
    assert_eq!(run(&dir, BASE, &neutral, &["--fail-on", "any"]).status.code(), Some(1));
    assert_eq!(run(&dir, BASE, REORDERED, &["--fail-on", "any"]).status.code(), Some(0));
}

#[test]
fn compile_errors_exit_1_and_are_printed() {
    let dir = Dir::new();
    let broken = edit("limit = \"admin\"\n", "limit = \"admn\"\n");
    let out = run(&dir, BASE, &broken, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "", "nothing on stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("limit `admn` is not defined"), "{stderr}");
    assert!(stderr.contains("new.toml: 1 error"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = Dir::new();
    let a = dir.write("a.toml", BASE);
    edgeguard().arg("diff").arg(&a).arg(dir.0.path().join("missing.toml")).assert().code(2).stderr(predicate::str::contains("cannot read"));
    edgeguard().arg("diff").arg(&a).assert().code(2);
    edgeguard().arg("diff").arg(&a).arg(&a).args(["--format", "yaml"]).assert().code(2);
    edgeguard().arg("diff").arg(&a).arg(&a).args(["--fail-on", "neutral"]).assert().code(2);
    // Bundle magic with garbage after it.
    let bad = dir.write("bad.bundle", b"EGB\x01\x02\x00\x00\x00garbage");
    edgeguard().arg("diff").arg(&a).arg(&bad).assert().code(2).stderr(predicate::str::contains("cannot load the bundle"));
}

#[test]
fn bundles_and_policies_compare() {
    let dir = Dir::new();
    let policy = dir.write("policy.toml", BASE);
    let bundle = dir.0.path().join("policy.bundle");
    edgeguard().arg("compile").arg(&policy).arg("-o").arg(&bundle).assert().success();
    edgeguard().arg("diff").arg(&bundle).arg(&policy).assert().success().stdout("no changes\n");
    let weaker = dir.write("weaker.toml", edit("api_key = \"metrics\"\n", ""));
    edgeguard()
        .arg("diff")
        .arg(&bundle)
        .arg(&weaker)
        .assert()
        .success()
        .stdout(predicate::str::contains("- weakened     route /api/admin/metrics: api_key metrics removed"));
}

// ---- formats ----------------------------------------------------------------------------------

fn mixed() -> String {
    // Two weakened, one strengthened, one neutral.
    edit("require_cookie = \"sb-*-auth-token*\"\n", "")
        .replace(r#"max_age = "1y""#, r#"max_age = "1d""#)
        .replace("require_headers = [\"stripe-signature\"]", "require_headers = [\"stripe-signature\", \"x-request-time\"]")
        .replace(r#"timeout = "10s""#, r#"timeout = "5s""#)
}

#[test]
fn json_shape() {
    let dir = Dir::new();
    let v = json(&run(&dir, BASE, &mixed(), &["--format", "json"]));
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&v), ["changes", "summary"]);
    assert_eq!(v["summary"], serde_json::json!({ "weakened": 2, "strengthened": 1, "neutral": 1 }));
    let list = v["changes"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    for c in list {
        assert_eq!(keys(c), ["area", "change", "new", "old", "subject", "verdict"]);
    }
    let cookie = list.iter().find(|c| c["subject"] == "/api/admin/**").unwrap();
    assert_eq!(cookie["area"], "routes");
    assert_eq!(cookie["verdict"], "weakened");
    assert_eq!(cookie["old"], "sb-*-auth-token*");
    assert_eq!(cookie["new"], Value::Null);
    let hsts = list.iter().find(|c| c["subject"] == "hsts").unwrap();
    assert_eq!(hsts["old"], "max-age=31536000; includeSubDomains");
    assert_eq!(hsts["new"], "max-age=86400; includeSubDomains");
}

#[test]
fn markdown_shape() {
    let dir = Dir::new();
    let out = run(&dir, BASE, &mixed(), &["--format", "markdown"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "2 weakened, 1 strengthened, 1 neutral");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "| verdict | area | subject | change |");
    assert_eq!(lines[3], "|---|---|---|---|");
    assert_eq!(lines.len(), 8, "{text}");
    assert!(lines[4].starts_with("| **weakened** | "), "weakened first: {text}");
    assert!(lines.contains(&"| **weakened** | routes | `/api/admin/**` | require_cookie \"sb-*-auth-token*\" removed |"), "{text}");
    assert!(lines[7].starts_with("| neutral | origins | `blue` |"), "{text}");
}

#[test]
fn github_annotations_point_at_the_new_policy() {
    let dir = Dir::new();
    let new_source = mixed();
    let out = run(&dir, BASE, &new_source, &["--format", "github"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one per weakened change: {text}");
    let new_path = dir.0.path().join("new.toml").display().to_string();
    let line_of = |needle: &str| new_source.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let hsts = lines.iter().find(|l| l.contains("hsts")).unwrap();
    assert!(hsts.starts_with(&format!("::warning file={},line={},", new_path.replace(':', "%3A").replace(',', "%2C"), line_of("hsts = {"))), "{hsts}");
    // The cookie line is gone from NEW: the annotation points at the route's path.
    let cookie = lines.iter().find(|l| l.contains("require_cookie")).unwrap();
    assert!(cookie.contains(&format!(",line={},", line_of("path = \"/api/admin/**\""))), "{cookie}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 weakened, 1 strengthened, 1 neutral"));

    let failing = run(&dir, BASE, &new_source, &["--format", "github", "--fail-on", "weakened"]);
    assert_eq!(failing.status.code(), Some(1));
    assert!(stdout(&failing).lines().all(|l| l.starts_with("::error ")), "{}", stdout(&failing));
}

#[test]
fn sarif_shape() {
    let dir = Dir::new();
    let out = run(&dir, BASE, &mixed(), &["--format", "sarif"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let ids: Vec<&str> = results.iter().map(|r| r["ruleId"].as_str().unwrap()).collect();
    assert_eq!(ids.iter().filter(|i| **i == "diff-weakened").count(), 2);
    assert!(ids.contains(&"diff-strengthened") && ids.contains(&"diff-neutral"));
    let weakened = results.iter().find(|r| r["ruleId"] == "diff-weakened").unwrap();
    assert_eq!(weakened["level"], "warning");
    let location = &weakened["locations"][0]["physicalLocation"];
    assert!(location["artifactLocation"]["uri"].as_str().unwrap().ends_with("new.toml"));
    assert!(location["region"]["startLine"].as_u64().unwrap() > 1);
    let rules = v["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
}

// ---- scale ------------------------------------------------------------------------------------

/// 1 000 routes with a mix of rules; `changed` alters every 100th route and adds five.
fn thousand_routes(changed: bool) -> String {
    let mut p = String::from(
        "version = 1\n[app]\nhosts = [\"big.example\"]\n[defaults]\nlimit = \"api\"\nmax_body = \"1MiB\"\n\
         [limits.api]\nrate = \"100/15m\"\n[limits.admin]\nrate = \"10/1m\"\n\
         [api_keys.k]\nsha256 = [\"f449e8d17b6f79dd2781f6b03268f5fb48d739d96f0c6a4572e9a42d4a00112a\"]\n\
         [origins.app]\nurl = \"https://app.example\"\n",
    );
    for i in 0..1000 {
        p.push_str(&format!("[[routes]]\npath = \"/api/s{i}/:id/x\"\nparams = {{ id = \"uuid\" }}\n"));
        p.push_str(if changed && i % 100 == 0 { "methods = [\"GET\", \"POST\", \"DELETE\"]\n" } else { "methods = [\"GET\", \"POST\"]\n" });
        if i % 3 == 0 {
            p.push_str("cache = \"no-store\"\n");
        }
        if i % 5 == 0 {
            p.push_str("require_cookie = \"sb-*-auth-token*\"\n");
        }
        if i % 7 == 0 {
            p.push_str("limit = \"admin\"\n");
        }
        if i % 11 == 0 {
            p.push_str("api_key = \"k\"\n");
        }
        if i % 13 == 0 {
            p.push_str(&format!("headers = {{ set = {{ \"X-Shard\" = \"{}\" }} }}\n", i % 4));
        }
    }
    if changed {
        for k in 0..5 {
            p.push_str(&format!("[[routes]]\npath = \"/new/{k}\"\n"));
        }
    }
    p
}

#[test]
fn two_thousand_route_policies_diff_quickly() {
    let dir = Dir::new();
    let a = dir.write("a.toml", thousand_routes(false));
    let b = dir.write("b.toml", thousand_routes(true));
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let out = edgeguard().arg("diff").arg(&a).arg(&b).args(["--format", "json"]).output().unwrap();
        best = best.min(started.elapsed());
        let v = json(&out);
        assert_eq!(v["summary"], serde_json::json!({ "weakened": 10, "strengthened": 0, "neutral": 5 }), "{v:#}");
    }
    // The budget is for a release build (docs/benchmarks.md); a debug build gets more room.
    let budget = if cfg!(debug_assertions) { Duration::from_secs(5) } else { Duration::from_millis(100) };
    eprintln!("edgeguard diff, 2 × 1000 routes: best of 3 = {best:?}");
    assert!(best <= budget, "took {best:?}, budget {budget:?}");
}
