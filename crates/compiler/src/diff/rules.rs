//! `[defaults]` and routes: the facets of one rule and the verdict of each change.

use edgeguard_core::cache::EdgeCache;
use std::collections::{BTreeSet, HashMap};

use edgeguard_core::bundle::{ApiKey, Limit, method};
use edgeguard_core::cidr::Cidr;

use super::cidr::{cidr_text, cidrs_text, uncovered};
use super::headers::{HeaderView, diff_header_views};
use super::limits::{SessionView, limit_deltas, limit_same, limit_text};
use super::{Area, Change, Verdict};
use Verdict::{Neutral, Strengthened, Weakened};
use super::settings::{edge_cache_text, edge_cache_verdict};
use super::text::{header_display, size_text};

/// A rule's effective values, comparable across bundles (limits and keys by value or name, not
/// by index; CIDR lists in canonical form; headers parsed).
#[derive(Clone)]
pub(super) struct RuleView<'a> {
    pub(super) label: String,
    pub(super) methods: u16,
    pub(super) block: Option<u16>,
    pub(super) require_headers: BTreeSet<&'a str>,
    pub(super) require_cookie: Option<String>,
    /// `require_session`: the source and each claim's accepted values.
    pub(super) require_session: Option<SessionView>,
    pub(super) ip_allow: Vec<Cidr>,
    pub(super) ip_deny: Vec<Cidr>,
    pub(super) api_key: Option<&'a ApiKey>,
    pub(super) max_body: Option<u64>,
    pub(super) limit: Option<&'a Limit>,
    pub(super) origin: Option<&'a str>,
    pub(super) server_actions: bool,
    pub(super) edge_cache: Option<EdgeCache>,
    /// (parameter name, type) in path order.
    pub(super) params: Vec<(String, String)>,
    pub(super) headers: &'a HeaderView,
}

/// Which part of a rule a delta is about; decides where a `[defaults]` change is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Facet {
    /// A rule key (`methods`, `limit`, `cache`…).
    Rule(&'static str),
    /// A response header (lowercase name).
    Header(String),
    /// A CSP directive, or `mode`.
    Csp(String),
    Hsts,
}

impl Facet {
    pub(super) fn id(&self) -> String {
        match self {
            Facet::Rule(k) => (*k).to_owned(),
            Facet::Header(h) => format!("header:{h}"),
            Facet::Csp(d) => format!("csp:{d}"),
            Facet::Hsts => "hsts".to_owned(),
        }
    }
}

pub(super) struct Delta {
    pub(super) facet: Facet,
    pub(super) verdict: Verdict,
    pub(super) text: String,
    old: Option<String>,
    new: Option<String>,
}

pub(super) fn delta(facet: Facet, verdict: Verdict, text: String, old: Option<String>, new: Option<String>) -> Delta {
    Delta { facet, verdict, text, old, new }
}

impl Delta {
    /// The text as it reads inside a route: `header X-Frame-Options: DENY → SAMEORIGIN`.
    fn route_text(&self) -> String {
        match &self.facet {
            Facet::Rule(_) => self.text.clone(),
            Facet::Header(h) => format!("header {}: {}", header_display(h), self.text),
            Facet::Csp(d) => format!("csp {d}: {}", self.text),
            Facet::Hsts => format!("Strict-Transport-Security: {}", self.text),
        }
    }

    pub(super) fn into_route_change(self, pattern: &str) -> Change {
        let key = match &self.facet {
            Facet::Rule(k) => (*k).to_owned(),
            Facet::Header(_) | Facet::Hsts => "headers".to_owned(),
            Facet::Csp(_) => "csp".to_owned(),
        };
        Change { area: Area::Routes, subject: pattern.to_owned(), change: self.route_text(), verdict: self.verdict, old: self.old, new: self.new, key }
    }

    /// Rule keys stay under `defaults`; headers, CSP and HSTS of `[defaults]` are the site-wide
    /// ones and go to their own areas.
    pub(super) fn into_defaults_change(self, inherited: usize) -> Change {
        let (area, subject, key, text) = match &self.facet {
            Facet::Rule(k) => {
                let note = match inherited {
                    0 => String::new(),
                    1 => " (and 1 route that inherits it)".to_owned(),
                    n => format!(" (and {n} routes that inherit it)"),
                };
                (Area::Defaults, "defaults".to_owned(), (*k).to_owned(), format!("{}{note}", self.text))
            }
            Facet::Header(h) => (Area::Headers, header_display(h), header_display(h), self.text.clone()),
            Facet::Csp(d) => (Area::Csp, d.clone(), d.clone(), self.text.clone()),
            Facet::Hsts => (Area::Https, "hsts".to_owned(), "hsts".to_owned(), self.text.clone()),
        };
        Change { area, subject, change: text, verdict: self.verdict, old: self.old, new: self.new, key }
    }
}

/// Weakened if anything weakened, else strengthened if anything strengthened, else neutral.
pub(super) fn aggregate<'a>(verdicts: impl IntoIterator<Item = &'a Verdict>) -> Verdict {
    verdicts.into_iter().copied().min().unwrap_or(Verdict::Neutral)
}

pub(super) fn route_added_or_removed(pattern: &str, fallback: &str, deltas: Vec<Delta>, added: bool) -> Change {
    let verdict = aggregate(deltas.iter().map(|d| &d.verdict));
    let details: Vec<String> = deltas.iter().map(Delta::route_text).collect();
    let text = match (added, details.is_empty()) {
        (true, true) => format!("added; same rules as {fallback}, which handled these paths before"),
        (true, false) => format!("added; compared with {fallback}, which handled these paths before: {}", details.join("; ")),
        (false, true) => format!("removed; its paths now get {fallback}, which has the same rules"),
        (false, false) => format!("removed; its paths now get {fallback}: {}", details.join("; ")),
    };
    let (old, new) = if added { (Some(fallback.to_owned()), Some(pattern.to_owned())) } else { (Some(pattern.to_owned()), Some(fallback.to_owned())) };
    Change { area: Area::Routes, subject: pattern.to_owned(), change: text, verdict, old, new, key: "path".to_owned() }
}

pub(super) fn list<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    items.into_iter().map(|s| s.as_ref().to_owned()).collect::<Vec<_>>().join(", ")
}

/// Compare two rules. With `base` (the old and new `[defaults]`), a change a route only
/// inherits (old = old defaults, new = new defaults) is left to `[defaults]` and counted in
/// `inherited` instead.
pub(super) fn diff_rules(o: &RuleView, n: &RuleView, base: Option<(&RuleView, &RuleView)>, env: &str, inherited: &mut HashMap<String, usize>) -> Vec<Delta> {
    let mut out = Vec::new();
    for facet in FACETS {
        if (facet.same)(o, n) {
            continue;
        }
        let from_base = base.is_some_and(|(bo, bn)| (facet.same)(o, bo) && (facet.same)(n, bn));
        if from_base {
            let count = inherited.entry(facet.key.to_owned()).or_default();
            *count = count.saturating_add(1);
            continue;
        }
        (facet.deltas)(o, n, env, &mut out);
    }
    param_deltas(o, n, &mut out);

    diff_header_views(o, n, base, &mut out);

    // Nothing but the headers matters on a route answered at the edge in both versions.
    if o.block.is_some() && n.block.is_some() {
        for d in out.iter_mut() {
            if matches!(d.facet, Facet::Rule(k) if k != "block") && d.verdict != Neutral {
                d.verdict = Neutral;
                d.text.push_str(" (the route is blocked)");
            }
        }
    }
    out
}

/// One facet of a rule that [`diff_rules`] compares.
struct RuleFacet {
    key: &'static str,
    same: fn(&RuleView, &RuleView) -> bool,
    /// The changes from `o` to `n` (the environment names a blocked route's reach).
    deltas: fn(o: &RuleView, n: &RuleView, env: &str, out: &mut Vec<Delta>),
}

/// The facets of a rule other than its parameters and headers, in the order changes are
/// listed: each names the facet, says when two rules agree on it, and lists the changes.
const FACETS: &[RuleFacet] = &[
    RuleFacet { key: "methods", same: |a, b| a.methods == b.methods, deltas: methods_deltas },
    RuleFacet { key: "block", same: |a, b| a.block == b.block, deltas: block_deltas },
    RuleFacet { key: "require_headers", same: |a, b| a.require_headers == b.require_headers, deltas: require_headers_deltas },
    RuleFacet { key: "require_cookie", same: |a, b| a.require_cookie == b.require_cookie, deltas: require_cookie_deltas },
    RuleFacet { key: "require_session", same: |a, b| a.require_session == b.require_session, deltas: require_session_deltas },
    RuleFacet { key: "ip_allow", same: |a, b| a.ip_allow == b.ip_allow, deltas: ip_allow_deltas },
    RuleFacet { key: "ip_deny", same: |a, b| a.ip_deny == b.ip_deny, deltas: ip_deny_deltas },
    RuleFacet { key: "api_key", same: |a, b| key_name(a) == key_name(b), deltas: api_key_deltas },
    RuleFacet { key: "server_actions", same: |a, b| a.server_actions == b.server_actions, deltas: server_actions_deltas },
    RuleFacet { key: "edge_cache", same: |a, b| a.edge_cache == b.edge_cache, deltas: edge_cache_deltas },
    RuleFacet { key: "max_body", same: |a, b| a.max_body == b.max_body, deltas: max_body_deltas },
    RuleFacet { key: "limit", same: |a, b| limit_same(a.limit, b.limit), deltas: limit_rule_deltas },
    RuleFacet { key: "origin", same: |a, b| a.origin == b.origin, deltas: origin_deltas },
];

/// `methods` differs between the two rules.
fn methods_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (Some(method::allow_value(o.methods)), Some(method::allow_value(n.methods)));
    let added = n.methods & !o.methods;
    let removed = o.methods & !n.methods;
    if added != 0 {
        out.push(delta(Facet::Rule("methods"), Weakened, format!("methods added: {}", method::allow_value(added)), ov.clone(), nv.clone()));
    }
    if removed != 0 {
        out.push(delta(Facet::Rule("methods"), Strengthened, format!("methods removed: {}", method::allow_value(removed)), ov, nv));
    }
}

/// `block` differs between the two rules.
fn block_deltas(o: &RuleView, n: &RuleView, env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (o.block.map(|b| b.to_string()), n.block.map(|b| b.to_string()));
    match (o.block, n.block) {
        (Some(a), None) => out.push(delta(Facet::Rule("block"), Weakened, format!("block {a} removed (reachable in {env})"), ov, nv)),
        (None, Some(b)) => out.push(delta(Facet::Rule("block"), Strengthened, format!("blocked with {b} (in {env})"), ov, nv)),
        (Some(a), Some(b)) => out.push(delta(Facet::Rule("block"), Neutral, format!("block status {a} → {b}"), ov, nv)),
        (None, None) => {}
    }
}

/// `require_headers` differs between the two rules.
fn require_headers_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (Some(list(&o.require_headers)), Some(list(&n.require_headers)));
    let removed: Vec<&&str> = o.require_headers.difference(&n.require_headers).collect();
    let added: Vec<&&str> = n.require_headers.difference(&o.require_headers).collect();
    if !removed.is_empty() {
        out.push(delta(Facet::Rule("require_headers"), Weakened, format!("require_headers removed: {}", list(removed.iter().map(|s| **s))), ov.clone(), nv.clone()));
    }
    if !added.is_empty() {
        out.push(delta(Facet::Rule("require_headers"), Strengthened, format!("require_headers added: {}", list(added.iter().map(|s| **s))), ov, nv));
    }
}

/// `require_cookie` differs between the two rules.
fn require_cookie_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (o.require_cookie.clone(), n.require_cookie.clone());
    let (verdict, text) = match (&o.require_cookie, &n.require_cookie) {
        (Some(a), None) => (Weakened, format!("require_cookie \"{a}\" removed")),
        (None, Some(b)) => (Strengthened, format!("require_cookie \"{b}\" added")),
        (Some(a), Some(b)) => {
            // A glob that matches the other's pattern text accepts at least its names.
            let (looser, tighter) = (glob_matches(b, a), glob_matches(a, b));
            match (looser, tighter) {
                (true, false) => (Weakened, format!("require_cookie widened from \"{a}\" to \"{b}\"")),
                (false, true) => (Strengthened, format!("require_cookie narrowed from \"{a}\" to \"{b}\"")),
                _ => (Neutral, format!("require_cookie \"{a}\" → \"{b}\"")),
            }
        }
        (None, None) => (Neutral, String::new()),
    };
    out.push(delta(Facet::Rule("require_cookie"), verdict, text, ov, nv));
}

/// `require_session` differs between the two rules.
fn require_session_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let text = |v: &Option<SessionView>| v.as_ref().map(SessionView::text);
    let (ov, nv) = (text(&o.require_session), text(&n.require_session));
    let (verdict, text) = match (&o.require_session, &n.require_session) {
        (Some(a), None) => (Weakened, format!("require_session {} removed", a.text())),
        (None, Some(b)) => (Strengthened, format!("require_session {} added", b.text())),
        // The same source: fewer claim rules or more accepted values let more sessions in.
        (Some(a), Some(b)) => {
            let verdict = if a.source != b.source {
                Neutral
            } else if b.admits_all_of(a) {
                Weakened
            } else if a.admits_all_of(b) {
                Strengthened
            } else {
                Neutral
            };
            (verdict, format!("require_session {} → {}", a.text(), b.text()))
        }
        (None, None) => (Neutral, String::new()),
    };
    out.push(delta(Facet::Rule("require_session"), verdict, text, ov, nv));
}

/// `ip_allow` differs between the two rules.
fn ip_allow_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (cidrs_text(&o.ip_allow), cidrs_text(&n.ip_allow));
    let facet = || Facet::Rule("ip_allow");
    match (o.ip_allow.is_empty(), n.ip_allow.is_empty()) {
        (false, true) => out.push(delta(facet(), Weakened, "ip_allow removed (any address may connect)".to_owned(), ov, nv)),
        (true, false) => out.push(delta(facet(), Strengthened, format!("ip_allow added: {}", list(n.ip_allow.iter().map(cidr_text))), ov, nv)),
        _ => {
            let widened = uncovered(&n.ip_allow, &o.ip_allow);
            let narrowed = uncovered(&o.ip_allow, &n.ip_allow);
            if !widened.is_empty() {
                out.push(delta(facet(), Weakened, format!("ip_allow widened: now also allows {}", list(widened.iter().map(cidr_text))), ov.clone(), nv.clone()));
            }
            if !narrowed.is_empty() {
                out.push(delta(facet(), Strengthened, format!("ip_allow narrowed: no longer allows {}", list(narrowed.iter().map(cidr_text))), ov, nv));
            }
        }
    }
}

/// `ip_deny` differs between the two rules.
fn ip_deny_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (cidrs_text(&o.ip_deny), cidrs_text(&n.ip_deny));
    let removed = uncovered(&o.ip_deny, &n.ip_deny);
    let added = uncovered(&n.ip_deny, &o.ip_deny);
    if !removed.is_empty() {
        out.push(delta(Facet::Rule("ip_deny"), Weakened, format!("ip_deny entries removed: {}", list(removed.iter().map(cidr_text))), ov.clone(), nv.clone()));
    }
    if !added.is_empty() {
        out.push(delta(Facet::Rule("ip_deny"), Strengthened, format!("ip_deny entries added: {}", list(added.iter().map(cidr_text))), ov, nv));
    }
}

/// `api_key` differs between the two rules.
fn api_key_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (key_name(o), key_name(n));
    let facet = Facet::Rule("api_key");
    match (o.api_key, n.api_key) {
        (Some(a), None) => out.push(delta(facet, Weakened, format!("api_key {} removed", a.name), ov, nv)),
        (None, Some(b)) => out.push(delta(facet, Strengthened, format!("api_key {} required", b.name), ov, nv)),
        (Some(a), Some(b)) => {
            let more = b.sha256.iter().filter(|h| !a.sha256.contains(h)).count();
            let fewer = a.sha256.iter().filter(|h| !b.sha256.contains(h)).count();
            let verdict = if more > 0 {
                Weakened
            } else if fewer > 0 {
                Strengthened
            } else {
                Neutral
            };
            out.push(delta(facet, verdict, format!("api_key {} → {} ({} key(s) newly accepted, {} no longer accepted)", a.name, b.name, more, fewer), ov, nv));
        }
        (None, None) => {}
    }
}

/// `server_actions` differs between the two rules.
fn server_actions_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (Some(o.server_actions.to_string()), Some(n.server_actions.to_string()));
    let facet = Facet::Rule("server_actions");
    if n.server_actions {
        out.push(delta(facet, Weakened, "Server Actions (Next-Action requests) now accepted".to_owned(), ov, nv));
    } else {
        out.push(delta(facet, Strengthened, "Server Actions (Next-Action requests) now refused".to_owned(), ov, nv));
    }
}

/// `edge_cache` differs between the two rules.
fn edge_cache_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (o.edge_cache.map(edge_cache_text), n.edge_cache.map(edge_cache_text));
    let text = format!("edge cache {} → {}", ov.as_deref().unwrap_or("off"), nv.as_deref().unwrap_or("off"));
    out.push(delta(Facet::Rule("edge_cache"), edge_cache_verdict(o.edge_cache, n.edge_cache), text, ov, nv));
}

/// `max_body` differs between the two rules.
fn max_body_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (o.max_body.map(size_text), n.max_body.map(size_text));
    let facet = Facet::Rule("max_body");
    match (o.max_body, n.max_body) {
        (Some(a), None) => out.push(delta(facet, Weakened, format!("max_body {} removed (no size limit)", size_text(a)), ov, nv)),
        (None, Some(b)) => out.push(delta(facet, Strengthened, format!("max_body {} added", size_text(b)), ov, nv)),
        (Some(a), Some(b)) if b > a => out.push(delta(facet, Weakened, format!("max_body raised from {} to {}", size_text(a), size_text(b)), ov, nv)),
        (Some(a), Some(b)) => out.push(delta(facet, Strengthened, format!("max_body lowered from {} to {}", size_text(a), size_text(b)), ov, nv)),
        (None, None) => {}
    }
}

/// `limit` differs between the two rules.
fn limit_rule_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (o.limit.map(|l| l.name.clone()), n.limit.map(|l| l.name.clone()));
    match (o.limit, n.limit) {
        (Some(a), None) => out.push(delta(Facet::Rule("limit"), Weakened, format!("limit {} removed (no rate limit)", a.name), ov, nv)),
        (None, Some(b)) => out.push(delta(Facet::Rule("limit"), Strengthened, format!("limit {} added ({})", b.name, limit_text(b)), ov, nv)),
        (Some(a), Some(b)) => {
            let prefix = if a.name == b.name { "limit".to_owned() } else { format!("limit {} → {}", a.name, b.name) };
            let aspects = limit_deltas(a, b);
            if aspects.is_empty() {
                out.push(delta(Facet::Rule("limit"), Neutral, format!("{prefix} (same settings)"), ov, nv));
            }
            for l in aspects {
                out.push(delta(Facet::Rule("limit"), l.verdict, format!("{prefix}: {}", l.text), l.old, l.new));
            }
        }
        (None, None) => {}
    }
}

/// `origin` differs between the two rules.
fn origin_deltas(o: &RuleView, n: &RuleView, _env: &str, out: &mut Vec<Delta>) {
    let (ov, nv) = (o.origin.map(str::to_owned), n.origin.map(str::to_owned));
    let text = format!("origin pin {} → {}", o.origin.unwrap_or("(deploy rules)"), n.origin.unwrap_or("(deploy rules)"));
    out.push(delta(Facet::Rule("origin"), Neutral, text, ov, nv));
}

/// Parameter types only mean something between two versions of the same pattern.
fn param_deltas(o: &RuleView, n: &RuleView, out: &mut Vec<Delta>) {
    if o.label != n.label || o.params == n.params {
        return;
    }
    for ((name, a), (_, b)) in o.params.iter().zip(&n.params) {
        if a == b {
            continue;
        }
        let (verdict, text) = match (a.as_str(), b.as_str()) {
            (_, "any") => (Weakened, format!("parameter :{name} accepts any segment (was {a})")),
            ("any", _) => (Strengthened, format!("parameter :{name} must be {b} (was any segment)")),
            _ => (Neutral, format!("parameter :{name} type {a} → {b}")),
        };
        out.push(delta(Facet::Rule("params"), verdict, text, Some(a.clone()), Some(b.clone())));
    }
}

/// The API key name a rule requires.
fn key_name(v: &RuleView) -> Option<String> {
    v.api_key.map(|k| k.name.clone())
}

fn glob_matches(glob: &str, text: &str) -> bool {
    edgeguard_core::glob::Glob::new(glob).matches(text)
}
