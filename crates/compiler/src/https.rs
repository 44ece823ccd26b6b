//! `[https]`: the http → https redirect and `Strict-Transport-Security`, with the
//! hstspreload.org eligibility rules and the MDN Observatory's thresholds as lints.

use core::ops::Range;

use edgeguard_core::bundle::Https;

use crate::diagnostics::Diagnostic;
use crate::model::{DurationOrSeconds, HstsValue, Preset};
use crate::units::{DURATION_HELP, duration_ms};
use crate::{Ctx, codes, model};

const YEAR: u64 = 31_536_000;
const HALF_YEAR: u64 = 15_552_000;

/// A validated HSTS setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hsts {
    pub max_age: u64,
    pub include_subdomains: bool,
    pub preload: bool,
}

impl Hsts {
    pub fn render(&self) -> String {
        let mut v = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if self.preload {
            v.push_str("; preload");
        }
        v
    }
}

/// The preset's HSTS when `[https] hsts` is not written.
fn preset_default(preset: Preset) -> Option<Hsts> {
    match preset {
        Preset::Helmet => Some(Hsts { max_age: YEAR, include_subdomains: true, preload: false }),
        Preset::Strict => Some(Hsts { max_age: 2 * YEAR, include_subdomains: true, preload: false }),
        Preset::None => None,
    }
}

pub fn compile(ctx: &mut Ctx, https: Option<&model::Https>, preset: Preset, fallback: Range<usize>) -> (Https, Option<String>) {
    let redirect = https.and_then(|h| h.redirect.as_ref()).is_none_or(|r| *r.get_ref());
    let hsts_value = https.and_then(|h| h.hsts.as_ref());
    let span = hsts_value.map_or(fallback, |v| v.span());
    let hsts = match hsts_value.map(|v| v.get_ref()) {
        None => preset_default(preset),
        Some(HstsValue::Enabled(false)) => None,
        Some(HstsValue::Enabled(true)) => preset_default(Preset::Helmet),
        Some(HstsValue::Settings(s)) => {
            let max_age = match &s.max_age {
                None => Some(YEAR),
                Some(DurationOrSeconds::Seconds(n)) => match u64::try_from(*n) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        ctx.push(
                            Diagnostic::error(codes::HSTS, span.clone(), format!("hsts.max_age is {n}; it cannot be negative"))
                                .help("use a duration such as \"1y\", or 0 to tell browsers to forget the site"),
                        );
                        None
                    }
                },
                Some(DurationOrSeconds::Text(t)) => match duration_ms(t) {
                    Ok(ms) => Some(ms / 1000),
                    Err(e) => {
                        ctx.push(Diagnostic::error(codes::HSTS, span.clone(), format!("hsts.max_age: {e}")).help(DURATION_HELP));
                        None
                    }
                },
            };
            max_age.map(|max_age| Hsts {
                max_age,
                include_subdomains: s.include_subdomains.unwrap_or(true),
                preload: s.preload.unwrap_or(false),
            })
        }
    };
    // The lints judge the setting as a whole; with a value of it taken out they would judge another.
    if let Some(h) = hsts.as_ref().filter(|_| !ctx.unread("https")) {
        lint(ctx, h, redirect, span);
    }
    (Https { redirect }, hsts.map(|h| h.render()))
}

fn lint(ctx: &mut Ctx, h: &Hsts, redirect: bool, span: Range<usize>) {
    if h.preload {
        if h.max_age < YEAR {
            ctx.push(
                Diagnostic::warning(
                    codes::HSTS_PRELOAD_SHORT,
                    span.clone(),
                    format!("`preload` is requested with max_age {} s; hstspreload.org requires at least 1 year (max_age.below_1_year)", h.max_age),
                )
                .help("set max_age = \"1y\" or more, or drop `preload`"),
            );
        }
        if !h.include_subdomains {
            ctx.push(
                Diagnostic::warning(codes::HSTS_PRELOAD_INELIGIBLE, span.clone(), "`preload` without include_subdomains is not eligible for the HSTS preload list (include_sub_domains.missing)")
                    .help("set include_subdomains = true once every subdomain serves https"),
            );
        }
        if !redirect {
            ctx.push(
                Diagnostic::warning(codes::HSTS_PRELOAD_INELIGIBLE, span.clone(), "`preload` needs http to redirect to https on the same host first (first_redirect.insecure)")
                    .help("set [https] redirect = true"),
            );
        }
    }
    if h.max_age > 10 * YEAR {
        ctx.push(
            Diagnostic::warning(codes::HSTS_OVER_10_YEARS, span.clone(), format!("hsts.max_age is {} s, over 10 years (max_age.over_10_years)", h.max_age))
                .help("2 years (\"2y\") is the usual ceiling"),
        );
    }
    if h.max_age > 0 && h.max_age < HALF_YEAR {
        ctx.push(
            Diagnostic::warning(codes::HSTS_SHORT, span.clone(), format!("hsts.max_age is {} s; the MDN Observatory wants at least 6 months (15552000 s) and deducts 10 points", h.max_age))
                .help("use max_age = \"1y\""),
        );
    }
    if !redirect {
        ctx.push(
            Diagnostic::warning(codes::HSTS_WITHOUT_REDIRECT, span, "HSTS is sent but plain http is not redirected, so first visits stay on http")
                .help("set [https] redirect = true"),
        );
    }
}
