//! Strict CSP (`strict = "nonce"`): the nonce-based policy HTML pages get, derived from the
//! written directives.

use super::evaluator::is_hash;
use super::{CSP_HEADER, CSP_REPORT_ONLY_HEADER, CspPlan, Directive, LINT_NONCE, rendered};
use crate::model;

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
/// legacy one). Same order and report directives as [`header`](super::header).
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
pub(super) fn strict_plan_with_nonce(plan: &CspPlan) -> Option<CspPlan> {
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

