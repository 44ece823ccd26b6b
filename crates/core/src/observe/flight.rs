//! One request as the observer sees it: the decision in flight, what the shell saw of the
//! response, and what the observer hands back ([`Finished`]); and the facts computed once from
//! them for the log line, the events and the data point.

use serde::Serialize;
use serde_json::Value;

use super::{MAX_PATH_BYTES, Violation, client_ip_text, origin_name, short_revision, truncate};
use crate::bundle::LogLevel;
use crate::decision::{Action, Decision, OriginFailure};
use crate::engine::Engine;
use crate::vocab::Nanos;

/// A request between `decide` and [`Observer::finish`], kept by the shell's Rust half.
#[derive(Debug, Clone)]
pub struct Flight {
    pub decision: Decision,
    /// The request method (at most 32 characters).
    pub method: String,
    /// When the request arrived, on the shell's clock (Unix time).
    pub arrived: Nanos,
    /// Accepted, not duplicate CSP violations from its body.
    pub violations: Vec<Violation>,
    pub duplicates: u32,
    pub ignored: u32,
}

impl Flight {
    pub fn new(decision: Decision, method: &str, arrived: Nanos) -> Flight {
        Flight { decision, method: method.chars().take(32).collect(), arrived, violations: Vec::new(), duplicates: 0, ignored: 0 }
    }
}

/// What the shell saw of the request's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed<'a> {
    /// The status the client got.
    pub status: u16,
    /// Time in the edge, the origin's excluded (`Server-Timing: edge;dur=`).
    pub edge_ms: u64,
    /// Time to the origin's response headers, when the origin was asked.
    pub origin_ms: Option<u64>,
    /// The edge answered 502/504 because the origin could not.
    pub origin_error: Option<OriginFailure>,
    /// The first origin failed with this (`"500"`, `"unreachable"`) and the request failed
    /// over to the decision's `failover` origin.
    pub failover: Option<&'a str>,
    /// The response is an HTML page (`Content-Type: text/html`): a page view.
    pub html: bool,
    /// What the edge cache did (one of [`CACHE_OUTCOMES`]), on a route with one.
    pub cache: Option<&'static str>,
}

/// What the edge cache did for a request, as the shell reports it: answered from a fresh copy
/// (`hit`), from a stale one while one refresh runs (`stale`), from a stale one because the
/// origin failed (`stale-if-error`), from the copy a concurrent miss stored (`collapsed`),
/// forwarded and stored (`miss`), forwarded and not storable (`no-store`), not looked up
/// (`bypass`), or the fallback page because no origin answered and nothing was stored
/// (`fallback`).
pub const CACHE_OUTCOMES: [&str; 8] = ["hit", "stale", "stale-if-error", "collapsed", "miss", "no-store", "bypass", "fallback"];

/// The outcome named `name`, as a static string; `None` for anything else.
pub fn cache_outcome(name: &str) -> Option<&'static str> {
    CACHE_OUTCOMES.iter().copied().find(|o| *o == name)
}

/// Random draws for one request's sampling decisions (uniform over `u32`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Draws {
    pub log: u32,
    pub pageview: u32,
}

/// A data point for the Analytics Engine binding's `writeDataPoint`. The doubles are whole
/// numbers (status, milliseconds, a count), written as JSON integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataPoint {
    pub indexes: Vec<String>,
    pub blobs: Vec<String>,
    pub doubles: Vec<i64>,
}

/// What the shell does for one finished request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finished {
    /// The JSON log line to `console.log`, when this request is logged.
    pub log: Option<String>,
    /// PostHog events (the `batch` array of `/batch/`); the shell adds `api_key`.
    pub events: Vec<Value>,
    pub point: Option<DataPoint>,
}

/// What one finished request is, computed once for the line, the events and the point.
pub(super) struct Facts<'a> {
    pub(super) level: LogLevel,
    pub(super) revision: &'a str,
    pub(super) action: &'static str,
    pub(super) reason: &'static str,
    pub(super) path: &'a str,
    pub(super) route: Option<&'a str>,
    /// The origin that answered (or failed last).
    pub(super) origin: Option<u16>,
    pub(super) origin_name: Option<&'a str>,
    pub(super) client_ip: Option<String>,
    pub(super) limit: Option<(&'a str, u64)>,
    pub(super) failover: Option<String>,
}

impl<'a> Facts<'a> {
    pub(super) fn new(engine: &'a Engine, flight: &'a Flight, seen: &Observed) -> Facts<'a> {
        let bundle = engine.bundle();
        let d = &flight.decision;
        let origin = if seen.failover.is_some() { d.failover.or(d.origin) } else { d.origin };
        let level = if seen.origin_error.is_some() || (d.action == Action::Forward && seen.status >= 500) {
            LogLevel::Error
        } else if d.action == Action::Reject || d.shadowed.is_some() || seen.failover.is_some() || d.rate_limit.is_some_and(|r| r.shadow_refused) {
            LogLevel::Warn
        } else {
            LogLevel::Info
        };
        let reason = match seen.origin_error {
            Some(OriginFailure::Timeout) => "origin_timeout",
            Some(OriginFailure::Unreachable) => "origin_unreachable",
            None => d.reason.code(),
        };
        let action = d.action.code();
        let path = d.path_and_query.split('?').next().unwrap_or("/");
        let failover = seen.failover.map(|cause| {
            let from = d.origin.map_or("?", |o| origin_name(bundle, o));
            let to = d.failover.map_or("?", |o| origin_name(bundle, o));
            format!("{from} {cause} -> {to}")
        });
        Facts {
            level,
            revision: short_revision(bundle),
            action,
            reason,
            path: truncate(path, MAX_PATH_BYTES),
            route: engine.rule(d).and_then(|r| r.pattern.as_deref()),
            origin,
            origin_name: origin.and_then(|o| bundle.origins.get(usize::from(o))).map(|o| o.name.as_str()),
            client_ip: client_ip_text(d.client_ip, bundle.observe.client_ip),
            limit: d.rate_limit.and_then(|r| bundle.limits.get(usize::from(r.limit)).map(|l| (l.name.as_str(), r.remaining))),
            failover,
        }
    }
}
