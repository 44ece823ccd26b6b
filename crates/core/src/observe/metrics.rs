//! The isolate's metrics: counters and latency histograms by route, origin and result,
//! rendered as Prometheus text for the metrics endpoint.

use std::collections::BTreeMap;

use super::{Facts, Flight, Observed};
use crate::bundle::{Bundle, LogLevel};
use crate::decision::{Action, Endpoint, OriginFailure, Reason, RuleRef};
use crate::prometheus::Prom;
#[cfg(test)]
use crate::prometheus::escape_label;

/// Most distinct series of each metric per isolate; beyond it they are counted as dropped.
const MAX_SERIES: usize = 2048;
/// Most distinct directive names counted separately; the rest count as "other".
const MAX_DIRECTIVES: usize = 64;

/// Latency buckets, in milliseconds, and their `le` labels in seconds.
const BUCKETS_MS: [u64; 14] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];
const BUCKET_LABELS: [&str; 14] = ["0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Histogram {
    buckets: [u64; 14],
    count: u64,
    sum_ms: u64,
}

impl Histogram {
    fn observe(&mut self, ms: u64) {
        if let Some(slot) = BUCKETS_MS.iter().position(|b| ms <= *b).and_then(|i| self.buckets.get_mut(i)) {
            *slot = slot.saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }
}

/// Rule key of a metric series: a route index, or one of these.
const RULE_DEFAULTS: u32 = u32::MAX - 1;
const RULE_NONE: u32 = u32::MAX;

pub(super) fn rule_key(rule: RuleRef) -> u32 {
    match rule {
        RuleRef::None => RULE_NONE,
        RuleRef::Defaults => RULE_DEFAULTS,
        RuleRef::Route(i) => i.min(RULE_DEFAULTS.saturating_sub(1)),
    }
}

/// The rule key of a route label ([`rule_label`]'s inverse); `None` for a route this policy lacks.
pub(super) fn label_rule(bundle: &Bundle, label: &str) -> Option<u32> {
    match label {
        "(none)" => Some(RULE_NONE),
        "(defaults)" => Some(RULE_DEFAULTS),
        pattern => bundle.routes.iter().position(|r| r.pattern.as_deref() == Some(pattern)).and_then(|i| u32::try_from(i).ok()),
    }
}

pub(super) fn rule_label(bundle: &Bundle, key: u32) -> &str {
    match key {
        RULE_NONE => "(none)",
        RULE_DEFAULTS => "(defaults)",
        i => bundle.routes.get(i as usize).and_then(|r| r.pattern.as_deref()).unwrap_or("(unknown)"),
    }
}

/// A closed set of results counted side by side (one Prometheus label value each), counted in a
/// [`Tally`] by the variant itself: no slot numbers.
pub(super) trait Results: Copy + 'static {
    /// Every result, in the order they are rendered.
    const ALL: &'static [Self];
    /// The label value.
    fn label(self) -> &'static str;
    /// Its counter in a [`Tally`] (below [`MAX_RESULTS`]).
    fn slot(self) -> usize;
}

/// Most results a [`Results`] set may have.
const MAX_RESULTS: usize = 8;

/// One fieldless enum of results, its labels, and its [`Results`] impl.
macro_rules! results {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum $name {
            $($variant),+
        }

        impl Results for $name {
            const ALL: &'static [$name] = &[$($name::$variant),+];
            fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }
            fn slot(self) -> usize {
                self as usize
            }
        }

        const _: () = assert!(<$name as Results>::ALL.len() <= MAX_RESULTS);
    };
}

results! {
    /// What became of a CSP report, or of a report request, as counted by
    /// `edgeguard_csp_reports_total`: accepted, duplicate and ignored per report; the refusals
    /// per request.
    CspResult {
        Accepted = "accepted",
        Duplicate = "duplicate",
        Ignored = "ignored",
        Malformed = "malformed",
        TooLarge = "too_large",
        RateLimited = "rate_limited",
        UnsupportedMediaType = "unsupported_media_type",
        MethodNotAllowed = "method_not_allowed",
    }
}

results! {
    /// A PostHog batch: sent and answered 2xx, answered otherwise, timed out, failed.
    BatchResult {
        Ok = "ok",
        Status = "status",
        Timeout = "timeout",
        Error = "error",
    }
}

impl BatchResult {
    /// The result the shell names (`"ok"`, `"status"`, `"timeout"`); anything else is an error.
    pub(super) fn named(name: &str) -> BatchResult {
        BatchResult::ALL.iter().copied().find(|r| r.label() == name).unwrap_or(BatchResult::Error)
    }
}

results! {
    /// An Analytics Engine `writeDataPoint` call: returned, or threw.
    PointResult {
        Ok = "ok",
        Error = "error",
    }
}

/// Log lines are counted by the level they were written at (never `off`).
impl Results for LogLevel {
    const ALL: &'static [LogLevel] = &[LogLevel::Error, LogLevel::Warn, LogLevel::Info];
    fn label(self) -> &'static str {
        self.as_str()
    }
    fn slot(self) -> usize {
        self as usize
    }
}

/// One counter per result of a [`Results`] set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Tally([u64; MAX_RESULTS]);

impl Tally {
    pub(super) fn add<R: Results>(&mut self, result: R, n: u64) {
        if let Some(c) = self.0.get_mut(result.slot()) {
            *c = c.saturating_add(n);
        }
    }

    pub(super) fn bump<R: Results>(&mut self, result: R) {
        self.add(result, 1);
    }

    /// Every result of `R` with its count, in order.
    fn counts<R: Results>(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        R::ALL.iter().map(|r| (r.label(), self.0.get(r.slot()).copied().unwrap_or(0)))
    }
}

/// Per-isolate counters, rendered as Prometheus text.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    requests: BTreeMap<(u32, &'static str, &'static str, u16), u64>,
    edge: BTreeMap<u32, Histogram>,
    origin: BTreeMap<(u32, u16), Histogram>,
    origin_failures: BTreeMap<(u16, &'static str), u64>,
    /// Edge cache outcomes by route.
    cache: BTreeMap<(u32, &'static str), u64>,
    /// By [`CspResult`].
    csp: Tally,
    directives: BTreeMap<String, u64>,
    /// Events handed to the shell, dropped by the event budget, lost with a failed batch.
    pub(super) events_queued: u64,
    pub(super) events_dropped: u64,
    pub(super) events_failed: u64,
    /// By [`BatchResult`].
    pub(super) batches: Tally,
    /// Data points written, and writes that threw.
    pub(super) points: Tally,
    /// Lines written by level (error, warn, info), and info lines left out by `sample`.
    pub(super) lines: Tally,
    pub(super) sampled_out: u64,
    pub(super) series_dropped: u64,
    /// The candidate policy of a shadow deployment (its short revision), when one is loaded.
    pub(super) shadow: Option<String>,
    /// Requests the candidate decided, and its disagreements by (active, candidate) reason.
    pub(super) shadow_decisions: u64,
    pub(super) shadow_disagreements: BTreeMap<(&'static str, &'static str), u64>,
}

pub(super) fn bump<K: Ord>(map: &mut BTreeMap<K, u64>, key: K, dropped: &mut u64) {
    if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_add(1);
    } else if map.len() < MAX_SERIES {
        map.insert(key, 1);
    } else {
        *dropped = dropped.saturating_add(1);
    }
}

fn observe_into<K: Ord>(map: &mut BTreeMap<K, Histogram>, key: K, ms: u64, dropped: &mut u64) {
    if map.len() < MAX_SERIES || map.contains_key(&key) {
        map.entry(key).or_default().observe(ms);
    } else {
        *dropped = dropped.saturating_add(1);
    }
}

impl Prom {
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        for (count, le) in h.buckets.iter().zip(BUCKET_LABELS) {
            cumulative = cumulative.saturating_add(*count);
            let mut with_le = labels.to_vec();
            with_le.push(("le", le));
            self.sample(&bucket, &with_le, cumulative);
        }
        let mut inf = labels.to_vec();
        inf.push(("le", "+Inf"));
        self.sample(&bucket, &inf, h.count);
        self.sample(&format!("{name}_sum"), labels, seconds(h.sum_ms));
        self.sample(&format!("{name}_count"), labels, h.count);
    }
}

/// Milliseconds as a decimal number of seconds.
fn seconds(ms: u64) -> String {
    let frac = ms % 1000;
    if frac == 0 { format!("{}", ms / 1000) } else { format!("{}.{frac:03}", ms / 1000).trim_end_matches('0').to_owned() }
}

impl Metrics {
    /// Prometheus text format 0.0.4. `started_ms` is the isolate's first request (Unix ms).
    pub fn render(&self, bundle: &Bundle, started_ms: u64, limiter_keys: usize) -> String {
        let mut p = Prom::with_capacity(4096);
        p.head("edgeguard_build_info", "gauge", "The policy this isolate enforces.");
        p.sample("edgeguard_build_info", &[("app", &bundle.app.name), ("environment", &bundle.app.environment), ("revision", short_revision(bundle))], 1);
        p.head("edgeguard_isolate_start_time_seconds", "gauge", "When this isolate took its first request (Unix time); every counter here is this isolate's alone.");
        p.sample("edgeguard_isolate_start_time_seconds", &[], seconds(started_ms));
        p.head("edgeguard_requests_total", "counter", "Requests answered, by route, decision (action, reason) and status.");
        for ((rule, action, reason, status), n) in &self.requests {
            let status = status.to_string();
            p.sample("edgeguard_requests_total", &[("route", rule_label(bundle, *rule)), ("action", action), ("reason", reason), ("status", &status)], n);
        }
        p.head("edgeguard_edge_duration_seconds", "histogram", "Time spent in the edge per request, the origin's time excluded, by route.");
        for (rule, h) in &self.edge {
            p.histogram("edgeguard_edge_duration_seconds", &[("route", rule_label(bundle, *rule))], h);
        }
        p.head("edgeguard_origin_duration_seconds", "histogram", "Time to the origin's response headers, by route and origin.");
        for ((rule, origin), h) in &self.origin {
            let name = origin_name(bundle, *origin);
            p.histogram("edgeguard_origin_duration_seconds", &[("route", rule_label(bundle, *rule)), ("origin", name)], h);
        }
        p.head("edgeguard_origin_failures_total", "counter", "Origin attempts that failed: timeout, unreachable, or a 5xx status.");
        for ((origin, cause), n) in &self.origin_failures {
            p.sample("edgeguard_origin_failures_total", &[("origin", origin_name(bundle, *origin)), ("cause", cause)], n);
        }
        p.head("edgeguard_cache_total", "counter", "Requests on routes with an edge cache, by route and outcome (docs/caching.md).");
        for ((rule, outcome), n) in &self.cache {
            p.sample("edgeguard_cache_total", &[("route", rule_label(bundle, *rule)), ("outcome", outcome)], n);
        }
        p.head("edgeguard_csp_reports_total", "counter", "CSP reports by result: accepted, duplicate and ignored per report; refusals per request.");
        for (result, n) in self.csp.counts::<CspResult>() {
            p.sample("edgeguard_csp_reports_total", &[("result", result)], n);
        }
        p.head("edgeguard_csp_violations_total", "counter", "Accepted (not duplicate) CSP violations by effective directive.");
        for (directive, n) in &self.directives {
            p.sample("edgeguard_csp_violations_total", &[("directive", directive)], n);
        }
        p.head("edgeguard_posthog_events_total", "counter", "PostHog events: queued for sending, dropped by the event budget, lost with a failed batch.");
        for (result, n) in [("queued", self.events_queued), ("dropped", self.events_dropped), ("failed", self.events_failed)] {
            p.sample("edgeguard_posthog_events_total", &[("result", result)], n);
        }
        p.head("edgeguard_posthog_batches_total", "counter", "PostHog batches by result (never retried).");
        for (result, n) in self.batches.counts::<BatchResult>() {
            p.sample("edgeguard_posthog_batches_total", &[("result", result)], n);
        }
        p.head("edgeguard_analytics_points_total", "counter", "Analytics Engine data points written, and writes that failed.");
        for (result, n) in self.points.counts::<PointResult>() {
            p.sample("edgeguard_analytics_points_total", &[("result", result)], n);
        }
        p.head("edgeguard_log_lines_total", "counter", "Request log lines written, by level.");
        for (level, n) in self.lines.counts::<LogLevel>() {
            p.sample("edgeguard_log_lines_total", &[("level", level)], n);
        }
        p.head("edgeguard_log_lines_sampled_out_total", "counter", "Info lines left out by observe.sample.");
        p.sample("edgeguard_log_lines_sampled_out_total", &[], self.sampled_out);
        p.head("edgeguard_limiter_keys", "gauge", "Client keys this isolate's rate limiter holds.");
        p.sample("edgeguard_limiter_keys", &[], limiter_keys);
        p.head("edgeguard_metric_series_dropped_total", "counter", "Observations not counted because a metric reached its series cap.");
        p.sample("edgeguard_metric_series_dropped_total", &[], self.series_dropped);
        if let Some(revision) = &self.shadow {
            p.head("edgeguard_shadow_info", "gauge", "The candidate policy decided next to the active one (edgeguard build --shadow).");
            p.sample("edgeguard_shadow_info", &[("revision", revision)], 1);
            p.head("edgeguard_shadow_decisions_total", "counter", "Requests the candidate policy decided.");
            p.sample("edgeguard_shadow_decisions_total", &[], self.shadow_decisions);
            p.head("edgeguard_shadow_disagreements_total", "counter", "Requests the candidate would have answered differently, by the active and the candidate's reason.");
            for ((active, shadow), n) in &self.shadow_disagreements {
                p.sample("edgeguard_shadow_disagreements_total", &[("active", active), ("shadow", shadow)], n);
            }
        }
        p.out
    }
}

/// The revision as log lines, metrics and events name it: its first 12 hex digits.
pub fn short_revision(bundle: &Bundle) -> &str {
    bundle.revision.get(..12).unwrap_or(&bundle.revision)
}

pub(super) fn origin_name(bundle: &Bundle, origin: u16) -> &str {
    bundle.origins.get(usize::from(origin)).map_or("(unknown)", |o| o.name.as_str())
}

impl Metrics {
    /// Count a finished request.
    pub(super) fn count(&mut self, flight: &Flight, seen: &Observed, facts: &Facts) {
        let m = self;
        let d = &flight.decision;
        let rule = rule_key(d.rule);
        bump(&mut m.requests, (rule, facts.action, facts.reason, seen.status), &mut m.series_dropped);
        observe_into(&mut m.edge, rule, seen.edge_ms, &mut m.series_dropped);
        if let (Some(ms), Some(origin)) = (seen.origin_ms, facts.origin) {
            observe_into(&mut m.origin, (rule, origin), ms, &mut m.series_dropped);
        }
        if let Some(outcome) = seen.cache {
            bump(&mut m.cache, (rule, outcome), &mut m.series_dropped);
        }
        if let (Some(first), Some(cause)) = (d.origin, seen.failover) {
            let cause = if cause.bytes().all(|b| b.is_ascii_digit()) { "status" } else { failure_cause(cause) };
            bump(&mut m.origin_failures, (first, cause), &mut m.series_dropped);
        }
        if let Some(origin) = facts.origin {
            let cause = match seen.origin_error {
                Some(OriginFailure::Timeout) => Some("timeout"),
                Some(OriginFailure::Unreachable) => Some("unreachable"),
                None if d.action == Action::Forward && seen.status >= 500 => Some("status"),
                None => None,
            };
            if let Some(cause) = cause {
                bump(&mut m.origin_failures, (origin, cause), &mut m.series_dropped);
            }
        }
        if let Some(Endpoint::CspReport(_)) = d.endpoint {
            let refused = match d.reason {
                Reason::CspReport => None,
                Reason::MethodNotAllowed => Some(CspResult::MethodNotAllowed),
                Reason::UnsupportedMediaType => Some(CspResult::UnsupportedMediaType),
                Reason::RateLimited => Some(CspResult::RateLimited),
                Reason::PayloadTooLarge => Some(CspResult::TooLarge),
                _ => Some(CspResult::Malformed),
            };
            match refused {
                Some(result) => m.csp.bump(result),
                None => {
                    m.csp.add(CspResult::Accepted, flight.violations.len() as u64);
                    m.csp.add(CspResult::Duplicate, u64::from(flight.duplicates));
                    m.csp.add(CspResult::Ignored, u64::from(flight.ignored));
                    for v in &flight.violations {
                        let key = if m.directives.len() < MAX_DIRECTIVES || m.directives.contains_key(&v.effective_directive) {
                            v.effective_directive.clone()
                        } else {
                            "other".to_owned()
                        };
                        let n = m.directives.entry(key).or_insert(0);
                        *n = n.saturating_add(1);
                    }
                }
            }
        }
    }
}

fn failure_cause(cause: &str) -> &'static str {
    match cause {
        "timeout" => "timeout",
        _ => "unreachable",
    }
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn label_escaping_and_seconds() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(1500), "1.5");
        assert_eq!(seconds(1234), "1.234");
        assert_eq!(seconds(20), "0.02");
    }

    #[test]
    fn histogram_buckets() {
        let mut h = Histogram::default();
        for ms in [0, 1, 3, 40_000] {
            h.observe(ms);
        }
        assert_eq!(h.buckets[0], 2);
        assert_eq!(h.buckets[2], 1);
        assert_eq!(h.buckets.iter().sum::<u64>(), 3, "beyond the last bucket: only +Inf");
        assert_eq!((h.count, h.sum_ms), (4, 40_004));
    }

    /// Each result set renders its labels in the exposition's order, each counted in its own slot.
    #[test]
    fn results_count_by_variant_in_label_order() {
        assert_eq!(CspResult::ALL.iter().map(|r| r.label()).collect::<Vec<_>>(), ["accepted", "duplicate", "ignored", "malformed", "too_large", "rate_limited", "unsupported_media_type", "method_not_allowed"]);
        assert_eq!(BatchResult::ALL.iter().map(|r| r.label()).collect::<Vec<_>>(), ["ok", "status", "timeout", "error"]);
        assert_eq!(PointResult::ALL.iter().map(|r| r.label()).collect::<Vec<_>>(), ["ok", "error"]);
        assert_eq!(LogLevel::ALL.iter().map(|r| r.label()).collect::<Vec<_>>(), ["error", "warn", "info"]);
        let mut t = Tally::default();
        t.add(CspResult::Duplicate, 2);
        t.bump(CspResult::MethodNotAllowed);
        let counts: Vec<u64> = t.counts::<CspResult>().map(|(_, n)| n).collect();
        assert_eq!(counts, [0, 2, 0, 0, 0, 0, 0, 1]);
        assert_eq!((BatchResult::named("timeout"), BatchResult::named("anything else")), (BatchResult::Timeout, BatchResult::Error));
    }
}
