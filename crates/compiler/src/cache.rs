//! The edge cache and what keeps pages up when the origin is not: a route's `cache` table,
//! `[cache]`, `[fallback]` and `[maintenance]` (edgeguard_core::cache holds the rules at run time).

use std::path::Path;

use edgeguard_core::cache::{CacheSettings, EdgeCache, Fallback, Maintenance};
use edgeguard_core::glob::Glob;

use crate::diagnostics::Diagnostic;
use crate::headers::validate_name;
use crate::model::{CacheDef, CacheSettingsDef, FallbackDef, MaintenanceDef, S};
use crate::units::duration;
use crate::{Ctx, access, codes};

/// Largest fallback page: it travels in every bundle, and a page that needs more than this is
/// not the static stand-in it should be.
pub const MAX_PAGE_BYTES: usize = 64 * 1024;

/// Whole seconds of a duration value, `default` when absent; an error for anything else.
fn seconds(ctx: &mut Ctx, value: Option<&S<String>>, default: u64) -> u64 {
    let ms = duration(ctx, value, default.saturating_mul(1000));
    match value {
        Some(v) if !ms.is_multiple_of(1000) => {
            ctx.push(Diagnostic::error(codes::DURATION, v.span(), format!("`{}` is not a whole number of seconds", v.get_ref())).help("cache lifetimes are in whole seconds: \"30s\", \"5m\", \"1h\", \"1d\""));
            default
        }
        _ => ms / 1000,
    }
}

/// A route's edge cache table. `gated` says the route asks for an API key or a cookie: its
/// answers are for whoever passed, and `credentialed` would share one client's with the next.
pub fn edge_rule(ctx: &mut Ctx, def: &CacheDef, span: std::ops::Range<usize>, gated: bool) -> Option<EdgeCache> {
    let rule = EdgeCache {
        edge_secs: seconds(ctx, def.edge.as_ref(), 0),
        swr_secs: seconds(ctx, def.stale_while_revalidate.as_ref(), 0),
        sie_secs: seconds(ctx, def.stale_if_error.as_ref(), 0),
        credentialed: def.credentialed.as_ref().is_some_and(|c| *c.get_ref()),
    };
    if rule.keep_secs() == 0 {
        ctx.push(
            Diagnostic::warning(codes::CACHE_STORES_NOTHING, span, "this edge cache keeps nothing: `edge`, `stale_while_revalidate` and `stale_if_error` are all 0")
                .help("set `edge = \"5m\"` to answer from the cache, or `stale_if_error = \"1d\"` to keep a copy for when the origin fails"),
        );
        return None;
    }
    if rule.edge_secs == 0 && rule.swr_secs > 0 {
        let at = def.stale_while_revalidate.as_ref().map_or(span.clone(), |v| v.span());
        ctx.push(
            Diagnostic::warning(codes::CACHE_STORES_NOTHING, at, "`stale_while_revalidate` without `edge`: every copy is stale at once, so each request is answered stale")
                .help("set `edge` to how long a copy is fresh"),
        );
    }
    if rule.credentialed && gated {
        let at = def.credentialed.as_ref().map_or(span, |v| v.span());
        ctx.push(
            Diagnostic::warning(codes::CACHE_CREDENTIALED, at, "`credentialed = true` on a route that requires an API key or a cookie: one client's answer is served to the next")
                .help("remove `credentialed` unless every client gets the same answer here"),
        );
    }
    Some(rule)
}

/// `[cache]`; `api_key_headers` make a request personal as `Authorization` does.
pub fn settings(ctx: &mut Ctx, def: Option<&CacheSettingsDef>, api_key_headers: impl Iterator<Item = String>) -> CacheSettings {
    let mut out = CacheSettings::default();
    let Some(def) = def else {
        out.personal_headers.extend(api_key_headers);
        out.personal_headers.sort();
        out.personal_headers.dedup();
        return out;
    };
    if let Some(v) = &def.version {
        let text = v.get_ref();
        if text.is_empty() || text.len() > 64 || !text.bytes().all(|b| b.is_ascii_graphic()) {
            ctx.push(Diagnostic::error(codes::CACHE, v.span(), format!("`{text}` is not a cache version")).help("use 1 to 64 visible ASCII characters, e.g. \"2\" or \"2026-12-06\""));
        } else {
            out.version = text.clone();
        }
    }
    if let Some(list) = &def.personal_cookies {
        out.personal_cookies = list.iter().filter_map(|c| access::require_cookie(ctx, Some(c))).collect::<Vec<Glob>>();
    }
    for h in def.personal_headers.iter().flatten() {
        if let Some(name) = validate_name(ctx, h) {
            out.personal_headers.push(name);
        }
    }
    out.personal_headers.extend(api_key_headers);
    out.personal_headers.sort();
    out.personal_headers.dedup();
    out
}

/// `[fallback]`; `base_dir` is where `page_file` is read from (none in the playground).
pub fn fallback(ctx: &mut Ctx, def: Option<&FallbackDef>, base_dir: Option<&Path>, table_span: std::ops::Range<usize>) -> Option<Fallback> {
    let def = def?;
    let retry_after_secs = seconds(ctx, def.retry_after.as_ref(), 60);
    let (html, span) = match (&def.page, &def.page_file) {
        (Some(page), None) => (page.get_ref().clone(), page.span()),
        (None, Some(file)) => (read_page(ctx, file, base_dir)?, file.span()),
        (Some(page), Some(_)) => {
            ctx.push(Diagnostic::error(codes::FALLBACK, page.span(), "[fallback] has both `page` and `page_file`").help("keep one: the HTML inline in `page`, or a file in `page_file`"));
            return None;
        }
        (None, None) => {
            ctx.push(Diagnostic::error(codes::FALLBACK, table_span, "[fallback] names no page").help("add `page_file = \"fallback.html\"` (next to the policy) or the HTML inline in `page`"));
            return None;
        }
    };
    if html.len() > MAX_PAGE_BYTES {
        ctx.push(
            Diagnostic::error(codes::FALLBACK, span, format!("the fallback page is {} bytes; the limit is {MAX_PAGE_BYTES}", html.len()))
                .help("a fallback page is one static file: inline its CSS, leave out images larger than a few KiB"),
        );
        return None;
    }
    let lower = html.to_ascii_lowercase();
    if !lower.trim_start().starts_with("<!doctype html") && !lower.contains("<html") {
        ctx.push(Diagnostic::error(codes::FALLBACK, span, "the fallback page is not an HTML document").help("start it with <!doctype html>"));
        return None;
    }
    if lower.contains("<script") || lower.contains("<link") {
        ctx.push(
            Diagnostic::warning(codes::FALLBACK_EXTERNAL, span.clone(), "the fallback page has a <script> or <link>: it is served with `default-src 'none'`, so neither loads")
                .help("inline the CSS in a <style> element and leave scripts out: the page must work when nothing else does"),
        );
    }
    Some(Fallback { html, retry_after_secs })
}

fn read_page(ctx: &mut Ctx, file: &S<String>, base_dir: Option<&Path>) -> Option<String> {
    let Some(base) = base_dir else {
        ctx.push(Diagnostic::error(codes::FALLBACK, file.span(), "`page_file` cannot be read here (no policy directory)").help("put the HTML inline in `page`"));
        return None;
    };
    let path = base.join(file.get_ref());
    match std::fs::metadata(&path) {
        Ok(m) if m.len() > MAX_PAGE_BYTES as u64 => {
            ctx.push(Diagnostic::error(codes::FALLBACK, file.span(), format!("`{}` is {} bytes; the limit is {MAX_PAGE_BYTES}", file.get_ref(), m.len())).help("a fallback page is one small static file"));
            return None;
        }
        _ => {}
    }
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => {
            ctx.push(Diagnostic::error(codes::FALLBACK, file.span(), format!("`{}` cannot be read: {e}", path.display())).help("the path is relative to the policy file"));
            None
        }
    }
}

/// `[maintenance]` (maintenance mode itself is the worker var `EDGE_MAINTENANCE`).
pub fn maintenance(ctx: &mut Ctx, def: Option<&MaintenanceDef>) -> Maintenance {
    let Some(def) = def else { return Maintenance { retry_after_secs: 600, ..Maintenance::default() } };
    Maintenance {
        allow_ips: access::cidrs(ctx, def.allow_ips.as_ref()),
        bypass_header: def.bypass_header.as_ref().and_then(|h| validate_name(ctx, h)),
        retry_after_secs: seconds(ctx, def.retry_after.as_ref(), 600),
    }
}
