//! What the edge answered against what a case expects: the fields that differ.

use std::collections::BTreeMap;

use edgeguard_core::explain::Explanation;


use super::cases::{Expect, Pattern, RateLimitExpect};
use super::Mismatch;

/// A JSON rendering of a value in a diff (strings quoted and escaped).
fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

pub(super) fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_owned(), json_str)
}

/// `<field>` (exact values) and `<field>_match` (patterns) against one header map of the
/// explanation (`response_headers` or `forward_headers`).
fn compare_header_map(
    field: &str,
    exact: &[(String, String)],
    patterns: &[(String, Pattern)],
    got: &BTreeMap<String, String>,
    differ: &mut impl FnMut(String, String, String),
) {
    let shown = |g: Option<&String>| g.map_or_else(|| "(absent)".to_owned(), |g| json_str(g));
    for (name, want) in exact {
        let value = got.get(name);
        if value != Some(want) {
            differ(format!("{field}.{name}"), json_str(want), shown(value));
        }
    }
    for (name, p) in patterns {
        let value = got.get(name);
        if !value.is_some_and(|g| p.is_match(g)) {
            differ(format!("{field}_match.{name}"), format!("a value matching /{}/", p.source), shown(value));
        }
    }
}

/// Every expectation the explanation does not meet, in the order of the contract's fields.
pub(super) fn compare(x: &Expect, e: &Explanation) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut differ = |field: String, expected: String, actual: String| out.push(Mismatch { field, expected, actual });
    compare_decision(x, e, &mut differ);
    compare_client(x, e, &mut differ);
    compare_headers(x, e, &mut differ);
    compare_rate_limit_and_session(x, e, &mut differ);
    out
}

/// The decision: action, status, reason, route, origin, location, path, detail, shadow mode,
/// the CSP nonce and the cache.
fn compare_decision(x: &Expect, e: &Explanation, differ: &mut impl FnMut(String, String, String)) {
    let status = |s: Option<u16>| s.map_or_else(|| "null".to_owned(), |s| s.to_string());
    let action = e.action.code();
    if let Some(want) = &x.action
        && want != action
    {
        differ("action".into(), json_str(want), json_str(action));
    }
    if let Some(want) = x.status
        && want != e.status
    {
        differ("status".into(), status(want), status(e.status));
    }
    if let Some(want) = &x.reason
        && want != e.reason.code()
    {
        differ("reason".into(), json_str(want), json_str(e.reason.code()));
    }
    for (field, want, got) in [("route", &x.route, &e.route), ("origin", &x.origin, &e.origin), ("location", &x.location, &e.location)] {
        if let Some(want) = want
            && want != got
        {
            differ(field.into(), json_opt(want.as_deref()), json_opt(got.as_deref()));
        }
    }
    if let Some(want) = &x.path
        && *want != e.path
    {
        differ("path".into(), json_str(want), json_str(&e.path));
    }
    if let Some(want) = &x.detail_contains
        && !e.detail.contains(want.as_str())
    {
        differ("detail_contains".into(), format!("a detail containing {}", json_str(want)), json_str(&e.detail));
    }
    if let Some(want) = x.shadow_refused
        && want != e.shadow_refused
    {
        differ("shadow_refused".into(), want.to_string(), e.shadow_refused.to_string());
    }
    let csp_nonce = e.csp_nonce.as_ref().map_or("off", |n| n.mode);
    if let Some(want) = &x.csp_nonce
        && want != csp_nonce
    {
        differ("csp_nonce".into(), json_str(want), json_str(csp_nonce));
    }
    let cache = e.cache.as_ref().map_or("off", |c| c.mode);
    if let Some(want) = &x.cache
        && want != cache
    {
        differ("cache".into(), json_str(want), json_str(cache));
    }
}

/// What the edge made of the client: bot category and verification, suspicion score and the
/// shield rule that matched.
fn compare_client(x: &Expect, e: &Explanation, differ: &mut impl FnMut(String, String, String)) {
    let bot = e.client.bot.map_or("none", |b| b.category.code());
    if let Some(want) = &x.bot
        && want != bot
    {
        differ("client.bot.category".into(), json_str(want), json_str(bot));
    }
    if let Some(want) = x.bot_verified {
        let got = e.client.bot.is_some_and(|b| b.verified);
        if want != got {
            differ("client.bot.verified".into(), want.to_string(), got.to_string());
        }
    }
    if let Some(want) = x.suspicion {
        let got = e.client.suspicion.as_ref().map(|s| u64::from(s.score));
        if Some(want) != got {
            differ("client.suspicion.score".into(), want.to_string(), got.map_or_else(|| "null (no [shield])".to_owned(), |g| g.to_string()));
        }
    }
    let matched = e.client.suspicion.as_ref().and_then(|s| s.matched).map_or("none", |m| m.kind.code());
    if let Some(want) = &x.shield_match
        && want != matched
    {
        differ("client.suspicion.matched.kind".into(), json_str(want), json_str(matched));
    }
}

/// The response headers (exact, by pattern, absent, present), the headers removed and
/// stripped, and the headers forwarded to the origin.
fn compare_headers(x: &Expect, e: &Explanation, differ: &mut impl FnMut(String, String, String)) {
    let absent = || "(absent)".to_owned();
    let headers = &e.response_headers;
    compare_header_map("headers", &x.headers, &x.headers_match, headers, differ);
    for name in &x.headers_absent {
        if let Some(got) = headers.get(name) {
            differ(format!("headers_absent.{name}"), absent(), json_str(got));
        }
    }
    for name in &x.headers_present {
        if !headers.contains_key(name) {
            differ(format!("headers_present.{name}"), "(present)".to_owned(), absent());
        }
    }
    for name in &x.removes {
        if !e.remove_headers.contains(name) {
            let list = serde_json::Value::from(e.remove_headers.clone()).to_string();
            differ("removes".into(), format!("a list containing {}", json_str(name)), list);
        }
    }
    for name in &x.strips {
        if !e.strip_request_headers.contains(name) {
            let list = serde_json::Value::from(e.strip_request_headers.clone()).to_string();
            differ("strips".into(), format!("a list containing {}", json_str(name)), list);
        }
    }
    compare_header_map("forward_headers", &x.forward_headers, &x.forward_headers_match, &e.forward_headers, differ);
}

/// The rate limit report and the session state.
fn compare_rate_limit_and_session(x: &Expect, e: &Explanation, differ: &mut impl FnMut(String, String, String)) {
    match (&x.rate_limit, &e.rate_limit) {
        (None, _) | (Some(None), None) => {}
        (Some(None), Some(got)) => differ("rate_limit".into(), "null".into(), rate_limit_json(got)),
        (Some(Some(want)), None) => differ("rate_limit".into(), rate_limit_expect_json(want), "null".into()),
        (Some(Some(want)), Some(got)) => {
            if let Some(name) = &want.name
                && *name != got.name
            {
                differ("rate_limit.name".into(), json_str(name), json_str(&got.name));
            }
            if let Some(key) = &want.key
                && *key != got.key
            {
                differ("rate_limit.key".into(), json_str(key), json_str(&got.key));
            }
            for (field, want, got) in [
                ("rate_limit.limit", want.limit, got.limit),
                ("rate_limit.remaining", want.remaining, got.remaining),
                ("rate_limit.reset", want.reset, got.reset),
            ] {
                if let Some(want) = want
                    && want != got
                {
                    differ(field.into(), want.to_string(), got.to_string());
                }
            }
        }
    }
    let session = e.session.as_ref().map_or("none", |s| s.state);
    if let Some(want) = &x.session
        && want != session
    {
        differ("session".into(), json_str(want), json_str(session));
    }
}

fn rate_limit_json(r: &edgeguard_core::explain::RateLimitReport) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

fn rate_limit_expect_json(r: &RateLimitExpect) -> String {
    let mut map = serde_json::Map::new();
    if let Some(n) = &r.name {
        map.insert("name".into(), n.as_str().into());
    }
    if let Some(k) = &r.key {
        map.insert("key".into(), k.as_str().into());
    }
    for (k, v) in [("limit", r.limit), ("remaining", r.remaining), ("reset", r.reset)] {
        if let Some(v) = v {
            map.insert(k.into(), v.into());
        }
    }
    serde_json::Value::Object(map).to_string()
}

