#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! `[stats]`, `[slo.*]` and `[alerts]` (issue 17): what compiles into the bundle, every
//! diagnostic with its code and did-you-mean, the dashboard as a pipeline step, `explain`'s
//! `slo`, and the observer's flush of a finished request.

use edgeguard_compiler::{Options, compile};
use edgeguard_core::explain::explain;
use edgeguard_core::observe::{Draws, Flight, Observed, Observer};
use edgeguard_core::slo::{LatencyOf, severity};
use edgeguard_core::stats::{Fleet, Flush};
use edgeguard_core::{Action, Draw, Engine, Reason, RequestFacts};

const BASE: &str = r#"version = 1
[app]
name = "shop"
hosts = ["shop.example"]
[[routes]]
path = "/api/**"
[[routes]]
path = "/checkout"
[api_keys.metrics]
sha256 = ["890d88bd27926799883ec0e9fb1585a21d42b20729ecfcce908a900ef76ae9d7"]
[origins.app]
url = "https://app.fly.dev"
"#;
const METRICS: &str = "[observe]\nmetrics = { api_key = \"metrics\" }\n[observe.posthog]\nevents = [\"refusal\"]\n";
const SLOS: &str = r#"
[slo.api]
routes = ["/api/**", "/checkout"]
availability = 99.9
latency = { percentile = 95, max = "200ms" }
[slo.checkout]
routes = ["/checkout"]
latency = { percentile = 99, max = "1s", of = "edge" }
window = "28d"
alerts = ["ticket"]
[alerts]
slack = "EDGE_ALERT_SLACK_URL"
"#;

/// Every diagnostic but W062 (the metrics key's hash is the e2e tests' well-known one).
fn codes(src: &str) -> Vec<(&'static str, String, Option<String>)> {
    compile(src, &Options::default()).diagnostics.into_iter().filter(|d| d.code != "W062").map(|d| (d.code, d.message, d.help)).collect()
}

fn has(src: &str, code: &str, words: &str) -> String {
    let all = codes(src);
    let found = all.iter().find(|(c, m, _)| *c == code && m.contains(words));
    assert!(found.is_some(), "no {code} containing {words:?} in {all:#?}");
    found.unwrap().2.clone().unwrap_or_default()
}

#[test]
fn slos_compile_into_the_bundle() {
    assert!(codes(&format!("{BASE}{METRICS}{SLOS}")).is_empty());
    let out = compile(&format!("{BASE}{METRICS}{SLOS}"), &Options::default());
    let b = out.bundle.unwrap();
    assert!(b.stats.enabled);
    assert_eq!((b.stats.flush_ms, b.stats.bucket_ms), (5_000, 60_000));
    assert_eq!(b.stats.dashboard.as_deref(), Some("/__edge/dashboard"));
    assert_eq!(b.slos.len(), 2);
    let api = &b.slos[0];
    assert_eq!((api.name.as_str(), api.routes.as_slice(), api.availability_ppm), ("api", &[0u32, 1][..], Some(999_000)));
    let l = api.latency.unwrap();
    assert_eq!((l.percentile_ppm, l.threshold_ms, l.of), (950_000, 200, LatencyOf::Origin));
    assert_eq!(api.alerts, severity::PAGE | severity::TICKET);
    assert_eq!(api.window_buckets, 30 * 24 * 60);
    let checkout = &b.slos[1];
    assert_eq!((checkout.alerts, checkout.window_buckets, checkout.latency.unwrap().of), (severity::TICKET, 28 * 24 * 60, LatencyOf::Edge));
    assert_eq!(b.alerts.slack_env.as_deref(), Some("EDGE_ALERT_SLACK_URL"));
    // Without [stats] or [slo], nothing is kept and no dashboard exists.
    let plain = compile(&format!("{BASE}{METRICS}"), &Options::default()).bundle.unwrap();
    assert!(!plain.stats.enabled);
    assert_eq!(plain.stats.dashboard, None);
}

#[test]
fn every_slo_diagnostic() {
    let p = |extra: &str| format!("{BASE}{METRICS}{extra}\n[alerts]\nslack = \"EDGE_ALERT_SLACK_URL\"\n");
    let help = has(&p("[slo.a]\nroutes = [\"/api/*\"]\navailability = 99"), "E121", "no route has the pattern `/api/*`");
    assert_eq!(help, "did you mean `/api/**`?");
    has(&p("[slo.a]\nroutes = [\"/api/**\"]\navailability = 100"), "E120", "availability 100");
    has(&p("[slo.a]\nroutes = [\"/api/**\"]"), "E120", "has no objective");
    has(&p("[slo.a]\navailability = 99"), "E120", "has no `routes`");
    has(&p("[slo.a]\nroutes = []\navailability = 99"), "E120", "covers no route");
    has(&p("[slo.a]\nroutes = [\"/api/**\"]\nlatency = { percentile = 101, max = \"1s\" }"), "E120", "percentile 101");
    has(&p("[slo.a]\nroutes = [\"/api/**\"]\nlatency = { percentile = 95 }"), "E120", "has no `max`");
    has(&p("[slo.a]\nroutes = [\"/api/**\"]\nlatency = { percentile = 95, max = \"2m\" }"), "E120", "not from 1 ms to 60 s");
    has(&p("[slo.a]\nroutes = [\"/api/**\"]\navailability = 99\nwindow = \"1m\""), "E120", "not from 1 hour to 90 days");
    has(&p("[stats]\nflush = \"100ms\""), "E122", "`flush` is 100ms");
    has(&p("[stats]\nminute = \"2m\""), "E122", "`minute` is 2m");
    has(&p("[stats]\ndashboard = \"/__edge/metrics\""), "E122", "already the edge's metrics endpoint");
    has(&p("[stats]\ndashboard = \"dash\""), "E122", "not a normalized absolute path");
    has(&format!("{BASE}[stats]\ndashboard = \"/d\""), "E122", "needs `observe.metrics`");
    let url = has(&format!("{BASE}{METRICS}[alerts]\nslack = \"https://hooks.slack.com/services/T0/B0/x\""), "E123", "is not a worker variable name");
    assert!(url.contains("wrangler secret put"), "{url}");
    has(&format!("{BASE}{METRICS}[alerts]\nwebhook_token = \"TOKEN\""), "E123", "`webhook_token` without a `webhook`");
    has(&format!("{BASE}[observe]\nmetrics = {{ api_key = \"metrics\" }}\n[alerts]\nposthog = true"), "E123", "no [observe.posthog]");
    has(&format!("{BASE}{METRICS}[slo.a]\nroutes = [\"/api/**\"]\navailability = 99"), "W120", "names nowhere to send them");
    assert!(codes(&format!("{BASE}{METRICS}[slo.a]\nroutes = [\"/api/**\"]\navailability = 99\nalerts = []")).is_empty(), "alerts = [] only tracks");
    has(&format!("{BASE}[slo.a]\nroutes = [\"/api/**\"]\navailability = 99\nalerts = []"), "W121", "no reader");
    // A route on the dashboard path is a conflict, like one on the metrics path.
    has(&format!("{BASE}{METRICS}[stats]\n[[routes]]\npath = \"/__edge/dashboard\""), "E042", "");
    // Unknown keys get the shape check's did-you-mean.
    let help = has(&format!("{BASE}{METRICS}[slo.a]\nroutes = [\"/api/**\"]\navailabilty = 99"), "E002", "availabilty");
    assert!(help.contains("availability"), "{help}");
}

fn decide(engine: &Engine, path: &str, headers: &[(&str, &str)]) -> edgeguard_core::Decision {
    let url = format!("https://shop.example{path}");
    let mut all = headers.to_vec();
    all.push(("host", "shop.example"));
    let facts = RequestFacts { method: "GET", url: &url, headers: &all, peer_ip: None, cf: edgeguard_core::request::CfFacts::NONE };
    let mut limiter = engine.new_limiter(1);
    engine.decide(&facts, &mut limiter, 1_000_000_000, Draw { request_id: 1, lane: 0 })
}

#[test]
fn explain_names_the_slos_and_the_dashboard_is_guarded() {
    let engine = Engine::new(compile(&format!("{BASE}{METRICS}{SLOS}"), &Options::default()).bundle.unwrap()).unwrap();
    assert_eq!(explain(&engine, &decide(&engine, "/checkout", &[])).slo, ["api", "checkout"]);
    assert_eq!(explain(&engine, &decide(&engine, "/api/x", &[])).slo, ["api"]);
    assert!(explain(&engine, &decide(&engine, "/other", &[])).slo.is_empty());
    let refused = decide(&engine, "/__edge/dashboard", &[]);
    assert_eq!((refused.action, refused.status), (Action::Reject, Some(401)));
    let ok = decide(&engine, "/__edge/dashboard", &[("x-api-key", "e2e-metrics-scrape-key")]);
    assert_eq!((ok.action, ok.status, ok.reason), (Action::Respond, Some(200), Reason::Dashboard));
    let e = explain(&engine, &ok);
    assert!(e.response_headers["content-security-policy"].starts_with("default-src 'none'; style-src 'sha256-"));
    assert_eq!(e.response_headers["content-type"], "text/html; charset=utf-8");
}

#[test]
fn a_finished_request_reaches_the_fleet_through_a_flush() {
    let engine = Engine::new(compile(&format!("{BASE}{METRICS}{SLOS}[stats]\nflush = \"1s\"\n"), &Options::default()).bundle.unwrap()).unwrap();
    let t0 = 1_700_000_000_000u64 * 1_000_000;
    let mut observer = Observer::new(engine.bundle(), 1, t0);
    for (i, (status, origin_ms)) in [(200u16, 20u64), (503, 250), (200, 90)].into_iter().enumerate() {
        let d = decide(&engine, "/checkout", &[]);
        let flight = Flight::new(d, "GET", t0);
        let seen = Observed { status, edge_ms: 1, origin_ms: Some(origin_ms), origin_error: None, failover: None, html: false, cache: None };
        observer.finish(&engine, &flight, &seen, Draws::default(), t0 + i as u64);
    }
    assert!(observer.take_stats(engine.bundle(), t0 + 500_000_000).is_none(), "not before `flush`");
    let bytes = observer.take_stats(engine.bundle(), t0 + 1_000_000_000).expect("a flush after 1 s");
    assert!(observer.take_stats(engine.bundle(), t0 + 3_000_000_000).is_none(), "nothing new to send");
    let flush = Flush::from_bytes(&bytes).unwrap();
    assert_eq!(flush.head.app, "shop");
    let mut fleet = Fleet::new();
    fleet.merge(flush);
    let text = fleet.prometheus(1_700_000_000_100);
    assert!(text.contains("edgeguard_fleet_requests_total{route=\"/checkout\",class=\"2xx\"} 2"), "{text}");
    assert!(text.contains("edgeguard_fleet_requests_total{route=\"/checkout\",class=\"5xx\"} 1"));
    assert!(text.contains("edgeguard_slo_bad_total{slo=\"api\",objective=\"availability\"} 1"));
    assert!(text.contains("edgeguard_slo_bad_total{slo=\"api\",objective=\"latency\"} 1"));
    // A flush the object did not take goes back and out with the next one.
    observer.restore_stats(engine.bundle(), &bytes);
    let again = Flush::from_bytes(&observer.take_stats(engine.bundle(), t0 + 3_000_000_000).unwrap()).unwrap();
    assert_eq!(again.rows.iter().map(|r| r.a.n).sum::<u64>(), 3);
}
