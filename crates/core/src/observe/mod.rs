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
//! One file per concern: `csp_report` (both report formats, URLs cut), `dedupe` (one report per
//! window), `redact` (client addresses, cut text), `sampling` (info lines, page views, the event
//! budget), `flight` (the request in flight and the facts computed once from it), `line` (the
//! log line), `metrics` (counters and histograms as Prometheus text), `posthog`, `analytics`
//! (the data point), and the [`Observer`] here. The endpoints' pipeline steps are the engine's
//! (`engine/endpoints.rs`); timestamps and Prometheus text are leaves the fleet statistics share
//! (`dates.rs`, `prometheus.rs`).
//!
//! ```
//! # use edgeguard_core::observe::{client_ip_text, rfc3339_millis, sampled};
//! # use edgeguard_core::bundle::IpDetail;
//! let ip = "203.0.113.77".parse().ok();
//! assert_eq!(client_ip_text(ip, IpDetail::Truncate).as_deref(), Some("203.0.113.0"));
//! assert_eq!(rfc3339_millis(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
//! assert!(sampled(u32::MAX, 1_000_000) && !sampled(0, 0));
//! ```

mod analytics;
mod csp_report;
mod dedupe;
mod flight;
mod line;
mod metrics;
mod posthog;
mod redact;
mod sampling;

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use crate::bundle::{Bundle, LogLevel, event};
pub use crate::dates::rfc3339_millis;
use crate::decision::{Action, Endpoint, Reason};
use crate::engine::Engine;
pub use crate::prometheus::escape_label;
use crate::vocab::Nanos;
pub use crate::vocab::{METRICS_CONTENT_TYPE, ReportFormat};
pub use csp_report::{DEFAULT_MAX_REPORT_BYTES, MAX_REPORTS_PER_BODY, Reports, Violation, parse_reports, strip_url};
pub use dedupe::Dedupe;
use flight::Facts;
pub use flight::{CACHE_OUTCOMES, DataPoint, Draws, Finished, Flight, Observed, cache_outcome};
use metrics::{BatchResult, PointResult, bump, label_rule, origin_name, rule_key, rule_label};
pub use metrics::{Metrics, short_revision};
use posthog::{origin_failure_props, refusal_props};
pub use redact::{client_ip_text, truncate, truncate_ip};
pub use sampling::{Budget, PPM, sampled};

const NANOS_PER_MS: u64 = 1_000_000;
/// Longest path a log line, event or data point carries.
pub const MAX_PATH_BYTES: usize = 256;

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
        let (Some(rec), Ok(flush)) = (self.stats.as_mut(), postcard::from_bytes::<crate::stats::Flush>(flush)) else {
            return;
        };
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
        let Some(Endpoint::CspReport(Some(format))) = d.endpoint else {
            return;
        };
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
        let result = BatchResult::named(result);
        self.metrics.batches.bump(result);
        if result != BatchResult::Ok {
            self.metrics.events_failed = self.metrics.events_failed.saturating_add(u64::from(events));
        }
    }

    /// A `writeDataPoint` call returned (`true`) or threw.
    pub fn analytics_result(&mut self, ok: bool) {
        self.metrics.points.bump(if ok { PointResult::Ok } else { PointResult::Error });
    }

    /// Count a finished request and build what the policy asks the shell to do with it.
    pub fn finish(&mut self, engine: &Engine, flight: &Flight, seen: &Observed, draws: Draws, now: Nanos) -> Finished {
        let bundle = engine.bundle();
        let o = &bundle.observe;
        let d = &flight.decision;
        let facts = Facts::new(engine, flight, seen);
        self.metrics.count(flight, seen, &facts);
        if self.stats.is_some() {
            self.record_stats(bundle, flight, seen, &facts, now);
        }

        let mut out = Finished::default();
        let level = facts.level;
        if level <= o.log && o.log != LogLevel::Off {
            if level < LogLevel::Info || sampled(draws.log, o.sample_ppm) {
                self.metrics.lines.bump(level);
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
        let Some(rec) = self.stats.as_mut() else {
            return;
        };
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
}
