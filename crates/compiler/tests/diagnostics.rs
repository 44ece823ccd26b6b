//! One case per compile error and lint: the code, and the exact line:col it points at.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use edgeguard_compiler::diagnostics::{Severity, line_col};
use edgeguard_compiler::{Options, compile, compile_bytes};

const PRELUDE: &str = "version = 1\n[origins.app]\nurl = \"https://app.fly.dev\"\n";

/// Compile `PRELUDE + body`; assert a diagnostic with `code` starts exactly at the `nth`
/// occurrence of `needle` (0-based), and return every code found.
fn expect(body: &str, code: &str, needle: &str, nth: usize) -> Vec<&'static str> {
    let src = format!("{PRELUDE}{body}");
    let out = compile(&src, &Options::default());
    let at = src.match_indices(needle).nth(nth).map(|(i, _)| i).unwrap_or_else(|| panic!("needle {needle:?} not in source"));
    let want = line_col(&src, at);
    let found: Vec<_> = out.diagnostics.iter().filter(|d| d.code == code).map(|d| line_col(&src, d.span.start)).collect();
    assert!(
        found.contains(&want),
        "expected {code} at {want:?}, found {found:?}; all: {:#?}",
        out.diagnostics.iter().map(|d| (d.code, line_col(&src, d.span.start), d.message.clone())).collect::<Vec<_>>()
    );
    if code.starts_with('E') {
        assert!(out.bundle.is_none(), "an error must not produce a bundle");
    }
    let d = out.diagnostics.iter().find(|d| d.code == code).unwrap();
    assert!(d.help.as_deref().is_some_and(|h| !h.is_empty()), "{code} needs a help line");
    out.diagnostics.iter().map(|d| d.code).collect()
}

#[test]
fn e001_toml_syntax() {
    expect("[app\nname = 1\n", "E001", "\n", 3);
}

#[test]
fn e002_unknown_key_with_suggestion() {
    let src = format!("{PRELUDE}[https]\nhsst = true\n");
    let out = compile(&src, &Options::default());
    let d = out.diagnostics.iter().find(|d| d.code == "E002").unwrap();
    assert_eq!(line_col(&src, d.span.start), (5, 1));
    assert_eq!(d.help.as_deref(), Some("did you mean `hsts`?"));
    expect("[routes.x]\n", "E003", "routes", 0);
    expect("[[routes]]\npath = \"/a\"\nmethod = [\"GET\"]\n", "E002", "method", 0);
}

#[test]
fn all_errors_reported_in_one_run() {
    let codes = expect(
        "[https]\nhsst = true\n[app]\nnmae = \"x\"\n[csp]\nmode = \"enforced\"\n",
        "E002",
        "nmae",
        0,
    );
    assert_eq!(codes.iter().filter(|c| **c == "E002").count(), 2);
    assert!(codes.contains(&"E004"));
}

/// Every finding of `PRELUDE + body` as (code, line), in source order.
fn findings(body: &str, env: Option<&str>) -> Vec<(&'static str, usize)> {
    let src = format!("{PRELUDE}{body}");
    let out = compile(&src, &Options { env: env.map(str::to_owned), ..Options::default() });
    if out.has_errors() {
        assert!(out.bundle.is_none(), "an error must not produce a bundle");
    }
    for d in &out.diagnostics {
        assert!(d.help.as_deref().is_some_and(|h| !h.is_empty()), "{} needs a help line", d.code);
    }
    out.diagnostics.iter().map(|d| (d.code, line_col(&src, d.span.start).0)).collect()
}

// Issue #15: one misspelt key used to stop the compile before the semantic checks.
#[test]
fn an_unknown_key_does_not_hide_semantic_errors() {
    let body = "[https]\nhsst = true\n[[routes]]\npath = \"/a\"\nmethods = [\"GTE\"]\nlimit = \"api\"\n[limits.api]\nrate = \"100 per minute\"\n";
    // The route refers to the limit whose rate is wrong: that is one error, not two.
    assert_eq!(findings(body, None), [("E002", 5), ("E045", 8), ("E012", 11)]);
}

#[test]
fn a_wrong_type_drops_only_that_value() {
    let body = "[limits.api]\nrate = 100\n[[routes]]\npath = \"/a\"\nlimit = \"api\"\nmax_body = \"10 megs\"\n";
    // No E005 for the missing rate, no E050 for the limit it left undefined.
    assert_eq!(findings(body, None), [("E003", 5), ("E011", 9)]);
    // A value that should be a table, an array with one bad item, a route without a readable
    // path (still checked, never compiled), a block of the wrong type under `only_in`.
    let body = "[origins.blue]\nurl = [\"https://b.fly.dev\"]\n[deploy]\nactive = \"blue\"\ncanary = \"app\"\n[[routes]]\npath = 7\nmethods = [\"get\"]\n[[routes]]\npath = \"/b\"\nmethods = [\"GET\", 5]\nblock = \"yes\"\nonly_in = [\"production\"]\n[api_keys.m]\nsha256 = \"00\"\n[observe]\nmetrics = { api_key = 1 }\n";
    assert_eq!(
        findings(body, None),
        [("E003", 5), ("E003", 8), ("E003", 10), ("E045", 11), ("E003", 14), ("E003", 15), ("E003", 18), ("E003", 20)]
    );
}

#[test]
fn follow_ons_of_a_semantic_error_are_left_out() {
    // A reference to a definition that has an error of its own is not an error again.
    let body = "[origins.blue]\nurl = \"ftp://b\"\n[deploy]\nactive = \"blue\"\nfailover = true\n[api_keys.m]\nheader = \"x key\"\n[[routes]]\npath = \"/a\"\napi_key = \"m\"\norigin = \"blue\"\n";
    assert_eq!(findings(body, None), [("E080", 5), ("E020", 10)]);
    // … while a name that is nowhere defined still is.
    assert_eq!(findings("[[routes]]\npath = \"/a\"\norigin = \"blu\"\n", None), [("E052", 6)]);
}

#[test]
fn toml_syntax_errors_and_what_was_recovered() {
    // The guessed values (`tru`, the bare `100/1m`) are not checked; the rest is.
    let body = "[https]\nredirect = tru\n[[routes]]\npath = \"/a\"\nmethods = [\"get\"]\nlimit = { rate = 100/1m, burst = 2 }\nmax_body = \"huge\"\n";
    assert_eq!(findings(body, None), [("E001", 5), ("E045", 8), ("E001", 9), ("E011", 10)]);
    // A table header that runs on swallows what follows: nothing of it is checked, and nothing
    // is reported missing or undefined, since the lost part may define it.
    let body = "[limits.api\nrate = \"1/1m\"\n[[routes]]\npath = \"/a\"\nlimit = \"api\"\n[origins.b]\nurl = \"ftp://b\"\n";
    let codes: Vec<_> = findings(body, None).into_iter().map(|(c, _)| c).collect();
    assert_eq!(codes.iter().filter(|c| **c != "E001").collect::<Vec<_>>(), [&"E080"], "{codes:?}");
}

#[test]
fn overlay_errors_are_reported_once_where_they_are_written() {
    let body = "[app]\nenvironment = \"staging\"\n[env.staging.https]\nredirect = \"yes\"\n[env.other.limits.api]\nrte = \"1/1m\"\n";
    let src = format!("{PRELUDE}{body}");
    let out = compile(&src, &Options::default());
    let messages: Vec<(&str, &str)> = out.diagnostics.iter().map(|d| (d.code, d.message.as_str())).collect();
    assert_eq!(
        messages,
        [("E003", "`env.staging.https.redirect` must be true or false, not a string"), ("E002", "unknown key `rte` in [env.other.limits.api]")]
    );
    assert_eq!(out.diagnostics[1].help.as_deref(), Some("did you mean `rate`?"));
}

#[test]
fn numbers_the_reader_cannot_hold() {
    let body = "[sanitize]\nmax_headers = 99999999999999999999\n[observe]\nsample = 1e999\n[[routes]]\npath = \"/a\"\nmethods = [\"get\"]\n";
    assert_eq!(findings(body, None), [("E003", 5), ("E003", 7), ("E045", 10)]);
}

#[test]
fn e003_wrong_type() {
    expect("[https]\nredirect = \"yes\"\n", "E003", "\"yes\"", 0);
}

#[test]
fn e004_bad_enum_value() {
    let src = format!("{PRELUDE}[headers]\npreset = \"helmut\"\n");
    let out = compile(&src, &Options::default());
    let d = out.diagnostics.iter().find(|d| d.code == "E004").unwrap();
    assert!(d.help.as_deref().unwrap().contains("did you mean \"helmet\""));
    expect("[limits.api]\nrate = \"1/1s\"\nscope = \"glbal\"\n", "E004", "\"glbal\"", 0);
}

#[test]
fn e005_missing_required() {
    expect("[limits.api]\nburst = 3\n", "E005", "api", 0);
}

#[test]
fn e006_version() {
    let out = compile("version = 2\n", &Options::default());
    assert!(out.diagnostics.iter().any(|d| d.code == "E006" && line_col("version = 2\n", d.span.start) == (1, 11)));
}

#[test]
fn e007_bad_input() {
    for src in ["", "   \n\n"] {
        let out = compile(src, &Options::default());
        assert_eq!(out.diagnostics.first().map(|d| d.code), Some("E007"));
    }
    let out = compile_bytes(&[0xff, 0xfe, 0x00, 0x12, 0x80], &Options::default());
    assert_eq!(out.diagnostics.first().map(|d| d.code), Some("E007"));
    let huge = "# padding\n".repeat(1_100_000);
    let out = compile(&huge, &Options::default());
    assert_eq!(out.diagnostics.first().map(|d| d.code), Some("E007"));
}

#[test]
fn e010_bad_duration() {
    expect("[origins.b]\nurl = \"https://b.fly.dev\"\ntimeout = \"10 seconds\"\n", "E010", "\"10 seconds\"", 0);
    expect("[health]\ncache = \"10\"\n", "E010", "\"10\"", 0);
}

#[test]
fn e011_bad_size() {
    expect("[defaults]\nmax_body = \"10 megs\"\n", "E011", "\"10 megs\"", 0);
}

#[test]
fn e012_bad_rate() {
    expect("[limits.api]\nrate = \"100 per minute\"\n", "E012", "\"100 per minute\"", 0);
    expect("[limits.api]\nrate = \"0/1m\"\n", "E012", "\"0/1m\"", 0);
}

#[test]
fn e020_invalid_header_name() {
    expect("[headers]\nset = { \"X Frame\" = \"DENY\" }\n", "E020", "\"X Frame\"", 0);
    expect("[headers]\nset = { \"Content-Length\" = \"1\" }\n", "E020", "\"Content-Length\"", 0);
}

#[test]
fn e021_header_value_with_crlf_or_invisible_bytes() {
    expect("[headers]\nset = { \"X-Test\" = \"a\\r\\nSet-Cookie: x=1\" }\n", "E021", "\"a\\r", 0);
    expect("[headers]\nset = { \"X-Test\" = \"caf\u{e9}\" }\n", "E021", "\"caf", 0);
    expect("[headers]\nset = { \"X-Test\" = \"a\\u0000b\" }\n", "E021", "\"a\\u0000b\"", 0);
}

#[test]
fn e022_duplicate_header() {
    expect("[headers]\nset = { \"X-Frame-Options\" = \"DENY\", \"x-frame-options\" = \"SAMEORIGIN\" }\n", "E022", "\"x-frame-options\"", 0);
}

#[test]
fn e023_preset_in_route() {
    expect("[[routes]]\npath = \"/a\"\nheaders = { preset = \"none\" }\n", "E023", "\"none\"", 0);
}

#[test]
fn e030_e031_csp() {
    expect("[csp.directives]\nscript-scr = [\"'self'\"]\n", "E030", "script-scr", 0);
    expect("[csp.directives]\nscript-src = [\"self\"]\nobject-src = [\"'none'\"]\n", "E031", "[\"self\"]", 0);
}

#[test]
fn e040_bad_pattern() {
    expect("[[routes]]\npath = \"/a/**/b\"\n", "E040", "\"/a/**/b\"", 0);
    expect("[[routes]]\npath = \"api/x\"\n", "E040", "\"api/x\"", 0);
}

#[test]
fn e041_ambiguous_routes_name_both() {
    let src = format!("{PRELUDE}[[routes]]\npath = \"/u/:id\"\n[[routes]]\npath = \"/u/:name\"\n");
    let out = compile(&src, &Options::default());
    let d = out.diagnostics.iter().find(|d| d.code == "E041").unwrap();
    assert!(d.message.contains("/u/:id") && d.message.contains("/u/:name"), "{}", d.message);
    assert_eq!(line_col(&src, d.span.start), (7, 8));
    assert_eq!(d.related.first().map(|(s, _)| line_col(&src, s.start)), Some((5, 8)));
    // Same shapes with types that cannot match the same segment are fine.
    let ok = format!("{PRELUDE}[[routes]]\npath = \"/u/:id\"\nparams = {{ id = \"uuid\" }}\n[[routes]]\npath = \"/u/:n\"\nparams = {{ n = \"int\" }}\n");
    assert!(!compile(&ok, &Options::default()).has_errors());
    // Next.js spelling of the same route is a duplicate.
    expect("[[routes]]\npath = \"/q/[id]\"\n[[routes]]\npath = \"/q/:id\"\n", "E041", "\"/q/:id\"", 0);
    expect("[[routes]]\npath = \"/api/debug-*\"\n[[routes]]\npath = \"/api/*-test\"\n", "E041", "\"/api/*-test\"", 0);
}

#[test]
fn e042_unreachable_routes() {
    expect("[[routes]]\npath = \"/a/:x\"\n[[routes]]\npath = \"/a/*\"\n", "E042", "\"/a/*\"", 0);
    expect("[health]\npath = \"/__edge/health\"\n[[routes]]\npath = \"/__edge/health\"\n", "E042", "\"/__edge/health\"", 1);
    expect("[[routes]]\npath = \"/x\"\nmethods = []\n", "E042", "\"/x\"", 0);
}

#[test]
fn e043_params() {
    expect("[[routes]]\npath = \"/q/:id\"\nparams = { idd = \"uuid\" }\n", "E043", "idd", 0);
    expect("[[routes]]\npath = \"/q/:id\"\nparams = { id = \"uid\" }\n", "E043", "\"uid\"", 0);
}

#[test]
fn e044_regex_that_fails_to_compile() {
    expect("[[routes]]\npath = \"/q/:id\"\nparams = { id = \"re:[a-z\" }\n", "E044", "\"re:[a-z\"", 0);
}

#[test]
fn e045_method() {
    expect("[[routes]]\npath = \"/q\"\nmethods = [\"get\"]\n", "E045", "\"get\"", 0);
}

#[test]
fn e046_route_key_in_defaults() {
    expect("[defaults]\npath = \"/x\"\n", "E046", "\"/x\"", 0);
}

#[test]
fn e047_block() {
    expect("[[routes]]\npath = \"/q\"\nblock = 200\n", "E047", "200", 0);
    expect("[[routes]]\npath = \"/q\"\nonly_in = [\"production\"]\n", "E047", "\"production\"", 0);
}

#[test]
fn e050_e051_e052_undefined_references() {
    expect("[limits.api]\nrate = \"10/1m\"\n[defaults]\nlimit = \"apii\"\n", "E050", "\"apii\"", 0);
    expect("[[routes]]\npath = \"/m\"\napi_key = \"metrics\"\n", "E051", "\"metrics\"", 0);
    expect("[[routes]]\npath = \"/m\"\norigin = \"green\"\n", "E052", "\"green\"", 0);
    expect("[deploy]\nactive = \"blue\"\n", "E052", "\"blue\"", 0);
}

#[test]
fn e053_limit_definition() {
    expect("[limits.api]\nrate = \"10/1m\"\nkey = \"header\"\n", "E053", "\"header\"", 0);
    expect("[limits.api]\nrate = \"10/1m\"\nburst = 0\n", "E053", "0\n", 0);
}

#[test]
fn e060_malformed_cidr() {
    expect("[[routes]]\npath = \"/a\"\nip_allow = [\"203.0.113.0/33\"]\n", "E060", "\"203.0.113.0/33\"", 0);
    expect("[[routes]]\npath = \"/a\"\nip_deny = [\"300.1.1.1\"]\n", "E060", "\"300.1.1.1\"", 0);
}

#[test]
fn e061_api_key_not_a_hash() {
    expect("[api_keys.m]\nsha256 = [\"my-secret-key\"]\n", "E061", "\"my-secret-key\"", 0);
}

#[test]
fn e070_hsts_max_age() {
    expect("[https]\nhsts = { max_age = -1 }\n", "E070", "{ max_age = -1 }", 0);
    expect("[https]\nhsts = { max_age = \"forever\" }\n", "E070", "{ max_age", 0);
}

#[test]
fn e071_hosts() {
    expect("[app]\nhosts = [\"https://a.com\"]\n", "E071", "\"https://a.com\"", 0);
    expect("[app]\nhosts = [\"a.com\"]\ncanonical_host = \"b.com\"\n", "E071", "\"b.com\"", 0);
}

#[test]
fn e080_e081_origins_and_deploy() {
    expect("[origins.b]\nurl = \"ftp://b\"\n", "E080", "\"ftp://b\"", 0);
    expect("[origins.b]\nurl = \"https://b.fly.dev\"\n[deploy]\nactive = \"app\"\ncanary = { origin = \"b\", percent = 120 }\n", "E081", "120", 0);
}

#[test]
fn e090_health_path() {
    expect("[health]\npath = \"health\"\n", "E090", "\"health\"", 0);
}

#[test]
fn e091_health_warn_after() {
    expect("[health]\nwarn_after = \"0ms\"\n", "E091", "\"0ms\"", 0);
    expect("[health]\ntimeout = \"1s\"\nwarn_after = \"1s\"\n", "E091", "\"1s\"", 1);
}

#[test]
fn e100_observe() {
    expect("[observe]\nsample = 2.0\n", "E100", "2.0", 0);
    expect("[observe.posthog]\nhost = \"http://us.i.posthog.com\"\n", "E100", "\"http://", 0);
    expect("[api_keys.m]\nsha256 = [\"0000000000000000000000000000000000000000000000000000000000000000\"]\n[health]\n[observe]\nmetrics = { path = \"/__edge/health\", api_key = \"m\" }\n", "E100", "\"/__edge/health\"", 0);
}

fn warns(body: &str, code: &str, needle: &str) {
    let codes = expect(body, code, needle, 0);
    assert!(!codes.iter().any(|c| c.starts_with('E')), "warnings only: {codes:?}");
    let src = format!("{PRELUDE}{body}");
    let out = compile(&src, &Options::default());
    assert!(out.bundle.is_some(), "warnings still produce a bundle");
    assert!(out.diagnostics.iter().all(|d| d.severity == Severity::Warning));
}

#[test]
fn w000_no_version() {
    let out = compile("[app]\nname = \"x\"\n[origins.a]\nurl = \"https://a.b\"\n", &Options::default());
    assert_eq!(out.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(), vec!["W000"]);
}

#[test]
fn hsts_lints() {
    warns("[https]\nhsts = { max_age = \"180d\", include_subdomains = true, preload = true }\n", "W002", "{ max_age");
    warns("[https]\nhsts = { max_age = \"1y\", include_subdomains = false, preload = true }\n", "W001", "{ max_age");
    warns("[https]\nhsts = { max_age = \"11y\" }\n", "W003", "{ max_age");
    warns("[https]\nhsts = { max_age = \"30d\" }\n", "W004", "{ max_age");
    warns("[https]\nredirect = false\nhsts = { max_age = \"1y\" }\n", "W005", "{ max_age");
}

#[test]
fn csp_lints() {
    warns("[csp.directives]\nscript-src = [\"'self'\", \"'unsafe-inline'\"]\nobject-src = [\"'none'\"]\nbase-uri = [\"'self'\"]\n", "W010", "[\"'self'\", \"'unsafe-inline'\"]");
    warns("[csp.directives]\nscript-src = [\"'self'\"]\nbase-uri = [\"'self'\"]\n", "W014", "[\"'self'\"]");
}

#[test]
fn w030_unknown_environment() {
    warns("[[routes]]\npath = \"/debug\"\nblock = 404\nonly_in = [\"prodution\"]\n", "W030", "\"prodution\"");
}

// Issue #15: an overlay that unblocks a production-only route but keeps production's origins.
#[test]
fn w032_an_environment_the_policy_does_not_have() {
    let body = "[app]\nenvironment = \"production\"\n[env.staging.app]\nhosts = [\"s.example\"]\n";
    let src = format!("{PRELUDE}{body}");
    let warned = |env: &str| {
        let out = compile(&src, &Options { env: Some(env.into()), ..Options::default() });
        out.diagnostics.into_iter().find(|d| d.code == "W032")
    };
    let d = warned("prod").unwrap();
    assert!(d.message.contains("`prod`") && d.message.contains("`production`"), "{}", d.message);
    assert_eq!(d.help.as_deref(), Some("this policy's environments: production, staging; add an [env.prod] overlay to make it one"));
    assert_eq!(warned("stagin").and_then(|d| d.help), Some("did you mean `staging`? this policy's environments: production, staging".into()));
    assert!(warned("staging").is_none() && warned("production").is_none(), "its own environments");
    assert!(compile(&src, &Options::default()).diagnostics.iter().all(|d| d.code != "W032"), "no --env: nothing to say");
}

#[test]
fn w031_unblocked_route_on_an_origin_the_own_environment_uses() {
    let debug = "[app]\nenvironment = \"production\"\n[[routes]]\npath = \"/debug/**\"\nblock = 404\nonly_in = [\"production\"]\n";
    let w031 = |body: &str, env: &str| -> Vec<usize> {
        findings(body, Some(env)).into_iter().filter(|(c, _)| *c == "W031").map(|(_, line)| line).collect()
    };
    // Staging inherits [origins.app]; so does an environment without an overlay.
    let inherits = format!("{debug}[env.staging.headers.set]\n\"X-Robots-Tag\" = \"noindex\"\n");
    assert_eq!(w031(&inherits, "staging"), [7], "at the route's path");
    assert_eq!(w031(&inherits, "development"), [7]);
    assert!(w031(&inherits, "production").is_empty(), "blocked where it is compiled");
    let own = format!("{debug}[env.staging.origins.app]\nurl = \"https://app-staging.fly.dev\"\n");
    assert!(w031(&own, "staging").is_empty(), "staging has its own origin");
    // The warning says where, why, and what to change.
    let src = format!("{PRELUDE}{inherits}");
    let out = compile(&src, &Options { env: Some("staging".into()), ..Options::default() });
    let d = out.diagnostics.iter().find(|d| d.code == "W031").unwrap();
    assert!(out.bundle.is_some(), "a warning");
    assert!(d.message.contains("`/debug/**` is blocked in production but forwarded in staging") && d.message.contains("https://app.fly.dev"), "{}", d.message);
    assert!(d.help.as_deref().unwrap().contains("[env.staging.origins.app]"));
    assert_eq!(d.related.first().map(|(s, _)| line_col(&src, s.start)), Some((9, 12)), "the `only_in` entry");
    // A pinned route reaches only its pin; an unpinned one every origin (health reroute).
    let two = format!("{debug}[origins.b]\nurl = \"https://b.fly.dev\"\n[deploy]\nactive = \"app\"\n[env.staging.origins.app]\nurl = \"https://app-staging.fly.dev\"\n");
    assert_eq!(w031(&two, "staging"), [7], "b is still production's");
    assert!(w031(&two.replace("only_in", "origin = \"app\"\nonly_in"), "staging").is_empty(), "pinned to staging's app");
    // except_in: blocked everywhere but staging, production included.
    assert_eq!(w031(&debug.replace("only_in = [\"production\"]", "except_in = [\"staging\"]"), "staging"), [7]);
    // Blocked only in staging: production forwards it to its own origins, nothing to say.
    let staging_only = format!("{}[env.staging.headers.set]\n\"X-A\" = \"1\"\n", debug.replace("only_in = [\"production\"]", "only_in = [\"staging\"]"));
    assert!(w031(&staging_only, "production").is_empty());
    assert!(w031(&debug.replace("only_in = [\"production\"]", "except_in = [\"production\"]"), "production").is_empty());
}

#[test]
fn limit_lints() {
    warns("[limits.api]\nrate = \"100000/1s\"\n", "W040", "\"100000/1s\"");
    warns("[limits.api]\nrate = \"1/1d\"\nburst = 1\n", "W041", "\"1/1d\"");
    warns("[limits.api]\nrate = \"10/1m\"\nburst = 50\n", "W042", "50");
}

#[test]
fn w100_observe_setting_without_effect() {
    warns("[observe.posthog]\nevents = [\"csp_violation\"]\n", "W100", "\"csp_violation\"");
    warns("[observe]\ncsp_dedupe = \"1h\"\n", "W100", "\"1h\"");
}

#[test]
fn w101_w103_strict_csp() {
    warns("[csp]\nmode = \"off\"\nstrict = \"nonce\"\n", "W101", "\"nonce\"");
    warns("[[routes]]\npath = \"/a\"\ncsp = { mode = \"off\", strict = \"nonce\" }\n", "W101", "\"nonce\"");
    // W102 points at `mode`, like W020.
    warns("[csp]\nstrict = \"nonce\"\nmode = \"report-only\"\n", "W102", "\"report-only\"");
    warns(
        "[csp]\nstrict = \"nonce\"\n[csp.directives]\ndefault-src = [\"'self'\"]\nstyle-src = [\"'self'\", \"'unsafe-inline'\"]\n",
        "W103",
        "[\"'self'\", \"'unsafe-inline'\"]",
    );
    // Google's strict CSP, as `strict` renders it from a nonce-free policy: nothing to say.
    let out = compile(&format!("{PRELUDE}[csp]\nstrict = \"nonce\"\n[csp.directives]\ndefault-src = [\"'self'\"]\n"), &Options::default());
    assert!(out.diagnostics.is_empty(), "{:#?}", out.diagnostics);
}

#[test]
fn w060_cidr_host_bits() {
    warns("[[routes]]\npath = \"/a\"\nip_allow = [\"203.0.113.7/24\"]\n", "W060", "\"203.0.113.7/24\"");
}

#[test]
fn w080_no_origin() {
    let out = compile("version = 1\n", &Options::default());
    assert_eq!(out.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(), vec!["W080"]);
}

#[test]
fn garbage_never_panics() {
    let inputs: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02".to_vec(),
        b"[[[[[[".to_vec(),
        b"a = ".to_vec(),
        b"version = 1\n[[routes]]\npath = \"/**/**\"\n".to_vec(),
        "routes = 5\nlimits = []\nenv = \"x\"\n".as_bytes().to_vec(),
        "[env.staging]\nenv = { x = {} }\n".as_bytes().to_vec(),
        (0..=255u8).collect(),
    ];
    for input in inputs {
        let out = compile_bytes(&input, &Options::default());
        assert!(out.has_errors() || out.bundle.is_some());
    }
}

#[test]
fn every_enum_word_is_accepted() {
    // Enums whose variants are partly documented (schemars mixes `const` and `enum`).
    for body in [
        "[limits.api]\nrate = \"10/1m\"\nmode = \"shadow\"\n",
        "[limits.api]\nrate = \"10/1m\"\nmode = \"enforce\"\n",
        "[limits.api]\nrate = \"10/1m\"\nscope = \"local\"\n",
        "[limits.api]\nrate = \"10/1m\"\nscope = \"global\"\non_error = \"deny\"\n",
        "[csp]\nmode = \"report-only\"\n[csp.directives]\nscript-src = [\"'self'\"]\nobject-src = [\"'none'\"]\nbase-uri = [\"'self'\"]\n",
        "[headers]\npreset = \"strict\"\n",
        "[csp]\nstrict = \"nonce\"\n[csp.directives]\nstyle-src = [\"'self'\"]\n",
        "[csp]\nstrict = \"off\"\n",
    ] {
        let out = compile(&format!("{PRELUDE}{body}"), &Options::default());
        assert!(!out.has_errors(), "{body}: {:#?}", out.diagnostics);
    }
    expect("[limits.api]\nrate = \"10/1m\"\nmode = \"shadw\"\n", "E004", "\"shadw\"", 0);
}

#[test]
fn a_bad_rate_is_the_one_error_not_its_references() {
    // QuoteKit's `pages` limit is used by three routes above its definition. A malformed rate
    // is one error at the rate; the three references are not "limit `pages` is not defined".
    let quotekit = include_str!("../../../fixtures/quotekit.toml");
    let src = quotekit.replacen("rate = \"600/5m\"", "rate = \"600/5min\"", 1);
    assert_ne!(src, quotekit);
    let out = compile(&src, &Options::default());
    let errors: Vec<_> = out.diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| (d.code, line_col(&src, d.span.start).0)).collect();
    let rate_line = src.lines().position(|l| l.contains("600/5min")).unwrap() + 1;
    assert_eq!(errors, [("E012", rate_line)]);
    assert_eq!(src.matches("limit = \"pages\"").count(), 3);
    // An inline limit with the same rate: one error, and the route is not reported again.
    let src = quotekit.replacen("limit = \"pages\"", "limit = { rate = \"600/5min\" }", 1);
    let out = compile(&src, &Options::default());
    let codes: Vec<_> = out.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.code).collect();
    assert_eq!(codes, ["E012"]);
}
