//! The warnings on a compiled policy: which policy the CSP Evaluator checks run on (the strict
//! one in enforce mode), where they point, and the report-only and strict-mode notes.

use core::ops::Range;

use super::evaluator::{Policy, evaluate, is_hash, is_nonce};
use super::strict::strict_plan_with_nonce;
use super::{CspPlan, rendered};
use crate::codes as code;
use crate::diagnostics::Diagnostic;
use crate::{Ctx, model};

/// Warnings with the same findings as Google's CSP Evaluator on the rendered policy (see the
/// module docs for the subset), plus W020 for report-only. Nothing when no header is sent.
/// Each points at the directive's span (its value), or at `fallback` when the directive has
/// none (preset-derived). A finding about a *missing* directive points at the first directive
/// written in the policy (the place to add it), or at `fallback` when none was written.
///
/// With `strict = "nonce"` the checks run on what protects HTML pages: in enforce mode the
/// strict policy (with a realistic nonce, [`LINT_NONCE`](super::LINT_NONCE)); in report-only mode the legacy policy,
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

