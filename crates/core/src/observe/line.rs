//! The request log line (docs/observe.md has the schema), written without serde's
//! byte-at-a-time escaping: it runs for every request.

use serde::Serialize;

use super::{Facts, Flight, NANOS_PER_MS, Observed};
use crate::dates::rfc3339_millis;
use crate::decision::{Action, Endpoint, OriginFailure, Reason};
use crate::vocab::Lane;

/// The log line (docs/observe.md has the schema).
#[derive(Serialize)]
pub(super) struct Line<'a> {
    ts: String,
    level: &'static str,
    msg: &'static str,
    /// The policy that decided: the bundle revision's first 12 hex digits.
    revision: &'a str,
    request_id: &'a str,
    method: &'a str,
    host: &'a str,
    path: &'a str,
    route: Option<&'a str>,
    action: &'static str,
    reason: &'static str,
    status: u16,
    edge_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lane: Option<Lane>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin_error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failover: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shadowed: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    csp: Option<CspSummary>,
    /// The bot category that decided (never the user agent): set when a `bots` rule classified
    /// a client that is not a browser.
    #[serde(skip_serializing_if = "Option::is_none")]
    bot: Option<&'static str>,
    /// The shield signature family this request matched (never the matched text).
    #[serde(skip_serializing_if = "Option::is_none")]
    shield: Option<&'static str>,
}

impl Line<'_> {
    /// The line as JSON, exactly as its `Serialize` derive writes it (held to that by
    /// `tests::line_json_is_serdes`), without serde_json's byte-at-a-time escaping: this runs
    /// for every request (crate::json).
    pub(super) fn to_json(&self) -> String {
        let mut w = crate::json::ObjectWriter::with_capacity(384);
        w.str("ts", &self.ts);
        w.str("level", self.level);
        w.str("msg", self.msg);
        w.str("revision", self.revision);
        w.str("request_id", self.request_id);
        w.str("method", self.method);
        w.str("host", self.host);
        w.str("path", self.path);
        w.str_or_null("route", self.route);
        w.str("action", self.action);
        w.str("reason", self.reason);
        w.u64("status", u64::from(self.status));
        w.u64("edge_ms", self.edge_ms);
        w.opt_str("origin", self.origin);
        w.opt_str("lane", self.lane.map(Lane::as_str));
        w.opt_u64("origin_ms", self.origin_ms);
        w.opt_str("origin_error", self.origin_error);
        w.opt_str("failover", self.failover.as_deref());
        w.opt_str("cache", self.cache);
        w.opt_str("limit", self.limit);
        w.opt_u64("remaining", self.remaining);
        w.opt_str("client_ip", self.client_ip.as_deref());
        w.opt_str("shadowed", self.shadowed);
        w.opt_str("detail", self.detail);
        if let Some(csp) = &self.csp {
            w.raw("csp", &serde_json::to_string(csp).unwrap_or_else(|_| "null".into()));
        }
        w.opt_str("bot", self.bot);
        w.opt_str("shield", self.shield);
        w.finish()
    }
}

#[derive(Serialize)]
struct CspSummary {
    violations: usize,
    duplicates: u32,
    ignored: u32,
}

impl<'a> Facts<'a> {
    pub(super) fn line(&self, flight: &'a Flight, seen: &Observed) -> Line<'a> {
        let d = &flight.decision;
        let accepted_report = matches!(d.endpoint, Some(Endpoint::CspReport(_))) && d.reason == Reason::CspReport;
        let plain = d.action == Action::Forward && d.detail == crate::engine::FORWARDED;
        Line {
            ts: rfc3339_millis(flight.arrived / NANOS_PER_MS),
            level: self.level.as_str(),
            msg: "request",
            revision: self.revision,
            request_id: &d.request_id,
            method: &flight.method,
            host: &d.host,
            path: self.path,
            route: self.route,
            action: self.action,
            reason: self.reason,
            status: seen.status,
            edge_ms: seen.edge_ms,
            origin: self.origin_name,
            lane: d.lane.filter(|_| d.action == Action::Forward),
            origin_ms: seen.origin_ms,
            origin_error: seen.origin_error.map(|e| if e == OriginFailure::Timeout { "timeout" } else { "unreachable" }),
            failover: self.failover.clone(),
            cache: seen.cache,
            limit: self.limit.map(|(name, _)| name),
            remaining: self.limit.map(|(_, r)| r),
            client_ip: self.client_ip.clone(),
            shadowed: d.shadowed.map(Reason::code),
            detail: (!plain).then_some(d.detail.as_ref()),
            csp: accepted_report.then_some(CspSummary { violations: flight.violations.len(), duplicates: flight.duplicates, ignored: flight.ignored }),
            bot: d.client.bot.map(|b| b.category).filter(|c| *c != crate::bots::Category::Browser).map(crate::bots::Category::code),
            shield: d.client.signature.map(|h| h.kind.code()),
        }
    }
}

// Property tests only, and proptest needs threads, failure files and OS randomness: native runs
// only.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        "[ -~\\x00-\\x1f\"\\\\é✓]{0,24}"
    }

    proptest::proptest! {
        /// The log line's writer says what its `Serialize` derive says, byte for byte, with
        /// every optional field present or not and strings that need escaping.
        #[test]
        fn line_json_is_serdes(
            strings in proptest::collection::vec(text(), 12),
            numbers in proptest::prelude::any::<(u16, u64, u64, u64)>(),
            present in proptest::prelude::any::<[bool; 12]>(),
            lane in 0usize..6,
        ) {
            use Lane;
            let s = |i: usize| strings.get(i).map_or("", String::as_str);
            let on = |i: usize| present.get(i).copied().unwrap_or(false);
            let lanes = [Lane::Pinned, Lane::Active, Lane::Sticky, Lane::CanaryDraw, Lane::ActiveDraw, Lane::HealthReroute];
            let line = Line {
                ts: s(0).to_owned(),
                level: "info",
                msg: "request",
                revision: s(11),
                request_id: s(1),
                method: s(2),
                host: s(3),
                path: s(4),
                route: on(0).then(|| s(5)),
                action: "forward",
                reason: "ok",
                status: numbers.0,
                edge_ms: numbers.1,
                origin: on(1).then(|| s(6)),
                lane: on(2).then(|| lanes.get(lane).copied()).flatten(),
                origin_ms: on(3).then_some(numbers.2),
                origin_error: on(4).then_some("timeout"),
                failover: on(5).then(|| s(7).to_owned()),
                cache: on(5).then_some("stale-if-error"),
                limit: on(6).then(|| s(8)),
                remaining: on(7).then_some(numbers.3),
                client_ip: on(8).then(|| s(9).to_owned()),
                shadowed: on(9).then_some("blocked"),
                detail: on(10).then(|| s(10)),
                csp: on(11).then_some(CspSummary { violations: 3, duplicates: 1, ignored: 2 }),
                bot: on(0).then_some("ai_crawler"),
                shield: on(1).then_some("secrets"),
            };
            proptest::prop_assert_eq!(line.to_json(), serde_json::to_string(&line).unwrap_or_default());
        }
    }
}
