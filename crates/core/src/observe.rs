//! `[observe]`: what the edge tells operators about each request — one log line, metric
//! counters, CSP violation reports, PostHog events and Analytics Engine data points.
//!
//! Everything here is pure. The shell passes the clock and random draws in and performs the
//! I/O: it `console.log`s [`Finished::log`], sends [`Finished::events`] to PostHog inside
//! `waitUntil`, and hands [`Finished::point`] to `writeDataPoint`. A request moves through:
//!
//! 1. `decide`: the CSP report intake ([`Engine::csp_report_step`]) and the metrics endpoint
//!    ([`Engine::metrics_step`]) are pipeline steps right after health, answered at the edge
//!    and never forwarded.
//! 2. [`Observer::csp_body`]: for a report, once the shell has read the body (at most
//!    `max_bytes`): validate its JSON shape, drop duplicates.
//! 3. [`Observer::finish`]: once the response status is known: count it, and build the log
//!    line, the events and the data point the policy asks for.
//!
//! The [`Observer`] state is per isolate and bounded: a capped number of metric series, a
//! capped dedupe table and a token bucket for events. Nothing here ever sees a cookie, an
//! `Authorization` or API-key header, or a query string: the log line and the events are built
//! from the [`Decision`] (normalized path without its query, route, reason…) only.
//!
//! ```
//! # use edgeguard_core::observe::{client_ip_text, rfc3339_millis, sampled};
//! # use edgeguard_core::bundle::IpDetail;
//! let ip = "203.0.113.77".parse().ok();
//! assert_eq!(client_ip_text(ip, IpDetail::Truncate).as_deref(), Some("203.0.113.0"));
//! assert_eq!(rfc3339_millis(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
//! assert!(sampled(u32::MAX, 1_000_000) && !sampled(0, 0));
//! ```

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::bundle::{Bundle, CspIntake, IpDetail, LogLevel, MetricsEndpoint, event, method};
use crate::decision::{Action, Decision, Endpoint, OriginFailure, Reason, RuleRef, reject};
use crate::engine::Engine;
use crate::limits::{BuildPreHashed, Limiter, Nanos};
use crate::request::RequestFacts;
pub use crate::dates::rfc3339_millis;
pub use crate::prometheus::escape_label;
use crate::prometheus::Prom;
pub use crate::vocab::{METRICS_CONTENT_TYPE, ReportFormat};

/// Largest CSP report body the intake takes unless the policy says otherwise.
pub const DEFAULT_MAX_REPORT_BYTES: u32 = 64 * 1024;
/// Most reports in one `application/reports+json` body.
pub const MAX_REPORTS_PER_BODY: usize = 100;
/// Parts per million: a share of 1.0.
pub const PPM: u32 = 1_000_000;

const NANOS_PER_MS: u64 = 1_000_000;
/// Longest URL kept from a report (after the query and fragment are cut off).
const MAX_URL_BYTES: usize = 512;
/// Longest path a log line, event or data point carries.
pub const MAX_PATH_BYTES: usize = 256;
/// Most distinct CSP report keys remembered for dedupe per isolate.
const DEDUPE_CAP: usize = 4096;
/// Most distinct series of each metric per isolate; beyond it they are counted as dropped.
const MAX_SERIES: usize = 2048;
/// Most distinct directive names counted separately; the rest count as "other".
const MAX_DIRECTIVES: usize = 64;

// ---------------------------------------------------------------------------------------------
// Pipeline steps: the CSP report intake and the metrics endpoint
// ---------------------------------------------------------------------------------------------


impl Engine {
    /// Step 3b: a request to a `csp.report_to` path. POST only (405), a report media type
    /// (415), a body of at most `max_bytes` by its `Content-Length` (413; a body without one is
    /// measured by the shell as it reads it), within the intake's per-client limit (429). What
    /// passes is answered 204 once the shell has read the body ([`Observer::csp_body`]).
    pub(crate) fn csp_report_step(&self, req: &RequestFacts, limiter: &mut Limiter, now: Nanos, intake: &CspIntake, mut d: Decision) -> Decision {
        let b = self.bundle();
        d.headers = b.observe.headers;
        d.endpoint = Some(Endpoint::CspReport(None));
        if req.method != "POST" {
            d.allow = Some(method::POST);
            return reject(d, Reason::MethodNotAllowed, 405, Cow::Borrowed("the CSP report endpoint takes POST"));
        }
        let Some(format) = req.header("content-type").and_then(ReportFormat::from_content_type) else {
            return reject(
                d,
                Reason::UnsupportedMediaType,
                415,
                Cow::Borrowed("CSP reports are application/csp-report (report-uri) or application/reports+json (report-to)"),
            );
        };
        d.endpoint = Some(Endpoint::CspReport(Some(format)));
        match req.content_length() {
            Err(_) => return reject(d, Reason::BadRequest, 400, Cow::Borrowed("the Content-Length header is not a valid length")),
            Ok(Some(len)) if len > u64::from(intake.max_bytes) => {
                let detail = format!("the report is {len} bytes; the edge accepts at most {}", intake.max_bytes);
                return reject(d, Reason::PayloadTooLarge, 413, Cow::Owned(detail));
            }
            Ok(_) => {}
        }
        if let Some((index, limit)) = intake.limit.and_then(|i| b.limits.get(usize::from(i)).map(|l| (i, l))) {
            let hash = self.limit_key_hash(
                |parts| limiter.key_hash_parts(index, parts),
                limit.key,
                limit.key_name.as_deref(),
                req,
                d.client_ip,
                RuleRef::None,
                None,
            );
            let outcome = limiter.check(limit, hash, now);
            if let Some(refused) = self.apply_outcome(&mut d, index, outcome) {
                return refused;
            }
        }
        d.action = Action::Respond;
        d.status = Some(204);
        d.reason = Reason::CspReport;
        d.detail = Cow::Borrowed("a CSP violation report, taken by the edge and never forwarded");
        d
    }

    /// Step 3c: the metrics endpoint. GET and HEAD (405), with the policy's API key (401).
    /// The metrics endpoint, or with `dashboard` the fleet dashboard: the same API key guards both.
    pub(crate) fn metrics_step(&self, req: &RequestFacts, limiter: &mut Limiter, now: Nanos, metrics: &MetricsEndpoint, mut d: Decision, dashboard: bool) -> Decision {
        let b = self.bundle();
        d.headers = b.observe.headers;
        d.endpoint = Some(if dashboard { Endpoint::Dashboard } else { Endpoint::Metrics });
        if !matches!(req.method, "GET" | "HEAD") {
            d.allow = Some(method::GET | method::HEAD);
            let what = if dashboard { "the dashboard answers GET and HEAD" } else { "the metrics endpoint answers GET and HEAD" };
            return reject(d, Reason::MethodNotAllowed, 405, Cow::Borrowed(what));
        }
        let checked = match b.api_keys.get(usize::from(metrics.api_key)) {
            Some(key) => self.key_gate(key, req, d.client_ip, limiter, now, &mut d.rate_limit),
            None => Err((Reason::Unauthorized, 401, "a valid API key is required".to_owned())),
        };
        if let Err((reason, status, detail)) = checked {
            return reject(d, reason, status, Cow::Owned(detail));
        }
        d.action = Action::Respond;
        d.status = Some(200);
        if dashboard {
            d.reason = Reason::Dashboard;
            d.detail = Cow::Borrowed("answered by the edge's fleet dashboard");
        } else {
            d.reason = Reason::Metrics;
            d.detail = Cow::Borrowed("answered by the edge's metrics endpoint (this isolate's counters)");
        }
        d
    }
}

// ---------------------------------------------------------------------------------------------
// CSP reports
// ---------------------------------------------------------------------------------------------

/// One CSP violation, from either format, with URLs cut to scheme, host and path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub document_uri: String,
    pub effective_directive: String,
    /// A URL, or a keyword such as `inline` or `eval`.
    pub blocked_uri: String,
    /// `enforce` or `report`.
    pub disposition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u64>,
    /// The first characters of the blocked inline script or style (at most 40).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
}

/// What one report body holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reports {
    pub violations: Vec<Violation>,
    /// Reports of other types in a `reports+json` body (deprecation, intervention…): ignored.
    pub ignored: u32,
}

/// Validate a report body. `Err` is the sentence for the 400 problem body.
pub fn parse_reports(format: ReportFormat, body: &[u8]) -> Result<Reports, &'static str> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "the report body is not JSON")?;
    let mut out = Reports::default();
    match format {
        ReportFormat::CspReport => {
            let report = value.get("csp-report").and_then(Value::as_object).ok_or("an application/csp-report body is an object with a `csp-report` object")?;
            out.violations.push(legacy_violation(report)?);
        }
        ReportFormat::ReportsJson => {
            let list = value.as_array().ok_or("an application/reports+json body is an array of reports")?;
            if list.is_empty() {
                return Err("the report list is empty");
            }
            if list.len() > MAX_REPORTS_PER_BODY {
                return Err("too many reports in one body (at most 100)");
            }
            for item in list {
                let report = item.as_object().ok_or("each report is an object")?;
                let kind = report.get("type").and_then(Value::as_str).ok_or("each report has a `type` string")?;
                let body = report.get("body").and_then(Value::as_object).ok_or("each report has a `body` object")?;
                if kind == "csp-violation" {
                    out.violations.push(reporting_violation(body, report.get("url"))?);
                } else {
                    out.ignored = out.ignored.saturating_add(1);
                }
            }
        }
    }
    Ok(out)
}

/// `report-uri` keys (CSP2): `document-uri`, `violated-directive`, `effective-directive`, …
fn legacy_violation(r: &Map<String, Value>) -> Result<Violation, &'static str> {
    let document = text(r, "document-uri")?.ok_or("the report has no `document-uri`")?;
    // `violated-directive` was the whole directive ("script-src 'self'") in old browsers.
    let directive = match text(r, "effective-directive")? {
        Some(d) => d,
        None => text(r, "violated-directive")?.and_then(|v| v.split_whitespace().next().map(str::to_owned)).ok_or("the report names no directive")?,
    };
    violation(
        document,
        directive,
        text(r, "blocked-uri")?,
        text(r, "disposition")?,
        text(r, "source-file")?,
        [number(r, "line-number"), number(r, "column-number"), number(r, "status-code")],
        text(r, "script-sample")?,
    )
}

/// Reporting API keys (CSP3): `documentURL`, `effectiveDirective`, `blockedURL`, …
fn reporting_violation(b: &Map<String, Value>, url: Option<&Value>) -> Result<Violation, &'static str> {
    let document = match text(b, "documentURL")? {
        Some(d) => d,
        None => url.and_then(Value::as_str).map(str::to_owned).ok_or("the report has no `documentURL`")?,
    };
    let directive = text(b, "effectiveDirective")?.ok_or("the report has no `effectiveDirective`")?;
    violation(
        document,
        directive,
        text(b, "blockedURL")?,
        text(b, "disposition")?,
        text(b, "sourceFile")?,
        [number(b, "lineNumber"), number(b, "columnNumber"), number(b, "statusCode")],
        text(b, "sample")?,
    )
}

fn violation(
    document: String,
    directive: String,
    blocked: Option<String>,
    disposition: Option<String>,
    source: Option<String>,
    [line, column, status_code]: [Option<u64>; 3],
    sample: Option<String>,
) -> Result<Violation, &'static str> {
    let directive = directive.trim().to_ascii_lowercase();
    if directive.is_empty() || directive.len() > 64 || !directive.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err("the directive is not a CSP directive name");
    }
    let disposition = match disposition.as_deref() {
        None | Some("enforce") => "enforce",
        Some("report") => "report",
        Some(_) => return Err("`disposition` is neither \"enforce\" nor \"report\""),
    };
    Ok(Violation {
        document_uri: strip_url(&document),
        effective_directive: directive,
        blocked_uri: blocked.map(|b| strip_url(&b)).unwrap_or_default(),
        disposition: disposition.to_owned(),
        source_file: source.map(|s| strip_url(&s)).filter(|s| !s.is_empty()),
        line,
        column,
        status_code,
        sample: sample.map(|s| s.chars().take(40).collect()).filter(|s: &String| !s.is_empty()),
    })
}

/// A string field: absent or `null` is `None`; any other non-string is malformed.
fn text(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, &'static str> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err("a report field that should be a string is not"),
    }
}

/// A number field; anything else (browsers disagree on types here) is dropped.
fn number(obj: &Map<String, Value>, key: &str) -> Option<u64> {
    obj.get(key).and_then(Value::as_u64)
}

/// A URL cut to scheme, host and path (no credentials, query or fragment), at most 512 bytes.
/// Keywords (`inline`, `eval`, `data`) pass through.
pub fn strip_url(raw: &str) -> String {
    let cut = raw.split(['?', '#']).next().unwrap_or_default();
    let cut = match cut.find("://") {
        Some(at) => {
            let (scheme, rest) = cut.split_at(at.saturating_add(3));
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}{host}{path}")
        }
        None => cut.to_owned(),
    };
    truncate(&cut, MAX_URL_BYTES).to_owned()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or_default()
}

/// Remembers recent reports so a page that violates its CSP on every load reports once per
/// window. Bounded: when full, expired keys are dropped, and if none has expired the table
/// starts over (a burst of distinct reports can then repeat once).
pub struct Dedupe {
    seen: HashMap<u64, Nanos, BuildPreHashed>,
    window: Nanos,
    hasher: foldhash::quality::FixedState,
}

impl Dedupe {
    pub fn new(window_ms: u64, seed: u64) -> Dedupe {
        Dedupe { seen: HashMap::with_hasher(BuildPreHashed), window: window_ms.saturating_mul(NANOS_PER_MS), hasher: foldhash::quality::FixedState::with_seed(seed) }
    }

    /// Whether `v` is new within the window (and remember it).
    pub fn admit(&mut self, v: &Violation, now: Nanos) -> bool {
        use core::hash::{BuildHasher, Hasher};
        if self.window == 0 {
            return true;
        }
        let mut h = self.hasher.build_hasher();
        for part in [&v.document_uri, &v.effective_directive, &v.blocked_uri] {
            h.write(part.as_bytes());
            h.write_u8(0xff);
        }
        let key = h.finish();
        if self.seen.get(&key).is_some_and(|until| *until > now) {
            return false;
        }
        if self.seen.len() >= DEDUPE_CAP {
            self.seen.retain(|_, until| *until > now);
            if self.seen.len() >= DEDUPE_CAP {
                self.seen.clear();
            }
        }
        self.seen.insert(key, now.saturating_add(self.window));
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// Small pure helpers
// ---------------------------------------------------------------------------------------------

/// Whether a uniform 32-bit `draw` falls in a share of `ppm` millionths.
pub fn sampled(draw: u32, ppm: u32) -> bool {
    ppm >= PPM || (u64::from(draw).saturating_mul(u64::from(PPM)) >> 32) < u64::from(ppm)
}

/// The client address as `observe.client_ip` allows it to be written.
pub fn client_ip_text(ip: Option<IpAddr>, detail: IpDetail) -> Option<String> {
    match detail {
        IpDetail::Omit => None,
        IpDetail::Full => ip.map(crate::engine::ip_text),
        IpDetail::Truncate => ip.map(|ip| crate::engine::ip_text(truncate_ip(ip))),
    }
}

/// IPv4 to its /24, IPv6 to its /48 (an IPv4-mapped IPv6 address as the IPv4 one).
pub fn truncate_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => truncate_ip(IpAddr::V4(v4)),
            None => {
                let [a, b, c, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0))
            }
        },
    }
}

/// A token bucket (GCRA) that caps the events one isolate sends.
#[derive(Debug, Clone)]
pub struct Budget {
    tat: Nanos,
    interval: Nanos,
    tolerance: Nanos,
}

impl Budget {
    /// `count` events per `window_secs`, all of them at once if they come together.
    pub fn new(count: u64, window_secs: u64) -> Budget {
        let count = count.max(1);
        let interval = window_secs.saturating_mul(1_000_000_000).checked_div(count).unwrap_or(1).max(1);
        Budget { tat: 0, interval, tolerance: interval.saturating_mul(count.saturating_sub(1)) }
    }

    pub fn take(&mut self, now: Nanos) -> bool {
        let tat = self.tat.max(now);
        if tat.saturating_sub(self.tolerance) > now {
            return false;
        }
        self.tat = tat.saturating_add(self.interval);
        true
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

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

fn rule_key(rule: RuleRef) -> u32 {
    match rule {
        RuleRef::None => RULE_NONE,
        RuleRef::Defaults => RULE_DEFAULTS,
        RuleRef::Route(i) => i.min(RULE_DEFAULTS.saturating_sub(1)),
    }
}

/// The rule key of a route label ([`rule_label`]'s inverse); `None` for a route this policy lacks.
fn label_rule(bundle: &Bundle, label: &str) -> Option<u32> {
    match label {
        "(none)" => Some(RULE_NONE),
        "(defaults)" => Some(RULE_DEFAULTS),
        pattern => bundle.routes.iter().position(|r| r.pattern.as_deref() == Some(pattern)).and_then(|i| u32::try_from(i).ok()),
    }
}

fn rule_label(bundle: &Bundle, key: u32) -> &str {
    match key {
        RULE_NONE => "(none)",
        RULE_DEFAULTS => "(defaults)",
        i => bundle.routes.get(i as usize).and_then(|r| r.pattern.as_deref()).unwrap_or("(unknown)"),
    }
}

/// Results a CSP report or report request can have, as counted by `edgeguard_csp_reports_total`.
const CSP_RESULTS: [&str; 8] = ["accepted", "duplicate", "ignored", "malformed", "too_large", "rate_limited", "unsupported_media_type", "method_not_allowed"];
/// PostHog batch results: sent and answered 2xx, answered otherwise, timed out, failed.
const BATCH_RESULTS: [&str; 4] = ["ok", "status", "timeout", "error"];

/// Per-isolate counters, rendered as Prometheus text.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    requests: BTreeMap<(u32, &'static str, &'static str, u16), u64>,
    edge: BTreeMap<u32, Histogram>,
    origin: BTreeMap<(u32, u16), Histogram>,
    origin_failures: BTreeMap<(u16, &'static str), u64>,
    /// Edge cache outcomes by route.
    cache: BTreeMap<(u32, &'static str), u64>,
    csp: [u64; 8],
    directives: BTreeMap<String, u64>,
    /// Events handed to the shell, dropped by the event budget, lost with a failed batch.
    events_queued: u64,
    events_dropped: u64,
    events_failed: u64,
    batches: [u64; 4],
    /// Data points written, and writes that threw.
    points: [u64; 2],
    /// Lines written by level (error, warn, info), and info lines left out by `sample`.
    lines: [u64; 3],
    sampled_out: u64,
    series_dropped: u64,
    /// The candidate policy of a shadow deployment (its short revision), when one is loaded.
    shadow: Option<String>,
    /// Requests the candidate decided, and its disagreements by (active, candidate) reason.
    shadow_decisions: u64,
    shadow_disagreements: BTreeMap<(&'static str, &'static str), u64>,
}

fn bump<K: Ord>(map: &mut BTreeMap<K, u64>, key: K, dropped: &mut u64) {
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

fn bump_slot(slots: &mut [u64], index: usize) {
    if let Some(n) = slots.get_mut(index) {
        *n = n.saturating_add(1);
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
        for (result, n) in CSP_RESULTS.iter().zip(self.csp) {
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
        for (result, n) in BATCH_RESULTS.iter().zip(self.batches) {
            p.sample("edgeguard_posthog_batches_total", &[("result", result)], n);
        }
        p.head("edgeguard_analytics_points_total", "counter", "Analytics Engine data points written, and writes that failed.");
        for (result, n) in [("ok", self.points[0]), ("error", self.points[1])] {
            p.sample("edgeguard_analytics_points_total", &[("result", result)], n);
        }
        p.head("edgeguard_log_lines_total", "counter", "Request log lines written, by level.");
        for (level, n) in ["error", "warn", "info"].iter().zip(self.lines) {
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

fn origin_name(bundle: &Bundle, origin: u16) -> &str {
    bundle.origins.get(usize::from(origin)).map_or("(unknown)", |o| o.name.as_str())
}

// ---------------------------------------------------------------------------------------------
// The observer: per-isolate state, and what one finished request produces
// ---------------------------------------------------------------------------------------------

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

/// The log line (docs/observe.md has the schema).
#[derive(Serialize)]
struct Line<'a> {
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
    lane: Option<crate::origins::Lane>,
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
    fn to_json(&self) -> String {
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
        w.opt_str("lane", self.lane.map(crate::origins::Lane::as_str));
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

/// Per-isolate observability state.
pub struct Observer {
    metrics: Metrics,
    dedupe: Dedupe,
    budget: Option<Budget>,
    /// The shell has a PostHog key (and the policy a `[observe.posthog]`).
    posthog: bool,
    /// The shell has the Analytics Engine binding (and the policy allows it).
    analytics: bool,
    started_ms: u64,
    /// The fleet statistics since the last flush (`[stats]`/`[slo]`); `None` when off.
    stats: Option<crate::stats::Recorder>,
    /// When the shell last took them, Unix ms.
    stats_taken_ms: u64,
}

impl Observer {
    /// `seed` keys the dedupe hash; `now` is the isolate's first request.
    pub fn new(bundle: &Bundle, seed: u64, now: Nanos) -> Observer {
        let o = &bundle.observe;
        Observer {
            metrics: Metrics::default(),
            dedupe: Dedupe::new(o.csp.as_ref().map_or(0, |c| c.dedupe_ms), seed),
            budget: o.posthog.as_ref().map(|p| Budget::new(p.rate_count, p.rate_window_secs)),
            posthog: false,
            analytics: false,
            started_ms: now / NANOS_PER_MS,
            stats: bundle.stats.enabled.then(crate::stats::Recorder::default),
            stats_taken_ms: now / NANOS_PER_MS,
        }
    }

    /// The statistics to flush to the fleet object (postcard bytes), when `[stats] flush` has passed
    /// since the last take and there is something to send; `None` otherwise. Starts afresh.
    pub fn take_stats(&mut self, bundle: &Bundle, now: Nanos) -> Option<Vec<u8>> {
        let now_ms = now / NANOS_PER_MS;
        let rec = self.stats.as_mut()?;
        if rec.is_empty() || now_ms.saturating_sub(self.stats_taken_ms) < bundle.stats.flush_ms {
            return None;
        }
        self.stats_taken_ms = now_ms;
        let head = crate::stats::FlushHead {
            revision: short_revision(bundle).to_owned(),
            app: bundle.app.name.clone(),
            environment: bundle.app.environment.clone(),
            bucket_ms: bundle.stats.bucket_ms,
            dashboard: bundle.stats.dashboard.clone(),
            slos: bundle.slos.clone(),
            alerts: bundle.alerts.clone(),
        };
        let flush = rec.take(head, |key| rule_label(bundle, key))?;
        postcard::to_allocvec(&flush).ok()
    }

    /// The shell has no `EDGEGUARD_STATS` binding: nothing would ever flush, so nothing is kept.
    pub fn stats_unbound(&mut self) {
        self.stats = None;
    }

    /// Put back a flush the fleet object did not take: the next flush carries it.
    pub fn restore_stats(&mut self, bundle: &Bundle, flush: &[u8]) {
        let (Some(rec), Ok(flush)) = (self.stats.as_mut(), postcard::from_bytes::<crate::stats::Flush>(flush)) else { return };
        rec.put_back(flush.rows, |label| label_rule(bundle, label));
    }

    /// What the shell can do: send to PostHog (it has the key), write data points (it has the
    /// binding). Either is still off when the policy does not ask for it.
    pub fn set_outputs(&mut self, bundle: &Bundle, posthog_key: bool, analytics_binding: bool) {
        self.posthog = posthog_key && bundle.observe.posthog.as_ref().is_some_and(|p| p.events != 0);
        self.analytics = analytics_binding && bundle.observe.analytics;
    }

    /// The isolate's first request (Unix time), reported by `edgeguard_isolate_start_time_seconds`.
    pub fn set_started(&mut self, now: Nanos) {
        self.started_ms = now / NANOS_PER_MS;
    }

    /// Whether events are built at all (the shell has a key and the policy names events).
    pub fn posthog_enabled(&self) -> bool {
        self.posthog
    }

    pub fn analytics_enabled(&self) -> bool {
        self.analytics
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A candidate policy decides next to the active one (`revision`: its short revision).
    pub fn set_shadow(&mut self, revision: &str) {
        self.metrics.shadow = Some(revision.to_owned());
    }

    /// The candidate decided a request; `disagreement` holds the (active, candidate) reasons
    /// when it would have answered differently.
    pub fn shadow_decided(&mut self, disagreement: Option<(&'static str, &'static str)>) {
        let m = &mut self.metrics;
        m.shadow_decisions = m.shadow_decisions.saturating_add(1);
        if let Some(key) = disagreement {
            bump(&mut m.shadow_disagreements, key, &mut m.series_dropped);
        }
    }

    /// Prometheus text for the metrics endpoint.
    pub fn render_metrics(&self, bundle: &Bundle, limiter_keys: usize) -> String {
        self.metrics.render(bundle, self.started_ms, limiter_keys)
    }

    /// The shell read a CSP report's body: `None` when it was longer than the intake's
    /// `max_bytes` (a body without `Content-Length`). Turns the 204 into a 413 or 400, or
    /// keeps the new violations for [`Observer::finish`].
    pub fn csp_body(&mut self, bundle: &Bundle, flight: &mut Flight, body: Option<&[u8]>, now: Nanos) {
        let d = &mut flight.decision;
        let Some(Endpoint::CspReport(Some(format))) = d.endpoint else { return };
        if d.action != Action::Respond {
            return;
        }
        let max = bundle.observe.csp.as_ref().map_or(DEFAULT_MAX_REPORT_BYTES, |c| c.max_bytes) as usize;
        let Some(body) = body.filter(|b| b.len() <= max) else {
            d.refuse(Reason::PayloadTooLarge, 413, Cow::Owned(format!("the report is over {max} bytes")));
            return;
        };
        match parse_reports(format, body) {
            Err(why) => d.refuse(Reason::BadRequest, 400, Cow::Borrowed(why)),
            Ok(reports) => {
                flight.ignored = reports.ignored;
                for v in reports.violations {
                    if self.dedupe.admit(&v, now) {
                        flight.violations.push(v);
                    } else {
                        flight.duplicates = flight.duplicates.saturating_add(1);
                    }
                }
            }
        }
    }

    /// A PostHog batch of `events` events came back (`"ok"`, `"status"`, `"timeout"`, `"error"`).
    pub fn posthog_result(&mut self, events: u32, result: &str) {
        let index = BATCH_RESULTS.iter().position(|r| *r == result).unwrap_or(3);
        bump_slot(&mut self.metrics.batches, index);
        if index != 0 {
            self.metrics.events_failed = self.metrics.events_failed.saturating_add(u64::from(events));
        }
    }

    /// A `writeDataPoint` call returned (`true`) or threw.
    pub fn analytics_result(&mut self, ok: bool) {
        bump_slot(&mut self.metrics.points, usize::from(!ok));
    }

    /// Count a finished request and build what the policy asks the shell to do with it.
    pub fn finish(&mut self, engine: &Engine, flight: &Flight, seen: &Observed, draws: Draws, now: Nanos) -> Finished {
        let bundle = engine.bundle();
        let o = &bundle.observe;
        let d = &flight.decision;
        let facts = Facts::new(engine, flight, seen);
        self.count(flight, seen, &facts);
        if self.stats.is_some() {
            self.record_stats(bundle, flight, seen, &facts, now);
        }

        let mut out = Finished::default();
        let level = facts.level;
        if level <= o.log && o.log != LogLevel::Off {
            if level < LogLevel::Info || sampled(draws.log, o.sample_ppm) {
                bump_slot(&mut self.metrics.lines, (level as usize).saturating_sub(1));
                out.log = Some(facts.line(flight, seen).to_json());
            } else {
                self.metrics.sampled_out = self.metrics.sampled_out.saturating_add(1);
            }
        }
        if self.posthog
            && let Some(ph) = &o.posthog
        {
            let mut wanted: Vec<Value> = Vec::new();
            if ph.events & event::REFUSAL != 0 && d.action == Action::Reject {
                wanted.push(facts.event(bundle, flight, "edgeguard_refusal", refusal_props(d, &facts)));
            }
            if ph.events & event::CSP_VIOLATION != 0 {
                for v in &flight.violations {
                    let props = serde_json::to_value(v).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default();
                    wanted.push(facts.event(bundle, flight, "edgeguard_csp_violation", props));
                }
            }
            if ph.events & event::ORIGIN_FAILURE != 0
                && let Some(props) = origin_failure_props(&facts, seen)
            {
                wanted.push(facts.event(bundle, flight, "edgeguard_origin_failure", props));
            }
            if ph.events & event::PAGEVIEW != 0
                && d.action == Action::Forward
                && flight.method == "GET"
                && (200..300).contains(&seen.status)
                && seen.html
                && sampled(draws.pageview, ph.pageview_ppm)
            {
                let scheme = if d.https { "https" } else { "http" };
                let mut props = Map::new();
                props.insert("$current_url".into(), json!(format!("{scheme}://{}{}", d.host, facts.path)));
                props.insert("$host".into(), json!(d.host));
                props.insert("$pathname".into(), json!(facts.path));
                wanted.push(facts.event(bundle, flight, "$pageview", props));
            }
            for e in wanted {
                if self.budget.as_mut().is_none_or(|b| b.take(now)) {
                    self.metrics.events_queued = self.metrics.events_queued.saturating_add(1);
                    out.events.push(e);
                } else {
                    self.metrics.events_dropped = self.metrics.events_dropped.saturating_add(1);
                }
            }
        }
        if self.analytics {
            out.point = Some(facts.point(bundle, flight, seen));
        }
        out
    }

    /// One request into the fleet statistics' aggregate (one map entry and two histogram
    /// buckets: no allocation once its route's row exists).
    fn record_stats(&mut self, bundle: &Bundle, flight: &Flight, seen: &Observed, facts: &Facts, now: Nanos) {
        let Some(rec) = self.stats.as_mut() else { return };
        let d = &flight.decision;
        let failed_first = match (d.origin, seen.failover) {
            (Some(first), Some(_)) => Some(origin_name(bundle, first)),
            _ => None,
        };
        let failed_last = match (facts.origin_name, seen.origin_error) {
            (Some(name), Some(_)) => Some(name),
            (Some(name), None) if d.action == Action::Forward && seen.status >= 500 => Some(name),
            _ => None,
        };
        let sample = crate::stats::Sample {
            status: seen.status,
            reason: facts.reason,
            refused: d.action == Action::Reject,
            limited: if seen.status == 429 { facts.limit.map(|(name, _)| name) } else { None },
            origin_failures: [failed_first, failed_last],
            failover: seen.failover.is_some(),
            cache: seen.cache,
            edge_ms: seen.edge_ms,
            origin_ms: seen.origin_ms,
        };
        let now_ms = now / NANOS_PER_MS;
        let route = rule_key(d.rule);
        rec.record(bundle.stats.bucket_ms, now_ms, route, &sample);
        if !flight.violations.is_empty() {
            rec.record_csp(bundle.stats.bucket_ms, now_ms, route, flight.violations.iter().map(|v| v.effective_directive.as_str()));
        }
    }

    fn count(&mut self, flight: &Flight, seen: &Observed, facts: &Facts) {
        let m = &mut self.metrics;
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
            let result = match d.reason {
                Reason::CspReport => None,
                Reason::MethodNotAllowed => Some(7),
                Reason::UnsupportedMediaType => Some(6),
                Reason::RateLimited => Some(5),
                Reason::PayloadTooLarge => Some(4),
                _ => Some(3),
            };
            match result {
                Some(i) => bump_slot(&mut m.csp, i),
                None => {
                    for (slot, n) in [(0, flight.violations.len() as u64), (1, u64::from(flight.duplicates)), (2, u64::from(flight.ignored))] {
                        if let Some(c) = m.csp.get_mut(slot) {
                            *c = c.saturating_add(n);
                        }
                    }
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

/// What one finished request is, computed once for the line, the events and the point.
struct Facts<'a> {
    level: LogLevel,
    revision: &'a str,
    action: &'static str,
    reason: &'static str,
    path: &'a str,
    route: Option<&'a str>,
    /// The origin that answered (or failed last).
    origin: Option<u16>,
    origin_name: Option<&'a str>,
    client_ip: Option<String>,
    limit: Option<(&'a str, u64)>,
    failover: Option<String>,
}

impl<'a> Facts<'a> {
    fn new(engine: &'a Engine, flight: &'a Flight, seen: &Observed) -> Facts<'a> {
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

    fn line(&self, flight: &'a Flight, seen: &Observed) -> Line<'a> {
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

    /// One PostHog event: anonymous (`$process_person_profile: false`), keyed by request id.
    fn event(&self, bundle: &Bundle, flight: &Flight, name: &str, mut props: Map<String, Value>) -> Value {
        let d = &flight.decision;
        props.insert("$process_person_profile".into(), json!(false));
        props.insert("$lib".into(), json!("edgeguard"));
        match &self.client_ip {
            Some(ip) => {
                props.insert("$ip".into(), json!(ip));
            }
            None => {
                props.insert("$geoip_disable".into(), json!(true));
            }
        }
        props.insert("request_id".into(), json!(d.request_id));
        props.insert("app".into(), json!(bundle.app.name));
        props.insert("environment".into(), json!(bundle.app.environment));
        props.insert("revision".into(), json!(short_revision(bundle)));
        props.insert("method".into(), json!(flight.method));
        props.insert("host".into(), json!(d.host));
        props.insert("path".into(), json!(self.path));
        props.insert("route".into(), json!(self.route));
        json!({
            "event": name,
            "distinct_id": d.request_id,
            "timestamp": rfc3339_millis(flight.arrived / NANOS_PER_MS),
            "properties": props,
        })
    }

    fn point(&self, bundle: &Bundle, flight: &Flight, seen: &Observed) -> DataPoint {
        let d = &flight.decision;
        let route = self.route.unwrap_or(if d.rule == RuleRef::Defaults { "(defaults)" } else { "(none)" });
        DataPoint {
            indexes: vec![truncate(route, 96).to_owned()],
            blobs: vec![
                route.to_owned(),
                self.action.to_owned(),
                self.reason.to_owned(),
                flight.method.clone(),
                d.host.clone(),
                self.path.to_owned(),
                self.origin_name.unwrap_or_default().to_owned(),
                d.lane.filter(|_| d.action == Action::Forward).map(crate::origins::Lane::as_str).unwrap_or_default().to_owned(),
                self.limit.map(|(name, _)| name).unwrap_or_default().to_owned(),
                self.client_ip.clone().unwrap_or_default(),
                d.shadowed.map(Reason::code).unwrap_or_default().to_owned(),
                bundle.app.name.clone(),
                bundle.app.environment.clone(),
            ],
            doubles: vec![
                i64::from(seen.status),
                i64::try_from(seen.edge_ms).unwrap_or(i64::MAX),
                seen.origin_ms.map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX)),
                self.limit.map_or(-1, |(_, r)| i64::try_from(r).unwrap_or(i64::MAX)),
            ],
        }
    }
}

fn refusal_props(d: &Decision, facts: &Facts) -> Map<String, Value> {
    let mut props = Map::new();
    props.insert("reason".into(), json!(facts.reason));
    props.insert("status".into(), json!(d.status));
    props.insert("detail".into(), json!(d.detail));
    if let Some((name, remaining)) = facts.limit {
        props.insert("limit".into(), json!(name));
        props.insert("remaining".into(), json!(remaining));
    }
    props
}

/// The `edgeguard_origin_failure` event's own properties, when an origin failed.
fn origin_failure_props(facts: &Facts, seen: &Observed) -> Option<Map<String, Value>> {
    let cause = match seen.origin_error {
        Some(OriginFailure::Timeout) => "timeout",
        Some(OriginFailure::Unreachable) => "unreachable",
        None if facts.action == "forward" && seen.status >= 500 => "status",
        None if seen.failover.is_some() => "failover",
        None => return None,
    };
    let mut props = Map::new();
    props.insert("cause".into(), json!(cause));
    props.insert("status".into(), json!(seen.status));
    props.insert("origin".into(), json!(facts.origin_name));
    props.insert("origin_ms".into(), json!(seen.origin_ms));
    if let Some(f) = &facts.failover {
        props.insert("failover".into(), json!(f));
    }
    Some(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(ReportFormat::from_content_type("application/csp-report"), Some(ReportFormat::CspReport));
        assert_eq!(ReportFormat::from_content_type("Application/Reports+JSON; charset=utf-8"), Some(ReportFormat::ReportsJson));
        assert_eq!(ReportFormat::from_content_type("application/json"), None);
        assert_eq!(ReportFormat::from_content_type(""), None);
    }

    #[test]
    fn legacy_report() {
        let body = br#"{"csp-report":{"document-uri":"https://a.example/page?token=secret#x","referrer":"","violated-directive":"script-src-elem","effective-directive":"script-src-elem","original-policy":"default-src 'self'","disposition":"enforce","blocked-uri":"https://user:pw@evil.example/x.js?q=1","line-number":12,"column-number":"3","status-code":200,"script-sample":""}}"#;
        let r = parse_reports(ReportFormat::CspReport, body).unwrap();
        assert_eq!(r.violations.len(), 1);
        let v = &r.violations[0];
        assert_eq!(v.document_uri, "https://a.example/page");
        assert_eq!(v.blocked_uri, "https://evil.example/x.js");
        assert_eq!(v.effective_directive, "script-src-elem");
        assert_eq!((v.line, v.column, v.status_code), (Some(12), None, Some(200)));
        assert_eq!(v.sample, None);
        assert_eq!(v.disposition, "enforce");
        // Old browsers: only violated-directive, with its sources.
        let old = br#"{"csp-report":{"document-uri":"https://a.example/","violated-directive":"style-src 'self'","blocked-uri":"inline"}}"#;
        let v = &parse_reports(ReportFormat::CspReport, old).unwrap().violations[0];
        assert_eq!((v.effective_directive.as_str(), v.blocked_uri.as_str()), ("style-src", "inline"));
    }

    #[test]
    fn reporting_api_batch() {
        let body = br#"[
          {"type":"csp-violation","age":1,"url":"https://a.example/p","user_agent":"x","body":{"documentURL":"https://a.example/p?x=1","blockedURL":"eval","effectiveDirective":"script-src","originalPolicy":"x","disposition":"report","sample":"alert(1)","lineNumber":4}},
          {"type":"deprecation","url":"https://a.example/p","body":{"id":"x"}},
          {"type":"csp-violation","url":"https://a.example/q","body":{"effectiveDirective":"img-src","blockedURL":"http://img.example/a.png"}}
        ]"#;
        let r = parse_reports(ReportFormat::ReportsJson, body).unwrap();
        assert_eq!(r.ignored, 1);
        assert_eq!(r.violations.len(), 2);
        assert_eq!(r.violations[0].document_uri, "https://a.example/p");
        assert_eq!(r.violations[0].disposition, "report");
        assert_eq!(r.violations[0].sample.as_deref(), Some("alert(1)"));
        assert_eq!(r.violations[1].document_uri, "https://a.example/q", "the report's url stands in for documentURL");
    }

    #[test]
    fn malformed_reports_are_refused() {
        let cases: [(ReportFormat, &[u8]); 12] = [
            (ReportFormat::CspReport, b"not json"),
            (ReportFormat::CspReport, b"[]"),
            (ReportFormat::CspReport, br#"{"csp-report":"x"}"#),
            (ReportFormat::CspReport, br#"{"csp-report":{"effective-directive":"script-src"}}"#),
            (ReportFormat::CspReport, br#"{"csp-report":{"document-uri":"https://a/"}}"#),
            (ReportFormat::CspReport, br#"{"csp-report":{"document-uri":5,"effective-directive":"script-src"}}"#),
            (ReportFormat::CspReport, br#"{"csp-report":{"document-uri":"https://a/","effective-directive":"<script>"}}"#),
            (ReportFormat::CspReport, br#"{"csp-report":{"document-uri":"https://a/","effective-directive":"img-src","disposition":"maybe"}}"#),
            (ReportFormat::ReportsJson, br#"{"type":"csp-violation"}"#),
            (ReportFormat::ReportsJson, b"[]"),
            (ReportFormat::ReportsJson, br#"[{"type":"csp-violation"}]"#),
            (ReportFormat::ReportsJson, br#"[{"type":"csp-violation","body":{"documentURL":"https://a/"}}]"#),
        ];
        for (format, body) in cases {
            assert!(parse_reports(format, body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let many = format!("[{}]", vec![r#"{"type":"x","body":{}}"#; 101].join(","));
        assert!(parse_reports(ReportFormat::ReportsJson, many.as_bytes()).is_err());
    }

    #[test]
    fn urls_are_cut() {
        assert_eq!(strip_url("https://a.example:8443/p/q?x=1#f"), "https://a.example:8443/p/q");
        assert_eq!(strip_url("https://u:p@a.example"), "https://a.example");
        assert_eq!(strip_url("inline"), "inline");
        assert_eq!(strip_url(&format!("https://ab/{}", "é".repeat(400))).len(), 511, "cut on a character boundary");
    }

    #[test]
    fn dedupe_window_and_cap() {
        let v = |doc: &str| Violation {
            document_uri: doc.into(),
            effective_directive: "script-src".into(),
            blocked_uri: "inline".into(),
            disposition: "enforce".into(),
            source_file: None,
            line: None,
            column: None,
            status_code: None,
            sample: None,
        };
        let mut d = Dedupe::new(60_000, 1);
        let s = 1_000_000_000u64;
        assert!(d.admit(&v("https://a/"), 0));
        assert!(!d.admit(&v("https://a/"), 30 * s));
        assert!(d.admit(&v("https://a/other"), 30 * s));
        assert!(d.admit(&v("https://a/"), 61 * s), "the window has passed");
        for i in 0..10_000 {
            d.admit(&v(&format!("https://a/{i}")), 100 * s);
            assert!(d.len() <= DEDUPE_CAP);
        }
        let mut off = Dedupe::new(0, 1);
        assert!(off.admit(&v("x"), 0) && off.admit(&v("x"), 0));
    }

    #[test]
    fn ip_truncation() {
        let t = |s: &str, m| client_ip_text(s.parse().ok(), m);
        assert_eq!(t("198.51.100.23", IpDetail::Truncate).as_deref(), Some("198.51.100.0"));
        assert_eq!(t("2001:db8:abcd:12::1", IpDetail::Truncate).as_deref(), Some("2001:db8:abcd::"));
        assert_eq!(t("::ffff:198.51.100.23", IpDetail::Truncate).as_deref(), Some("198.51.100.0"));
        assert_eq!(t("198.51.100.23", IpDetail::Full).as_deref(), Some("198.51.100.23"));
        assert_eq!(t("198.51.100.23", IpDetail::Omit), None);
        assert_eq!(client_ip_text(None, IpDetail::Full), None);
    }

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
            use crate::origins::Lane;
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

        /// Addresses read as `Display` writes them, IPv4 and IPv6.
        #[test]
        fn ip_text_is_display(v4 in proptest::prelude::any::<[u8; 4]>(), v6 in proptest::prelude::any::<[u16; 8]>()) {
            let a = IpAddr::V4(Ipv4Addr::from(v4));
            let b = IpAddr::V6(Ipv6Addr::from(v6));
            proptest::prop_assert_eq!(crate::engine::ip_text(a), a.to_string());
            proptest::prop_assert_eq!(crate::engine::ip_text(b), b.to_string());
        }
    }

    #[test]
    fn sampling_shares() {
        assert!(!sampled(0, 0) && !sampled(u32::MAX, 0));
        assert!(sampled(0, PPM) && sampled(u32::MAX, PPM));
        let hits = (0..10_000u32).filter(|i| sampled(i.wrapping_mul(429_497), 250_000)).count();
        assert!((2_400..=2_600).contains(&hits), "{hits}");
    }

    #[test]
    fn budget_caps_events() {
        let mut b = Budget::new(3, 60);
        assert!(b.take(0) && b.take(0) && b.take(0));
        assert!(!b.take(0));
        assert!(b.take(20_000_000_000), "one more every 20 s");
        assert!(!b.take(20_000_000_000));
    }

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
}
