#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! `[observe]` through the engine (issue 5): the CSP report intake and the metrics endpoint as
//! pipeline steps, and what the observer makes of a finished request — the log line, PostHog
//! events, the Analytics Engine data point and the Prometheus text.

use edgeguard_compiler::{Options, compile};
use edgeguard_core::decision::{Endpoint, OriginFailure};
use edgeguard_core::explain::explain;
use edgeguard_core::observe::{Draws, Flight, Observed, Observer, ReportFormat};
use edgeguard_core::{Action, Draw, Engine, Limiter, Overrides, Reason, RequestFacts};
use serde_json::Value;

const METRICS_KEY: &str = "scrape-key";

fn policy(observe: &str) -> String {
    let hash = sha256_hex(METRICS_KEY);
    format!(
        r#"version = 1
[app]
name = "shop"
hosts = ["shop.example"]
[client_ip]
from = "cf-connecting-ip"
[csp]
report_to = "/__edge/csp-report"
[[routes]]
path = "/admin/**"
api_key = "metrics"
[[routes]]
path = "/limited"
limit = {{ rate = "1/1m" }}
[api_keys.metrics]
sha256 = ["{hash}"]
[origins.blue]
url = "https://blue.fly.dev"
[origins.green]
url = "https://green.fly.dev"
[deploy]
active = "blue"
failover = true
{observe}"#
    )
}

fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn engine(src: &str) -> Engine {
    let out = compile(src, &Options::default());
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    Engine::new(out.bundle.unwrap()).unwrap()
}

const FULL: &str = r#"[observe]
metrics = { api_key = "metrics" }
[observe.posthog]
events = ["refusal", "csp_violation", "origin_failure", "pageview"]
pageview_sample = 1
rate = "5/1m"
"#;

struct Edge {
    engine: Engine,
    limiter: Limiter,
    observer: Observer,
    now: u64,
}

const T0: u64 = 1_700_000_000_000 * 1_000_000; // 2023-11-14T22:13:20Z

impl Edge {
    fn new(observe: &str) -> Edge {
        let engine = engine(&policy(observe));
        let limiter = engine.new_limiter(7);
        let mut observer = Observer::new(engine.bundle(), 3, T0);
        observer.set_outputs(engine.bundle(), true, true);
        Edge { engine, limiter, observer, now: T0 }
    }

    fn decide(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Flight {
        let url = format!("https://shop.example{path}");
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        for (name, value) in [("host", "shop.example"), ("cf-connecting-ip", "203.0.113.77")] {
            if !all.iter().any(|(n, _)| *n == name) {
                all.push((name, value));
            }
        }
        let facts = RequestFacts { method, url: &url, headers: &all, peer_ip: None, cf: Default::default() };
        let d = self.engine.decide(&facts, &mut self.limiter, self.now, Draw { request_id: 0xabc, lane: 0 });
        Flight::new(d, method, self.now)
    }

    fn report(&mut self, ip: &str, content_type: &str, body: &[u8]) -> Flight {
        let len = body.len().to_string();
        let mut f = self.decide("POST", "/__edge/csp-report", &[("content-type", content_type), ("content-length", &len), ("cf-connecting-ip", ip)]);
        self.observer.csp_body(self.engine.bundle(), &mut f, Some(body), self.now);
        f
    }

    fn finish(&mut self, f: &Flight, seen: Observed) -> (Option<Value>, Vec<Value>, Option<Value>) {
        let out = self.observer.finish(&self.engine, f, &seen, Draws::default(), self.now);
        (out.log.map(|l| serde_json::from_str(&l).unwrap()), out.events, out.point.map(|p| serde_json::to_value(p).unwrap()))
    }

    fn metrics(&self) -> String {
        self.observer.render_metrics(self.engine.bundle(), self.limiter.len())
    }
}

fn answered(status: u16) -> Observed<'static> {
    Observed { status, edge_ms: 1, origin_ms: None, origin_error: None, failover: None, html: false, cache: None }
}

fn report(doc: &str) -> String {
    format!(r#"{{"csp-report":{{"document-uri":"{doc}","effective-directive":"script-src-elem","blocked-uri":"inline","disposition":"enforce"}}}}"#)
}

#[test]
fn the_intake_is_a_pipeline_step_before_https_and_routes() {
    let mut e = Edge::new("");
    // Plain http is not redirected, and the report never becomes a forward.
    let url = "http://shop.example/__edge/csp-report";
    let headers = [("host", "shop.example"), ("content-type", "application/csp-report; charset=utf-8"), ("content-length", "10")];
    let d = e.engine.decide(&RequestFacts { method: "POST", url, headers: &headers, peer_ip: None, cf: Default::default() }, &mut e.limiter, 0, Draw::default());
    assert_eq!((d.action, d.status, d.reason), (Action::Respond, Some(204), Reason::CspReport));
    assert_eq!(d.endpoint, Some(Endpoint::CspReport(Some(ReportFormat::CspReport))));
    assert_eq!(d.origin, None);
    let x = explain(&e.engine, &d);
    assert_eq!(x.response_headers.get("cache-control").map(String::as_str), Some("no-store"));
    assert!(!x.response_headers.contains_key("content-type"), "204: no body, no type");
    assert_eq!(x.rate_limit.as_ref().map(|r| (r.name.as_str(), r.limit, r.remaining)), Some(("csp-reports", 20, 19)));

    let refusal = |e: &mut Edge, method: &str, headers: &[(&str, &str)]| {
        let f = e.decide(method, "/__edge/csp-report", headers);
        (f.decision.status, f.decision.reason, f.decision.allow)
    };
    assert_eq!(refusal(&mut e, "GET", &[]), (Some(405), Reason::MethodNotAllowed, Some(edgeguard_core::bundle::method::POST)));
    assert_eq!(refusal(&mut e, "POST", &[("content-type", "application/json")]).1, Reason::UnsupportedMediaType);
    assert_eq!(refusal(&mut e, "POST", &[]).0, Some(415));
    assert_eq!(refusal(&mut e, "POST", &[("content-type", "application/reports+json"), ("content-length", "65537")]).1, Reason::PayloadTooLarge);
    assert_eq!(refusal(&mut e, "POST", &[("content-type", "application/reports+json"), ("content-length", "1e3")]).1, Reason::BadRequest);
    assert_eq!(refusal(&mut e, "POST", &[("content-type", "application/reports+json"), ("content-length", "65536")]).1, Reason::CspReport);
}

#[test]
fn floods_are_limited_per_client_and_never_forwarded_even_in_shadow_mode() {
    let mut e = Edge::new("");
    e.engine.set_overrides(Overrides { shadow: true, ..Overrides::default() });
    let body = report("https://shop.example/");
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(e.report("198.51.100.1", "application/csp-report", body.as_bytes()).decision.status.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 20);
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    let other = e.report("198.51.100.2", "application/csp-report", body.as_bytes());
    assert_eq!(other.decision.status, Some(204), "another client has its own budget");
    let f = e.decide("GET", "/__edge/csp-report", &[]);
    assert_eq!((f.decision.action, f.decision.status), (Action::Reject, Some(405)), "shadow mode forwards nothing of the edge's own endpoints");
    let f = e.decide("GET", "/__edge/metrics-not-configured", &[]);
    assert_eq!(f.decision.action, Action::Forward);
}

#[test]
fn bodies_are_validated_and_duplicates_dropped() {
    let mut e = Edge::new(FULL);
    let ok = e.report("198.51.100.3", "application/csp-report", report("https://shop.example/a?token=t").as_bytes());
    assert_eq!(ok.decision.status, Some(204));
    assert_eq!(ok.violations.len(), 1);
    assert_eq!(ok.violations[0].document_uri, "https://shop.example/a");
    let dup = e.report("198.51.100.3", "application/csp-report", report("https://shop.example/a?token=other").as_bytes());
    assert_eq!((dup.decision.status, dup.violations.len(), dup.duplicates), (Some(204), 0, 1));
    let bad = e.report("198.51.100.3", "application/csp-report", b"{");
    assert_eq!((bad.decision.action, bad.decision.status, bad.decision.reason), (Action::Reject, Some(400), Reason::BadRequest));
    assert_eq!(bad.decision.problem_json().map(|p| p.contains("not JSON")), Some(true));
    // The shape must match the declared type.
    let wrong = e.report("198.51.100.3", "application/reports+json", report("https://shop.example/b").as_bytes());
    assert_eq!(wrong.decision.status, Some(400));
    // A body without Content-Length that the shell found too long.
    let mut long = e.decide("POST", "/__edge/csp-report", &[("content-type", "application/csp-report")]);
    e.observer.csp_body(e.engine.bundle(), &mut long, None, e.now);
    assert_eq!((long.decision.status, long.decision.reason), (Some(413), Reason::PayloadTooLarge));

    let (_, events, _) = e.finish(&ok, answered(204));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "edgeguard_csp_violation");
    assert_eq!(events[0]["properties"]["effective_directive"], "script-src-elem");
    let (line, events, _) = e.finish(&dup, answered(204));
    assert!(events.is_empty(), "a duplicate sends nothing");
    assert_eq!(line.unwrap()["csp"], serde_json::json!({"violations": 0, "duplicates": 1, "ignored": 0}));
    let (line, _, _) = e.finish(&bad, answered(400));
    assert_eq!(line.unwrap()["level"], "warn");
    e.finish(&long, answered(413));
    let m = e.metrics();
    for series in [
        "edgeguard_csp_reports_total{result=\"accepted\"} 1",
        "edgeguard_csp_reports_total{result=\"duplicate\"} 1",
        "edgeguard_csp_reports_total{result=\"malformed\"} 1",
        "edgeguard_csp_reports_total{result=\"too_large\"} 1",
        "edgeguard_csp_violations_total{directive=\"script-src-elem\"} 1",
        "edgeguard_requests_total{route=\"(none)\",action=\"reject\",reason=\"payload_too_large\",status=\"413\"} 1",
    ] {
        assert!(m.contains(series), "{series}\n{m}");
    }
}

#[test]
fn metrics_endpoint_needs_its_key() {
    let mut e = Edge::new(FULL);
    let f = e.decide("GET", "/__edge/metrics", &[]);
    assert_eq!((f.decision.status, f.decision.reason), (Some(401), Reason::Unauthorized));
    let f = e.decide("GET", "/__edge/metrics", &[("x-api-key", "nope")]);
    assert_eq!(f.decision.status, Some(401));
    let f = e.decide("POST", "/__edge/metrics", &[("x-api-key", METRICS_KEY)]);
    assert_eq!(f.decision.status, Some(405));
    let f = e.decide("HEAD", "/__edge/metrics", &[("x-api-key", METRICS_KEY)]);
    assert_eq!((f.decision.action, f.decision.status, f.decision.reason), (Action::Respond, Some(200), Reason::Metrics));
    let x = explain(&e.engine, &f.decision);
    assert_eq!(x.response_headers.get("content-type").map(String::as_str), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(serde_json::to_value(&x).unwrap()["reason"], "metrics");
    // A route can't sit on it.
    let out = compile(&policy(&format!("{FULL}\n[[routes]]\npath = \"/__edge/metrics\"\n")), &Options::default());
    assert!(out.diagnostics.iter().any(|d| d.code == "E042"));
}

#[test]
fn the_log_line_has_the_documented_fields_and_no_secrets() {
    let mut e = Edge::new(FULL);
    let secret_headers = [("cookie", "sid=cookie-secret"), ("authorization", "Bearer auth-secret"), ("x-api-key", METRICS_KEY)];
    let f = e.decide("GET", "/admin/users?token=query-secret", &secret_headers);
    assert_eq!(f.decision.action, Action::Forward, "the right key");
    let seen = Observed { status: 200, edge_ms: 2, origin_ms: Some(41), origin_error: None, failover: None, html: true, cache: None };
    let (line, events, point) = e.finish(&f, seen);
    let line = line.unwrap();
    let text = line.to_string();
    let revision = &e.engine.bundle().revision[..12];
    for secret in ["cookie-secret", "auth-secret", METRICS_KEY, "query-secret", "token"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(
        line,
        serde_json::json!({
            "ts": "2023-11-14T22:13:20.000Z", "level": "info", "msg": "request", "revision": revision,
            "request_id": "00000000000000000000000000000abc", "method": "GET", "host": "shop.example",
            "path": "/admin/users", "route": "/admin/**", "action": "forward", "reason": "ok", "status": 200,
            "edge_ms": 2, "origin": "blue", "lane": "active", "origin_ms": 41, "client_ip": "203.0.113.0",
        })
    );
    let pageview = events.iter().find(|e| e["event"] == "$pageview").unwrap();
    assert_eq!(pageview["properties"]["$current_url"], "https://shop.example/admin/users");
    assert_eq!(pageview["distinct_id"], "00000000000000000000000000000abc");
    assert!(!serde_json::to_string(&events).unwrap().contains("secret"));
    let point = point.unwrap();
    assert_eq!(point["indexes"], serde_json::json!(["/admin/**"]));
    assert_eq!(point["blobs"].as_array().unwrap()[0..4], [Value::from("/admin/**"), "forward".into(), "ok".into(), "GET".into()]);
    assert_eq!(point["doubles"], serde_json::json!([200, 2, 41, -1]));
    assert!(point["blobs"].as_array().unwrap().len() <= 20 && point["doubles"].as_array().unwrap().len() <= 20, "Analytics Engine's limits");
}

#[test]
fn levels_sampling_and_ip_detail() {
    let mut e = Edge::new("[observe]\nlog = \"warn\"\nclient_ip = \"omit\"\n[observe.posthog]\n");
    let ok = e.decide("GET", "/page", &[]);
    let refused = e.decide("GET", "/admin/x", &[]);
    let (line, events, _) = e.finish(&ok, answered(200));
    assert!(line.is_none() && events.is_empty(), "log = warn: no info lines; pageview not listed");
    let (line, events, _) = e.finish(&refused, answered(401));
    let line = line.unwrap();
    assert_eq!(line["level"], "warn");
    assert!(line.get("client_ip").is_none(), "client_ip = omit");
    assert_eq!(events[0]["properties"]["$geoip_disable"], true);
    assert!(events[0]["properties"].get("$ip").is_none());
    let failed = e.decide("GET", "/page", &[]);
    let seen = Observed { status: 504, edge_ms: 0, origin_ms: Some(1000), origin_error: Some(OriginFailure::Timeout), failover: None, html: false, cache: None };
    let (line, events, _) = e.finish(&failed, seen);
    let line = line.unwrap();
    assert_eq!((line["level"].as_str(), line["reason"].as_str(), line["origin_error"].as_str()), (Some("error"), Some("origin_timeout"), Some("timeout")));
    assert_eq!(events[0]["event"], "edgeguard_origin_failure");
    assert_eq!(events[0]["properties"]["cause"], "timeout");

    // sample: a share of info lines, by the draw the shell passes.
    let mut e = Edge::new("[observe]\nsample = 0.5\n");
    let mut written = 0;
    for i in 0..100u32 {
        let f = e.decide("GET", "/page", &[]);
        let out = e.observer.finish(&e.engine, &f, &answered(200), Draws { log: i.wrapping_mul(42_949_673), pageview: 0 }, e.now);
        written += usize::from(out.log.is_some());
    }
    assert_eq!(written, 50);
    // Refusals are written whatever the sample.
    let f = e.decide("GET", "/admin/x", &[]);
    assert!(e.observer.finish(&e.engine, &f, &answered(401), Draws { log: u32::MAX, pageview: 0 }, e.now).log.is_some());
    assert!(e.metrics().contains("edgeguard_log_lines_sampled_out_total 50"));
}

#[test]
fn failover_and_rate_limits_in_the_line_and_events() {
    let mut e = Edge::new(FULL);
    let f = e.decide("GET", "/page", &[]);
    assert_eq!(f.decision.failover, Some(1));
    let seen = Observed { status: 200, edge_ms: 1, origin_ms: Some(30), origin_error: None, failover: Some("500"), html: false, cache: None };
    let (line, events, _) = e.finish(&f, seen);
    let line = line.unwrap();
    assert_eq!((line["level"].as_str(), line["origin"].as_str(), line["failover"].as_str()), (Some("warn"), Some("green"), Some("blue 500 -> green")));
    assert_eq!(events[0]["properties"]["cause"], "failover");
    let first = e.decide("GET", "/limited", &[]);
    let second = e.decide("GET", "/limited", &[]);
    let line = e.finish(&first, answered(200)).0.unwrap();
    assert_eq!((line["limit"].as_str(), line["remaining"].as_u64()), (Some("/limited"), Some(0)));
    let (line, events, _) = e.finish(&second, answered(429));
    assert_eq!(line.unwrap()["reason"], "rate_limited");
    assert_eq!(events[0]["properties"]["reason"], "rate_limited");
    let m = e.metrics();
    assert!(m.contains("edgeguard_origin_failures_total{origin=\"blue\",cause=\"status\"} 1"), "{m}");
    assert!(m.contains("edgeguard_origin_duration_seconds_count{route=\"(defaults)\",origin=\"green\"} 1"), "{m}");
}

#[test]
fn the_event_budget_caps_what_one_isolate_sends() {
    let mut e = Edge::new(FULL); // rate = "5/1m"
    let mut sent = 0;
    for _ in 0..8 {
        let f = e.decide("GET", "/admin/x", &[]);
        sent += e.finish(&f, answered(401)).1.len();
    }
    assert_eq!(sent, 5);
    e.observer.posthog_result(3, "timeout");
    e.observer.posthog_result(2, "ok");
    e.observer.analytics_result(false);
    let m = e.metrics();
    for series in [
        "edgeguard_posthog_events_total{result=\"queued\"} 5",
        "edgeguard_posthog_events_total{result=\"dropped\"} 3",
        "edgeguard_posthog_events_total{result=\"failed\"} 3",
        "edgeguard_posthog_batches_total{result=\"timeout\"} 1",
        "edgeguard_posthog_batches_total{result=\"ok\"} 1",
        "edgeguard_analytics_points_total{result=\"error\"} 1",
    ] {
        assert!(m.contains(series), "{series}\n{m}");
    }
}

#[test]
fn outputs_stay_off_without_a_key_or_a_binding() {
    let engine = engine(&policy(FULL));
    let mut observer = Observer::new(engine.bundle(), 1, T0);
    observer.set_outputs(engine.bundle(), false, false);
    let mut limiter = engine.new_limiter(1);
    let headers = [("host", "shop.example")];
    let d = engine.decide(&RequestFacts { method: "GET", url: "https://shop.example/admin/x", headers: &headers, peer_ip: None, cf: Default::default() }, &mut limiter, T0, Draw::default());
    let out = observer.finish(&engine, &Flight::new(d, "GET", T0), &answered(401), Draws::default(), T0);
    assert!(out.log.is_some() && out.events.is_empty() && out.point.is_none());
    // analytics = false in the policy wins over a present binding.
    let engine2 = self::engine(&policy("[observe]\nanalytics = false\n"));
    let mut o2 = Observer::new(engine2.bundle(), 1, T0);
    o2.set_outputs(engine2.bundle(), true, true);
    assert!(!o2.analytics_enabled() && !o2.posthog_enabled(), "no [observe.posthog]: no events");
}

#[test]
fn prometheus_text_is_well_formed() {
    let mut e = Edge::new(FULL);
    for path in ["/page", "/admin/x", "/limited", "/limited"] {
        let f = e.decide("GET", path, &[]);
        let status = f.decision.status.unwrap_or(200);
        e.finish(&f, Observed { status, edge_ms: 3, origin_ms: (status == 200).then_some(250), origin_error: None, failover: None, html: false, cache: None });
    }
    let m = e.metrics();
    let mut types = std::collections::BTreeSet::new();
    for line in m.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind));
            assert!(types.insert(name.to_owned()), "{name} typed twice");
        } else if !line.starts_with("# HELP ") {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).filter(|f| types.contains(*f)).unwrap_or(name);
            assert!(types.contains(family), "{name} has no TYPE before it");
        }
    }
    assert!(m.contains("edgeguard_origin_duration_seconds_bucket{route=\"(defaults)\",origin=\"blue\",le=\"0.1\"} 0"));
    assert!(m.contains("edgeguard_origin_duration_seconds_bucket{route=\"(defaults)\",origin=\"blue\",le=\"0.25\"} 1"));
    assert!(m.contains("edgeguard_origin_duration_seconds_sum{route=\"(defaults)\",origin=\"blue\"} 0.25"));
    assert!(m.contains("edgeguard_requests_total{route=\"/limited\",action=\"reject\",reason=\"rate_limited\",status=\"429\"} 1"));
    assert!(m.contains("edgeguard_isolate_start_time_seconds 1700000000\n"));
}
