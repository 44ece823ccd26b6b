//! Semantic diff of two compiled policies, with a security verdict per change.
//!
//! Both sides are [`Bundle`]s (a policy is compiled first), so the comparison sees what the edge
//! enforces, not how the TOML is written: reordered tables, routes and keys, `[id]` versus `:id`,
//! `"1MiB"` versus `"1024KiB"` and the order of CSP sources or CIDR blocks make no difference.
//!
//! Every change gets a [`Verdict`]: **weakened** (the edge now lets through something it refused
//! or sends a laxer header), **strengthened** (the reverse) or **neutral** (no effect on what is
//! refused or which security headers are sent). The rules are listed in `docs/diff.md`; the
//! functions below are grouped the same way.
//!
//! Cost: routes are indexed by pattern (hash maps), header sets are parsed once per set, and a
//! route added or removed costs one trie search in the other bundle, so two 1 000-route bundles
//! compare in well under a millisecond. Pure: no I/O, so the playground can run it in wasm.

use core::fmt;
use std::collections::HashMap;

use edgeguard_core::Bundle;

mod cidr;
mod csp;
mod headers;
mod limits;
mod locate;
mod rules;
mod settings;
mod side;
mod text;
#[cfg(test)]
mod tests;

pub use locate::locate;

use limits::{diff_api_keys, diff_limits};
use rules::{diff_rules, route_added_or_removed};
use settings::{diff_app, diff_cache, diff_client_ip, diff_deploy, diff_health, diff_https, diff_origins, diff_sanitize};
use side::Side;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// What a change does to the edge's protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// The edge refuses less, or sends a laxer security header.
    Weakened,
    /// The edge refuses more, or sends a stricter security header.
    Strengthened,
    /// No effect on what is refused or on the security headers.
    Neutral,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Weakened, Verdict::Strengthened, Verdict::Neutral];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Weakened => "weakened",
            Verdict::Strengthened => "strengthened",
            Verdict::Neutral => "neutral",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Which part of the policy a change is in. Changes are reported in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    App,
    Https,
    Headers,
    Csp,
    Defaults,
    Routes,
    Limits,
    ApiKeys,
    Origins,
    Deploy,
    Health,
    ClientIp,
    Sanitize,
    Limiter,
    /// `[cache]`, `[fallback]`, `[maintenance]` (the subject names the table).
    Cache,
}

impl Area {
    /// Stable name, used in JSON (`"area"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Area::App => "app",
            Area::Https => "https",
            Area::Headers => "headers",
            Area::Csp => "csp",
            Area::Defaults => "defaults",
            Area::Routes => "routes",
            Area::Limits => "limits",
            Area::ApiKeys => "api_keys",
            Area::Origins => "origins",
            Area::Deploy => "deploy",
            Area::Health => "health",
            Area::ClientIp => "client_ip",
            Area::Sanitize => "sanitize",
            Area::Limiter => "limiter",
            Area::Cache => "cache",
        }
    }

    /// The singular word put before a subject in text output (`route /api/**`).
    pub fn noun(self) -> &'static str {
        match self {
            Area::Headers => "header",
            Area::Routes => "route",
            Area::Limits => "limit",
            Area::ApiKeys => "api_key",
            Area::Origins => "origin",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One semantic change between the two policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub area: Area,
    /// What changed within the area: a route pattern, a header name, a CSP directive, a limit
    /// name, `hsts`, `hosts`… (`defaults` for `[defaults]`).
    pub subject: String,
    /// One human sentence, e.g. `require_cookie "sb-*-auth-token*" removed`.
    pub change: String,
    pub verdict: Verdict,
    /// The old and new values as text, `None` where there is none.
    pub old: Option<String>,
    pub new: Option<String>,
    /// The policy key the change is about (`require_cookie`, `hsts`, `rate`, a directive…),
    /// used by [`locate()`] to find the line.
    pub key: String,
}

impl Change {
    /// `route /api/admin/**`, `header X-Frame-Options`, `defaults`, `https hsts`…
    pub fn label(&self) -> String {
        match self.area {
            Area::Defaults => "defaults".to_owned(),
            area => format!("{} {}", area.noun(), self.subject),
        }
    }
}

/// How many changes of each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub weakened: usize,
    pub strengthened: usize,
    pub neutral: usize,
}

impl Summary {
    pub fn of(changes: &[Change]) -> Summary {
        let mut s = Summary::default();
        for c in changes {
            match c.verdict {
                Verdict::Weakened => s.weakened = s.weakened.saturating_add(1),
                Verdict::Strengthened => s.strengthened = s.strengthened.saturating_add(1),
                Verdict::Neutral => s.neutral = s.neutral.saturating_add(1),
            }
        }
        s
    }

    pub fn total(&self) -> usize {
        self.weakened.saturating_add(self.strengthened).saturating_add(self.neutral)
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        match verdict {
            Verdict::Weakened => self.weakened,
            Verdict::Strengthened => self.strengthened,
            Verdict::Neutral => self.neutral,
        }
    }
}

/// `2 weakened, 1 strengthened, 3 neutral`
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} weakened, {} strengthened, {} neutral", self.weakened, self.strengthened, self.neutral)
    }
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

/// Every semantic change from `old` to `new`, grouped by [`Area`] (routes in the new policy's
/// order, then removed routes in the old one's). Empty when both enforce the same thing.
pub fn diff(old: &Bundle, new: &Bundle) -> Vec<Change> {
    let o = Side::new(old);
    let n = Side::new(new);
    let env = new.app.environment.as_str();
    let mut out = Vec::new();

    diff_app(old, new, &mut out);
    diff_https(old, new, &mut out);

    let od = o.rule(&old.defaults, "[defaults]", None);
    let nd = n.rule(&new.defaults, "[defaults]", None);
    // Changes a route only inherits from [defaults] are reported once, under `defaults` (or
    // `headers`/`csp`/`https` for the site-wide headers); `inherited` counts the routes.
    let mut inherited: HashMap<String, usize> = HashMap::new();
    let mut scratch: HashMap<String, usize> = HashMap::new();
    for (i, route) in new.routes.iter().enumerate() {
        let Some(pattern) = route.pattern.as_deref() else { continue };
        let nv = n.rule(route, pattern, n.segments.get(i));
        match o.index.get(pattern).and_then(|&j| old.routes.get(j).map(|r| (j, r))) {
            Some((j, old_route)) => {
                let ov = o.rule(old_route, pattern, o.segments.get(j));
                for d in diff_rules(&ov, &nv, Some((&od, &nd)), env, &mut inherited) {
                    out.push(d.into_route_change(pattern));
                }
            }
            None => {
                let (label, fallback) = o.fallback(n.segments.get(i), &od);
                let deltas = diff_rules(&fallback, &nv, Some((&od, &nd)), env, &mut scratch);
                out.push(route_added_or_removed(pattern, &label, deltas, true));
            }
        }
    }
    for (j, route) in old.routes.iter().enumerate() {
        let Some(pattern) = route.pattern.as_deref() else { continue };
        if n.index.contains_key(pattern) {
            continue;
        }
        let ov = o.rule(route, pattern, o.segments.get(j));
        let (label, fallback) = n.fallback(o.segments.get(j), &nd);
        let deltas = diff_rules(&ov, &fallback, Some((&od, &nd)), env, &mut scratch);
        out.push(route_added_or_removed(pattern, &label, deltas, false));
    }
    for d in diff_rules(&od, &nd, None, env, &mut scratch) {
        let count = inherited.get(&d.facet.id()).copied().unwrap_or(0);
        out.push(d.into_defaults_change(count));
    }

    diff_limits(&o, &n, &mut out);
    diff_api_keys(&o, &n, &mut out);
    diff_origins(old, new, &mut out);
    diff_deploy(old, new, &mut out);
    diff_health(old, new, &mut out);
    diff_cache(old, new, &mut out);
    diff_client_ip(old, new, &mut out);
    diff_sanitize(old, new, &mut out);
    for (key, a, b) in [
        ("max_keys", old.limiter.max_keys, new.limiter.max_keys),
        ("global_shards", old.limiter.global_shards, new.limiter.global_shards),
    ] {
        if a != b {
            out.push(change(Area::Limiter, key, key, Verdict::Neutral, format!("{key} {a} → {b}"), Some(a.to_string()), Some(b.to_string())));
        }
    }
    out.sort_by_key(|c| c.area);
    out
}

fn change(area: Area, subject: &str, key: &str, verdict: Verdict, text: String, old: Option<String>, new: Option<String>) -> Change {
    Change { area, subject: subject.to_owned(), change: text, verdict, old, new, key: key.to_owned() }
}

