use super::*;
use crate::diagnostics::Severity;

const HELMET: &str = "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests";

fn parse(src: &str) -> model::Csp {
    toml::from_str::<model::Csp>(src).expect("test snippet parses")
}

/// Compile a `[csp]` snippet (helmet preset underneath).
fn plan_of(src: &str) -> (CspPlan, Vec<Diagnostic>) {
    let mut ctx = Ctx::default();
    let csp = parse(src);
    let plan = compile(&mut ctx, Some(&csp), model::Preset::Helmet);
    (plan, ctx.diags)
}

fn errors(src: &str) -> Vec<Diagnostic> {
    plan_of(src).1.into_iter().filter(Diagnostic::is_error).collect()
}

/// Lint a snippet that must compile without errors; returns the warnings.
fn lint_of(src: &str) -> Vec<Diagnostic> {
    let (plan, diags) = plan_of(src);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
    let mut ctx = Ctx::default();
    lint(&mut ctx, &plan, 0..0);
    ctx.diags
}

fn codes(diags: &[Diagnostic]) -> Vec<&'static str> {
    diags.iter().map(|d| d.code).collect()
}

fn header_of(src: &str) -> String {
    header(&plan_of(src).0).expect("a header").1
}

fn at<'a>(src: &'a str, d: &Diagnostic) -> &'a str {
    &src[d.span.clone()]
}

// --- presets and rendering ----------------------------------------------------------------

#[test]
fn helmet_preset_renders_byte_for_byte() {
    let mut ctx = Ctx::default();
    let plan = compile(&mut ctx, None, model::Preset::Helmet);
    assert!(ctx.diags.is_empty());
    assert_eq!(plan.mode, model::CspMode::Enforce);
    assert_eq!(header(&plan), Some(("content-security-policy", HELMET.to_owned())));
    assert_eq!(reporting_endpoints(&plan), None);
    assert!(plan.directives.iter().all(|d| d.span.is_none()));
}

#[test]
fn strict_preset_renders() {
    let mut ctx = Ctx::default();
    let plan = compile(&mut ctx, None, model::Preset::Strict);
    assert_eq!(
        header(&plan).map(|h| h.1).as_deref(),
        Some(
            "default-src 'none';base-uri 'none';connect-src 'self';font-src 'self';form-action 'self';frame-ancestors 'none';img-src 'self' data:;manifest-src 'self';object-src 'none';script-src 'self';style-src 'self';upgrade-insecure-requests"
        )
    );
}

#[test]
fn none_preset_and_off_mode_send_nothing() {
    let mut ctx = Ctx::default();
    assert_eq!(header(&compile(&mut ctx, None, model::Preset::None)), None);
    let (plan, _) = plan_of("mode = \"off\"\nreport_to = \"/r\"\n");
    assert_eq!(header(&plan), None);
    assert_eq!(reporting_endpoints(&plan), None);
    let mut ctx = Ctx::default();
    lint(&mut ctx, &plan, 0..0);
    assert!(ctx.diags.is_empty(), "no lints when no header is sent");
}

#[test]
fn csp_without_directives_keeps_preset_but_takes_mode() {
    let (plan, diags) = plan_of("mode = \"report-only\"\n");
    assert!(diags.is_empty());
    assert_eq!(header(&plan), Some(("content-security-policy-report-only", HELMET.to_owned())));
}

#[test]
fn quotekit_renders_in_order() {
    let src = r#"
mode = "enforce"
report_to = "/__edge/csp-report"
[directives]
upgrade-insecure-requests = true
script-src = ["'self'", "'unsafe-inline'", "'unsafe-eval'", "https://js.stripe.com", "https://m.stripe.network", "https://hcaptcha.com", "https://*.hcaptcha.com", "https://app.formbricks.com", "https://maps.googleapis.com", "https://*.googleapis.com", "https://vercel.live", "https://va.vercel-scripts.com"]
style-src = ["'self'", "'unsafe-inline'", "https://fonts.googleapis.com"]
font-src = ["'self'", "https://fonts.gstatic.com", "data:"]
img-src = ["'self'", "data:", "https:", "blob:"]
connect-src = ["'self'", "https://api.stripe.com", "https://m.stripe.network", "https://hcaptcha.com", "https://*.hcaptcha.com", "https://*.supabase.co", "wss://*.supabase.co", "https://us.i.posthog.com", "https://*.posthog.com", "https://app.formbricks.com", "wss://ws-us3.pusher.com", "https://vitals.vercel-insights.com", "https://maps.googleapis.com"]
frame-src = ["'self'", "https://js.stripe.com", "https://hooks.stripe.com", "https://hcaptcha.com", "https://*.hcaptcha.com"]
media-src = ["'self'", "blob:"]
worker-src = ["'self'", "blob:"]
object-src = ["'none'"]
base-uri = ["'self'"]
form-action = ["'self'"]
frame-ancestors = ["'none'"]
default-src = ["'self'"]
"#;
    let (plan, diags) = plan_of(src);
    assert!(diags.is_empty(), "{diags:#?}");
    let (name, value) = header(&plan).expect("header");
    assert_eq!(name, "content-security-policy");
    let names: Vec<&str> = value.split(';').map(|d| d.split(' ').next().unwrap_or_default()).collect();
    assert_eq!(
        names,
        [
            "default-src",
            "base-uri",
            "connect-src",
            "font-src",
            "form-action",
            "frame-ancestors",
            "frame-src",
            "img-src",
            "media-src",
            "object-src",
            "script-src",
            "style-src",
            "upgrade-insecure-requests",
            "worker-src",
            "report-uri",
            "report-to",
        ]
    );
    assert!(value.starts_with(
        "default-src 'self';base-uri 'self';connect-src 'self' https://api.stripe.com https://m.stripe.network "
    ));
    assert!(
        value.contains(";script-src 'self' 'unsafe-inline' 'unsafe-eval' https://js.stripe.com "),
        "sources keep written order"
    );
    assert!(value.contains(";upgrade-insecure-requests;worker-src 'self' blob:;"));
    assert!(value.ends_with(";report-uri /__edge/csp-report;report-to csp-endpoint"));
    assert_eq!(reporting_endpoints(&plan).as_deref(), Some("csp-endpoint=\"/__edge/csp-report\""));
    // Its allowlist: inline + eval, and Google API hosts that serve JSONP/Angular bypasses.
    let mut ctx = Ctx::default();
    lint(&mut ctx, &plan, 0..0);
    assert_eq!(
        codes(&ctx.diags),
        [
            code::SCRIPT_UNSAFE_INLINE,
            code::SCRIPT_UNSAFE_EVAL,
            code::SCRIPT_ALLOWLIST_BYPASS,
            code::SCRIPT_ALLOWLIST_BYPASS
        ],
        "{:#?}",
        ctx.diags
    );
    assert!(ctx.diags[2].message.contains(
        "`https://maps.googleapis.com` in script-src: maps.googleapis.com is known to host JSONP endpoints"
    ));
    assert!(ctx.diags[3].message.contains("`https://*.googleapis.com` in script-src: ajax.googleapis.com is known to host JSONP endpoints and Angular libraries"));
    assert!(at(src, &ctx.diags[3]).starts_with("[\"'self'\", \"'unsafe-inline'\", \"'unsafe-eval'\""));
}

#[test]
fn keywords_and_schemes_are_normalized() {
    let (plan, diags) = plan_of("[directives]\ndefault-src = [\"'SELF'\", \"HTTPS:\", \"'NONCE-abcdefgh'\"]\n");
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(plan.directives[0].sources, ["'self'", "https:", "'nonce-abcdefgh'"]);
}

#[test]
fn false_omits_and_empty_table_means_no_csp() {
    assert_eq!(
        header_of("[directives]\ndefault-src = [\"'self'\"]\nupgrade-insecure-requests = false\n"),
        "default-src 'self'"
    );
    let (plan, diags) = plan_of("[directives]\n");
    assert!(diags.is_empty());
    assert_eq!(header(&plan), None);
}

#[test]
fn report_to_replaces_written_report_directives() {
    let src = "report_to = \"https://r.example.com/csp\"\n[directives]\ndefault-src = [\"'self'\"]\nreport-uri = [\"/old\"]\n";
    let (plan, diags) = plan_of(src);
    assert_eq!(codes(&diags), [code::REPORT_DIRECTIVE]);
    assert_eq!(at(src, &diags[0]), "report-uri");
    assert_eq!(
        header(&plan).map(|h| h.1).as_deref(),
        Some("default-src 'self';report-uri https://r.example.com/csp;report-to csp-endpoint")
    );
}

// --- overrides ----------------------------------------------------------------------------

#[test]
fn override_replaces_by_name_and_keeps_the_rest() {
    let mut ctx = Ctx::default();
    let base = compile(&mut ctx, None, model::Preset::Helmet);
    let src = "mode = \"report-only\"\nreport_to = \"/r\"\n[directives]\nframe-ancestors = [\"https://partner.example\"]\nupgrade-insecure-requests = false\nworker-src = [\"'self'\"]\n";
    let plan = apply_override(&mut ctx, &base, &parse(src));
    assert!(ctx.diags.is_empty(), "{:#?}", ctx.diags);
    assert_eq!(plan.mode, model::CspMode::ReportOnly);
    assert_eq!(plan.report_to.as_deref(), Some("/r"));
    let (name, value) = header(&plan).expect("header");
    assert_eq!(name, "content-security-policy-report-only");
    assert_eq!(
        value,
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors https://partner.example;img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';worker-src 'self';report-uri /r;report-to csp-endpoint"
    );
    // Nothing given: the base unchanged.
    let same = apply_override(&mut ctx, &base, &model::Csp::default());
    assert_eq!(same, base);
}

#[test]
fn override_is_validated() {
    let mut ctx = Ctx::default();
    let base = compile(&mut ctx, None, model::Preset::Helmet);
    let src = "report_to = \"csp\"\n[directives]\nscript-src = [\"self\"]\nscritp-src = [\"'self'\"]\n";
    let plan = apply_override(&mut ctx, &base, &parse(src));
    assert_eq!(codes(&ctx.diags), [code::REPORT_TO, code::UNQUOTED_KEYWORD, code::UNKNOWN_DIRECTIVE]);
    assert_eq!(plan.report_to, None);
}

// --- errors -------------------------------------------------------------------------------

#[test]
fn e030_unknown_directive_with_suggestion() {
    let src = "[directives]\nscirpt-src = [\"'self'\"]\ndefault-src = [\"'self'\"]\nscriptSrc = [\"'self'\"]\nreferrer = [\"no-referrer\"]\n";
    let errs = errors(src);
    assert_eq!(codes(&errs), [code::UNKNOWN_DIRECTIVE; 3]);
    // BTreeMap order: referrer, scirpt-src, scriptSrc
    assert_eq!(at(src, &errs[0]), "referrer");
    assert!(errs[0].help.as_deref().unwrap_or_default().contains("Referrer-Policy"));
    assert_eq!(at(src, &errs[1]), "scirpt-src");
    assert_eq!(errs[1].help.as_deref(), Some("did you mean `script-src`?"));
    assert_eq!(at(src, &errs[2]), "scriptSrc");
    assert_eq!(errs[2].help.as_deref(), Some("did you mean `script-src`?"));
    // The valid one is kept, the unknown ones are not.
    assert_eq!(header_of(src), "default-src 'self'");
}

#[test]
fn e030_duplicate_in_other_case() {
    let src = "[directives]\nScript-Src = [\"'self'\"]\nscript-src = [\"'none'\"]\n";
    let errs = errors(src);
    assert_eq!(codes(&errs), [code::UNKNOWN_DIRECTIVE]);
    assert_eq!(at(src, &errs[0]), "script-src");
    assert!(errs[0].message.contains("twice"));
}

#[test]
fn e031_unquoted_keywords() {
    let src = "[directives]\nscript-src = [\"self\", \"https://a.example\", \"nonce-abcdefgh\", \"Unsafe-Inline\"]\nobject-src = [\"none\"]\n";
    let (plan, diags) = plan_of(src);
    assert_eq!(codes(&diags), [code::UNQUOTED_KEYWORD; 4]);
    assert_eq!(at(src, &diags[0]), "[\"none\"]");
    assert_eq!(diags[0].help.as_deref(), Some("write \"'none'\" — the single quotes are part of the value"));
    for d in &diags[1..] {
        assert_eq!(at(src, d), "[\"self\", \"https://a.example\", \"nonce-abcdefgh\", \"Unsafe-Inline\"]");
    }
    assert!(diags[1].help.as_deref().unwrap_or_default().contains("\"'self'\""));
    assert!(diags[2].help.as_deref().unwrap_or_default().contains("\"'nonce-abcdefgh'\""));
    // The plan keeps the intended quoted form, so lints don't cascade.
    let script = plan.directives.iter().find(|d| d.name == "script-src").expect("script-src");
    assert_eq!(script.sources, ["'self'", "https://a.example", "'nonce-abcdefgh'", "'unsafe-inline'"]);
}

#[test]
fn e031_misspelled_quoted_keyword() {
    let src = "[directives]\nscript-src = [\"'self'\", \"'unsafe-inlined'\", \"'wasm-eval'\", \"'bogus'\"]\n";
    let errs = errors(src);
    assert_eq!(codes(&errs), [code::UNQUOTED_KEYWORD; 3]);
    assert!(errs.iter().all(|e| at(src, e).starts_with("[\"'self'\"")));
    assert_eq!(errs[0].help.as_deref(), Some("did you mean \"'unsafe-inline'\"?"));
    assert_eq!(errs[1].help.as_deref(), Some("did you mean \"'wasm-unsafe-eval'\"?"));
    assert!(errs[2].help.as_deref().unwrap_or_default().starts_with("keywords here are 'self'"));
}

#[test]
fn e032_invalid_sources_all_reported() {
    let bad = [
        "'self' https://a.example", // whitespace
        "https://a.example;",       // separator
        "a.example,b.example",      // separator
        "bücher.example",           // non-ASCII
        "\"self\"",                 // double quotes
        "https://a'b.example",      // stray quote
        "'self",                    // unbalanced
        "'nonce-ab$cd'",            // nonce not base64
        "'sha256-abc'",             // hash too short
        "https:/a.example",         // malformed scheme
        "https://",                 // no host
        "a.*.example",              // wildcard inside
        "a_b.example",              // underscore
        "a.example:99999",          // port
        "a.example/p?q=1",          // query
        "https",                    // scheme without colon
        "1http:",                   // bad scheme
        "",                         // empty
    ];
    let list: Vec<String> = bad.iter().map(|b| format!("{b:?}")).collect();
    let src = format!("[directives]\nimg-src = [{}]\n", list.join(", "));
    let errs = errors(&src);
    assert_eq!(errs.len(), bad.len(), "{errs:#?}");
    assert!(errs.iter().all(|e| e.code == code::BAD_SOURCE), "{errs:#?}");
    assert!(errs.iter().all(|e| at(&src, e).starts_with("[\"'self' https")));
    assert!(errs.iter().all(|e| e.help.is_some()));
    // Nothing invalid reaches the header.
    let (plan, _) = plan_of(&src);
    assert_eq!(plan.directives[0].sources, Vec::<String>::new());
}

#[test]
fn e032_accepts_valid_sources() {
    let src = r#"[directives]
script-src = ["'self'", "'none'", "'strict-dynamic'", "'report-sample'", "'wasm-unsafe-eval'", "'nonce-R4nd0m_B4se64-=='", "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='", "'sha384-OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/529l+9Ua0vFImLlb'", "'sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=='", "*.example.com", "https://x.example.com:443/path", "wss://*.supabase.co", "data:", "blob:", "*", "https://*:*", "example.com.", "http://localhost:3000", "https://a.example/p%20q/"]
sandbox = ["allow-scripts", "Allow-Forms"]
trusted-types = ["default", "dompurify", "'allow-duplicates'"]
require-trusted-types-for = ["'script'"]
webrtc = ["'block'"]
"#;
    let (plan, diags) = plan_of(src);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(plan.directives.iter().map(|d| d.sources.len()).sum::<usize>(), 19 + 2 + 3 + 1 + 1);
}

#[test]
fn e032_other_directive_values() {
    let src = "[directives]\nsandbox = [\"allow-scrips\"]\nwebrtc = [\"'allow'\", \"'block'\"]\nrequire-trusted-types-for = [\"script\"]\ntrusted-types = [\"a b\"]\n";
    let errs = errors(src);
    assert_eq!(
        codes(&errs),
        [code::UNQUOTED_KEYWORD, code::BAD_SOURCE, code::BAD_SOURCE, code::BAD_SOURCE],
        "{errs:#?}"
    );
    assert_eq!(at(src, &errs[0]), "[\"script\"]");
    assert_eq!(at(src, &errs[1]), "[\"allow-scrips\"]");
    assert_eq!(errs[1].help.as_deref(), Some("did you mean `allow-scripts`?"));
    assert_eq!(at(src, &errs[2]), "[\"a b\"]");
    assert_eq!(at(src, &errs[3]), "[\"'allow'\", \"'block'\"]");
}

#[test]
fn e033_report_to() {
    for bad in [
        "csp",
        "",
        "http://r.example/csp",
        "//r.example/csp",
        "/a b",
        "/a;b",
        "/a,b",
        "https://",
        "/a\"b",
        "ftp://x",
    ] {
        let src = format!("report_to = {bad:?}\n");
        let (plan, diags) = plan_of(&src);
        assert_eq!(codes(&diags), [code::REPORT_TO], "{bad:?}");
        assert_eq!(at(&src, &diags[0]), format!("{bad:?}"));
        assert_eq!(plan.report_to, None);
    }
    for good in ["/__edge/csp-report", "https://r.example.com/csp?x=1"] {
        let (plan, diags) = plan_of(&format!("report_to = {good:?}\n"));
        assert!(diags.is_empty(), "{good}: {diags:#?}");
        assert_eq!(plan.report_to.as_deref(), Some(good));
    }
}

#[test]
fn e034_value_shapes() {
    let src = "[directives]\nupgrade-insecure-requests = [\"https:\"]\nscript-src = true\nblock-all-mixed-content = []\nwebrtc = []\nsandbox = true\n";
    let (plan, diags) = plan_of(src);
    assert_eq!(codes(&diags), [code::DIRECTIVE_SHAPE; 4], "{diags:#?}");
    // BTreeMap order: block-all-mixed-content, sandbox, script-src, upgrade-…, webrtc
    assert_eq!(at(src, &diags[0]), "[]");
    assert_eq!(at(src, &diags[1]), "true");
    assert!(diags[1].message.contains("script-src"));
    assert_eq!(at(src, &diags[2]), "[\"https:\"]");
    assert_eq!(
        diags[2].help.as_deref(),
        Some("write `upgrade-insecure-requests = true` (or `false` to leave it out)")
    );
    assert!(diags[3].message.contains("webrtc"));
    assert_eq!(header(&plan).map(|h| h.1).as_deref(), Some("sandbox"));
}

// --- lints --------------------------------------------------------------------------------

#[test]
fn presets_have_no_warnings() {
    for preset in [model::Preset::Helmet, model::Preset::Strict] {
        let mut ctx = Ctx::default();
        let plan = compile(&mut ctx, None, preset);
        lint(&mut ctx, &plan, 0..0);
        assert!(ctx.diags.is_empty(), "{preset:?}: {:#?}", ctx.diags);
    }
}

#[test]
fn w010_unsafe_inline_points_at_directive() {
    let src = "[directives]\nobject-src = [\"'none'\"]\nscript-src = [\"'self'\", \"'unsafe-inline'\"]\n";
    let w = lint_of(src);
    assert_eq!(codes(&w), [code::SCRIPT_UNSAFE_INLINE]);
    assert_eq!(w[0].severity, Severity::Warning);
    assert_eq!(w[0].message, "script-src allows 'unsafe-inline' (CSP Evaluator: SCRIPT_UNSAFE_INLINE, high)");
    assert_eq!(at(src, &w[0]), "[\"'self'\", \"'unsafe-inline'\"]");
}

#[test]
fn w010_falls_back_to_default_src() {
    let src = "[directives]\ndefault-src = [\"'self'\", \"'unsafe-inline'\"]\n";
    let w = lint_of(src);
    assert_eq!(codes(&w), [code::SCRIPT_UNSAFE_INLINE]);
    assert!(w[0].message.starts_with("default-src allows"));
    assert_eq!(at(src, &w[0]), "[\"'self'\", \"'unsafe-inline'\"]");
}

#[test]
fn nonce_makes_unsafe_inline_ignored_but_needs_base_uri() {
    let src =
        "[directives]\nscript-src = [\"'nonce-R4nd0mB4se64'\", \"'unsafe-inline'\"]\ndefault-src = [\"'self'\"]\n";
    let w = lint_of(src);
    assert_eq!(codes(&w), [code::MISSING_BASE_URI]);
    assert!(w[0].message.contains("MISSING_DIRECTIVES, high"));
    assert_eq!(
        at(src, &w[0]),
        "[\"'nonce-R4nd0mB4se64'\", \"'unsafe-inline'\"]",
        "a missing directive points at the first written one"
    );
    // With a preset-derived policy there is nothing written: the fallback.
    let mut ctx = Ctx::default();
    let base = compile(&mut ctx, None, model::Preset::Helmet);
    let mut plan = base.clone();
    plan.directives.retain(|d| d.name != "object-src" && d.name != "default-src");
    lint(&mut ctx, &plan, 7..9);
    assert_eq!(codes(&ctx.diags), [code::MISSING_OBJECT_SRC]);
    assert_eq!(ctx.diags[0].span, 7..9);
}

#[test]
fn nonce_and_strict_dynamic_has_no_high_finding() {
    let w = lint_of(
        "[directives]\nscript-src = [\"'nonce-R4nd0mB4se64'\", \"'strict-dynamic'\", \"'unsafe-inline'\", \"https:\", \"http:\", \"*\", \"https://www.google.com\"]\nobject-src = [\"'none'\"]\nbase-uri = [\"'none'\"]\n",
    );
    let high = [
        code::SCRIPT_UNSAFE_INLINE,
        code::PLAIN_URL_SCHEMES,
        code::PLAIN_WILDCARD,
        code::MISSING_OBJECT_SRC,
        code::MISSING_BASE_URI,
        code::MISSING_SCRIPT_SRC,
        code::SCRIPT_ALLOWLIST_BYPASS,
    ];
    assert!(w.iter().all(|d| !high.contains(&d.code)), "{w:#?}");
    assert!(w.is_empty(), "{w:#?}");
}

#[test]
fn w011_unsafe_eval() {
    let w =
        lint_of("[directives]\ndefault-src = [\"'self'\"]\nscript-src-elem = [\"'self'\", \"'unsafe-eval'\"]\n");
    assert_eq!(codes(&w), [code::SCRIPT_UNSAFE_EVAL]);
    assert_eq!(
        w[0].message,
        "script-src-elem allows 'unsafe-eval' (CSP Evaluator: SCRIPT_UNSAFE_EVAL, medium_maybe)"
    );
}

#[test]
fn w012_plain_url_schemes() {
    let w = lint_of(
        "[directives]\ndefault-src = [\"'self'\"]\nscript-src = [\"https:\", \"data:\"]\nbase-uri = [\"http:\"]\nimg-src = [\"https:\"]\n",
    );
    assert_eq!(codes(&w), [code::PLAIN_URL_SCHEMES; 3], "{w:#?}");
    assert!(w[2].message.contains("base-uri"));
}

#[test]
fn w013_wildcard() {
    let w = lint_of(
        "[directives]\ndefault-src = [\"'self'\"]\nobject-src = [\"'none'\"]\nscript-src = [\"https://*\"]\n",
    );
    assert_eq!(codes(&w), [code::PLAIN_WILDCARD]);
}

#[test]
fn w014_missing_object_src() {
    let w = lint_of("[directives]\nscript-src = [\"'self'\"]\n");
    assert_eq!(codes(&w), [code::MISSING_OBJECT_SRC]);
    let w = lint_of("[directives]\nscript-src = [\"'self'\"]\nobject-src = []\n");
    assert_eq!(codes(&w), [code::MISSING_OBJECT_SRC], "an empty object-src counts as missing, as in the evaluator");
}

#[test]
fn w015_missing_base_uri_with_hash_and_strict_dynamic() {
    let hash = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='";
    let w = lint_of(&format!("[directives]\nobject-src = [\"'none'\"]\nscript-src = [\"{hash}\"]\n"));
    assert!(w.is_empty(), "a hash alone doesn't need base-uri: {w:#?}");
    let w = lint_of(&format!(
        "[directives]\nobject-src = [\"'none'\"]\nscript-src = [\"{hash}\", \"'strict-dynamic'\"]\n"
    ));
    assert_eq!(codes(&w), [code::MISSING_BASE_URI]);
}

#[test]
fn w016_http_sources() {
    let w = lint_of(
        "[directives]\ndefault-src = [\"'self'\"]\nimg-src = [\"http://img.example.com\"]\nreport-uri = [\"http://r.example.com\"]\n",
    );
    assert_eq!(codes(&w), [code::SRC_HTTP; 2], "{w:#?}");
    assert!(w[0].message.contains("img-src allows `http://img.example.com`"));
    assert_eq!(w[0].help.as_deref(), Some("write `https://img.example.com`"));
    assert!(w[1].message.contains("report-uri"));
}

#[test]
fn w017_missing_script_src() {
    let w = lint_of("[directives]\nobject-src = [\"'none'\"]\nimg-src = [\"'self'\"]\n");
    assert_eq!(codes(&w), [code::MISSING_SCRIPT_SRC]);
    // script-src-elem alone doesn't count, as in the evaluator.
    let w = lint_of("[directives]\nobject-src = [\"'none'\"]\nscript-src-elem = [\"'self'\"]\n");
    assert_eq!(codes(&w), [code::MISSING_SCRIPT_SRC]);
}

#[test]
fn w018_short_nonce() {
    let w = lint_of(
        "[directives]\ndefault-src = [\"'self'\"]\nbase-uri = [\"'none'\"]\nscript-src = [\"'nonce-abc'\"]\n",
    );
    assert_eq!(codes(&w), [code::NONCE_LENGTH]);
    assert!(w[0].message.contains("NONCE_LENGTH, medium"));
}

#[test]
fn w019_ip_sources() {
    let w = lint_of(
        "[directives]\ndefault-src = [\"'self'\"]\nconnect-src = [\"127.0.0.1:8080\", \"https://10.0.0.1/x\"]\n",
    );
    assert_eq!(codes(&w), [code::IP_SOURCE; 2]);
    assert!(w[0].message.contains("localhost"));
    assert!(w[1].message.contains("10.0.0.1"));
}

#[test]
fn w020_report_only() {
    let w = lint_of("mode = \"report-only\"\n");
    assert_eq!(codes(&w), [code::REPORT_ONLY]);
    assert_eq!(w[0].message, "report-only only: browsers enforce nothing (Observatory −25)");
}

#[test]
fn w021_allowlist_bypass() {
    let w = lint_of(
        "[directives]\ndefault-src = [\"'none'\"]\nscript-src = [\"www.google.com\", \"https://cdn.example.com\", \"https://ajax.googleapis.com/ajax/libs/\", \"https://www.googletagmanager.com\"]\n",
    );
    assert_eq!(codes(&w), [code::SCRIPT_ALLOWLIST_BYPASS; 2], "{w:#?}");
    assert!(w[0].message.contains("www.google.com is known to host JSONP endpoints"));
    assert!(w[1].message.contains("Angular libraries"));
    // Tag Manager's JSONP bypass needs 'unsafe-eval'.
    let w = lint_of(
        "[directives]\ndefault-src = [\"'none'\"]\nscript-src = [\"https://www.googletagmanager.com\", \"'unsafe-eval'\"]\n",
    );
    assert_eq!(codes(&w), [code::SCRIPT_UNSAFE_EVAL, code::SCRIPT_ALLOWLIST_BYPASS]);
    // A path that no known endpoint sits under.
    let w = lint_of(
        "[directives]\ndefault-src = [\"'none'\"]\nscript-src = [\"https://maps.googleapis.com/maps/api/js\"]\n",
    );
    assert!(w.is_empty(), "{w:#?}");
}

#[test]
fn w021_only_the_evaluators_endpoints() {
    // api.twitter.com is on no evaluator list; publish.twitter.com/oembed is.
    let w = lint_of("[directives]\ndefault-src = [\"'none'\"]\nscript-src = [\"https://api.twitter.com\"]\n");
    assert!(w.is_empty(), "{w:#?}");
    let w = lint_of(
        "[directives]\ndefault-src = [\"'none'\"]\nscript-src = [\"https://publish.twitter.com\", \"https://cdn.syndication.twitter.com/moments/\"]\n",
    );
    assert_eq!(codes(&w), [code::SCRIPT_ALLOWLIST_BYPASS; 2], "{w:#?}");
}

#[test]
fn w022_unsafe_hashes() {
    let w = lint_of("[directives]\ndefault-src = [\"'self'\"]\nscript-src-attr = [\"'unsafe-hashes'\"]\n");
    assert_eq!(codes(&w), [code::SCRIPT_UNSAFE_HASHES]);
}

#[test]
fn w023_object_src_not_none() {
    let w = lint_of("[directives]\ndefault-src = [\"'self'\"]\nobject-src = [\"'self'\"]\n");
    assert_eq!(codes(&w), [code::OBJECT_ALLOWLIST_BYPASS]);
}

#[test]
fn w024_deprecated_and_w025_missing_semicolon() {
    let src = "[directives]\ndefault-src = [\"'self'\"]\nprefetch-src = [\"'self'\"]\nscript-src = [\"'self'\", \"object-src\"]\n";
    let w = lint_of(src);
    assert_eq!(codes(&w), [code::DEPRECATED_DIRECTIVE, code::MISSING_SEMICOLON], "{w:#?}");
    assert_eq!(at(src, &w[0]), "[\"'self'\"]");
    assert_eq!(w[0].span.start, src.find("[\"'self'\"]\nscript-src").expect("prefetch value"));
    assert!(w[1].message.contains("MISSING_SEMICOLON, syntax"));
}

#[test]
fn w026_report_directive_written_directly() {
    let src = "[directives]\ndefault-src = [\"'self'\"]\nreport-to = [\"ep\"]\n";
    let (plan, diags) = plan_of(src);
    assert_eq!(codes(&diags), [code::REPORT_DIRECTIVE]);
    assert_eq!(diags[0].severity, Severity::Warning);
    assert_eq!(header(&plan).map(|h| h.1).as_deref(), Some("default-src 'self';report-to ep"));
}

#[test]
fn every_warning_has_help() {
    let w = lint_of(
        "mode = \"report-only\"\n[directives]\nscript-src = [\"'unsafe-inline'\", \"'unsafe-eval'\", \"https:\", \"*\", \"http://1.2.3.4\", \"www.google.com\", \"'nonce-abc'\"]\nobject-src = [\"'self'\"]\n",
    );
    assert!(w.len() >= 9, "{w:#?}");
    assert!(w.iter().all(|d| d.help.is_some() && d.severity == Severity::Warning));
}


// --- strict = "nonce" ---------------------------------------------------------------------

fn strict_of(src: &str) -> Option<edgeguard_core::bundle::StrictCsp> {
    let (plan, diags) = plan_of(src);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
    strict_header(&plan)
}

fn strict_value(src: &str) -> String {
    strict_of(src).expect("a strict header").value
}

#[test]
fn lint_nonce_is_what_the_edge_makes() {
    assert_eq!(LINT_NONCE, edgeguard_core::csp::nonce_from(*b"edgeguard-nonce!"));
    assert_eq!(LINT_NONCE.len(), 24);
}

#[test]
fn strict_is_off_by_default_and_leaves_hand_written_nonces_alone() {
    let src = "[directives]\nscript-src = [\"'nonce-R4nd0mB4se64'\", \"'strict-dynamic'\"]\nobject-src = [\"'none'\"]\nbase-uri = [\"'none'\"]\n";
    let (plan, _) = plan_of(src);
    assert!(!plan.strict);
    assert_eq!(strict_header(&plan), None);
    assert_eq!(
        header(&plan).map(|h| h.1).as_deref(),
        Some("base-uri 'none';object-src 'none';script-src 'nonce-R4nd0mB4se64' 'strict-dynamic'")
    );
    assert_eq!(strict_of("strict = \"off\"\n"), None);
}

#[test]
fn strict_script_src_keeps_only_keywords_that_restrict_and_hashes() {
    let hash = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='";
    let src = format!(
        "strict = \"nonce\"\n[directives]\nscript-src = [\"'self'\", \"'unsafe-inline'\", \"'unsafe-eval'\", \"'wasm-unsafe-eval'\", \"'unsafe-hashes'\", \"'report-sample'\", \"{hash}\", \"'nonce-0ld5tat1cN0nce'\", \"'strict-dynamic'\", \"https:\", \"https://js.stripe.com\", \"*\", \"'unsafe-eval'\"]\nscript-src-elem = [\"'self'\", \"https://cdn.example\"]\nscript-src-attr = [\"'unsafe-hashes'\", \"{hash}\"]\nobject-src = [\"'none'\"]\nbase-uri = [\"'none'\"]\n"
    );
    assert_eq!(
        strict_value(&src),
        format!(
            "base-uri 'none';object-src 'none';script-src 'nonce-{{nonce}}' 'strict-dynamic' 'unsafe-eval' 'wasm-unsafe-eval' 'unsafe-hashes' 'report-sample' {hash} 'unsafe-inline' https:;script-src-attr 'unsafe-hashes' {hash};script-src-elem 'nonce-{{nonce}}' 'strict-dynamic' 'unsafe-inline' https:"
        )
    );
}

#[test]
fn strict_from_default_src_only() {
    let src = "strict = \"nonce\"\n[directives]\ndefault-src = [\"'self'\", \"https://cdn.example\"]\n";
    assert_eq!(
        strict_value(src),
        "default-src 'self' https://cdn.example;base-uri 'self';object-src 'none';script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-inline' https:;style-src 'self' https://cdn.example 'nonce-{nonce}'"
    );
    // The legacy policy, for every other response, is the directives as written.
    assert_eq!(header_of(src), "default-src 'self' https://cdn.example");
    // default-src with 'unsafe-inline': styles keep falling back to it, no nonce for them.
    assert_eq!(
        strict_value("strict = \"nonce\"\n[directives]\ndefault-src = [\"'self'\", \"'unsafe-inline'\"]\n"),
        "default-src 'self' 'unsafe-inline';base-uri 'self';object-src 'none';script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-inline' https:"
    );
}

#[test]
fn strict_leaves_what_allows_nothing() {
    // default-src 'none' already blocks scripts, styles and plugins.
    assert_eq!(strict_value("strict = \"nonce\"\n[directives]\ndefault-src = [\"'none'\"]\n"), "default-src 'none';base-uri 'self'");
    assert_eq!(
        strict_value("strict = \"nonce\"\n[directives]\ndefault-src = [\"'self'\"]\nscript-src = [\"'none'\"]\nstyle-src = []\n"),
        "default-src 'self';base-uri 'self';object-src 'none';script-src 'none';style-src"
    );
}

#[test]
fn strict_without_directives_is_googles_strict_csp() {
    let mut ctx = Ctx::default();
    let csp = parse("strict = \"nonce\"\n[directives]\n");
    let plan = compile(&mut ctx, Some(&csp), model::Preset::Helmet);
    assert_eq!(header(&plan), None, "no legacy policy");
    let strict = strict_header(&plan).expect("strict");
    assert_eq!(strict.header, "content-security-policy");
    assert_eq!(strict.value, "base-uri 'self';object-src 'none';script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-inline' https:");
    lint(&mut ctx, &plan, 0..0);
    assert!(ctx.diags.is_empty(), "{:#?}", ctx.diags);
}

#[test]
fn strict_style_rule() {
    // No 'unsafe-inline': the nonce lets the origin's <style> elements through.
    assert!(strict_value("strict = \"nonce\"\n[directives]\nstyle-src = [\"'self'\"]\nstyle-src-elem = [\"'self'\", \"https://fonts.googleapis.com\"]\nstyle-src-attr = [\"'unsafe-inline'\"]\n")
        .contains(";style-src 'self' 'nonce-{nonce}';style-src-attr 'unsafe-inline';style-src-elem 'self' https://fonts.googleapis.com 'nonce-{nonce}'"));
    // 'unsafe-inline' stays and gets no nonce (it would be ignored, breaking style="").
    assert!(strict_value("strict = \"nonce\"\n[directives]\nstyle-src = [\"'self'\", \"'unsafe-inline'\"]\n").contains(";style-src 'self' 'unsafe-inline'"));
    // Nothing restricts styles: nothing to add.
    assert!(!strict_value("strict = \"nonce\"\n[directives]\nscript-src = [\"'self'\"]\n").contains("style-src"));
}

#[test]
fn strict_modes() {
    let body = "report_to = \"/__edge/csp-report\"\n[directives]\ndefault-src = [\"'self'\"]\nscript-src = [\"'self'\", \"'unsafe-inline'\"]\n";
    let strict = "default-src 'self';base-uri 'self';object-src 'none';script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-inline' https:;style-src 'self' 'nonce-{nonce}';report-uri /__edge/csp-report;report-to csp-endpoint";
    let legacy = "default-src 'self';script-src 'self' 'unsafe-inline';report-uri /__edge/csp-report;report-to csp-endpoint";
    for (mode, legacy_header, strict_header_name) in [
        ("enforce", Some("content-security-policy"), Some("content-security-policy")),
        ("report-only", Some("content-security-policy"), Some("content-security-policy-report-only")),
        ("off", None, None),
    ] {
        let (plan, diags) = plan_of(&format!("strict = \"nonce\"\nmode = \"{mode}\"\n{body}"));
        assert_eq!(codes(&diags), if mode == "off" { vec![code::STRICT_CSP_OFF] } else { vec![] }, "{mode}");
        assert_eq!(header(&plan), legacy_header.map(|h| (h, legacy.to_owned())), "{mode}");
        let s = strict_header(&plan);
        assert_eq!(s.as_ref().map(|s| s.header.as_str()), strict_header_name, "{mode}");
        if let Some(s) = s {
            assert_eq!(s.value, strict, "{mode}");
        }
        assert_eq!(reporting_endpoints(&plan).is_some(), mode != "off", "{mode}");
    }
}

#[test]
fn w101_strict_with_mode_off_points_at_strict() {
    let src = "mode = \"off\"\nstrict = \"nonce\"\n";
    let (_, diags) = plan_of(src);
    assert_eq!(codes(&diags), [code::STRICT_CSP_OFF]);
    assert_eq!(diags[0].severity, Severity::Warning);
    assert_eq!(at(src, &diags[0]), "\"nonce\"");
    assert!(diags[0].help.as_deref().unwrap_or_default().contains("report-only"));
    assert!(plan_of("mode = \"off\"\nstrict = \"off\"\n").1.is_empty());
}

#[test]
fn strict_route_overrides() {
    let mut ctx = Ctx::default();
    let base = compile(&mut ctx, Some(&parse("strict = \"nonce\"\n")), model::Preset::Helmet);
    assert!(strict_header(&base).is_some());
    // Off for one route.
    let off = apply_override(&mut ctx, &base, &parse("strict = \"off\"\n"));
    assert_eq!(strict_header(&off), None);
    assert_eq!(header(&off), header(&base));
    // A route that turns the CSP off inherits strict silently (the one-line switch).
    let no_csp = apply_override(&mut ctx, &base, &parse("mode = \"off\"\n"));
    assert_eq!((header(&no_csp), strict_header(&no_csp)), (None, None));
    // Report-only for one route: legacy enforced, strict reported.
    let ro = apply_override(&mut ctx, &base, &parse("mode = \"report-only\"\n"));
    assert_eq!(header(&ro).map(|h| h.0), Some("content-security-policy"));
    assert_eq!(strict_header(&ro).map(|s| s.header).as_deref(), Some("content-security-policy-report-only"));
    assert!(ctx.diags.is_empty(), "{:#?}", ctx.diags);
    // On for one route under a top level without it.
    let plain = compile(&mut ctx, None, model::Preset::Helmet);
    let on = apply_override(&mut ctx, &plain, &parse("strict = \"nonce\"\n"));
    assert_eq!(
        strict_header(&on).map(|s| s.value).as_deref(),
        Some(
            "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-inline' https:;script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"
        )
    );
    // Writing strict on where the inherited mode is off warns.
    let off_base = compile(&mut ctx, Some(&parse("mode = \"off\"\n")), model::Preset::Helmet);
    let _ = apply_override(&mut ctx, &off_base, &parse("strict = \"nonce\"\n"));
    assert_eq!(codes(&ctx.diags), [code::STRICT_CSP_OFF]);
}

const QUOTEKIT_DIRECTIVES: &str = r#"[directives]
default-src = ["'self'"]
script-src = ["'self'", "'unsafe-inline'", "'unsafe-eval'", "https://js.stripe.com", "https://m.stripe.network", "https://hcaptcha.com", "https://*.hcaptcha.com", "https://app.formbricks.com", "https://maps.googleapis.com", "https://*.googleapis.com", "https://vercel.live", "https://va.vercel-scripts.com"]
style-src = ["'self'", "'unsafe-inline'", "https://fonts.googleapis.com"]
object-src = ["'none'"]
base-uri = ["'self'"]
"#;

#[test]
fn strict_enforce_lints_the_strict_policy() {
    let w = lint_of(&format!("strict = \"nonce\"\nmode = \"enforce\"\n{QUOTEKIT_DIRECTIVES}"));
    // 'unsafe-eval' is kept (the app needs it); 'unsafe-inline' and the hosts are ignored
    // by CSP3 browsers once the nonce and 'strict-dynamic' are there.
    assert_eq!(codes(&w), [code::STRICT_STYLE_UNSAFE_INLINE, code::SCRIPT_UNSAFE_EVAL], "{w:#?}");
    assert!(w[0].message.contains("style-src keeps 'unsafe-inline'"));
    assert!(w[0].help.as_deref().unwrap_or_default().contains("style-src-attr"));
    // Without strict: the legacy findings.
    let w = lint_of(QUOTEKIT_DIRECTIVES);
    assert_eq!(
        codes(&w),
        [code::SCRIPT_UNSAFE_INLINE, code::SCRIPT_UNSAFE_EVAL, code::SCRIPT_ALLOWLIST_BYPASS, code::SCRIPT_ALLOWLIST_BYPASS]
    );
}

#[test]
fn strict_enforce_has_no_high_finding_on_any_legacy_policy() {
    let high = [
        code::SCRIPT_UNSAFE_INLINE,
        code::PLAIN_URL_SCHEMES,
        code::PLAIN_WILDCARD,
        code::MISSING_OBJECT_SRC,
        code::MISSING_BASE_URI,
        code::MISSING_SCRIPT_SRC,
        code::SCRIPT_ALLOWLIST_BYPASS,
        code::NONCE_LENGTH,
    ];
    for directives in [
        "",
        "[directives]\nscript-src = [\"*\", \"'unsafe-inline'\", \"data:\", \"http:\"]\n",
        "[directives]\ndefault-src = [\"https:\", \"'unsafe-inline'\", \"www.google.com\"]\n",
        "[directives]\nimg-src = [\"'self'\"]\n",
        "[directives]\nscript-src = [\"'nonce-abc'\", \"https://ajax.googleapis.com\"]\nobject-src = [\"'none'\"]\n",
    ] {
        let w = lint_of(&format!("strict = \"nonce\"\n{directives}"));
        assert!(w.iter().all(|d| !high.contains(&d.code)), "{directives}: {w:#?}");
    }
}

#[test]
fn strict_report_only_lints_the_enforced_legacy_policy() {
    let w = lint_of(&format!("strict = \"nonce\"\nmode = \"report-only\"\n{QUOTEKIT_DIRECTIVES}"));
    assert_eq!(
        codes(&w),
        [
            code::STRICT_STYLE_UNSAFE_INLINE,
            code::SCRIPT_UNSAFE_INLINE,
            code::SCRIPT_UNSAFE_EVAL,
            code::SCRIPT_ALLOWLIST_BYPASS,
            code::SCRIPT_ALLOWLIST_BYPASS,
            code::STRICT_REPORT_ONLY
        ],
        "{w:#?}"
    );
    assert!(!codes(&w).contains(&code::REPORT_ONLY), "the legacy policy is enforced");
    let note = w.last().expect("W102");
    assert!(note.message.contains("report-only"));
    assert!(note.help.as_deref().unwrap_or_default().contains("report_to = "), "no report_to: says to set one");
    let w = lint_of("strict = \"nonce\"\nmode = \"report-only\"\nreport_to = \"/r\"\n");
    assert_eq!(codes(&w), [code::STRICT_STYLE_UNSAFE_INLINE, code::STRICT_REPORT_ONLY], "helmet's style-src has 'unsafe-inline'");
    assert!(w[1].help.as_deref().unwrap_or_default().starts_with("watch the violation reports"));
}

#[test]
fn w103_only_when_the_style_directive_keeps_unsafe_inline() {
    let w = lint_of("strict = \"nonce\"\n[directives]\ndefault-src = [\"'self'\"]\nstyle-src = [\"'self'\"]\nstyle-src-attr = [\"'unsafe-inline'\"]\n");
    assert!(w.is_empty(), "{w:#?}");
    let src = "strict = \"nonce\"\n[directives]\ndefault-src = [\"'self'\"]\nstyle-src = [\"'self'\"]\nstyle-src-elem = [\"'unsafe-inline'\"]\n";
    let w = lint_of(src);
    assert_eq!(codes(&w), [code::STRICT_STYLE_UNSAFE_INLINE]);
    assert_eq!(at(src, &w[0]), "[\"'unsafe-inline'\"]");
    assert!(w[0].message.starts_with("strict CSP: style-src-elem keeps"));
    // Not without strict, and not with strict off by mode.
    assert!(lint_of("[directives]\ndefault-src = [\"'self'\"]\nstyle-src = [\"'unsafe-inline'\"]\n").is_empty());
}
