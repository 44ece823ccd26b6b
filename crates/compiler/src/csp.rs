//! Content-Security-Policy: the `[csp]` table (and a route's `csp` override) → a [`CspPlan`],
//! its header value, and lints that mirror Google's CSP Evaluator (npm `csp_evaluator`).
//!
//! # Validation (errors)
//!
//! * `E030` unknown directive name (with "did you mean"), or a name written twice in different
//!   case (`Script-Src` and `script-src`; names are case-insensitive and stored lowercase).
//! * `E031` a keyword, nonce or hash written without its single quotes (`self` instead of
//!   `'self'`), or a quoted word that is not a keyword (`'unsafe-inlined'`, with "did you mean").
//!   The plan keeps the quoted form, so later lints don't cascade from the typo.
//! * `E032` an invalid source expression: whitespace, `;`, `,`, control or non-ASCII characters,
//!   stray quotes, a nonce/hash that is not base64 (or a hash of the wrong length), a malformed
//!   scheme/host/port/path, and invalid values of the non-source directives (`sandbox` tokens,
//!   `trusted-types` names, `webrtc`, `report-uri`, `report-to`). Such sources are left out of
//!   the plan, so a header can never carry them.
//! * `E033` an invalid `report_to` (must be a path starting with a single `/`, or an `https://`
//!   URL; no whitespace, `;`, `,`, `"`, `\`).
//! * `E034` a value-less directive (`upgrade-insecure-requests`, `block-all-mixed-content`)
//!   given a list, or a directive that needs values given `true` (or an empty list where a
//!   value is required). `sandbox = true` and `trusted-types = true` are valid (bare directive).
//!
//! `false` omits a directive; in a route override it removes the base policy's directive.
//!
//! `report-uri` / `report-to` written directly under `[csp.directives]` are **accepted with a
//! warning** (`W026`) pointing at the `report_to` key, which sets `report-uri`, `report-to` and
//! the `Reporting-Endpoints` header together. When `report_to` is set as well, it wins: the
//! directly written `report-uri` / `report-to` are left out of the header.
//!
//! # Lints (warnings) — CSP Evaluator's default `evaluate()` checks, CSP3, on the rendered policy
//!
//! The checks run on the *effective* policy exactly as the evaluator computes it: a nonce or hash
//! in the script directive makes `'unsafe-inline'` ignored, and `'strict-dynamic'` drops host and
//! scheme sources, `'self'` and `'unsafe-inline'` from it; `script-src-elem`/`-attr` fall back to
//! `script-src`, and fetch directives to `default-src`.
//!
//! | code | evaluator finding | severity |
//! |---|---|---|
//! | W010 | SCRIPT_UNSAFE_INLINE | high |
//! | W011 | SCRIPT_UNSAFE_EVAL | medium_maybe |
//! | W012 | PLAIN_URL_SCHEMES (`https:` `http:` `data:` in script-src*/object-src/base-uri) | high |
//! | W013 | PLAIN_WILDCARD (`*` in the same directives) | high |
//! | W014 | MISSING_DIRECTIVES object-src (nor a non-empty default-src) | high |
//! | W015 | MISSING_DIRECTIVES base-uri, when scripts use a nonce (or a hash with 'strict-dynamic') | high |
//! | W016 | SRC_HTTP (`http://` sources, http report-uri) | medium |
//! | W017 | MISSING_DIRECTIVES script-src (and no default-src) | high |
//! | W018 | NONCE_LENGTH (< 8 characters) | medium |
//! | W019 | IP_SOURCE | info |
//! | W020 | (Observatory) report-only mode enforces nothing | — |
//! | W021 | SCRIPT_ALLOWLIST_BYPASS, the high findings only (see below) | high |
//! | W022 | SCRIPT_UNSAFE_HASHES | medium_maybe |
//! | W023 | OBJECT_ALLOWLIST_BYPASS "restrict object-src to 'none'" | medium_maybe |
//! | W024 | DEPRECATED_DIRECTIVE (`prefetch-src`; the others are E030) | info |
//! | W025 | MISSING_SEMICOLON (a source that is a directive name) | syntax |
//! | W026 | (edgeguard) report-uri/report-to written as directives | — |
//!
//! # Strict CSP (`strict = "nonce"`)
//!
//! [`strict_plan`] derives the policy HTML pages get from the directives (Google's strict CSP:
//! `script-src 'nonce-{nonce}' 'strict-dynamic'` plus the keywords that restrict, hashes, and
//! `'unsafe-inline' https:` as fallbacks for CSP1/2 browsers; a nonce on style directives without
//! `'unsafe-inline'`; `object-src 'none'` and `base-uri 'self'` when missing), and
//! [`strict_header`] renders it with the placeholder the edge fills per response. In enforce mode
//! the lints above run on that policy (with [`LINT_NONCE`]); in report-only mode on the legacy
//! policy, which is then enforced. Warnings of their own:
//!
//! | code | |
//! |---|---|
//! | W101 | `strict = "nonce"` with `mode = "off"`: nothing is sent |
//! | W102 | strict in report-only mode: HTML pages enforce the legacy policy, the strict one reports |
//! | W103 | strict while the `<style>` directive keeps `'unsafe-inline'`: no nonce for styles |
//!
//! Left out: SCRIPT_ALLOWLIST_BYPASS's medium_maybe notes (`'self'` and every host "no bypass
//! found") — they fire on nearly every policy, helmet's included; the Flash part of
//! OBJECT_ALLOWLIST_BYPASS; NONCE_CHARSET, UNKNOWN_DIRECTIVE and INVALID_KEYWORD (errors here:
//! E032/E030/E031); `plugin-types` handling (E030 here); and the opt-in strict-CSP and
//! Lighthouse checks (not part of `evaluate()`). W021 knows a subset of the evaluator's
//! JSONP/Angular endpoint lists: the Google hosts (`www.google.com`, `accounts.google.com`,
//! `translate.google(apis).com`, `ajax.googleapis.com`, `maps.googleapis.com`,
//! `www.googleapis.com`, `clients1.google.com`, `www.gstatic.com`, Tag Manager/Analytics/
//! AdServices, which need `'unsafe-eval'` for the JSONP route), `cdn.jsdelivr.net`,
//! `cdnjs.cloudflare.com`, Facebook, Twitter, YouTube, Mixpanel, Vimeo and a few Angular CDNs,
//! matched with the evaluator's wildcard and path rules (`*.googleapis.com` matches).
//!
//! Added: W016 matches `http://` in any letter case (`HTTP://host` loads over plain http all the
//! same; the evaluator only sees lowercase). tests/csp-parity runs the npm evaluator on a corpus
//! of policies and allows exactly these differences (docs/diagnostics.md, "Parity with CSP
//! Evaluator").

use core::ops::Range;

use crate::diagnostics::{Diagnostic, suggest};
use crate::{Ctx, model};

/// Diagnostic codes of this module (stable; listed in docs/diagnostics.md).
/// CSP diagnostic codes live with the others in `crate::codes`.
use crate::codes as code;

/// One directive: name (lowercase), its sources in written order, and where it was written (None for preset-derived).
/// The span is the directive's value (`["'self'"]` / `true`), which errors and lints point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub sources: Vec<String>,
    pub span: Option<Range<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspPlan {
    pub mode: model::CspMode,
    pub report_to: Option<String>,
    pub directives: Vec<Directive>,
    /// `strict = "nonce"`: HTML responses get [`strict_header`]'s policy.
    pub strict: bool,
}

/// Endpoint name used in `report-to` and `Reporting-Endpoints`.
const ENDPOINT: &str = "csp-endpoint";

const CSP_HEADER: &str = "content-security-policy";
const CSP_REPORT_ONLY_HEADER: &str = "content-security-policy-report-only";

/// The nonce the lints and tests/csp-parity put where each response's nonce goes: 24 base64
/// characters (128 bits), the shape of the edge's (`edgeguard_core::csp::nonce_from`).
pub const LINT_NONCE: &str = "ZWRnZWd1YXJkLW5vbmNlIQ==";

// ---------------------------------------------------------------------------------------------
// Directive and keyword tables
// ---------------------------------------------------------------------------------------------

/// What a directive's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A source list (fetch directives, base-uri, form-action, frame-ancestors, navigate-to).
    Sources,
    /// No value: `true` writes it, `false` omits it.
    Flag,
    /// `true` (all restrictions) or `allow-*` tokens.
    Sandbox,
    /// `true`, or policy names, `*`, `'none'`, `'allow-duplicates'`.
    TrustedTypes,
    /// `'script'`.
    RequireTrustedTypes,
    /// `'allow'` or `'block'`.
    Webrtc,
    /// URLs.
    ReportUri,
    /// One endpoint name.
    ReportTo,
}

const DIRECTIVES: &[(&str, Kind)] = &[
    ("default-src", Kind::Sources),
    ("script-src", Kind::Sources),
    ("script-src-elem", Kind::Sources),
    ("script-src-attr", Kind::Sources),
    ("style-src", Kind::Sources),
    ("style-src-elem", Kind::Sources),
    ("style-src-attr", Kind::Sources),
    ("img-src", Kind::Sources),
    ("font-src", Kind::Sources),
    ("connect-src", Kind::Sources),
    ("media-src", Kind::Sources),
    ("object-src", Kind::Sources),
    ("frame-src", Kind::Sources),
    ("child-src", Kind::Sources),
    ("worker-src", Kind::Sources),
    ("manifest-src", Kind::Sources),
    ("prefetch-src", Kind::Sources),
    ("fenced-frame-src", Kind::Sources),
    ("base-uri", Kind::Sources),
    ("form-action", Kind::Sources),
    ("frame-ancestors", Kind::Sources),
    ("navigate-to", Kind::Sources),
    ("sandbox", Kind::Sandbox),
    ("upgrade-insecure-requests", Kind::Flag),
    ("block-all-mixed-content", Kind::Flag),
    ("require-trusted-types-for", Kind::RequireTrustedTypes),
    ("trusted-types", Kind::TrustedTypes),
    ("report-uri", Kind::ReportUri),
    ("report-to", Kind::ReportTo),
    ("webrtc", Kind::Webrtc),
];

/// Directives browsers dropped, with what to use instead.
const REMOVED_DIRECTIVES: &[(&str, &str)] = &[
    ("reflected-xss", "reflected-xss was removed in CSP2; the helmet preset sends `X-XSS-Protection: 0`"),
    ("referrer", "referrer was removed in CSP2; set the `Referrer-Policy` header under [headers] instead"),
    ("disown-opener", "disown-opener was removed in CSP3; set `Cross-Origin-Opener-Policy` under [headers] instead"),
    ("plugin-types", "plugin-types was removed in CSP3; use `object-src = [\"'none'\"]`"),
    ("require-sri-for", "require-sri-for never shipped in browsers; remove it"),
];

/// Keyword sources (without their quotes).
const SOURCE_KEYWORDS: &[&str] = &[
    "self",
    "none",
    "unsafe-inline",
    "unsafe-eval",
    "strict-dynamic",
    "unsafe-hashes",
    "report-sample",
    "wasm-unsafe-eval",
    "unsafe-allow-redirects",
    "inline-speculation-rules",
];

/// Old spellings of keywords → today's.
const RENAMED_KEYWORDS: &[(&str, &str)] = &[
    ("unsafe-hashed-attributes", "unsafe-hashes"),
    ("wasm-eval", "wasm-unsafe-eval"),
    ("unsafe-dynamic", "strict-dynamic"),
];

const TRUSTED_TYPES_KEYWORDS: &[&str] = &["none", "allow-duplicates"];
const REQUIRE_TRUSTED_TYPES_KEYWORDS: &[&str] = &["script"];
const WEBRTC_KEYWORDS: &[&str] = &["allow", "block"];

const SANDBOX_TOKENS: &[&str] = &[
    "allow-downloads",
    "allow-forms",
    "allow-modals",
    "allow-orientation-lock",
    "allow-pointer-lock",
    "allow-popups",
    "allow-popups-to-escape-sandbox",
    "allow-presentation",
    "allow-same-origin",
    "allow-scripts",
    "allow-storage-access-by-user-activation",
    "allow-top-navigation",
    "allow-top-navigation-by-user-activation",
    "allow-top-navigation-to-custom-protocols",
];

/// Scheme names users write without their colon.
const BARE_SCHEMES: &[&str] = &["http", "https", "data", "blob", "ws", "wss", "filesystem", "mediastream"];

const SOURCE_SHAPES: &str =
    "sources look like \"'self'\", \"https:\", \"data:\", \"*.example.com\", \"https://cdn.example.com:443/path/\"";

fn kind_of(name: &str) -> Option<Kind> {
    DIRECTIVES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

// ---------------------------------------------------------------------------------------------
// Presets
// ---------------------------------------------------------------------------------------------

fn preset_directives(preset: model::Preset) -> Vec<Directive> {
    let table: &[(&str, &[&str])] = match preset {
        // helmet 8's default CSP (helmetjs/helmet test/index.test.ts).
        model::Preset::Helmet => &[
            ("default-src", &["'self'"]),
            ("base-uri", &["'self'"]),
            ("font-src", &["'self'", "https:", "data:"]),
            ("form-action", &["'self'"]),
            ("frame-ancestors", &["'self'"]),
            ("img-src", &["'self'", "data:"]),
            ("object-src", &["'none'"]),
            ("script-src", &["'self'"]),
            ("script-src-attr", &["'none'"]),
            ("style-src", &["'self'", "https:", "'unsafe-inline'"]),
            ("upgrade-insecure-requests", &[]),
        ],
        model::Preset::Strict => &[
            ("default-src", &["'none'"]),
            ("base-uri", &["'none'"]),
            ("connect-src", &["'self'"]),
            ("font-src", &["'self'"]),
            ("form-action", &["'self'"]),
            ("frame-ancestors", &["'none'"]),
            ("img-src", &["'self'", "data:"]),
            ("manifest-src", &["'self'"]),
            ("object-src", &["'none'"]),
            ("script-src", &["'self'"]),
            ("style-src", &["'self'"]),
            ("upgrade-insecure-requests", &[]),
        ],
        model::Preset::None => &[],
    };
    table
        .iter()
        .map(|(name, sources)| Directive {
            name: (*name).to_owned(),
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            span: None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Top-level CSP. If `csp` has `directives`, those are the policy (an empty table means no
/// directives, hence no header); otherwise the preset's directives. `mode` defaults to Enforce.
pub fn compile(ctx: &mut Ctx, csp: Option<&model::Csp>, preset: model::Preset) -> CspPlan {
    let mode = csp.and_then(|c| c.mode.as_ref()).map_or(model::CspMode::Enforce, |m| *m.get_ref());
    let strict_key = csp.and_then(|c| c.strict.as_ref());
    let strict = strict_key.is_some_and(|s| *s.get_ref() == model::CspStrict::Nonce);
    if let Some(key) = strict_key {
        strict_without_csp(ctx, key, mode);
    }
    let report_to = csp.and_then(|c| c.report_to.as_ref()).and_then(|r| check_report_to(ctx, r));
    let directives = match csp.and_then(|c| c.directives.as_ref()) {
        Some(map) => validate_directives(ctx, map)
            .into_iter()
            .filter_map(|change| match change {
                Change::Set(d) => Some(d),
                Change::Remove(_) => None,
            })
            .collect(),
        None => preset_directives(preset),
    };
    CspPlan { mode, report_to, directives, strict }
}

/// Per-route override: `mode`/`report_to` replace the base's when given; each directive given
/// replaces the base's directive of the same name (others kept), and `false` removes it.
/// Validates the override's directives the same way as [`compile`].
pub fn apply_override(ctx: &mut Ctx, base: &CspPlan, over: &model::Csp) -> CspPlan {
    let mode = over.mode.as_ref().map_or(base.mode, |m| *m.get_ref());
    let strict = over.strict.as_ref().map_or(base.strict, |s| *s.get_ref() == model::CspStrict::Nonce);
    if let Some(key) = &over.strict {
        strict_without_csp(ctx, key, mode);
    }
    let report_to = match &over.report_to {
        Some(r) => check_report_to(ctx, r).or_else(|| base.report_to.clone()),
        None => base.report_to.clone(),
    };
    let mut directives = base.directives.clone();
    if let Some(map) = &over.directives {
        for change in validate_directives(ctx, map) {
            match change {
                Change::Set(d) => match directives.iter_mut().find(|b| b.name == d.name) {
                    Some(slot) => *slot = d,
                    None => directives.push(d),
                },
                Change::Remove(name) => directives.retain(|b| b.name != name),
            }
        }
    }
    CspPlan { mode, report_to, directives, strict }
}

/// W101: `strict = "nonce"` written where the mode sends no CSP. A warning, not an error, so
/// that `mode = "off"` stays a one-line switch (an `[env.*]` overlay or a route) that turns the
/// CSP off without editing `strict` too.
fn strict_without_csp(ctx: &mut Ctx, key: &model::S<model::CspStrict>, mode: model::CspMode) {
    if *key.get_ref() == model::CspStrict::Nonce && mode == model::CspMode::Off {
        ctx.push(
            Diagnostic::warning(
                code::STRICT_CSP_OFF,
                key.span(),
                "`strict = \"nonce\"` has no effect with `mode = \"off\"`: the edge sends no CSP at all",
            )
            .help("set `mode = \"report-only\"` to watch the strict policy's reports first, or `mode = \"enforce\"`; or remove `strict`"),
        );
    }
}

/// The header to set on every response (the *legacy* policy when `strict` is on: what
/// responses other than HTML pages get): ("content-security-policy", value) for Enforce,
/// ("content-security-policy-report-only", value) for ReportOnly, None for Off or no directives.
/// With `strict = "nonce"` in report-only mode the legacy policy is *enforced* while the strict
/// one reports, so this is "content-security-policy" then.
/// `default-src` first, then the rest alphabetically (helmet's byte-exact order); with
/// `report_to`, `report-uri <report_to>` and `report-to csp-endpoint` close the policy.
pub fn header(plan: &CspPlan) -> Option<(&'static str, String)> {
    let name = match plan.mode {
        model::CspMode::Enforce => CSP_HEADER,
        model::CspMode::ReportOnly if plan.strict => CSP_HEADER,
        model::CspMode::ReportOnly => CSP_REPORT_ONLY_HEADER,
        model::CspMode::Off => return None,
    };
    let list = rendered(plan)?;
    Some((name, edgeguard_core::csp::render(&list)))
}

/// `Reporting-Endpoints` header value (`csp-endpoint="<report_to>"`) when report_to is set and
/// mode is not Off.
pub fn reporting_endpoints(plan: &CspPlan) -> Option<String> {
    if plan.mode == model::CspMode::Off {
        return None;
    }
    plan.report_to.as_ref().map(|r| format!("{ENDPOINT}=\"{r}\""))
}

// ---------------------------------------------------------------------------------------------
// Strict CSP (`strict = "nonce"`)
// ---------------------------------------------------------------------------------------------

/// Script sources a strict script-src keeps: they restrict or report, never allowlist a place
/// scripts load from.
const STRICT_KEPT: &[&str] = &["'unsafe-eval'", "'wasm-unsafe-eval'", "'unsafe-hashes'", "'report-sample'"];

/// `'nonce-{nonce}'`: where the edge puts each response's nonce.
fn nonce_source() -> String {
    format!("'nonce-{}'", edgeguard_core::csp::NONCE_PLACEHOLDER)
}

/// A source list that allows nothing: `'none'` alone, or empty.
fn allows_nothing(sources: &[String]) -> bool {
    sources.iter().all(|s| s == "'none'")
}

/// Google's strict script-src from a script directive's sources (`None`: nothing restricts
/// scripts): `'nonce-{nonce}' 'strict-dynamic'`, the kept keywords and hashes, then
/// `'unsafe-inline' https:` for browsers without CSP3 (CSP3 browsers ignore both once a nonce
/// and 'strict-dynamic' are present). A list that allows no script stays as it is.
fn strict_script_sources(sources: Option<&[String]>) -> Option<Vec<String>> {
    if sources.is_some_and(allows_nothing) {
        return None;
    }
    let mut out = vec![nonce_source(), "'strict-dynamic'".to_owned()];
    for s in sources.unwrap_or_default() {
        if (STRICT_KEPT.contains(&s.as_str()) || is_hash(s)) && !out.contains(s) {
            out.push(s.clone());
        }
    }
    out.push("'unsafe-inline'".to_owned());
    out.push("https:".to_owned());
    Some(out)
}

/// A style directive's sources with the nonce added, unless it keeps `'unsafe-inline'` (a nonce
/// would make browsers ignore it and block the `style=""` attributes React apps set) or allows
/// no style at all.
fn strict_style_sources(sources: &[String]) -> Option<Vec<String>> {
    if allows_nothing(sources) || sources.iter().any(|s| s == "'unsafe-inline'") {
        return None;
    }
    let nonce = nonce_source();
    let mut out = sources.to_vec();
    if !out.contains(&nonce) {
        out.push(nonce);
    }
    Some(out)
}

/// The policy HTML pages get in strict mode, derived from the plan's directives (see
/// docs/policy.md, "Strict CSP"): `None` unless `strict` is on and the mode sends a CSP.
pub fn strict_plan(plan: &CspPlan) -> Option<CspPlan> {
    if !plan.strict || plan.mode == model::CspMode::Off {
        return None;
    }
    let mut dirs = plan.directives.clone();
    let default = dirs.iter().find(|d| d.name == "default-src").cloned();
    let derived = |name: &str, sources: Vec<String>, from: &Directive| Directive {
        name: name.to_owned(),
        sources,
        span: from.span.clone(),
    };

    // script-src, written or derived from default-src (or from nothing).
    match dirs.iter_mut().find(|d| d.name == "script-src") {
        Some(d) => {
            if let Some(sources) = strict_script_sources(Some(&d.sources)) {
                d.sources = sources;
            }
        }
        None => match &default {
            Some(def) => {
                if let Some(sources) = strict_script_sources(Some(&def.sources)) {
                    dirs.push(derived("script-src", sources, def));
                }
            }
            None => {
                if let Some(sources) = strict_script_sources(None) {
                    dirs.push(Directive { name: "script-src".to_owned(), sources, span: None });
                }
            }
        },
    }
    if let Some(d) = dirs.iter_mut().find(|d| d.name == "script-src-elem")
        && let Some(sources) = strict_script_sources(Some(&d.sources))
    {
        d.sources = sources;
    }

    // style-src (written, or derived from default-src) and style-src-elem when written.
    match dirs.iter_mut().find(|d| d.name == "style-src") {
        Some(d) => {
            if let Some(sources) = strict_style_sources(&d.sources) {
                d.sources = sources;
            }
        }
        None => {
            if let Some(def) = &default
                && let Some(sources) = strict_style_sources(&def.sources)
            {
                dirs.push(derived("style-src", sources, def));
            }
        }
    }
    if let Some(d) = dirs.iter_mut().find(|d| d.name == "style-src-elem")
        && let Some(sources) = strict_style_sources(&d.sources)
    {
        d.sources = sources;
    }

    // Google's strict CSP always restricts plugins and <base>.
    let default_none = default.as_ref().is_some_and(|d| !d.sources.is_empty() && allows_nothing(&d.sources));
    if !default_none && !dirs.iter().any(|d| d.name == "object-src") {
        dirs.push(Directive { name: "object-src".to_owned(), sources: vec!["'none'".to_owned()], span: None });
    }
    if !dirs.iter().any(|d| d.name == "base-uri") {
        dirs.push(Directive { name: "base-uri".to_owned(), sources: vec!["'self'".to_owned()], span: None });
    }
    Some(CspPlan { mode: plan.mode, report_to: plan.report_to.clone(), directives: dirs, strict: true })
}

/// The strict policy as the header set carries it (`'nonce-{nonce}'` where each response's
/// nonce goes): `content-security-policy` in enforce mode (replacing the legacy policy on HTML
/// pages), `content-security-policy-report-only` in report-only mode (beside the enforced
/// legacy one). Same order and report directives as [`header`].
pub fn strict_header(plan: &CspPlan) -> Option<edgeguard_core::bundle::StrictCsp> {
    let header = match plan.mode {
        model::CspMode::Enforce => CSP_HEADER,
        model::CspMode::ReportOnly => CSP_REPORT_ONLY_HEADER,
        model::CspMode::Off => return None,
    };
    let strict = strict_plan(plan)?;
    let list = rendered(&strict)?;
    Some(edgeguard_core::bundle::StrictCsp { header: header.to_owned(), value: edgeguard_core::csp::render(&list) })
}

/// The strict policy as a browser would receive it, with [`LINT_NONCE`] for the nonce: what the
/// lints evaluate.
fn strict_plan_with_nonce(plan: &CspPlan) -> Option<CspPlan> {
    let mut strict = strict_plan(plan)?;
    for d in &mut strict.directives {
        for s in &mut d.sources {
            if s.contains(edgeguard_core::csp::NONCE_PLACEHOLDER) {
                *s = edgeguard_core::csp::with_nonce(s, LINT_NONCE);
            }
        }
    }
    Some(strict)
}

/// Warnings with the same findings as Google's CSP Evaluator on the rendered policy (see the
/// module docs for the subset), plus W020 for report-only. Nothing when no header is sent.
/// Each points at the directive's span (its value), or at `fallback` when the directive has
/// none (preset-derived). A finding about a *missing* directive points at the first directive
/// written in the policy (the place to add it), or at `fallback` when none was written.
///
/// With `strict = "nonce"` the checks run on what protects HTML pages: in enforce mode the
/// strict policy (with a realistic nonce, [`LINT_NONCE`]); in report-only mode the legacy policy,
/// which is then enforced, plus W102 (the strict one only reports). W103 says when style-src
/// keeps `'unsafe-inline'` and so gets no nonce.
pub fn lint(ctx: &mut Ctx, plan: &CspPlan, fallback: Range<usize>) {
    let strict_on = plan.strict && plan.mode != model::CspMode::Off;
    if strict_on {
        strict_style_note(ctx, plan, &fallback);
    }
    let strict_enforced = if strict_on && plan.mode == model::CspMode::Enforce { strict_plan_with_nonce(plan) } else { None };
    let plan = strict_enforced.as_ref().unwrap_or(plan);
    match rendered(plan) {
        Some(list) => evaluate_plan(ctx, plan, &list, &fallback),
        None if !strict_on => return,
        None => {}
    }
    match (plan.mode, strict_on) {
        (model::CspMode::ReportOnly, false) => ctx.push(
            Diagnostic::warning(
                code::REPORT_ONLY,
                fallback,
                "report-only only: browsers enforce nothing (Observatory −25)",
            )
            .help("set `mode = \"enforce\"` once the violation reports are clean"),
        ),
        (model::CspMode::ReportOnly, true) => {
            let help = if plan.report_to.is_some() {
                "watch the violation reports at `report_to`, then set `mode = \"enforce\"` to enforce the strict policy on HTML pages"
            } else {
                "set `report_to = \"/__edge/csp-report\"` to receive the strict policy's violation reports, then set `mode = \"enforce\"`"
            };
            ctx.push(
                Diagnostic::warning(
                    code::STRICT_REPORT_ONLY,
                    fallback,
                    "strict CSP in report-only mode: HTML pages still enforce the directives as written; the nonce-based policy only reports",
                )
                .help(help),
            );
        }
        _ => {}
    }
}

/// W103: strict mode while the directive that governs `<style>` elements keeps `'unsafe-inline'`.
fn strict_style_note(ctx: &mut Ctx, plan: &CspPlan, fallback: &Range<usize>) {
    let governing = ["style-src-elem", "style-src", "default-src"]
        .iter()
        .find_map(|name| plan.directives.iter().find(|d| d.name == *name));
    let Some(d) = governing.filter(|d| d.sources.iter().any(|s| s == "'unsafe-inline'")) else { return };
    if d.sources.iter().any(|s| is_nonce(s) || is_hash(s)) {
        return; // a nonce or hash written by hand already disables 'unsafe-inline'
    }
    ctx.push(
        Diagnostic::warning(
            code::STRICT_STYLE_UNSAFE_INLINE,
            d.span.clone().unwrap_or_else(|| fallback.clone()),
            format!("strict CSP: {} keeps 'unsafe-inline', so <style> elements get no nonce and any inline style is allowed", d.name),
        )
        .help("a nonce would make browsers ignore 'unsafe-inline' and block the style=\"\" attributes React and Next.js set; to nonce <style> elements and keep attributes working, write `style-src-attr = [\"'unsafe-inline'\"]` and drop 'unsafe-inline' from style-src (Safari < 15.4 and Firefox < 108 then block style attributes)"),
    );
}

/// The evaluator checks on one rendered policy.
fn evaluate_plan(ctx: &mut Ctx, plan: &CspPlan, list: &[(&str, Vec<&str>)], fallback: &Range<usize>) {
    let span_of = |name: &str| -> Range<usize> {
        plan.directives.iter().find(|d| d.name == name).and_then(|d| d.span.clone()).unwrap_or_else(|| fallback.clone())
    };
    let first_written = plan
        .directives
        .iter()
        .filter_map(|d| d.span.clone())
        .min_by_key(|s| s.start)
        .unwrap_or_else(|| fallback.clone());
    let parsed = Policy::parse(list);
    let eff = parsed.effective();
    for (code, directive, message, help) in evaluate(&eff) {
        let span = directive.map_or_else(|| first_written.clone(), |n| span_of(&n));
        ctx.push(Diagnostic::warning(code, span, message).help(help));
    }
}

/// Directives in header order, `None` when there is nothing to send.
fn rendered(plan: &CspPlan) -> Option<Vec<(&str, Vec<&str>)>> {
    let replaced = |name: &str| plan.report_to.is_some() && (name == "report-uri" || name == "report-to");
    let mut dirs: Vec<&Directive> = plan.directives.iter().filter(|d| !replaced(&d.name)).collect();
    if dirs.is_empty() {
        return None;
    }
    dirs.sort_by(|a, b| (a.name != "default-src", a.name.as_str()).cmp(&(b.name != "default-src", b.name.as_str())));
    let mut list: Vec<(&str, Vec<&str>)> =
        dirs.iter().map(|d| (d.name.as_str(), d.sources.iter().map(String::as_str).collect())).collect();
    if let Some(target) = &plan.report_to {
        list.push(("report-uri", vec![target.as_str()]));
        list.push(("report-to", vec![ENDPOINT]));
    }
    Some(list)
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

enum Change {
    Set(Directive),
    Remove(String),
}

enum Checked {
    Set(Vec<String>),
    Remove,
    Invalid,
}

/// A problem with one value; reported at the directive value's span.
struct Problem {
    code: &'static str,
    message: String,
    help: String,
    /// What the plan keeps instead (the quoted keyword for an unquoted one).
    keep: Option<String>,
}

impl Problem {
    fn bad(message: impl Into<String>, help: impl Into<String>) -> Problem {
        Problem { code: code::BAD_SOURCE, message: message.into(), help: help.into(), keep: None }
    }
}

fn validate_directives(ctx: &mut Ctx, map: &model::Map<model::S<model::DirectiveValue>>) -> Vec<Change> {
    let mut seen: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    for (key, value) in map {
        let name = key.get_ref().to_ascii_lowercase();
        let Some(kind) = kind_of(&name) else {
            ctx.push(unknown_directive(key.get_ref(), key.span()));
            continue;
        };
        if seen.contains(&name) {
            ctx.push(
                Diagnostic::error(
                    code::UNKNOWN_DIRECTIVE,
                    key.span(),
                    format!("directive `{name}` is written twice (directive names are case-insensitive)"),
                )
                .help("keep one of them; browsers ignore every repeat of a directive"),
            );
            continue;
        }
        seen.push(name.clone());
        if kind == Kind::ReportUri || kind == Kind::ReportTo {
            ctx.push(
                Diagnostic::warning(
                    code::REPORT_DIRECTIVE,
                    key.span(),
                    format!("`{name}` written as a directive; prefer the `report_to` key"),
                )
                .help("set `report_to = \"/__edge/csp-report\"` under [csp]: edgeguard then adds report-uri, report-to and Reporting-Endpoints together"),
            );
        }
        let value_span = value.span();
        match check_directive(ctx, &name, kind, value.get_ref(), &value_span) {
            Checked::Set(sources) => changes.push(Change::Set(Directive { name, sources, span: Some(value_span) })),
            Checked::Remove => changes.push(Change::Remove(name)),
            Checked::Invalid => {}
        }
    }
    changes
}

fn unknown_directive(written: &str, span: Range<usize>) -> Diagnostic {
    let lower = written.to_ascii_lowercase();
    let d = Diagnostic::error(code::UNKNOWN_DIRECTIVE, span, format!("unknown CSP directive `{written}`"));
    if let Some((_, why)) = REMOVED_DIRECTIVES.iter().find(|(n, _)| *n == lower) {
        return d.help(*why);
    }
    match suggest(written, DIRECTIVES.iter().map(|(n, _)| *n)) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None => d.help("CSP Level 3 directives include default-src, script-src, style-src, img-src, connect-src, object-src, base-uri, form-action, frame-ancestors"),
    }
}

fn check_directive(
    ctx: &mut Ctx,
    name: &str,
    kind: Kind,
    value: &model::DirectiveValue,
    span: &Range<usize>,
) -> Checked {
    let shape = |msg: String, help: String| Diagnostic::error(code::DIRECTIVE_SHAPE, span.clone(), msg).help(help);
    let sources = match value {
        model::DirectiveValue::Flag(false) => return Checked::Remove,
        model::DirectiveValue::Flag(true) => {
            return match kind {
                Kind::Flag | Kind::Sandbox | Kind::TrustedTypes => Checked::Set(Vec::new()),
                _ => {
                    ctx.push(shape(
                        format!("`{name}` needs a list of values, not `true`"),
                        format!("write e.g. `{name} = {}`", example(kind)),
                    ));
                    Checked::Invalid
                }
            };
        }
        model::DirectiveValue::Sources(list) => list,
    };
    if kind == Kind::Flag {
        ctx.push(shape(
            format!("`{name}` takes no value"),
            format!("write `{name} = true` (or `false` to leave it out)"),
        ));
        return Checked::Invalid;
    }
    let needs_one = matches!(kind, Kind::Webrtc | Kind::ReportTo);
    if sources.is_empty() && matches!(kind, Kind::Webrtc | Kind::ReportTo | Kind::RequireTrustedTypes | Kind::ReportUri)
    {
        ctx.push(shape(format!("`{name}` needs a value"), format!("write e.g. `{name} = {}`", example(kind))));
        return Checked::Invalid;
    }
    if needs_one && sources.len() > 1 {
        ctx.push(
            Diagnostic::error(code::BAD_SOURCE, span.clone(), format!("`{name}` takes exactly one value"))
                .help(format!("write e.g. `{name} = {}`", example(kind))),
        );
        return Checked::Invalid;
    }
    let mut kept = Vec::with_capacity(sources.len());
    for source in sources {
        match check_value(name, kind, source) {
            Ok(v) => kept.push(v),
            Err(p) => {
                ctx.push(Diagnostic::error(p.code, span.clone(), p.message).help(p.help));
                if let Some(v) = p.keep {
                    kept.push(v);
                }
            }
        }
    }
    Checked::Set(kept)
}

fn example(kind: Kind) -> &'static str {
    match kind {
        Kind::Sources => "[\"'self'\"]",
        Kind::Flag => "true",
        Kind::Sandbox => "[\"allow-scripts\"]",
        Kind::TrustedTypes => "[\"default\"]",
        Kind::RequireTrustedTypes => "[\"'script'\"]",
        Kind::Webrtc => "[\"'block'\"]",
        Kind::ReportUri => "[\"/__edge/csp-report\"]",
        Kind::ReportTo => "[\"csp-endpoint\"]",
    }
}

fn check_value(name: &str, kind: Kind, s: &str) -> Result<String, Problem> {
    check_chars(name, s)?;
    match kind {
        Kind::Sources => check_source(name, s),
        Kind::Sandbox => {
            let lower = s.to_ascii_lowercase();
            if SANDBOX_TOKENS.contains(&lower.as_str()) {
                return Ok(lower);
            }
            let help = match suggest(s, SANDBOX_TOKENS.iter().copied()) {
                Some(t) => format!("did you mean `{t}`?"),
                None => "sandbox tokens are allow-forms, allow-scripts, allow-same-origin, allow-popups, …".to_owned(),
            };
            Err(Problem::bad(format!("`{s}` is not a sandbox token"), help))
        }
        Kind::TrustedTypes => check_keyword_value(name, s, TRUSTED_TYPES_KEYWORDS, |v| {
            v == "*" || v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-#=_/@.%".contains(&b))
        }),
        Kind::RequireTrustedTypes => check_keyword_value(name, s, REQUIRE_TRUSTED_TYPES_KEYWORDS, |_| false),
        Kind::Webrtc => check_keyword_value(name, s, WEBRTC_KEYWORDS, |_| false),
        Kind::ReportUri => {
            if s.contains(['\'', '"', '\\']) {
                return Err(Problem::bad(
                    format!("invalid report-uri `{s}`"),
                    "write a path such as \"/__edge/csp-report\" or an https:// URL",
                ));
            }
            let lower = s.to_ascii_lowercase();
            let ok = if let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) {
                rest.split(['/', '?', '#']).next().is_some_and(|h| !h.is_empty())
            } else {
                s.starts_with('/') && !s.starts_with("//")
            };
            if ok {
                Ok(s.to_owned())
            } else {
                Err(Problem::bad(
                    format!("invalid report-uri `{s}`"),
                    "write a path such as \"/__edge/csp-report\" or an https:// URL",
                ))
            }
        }
        Kind::ReportTo => {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
                Ok(s.to_owned())
            } else {
                Err(Problem::bad(
                    format!("invalid report-to endpoint name `{s}`"),
                    "report-to takes an endpoint name such as \"csp-endpoint\"",
                ))
            }
        }
        Kind::Flag => Err(Problem::bad(format!("`{name}` takes no value"), format!("write `{name} = true`"))),
    }
}

/// Whitespace, separators, control and non-ASCII characters: invalid in every value.
fn check_chars(name: &str, s: &str) -> Result<(), Problem> {
    if s.is_empty() {
        return Err(Problem::bad(format!("empty source in {name}"), "remove the empty string"));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(Problem::bad(
            format!("`{s}` in {name} contains whitespace"),
            "write each source as its own string: [\"'self'\", \"https://cdn.example.com\"]",
        ));
    }
    if s.contains([';', ',']) {
        return Err(Problem::bad(
            format!("`{s}` in {name} contains `;` or `,`, which end a directive or a policy in the header"),
            "write each source as its own string (percent-encode `;` and `,` in paths as %3B and %2C)",
        ));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(Problem::bad(
            format!("`{}` in {name} contains a control character", s.escape_debug()),
            "remove it",
        ));
    }
    if !s.is_ascii() {
        return Err(Problem::bad(
            format!("`{s}` in {name} contains non-ASCII characters"),
            "write hosts in their punycode form (xn--…) and percent-encode paths",
        ));
    }
    Ok(())
}

/// A `'quoted'` value checked against `keywords`; bare values go to `bare_ok`.
fn check_keyword_value(
    name: &str,
    s: &str,
    keywords: &[&str],
    bare_ok: impl Fn(&str) -> bool,
) -> Result<String, Problem> {
    if let Some(decided) = check_quoting(name, s, keywords, false) {
        return decided;
    }
    if bare_ok(s) {
        return Ok(s.to_owned());
    }
    let list: Vec<String> = keywords.iter().map(|k| format!("\"'{k}'\"")).collect();
    Err(Problem::bad(format!("invalid value `{s}` in {name}"), format!("{name} takes {}", list.join(" or "))))
}

/// The quoting rules every keyword-bearing value shares: a quoted value is checked as a
/// keyword (or nonce/hash when `hashes`), a stray quote is an error, and a bare keyword must be
/// quoted. `None` when the value is bare and not a keyword: the caller's own rules decide.
fn check_quoting(name: &str, s: &str, keywords: &[&str], hashes: bool) -> Option<Result<String, Problem>> {
    if s.starts_with('\'') {
        return Some(check_quoted(name, s, keywords, hashes));
    }
    if s.contains(['\'', '"']) {
        return Some(Err(stray_quote(name, s)));
    }
    let lower = s.to_ascii_lowercase();
    keywords.contains(&lower.as_str()).then(|| Err(unquoted(name, s, &lower)))
}

fn unquoted(name: &str, s: &str, quoted_inner: &str) -> Problem {
    let fixed = format!("'{quoted_inner}'");
    Problem {
        code: code::UNQUOTED_KEYWORD,
        message: format!("`{s}` in {name} is a CSP keyword and must be quoted"),
        help: format!("write \"{fixed}\" — the single quotes are part of the value"),
        keep: Some(fixed),
    }
}

fn stray_quote(name: &str, s: &str) -> Problem {
    Problem::bad(
        format!("`{s}` in {name} contains a quote"),
        "only keywords, nonces and hashes are quoted, with single quotes around the whole value: \"'self'\"",
    )
}

/// A value starting with `'`: a keyword from `keywords`, or (when `hashes`) a nonce or hash.
fn check_quoted(name: &str, s: &str, keywords: &[&str], hashes: bool) -> Result<String, Problem> {
    let inner = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\''));
    let Some(inner) = inner.filter(|i| !i.contains('\'')) else {
        return Err(Problem::bad(
            format!("`{s}` in {name} has unbalanced quotes"),
            "wrap a keyword in single quotes on both sides: \"'self'\"",
        ));
    };
    let lower = inner.to_ascii_lowercase();
    if keywords.contains(&lower.as_str()) {
        return Ok(format!("'{lower}'"));
    }
    if hashes {
        if let Some(value) = strip_prefix_ci(inner, "nonce-") {
            if !edgeguard_core::csp::is_base64_value(value) {
                return Err(Problem::bad(
                    format!("nonce `{s}` in {name} is not base64"),
                    "a nonce is base64 (A–Z a–z 0–9 + / - _, up to two = at the end): \"'nonce-R4nd0mB4se64'\"",
                ));
            }
            return Ok(format!("'nonce-{value}'"));
        }
        for (alg, chars) in [("sha256", 43), ("sha384", 64), ("sha512", 86)] {
            let Some(value) = strip_prefix_ci(inner, alg).and_then(|v| v.strip_prefix('-')) else { continue };
            if !edgeguard_core::csp::is_base64_value(value) {
                return Err(Problem::bad(
                    format!("hash `{s}` in {name} is not base64"),
                    format!("write the base64 of the {alg} digest: \"'{alg}-…'\""),
                ));
            }
            if value.trim_end_matches('=').len() != chars {
                return Err(Problem::bad(
                    format!("hash `{s}` in {name} has the wrong length for {alg}"),
                    format!("a {alg} digest is {chars} base64 characters (plus padding); hex digests don't work"),
                ));
            }
            return Ok(format!("'{alg}-{value}'"));
        }
    }
    let renamed = RENAMED_KEYWORDS.iter().find(|(old, _)| *old == lower).map(|(_, new)| *new);
    let help = match renamed.or_else(|| suggest(&lower, keywords.iter().copied())) {
        Some(k) => format!("did you mean \"'{k}'\"?"),
        None => {
            let list: Vec<String> = keywords.iter().map(|k| format!("'{k}'")).collect();
            format!("keywords here are {}", list.join(", "))
        }
    };
    Err(Problem {
        code: code::UNQUOTED_KEYWORD,
        message: format!("`{s}` in {name} is not a CSP keyword"),
        help,
        keep: None,
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) { s.get(prefix.len()..) } else { None }
}

/// One element of a source list (already free of whitespace, separators, non-ASCII).
fn check_source(name: &str, s: &str) -> Result<String, Problem> {
    if let Some(decided) = check_quoting(name, s, SOURCE_KEYWORDS, true) {
        return decided;
    }
    let lower = s.to_ascii_lowercase();
    for prefix in ["nonce-", "sha256-", "sha384-", "sha512-"] {
        if let Some(value) = strip_prefix_ci(s, prefix) {
            return Err(unquoted(name, s, &format!("{prefix}{value}")));
        }
    }
    if BARE_SCHEMES.contains(&lower.as_str()) {
        return Err(Problem::bad(
            format!("`{s}` in {name} is read as a host named `{s}`"),
            format!("a scheme source ends with a colon: \"{lower}:\""),
        ));
    }
    check_location(name, s)
}

/// `scheme-source` or `host-source` (CSP3 grammar).
fn check_location(name: &str, s: &str) -> Result<String, Problem> {
    let invalid = |why: &str| Problem::bad(format!("invalid source `{s}` in {name}: {why}"), SOURCE_SHAPES);
    let (rest, has_scheme) = match s.find("://") {
        Some(i) => {
            let scheme = s.get(..i).unwrap_or_default();
            if !is_scheme(scheme) {
                return Err(invalid("the scheme is not valid"));
            }
            (s.get(i.saturating_add(3)..).unwrap_or_default(), true)
        }
        None => {
            if let Some(scheme) = s.strip_suffix(':').filter(|sc| !sc.contains([':', '/'])) {
                return if is_scheme(scheme) {
                    Ok(s.to_ascii_lowercase())
                } else {
                    Err(invalid("the scheme is not valid"))
                };
            }
            (s, false)
        }
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i..).unwrap_or_default()),
        None => (rest, ""),
    };
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(invalid(if has_scheme {
            "the host is missing"
        } else {
            "it starts with neither a host nor a scheme"
        }));
    }
    if host.contains('@') {
        return Err(invalid("user names are not allowed in sources"));
    }
    if host != "*" {
        let labels = host.strip_prefix("*.").unwrap_or(host);
        let labels = labels.strip_suffix('.').unwrap_or(labels);
        if labels.contains('*') {
            return Err(invalid("a wildcard may only be the leftmost label, as in *.example.com"));
        }
        let ok = labels.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !ok {
            return Err(invalid("a host name has letters, digits and `-` between dots"));
        }
    }
    if let Some(port) = port {
        let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        let ok = port == "*" || (digits && port.parse::<u32>().is_ok_and(|p| p <= 65_535));
        if !ok {
            return Err(invalid("the port must be a number up to 65535 or `*`"));
        }
    }
    check_path(path).map_err(invalid)?;
    Ok(s.to_owned())
}

fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn check_path(path: &str) -> Result<(), &'static str> {
    let bytes = path.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'?' | b'#' => return Err("sources can't have a query or fragment"),
            b'%' => {
                let hex = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i.saturating_add(1)) && hex(i.saturating_add(2))) {
                    return Err("`%` must start a percent-encoded byte such as %20");
                }
            }
            b if b.is_ascii_alphanumeric() || b"-._~!$&()*+=:@/".contains(&b) => {}
            _ => return Err("the path has a character that must be percent-encoded"),
        }
        i = i.saturating_add(1);
    }
    Ok(())
}

fn check_report_to(ctx: &mut Ctx, value: &model::S<String>) -> Option<String> {
    let s = value.get_ref();
    let problem = if s.is_empty() {
        Some("it is empty")
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains whitespace or control characters")
    } else if s.contains([';', ',']) {
        Some("`;` and `,` would end the directive or the policy")
    } else if s.contains(['"', '\\']) {
        Some("`\"` and `\\` can't appear in the Reporting-Endpoints header")
    } else if !s.is_ascii() {
        Some("it contains non-ASCII characters")
    } else if s.starts_with("//") {
        Some("`//` starts a URL on another host without a scheme")
    } else if s.starts_with('/') {
        None
    } else if let Some(rest) = strip_prefix_ci(s, "https://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() { Some("the URL has no host") } else { None }
    } else if strip_prefix_ci(s, "http://").is_some() {
        Some("reports over plain http can be read and forged in transit")
    } else {
        Some("it is neither an absolute path nor an https:// URL")
    };
    match problem {
        None => Some(s.clone()),
        Some(why) => {
            ctx.push(
                Diagnostic::error(code::REPORT_TO, value.span(), format!("invalid `report_to` `{s}`: {why}"))
                    .help("use a path on this site such as \"/__edge/csp-report\", or an https:// URL"),
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lint: CSP Evaluator checks
// ---------------------------------------------------------------------------------------------

/// The evaluator's list of fetch directives (those that fall back to default-src).
const FETCH_DIRECTIVES: &[&str] = &[
    "child-src",
    "connect-src",
    "default-src",
    "font-src",
    "frame-src",
    "img-src",
    "manifest-src",
    "media-src",
    "object-src",
    "script-src",
    "script-src-attr",
    "script-src-elem",
    "style-src",
    "style-src-attr",
    "style-src-elem",
    "worker-src",
];

/// Every name the evaluator's `isDirective` knows (for MISSING_SEMICOLON).
const EVALUATOR_DIRECTIVES: &[&str] = &[
    "child-src",
    "connect-src",
    "default-src",
    "font-src",
    "frame-src",
    "img-src",
    "media-src",
    "object-src",
    "script-src",
    "script-src-attr",
    "script-src-elem",
    "style-src",
    "style-src-attr",
    "style-src-elem",
    "prefetch-src",
    "manifest-src",
    "worker-src",
    "base-uri",
    "plugin-types",
    "sandbox",
    "disown-opener",
    "form-action",
    "frame-ancestors",
    "navigate-to",
    "report-to",
    "report-uri",
    "block-all-mixed-content",
    "upgrade-insecure-requests",
    "reflected-xss",
    "referrer",
    "require-sri-for",
    "trusted-types",
    "require-trusted-types-for",
    "webrtc",
];

/// Subset of the evaluator's JSONP endpoint list (`allowlist_bypasses/jsonp.ts`), in its order
/// (the first match decides, as in the evaluator). Every entry must be on the evaluator's list:
/// tests/csp-parity checks both lists against the npm package.
const JSONP_URLS: &[(&str, &str)] = &[
    ("www.google-analytics.com", "/gtm/js"),
    ("www.googleadservices.com", "/pagead/conversion/1070110417/wcm"),
    ("www.google.com", "/tools/feedback/escalation-options"),
    ("translate.google.com", "/translate_a/l"),
    ("translate.googleapis.com", "/translate_a/l"),
    ("accounts.google.com", "/o/oauth2/revoke"),
    ("api.facebook.com", "/restserver.php"),
    ("syndication.twitter.com", "/widgets/timelines/765840589183213568"),
    ("www.youtube.com", "/profile_style"),
    ("googletagmanager.com", "/gtm/js"),
    ("www.googletagmanager.com", "/gtm/js"),
    ("vimeo.com", "/api/oembed.json/"),
    ("ajax.googleapis.com", "/ajax/services/search/news"),
    ("ssl.google-analytics.com", "/gtm/js"),
    ("maps.googleapis.com", "/maps/api/js/GeoPhotoService.GetMetadata"),
    ("cdn.syndication.twimg.com", "/widgets/timelines/599200054310604802"),
    ("graph.facebook.com", "/1/"),
    ("www.facebook.com", "/restserver.php"),
    ("www.googleapis.com", "/freebase/v1/topic/m/0344_"),
    ("publish.twitter.com", "/oembed"),
    ("clients1.google.com", "/complete/search"),
    ("api.mixpanel.com", "/track/"),
    ("cdn.syndication.twitter.com", "/moments/709229296800440320"),
    ("cdn.jsdelivr.net", "/"),
];

/// JSONP hosts whose bypass needs `'unsafe-eval'`.
const JSONP_NEEDS_EVAL: &[&str] = &[
    "googletagmanager.com",
    "www.googletagmanager.com",
    "www.googleadservices.com",
    "google-analytics.com",
    "ssl.google-analytics.com",
    "www.google-analytics.com",
];

/// Subset of the evaluator's AngularJS host list (`allowlist_bypasses/angular.ts`).
const ANGULAR_URLS: &[(&str, &str)] = &[
    ("gstatic.com", "/fsn/angular_js-bundle1.js"),
    ("www.gstatic.com", "/fsn/angular_js-bundle1.js"),
    ("www.googleadservices.com", "/pageadimg/imgad"),
    ("yastatic.net", "/angularjs/1.2.23/angular.min.js"),
    ("ajax.googleapis.com", "/ajax/libs/angularjs/1.2.0rc1/angular-route.min.js"),
    ("cdnjs.cloudflare.com", "/ajax/libs/angular.js/1.2.16/angular.min.js"),
    ("oss.maxcdn.com", "/angularjs/1.2.20/angular.min.js"),
    ("cdn.jsdelivr.net", "/angularjs/1.1.2/angular.min.js"),
    ("raw.githubusercontent.com", "/angular/code.angularjs.org/master/1.0.7/angular-resource.js"),
    ("cdn.bootcss.com", "/angular.js/1.2.0/angular.min.js"),
];

/// A parsed policy as the evaluator sees it: names with their values, in header order.
#[derive(Debug, Clone)]
struct Policy {
    dirs: Vec<(String, Vec<String>)>,
}

impl Policy {
    /// Like the evaluator's parser: the first of repeated directives wins; values deduplicated.
    fn parse(list: &[(&str, Vec<&str>)]) -> Policy {
        let mut dirs: Vec<(String, Vec<String>)> = Vec::new();
        for (name, values) in list {
            if dirs.iter().any(|(n, _)| n == name) {
                continue;
            }
            let mut vs: Vec<String> = Vec::new();
            for v in values {
                if !vs.iter().any(|x| x == v) {
                    vs.push((*v).to_owned());
                }
            }
            dirs.push(((*name).to_owned(), vs));
        }
        Policy { dirs }
    }

    fn has(&self, name: &str) -> bool {
        self.dirs.iter().any(|(n, _)| n == name)
    }

    fn values(&self, name: &str) -> &[String] {
        self.dirs.iter().find(|(n, _)| n == name).map_or(&[], |(_, v)| v.as_slice())
    }

    fn values_mut(&mut self, name: &str) -> Option<&mut Vec<String>> {
        self.dirs.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// `getEffectiveDirective`: -elem/-attr fall back to their parent, fetch directives to default-src.
    fn effective_directive(&self, name: &'static str) -> &'static str {
        if self.has(name) {
            return name;
        }
        if (name == "script-src-attr" || name == "script-src-elem") && self.has("script-src") {
            return "script-src";
        }
        if (name == "style-src-attr" || name == "style-src-elem") && self.has("style-src") {
            return "style-src";
        }
        if FETCH_DIRECTIVES.contains(&name) {
            return "default-src";
        }
        name
    }

    fn effective_directives(&self, names: &[&'static str]) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for n in names {
            let e = self.effective_directive(n);
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out
    }

    fn script_values(&self) -> &[String] {
        self.values(self.effective_directive("script-src"))
    }

    fn has_script_nonces(&self) -> bool {
        self.script_values().iter().any(|v| is_nonce(v))
    }

    fn has_script_hashes(&self) -> bool {
        self.script_values().iter().any(|v| is_hash(v))
    }

    fn has_strict_dynamic(&self) -> bool {
        self.script_values().iter().any(|v| v == "'strict-dynamic'")
    }

    /// `getEffectiveCsp(CSP3)`: what a CSP3 browser actually applies to scripts.
    fn effective(&self) -> Policy {
        let mut eff = self.clone();
        for d in ["script-src", "script-src-attr", "script-src-elem"] {
            let name = eff.effective_directive(d);
            let nonce_or_hash = eff.values(name).iter().any(|v| is_nonce(v) || is_hash(v));
            let strict_dynamic = self.values(name).iter().any(|v| v == "'strict-dynamic'");
            if let Some(values) = eff.values_mut(name) {
                if nonce_or_hash {
                    values.retain(|v| v != "'unsafe-inline'");
                }
                if strict_dynamic {
                    values.retain(|v| v.starts_with('\'') && v != "'self'" && v != "'unsafe-inline'");
                }
            }
        }
        eff
    }
}

/// `^'nonce-(.+)'$`
fn nonce_value(v: &str) -> Option<&str> {
    v.strip_prefix("'nonce-").and_then(|r| r.strip_suffix('\'')).filter(|r| !r.is_empty())
}

fn is_nonce(v: &str) -> bool {
    nonce_value(v).is_some()
}

/// `^'(sha256|sha384|sha512)-(.+)'$`
fn is_hash(v: &str) -> bool {
    ["'sha256-", "'sha384-", "'sha512-"]
        .iter()
        .any(|p| v.strip_prefix(p).and_then(|r| r.strip_suffix('\'')).is_some_and(|r| !r.is_empty()))
}

/// `^[a-zA-Z][+a-zA-Z0-9.-]*:$`
fn is_url_scheme(v: &str) -> bool {
    v.strip_suffix(':').is_some_and(is_scheme)
}

/// `getSchemeFreeUrl`: drop `scheme://`, then a leading `//`.
fn scheme_free(v: &str) -> &str {
    let mut rest = v;
    if let Some(i) = v.find("://") {
        let scheme = v.get(..i).unwrap_or_default();
        let mut bytes = scheme.bytes();
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if bytes.next().is_some_and(word) && bytes.all(|b| word(b) || matches!(b, b'+' | b'.' | b'-')) {
            rest = v.get(i.saturating_add(3)..).unwrap_or_default();
        }
    }
    rest.strip_prefix("//").unwrap_or(rest)
}

/// The host of a source, as `getHostname` finds it.
fn hostname(v: &str) -> String {
    let free = scheme_free(v);
    let authority = free.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority.find(']').and_then(|i| authority.get(..=i)).unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.to_ascii_lowercase()
}

fn looks_like_ip(host: &str) -> bool {
    if host.starts_with('[') && host.ends_with(']') {
        return true;
    }
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `matchWildcardUrls`: the first listed host (with path) that `source` allows.
fn match_wildcard_urls(source: &str, list: &[(&'static str, &'static str)]) -> Option<&'static str> {
    let free = scheme_free(source).replacen(":*", "", 1);
    let (authority, path) = match free.find('/') {
        Some(i) => (free.get(..i).unwrap_or_default(), free.get(i..).unwrap_or("/")),
        None => (free.as_str(), "/"),
    };
    let host = authority.split(':').next().unwrap_or_default().to_ascii_lowercase();
    let has_wildcard = host.starts_with("*.");
    let wildcard_free = host.strip_prefix('*').unwrap_or(&host);
    let has_path = path != "/";
    list.iter()
        .find(|(domain, listed_path)| {
            if !domain.ends_with(wildcard_free) || (!has_wildcard && host != *domain) {
                return false;
            }
            if has_path {
                if path.ends_with('/') {
                    return listed_path.starts_with(path);
                }
                return *listed_path == path;
            }
            true
        })
        .map(|(domain, _)| *domain)
}

/// (code, directive to point at — None for a missing directive, message, help)
type Finding = (&'static str, Option<String>, String, String);

fn finding(code: &'static str, directive: Option<&str>, message: String, help: impl Into<String>) -> Finding {
    (code, directive.map(str::to_owned), message, help.into())
}

/// The evaluator's `DEFAULT_CHECKS`, in its order, on the effective policy.
fn evaluate(eff: &Policy) -> Vec<Finding> {
    let mut out = Vec::new();
    let script_dirs = eff.effective_directives(&["script-src", "script-src-attr", "script-src-elem"]);

    // checkScriptUnsafeInline (+ unsafe-hashes)
    for d in &script_dirs {
        let values = eff.values(d);
        if values.iter().any(|v| v == "'unsafe-inline'") {
            out.push(finding(
                code::SCRIPT_UNSAFE_INLINE,
                Some(d),
                format!("{d} allows 'unsafe-inline' (CSP Evaluator: SCRIPT_UNSAFE_INLINE, high)"),
                format!("remove 'unsafe-inline' from {d}: move inline scripts and on* handlers into files, or use nonces/hashes"),
            ));
        }
        if values.iter().any(|v| v == "'unsafe-hashes'") {
            out.push(finding(
                code::SCRIPT_UNSAFE_HASHES,
                Some(d),
                format!("{d} allows 'unsafe-hashes' (CSP Evaluator: SCRIPT_UNSAFE_HASHES, medium_maybe)"),
                "move inline event handlers into script files and drop 'unsafe-hashes'",
            ));
        }
    }

    // checkScriptUnsafeEval
    for d in &script_dirs {
        if eff.values(d).iter().any(|v| v == "'unsafe-eval'") {
            out.push(finding(
                code::SCRIPT_UNSAFE_EVAL,
                Some(d),
                format!("{d} allows 'unsafe-eval' (CSP Evaluator: SCRIPT_UNSAFE_EVAL, medium_maybe)"),
                format!("remove 'unsafe-eval' from {d} once no code uses eval(), new Function() or string timers"),
            ));
        }
    }

    let xss_dirs =
        eff.effective_directives(&["script-src", "script-src-attr", "script-src-elem", "object-src", "base-uri"]);

    // checkPlainUrlSchemes
    for d in &xss_dirs {
        for v in eff.values(d) {
            if matches!(v.as_str(), "data:" | "http:" | "https:") {
                out.push(finding(
                    code::PLAIN_URL_SCHEMES,
                    Some(d),
                    format!(
                        "`{v}` in {d} allows the execution of unsafe scripts (CSP Evaluator: PLAIN_URL_SCHEMES, high)"
                    ),
                    format!("replace `{v}` in {d} with the exact hosts you need, or use nonces with 'strict-dynamic'"),
                ));
            }
        }
    }

    // checkWildcards
    for d in &xss_dirs {
        for v in eff.values(d) {
            if scheme_free(v) == "*" {
                out.push(finding(
                    code::PLAIN_WILDCARD,
                    Some(d),
                    format!("{d} should not allow '*' as source (CSP Evaluator: PLAIN_WILDCARD, high)"),
                    format!("replace `{v}` in {d} with the exact hosts you need"),
                ));
            }
        }
    }

    // checkMissingDirectives: object-src, script-src, base-uri
    let object_restrictions = if eff.has("object-src") { eff.values("object-src") } else { eff.values("default-src") };
    if object_restrictions.is_empty() {
        let at = eff.has("object-src").then_some("object-src");
        out.push(finding(
            code::MISSING_OBJECT_SRC,
            at,
            "object-src is missing, so plugins that can run script may load (CSP Evaluator: MISSING_DIRECTIVES, high)"
                .to_owned(),
            "add `object-src = [\"'none'\"]`",
        ));
    }
    if !eff.has("script-src") && !eff.has("default-src") {
        out.push(finding(
            code::MISSING_SCRIPT_SRC,
            None,
            "script-src is missing and there is no default-src (CSP Evaluator: MISSING_DIRECTIVES, high)".to_owned(),
            "add `script-src = [\"'self'\"]` (or a default-src)",
        ));
    }
    let needs_base_uri = eff.has_script_nonces() || (eff.has_script_hashes() && eff.has_strict_dynamic());
    if needs_base_uri && !eff.has("base-uri") {
        out.push(finding(
            code::MISSING_BASE_URI,
            None,
            "base-uri is missing in a nonce/hash-based policy (CSP Evaluator: MISSING_DIRECTIVES, high)".to_owned(),
            "an injected <base> tag can redirect relative script URLs: add `base-uri = [\"'none'\"]` (or \"'self'\")",
        ));
    }

    // checkScriptAllowlistBypass (high findings only)
    for d in eff.effective_directives(&["script-src", "script-src-elem"]) {
        let values = eff.values(d);
        if values.iter().any(|v| v == "'none'") {
            continue;
        }
        let eval = values.iter().any(|v| v == "'unsafe-eval'");
        for v in values {
            if v.starts_with('\'') || is_url_scheme(v) || !v.contains('.') {
                continue;
            }
            let angular = match_wildcard_urls(v, ANGULAR_URLS);
            let jsonp = match_wildcard_urls(v, JSONP_URLS).filter(|h| eval || !JSONP_NEEDS_EVAL.contains(h));
            let what = match (jsonp, angular) {
                (_, Some(h)) if jsonp.is_some() => Some((h, "JSONP endpoints and Angular libraries")),
                (Some(h), None) => Some((h, "JSONP endpoints")),
                (None, Some(h)) => Some((h, "Angular libraries")),
                _ => None,
            };
            if let Some((host, kinds)) = what {
                out.push(finding(
                    code::SCRIPT_ALLOWLIST_BYPASS,
                    Some(d),
                    format!("`{v}` in {d}: {host} is known to host {kinds} which allow to bypass this CSP (CSP Evaluator: SCRIPT_ALLOWLIST_BYPASS, high)"),
                    format!("narrow `{v}` to the exact script path, or use nonces with 'strict-dynamic' instead of host allowlists"),
                ));
            }
        }
    }

    // checkFlashObjectAllowlistBypass (the non-Flash part)
    let object_dir = eff.effective_directive("object-src");
    let object_values = eff.values(object_dir);
    if object_dir == "object-src" && !object_values.iter().any(|v| v == "'none'") {
        for v in object_values {
            out.push(finding(
                code::OBJECT_ALLOWLIST_BYPASS,
                Some("object-src"),
                format!("object-src allows `{v}` (CSP Evaluator: OBJECT_ALLOWLIST_BYPASS, medium_maybe)"),
                "can you restrict object-src to 'none' only? `object-src = [\"'none'\"]`",
            ));
        }
    }

    // checkIpSource
    for (d, values) in &eff.dirs {
        for v in values {
            let host = hostname(v);
            if !looks_like_ip(&host) {
                continue;
            }
            if host == "127.0.0.1" {
                out.push(finding(
                    code::IP_SOURCE,
                    Some(d),
                    format!("{d} allows localhost as source (CSP Evaluator: IP_SOURCE, info)"),
                    format!("remove `{v}` from {d} for production"),
                ));
            } else {
                out.push(finding(
                    code::IP_SOURCE,
                    Some(d),
                    format!("{d} has an IP address as source: {host}, which browsers ignore (CSP Evaluator: IP_SOURCE, info)"),
                    format!("use the host name instead of `{v}`"),
                ));
            }
        }
    }

    // checkNonceLength
    for (d, values) in &eff.dirs {
        for v in values {
            if nonce_value(v).is_some_and(|n| n.len() < 8) {
                out.push(finding(
                    code::NONCE_LENGTH,
                    Some(d),
                    format!("nonce `{v}` in {d} is shorter than 8 characters (CSP Evaluator: NONCE_LENGTH, medium)"),
                    "use a fresh random nonce per response, at least 128 bits (22+ base64 characters)",
                ));
            }
        }
    }

    // checkSrcHttp
    for (d, values) in &eff.dirs {
        for v in values {
            if strip_prefix_ci(v, "http://").is_none() {
                continue;
            }
            if d == "report-uri" {
                out.push(finding(
                    code::SRC_HTTP,
                    Some(d),
                    format!(
                        "report-uri `{v}` sends violation reports over plain http (CSP Evaluator: SRC_HTTP, medium)"
                    ),
                    "send reports to an https:// URL or a path on this site (`report_to`)",
                ));
            } else {
                out.push(finding(
                    code::SRC_HTTP,
                    Some(d),
                    format!("{d} allows `{v}` over plain http (CSP Evaluator: SRC_HTTP, medium)"),
                    format!("write `https://{}`", v.get(7..).unwrap_or_default()),
                ));
            }
        }
    }

    // checkDeprecatedDirective (the others are unknown directives, E030)
    if eff.has("prefetch-src") {
        out.push(finding(
            code::DEPRECATED_DIRECTIVE,
            Some("prefetch-src"),
            "prefetch-src is deprecated since CSP3 (CSP Evaluator: DEPRECATED_DIRECTIVE, info)".to_owned(),
            "remove prefetch-src; browsers may stop honouring it at any time",
        ));
    }

    // checkMissingSemicolon
    for (d, values) in &eff.dirs {
        for v in values {
            if EVALUATOR_DIRECTIVES.contains(&v.as_str()) {
                out.push(finding(
                    code::MISSING_SEMICOLON,
                    Some(d),
                    format!(
                        "`{v}` in {d} seems to be a directive, not a value (CSP Evaluator: MISSING_SEMICOLON, syntax)"
                    ),
                    format!("give `{v}` its own key under [csp.directives]"),
                ));
            }
        }
    }

    out
}

#[cfg(test)]
mod tests {
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
}
