//! Shadow policies: a candidate policy decides every request next to the active one, enforces
//! nothing, and says where it would have answered differently.
//!
//! A security team deploys `edgeguard build active.toml --shadow candidate.toml`; the active
//! policy answers every request as before, and the candidate's decision is compared with it.
//! Where they disagree — another action, status or reason, or another origin — one log line
//! names the request, both revisions and both decisions, and the metrics count it. That shows
//! what a policy change would break on live traffic before it is enforced.
//!
//! The candidate keeps its own per-isolate rate-limit state. Its `scope = "global"` limits are
//! counted in that state as if this isolate were the whole fleet ([`Engine::decide_standalone`]):
//! it sees fewer requests than the fleet-wide counter would, so a global limit it reports as
//! exceeded is exceeded, but it can miss some. Operational levers (active origin, canary share,
//! global shadow switch) and health probe results apply to both policies by origin name.
//!
//! ```
//! # use edgeguard_core::shadow::{Outcome, disagree};
//! let active = Outcome { action: "forward", status: None, reason: "ok", route: Some("/api/*"), origin: Some("blue") };
//! let blocked = Outcome { action: "reject", status: Some(404), reason: "blocked", route: Some("/api/debug-*"), origin: None };
//! assert!(disagree(&active, &blocked));
//! assert!(!disagree(&active, &Outcome { route: Some("/api/:rest*"), ..active }));
//! ```

use crate::bundle::LoadError;
use crate::decision::Decision;
use crate::engine::{Draw, Engine, Overrides};
use crate::json::ObjectWriter;
use crate::limits::{Limiter, Nanos};
use crate::observe::{MAX_PATH_BYTES, rfc3339_millis, short_revision, truncate};
use crate::request::RequestFacts;

/// The candidate policy of a shadow deployment, with its own limiter state.
pub struct Shadow {
    engine: Engine,
    limiter: Limiter,
}

/// What a decision does to a request, as the comparison sees it: everything a client or the
/// origin would notice, and the route it was decided under for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome<'a> {
    pub action: &'static str,
    pub status: Option<u16>,
    pub reason: &'static str,
    /// The route pattern (`None` for the defaults, or a refusal before routing).
    pub route: Option<&'a str>,
    /// The origin's name, for a forwarded request.
    pub origin: Option<&'a str>,
}

impl<'a> Outcome<'a> {
    pub fn of(engine: &'a Engine, d: &Decision) -> Outcome<'a> {
        Outcome {
            action: d.action.code(),
            status: d.status,
            reason: d.reason.code(),
            route: engine.rule(d).and_then(|r| r.pattern.as_deref()),
            origin: d.origin.and_then(|o| engine.bundle().origins.get(usize::from(o))).map(|o| o.name.as_str()),
        }
    }

    fn write(&self, w: &mut ObjectWriter) {
        w.str("action", self.action);
        w.opt_u64("status", self.status.map(u64::from));
        w.str("reason", self.reason);
        w.str_or_null("route", self.route);
        w.opt_str("origin", self.origin);
    }
}

/// Whether two decisions treat the request differently. The route pattern alone is not a
/// difference: a renamed or split route that answers the same is not a change a client sees.
pub fn disagree(active: &Outcome, candidate: &Outcome) -> bool {
    active.action != candidate.action || active.status != candidate.status || active.reason != candidate.reason || active.origin != candidate.origin
}

/// A disagreement, ready for the log and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The log line (JSON, one line).
    pub line: String,
    /// Reason codes of the active and the candidate decision, for the metric's labels.
    pub active_reason: &'static str,
    pub shadow_reason: &'static str,
}

impl Shadow {
    /// Load the candidate bundle. `seed` keys its limiter's hash.
    pub fn load(bytes: &[u8], seed: u64) -> Result<Shadow, LoadError> {
        let engine = Engine::load(bytes)?;
        let limiter = engine.new_limiter(seed);
        Ok(Shadow { engine, limiter })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Apply the active policy's levers to the candidate, origins matched by name (a lever
    /// naming an origin the candidate does not have leaves the candidate's own setting).
    pub fn follow_overrides(&mut self, active: &Engine) {
        let o = active.overrides();
        let by_name = |i: Option<u16>| {
            i.and_then(|i| active.bundle().origins.get(usize::from(i))).and_then(|origin| self.engine.origin_index(&origin.name))
        };
        let overrides = Overrides { active: by_name(o.active), canary_basis_points: o.canary_basis_points, shadow: o.shadow, maintenance: o.maintenance };
        self.engine.set_overrides(overrides);
        self.engine.set_maintenance_secret(active.maintenance_secret().map(str::to_owned));
    }

    /// Health probe results (a bit per active origin index that failed), by origin name.
    pub fn follow_health(&mut self, active: &Engine, unhealthy: u64) {
        let mut mask = 0u64;
        for (i, origin) in active.bundle().origins.iter().enumerate() {
            let failed = u32::try_from(i).ok().and_then(|i| unhealthy.checked_shr(i)).is_some_and(|bits| bits & 1 == 1);
            if let Some(j) = self.engine.origin_index(&origin.name).filter(|_| failed) {
                mask |= 1u64.checked_shl(u32::from(j)).unwrap_or(0);
            }
        }
        self.engine.set_unhealthy(mask);
    }

    /// The candidate's decision for a request the active policy decided with the same clock
    /// and random draw.
    pub fn decide(&mut self, req: &RequestFacts, now: Nanos, draw: Draw) -> Decision {
        self.engine.decide_standalone(req, &mut self.limiter, now, draw)
    }

    /// Compare the active decision with the candidate's; the log line when they disagree.
    /// `method` is the request's; `now` the clock when the active decision became final (for a
    /// request that waited for a global limit, when it was settled).
    pub fn compare(&self, active_engine: &Engine, active: &Decision, candidate: &Decision, method: &str, now: Nanos) -> Option<Disagreement> {
        let a = Outcome::of(active_engine, active);
        let c = Outcome::of(&self.engine, candidate);
        if !disagree(&a, &c) {
            return None;
        }
        let mut w = ObjectWriter::with_capacity(512);
        w.str("ts", &rfc3339_millis(now / 1_000_000));
        w.str("level", "warn");
        w.str("msg", "shadow policy disagrees");
        w.str("revision", short_revision(active_engine.bundle()));
        w.str("shadow_revision", short_revision(self.engine.bundle()));
        w.str("request_id", &active.request_id);
        // Bounded as in the request's own line: a method of at most 32 bytes, a path of 256.
        w.str("method", truncate(method, 32));
        w.str("host", &active.host);
        w.str("path", truncate(active.path_and_query.split('?').next().unwrap_or("/"), MAX_PATH_BYTES));
        let mut side = ObjectWriter::with_capacity(128);
        a.write(&mut side);
        w.raw("active", &side.finish());
        let mut side = ObjectWriter::with_capacity(192);
        c.write(&mut side);
        side.str("detail", &candidate.detail);
        w.raw("shadow", &side.finish());
        Some(Disagreement { line: w.finish(), active_reason: a.reason, shadow_reason: c.reason })
    }

    /// Client keys the candidate's limiter holds.
    pub fn limiter_keys(&self) -> usize {
        self.limiter.len()
    }
}
