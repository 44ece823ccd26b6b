//! The pipeline steps of the edge's own endpoints, answered at the edge and never forwarded:
//! the CSP report intake and the metrics endpoint (and the fleet dashboard behind the same key).
//! What the observer does with them once the shell has the body and the status is in
//! [`crate::observe`].

use std::borrow::Cow;

use super::Engine;
use crate::bundle::{CspIntake, MetricsEndpoint, method};
use crate::decision::{Action, Decision, Endpoint, Reason, RuleRef, reject};
use crate::limits::{Limiter, Nanos};
use crate::request::RequestFacts;
use crate::vocab::ReportFormat;

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
            return reject(d, Reason::UnsupportedMediaType, 415, Cow::Borrowed("CSP reports are application/csp-report (report-uri) or application/reports+json (report-to)"));
        };
        d.endpoint = Some(Endpoint::CspReport(Some(format)));
        match req.content_length() {
            Err(_) => {
                return reject(d, Reason::BadRequest, 400, Cow::Borrowed("the Content-Length header is not a valid length"));
            }
            Ok(Some(len)) if len > u64::from(intake.max_bytes) => {
                let detail = format!("the report is {len} bytes; the edge accepts at most {}", intake.max_bytes);
                return reject(d, Reason::PayloadTooLarge, 413, Cow::Owned(detail));
            }
            Ok(_) => {}
        }
        if let Some((index, limit)) = intake.limit.and_then(|i| b.limits.get(usize::from(i)).map(|l| (i, l))) {
            let hash = self.limit_key_hash(|parts| limiter.key_hash_parts(index, parts), limit.key, limit.key_name.as_deref(), req, d.client_ip, RuleRef::None, None);
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
