//! Limits and API keys: what each counts, how fast, and who gets through.

use core::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use edgeguard_core::Bundle;
use edgeguard_core::bundle::{ApiKey, Limit, LimitKey, Scope};

use super::{Area, Change, Verdict, change};
use super::side::Side;
use super::text::secs_text;

/// Inline limits are named after their route's path.
fn is_inline(l: &Limit) -> bool {
    l.name.starts_with('/')
}

/// An API key's failure limit (`api-key:<name>`): compared under its key, not under `limits`.
fn is_key_failures(l: &Limit) -> bool {
    l.name.starts_with("api-key:")
}

/// The same limit for a rule: a named limit by name (its definition is compared under
/// `limits`), an inline one by value.
pub(super) fn limit_same(a: Option<&Limit>, b: Option<&Limit>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.name == b.name && (!is_inline(a) || limit_values(a) == limit_values(b)),
        _ => false,
    }
}

type LimitValues<'a> = (u64, u64, u64, LimitKey, Option<&'a str>, Scope, bool, bool);

fn limit_values(l: &Limit) -> LimitValues<'_> {
    (l.count, l.window_secs, l.burst, l.key, l.key_name.as_deref(), l.scope, l.shadow, l.on_error_deny)
}

/// A route's `require_session`, by name: its source and each claim's accepted values.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct SessionView {
    pub(super) source: String,
    claims: BTreeMap<String, BTreeSet<String>>,
}

impl SessionView {
    /// `"supabase" { app_metadata.role = admin|owner }`.
    pub(super) fn text(&self) -> String {
        if self.claims.is_empty() {
            return format!("\"{}\"", self.source);
        }
        let claims: Vec<String> = self.claims.iter().map(|(path, values)| format!("{path} = {}", values.iter().cloned().collect::<Vec<_>>().join("|"))).collect();
        format!("\"{}\" {{ {} }}", self.source, claims.join(", "))
    }

    /// Every session `other` lets in, this one does too: each of this one's claim rules is one of
    /// `other`'s with at least its values.
    pub(super) fn admits_all_of(&self, other: &SessionView) -> bool {
        self.claims.iter().all(|(path, values)| other.claims.get(path).is_some_and(|theirs| theirs.is_subset(values)))
    }
}

pub(super) fn session_view(b: &Bundle, r: &edgeguard_core::sessions::Requirement) -> SessionView {
    let source = b.sessions.get(usize::from(r.source));
    let claims = r
        .claims
        .iter()
        .map(|c| (source.and_then(|s| s.claims.get(usize::from(c.claim))).map_or_else(|| "?".to_owned(), Clone::clone), c.any_of.iter().cloned().collect()))
        .collect();
    SessionView { source: source.map_or_else(|| "?".to_owned(), |s| s.name.clone()), claims }
}

fn limit_key_text(l: &Limit) -> String {
    l.key_text()
}

fn rate_text(l: &Limit) -> String {
    format!("{}/{}", l.count, secs_text(l.window_secs))
}

fn scope_rank(s: Scope) -> u8 {
    match s {
        Scope::Local => 0,
        Scope::Cloudflare => 1,
        Scope::Global => 2,
    }
}

fn scope_text(s: Scope) -> &'static str {
    match s {
        Scope::Local => "local",
        Scope::Cloudflare => "cloudflare",
        Scope::Global => "global",
    }
}

pub(super) fn limit_text(l: &Limit) -> String {
    let mut t = format!("{}, burst {}, key {}", rate_text(l), l.burst, limit_key_text(l));
    if l.scope != Scope::Local {
        t.push_str(", ");
        t.push_str(scope_text(l.scope));
    }
    if l.shadow {
        t.push_str(", shadow");
    }
    t
}

pub(super) struct LimitDelta {
    key: &'static str,
    pub(super) verdict: Verdict,
    pub(super) text: String,
    pub(super) old: Option<String>,
    pub(super) new: Option<String>,
}

pub(super) fn limit_deltas(a: &Limit, b: &Limit) -> Vec<LimitDelta> {
    let mut out = Vec::new();
    let mut push = |key: &'static str, verdict: Verdict, text: String, old: String, new: String| {
        out.push(LimitDelta { key, verdict, text, old: Some(old), new: Some(new) });
    };
    if (a.count, a.window_secs) != (b.count, b.window_secs) {
        // Compare count/window as fractions without dividing.
        let (ra, rb) = (u128::from(a.count).saturating_mul(u128::from(b.window_secs)), u128::from(b.count).saturating_mul(u128::from(a.window_secs)));
        let (verdict, how) = match rb.cmp(&ra) {
            Ordering::Greater => (Verdict::Weakened, "raised"),
            Ordering::Less => (Verdict::Strengthened, "lowered"),
            Ordering::Equal => (Verdict::Neutral, "rewritten (same rate)"),
        };
        push("rate", verdict, format!("rate {how} from {} to {}", rate_text(a), rate_text(b)), rate_text(a), rate_text(b));
    }
    if a.burst != b.burst {
        let (verdict, how) = if b.burst > a.burst { (Verdict::Weakened, "raised") } else { (Verdict::Strengthened, "lowered") };
        push("burst", verdict, format!("burst {how} from {} to {}", a.burst, b.burst), a.burst.to_string(), b.burst.to_string());
    }
    let (ka, kb) = (limit_key_text(a), limit_key_text(b));
    if ka != kb {
        // The client address is the one key a client cannot choose; `ip+route` counts each
        // route separately, which allows more than one count shared by all of them.
        // A verified session's claim cannot be chosen either (a client without one counts by
        // address), though one person can hold several accounts: as strong as the address.
        let strength = |k: LimitKey| match k {
            LimitKey::Ip | LimitKey::Session => 2,
            LimitKey::IpRoute => 1,
            LimitKey::Header | LimitKey::Cookie => 0,
        };
        let verdict = match strength(b.key).cmp(&strength(a.key)) {
            Ordering::Less => Verdict::Weakened,
            Ordering::Greater => Verdict::Strengthened,
            Ordering::Equal => Verdict::Neutral,
        };
        push("key", verdict, format!("key {ka} → {kb}"), ka, kb);
    }
    if a.scope != b.scope {
        // Exact fleet-wide > per Cloudflare location > per isolate (n isolates, n times the limit).
        let verdict = match scope_rank(b.scope).cmp(&scope_rank(a.scope)) {
            Ordering::Less => Verdict::Weakened,
            Ordering::Greater => Verdict::Strengthened,
            Ordering::Equal => Verdict::Neutral,
        };
        let (sa, sb) = (scope_text(a.scope), scope_text(b.scope));
        push("scope", verdict, format!("scope {sa} → {sb}"), sa.to_owned(), sb.to_owned());
    }
    let remote = |l: &Limit| l.scope != Scope::Local;
    if a.on_error_deny != b.on_error_deny && (remote(a) || remote(b)) {
        let on_error = |deny: bool| if deny { "deny" } else { "allow" };
        let (verdict, text) = if b.on_error_deny {
            (Verdict::Strengthened, "on_error allow → deny (refuses while the limiter is unreachable)")
        } else {
            (Verdict::Weakened, "on_error deny → allow (admits while the limiter is unreachable)")
        };
        push("on_error", verdict, text.to_owned(), on_error(a.on_error_deny).to_owned(), on_error(b.on_error_deny).to_owned());
    }
    if a.shadow != b.shadow {
        let mode = |shadow: bool| if shadow { "shadow" } else { "enforce" };
        let (verdict, text) = if b.shadow {
            (Verdict::Weakened, "made shadow (counts, never refuses)")
        } else {
            (Verdict::Strengthened, "enforced (was shadow)")
        };
        push("mode", verdict, text.to_owned(), mode(a.shadow).to_owned(), mode(b.shadow).to_owned());
    }
    out
}

pub(super) fn diff_limits(o: &Side, n: &Side, out: &mut Vec<Change>) {
    let named = |s: &Side| -> BTreeMap<String, usize> {
        s.bundle.limits.iter().enumerate().filter(|(_, l)| !is_inline(l) && !is_key_failures(l)).map(|(i, l)| (l.name.clone(), i)).collect()
    };
    let (om, nm) = (named(o), named(n));
    for (name, &i) in &om {
        let Some(a) = o.bundle.limits.get(i) else { continue };
        let Some(b) = nm.get(name).and_then(|&j| n.bundle.limits.get(j).map(|b| (j, b))) else {
            out.push(change(Area::Limits, name, "rate", Verdict::Neutral, format!("removed (was {})", limit_text(a)), Some(limit_text(a)), None));
            continue;
        };
        let (j, b) = b;
        let used = o.used_limits.get(i).copied().unwrap_or(false) || n.used_limits.get(j).copied().unwrap_or(false);
        for d in limit_deltas(a, b) {
            let (verdict, text) = if used { (d.verdict, d.text) } else { (Verdict::Neutral, format!("{} (unused)", d.text)) };
            out.push(change(Area::Limits, name, d.key, verdict, text, d.old, d.new));
        }
    }
    for (name, &j) in &nm {
        if om.contains_key(name) {
            continue;
        }
        if let Some(b) = n.bundle.limits.get(j) {
            out.push(change(Area::Limits, name, "rate", Verdict::Neutral, format!("added ({})", limit_text(b)), None, Some(limit_text(b))));
        }
    }
}

pub(super) fn diff_api_keys(o: &Side, n: &Side, out: &mut Vec<Change>) {
    let by_name = |s: &Side| -> BTreeMap<String, usize> { s.bundle.api_keys.iter().enumerate().map(|(i, k)| (k.name.clone(), i)).collect() };
    let (om, nm) = (by_name(o), by_name(n));
    let count = |k: &ApiKey| format!("{} key(s) in header {}", k.sha256.len(), k.header);
    for (name, &i) in &om {
        let Some(a) = o.bundle.api_keys.get(i) else { continue };
        let Some((j, b)) = nm.get(name).and_then(|&j| n.bundle.api_keys.get(j).map(|b| (j, b))) else {
            out.push(change(Area::ApiKeys, name, "sha256", Verdict::Neutral, "removed".to_owned(), Some(count(a)), None));
            continue;
        };
        let used = o.used_keys.get(i).copied().unwrap_or(false) || n.used_keys.get(j).copied().unwrap_or(false);
        let unused = if used { "" } else { " (unused)" };
        let more = b.sha256.iter().filter(|h| !a.sha256.contains(h)).count();
        let fewer = a.sha256.iter().filter(|h| !b.sha256.contains(h)).count();
        let (ov, nv) = (Some(count(a)), Some(count(b)));
        if more > 0 {
            let verdict = if used { Verdict::Weakened } else { Verdict::Neutral };
            out.push(change(Area::ApiKeys, name, "sha256", verdict, format!("accepts {more} more key(s){unused}"), ov.clone(), nv.clone()));
        }
        if fewer > 0 {
            let verdict = if used { Verdict::Strengthened } else { Verdict::Neutral };
            out.push(change(Area::ApiKeys, name, "sha256", verdict, format!("no longer accepts {fewer} key(s){unused}"), ov.clone(), nv.clone()));
        }
        if a.header != b.header {
            out.push(change(Area::ApiKeys, name, "header", Verdict::Neutral, format!("header {} → {}", a.header, b.header), Some(a.header.clone()), Some(b.header.clone())));
        }
        let failures = |s: &Side, k: &ApiKey| k.failures.and_then(|l| s.bundle.limits.get(usize::from(l))).cloned();
        let (fa, fb) = (failures(o, a), failures(n, b));
        let show = |l: &Option<Limit>| l.as_ref().map_or_else(|| "off".to_owned(), rate_text);
        let weaker = |v: Verdict| if used { v } else { Verdict::Neutral };
        match (&fa, &fb) {
            (Some(_), None) => out.push(change(Area::ApiKeys, name, "failures", weaker(Verdict::Weakened), format!("failed attempts no longer counted (were {}){unused}", show(&fa)), Some(show(&fa)), Some(show(&fb)))),
            (None, Some(_)) => out.push(change(Area::ApiKeys, name, "failures", weaker(Verdict::Strengthened), format!("failed attempts counted ({}){unused}", show(&fb)), Some(show(&fa)), Some(show(&fb)))),
            (Some(x), Some(y)) => {
                for d in limit_deltas(x, y) {
                    out.push(change(Area::ApiKeys, name, "failures", weaker(d.verdict), format!("failures {}{unused}", d.text), d.old, d.new));
                }
            }
            (None, None) => {}
        }
    }
    for (name, &j) in &nm {
        if !om.contains_key(name)
            && let Some(b) = n.bundle.api_keys.get(j)
        {
            out.push(change(Area::ApiKeys, name, "sha256", Verdict::Neutral, "added".to_owned(), None, Some(count(b))));
        }
    }
}

