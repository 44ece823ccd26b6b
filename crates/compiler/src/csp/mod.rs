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

use crate::diagnostics::Diagnostic;
use crate::{Ctx, model};

/// Diagnostic codes of this module (stable; listed in docs/diagnostics.md).
/// CSP diagnostic codes live with the others in `crate::codes`.
use crate::codes as code;

mod directives;
mod evaluator;
mod lint;
mod sources;
mod strict;
#[cfg(test)]
mod tests;

pub use lint::lint;
pub use strict::{strict_header, strict_plan};

use directives::{Change, check_report_to, validate_directives};

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

