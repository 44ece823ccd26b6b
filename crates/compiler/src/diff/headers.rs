//! A rule's response headers: security headers ranked strictest to laxest, HSTS, Cache-Control
//! and the CSP modes.

use core::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use edgeguard_core::bundle::HeaderSet;

use super::csp::diff_csp;
use super::Verdict;
use super::rules::{Delta, Facet, RuleView, aggregate, delta};
use super::text::secs_text;

#[derive(Debug, Clone, PartialEq, Eq)]
enum HState {
    /// Always this value (`set`).
    Set(String),
    /// This value when the origin sent none (`default`).
    Default(String),
    /// Stripped from the origin's response (`remove`).
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum CspMode {
    Off,
    ReportOnly,
    Enforce,
}

impl CspMode {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            CspMode::Off => "off",
            CspMode::ReportOnly => "report-only",
            CspMode::Enforce => "enforce",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CspView {
    pub(super) mode: CspMode,
    /// Directive → its sources (order does not matter in CSP).
    pub(super) directives: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HeaderView {
    /// Lowercase name → what the edge does with it (CSP headers excluded).
    headers: BTreeMap<String, HState>,
    hsts: Option<String>,
    cache: Option<String>,
    csp: Rc<CspView>,
    /// `[csp] strict = "nonce"`: the mode of the nonce-based policy HTML pages get (enforce or
    /// report-only) and its value. Its directives derive from the legacy CSP's, whose changes
    /// are reported as they are; here only turning it on, off or between modes counts.
    strict: Option<(CspMode, String)>,
}

const CSP: &str = "content-security-policy";
const CSP_RO: &str = "content-security-policy-report-only";

impl HeaderView {
    pub(super) fn new(set: &HeaderSet, csps: &mut HashMap<(CspMode, String), Rc<CspView>>) -> HeaderView {
        let mut headers = BTreeMap::new();
        for name in &set.remove {
            headers.insert(name.clone(), HState::Removed);
        }
        for (name, value) in &set.default {
            headers.insert(name.clone(), HState::Default(value.clone()));
        }
        for (name, value) in &set.set {
            headers.insert(name.clone(), HState::Set(value.clone()));
        }
        let value_of = |name: &str| match headers.get(name) {
            Some(HState::Set(v) | HState::Default(v)) => Some(v.clone()),
            _ => None,
        };
        let (mode, value) = match (value_of(CSP), value_of(CSP_RO)) {
            (Some(v), _) => (CspMode::Enforce, v),
            (None, Some(v)) => (CspMode::ReportOnly, v),
            (None, None) => (CspMode::Off, String::new()),
        };
        let csp = csps
            .entry((mode, value))
            .or_insert_with_key(|(mode, value)| Rc::new(CspView { mode: *mode, directives: parse_csp(value) }))
            .clone();
        headers.remove(CSP);
        headers.remove(CSP_RO);
        let strict = set.strict.as_ref().map(|s| (if s.header == CSP { CspMode::Enforce } else { CspMode::ReportOnly }, s.value.clone()));
        HeaderView { headers, hsts: set.hsts.clone(), cache: set.cache.clone(), csp, strict }
    }
}

fn parse_csp(value: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for directive in value.split(';') {
        let mut words = directive.split_ascii_whitespace();
        let Some(name) = words.next() else { continue };
        let sources = words
            .map(|w| if w.starts_with('\'') { w.to_ascii_lowercase() } else { w.to_owned() })
            .collect();
        out.entry(name.to_ascii_lowercase()).or_insert(sources);
    }
    out
}

pub(super) fn diff_header_views(o: &RuleView, n: &RuleView, base: Option<(&RuleView, &RuleView)>, out: &mut Vec<Delta>) {
    let (oh, nh) = (o.headers, n.headers);
    if oh == nh {
        return;
    }
    let base = base.map(|(bo, bn)| (bo.headers, bn.headers));
    let names: BTreeSet<&String> = oh.headers.keys().chain(nh.headers.keys()).collect();
    for name in names {
        let (a, b) = (oh.headers.get(name), nh.headers.get(name));
        if a == b || base.is_some_and(|(bo, bn)| bo.headers.get(name) == a && bn.headers.get(name) == b) {
            continue;
        }
        let (verdict, text) = header_change(name, a, b);
        out.push(delta(Facet::Header(name.clone()), verdict, text, a.and_then(state_value), b.and_then(state_value)));
    }
    if oh.hsts != nh.hsts && !base.is_some_and(|(bo, bn)| bo.hsts == oh.hsts && bn.hsts == nh.hsts) {
        hsts_deltas(oh.hsts.as_deref(), nh.hsts.as_deref(), out);
    }
    if oh.cache != nh.cache && !base.is_some_and(|(bo, bn)| bo.cache == oh.cache && bn.cache == nh.cache) {
        let verdict = cache_verdict(oh.cache.as_deref(), nh.cache.as_deref());
        let text = format!("cache {} → {}", oh.cache.as_deref().unwrap_or("(the origin's)"), nh.cache.as_deref().unwrap_or("(the origin's)"));
        out.push(delta(Facet::Rule("cache"), verdict, text, oh.cache.clone(), nh.cache.clone()));
    }
    if oh.csp != nh.csp {
        diff_csp(&oh.csp, &nh.csp, base.map(|(bo, bn)| (&*bo.csp, &*bn.csp)), out);
    }
    let strict_mode = |v: &HeaderView| v.strict.as_ref().map(|(m, _)| *m);
    if strict_mode(oh) != strict_mode(nh) && !base.is_some_and(|(bo, bn)| strict_mode(bo) == strict_mode(oh) && strict_mode(bn) == strict_mode(nh)) {
        strict_delta(strict_mode(oh), strict_mode(nh), out);
    }
}

/// `[csp] strict` turned on, off or between modes. Only enforcing the nonce-based policy on HTML
/// pages changes what browsers block; report-only next to off is neutral.
fn strict_delta(o: Option<CspMode>, n: Option<CspMode>, out: &mut Vec<Delta>) {
    let name = |m: Option<CspMode>| m.map_or("off", CspMode::as_str);
    let enforced = |m: Option<CspMode>| m == Some(CspMode::Enforce);
    let verdict = match (enforced(o), enforced(n)) {
        (false, true) => Verdict::Strengthened,
        (true, false) => Verdict::Weakened,
        _ => Verdict::Neutral,
    };
    let what = match n {
        Some(CspMode::Enforce) => "HTML pages enforce a nonce-based policy with 'strict-dynamic'",
        Some(_) => "HTML pages report against a nonce-based policy, enforcing the directives as written",
        None => "HTML pages get the directives as written",
    };
    out.push(delta(
        Facet::Csp("strict".to_owned()),
        verdict,
        format!("{} → {}: {what}", name(o), name(n)),
        Some(name(o).to_owned()),
        Some(name(n).to_owned()),
    ));
}

fn state_value(s: &HState) -> Option<String> {
    Some(match s {
        HState::Set(v) => v.clone(),
        HState::Default(v) => format!("default: {v}"),
        HState::Removed => "(removed)".to_owned(),
    })
}

fn state_text(s: Option<&HState>) -> String {
    match s {
        None => "not set".to_owned(),
        Some(HState::Set(v)) => v.clone(),
        Some(HState::Default(v)) => format!("{v} (default only)"),
        Some(HState::Removed) => "removed from responses".to_owned(),
    }
}

/// The verdict and sentence for one header's change.
fn header_change(name: &str, a: Option<&HState>, b: Option<&HState>) -> (Verdict, String) {
    let text = format!("{} → {}", state_text(a), state_text(b));
    let value = |s: Option<&HState>| match s {
        Some(HState::Set(v) | HState::Default(v)) => Some(v.clone()),
        _ => None,
    };
    let verdict = if is_security_header(name) {
        match (value(a), value(b)) {
            (Some(_), None) => Verdict::Weakened,
            (None, Some(_)) => Verdict::Strengthened,
            (None, None) => match (a, b) {
                (None, Some(HState::Removed)) => Verdict::Weakened,
                (Some(HState::Removed), None) => Verdict::Strengthened,
                _ => Verdict::Neutral,
            },
            (Some(x), Some(y)) if x == y => match (a, b) {
                (Some(HState::Set(_)), Some(HState::Default(_))) => Verdict::Weakened,
                (Some(HState::Default(_)), Some(HState::Set(_))) => Verdict::Strengthened,
                _ => Verdict::Neutral,
            },
            (Some(x), Some(y)) => security_value_verdict(name, &x, &y),
        }
    } else if STRIPPED.contains(&name) {
        match (a == Some(&HState::Removed), b == Some(&HState::Removed)) {
            (true, false) => Verdict::Weakened,
            (false, true) => Verdict::Strengthened,
            _ => Verdict::Neutral,
        }
    } else if name == "cache-control" {
        cache_verdict(value(a).as_deref(), value(b).as_deref())
    } else {
        Verdict::Neutral
    };
    (verdict, text)
}

/// Response headers whose absence or laxer value weakens the browser's protection.
const SECURITY_HEADERS: [&str; 13] = [
    "cross-origin-embedder-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "origin-agent-cluster",
    "permissions-policy",
    "referrer-policy",
    "x-content-type-options",
    "x-dns-prefetch-control",
    "x-download-options",
    "x-frame-options",
    "x-permitted-cross-domain-policies",
    "x-xss-protection",
    "strict-transport-security",
];

/// Headers an edge strips from origin responses to hide details or keep cookies off cacheable
/// files: no longer removing one weakens.
const STRIPPED: [&str; 5] = ["server", "set-cookie", "x-aspnet-version", "x-aspnetmvc-version", "x-powered-by"];

fn is_security_header(name: &str) -> bool {
    SECURITY_HEADERS.contains(&name)
}

/// Known values from strictest (highest) to laxest; `None` for a value not on the list.
fn rank(name: &str, value: &str) -> Option<u8> {
    let v = value.trim().to_ascii_lowercase();
    let table: &[(&str, u8)] = match name {
        "x-frame-options" => &[("deny", 2), ("sameorigin", 1)],
        "x-content-type-options" => &[("nosniff", 1)],
        "cross-origin-opener-policy" => &[("same-origin", 3), ("noopener-allow-popups", 2), ("same-origin-allow-popups", 1), ("unsafe-none", 0)],
        "cross-origin-resource-policy" => &[("same-origin", 2), ("same-site", 1), ("cross-origin", 0)],
        "cross-origin-embedder-policy" => &[("require-corp", 2), ("credentialless", 1), ("unsafe-none", 0)],
        "origin-agent-cluster" => &[("?1", 1), ("?0", 0)],
        "x-dns-prefetch-control" => &[("off", 1), ("on", 0)],
        "x-download-options" => &[("noopen", 1)],
        "x-permitted-cross-domain-policies" => &[("none", 3), ("master-only", 2), ("by-content-type", 1), ("by-ftp-filename", 1), ("all", 0)],
        "referrer-policy" => {
            // The last token a browser knows wins.
            const ORDER: [&str; 8] = [
                "unsafe-url",
                "no-referrer-when-downgrade",
                "origin-when-cross-origin",
                "origin",
                "strict-origin-when-cross-origin",
                "strict-origin",
                "same-origin",
                "no-referrer",
            ];
            return v.split(',').rev().find_map(|t| ORDER.iter().position(|o| *o == t.trim())).and_then(|p| u8::try_from(p).ok());
        }
        _ => return None,
    };
    match table.iter().find(|(k, _)| *k == v) {
        Some((_, r)) => Some(*r),
        // Anything else in a header with a single "safe" value (nosniff, DENY…) is weaker.
        None if matches!(name, "x-frame-options" | "x-content-type-options" | "x-download-options") => Some(0),
        None => None,
    }
}

pub(super) fn security_value_verdict(name: &str, old: &str, new: &str) -> Verdict {
    if name == "permissions-policy" {
        return permissions_verdict(old, new);
    }
    if name == "strict-transport-security" {
        let (a, b) = (parse_hsts(old), parse_hsts(new));
        return aggregate(&hsts_aspects(&a, &b).iter().map(|(v, _)| *v).collect::<Vec<_>>());
    }
    match (rank(name, old), rank(name, new)) {
        (Some(a), Some(b)) => match b.cmp(&a) {
            Ordering::Less => Verdict::Weakened,
            Ordering::Greater => Verdict::Strengthened,
            Ordering::Equal => Verdict::Neutral,
        },
        _ => Verdict::Neutral,
    }
}

/// `Permissions-Policy`: a feature left out falls back to the browser's default (usually
/// allowed), and a longer allowlist allows more.
fn permissions_verdict(old: &str, new: &str) -> Verdict {
    let parse = |v: &str| -> BTreeMap<String, BTreeSet<String>> {
        v.split(',')
            .filter_map(|item| {
                let (feature, allow) = item.split_once('=')?;
                let allow = allow.trim().trim_start_matches('(').trim_end_matches(')');
                Some((feature.trim().to_ascii_lowercase(), allow.split_ascii_whitespace().map(str::to_owned).collect()))
            })
            .collect()
    };
    let (a, b) = (parse(old), parse(new));
    let subset = |x: &BTreeSet<String>, y: &BTreeSet<String>| y.contains("*") || x.is_subset(y);
    let looser = a.iter().any(|(f, allow)| b.get(f).is_none_or(|nb| !subset(nb, allow)));
    let tighter = b.iter().any(|(f, allow)| a.get(f).is_none_or(|na| !subset(na, allow)));
    match (looser, tighter) {
        (true, _) => Verdict::Weakened,
        (false, true) => Verdict::Strengthened,
        (false, false) => Verdict::Neutral,
    }
}

/// Losing `no-store`/`private` lets shared caches keep responses; gaining it is the reverse.
pub(super) fn cache_verdict(old: Option<&str>, new: Option<&str>) -> Verdict {
    let private = |v: Option<&str>| {
        v.is_some_and(|v| v.split(',').any(|t| matches!(t.trim().to_ascii_lowercase().as_str(), "no-store" | "private")))
    };
    match (private(old), private(new)) {
        (true, false) => Verdict::Weakened,
        (false, true) => Verdict::Strengthened,
        _ => Verdict::Neutral,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hsts {
    max_age: u64,
    include_subdomains: bool,
    preload: bool,
}

fn parse_hsts(value: &str) -> Hsts {
    let mut h = Hsts { max_age: 0, include_subdomains: false, preload: false };
    for part in value.split(';') {
        let part = part.trim().to_ascii_lowercase();
        if let Some(n) = part.strip_prefix("max-age=") {
            h.max_age = n.trim_matches('"').parse().unwrap_or(0);
        } else if part == "includesubdomains" {
            h.include_subdomains = true;
        } else if part == "preload" {
            h.preload = true;
        }
    }
    h
}

fn hsts_aspects(a: &Hsts, b: &Hsts) -> Vec<(Verdict, String)> {
    let mut out = Vec::new();
    match b.max_age.cmp(&a.max_age) {
        Ordering::Less => out.push((Verdict::Weakened, format!("max-age lowered from {} to {}", secs_text(a.max_age), secs_text(b.max_age)))),
        Ordering::Greater => out.push((Verdict::Strengthened, format!("max-age raised from {} to {}", secs_text(a.max_age), secs_text(b.max_age)))),
        Ordering::Equal => {}
    }
    match (a.include_subdomains, b.include_subdomains) {
        (true, false) => out.push((Verdict::Weakened, "includeSubDomains dropped".to_owned())),
        (false, true) => out.push((Verdict::Strengthened, "includeSubDomains added".to_owned())),
        _ => {}
    }
    match (a.preload, b.preload) {
        (true, false) => out.push((Verdict::Weakened, "preload dropped".to_owned())),
        (false, true) => out.push((Verdict::Strengthened, "preload added".to_owned())),
        _ => {}
    }
    out
}

fn hsts_deltas(old: Option<&str>, new: Option<&str>, out: &mut Vec<Delta>) {
    let (ov, nv) = (old.map(str::to_owned), new.map(str::to_owned));
    match (old, new) {
        (Some(_), None) => out.push(delta(Facet::Hsts, Verdict::Weakened, "Strict-Transport-Security removed".to_owned(), ov, nv)),
        (None, Some(b)) => out.push(delta(Facet::Hsts, Verdict::Strengthened, format!("Strict-Transport-Security added: {b}"), ov, nv)),
        (Some(a), Some(b)) => {
            let aspects = hsts_aspects(&parse_hsts(a), &parse_hsts(b));
            if aspects.is_empty() {
                out.push(delta(Facet::Hsts, Verdict::Neutral, format!("{a} → {b}"), ov.clone(), nv.clone()));
            }
            for (verdict, text) in aspects {
                out.push(delta(Facet::Hsts, verdict, text, ov.clone(), nv.clone()));
            }
        }
        (None, None) => {}
    }
}

