//! `[limits.<name>]`, inline route limits and `[limiter]`: GCRA rate + burst, key, scope, mode.

use std::collections::BTreeMap;

use core::ops::Range;

use edgeguard_core::bundle::{Limit, LimitKey, Scope};
use edgeguard_core::limits::policy_header;

use crate::diagnostics::{Diagnostic, suggest};
use crate::model::{LimitDef, LimitMode, LimitRef, S};
use crate::names::Names;
use crate::units::{RATE_HELP, rate};
use crate::{Ctx, codes, model};

pub const DEFAULT_MAX_KEYS: u32 = 100_000;
pub const DEFAULT_GLOBAL_SHARDS: u32 = 16;

/// Named limits compiled in name order; the index is what routes refer to.
pub struct Limits {
    pub table: Vec<Limit>,
    pub names: Names,
    /// The session sources: a `session:<claim>` key registers the claim it reads, as a route's
    /// `require_session` does.
    pub sessions: crate::sessions::Table,
}

pub fn compile(ctx: &mut Ctx, defs: &BTreeMap<S<String>, LimitDef>, sessions: crate::sessions::Table) -> Limits {
    let names = Names::new("limits", "limit", codes::UNDEFINED_LIMIT, ", write it inline, or use \"none\"");
    let mut limits = Limits { table: Vec::new(), names, sessions };
    for (name, def) in defs {
        if name.get_ref() == "none" {
            ctx.push(
                Diagnostic::error(codes::LIMIT, name.span(), "`none` is reserved: `limit = \"none\"` turns limiting off for a route")
                    .help("pick another name"),
            );
            continue;
        }
        let at = format!("limits.{}", name.get_ref());
        let index = compile_def(ctx, &mut limits.sessions, name.get_ref(), def, name.span(), &at).and_then(|limit| {
            let index = u16::try_from(limits.table.len()).ok()?;
            limits.table.push(limit);
            Some(index)
        });
        limits.names.define(name.get_ref(), index);
    }
    limits
}

/// Resolve a `limit` value written at `at` ("routes[3].limit"): `None` for "none", an index for
/// a named or inline limit.
pub fn resolve(ctx: &mut Ctx, limits: &mut Limits, value: &S<LimitRef>, route_name: &str, at: &str) -> Option<u16> {
    match value.get_ref() {
        LimitRef::Named(name) if name == "none" => None,
        LimitRef::Named(name) => limits.names.lookup(ctx, name, value.span()),
        LimitRef::Inline(def) => {
            let limit = compile_def(ctx, &mut limits.sessions, route_name, def, value.span(), at)?;
            let index = u16::try_from(limits.table.len()).ok()?;
            limits.table.push(limit);
            Some(index)
        }
    }
}

pub fn global_shards(ctx: &mut Ctx, limiter: Option<&model::LimiterDef>) -> u32 {
    let Some(v) = limiter.and_then(|l| l.global_shards.as_ref()) else { return DEFAULT_GLOBAL_SHARDS };
    match u32::try_from(*v.get_ref()) {
        Ok(n) if (1..=1024).contains(&n) => n,
        _ => {
            ctx.push(
                Diagnostic::error(codes::LIMIT, v.span(), format!("limiter.global_shards is {}; it must be between 1 and 1024", v.get_ref()))
                    .help("each shard is one Durable Object; 16 (the default) spreads load while keeping each key on one object"),
            );
            DEFAULT_GLOBAL_SHARDS
        }
    }
}

pub fn max_keys(ctx: &mut Ctx, limiter: Option<&model::LimiterDef>) -> u32 {
    let Some(v) = limiter.and_then(|l| l.max_keys.as_ref()) else { return DEFAULT_MAX_KEYS };
    match u32::try_from(*v.get_ref()) {
        Ok(n) if (1_000..=10_000_000).contains(&n) => n,
        _ => {
            ctx.push(
                Diagnostic::error(codes::LIMIT, v.span(), format!("limiter.max_keys is {}; it must be between 1000 and 10000000", v.get_ref()))
                    .help("each key costs about 20 bytes; 100000 (the default) is ~2.5 MB of a 128 MB isolate"),
            );
            DEFAULT_MAX_KEYS
        }
    }
}

/// A limit definition written at `at` ("limits.api").
fn compile_def(ctx: &mut Ctx, sessions: &mut crate::sessions::Table, name: &str, def: &LimitDef, fallback: Range<usize>, at: &str) -> Option<Limit> {
    let Some(rate_text) = &def.rate else {
        if !ctx.unread(&format!("{at}.rate")) {
            ctx.push(
                Diagnostic::error(codes::MISSING, fallback, format!("limit `{name}` has no `rate`"))
                    .help("add rate = \"100/15m\" (requests per window)"),
            );
        }
        return None;
    };
    let (count, window_secs) = match rate(rate_text.get_ref()) {
        Ok(r) => r,
        Err(e) => {
            ctx.push(Diagnostic::error(codes::RATE, rate_text.span(), e).help(RATE_HELP));
            return None;
        }
    };
    let burst = match &def.burst {
        None => count,
        Some(b) => match u64::try_from(*b.get_ref()) {
            Ok(n) if n >= 1 => {
                if n > count {
                    ctx.push(
                        Diagnostic::warning(codes::BURST_OVER_QUOTA, b.span(), format!("burst {n} is larger than the {count} requests the rate allows per window"))
                            .help("a client can spend the whole burst at once; keep burst ≤ the rate's count"),
                    );
                }
                n
            }
            _ => {
                ctx.push(Diagnostic::error(codes::LIMIT, b.span(), "burst must be a whole number of at least 1").help("burst is how many requests may arrive at once"));
                return None;
            }
        },
    };
    let (key, key_name, session) = match &def.key {
        None => (LimitKey::Ip, None, None),
        Some(k) => match k.get_ref().trim().strip_prefix("session:") {
            Some(claim) => {
                let (claim, session) = crate::sessions::limit_key(ctx, sessions, claim.trim(), k.span())?;
                (LimitKey::Session, Some(claim), Some(session))
            }
            None => {
                let (key, name) = parse_key(ctx, k)?;
                (key, name, None)
            }
        },
    };
    let interval_ms = window_secs.saturating_mul(1000).checked_div(count).unwrap_or(0);
    if interval_ms < 1 {
        ctx.push(
            Diagnostic::warning(codes::LIMIT_TOO_HIGH, rate_text.span(), format!("limit `{name}` allows more than 1000 requests per second per client, which is probably not a limit"))
                .help("check the window unit (\"100/1m\", not \"100000/1m\")"),
        );
    } else if burst <= 1 && interval_ms > 600_000 {
        ctx.push(
            Diagnostic::warning(codes::LIMIT_TOO_LOW, rate_text.span(), format!("limit `{name}` admits one request and then locks the client out for {} minutes", interval_ms / 60_000))
                .help("allow a small burst so one retry does not lock users out"),
        );
    }
    let scope = match def.scope.as_ref().map(|s| *s.get_ref()) {
        Some(model::Scope::Global) => Scope::Global,
        Some(model::Scope::Cloudflare) => Scope::Cloudflare,
        _ => Scope::Local,
    };
    if scope == Scope::Cloudflare {
        if window_secs != 10 && window_secs != 60 {
            ctx.push(
                Diagnostic::error(codes::LIMIT, rate_text.span(), format!("scope \"cloudflare\" counts over 10 s or 60 s windows only, not {window_secs} s"))
                    .help(format!(
                        "write the rate per 10s or 1m (e.g. \"{}/1m\"), or use scope = \"global\" for exact fleet-wide counting over any window; the Cloudflare binding is cheap but counts per location and eventually consistently",
                        count.saturating_mul(60).checked_div(window_secs).unwrap_or(count).max(1)
                    )),
            );
        }
        if let Some(b) = def.burst.as_ref().filter(|_| burst != count) {
            ctx.push(
                Diagnostic::warning(codes::BURST_OVER_QUOTA, b.span(), "the Cloudflare rate-limit binding has no separate burst; it admits the whole count per window")
                    .help("drop `burst`, or use scope = \"global\" for GCRA with a burst"),
            );
        }
    }
    let on_error_deny = def.on_error.as_ref().is_some_and(|o| *o.get_ref() == model::OnError::Deny);
    if let Some(o) = def.on_error.as_ref().filter(|_| scope == Scope::Local && !ctx.unread(&format!("{at}.scope"))) {
        ctx.push(
            Diagnostic::warning(codes::LIMIT, o.span(), "`on_error` only applies to global and cloudflare limits; a local limit cannot fail")
                .help("remove it, or set scope = \"global\""),
        );
    }
    Some(Limit {
        name: name.to_owned(),
        count,
        window_secs,
        burst,
        key,
        key_name,
        scope,
        shadow: def.mode.as_ref().is_some_and(|m| *m.get_ref() == LimitMode::Shadow),
        on_error_deny,
        policy_header: policy_header(name, count, window_secs),
        session,
        geo: def.geo.as_ref().map(|g| crate::geo::compile(ctx, g, &format!("{at}.geo"))),
    })
}

fn parse_key(ctx: &mut Ctx, key: &S<String>) -> Option<(LimitKey, Option<String>)> {
    let text = key.get_ref().trim();
    let named = |prefix: &str| text.strip_prefix(prefix).map(str::trim).filter(|n| !n.is_empty());
    let result = match text {
        "ip" => Some((LimitKey::Ip, None)),
        "ip+route" => Some((LimitKey::IpRoute, None)),
        _ => {
            if let Some(h) = named("header:").filter(|h| h.bytes().all(edgeguard_core::sanitize::is_tchar)) {
                Some((LimitKey::Header, Some(h.to_ascii_lowercase())))
            } else {
                named("cookie:").map(|c| (LimitKey::Cookie, Some(c.to_owned())))
            }
        }
    };
    if result.is_none() {
        let mut d = Diagnostic::error(codes::LIMIT, key.span(), format!("`{text}` is not a limit key"));
        d = match suggest(text, ["ip", "ip+route"]) {
            Some(best) => d.help(format!("did you mean \"{best}\"? keys: \"ip\", \"header:<name>\", \"cookie:<name>\", \"session:<claim>\", \"ip+route\"")),
            None => d.help("keys: \"ip\", \"header:<name>\", \"cookie:<name>\", \"session:<claim>\", \"ip+route\""),
        };
        ctx.push(d);
    }
    result
}
