//! `[origins.<name>]` and `[deploy]`: where forwarded requests go.

use std::collections::BTreeMap;

use core::ops::Range;

use edgeguard_core::bundle::{Canary, Deploy, Origin};

use crate::diagnostics::Diagnostic;
use crate::model::{OriginDef, S};
use crate::names::Names;
use crate::units::{DURATION_HELP, duration_ms};
use crate::{Ctx, codes, model};

pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

pub struct Origins {
    pub table: Vec<Origin>,
    pub names: Names,
    pub deploy: Deploy,
}

pub fn compile(ctx: &mut Ctx, defs: &BTreeMap<S<String>, OriginDef>, deploy: Option<&model::Deploy>, top: Range<usize>) -> Origins {
    let mut table = Vec::new();
    let mut names = Names::new("origins", "origin", codes::UNDEFINED_ORIGIN, "");
    for (name, def) in defs {
        let origin = origin(ctx, name, def);
        let index = origin.and_then(|o| {
            let index = u16::try_from(table.len()).ok()?;
            table.push(o);
            Some(index)
        });
        names.define(name.get_ref(), index);
    }
    if defs.is_empty() && !ctx.unread("origins") {
        ctx.push(
            Diagnostic::warning(codes::NO_ORIGIN, top.clone(), "the policy defines no origin, so forwarded requests have nowhere to go")
                .help("add [origins.app] url = \"https://your-app.fly.dev\""),
        );
    }
    let active = match deploy.and_then(|d| d.active.as_ref()) {
        Some(a) => names.lookup(ctx, a.get_ref(), a.span()),
        None => {
            if names.len() > 1
                && !ctx.unread("deploy.active")
                && let Some((first, _)) = defs.iter().next()
            {
                ctx.push(
                    Diagnostic::error(codes::DEPLOY, first.span(), "several origins are defined but [deploy] does not say which is active")
                        .help(format!("add [deploy] active = \"{}\"", first.get_ref())),
                );
            }
            None
        }
    };
    let mut canary = None;
    if let Some(c) = deploy.and_then(|d| d.canary.as_ref()) {
        let origin = c.origin.as_ref().and_then(|o| {
            let i = names.lookup(ctx, o.get_ref(), o.span())?;
            if active == Some(i) {
                ctx.push(Diagnostic::error(codes::DEPLOY, o.span(), "the canary origin is the active origin").help("name the other origin, or remove the canary"));
                return None;
            }
            Some(i)
        });
        let basis_points = match &c.percent {
            None => 0,
            Some(p) => {
                let v = *p.get_ref();
                if (0.0..=100.0).contains(&v) {
                    (v * 100.0).round() as u32
                } else {
                    ctx.push(Diagnostic::error(codes::DEPLOY, p.span(), format!("canary percent {v} is outside 0–100")).help("use a share such as 5, 25 or 100"));
                    0
                }
            }
        };
        if c.origin.is_none() && !ctx.unread("deploy.canary.origin") {
            ctx.push(Diagnostic::error(codes::MISSING, top.clone(), "[deploy.canary] has no `origin`").help("add origin = \"green\""));
        }
        canary = origin.map(|origin| Canary { origin, basis_points });
    }
    let sticky_cookie = match deploy.and_then(|d| d.sticky_cookie.as_ref()) {
        Some(c) if !c.get_ref().is_empty() && c.get_ref().bytes().all(edgeguard_core::sanitize::is_tchar) => c.get_ref().clone(),
        Some(c) => {
            ctx.push(Diagnostic::error(codes::DEPLOY, c.span(), format!("`{}` is not a cookie name", c.get_ref())).help("use letters, digits, `_` and `-`"));
            "eg_lane".into()
        }
        None => "eg_lane".into(),
    };
    let failover_methods = failover_methods(ctx, deploy, names.len());
    Origins { table, names, deploy: Deploy { active: active.unwrap_or(0), canary, sticky_cookie, failover_methods } }
}

/// One `[origins.<name>]`, or `None` when it has an error (reported).
fn origin(ctx: &mut Ctx, name: &S<String>, def: &OriginDef) -> Option<Origin> {
    let Some(url) = &def.url else {
        if !ctx.unread(&format!("origins.{}.url", name.get_ref())) {
            ctx.push(Diagnostic::error(codes::MISSING, name.span(), format!("origin `{}` has no `url`", name.get_ref())).help("add url = \"https://your-app.fly.dev\""));
        }
        return None;
    };
    if !valid_url(url.get_ref()) {
        ctx.push(
            Diagnostic::error(codes::ORIGIN_URL, url.span(), format!("`{}` is not an origin URL", url.get_ref()))
                .help("write scheme, host and optional port and base path, e.g. \"https://quotekit-blue.fly.dev\" (no query or fragment)"),
        );
        return None;
    }
    let timeout_ms = match &def.timeout {
        None => DEFAULT_TIMEOUT_MS,
        Some(t) => match duration_ms(t.get_ref()) {
            Ok(ms) if ms > 0 => ms,
            Ok(_) => {
                ctx.push(Diagnostic::error(codes::DURATION, t.span(), "an origin timeout of 0 fails every request").help(DURATION_HELP));
                DEFAULT_TIMEOUT_MS
            }
            Err(e) => {
                ctx.push(Diagnostic::error(codes::DURATION, t.span(), e).help(DURATION_HELP));
                DEFAULT_TIMEOUT_MS
            }
        },
    };
    Some(Origin { name: name.get_ref().clone(), url: url.get_ref().trim_end_matches('/').to_owned(), timeout_ms })
}

/// The methods that fail over: GET, HEAD, OPTIONS with `failover = true`, or the written
/// `failover_methods` (idempotent methods only — a retried POST could charge a card twice).
fn failover_methods(ctx: &mut Ctx, deploy: Option<&model::Deploy>, origins: usize) -> u16 {
    use edgeguard_core::bundle::method;
    let Some(d) = deploy else { return 0 };
    let enabled = d.failover.as_ref().map(|f| (*f.get_ref(), f.span()));
    let mut mask = match (&d.failover_methods, enabled) {
        (_, Some((false, _))) => return 0,
        (Some(list), _) => {
            let mut mask = 0u16;
            for m in list {
                let bit = method::bit(m.get_ref());
                let idempotent = method::GET | method::HEAD | method::OPTIONS | method::PUT | method::DELETE;
                if bit & idempotent == 0 {
                    ctx.push(
                        Diagnostic::error(codes::DEPLOY, m.span(), format!("`{}` cannot fail over: only idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) may be sent twice", m.get_ref()))
                            .help("a retried POST or PATCH could apply twice (a second charge, a second email)"),
                    );
                }
                mask |= bit;
            }
            mask
        }
        (None, Some((true, _))) => method::GET | method::HEAD | method::OPTIONS,
        (None, None) => 0,
    };
    if mask != 0 && origins < 2 {
        let span = d.failover.as_ref().map(|f| f.span()).or_else(|| d.failover_methods.as_ref().and_then(|l| l.first()).map(|m| m.span()));
        ctx.push(
            Diagnostic::error(codes::DEPLOY, span.unwrap_or(0..0), "failover needs a second origin to fail over to")
                .help("define another [origins.<name>], or remove failover"),
        );
        mask = 0;
    }
    mask
}

fn valid_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    if rest.contains(['?', '#', ' ', '\\']) || rest.bytes().any(|b| !b.is_ascii_graphic()) {
        return false;
    }
    let authority = rest.split('/').next().unwrap_or("");
    edgeguard_core::sanitize::normalize_host(authority).is_some()
}
