//! Fleet-wide statistics: what every isolate's requests did, merged exactly in one place.
//!
//! Each isolate records its requests into per-bucket, per-route aggregates ([`Recorder`]):
//! counts by status class and reason, refusals, 429s by limit, origin failures, failovers,
//! cache outcomes, CSP violations by directive, and two latency histograms (edge time, origin
//! time). The worker's shell takes the aggregate ([`Recorder::take`]) at most every
//! `[stats] flush` and hands it, in `waitUntil`, to one Durable Object, whose [`Fleet`] merges
//! it: counts add, histograms merge bucket by bucket, so the fleet's numbers are exactly the
//! sum of its isolates'. The object keeps per-minute rows for 7 days and per-hour rows for 90
//! in its storage, cumulative totals for Prometheus counters, and evaluates the SLO alerts
//! ([`crate::slo`]) on an alarm.
//!
//! **The histogram.** Integer milliseconds; below 64 ms every value has a bucket of its own,
//! above it each power of two is split in 32 ([`bucket`]), like HdrHistogram with 5 significant
//! bits. A percentile is reported as its bucket's midpoint, so it is within
//! [`RELATIVE_ERROR`] (1/64, about 1.6 %) of the true value, or exact below 64 ms. The buckets
//! are the same everywhere, so merging two histograms loses nothing.
//!
//! A "minute" is `[stats] minute` long (60 s unless a test makes time run faster); every window
//! (retention, alert windows, the dashboard's hour) is counted in those buckets.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::prometheus::Prom;
use crate::slo::{Alerts, BURN_RULES, LatencyOf, Slo, severity, severity_name, window_label};

/// Relative error of a reported percentile at or above 64 ms (exact below).
pub const RELATIVE_ERROR: f64 = 1.0 / 64.0;
/// Per-minute rows kept: 7 days.
pub const MINUTES_KEPT: u64 = 7 * 24 * 60;
/// Per-hour rows kept: 90 days.
pub const HOURS_KEPT: u64 = 90 * 24;
/// Most routes one bucket holds (a policy has a few dozen); beyond it requests count under
/// `(other)`.
const MAX_ROUTES: usize = 256;
/// Most rows an isolate holds while its flushes fail (256 routes for 16 buckets); beyond it the
/// oldest buckets are dropped and counted in [`Recorder::overflow`].
const MAX_ROWS: usize = 4096;
/// Most keys one of an aggregate's maps holds (reasons, limits, origins…); beyond it `other`.
const MAX_KEYS: usize = 64;

/// `[stats]`, compiled. `enabled` is off unless the policy has `[stats]` or an `[slo]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsSettings {
    pub enabled: bool,
    /// Length of a bucket ("minute"), in milliseconds.
    pub bucket_ms: u64,
    /// Least time between two flushes of one isolate, in milliseconds.
    pub flush_ms: u64,
    /// The dashboard's path, protected by the metrics endpoint's API key.
    pub dashboard: Option<String>,
}

impl Default for StatsSettings {
    fn default() -> StatsSettings {
        StatsSettings { enabled: false, bucket_ms: 60_000, flush_ms: 5_000, dashboard: None }
    }
}

// ---------------------------------------------------------------------------------------------
// The histogram
// ---------------------------------------------------------------------------------------------

/// The bucket of `ms`: exact below 64, then 32 buckets per power of two.
pub fn bucket(ms: u64) -> u16 {
    if ms < 64 {
        return ms as u16;
    }
    let e = 63u32.saturating_sub(ms.leading_zeros()); // ≥ 6
    let shift = e.saturating_sub(5);
    let m = (ms >> shift) & 31; // the 5 bits under the leading one
    let index = 64u64.saturating_add(u64::from(e.saturating_sub(6)).saturating_mul(32)).saturating_add(m);
    u16::try_from(index).unwrap_or(u16::MAX)
}

/// The smallest and largest value of bucket `index`.
pub fn bounds(index: u16) -> (u64, u64) {
    let i = u64::from(index);
    if i < 64 {
        return (i, i);
    }
    let k = i.saturating_sub(64);
    let e = 6u64.saturating_add(k / 32);
    let m = 32u64.saturating_add(k % 32);
    let shift = e.saturating_sub(5);
    let lo = m.checked_shl(shift as u32).unwrap_or(u64::MAX);
    let hi = m.saturating_add(1).checked_shl(shift as u32).unwrap_or(u64::MAX).saturating_sub(1);
    (lo, hi)
}

/// A latency histogram in milliseconds: sparse counts by [`bucket`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hist {
    pub counts: BTreeMap<u16, u64>,
}

impl Hist {
    pub fn record(&mut self, ms: u64) {
        let n = self.counts.entry(bucket(ms)).or_insert(0);
        *n = n.saturating_add(1);
    }

    pub fn merge(&mut self, other: &Hist) {
        for (b, n) in &other.counts {
            let c = self.counts.entry(*b).or_insert(0);
            *c = c.saturating_add(*n);
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.values().fold(0u64, |a, n| a.saturating_add(*n))
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The `q` quantile (0–1) as its bucket's midpoint; `None` when empty. The rank is
    /// `ceil(q × count)`, the nearest-rank definition.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (b, n) in &self.counts {
            seen = seen.saturating_add(*n);
            if seen >= rank {
                let (lo, hi) = bounds(*b);
                return Some((lo as f64 + hi as f64) / 2.0);
            }
        }
        None
    }

    /// Values above `threshold_ms`: the buckets that start above it (a bucket straddling the
    /// threshold counts as at or under it, within the histogram's error).
    pub fn count_above(&self, threshold_ms: u64) -> u64 {
        self.counts.iter().filter(|(b, _)| bounds(**b).0 > threshold_ms).fold(0u64, |a, (_, n)| a.saturating_add(*n))
    }

    /// Values at or under `le_ms` (by bucket start): a Prometheus `le` bucket.
    fn count_le(&self, le_ms: u64) -> u64 {
        self.counts.iter().filter(|(b, _)| bounds(**b).0 <= le_ms).fold(0u64, |a, (_, n)| a.saturating_add(*n))
    }

    /// Sum of the values, by bucket midpoint, in milliseconds.
    fn sum_ms(&self) -> f64 {
        self.counts.iter().map(|(b, n)| {
            let (lo, hi) = bounds(*b);
            (lo as f64 + hi as f64) / 2.0 * *n as f64
        }).sum()
    }
}

// ---------------------------------------------------------------------------------------------
// One bucket of one route
// ---------------------------------------------------------------------------------------------

/// What one route's requests did in one bucket, in one isolate or merged over the fleet.
/// Flushes and the object's storage carry it as postcard, like the bundle: compact, and far
/// less code in the wasm than JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    /// Requests answered.
    pub n: u64,
    /// By status class: index 1–5 for 1xx–5xx, 0 for anything else.
    pub class: [u64; 6],
    pub reasons: BTreeMap<String, u64>,
    /// Requests the edge refused (its own 4xx/5xx answers, 429s included).
    pub refused: u64,
    /// 429s by the limit that refused.
    pub limited: BTreeMap<String, u64>,
    /// Failed origin attempts by origin (a failed-over first attempt included).
    pub origin_failures: BTreeMap<String, u64>,
    pub failovers: u64,
    pub cache: BTreeMap<String, u64>,
    /// Accepted CSP violations by effective directive.
    pub csp: BTreeMap<String, u64>,
    pub edge: Hist,
    pub origin: Hist,
}

fn add(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    if let Some(c) = map.get_mut(key) {
        *c = c.saturating_add(n);
    } else if map.len() < MAX_KEYS {
        map.insert(key.to_owned(), n);
    } else {
        let c = map.entry("other".to_owned()).or_insert(0);
        *c = c.saturating_add(n);
    }
}

fn add_all(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, n) in from {
        add(into, k, *n);
    }
}

impl Agg {
    pub fn merge(&mut self, o: &Agg) {
        self.n = self.n.saturating_add(o.n);
        for (a, b) in self.class.iter_mut().zip(o.class) {
            *a = a.saturating_add(b);
        }
        add_all(&mut self.reasons, &o.reasons);
        self.refused = self.refused.saturating_add(o.refused);
        add_all(&mut self.limited, &o.limited);
        add_all(&mut self.origin_failures, &o.origin_failures);
        self.failovers = self.failovers.saturating_add(o.failovers);
        add_all(&mut self.cache, &o.cache);
        add_all(&mut self.csp, &o.csp);
        self.edge.merge(&o.edge);
        self.origin.merge(&o.origin);
    }

    pub fn server_errors(&self) -> u64 {
        self.class.get(5).copied().unwrap_or(0)
    }
}

/// What one finished request contributes ([`Recorder::record`]).
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub status: u16,
    pub reason: &'a str,
    pub refused: bool,
    /// The limit that answered 429.
    pub limited: Option<&'a str>,
    /// Origins whose attempt failed (the first of a failover, the one that answered 5xx or not at all).
    pub origin_failures: [Option<&'a str>; 2],
    pub failover: bool,
    pub cache: Option<&'a str>,
    pub edge_ms: u64,
    pub origin_ms: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// The isolate's side
// ---------------------------------------------------------------------------------------------

/// The isolate's aggregate since its last flush, by (bucket start in ms, route key).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    rows: BTreeMap<(u64, u32), Agg>,
    /// Requests that found the route cap reached (counted in the `(other)` row).
    pub overflow: u64,
}

/// Route key of the rows that found [`MAX_ROUTES`] reached.
const ROUTE_OTHER: u32 = u32::MAX - 2;

impl Recorder {
    /// Count one request decided by rule `route` (see `observe::rule_key`) at `now_ms`.
    pub fn record(&mut self, bucket_ms: u64, now_ms: u64, route: u32, s: &Sample) {
        let t = floor(now_ms, bucket_ms);
        let mut key = (t, route);
        if !self.rows.contains_key(&key) && self.rows.len() >= MAX_ROUTES {
            self.overflow = self.overflow.saturating_add(1);
            key = (t, ROUTE_OTHER);
        }
        let a = self.rows.entry(key).or_default();
        a.n = a.n.saturating_add(1);
        let class = usize::from(s.status / 100).min(6) % 6;
        if let Some(c) = a.class.get_mut(class) {
            *c = c.saturating_add(1);
        }
        add(&mut a.reasons, s.reason, 1);
        if s.refused {
            a.refused = a.refused.saturating_add(1);
        }
        if let Some(l) = s.limited {
            add(&mut a.limited, l, 1);
        }
        for o in s.origin_failures.iter().flatten() {
            add(&mut a.origin_failures, o, 1);
        }
        if s.failover {
            a.failovers = a.failovers.saturating_add(1);
        }
        if let Some(c) = s.cache {
            add(&mut a.cache, c, 1);
        }
        a.edge.record(s.edge_ms);
        if let Some(ms) = s.origin_ms {
            a.origin.record(ms);
        }
    }

    /// Count accepted CSP violations (by directive) at `now_ms`, on the row of `route`.
    pub fn record_csp<'a>(&mut self, bucket_ms: u64, now_ms: u64, route: u32, directives: impl Iterator<Item = &'a str>) {
        let t = floor(now_ms, bucket_ms);
        if let Some(a) = self.rows.get_mut(&(t, route)) {
            for d in directives {
                add(&mut a.csp, d, 1);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Merge back rows a flush could not deliver (`key` maps a label back to its route key;
    /// a label it does not know counts under `(other)`).
    pub fn put_back(&mut self, rows: Vec<Row>, key: impl Fn(&str) -> Option<u32>) {
        for row in rows {
            let route = key(&row.route).unwrap_or(ROUTE_OTHER);
            self.rows.entry((row.t, route)).or_default().merge(&row.a);
        }
        while self.rows.len() > MAX_ROWS {
            let Some((_, dropped)) = self.rows.pop_first() else { break };
            self.overflow = self.overflow.saturating_add(dropped.n);
        }
    }

    /// The aggregate as a flush for the fleet object, and a fresh start; `None` when there is
    /// nothing to send. `label` names a route key.
    pub fn take<'b>(&mut self, head: FlushHead, label: impl Fn(u32) -> &'b str) -> Option<Flush> {
        if self.rows.is_empty() {
            return None;
        }
        let rows = core::mem::take(&mut self.rows)
            .into_iter()
            .map(|((t, route), a)| Row { t, route: if route == ROUTE_OTHER { "(other)".to_owned() } else { label(route).to_owned() }, a })
            .collect();
        Some(Flush { head, rows })
    }
}

fn floor(now_ms: u64, bucket_ms: u64) -> u64 {
    let b = bucket_ms.max(1);
    now_ms.checked_div(b).unwrap_or(0).saturating_mul(b)
}

/// What a flush says about the policy that produced it: the fleet object keeps the newest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlushHead {
    /// The bundle's revision, 12 hex digits.
    pub revision: String,
    pub app: String,
    pub environment: String,
    pub bucket_ms: u64,
    pub dashboard: Option<String>,
    pub slos: Vec<Slo>,
    pub alerts: Alerts,
}

/// One isolate's aggregate since its last flush.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flush {
    pub head: FlushHead,
    pub rows: Vec<Row>,
}

impl Flush {
    /// A flush as [`crate::observe::Observer::take_stats`] encoded it; `None` for other bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Flush> {
        postcard::from_bytes(bytes).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Bucket start, Unix ms.
    pub t: u64,
    /// The route pattern, `(defaults)`, `(none)` or `(other)`.
    pub route: String,
    pub a: Agg,
}

// ---------------------------------------------------------------------------------------------
// The fleet's side
// ---------------------------------------------------------------------------------------------

/// An alert's state, kept so that a restart neither pages again nor forgets a firing alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub firing: bool,
    /// When it last changed, Unix ms.
    pub since: u64,
    pub burn_long: f64,
    pub burn_short: f64,
}

/// One alert that fired or resolved: what the notifications say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// Unique per transition: the receiver's deduplication key.
    pub id: String,
    pub status: &'static str,
    pub slo: String,
    pub objective: &'static str,
    pub severity: &'static str,
    pub target: f64,
    pub burn_rate_long: f64,
    pub burn_rate_short: f64,
    pub long_window: String,
    pub short_window: String,
    pub factor: f64,
    pub app: String,
    pub environment: String,
    pub revision: String,
    pub at: String,
    pub summary: String,
}

/// Cumulative SLO events since the object started counting: good + bad, bad.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SloTotals {
    pub all: u64,
    pub bad: u64,
}

/// The fleet statistics object's state (one Durable Object, `EdgeguardStats`).
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub head: Option<FlushHead>,
    /// Per-bucket rows, by bucket start, then route.
    pub minutes: BTreeMap<u64, BTreeMap<String, Agg>>,
    /// Per-hour (60 buckets) rows.
    pub hours: BTreeMap<u64, BTreeMap<String, Agg>>,
    /// Everything since the object's storage was created: the Prometheus counters.
    pub totals: BTreeMap<String, Agg>,
    pub slo_totals: BTreeMap<String, SloTotals>,
    /// Policy revisions and when each first answered (bucket start).
    pub revisions: BTreeMap<String, u64>,
    pub alerts: BTreeMap<String, AlertState>,
    /// Notifications by `destination:result`.
    pub notifications: BTreeMap<String, u64>,
    pub flushes: u64,
    dirty: BTreeSet<String>,
}

const KEY_META: &str = "meta";

#[derive(Serialize, Deserialize, Default)]
struct Meta {
    head: Option<FlushHead>,
    totals: BTreeMap<String, Agg>,
    slo_totals: BTreeMap<String, SloTotals>,
    revisions: BTreeMap<String, u64>,
    alerts: BTreeMap<String, AlertState>,
    notifications: BTreeMap<String, u64>,
    flushes: u64,
}

/// The key of an SLO objective's series: `<slo>/<objective>`.
fn objective_key(slo: &str, objective: &str) -> String {
    format!("{slo}/{objective}")
}

/// (good + bad, bad) of one objective in one aggregate.
fn slo_events(slo: &Slo, objective: &str, a: &Agg) -> (u64, u64) {
    match (objective, &slo.latency) {
        ("latency", Some(l)) => {
            let h = match l.of {
                LatencyOf::Origin => &a.origin,
                LatencyOf::Edge => &a.edge,
            };
            (h.count(), h.count_above(l.threshold_ms))
        }
        _ => (a.n, a.server_errors()),
    }
}

/// The objectives an SLO has, with their target ratio.
pub fn objectives(slo: &Slo) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    if let Some(ppm) = slo.availability_ppm {
        out.push(("availability", f64::from(ppm) / 1e6));
    }
    if let Some(l) = &slo.latency {
        out.push(("latency", f64::from(l.percentile_ppm) / 1e6));
    }
    out
}

impl Fleet {
    pub fn new() -> Fleet {
        Fleet::default()
    }

    fn bucket_ms(&self) -> u64 {
        self.head.as_ref().map_or(60_000, |h| h.bucket_ms.max(1))
    }

    fn hour_ms(&self) -> u64 {
        self.bucket_ms().saturating_mul(60)
    }

    /// Merge one isolate's flush (JSON). Exact: counts add, histograms merge.
    pub fn merge(&mut self, flush: Flush) {
        self.flushes = self.flushes.saturating_add(1);
        let first_t = flush.rows.iter().map(|r| r.t).min().unwrap_or(0);
        if !self.revisions.contains_key(&flush.head.revision) {
            self.revisions.insert(flush.head.revision.clone(), first_t);
        }
        // The newest policy (by when its revision first answered) defines SLOs and alerts.
        let newest = self.head.as_ref().is_none_or(|h| {
            h.revision == flush.head.revision || self.revisions.get(&h.revision).copied().unwrap_or(0) <= first_t
        });
        if newest {
            self.head = Some(flush.head.clone());
        }
        let hour_ms = self.hour_ms();
        let slos = self.head.as_ref().map(|h| h.slos.clone()).unwrap_or_default();
        for row in &flush.rows {
            let minute = self.minutes.entry(row.t).or_default();
            merge_route(minute, &row.route, &row.a);
            self.dirty.insert(format!("m:{}", row.t));
            let h = floor(row.t, hour_ms);
            merge_route(self.hours.entry(h).or_default(), &row.route, &row.a);
            self.dirty.insert(format!("h:{h}"));
            merge_route(&mut self.totals, &row.route, &row.a);
            for slo in slos.iter().filter(|s| s.route_patterns.contains(&row.route)) {
                for (objective, _) in objectives(slo) {
                    let (all, bad) = slo_events(slo, objective, &row.a);
                    let t = self.slo_totals.entry(objective_key(&slo.name, objective)).or_default();
                    t.all = t.all.saturating_add(all);
                    t.bad = t.bad.saturating_add(bad);
                }
            }
        }
        self.dirty.insert(KEY_META.to_owned());
    }

    /// Storage entries changed since the last call: `{key: value}` (values are postcard bytes).
    pub fn take_dirty(&mut self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for key in core::mem::take(&mut self.dirty) {
            let value = if key == KEY_META {
                let meta = Meta {
                    head: self.head.clone(),
                    totals: self.totals.clone(),
                    slo_totals: self.slo_totals.clone(),
                    revisions: self.revisions.clone(),
                    alerts: self.alerts.clone(),
                    notifications: self.notifications.clone(),
                    flushes: self.flushes,
                };
                postcard::to_allocvec(&meta).ok()
            } else if let Some(t) = key.strip_prefix("m:").and_then(|t| t.parse::<u64>().ok()) {
                self.minutes.get(&t).and_then(|r| postcard::to_allocvec(r).ok())
            } else if let Some(t) = key.strip_prefix("h:").and_then(|t| t.parse::<u64>().ok()) {
                self.hours.get(&t).and_then(|r| postcard::to_allocvec(r).ok())
            } else {
                None
            };
            if let Some(v) = value {
                out.insert(key, v);
            }
        }
        out
    }

    /// Put back one storage entry written by [`Fleet::take_dirty`]; false when unreadable.
    pub fn restore(&mut self, key: &str, value: &[u8]) -> bool {
        if key == KEY_META {
            let Ok(meta) = postcard::from_bytes::<Meta>(value) else { return false };
            self.head = meta.head;
            self.totals = meta.totals;
            self.slo_totals = meta.slo_totals;
            self.revisions = meta.revisions;
            self.alerts = meta.alerts;
            self.notifications = meta.notifications;
            self.flushes = meta.flushes;
            return true;
        }
        let parsed = postcard::from_bytes::<BTreeMap<String, Agg>>(value).ok();
        match (key.split_once(':'), parsed) {
            (Some(("m", t)), Some(rows)) => t.parse().map(|t| self.minutes.insert(t, rows)).is_ok(),
            (Some(("h", t)), Some(rows)) => t.parse().map(|t| self.hours.insert(t, rows)).is_ok(),
            _ => false,
        }
    }

    /// Drop per-minute rows older than 7 days and per-hour rows older than 90 (in buckets);
    /// returns the storage keys to delete.
    pub fn prune(&mut self, now_ms: u64) -> Vec<String> {
        let b = self.bucket_ms();
        let minute_cut = now_ms.saturating_sub(MINUTES_KEPT.saturating_mul(b));
        let hour_cut = now_ms.saturating_sub(HOURS_KEPT.saturating_mul(self.hour_ms()));
        let mut gone = Vec::new();
        let old: Vec<u64> = self.minutes.range(..minute_cut).map(|(t, _)| *t).collect();
        for t in old {
            self.minutes.remove(&t);
            gone.push(format!("m:{t}"));
        }
        let old: Vec<u64> = self.hours.range(..hour_cut).map(|(t, _)| *t).collect();
        for t in old {
            self.hours.remove(&t);
            gone.push(format!("h:{t}"));
        }
        gone
    }

    /// The merged aggregate of `route` (`None`: every route) over the last `buckets` buckets up
    /// to `now_ms` (the current, partial bucket included). Beyond the per-minute rows' 7 days,
    /// the per-hour rows answer.
    pub fn window(&self, now_ms: u64, buckets: u64, route: Option<&str>) -> Agg {
        let b = self.bucket_ms();
        let from = floor(now_ms, b).saturating_sub(buckets.saturating_sub(1).saturating_mul(b));
        let mut out = Agg::default();
        let rows: Box<dyn Iterator<Item = (&u64, &BTreeMap<String, Agg>)>> = if buckets > MINUTES_KEPT {
            Box::new(self.hours.range(floor(from, self.hour_ms())..))
        } else {
            Box::new(self.minutes.range(from..))
        };
        for (_, routes) in rows {
            for (name, a) in routes {
                if route.is_none_or(|r| r == name) {
                    out.merge(a);
                }
            }
        }
        out
    }

    /// (good + bad, bad) of an SLO objective over the last `buckets` buckets.
    fn slo_window(&self, slo: &Slo, objective: &str, now_ms: u64, buckets: u64) -> (u64, u64) {
        let b = self.bucket_ms();
        let from = floor(now_ms, b).saturating_sub(buckets.saturating_sub(1).saturating_mul(b));
        let (mut all, mut bad) = (0u64, 0u64);
        let rows: Box<dyn Iterator<Item = (&u64, &BTreeMap<String, Agg>)>> = if buckets > MINUTES_KEPT {
            Box::new(self.hours.range(floor(from, self.hour_ms())..))
        } else {
            Box::new(self.minutes.range(from..))
        };
        for (_, routes) in rows {
            for pattern in &slo.route_patterns {
                if let Some(a) = routes.get(pattern) {
                    let (x, y) = slo_events(slo, objective, a);
                    all = all.saturating_add(x);
                    bad = bad.saturating_add(y);
                }
            }
        }
        (all, bad)
    }

    /// The burn rate of an objective over `buckets`: the bad share divided by the error budget.
    pub fn burn_rate(&self, slo: &Slo, objective: &str, target: f64, now_ms: u64, buckets: u64) -> f64 {
        let (all, bad) = self.slo_window(slo, objective, now_ms, buckets);
        let budget = (1.0 - target).max(1e-9);
        if all == 0 { 0.0 } else { bad as f64 / all as f64 / budget }
    }

    /// The share of the error budget left over the SLO's window (1: untouched, ≤ 0: spent).
    pub fn budget_left(&self, slo: &Slo, objective: &str, target: f64, now_ms: u64) -> f64 {
        let (all, bad) = self.slo_window(slo, objective, now_ms, slo.window_buckets);
        if all == 0 {
            return 1.0;
        }
        let allowed = (1.0 - target) * all as f64;
        if allowed <= 0.0 { if bad == 0 { 1.0 } else { 0.0 } } else { 1.0 - bad as f64 / allowed }
    }

    /// Evaluate every alert at `now_ms`: the alerts that fired or resolved since the last call.
    pub fn evaluate(&mut self, now_ms: u64) -> Vec<Notice> {
        let Some(head) = self.head.clone() else { return Vec::new() };
        let mut out = Vec::new();
        for slo in &head.slos {
            for (objective, target) in objectives(slo) {
                for sev in [severity::PAGE, severity::TICKET] {
                    if slo.alerts & sev == 0 {
                        continue;
                    }
                    // The strongest row of this severity decides what the notice reports.
                    let mut firing = false;
                    let mut report = (0.0f64, 0.0f64, 0u64, 0u64, 0.0f64);
                    for rule in BURN_RULES.iter().filter(|r| r.severity == sev) {
                        let long = self.burn_rate(slo, objective, target, now_ms, rule.long_minutes);
                        let short = self.burn_rate(slo, objective, target, now_ms, rule.short_minutes);
                        let fires = long > rule.factor && short > rule.factor;
                        if fires || (!firing && report.2 == 0) {
                            report = (long, short, rule.long_minutes, rule.short_minutes, rule.factor);
                        }
                        firing |= fires;
                    }
                    let key = format!("{}/{}", objective_key(&slo.name, objective), severity_name(sev));
                    let state = self.alerts.entry(key.clone()).or_default();
                    state.burn_long = report.0;
                    state.burn_short = report.1;
                    if state.firing == firing {
                        continue;
                    }
                    state.firing = firing;
                    state.since = now_ms;
                    self.dirty.insert(KEY_META.to_owned());
                    let status = if firing { "firing" } else { "resolved" };
                    let what = match (objective, &slo.latency) {
                        ("latency", Some(l)) => format!("p{} of {} time ≤ {} ms", trim(target * 100.0), l.of.as_str(), l.threshold_ms),
                        _ => format!("{} % of requests without a 5xx", trim(target * 100.0)),
                    };
                    let summary = format!(
                        "[{}] {} SLO `{}` ({what}) {status}: burn rate {:.1}× over {} and {:.1}× over {} (threshold {}×) — {} {}",
                        if sev == severity::TICKET { "TICKET" } else { "PAGE" },
                        head.app,
                        slo.name,
                        report.0,
                        window_label(report.2),
                        report.1,
                        window_label(report.3),
                        trim(report.4),
                        head.environment,
                        head.revision,
                    );
                    out.push(Notice {
                        id: format!("{key}/{status}/{now_ms}"),
                        status,
                        slo: slo.name.clone(),
                        objective,
                        severity: severity_name(sev),
                        target,
                        burn_rate_long: round3(report.0),
                        burn_rate_short: round3(report.1),
                        long_window: window_label(report.2),
                        short_window: window_label(report.3),
                        factor: report.4,
                        app: head.app.clone(),
                        environment: head.environment.clone(),
                        revision: head.revision.clone(),
                        at: crate::dates::rfc3339_millis(now_ms),
                        summary,
                    });
                }
            }
        }
        out
    }

    /// A notification's outcome: `destination` (slack, webhook, posthog), `ok` or not.
    pub fn notified(&mut self, destination: &str, result: &str) {
        let n = self.notifications.entry(format!("{destination}:{result}")).or_insert(0);
        *n = n.saturating_add(1);
        self.dirty.insert(KEY_META.to_owned());
    }

    /// Whether anything could still change an alert: data inside the longest window, or a
    /// firing alert. The object keeps its alarm while this holds.
    pub fn active(&self, now_ms: u64) -> bool {
        let longest = BURN_RULES.iter().map(|r| r.long_minutes).max().unwrap_or(0);
        let since = now_ms.saturating_sub(longest.saturating_mul(self.bucket_ms()));
        self.alerts.values().any(|a| a.firing) || self.minutes.range(since..).next().is_some()
    }

    /// The fleet's numbers in Prometheus text format 0.0.4 (the metrics path's `?scope=fleet`).
    pub fn prometheus(&self, now_ms: u64) -> String {
        let mut p = Prom::with_capacity(8192);
        if let Some(h) = &self.head {
            p.head("edgeguard_fleet_info", "gauge", "The policy the fleet statistics follow (the newest that flushed).");
            p.sample("edgeguard_fleet_info", &[("app", &h.app), ("environment", &h.environment), ("revision", &h.revision)], "1");
        }
        p.head("edgeguard_fleet_revision_start_time_seconds", "gauge", "When each policy revision first answered a request (Unix time).");
        for (rev, t) in &self.revisions {
            p.sample("edgeguard_fleet_revision_start_time_seconds", &[("revision", rev)], secs(*t));
        }
        p.head("edgeguard_fleet_flushes_total", "counter", "Isolate aggregates merged.");
        p.sample("edgeguard_fleet_flushes_total", &[], self.flushes.to_string());
        p.head("edgeguard_fleet_requests_total", "counter", "Requests answered by the whole fleet, by route and status class.");
        const CLASSES: [&str; 6] = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];
        for (route, a) in &self.totals {
            for (class, n) in CLASSES.iter().zip(a.class) {
                if n > 0 {
                    p.sample("edgeguard_fleet_requests_total", &[("route", route), ("class", class)], n.to_string());
                }
            }
        }
        let maps: [CountMap; 5] = [
            ("edgeguard_fleet_reasons_total", "reason", "Requests by the decision's reason code, by route.", |a| &a.reasons),
            ("edgeguard_fleet_rate_limited_total", "limit", "429s by the limit that refused, by route.", |a| &a.limited),
            ("edgeguard_fleet_origin_failures_total", "origin", "Failed origin attempts (timeout, unreachable, 5xx), by route and origin.", |a| &a.origin_failures),
            ("edgeguard_fleet_cache_total", "outcome", "Edge cache outcomes, by route.", |a| &a.cache),
            ("edgeguard_fleet_csp_violations_total", "directive", "Accepted CSP violations by effective directive.", |a| &a.csp),
        ];
        for (name, label, help, get) in maps {
            p.head(name, "counter", help);
            for (route, a) in &self.totals {
                for (k, n) in get(a) {
                    p.sample(name, &[("route", route), (label, k)], n.to_string());
                }
            }
        }
        p.head("edgeguard_fleet_refusals_total", "counter", "Requests the edge refused, by route.");
        p.head("edgeguard_fleet_failovers_total", "counter", "Requests retried on another origin, by route.");
        for (route, a) in &self.totals {
            p.sample("edgeguard_fleet_refusals_total", &[("route", route)], a.refused.to_string());
            p.sample("edgeguard_fleet_failovers_total", &[("route", route)], a.failovers.to_string());
        }
        for (name, of) in [("edgeguard_fleet_edge_duration_seconds", LatencyOf::Edge), ("edgeguard_fleet_origin_duration_seconds", LatencyOf::Origin)] {
            p.head(name, "histogram", "Latency over the whole fleet, by route (buckets by their start: within 1/64 of the value).");
            for (route, a) in &self.totals {
                let h = if of == LatencyOf::Edge { &a.edge } else { &a.origin };
                if h.is_empty() {
                    continue;
                }
                for (le_ms, le) in PROM_BUCKETS {
                    p.sample(&format!("{name}_bucket"), &[("route", route), ("le", le)], h.count_le(le_ms).to_string());
                }
                p.sample(&format!("{name}_bucket"), &[("route", route), ("le", "+Inf")], h.count().to_string());
                p.sample(&format!("{name}_sum"), &[("route", route)], format!("{}", h.sum_ms() / 1000.0));
                p.sample(&format!("{name}_count"), &[("route", route)], h.count().to_string());
            }
        }
        p.head("edgeguard_fleet_latency_seconds", "gauge", "Latency percentiles over the last hour (60 buckets), by route and time (origin, edge).");
        let hour = self.hour_routes(now_ms);
        for (route, a) in &hour {
            for (of, h) in [("origin", &a.origin), ("edge", &a.edge)] {
                for q in ["0.5", "0.95", "0.99"] {
                    if let Some(v) = h.quantile(q.parse().unwrap_or(0.5)) {
                        p.sample("edgeguard_fleet_latency_seconds", &[("route", route), ("of", of), ("quantile", q)], format!("{}", v / 1000.0));
                    }
                }
            }
        }
        p.head("edgeguard_slo_objective_ratio", "gauge", "Each SLO objective's target (0.999: 99.9 %).");
        p.head("edgeguard_slo_requests_total", "counter", "Requests counted toward an SLO objective.");
        p.head("edgeguard_slo_bad_total", "counter", "Requests that missed an SLO objective (5xx; slower than the threshold).");
        p.head("edgeguard_slo_burn_rate", "gauge", "Error budget burn rate over each alert window.");
        p.head("edgeguard_slo_error_budget_remaining_ratio", "gauge", "Share of the error budget left over the SLO window.");
        p.head("edgeguard_slo_alert_firing", "gauge", "1 while an SLO alert fires.");
        if let Some(h) = &self.head {
            for slo in &h.slos {
                for (objective, target) in objectives(slo) {
                    let l = [("slo", slo.name.as_str()), ("objective", objective)];
                    p.sample("edgeguard_slo_objective_ratio", &l, format!("{target}"));
                    let t = self.slo_totals.get(&objective_key(&slo.name, objective)).copied().unwrap_or_default();
                    p.sample("edgeguard_slo_requests_total", &l, t.all.to_string());
                    p.sample("edgeguard_slo_bad_total", &l, t.bad.to_string());
                    for w in WINDOWS {
                        let label = window_label(w);
                        let burn = self.burn_rate(slo, objective, target, now_ms, w);
                        p.sample("edgeguard_slo_burn_rate", &[l[0], l[1], ("window", &label)], format!("{}", round3(burn)));
                    }
                    p.sample("edgeguard_slo_error_budget_remaining_ratio", &l, format!("{}", round3(self.budget_left(slo, objective, target, now_ms))));
                    for sev in [severity::PAGE, severity::TICKET] {
                        if slo.alerts & sev == 0 {
                            continue;
                        }
                        let key = format!("{}/{}", objective_key(&slo.name, objective), severity_name(sev));
                        let firing = self.alerts.get(&key).is_some_and(|a| a.firing);
                        p.sample("edgeguard_slo_alert_firing", &[l[0], l[1], ("severity", severity_name(sev))], u8::from(firing).to_string());
                    }
                }
            }
        }
        p.head("edgeguard_fleet_alert_notifications_total", "counter", "Alert notifications by destination and result (failed ones are retried).");
        for (k, n) in &self.notifications {
            let (dest, result) = k.split_once(':').unwrap_or((k.as_str(), ""));
            p.sample("edgeguard_fleet_alert_notifications_total", &[("destination", dest), ("result", result)], n.to_string());
        }
        p.out
    }

    /// Every route's aggregate over the last 60 buckets.
    pub fn hour_routes(&self, now_ms: u64) -> BTreeMap<String, Agg> {
        let b = self.bucket_ms();
        let from = floor(now_ms, b).saturating_sub(59u64.saturating_mul(b));
        let mut out: BTreeMap<String, Agg> = BTreeMap::new();
        for (_, routes) in self.minutes.range(from..) {
            for (name, a) in routes {
                out.entry(name.clone()).or_default().merge(a);
            }
        }
        out
    }
}

/// Every alert window, shortest first ([`BURN_RULES`]' long and short windows).
const WINDOWS: [u64; 5] = [5, 30, 60, 360, 4320];

fn merge_route(rows: &mut BTreeMap<String, Agg>, route: &str, a: &Agg) {
    if let Some(r) = rows.get_mut(route) {
        r.merge(a);
    } else if rows.len() < MAX_ROUTES {
        rows.insert(route.to_owned(), a.clone());
    } else {
        rows.entry("(other)".to_owned()).or_default().merge(a);
    }
}

/// A counter family drawn from one of [`Agg`]'s maps: (name, label, help, the map).
type CountMap = (&'static str, &'static str, &'static str, fn(&Agg) -> &BTreeMap<String, u64>);

/// Prometheus `le` buckets (ms, label in seconds): the isolate endpoint's.
const PROM_BUCKETS: [(u64, &str); 14] = [
    (1, "0.001"),
    (2, "0.002"),
    (5, "0.005"),
    (10, "0.01"),
    (25, "0.025"),
    (50, "0.05"),
    (100, "0.1"),
    (250, "0.25"),
    (500, "0.5"),
    (1000, "1"),
    (2500, "2.5"),
    (5000, "5"),
    (10_000, "10"),
    (30_000, "30"),
];

fn secs(ms: u64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A number without trailing zeros: 99.9, 95, 14.4.
pub fn trim(x: f64) -> String {
    let s = format!("{:.3}", x);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;
    use crate::slo::{DEFAULT_WINDOW_MINUTES, Latency};

    #[test]
    fn buckets_cover_every_value_in_order_with_bounded_error() {
        let mut last = 0u16;
        for ms in (0u64..5000).chain([65_535, 1 << 20, 1 << 40]) {
            let b = bucket(ms);
            assert!(b >= last, "monotonic at {ms}");
            last = b;
            let (lo, hi) = bounds(b);
            assert!(lo <= ms && ms <= hi, "{ms} in [{lo}, {hi}]");
            let mid = (lo as f64 + hi as f64) / 2.0;
            assert!((mid - ms as f64).abs() <= ms as f64 * RELATIVE_ERROR + 0.5, "{ms}: {mid}");
        }
        assert_eq!(bounds(bucket(63)), (63, 63));
        assert_eq!(bounds(bucket(64)), (64, 65));
        assert_eq!(bucket(u64::MAX), bucket(u64::MAX)); // no overflow
    }

    #[test]
    fn quantiles_are_within_the_stated_error_and_merge_exactly() {
        let values: Vec<u64> = (1..=1000).map(|i| i * 7 % 997 + 3).collect();
        let mut whole = Hist::default();
        let (mut a, mut b) = (Hist::default(), Hist::default());
        for (i, v) in values.iter().enumerate() {
            whole.record(*v);
            if i % 3 == 0 { a.record(*v) } else { b.record(*v) }
        }
        a.merge(&b);
        assert_eq!(a, whole, "merging loses nothing");
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for q in [0.5, 0.95, 0.99] {
            let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
            let truth = sorted[rank - 1] as f64;
            let got = whole.quantile(q).unwrap();
            assert!((got - truth).abs() <= truth * RELATIVE_ERROR + 0.5, "q{q}: {got} vs {truth}");
        }
        assert_eq!(whole.count_above(1000), 0);
        assert_eq!(Hist::default().quantile(0.5), None);
    }

    fn sample(status: u16, origin_ms: Option<u64>) -> Sample<'static> {
        Sample { status, reason: "ok", refused: false, limited: None, origin_failures: [None, None], failover: false, cache: None, edge_ms: 1, origin_ms }
    }

    fn head(slos: Vec<Slo>) -> FlushHead {
        FlushHead { revision: "abc".into(), app: "app".into(), environment: "production".into(), bucket_ms: 1000, dashboard: None, slos, alerts: Alerts::default() }
    }

    fn slo() -> Slo {
        Slo {
            name: "api".into(),
            routes: vec![0],
            route_patterns: vec!["/api/**".into()],
            availability_ppm: Some(990_000),
            latency: Some(Latency { percentile_ppm: 950_000, threshold_ms: 200, of: LatencyOf::Origin }),
            alerts: severity::PAGE,
            window_buckets: DEFAULT_WINDOW_MINUTES,
        }
    }

    #[test]
    fn isolates_merge_exactly_and_survive_a_restart() {
        let label = |r: u32| if r == 0 { "/api/**" } else { "(defaults)" };
        let mut fleet = Fleet::new();
        for isolate in 0..3u64 {
            let mut rec = Recorder::default();
            for i in 0..10u64 {
                rec.record(1000, 5_000 + i * 100, (i % 2) as u32, &sample(if i == 3 { 503 } else { 200 }, Some(50 + isolate)));
            }
            let bytes = postcard::to_allocvec(&rec.take(head(vec![slo()]), label).unwrap()).unwrap();
            fleet.merge(postcard::from_bytes(&bytes).unwrap());
            assert!(rec.is_empty());
        }
        let all = fleet.window(6_000, 5, None);
        assert_eq!(all.n, 30);
        assert_eq!(all.server_errors(), 3);
        assert_eq!(fleet.window(6_000, 5, Some("/api/**")).n, 15);
        let saved = fleet.take_dirty();
        let mut again = Fleet::new();
        for (k, v) in &saved {
            assert!(again.restore(k, v), "{k}");
        }
        assert_eq!(again.window(6_000, 5, None), all);
        assert_eq!(again.totals, fleet.totals);
        assert_eq!(again.prometheus(6_000), fleet.prometheus(6_000));
    }

    #[test]
    fn a_breach_fires_once_and_resolves_once() {
        let label = |_| "/api/**";
        let mut fleet = Fleet::new();
        let mut rec = Recorder::default();
        // 100 good requests in the first second, then 20 failures.
        for i in 0..100 {
            rec.record(1000, 1_000 + i, 0, &sample(200, Some(10)));
        }
        fleet.merge(rec.take(head(vec![slo()]), label).unwrap());
        assert!(fleet.evaluate(1_500).is_empty());
        for i in 0..20 {
            rec.record(1000, 2_000 + i, 0, &sample(500, Some(10)));
        }
        fleet.merge(rec.take(head(vec![slo()]), label).unwrap());
        let fired = fleet.evaluate(2_500);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].status, "firing");
        assert_eq!(fired[0].objective, "availability");
        assert!(fleet.evaluate(3_000).is_empty(), "no second page while it burns");
        // No bad request for longer than the 6h row's short window (30 buckets): resolved.
        let resolved = fleet.evaluate(2_000 + 31_000);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, "resolved");
        assert!(fleet.evaluate(40_000).is_empty());
    }

    #[test]
    fn latency_objective_counts_slow_requests() {
        let mut fleet = Fleet::new();
        let mut rec = Recorder::default();
        for i in 0..100 {
            rec.record(1000, 1_000 + i, 0, &sample(200, Some(if i < 90 { 20 } else { 400 })));
        }
        fleet.merge(rec.take(head(vec![slo()]), |_| "/api/**").unwrap());
        let burn = fleet.burn_rate(&slo(), "latency", 0.95, 1_500, 5);
        assert!((burn - 2.0).abs() < 1e-9, "10 % slow over a 5 % budget: {burn}");
        let text = fleet.prometheus(1_500);
        assert!(text.contains("edgeguard_slo_bad_total{slo=\"api\",objective=\"latency\"} 10"), "{text}");
        assert!(text.contains("edgeguard_fleet_requests_total{route=\"/api/**\",class=\"2xx\"} 100"));
    }

    #[test]
    fn windows_are_the_burn_rules_windows() {
        let mut w: Vec<u64> = BURN_RULES.iter().flat_map(|r| [r.long_minutes, r.short_minutes]).collect();
        w.sort_unstable();
        w.dedup();
        assert_eq!(w, WINDOWS);
    }

    #[test]
    fn old_rows_are_pruned() {
        let mut fleet = Fleet::new();
        let mut rec = Recorder::default();
        rec.record(1000, 1_000, 0, &sample(200, None));
        fleet.merge(rec.take(head(vec![]), |_| "/x").unwrap());
        assert!(fleet.prune(1_000 + 1000 * MINUTES_KEPT).is_empty());
        assert_eq!(fleet.prune(2_000 + 1000 * MINUTES_KEPT), ["m:1000"]);
        assert_eq!(fleet.hours.len(), 1);
    }
}
