//! `[csp] strict = "nonce"` end to end in the compiler: QuoteKit's policy rendered strict in each
//! mode, route overrides, header-set interning, what `explain` shows and what `diff` says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use edgeguard_compiler::diff::{Verdict, diff};
use edgeguard_compiler::{Options, compile};
use edgeguard_core::bundle::{Bundle, HeaderSet};
use edgeguard_core::explain::{Explanation, explain};
use edgeguard_core::{Action, Draw, Engine, RequestFacts};

const QUOTEKIT: &str = include_str!("../../../fixtures/quotekit.toml");

/// QuoteKit's production CSP as HTML pages get it with `strict = "nonce"` (enforce mode).
const QUOTEKIT_STRICT: &str = "default-src 'self';base-uri 'self';connect-src 'self' https://api.stripe.com https://m.stripe.network https://hcaptcha.com https://*.hcaptcha.com https://*.supabase.co wss://*.supabase.co https://us.i.posthog.com https://*.posthog.com https://app.formbricks.com wss://ws-us3.pusher.com https://vitals.vercel-insights.com https://maps.googleapis.com;font-src 'self' https://fonts.gstatic.com data:;form-action 'self';frame-ancestors 'none';frame-src https://js.stripe.com https://hooks.stripe.com https://hcaptcha.com https://*.hcaptcha.com;img-src 'self' data: https: blob:;media-src 'self' blob:;object-src 'none';script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-eval' 'unsafe-inline' https:;style-src 'self' 'unsafe-inline' https://fonts.googleapis.com;upgrade-insecure-requests;worker-src 'self' blob:;report-uri /__edge/csp-report;report-to csp-endpoint";

/// QuoteKit with `strict` (and optionally `mode`) set under `[csp]`.
fn quotekit(strict: &str, mode: Option<&str>) -> String {
    let mut table = format!("[csp]\nstrict = \"{strict}\"\n");
    if let Some(mode) = mode {
        table.push_str(&format!("mode = \"{mode}\"\n"));
    }
    let out = QUOTEKIT.replacen("[csp]\nmode = \"enforce\"\n", &table, 1);
    assert_ne!(out, QUOTEKIT, "fixtures/quotekit.toml's [csp] table moved");
    out
}

fn bundle(source: &str) -> Bundle {
    let out = compile(source, &Options::default());
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    out.bundle.unwrap()
}

fn codes(source: &str) -> Vec<&'static str> {
    compile(source, &Options::default()).diagnostics.iter().map(|d| d.code).collect()
}

fn set_value<'a>(set: &'a HeaderSet, name: &str) -> Option<&'a str> {
    set.set.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn defaults_set(b: &Bundle) -> &HeaderSet {
    &b.header_sets[usize::from(b.defaults.headers)]
}

fn route_set<'a>(b: &'a Bundle, pattern: &str) -> &'a HeaderSet {
    let route = b.routes.iter().find(|r| r.pattern.as_deref() == Some(pattern)).unwrap_or_else(|| panic!("route {pattern}"));
    &b.header_sets[usize::from(route.headers)]
}

fn send(source: &str, method: &str, url: &str, headers: &[(&str, &str)]) -> Explanation {
    let engine = Engine::new(bundle(source)).unwrap();
    let mut limiter = engine.new_limiter(1);
    let host = url.split('/').nth(2).unwrap();
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    let req = RequestFacts { method, url, headers: &all, peer_ip: None, cf: Default::default() };
    let d = engine.decide_standalone(&req, &mut limiter, 0, Draw { request_id: 7, lane: 7 });
    explain(&engine, &d)
}

#[test]
fn quotekit_enforce_renders_googles_strict_csp() {
    let plain = bundle(QUOTEKIT);
    let strict = bundle(&quotekit("nonce", None));
    let (p, s) = (defaults_set(&plain), defaults_set(&strict));
    assert_eq!(p.strict, None);
    let policy = s.strict.as_ref().expect("strict");
    assert_eq!(policy.header, "content-security-policy");
    assert_eq!(policy.value, QUOTEKIT_STRICT);
    assert!(policy.value.contains(&format!("'nonce-{}'", edgeguard_core::csp::NONCE_PLACEHOLDER)));
    // Every other response keeps the policy as written, and the report endpoint.
    assert_eq!(set_value(s, "content-security-policy"), set_value(p, "content-security-policy"));
    assert_eq!(set_value(s, "reporting-endpoints"), Some("csp-endpoint=\"/__edge/csp-report\""));
    assert_eq!(s.set, p.set);
    assert_eq!(strict.observe.csp.as_ref().map(|c| c.paths.clone()), Some(vec!["/__edge/csp-report".to_owned()]));
}

#[test]
fn quotekit_lints_in_each_mode() {
    // Without strict: 'unsafe-inline' (high), 'unsafe-eval', two allowlist bypasses.
    let plain = codes(QUOTEKIT);
    assert!(plain.contains(&"W010") && plain.contains(&"W021"), "{plain:?}");
    // Enforce: the strict policy protects HTML pages; only 'unsafe-eval' and the style note stay.
    let enforce = codes(&quotekit("nonce", None));
    let csp: Vec<_> = enforce.iter().filter(|c| c.starts_with("W01") || c.starts_with("W02") || c.starts_with("W10")).collect();
    assert_eq!(csp, [&"W011", &"W103"], "{enforce:?}");
    // Report-only: the legacy policy is what is enforced, and W102 says so.
    let ro = codes(&quotekit("nonce", Some("report-only")));
    for c in ["W010", "W011", "W021", "W102", "W103"] {
        assert!(ro.contains(&c), "{c}: {ro:?}");
    }
    assert!(!ro.contains(&"W020"), "{ro:?}");
    // Off: no CSP at all, W101 at `strict`.
    let src = quotekit("nonce", Some("off"));
    let out = compile(&src, &Options::default());
    let w101 = out.diagnostics.iter().find(|d| d.code == "W101").expect("W101");
    assert_eq!(&src[w101.span.clone()], "\"nonce\"");
    let b = out.bundle.unwrap();
    assert_eq!((set_value(defaults_set(&b), "content-security-policy"), &defaults_set(&b).strict), (None, &None));
}

#[test]
fn quotekit_report_only_enforces_legacy_and_reports_strict() {
    let b = bundle(&quotekit("nonce", Some("report-only")));
    let s = defaults_set(&b);
    let legacy = set_value(defaults_set(&bundle(QUOTEKIT)), "content-security-policy").unwrap().to_owned();
    assert_eq!(set_value(s, "content-security-policy"), Some(legacy.as_str()));
    assert_eq!(set_value(s, "content-security-policy-report-only"), None);
    let strict = s.strict.as_ref().unwrap();
    assert_eq!(strict.header, "content-security-policy-report-only");
    assert_eq!(strict.value, QUOTEKIT_STRICT);
}

const PRELUDE: &str = "version = 1\n[origins.app]\nurl = \"https://app.fly.dev\"\n[csp]\nreport_to = \"/csp\"\n[csp.directives]\ndefault-src = [\"'self'\"]\nscript-src = [\"'self'\", \"'unsafe-inline'\"]\nobject-src = [\"'none'\"]\n";

#[test]
fn route_overrides_turn_strict_on_and_off() {
    let src = format!(
        "{PRELUDE}[[routes]]\npath = \"/app/**\"\ncsp = {{ strict = \"nonce\" }}\n[[routes]]\npath = \"/dash/**\"\ncsp = {{ strict = \"nonce\" }}\n[[routes]]\npath = \"/beta/**\"\ncsp = {{ strict = \"nonce\", mode = \"report-only\" }}\n[[routes]]\npath = \"/api/**\"\ncache = \"no-store\"\n"
    );
    let b = bundle(&src);
    assert_eq!(defaults_set(&b).strict, None);
    let app = route_set(&b, "/app/**");
    assert_eq!(app.strict.as_ref().map(|s| s.header.as_str()), Some("content-security-policy"));
    assert_eq!(
        app.strict.as_ref().map(|s| s.value.as_str()),
        Some("default-src 'self';base-uri 'self';object-src 'none';script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-inline' https:;style-src 'self' 'nonce-{nonce}';report-uri /csp;report-to csp-endpoint")
    );
    // Two routes with the same strict policy share one header set.
    let index = |p: &str| b.routes.iter().find(|r| r.pattern.as_deref() == Some(p)).unwrap().headers;
    assert_eq!(index("/app/**"), index("/dash/**"));
    assert_ne!(index("/app/**"), b.defaults.headers);
    assert_ne!(index("/app/**"), index("/beta/**"));
    let beta = route_set(&b, "/beta/**");
    assert_eq!(beta.strict.as_ref().map(|s| s.header.as_str()), Some("content-security-policy-report-only"));
    assert_eq!(set_value(beta, "content-security-policy"), set_value(defaults_set(&b), "content-security-policy"));
    assert_eq!(route_set(&b, "/api/**").strict, None);
    assert_eq!(b.header_sets.len(), 4, "defaults, strict, strict report-only, cache");

    // On at the top, off for the API.
    let src = format!("{}[[routes]]\npath = \"/api/**\"\ncsp = {{ strict = \"off\" }}\n", PRELUDE.replace("[csp]\n", "[csp]\nstrict = \"nonce\"\n"));
    let b = bundle(&src);
    assert!(defaults_set(&b).strict.is_some());
    assert_eq!(route_set(&b, "/api/**").strict, None);
    assert_eq!(set_value(route_set(&b, "/api/**"), "content-security-policy"), set_value(defaults_set(&b), "content-security-policy"));

    // A removed CSP header takes the strict policy with it.
    let src = format!("{}[[routes]]\npath = \"/raw/**\"\nheaders = {{ remove = [\"Content-Security-Policy\"] }}\n", PRELUDE.replace("[csp]\n", "[csp]\nstrict = \"nonce\"\n"));
    let raw = bundle(&src);
    let raw = route_set(&raw, "/raw/**");
    assert_eq!((set_value(raw, "content-security-policy"), &raw.strict), (None, &None));
}

#[test]
fn strict_setting_is_checked_by_the_schema() {
    let out = compile(&PRELUDE.replace("[csp]\n", "[csp]\nstrict = \"nonces\"\n"), &Options::default());
    let d = out.diagnostics.iter().find(|d| d.code == "E004").expect("E004");
    assert!(d.help.as_deref().unwrap_or_default().contains("nonce"), "{d:#?}");
    let schema = serde_json::to_string(&edgeguard_compiler::model::schema()).unwrap();
    assert!(schema.contains("\"strict\"") && schema.contains("\"nonce\""));
}

#[test]
fn explain_shows_what_an_html_page_gets() {
    let src = quotekit("nonce", None);
    let e = send(&src, "GET", "https://lawnquote.online/", &[]);
    assert_eq!(e.action, Action::Forward);
    let legacy = set_value(defaults_set(&bundle(QUOTEKIT)), "content-security-policy").unwrap().to_owned();
    assert_eq!(e.response_headers["content-security-policy"], QUOTEKIT_STRICT);
    assert!(!e.response_headers.contains_key("content-security-policy-report-only"));
    let n = e.csp_nonce.as_ref().expect("csp_nonce");
    assert_eq!((n.mode, n.header.as_str(), n.value.as_str()), ("enforce", "content-security-policy", QUOTEKIT_STRICT));
    assert_eq!(n.applies_to, "text/html responses");
    assert_eq!(n.otherwise.as_deref(), Some(legacy.as_str()));
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["csp_nonce"]["header"], "content-security-policy");
    assert_eq!(json["csp_nonce"]["otherwise"], legacy.as_str());

    // The edge's own answers are not HTML: the legacy policy, no csp_nonce.
    for (method, url) in [("GET", "https://lawnquote.online/api/debug-oauth"), ("GET", "http://lawnquote.online/")] {
        let e = send(&src, method, url, &[]);
        assert_ne!(e.action, Action::Forward);
        assert_eq!(e.csp_nonce, None);
        assert_eq!(e.response_headers["content-security-policy"], legacy);
        assert_eq!(serde_json::to_value(&e).unwrap()["csp_nonce"], serde_json::Value::Null);
    }

    // Report-only: the legacy policy enforced, the strict one beside it.
    let e = send(&quotekit("nonce", Some("report-only")), "GET", "https://lawnquote.online/", &[]);
    assert_eq!(e.response_headers["content-security-policy"], legacy);
    assert_eq!(e.response_headers["content-security-policy-report-only"], QUOTEKIT_STRICT);
    assert_eq!(e.csp_nonce.as_ref().map(|n| n.mode), Some("report-only"));

    // Strict off: no extension, headers as before.
    let e = send(QUOTEKIT, "GET", "https://lawnquote.online/", &[]);
    assert_eq!(e.csp_nonce, None);
    assert_eq!(e.response_headers["content-security-policy"], legacy);
}

#[test]
fn diff_reports_turning_strict_on_and_off() {
    let plain = bundle(QUOTEKIT);
    let enforce = bundle(&quotekit("nonce", None));
    let ro = bundle(&quotekit("nonce", Some("report-only")));
    let strict_change = |old: &Bundle, new: &Bundle| {
        let changes = diff(old, new);
        let c: Vec<_> = changes.iter().filter(|c| c.subject == "strict").collect();
        assert_eq!(c.len(), 1, "{changes:#?}");
        (c[0].verdict, c[0].change.clone(), c[0].old.clone(), c[0].new.clone())
    };
    let (v, text, old, new) = strict_change(&plain, &enforce);
    assert_eq!((v, old.as_deref(), new.as_deref()), (Verdict::Strengthened, Some("off"), Some("enforce")));
    assert!(text.starts_with("off → enforce: HTML pages enforce a nonce-based policy"), "{text}");
    let source = quotekit("nonce", None);
    let change = diff(&plain, &enforce).into_iter().find(|c| c.subject == "strict").unwrap();
    let line = edgeguard_compiler::diff::locate(&source, &change).map(|n| source.lines().nth(n - 1).unwrap());
    assert_eq!(line, Some("strict = \"nonce\""), "the diff points at the key");
    assert_eq!(strict_change(&enforce, &plain).0, Verdict::Weakened);
    assert_eq!(strict_change(&plain, &ro).0, Verdict::Neutral);
    assert_eq!(strict_change(&ro, &enforce).0, Verdict::Strengthened);
    assert!(diff(&enforce, &bundle(&quotekit("nonce", None))).is_empty());
    // Going from report-only without strict to strict report-only enforces the legacy policy.
    let legacy_ro = bundle(&QUOTEKIT.replacen("mode = \"enforce\"", "mode = \"report-only\"", 1));
    let changes = diff(&legacy_ro, &ro);
    assert!(changes.iter().any(|c| c.subject == "mode" && c.verdict == Verdict::Strengthened), "{changes:#?}");
}
