//! The edge's health answer (draft-inadarei-api-health-check-06, `application/health+json`),
//! built from origin probe results the shell gathered, and the reading of each origin's own
//! health answer.
//!
//! The shell only does I/O: it fetches `probe_path` on every origin, reads at most
//! [`MAX_BODY_BYTES`] of the answer and hands status, latency and body text over. Everything
//! that judges them is here, so the CLI, the playground and the worker agree:
//!
//! - **The origin's check** (`origin:responseTime`, one entry per origin): `fail` when the probe
//!   got no answer, a status outside 2xx/3xx, or a 2xx whose body is not a JSON object (or is
//!   larger than [`MAX_BODY_BYTES`]); `warn` when it answered slower than `[health] warn_after`
//!   or the app reports itself degraded or unhealthy; `pass` otherwise. A 3xx is not followed
//!   and its body is not judged.
//! - **One check per dependency** the app reports under `checks` (QuoteKit's roadmap shape
//!   `{"status": "healthy", "checks": {"database": "healthy", …}}`, its current
//!   `{"checks": {"stripe": true, …}}`, objects with a `status`, and health+json's arrays of
//!   check objects), keyed by the app's own name, one entry per origin. Read from any answer
//!   that is JSON, a 503 included: an app that fails its health check usually says why.
//! - **The overall status**: `fail` (503) when no origin answers 2xx/3xx, the only case where
//!   the edge has nowhere to send traffic; otherwise `warn` (200) when any check is not `pass`
//!   (a dependency failing, a slow origin, a body that is not JSON), `pass` (200) when all are.
//!
//! Routing uses only [`Probe::passed`] (an answer, 2xx or 3xx): a failing dependency is shared
//! by every origin, so moving traffic between origins would not help, and a malformed health
//! body is no evidence that the app cannot serve pages.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::bundle::Bundle;

/// Most of an origin's health answer the edge reads. The shell stops reading there (and says
/// so with [`Probe::truncated`]); a longer answer is a `fail`, never parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Dependency checks reported per origin; the rest are counted in the origin check's output.
pub const MAX_DEPENDENCIES: usize = 32;
/// Longest dependency name, component id or type, and unit taken from an app's answer.
const MAX_NAME_CHARS: usize = 64;
/// Longest `output` (and string `observedValue`) taken from an app's answer.
const MAX_OUTPUT_CHARS: usize = 256;
/// The edge's own key for the origins' checks; an app check of that name is renamed.
const ORIGIN_KEY: &str = "origin:responseTime";
/// `[health] warn_after` when the policy leaves it out: QuoteKit's roadmap asks for a health
/// answer in under 100 ms.
pub const DEFAULT_WARN_AFTER_MS: u64 = 100;

/// One origin probe as the shell observed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probe {
    pub origin: u16,
    /// Status of the probe response, `None` when the origin did not answer.
    pub status: Option<u16>,
    /// From sending the probe to the end of reading its body.
    pub millis: u64,
    /// RFC 3339 time of the probe.
    pub time: String,
    /// Why the probe failed (timeout, connection error), if it did.
    pub error: Option<String>,
    /// The answer's body as text, at most [`MAX_BODY_BYTES`]; `None` when it was not read
    /// (then only the status and the latency are judged).
    pub body: Option<String>,
    /// The body went on past [`MAX_BODY_BYTES`].
    pub truncated: bool,
}

impl Probe {
    /// The origin answered 2xx or 3xx: it gets traffic. Only this feeds routing.
    pub fn passed(&self) -> bool {
        self.status.is_some_and(|s| (200..400).contains(&s))
    }
}

/// A check's status, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    /// A status word as apps write it: health+json's `pass`/`warn`/`fail`, QuoteKit's roadmap
    /// `healthy`/`degraded`/`unhealthy`/`critical`, and the usual `ok`/`up`/`down`/`error`.
    pub fn from_word(word: &str) -> Option<Status> {
        const PASS: [&str; 4] = ["pass", "ok", "up", "healthy"];
        const WARN: [&str; 3] = ["warn", "warning", "degraded"];
        const FAIL: [&str; 6] = ["fail", "down", "unhealthy", "critical", "error", "unavailable"];
        let word = word.trim();
        let is = |list: &[&str]| list.iter().any(|w| w.eq_ignore_ascii_case(word));
        if is(&PASS) {
            Some(Status::Pass)
        } else if is(&WARN) {
            Some(Status::Warn)
        } else if is(&FAIL) {
            Some(Status::Fail)
        } else {
            None
        }
    }
}

/// Why an origin's health answer could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    NotJson,
    NotAnObject,
}

impl core::fmt::Display for BodyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BodyError::TooLarge => write!(f, "health answer larger than {} KiB", MAX_BODY_BYTES / 1024),
            BodyError::NotJson => write!(f, "health answer is not JSON"),
            BodyError::NotAnObject => write!(f, "health answer is not a JSON object"),
        }
    }
}

/// One dependency as the app reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// The app's key under `checks` (`database`, `cassandra:responseTime`).
    pub name: String,
    pub status: Status,
    pub component_id: Option<String>,
    pub component_type: Option<String>,
    /// A number, boolean or short string, as the app gave it.
    pub observed_value: Option<Value>,
    pub observed_unit: Option<String>,
    pub output: Option<String>,
    pub time: Option<String>,
}

/// What an origin's health answer says about itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppHealth {
    /// The app's top-level `status`, when it is a known word.
    pub status: Option<Status>,
    /// The top-level `status` as the app wrote it (cut at 64 characters).
    pub status_word: Option<String>,
    pub dependencies: Vec<Dependency>,
    /// Dependency checks left out past [`MAX_DEPENDENCIES`].
    pub dropped: usize,
}

/// Reads an app's health answer. Never panics, whatever the input; answers over
/// [`MAX_BODY_BYTES`] are refused before parsing.
pub fn parse(body: &str) -> Result<AppHealth, BodyError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    // serde_json stops at 128 levels of nesting, so a deep body is an error, not a stack overflow.
    let value: Value = serde_json::from_str(body).map_err(|_| BodyError::NotJson)?;
    let Value::Object(top) = value else { return Err(BodyError::NotAnObject) };
    let mut app = AppHealth::default();
    if let Some(v) = top.get("status") {
        app.status = status_of(v);
        app.status_word = Some(clip(&scalar_text(v), MAX_NAME_CHARS));
    }
    if let Some(Value::Object(checks)) = top.get("checks") {
        for (key, value) in checks {
            let name = if key == ORIGIN_KEY { format!("app:{key}") } else { clip(key, MAX_NAME_CHARS) };
            match value {
                // health+json: a list of check objects (one per instance of the component).
                Value::Array(items) => {
                    for item in items {
                        if let Value::Object(o) = item {
                            push(&mut app, from_object(&name, o));
                        }
                    }
                }
                Value::Object(o) => push(&mut app, from_object(&name, o)),
                other => push(&mut app, from_word(&name, other)),
            }
        }
    }
    Ok(app)
}

fn push(app: &mut AppHealth, dep: Option<Dependency>) {
    let Some(dep) = dep else { return };
    if app.dependencies.len() < MAX_DEPENDENCIES {
        app.dependencies.push(dep);
    } else {
        app.dropped = app.dropped.saturating_add(1);
    }
}

/// `"healthy"`, `true`/`false` (QuoteKit: configured or not): a status and nothing else. A
/// string that is no status word is a `warn` naming it; numbers and nulls are not judged.
fn from_word(name: &str, v: &Value) -> Option<Dependency> {
    let (status, output) = match (status_of(v), v) {
        (Some(s), _) => (s, None),
        (None, Value::String(s)) => (Status::Warn, Some(format!("unrecognized status `{}`", clip(s, MAX_NAME_CHARS)))),
        _ => return None,
    };
    Some(Dependency { name: name.to_owned(), status, component_id: None, component_type: None, observed_value: None, observed_unit: None, output, time: None })
}

/// A check object: health+json's fields, plus `message`/`error` as the output. An object with
/// no `status` says nothing to judge and is left out.
fn from_object(name: &str, o: &Map<String, Value>) -> Option<Dependency> {
    let mut dep = from_word(name, o.get("status")?)?;
    let text = |k: &str, max: usize| o.get(k).and_then(Value::as_str).map(|s| clip(s, max));
    dep.component_id = text("componentId", MAX_NAME_CHARS);
    dep.component_type = text("componentType", MAX_NAME_CHARS);
    dep.observed_unit = text("observedUnit", MAX_NAME_CHARS);
    dep.time = text("time", MAX_NAME_CHARS);
    dep.observed_value = match o.get("observedValue") {
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.clone()),
        Some(Value::String(s)) => Some(Value::String(clip(s, MAX_OUTPUT_CHARS))),
        _ => None,
    };
    let output = ["output", "message", "error"].into_iter().find_map(|k| text(k, MAX_OUTPUT_CHARS)).filter(|s| !s.is_empty());
    dep.output = match (dep.output.take(), output) {
        (Some(a), Some(b)) => Some(format!("{a}: {b}")),
        (a, b) => a.or(b),
    };
    Some(dep)
}

fn status_of(v: &Value) -> Option<Status> {
    match v {
        Value::String(s) => Status::from_word(s),
        Value::Bool(true) => Some(Status::Pass),
        Value::Bool(false) => Some(Status::Fail),
        _ => None,
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(_) => "an object".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        other => other.to_string(),
    }
}

/// At most `max` characters of `s`, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", s.get(..at).unwrap_or_default()),
        None => s.to_owned(),
    }
}

/// An origin probe, judged: the origin's own check and the dependencies its answer reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub status: Status,
    pub output: Option<String>,
    pub dependencies: Vec<Dependency>,
}

/// Judges one probe (see the module documentation for the rules).
pub fn judge(probe: &Probe, warn_after_ms: u64) -> Judged {
    let mut findings: Vec<(Status, String)> = Vec::new();
    let mut dependencies = Vec::new();
    match probe.status {
        None => findings.push((Status::Fail, probe.error.clone().unwrap_or_else(|| "no answer".to_owned()))),
        Some(code) => {
            let ok = probe.passed();
            if !ok {
                findings.push((Status::Fail, format!("probe answered {code}")));
            }
            // 3xx: not followed, and a redirect's body says nothing about the app.
            let read_body = !(300..400).contains(&code);
            let parsed = match (&probe.body, read_body) {
                (Some(_), true) if probe.truncated => Some(Err(BodyError::TooLarge)),
                (Some(body), true) => Some(parse(body)),
                _ => None,
            };
            match parsed {
                // A failing answer that is not JSON (a proxy's error page) adds nothing to
                // "probe answered 5xx".
                Some(Err(e)) if ok => findings.push((Status::Fail, e.to_string())),
                Some(Err(_)) | None => {}
                Some(Ok(app)) => {
                    match (app.status, &app.status_word) {
                        (Some(Status::Warn | Status::Fail), Some(w)) if ok => findings.push((Status::Warn, format!("the app reports `{w}`"))),
                        (None, Some(w)) if ok => findings.push((Status::Warn, format!("the app reports an unrecognized status `{w}`"))),
                        _ => {}
                    }
                    if app.dropped > 0 {
                        findings.push((Status::Pass, format!("{} more dependency checks not reported", app.dropped)));
                    }
                    dependencies = app.dependencies;
                }
            }
            if probe.millis > warn_after_ms {
                findings.push((Status::Warn, format!("answered in {} ms, over the {warn_after_ms} ms threshold", probe.millis)));
            }
        }
    }
    let status = findings.iter().map(|(s, _)| *s).max().unwrap_or(Status::Pass);
    let output = (!findings.is_empty()).then(|| findings.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; "));
    Judged { status, output, dependencies }
}

#[derive(Serialize)]
struct Check<'a> {
    #[serde(rename = "componentId")]
    component_id: String,
    #[serde(rename = "componentType")]
    component_type: &'a str,
    #[serde(rename = "observedValue", skip_serializing_if = "Option::is_none")]
    observed_value: Option<Value>,
    #[serde(rename = "observedUnit", skip_serializing_if = "Option::is_none")]
    observed_unit: Option<&'a str>,
    status: Status,
    time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
}

#[derive(Serialize)]
struct Report<'a> {
    status: Status,
    version: &'static str,
    #[serde(rename = "releaseId")]
    release_id: &'a str,
    #[serde(rename = "serviceId")]
    service_id: &'a str,
    description: String,
    checks: BTreeMap<String, Vec<Check<'a>>>,
}

/// `(HTTP status, body)`: `fail` (503) when no origin answers (routing has nowhere to go),
/// `warn` (200) when one does but any check is not `pass`, `pass` (200) otherwise.
pub fn report(bundle: &Bundle, probes: &[Probe]) -> (u16, String) {
    let warn_after_ms = bundle.health.as_ref().map_or(DEFAULT_WARN_AFTER_MS, |h| h.warn_after_ms);
    let judged: Vec<Judged> = probes.iter().map(|p| judge(p, warn_after_ms)).collect();
    let mut checks: BTreeMap<String, Vec<Check<'_>>> = BTreeMap::new();
    let mut worst = Status::Pass;
    for (p, j) in probes.iter().zip(&judged) {
        let origin = bundle.origins.get(usize::from(p.origin)).map_or("?", |o| o.name.as_str());
        worst = worst.max(j.status);
        checks.entry(ORIGIN_KEY.to_owned()).or_default().push(Check {
            component_id: origin.to_owned(),
            component_type: "origin",
            observed_value: Some(Value::from(p.millis)),
            observed_unit: Some("ms"),
            status: j.status,
            time: &p.time,
            output: j.output.clone(),
        });
        for d in &j.dependencies {
            worst = worst.max(d.status);
            checks.entry(d.name.clone()).or_default().push(Check {
                // The origin that reported it: every origin reports the shared dependencies.
                component_id: match &d.component_id {
                    Some(id) => format!("{origin}/{id}"),
                    None => origin.to_owned(),
                },
                component_type: d.component_type.as_deref().unwrap_or("component"),
                observed_value: d.observed_value.clone(),
                observed_unit: d.observed_unit.as_deref(),
                status: d.status,
                time: d.time.as_deref().unwrap_or(&p.time),
                output: d.output.clone(),
            });
        }
    }
    let any_answer = probes.iter().any(Probe::passed);
    let status = if probes.is_empty() && bundle.origins.is_empty() {
        Status::Pass
    } else if !any_answer {
        Status::Fail
    } else if worst == Status::Pass {
        Status::Pass
    } else {
        Status::Warn
    };
    let report = Report {
        status,
        version: env!("CARGO_PKG_VERSION"),
        release_id: &bundle.revision,
        service_id: &bundle.app.name,
        description: format!("edgeguard edge for {} ({})", bundle.app.name, bundle.app.environment),
        checks,
    };
    let code = if status == Status::Fail { 503 } else { 200 };
    (code, serde_json::to_string(&report).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;

    fn probe(status: Option<u16>, millis: u64, body: Option<&str>) -> Probe {
        Probe { origin: 0, status, millis, time: "2026-12-07T10:00:00Z".into(), error: None, body: body.map(str::to_owned), truncated: false }
    }

    /// Sorted: the order of a JSON object's keys is serde_json's choice.
    fn statuses(app: &AppHealth) -> Vec<(&str, Status)> {
        let mut all: Vec<_> = app.dependencies.iter().map(|d| (d.name.as_str(), d.status)).collect();
        all.sort();
        all
    }

    #[test]
    fn roadmap_shape() {
        let app = parse(r#"{"status":"degraded","timestamp":"2026-12-07T10:00:00Z","checks":{"database":"healthy","stripe":"unhealthy","supabase":"healthy","memory":"degraded","disk":"critical"}}"#).unwrap();
        assert_eq!(app.status, Some(Status::Warn));
        assert_eq!(
            statuses(&app),
            [("database", Status::Pass), ("disk", Status::Fail), ("memory", Status::Warn), ("stripe", Status::Fail), ("supabase", Status::Pass)]
        );
    }

    #[test]
    fn quotekit_today_booleans_and_objects() {
        // QuoteKit's current /api/health: booleans for "configured".
        let app = parse(r#"{"status":"healthy","uptime":12.5,"memory":{"used":80},"checks":{"supabase":true,"stripe":false,"resend":true}}"#).unwrap();
        assert_eq!(app.status, Some(Status::Pass));
        assert_eq!(statuses(&app), [("resend", Status::Pass), ("stripe", Status::Fail), ("supabase", Status::Pass)]);
        let app = parse(r#"{"checks":{"database":{"status":"unhealthy","message":"connection refused","latency":3},"cache":{"latency":3},"queue":42}}"#).unwrap();
        assert_eq!(app.status, None);
        assert_eq!(statuses(&app), [("database", Status::Fail)], "objects without a status and numbers are not judged");
        assert_eq!(app.dependencies[0].output.as_deref(), Some("connection refused"));
    }

    #[test]
    fn health_json_shape() {
        let app = parse(
            r#"{"status":"warn","checks":{
                "cassandra:responseTime":[
                    {"componentId":"node-1","componentType":"datastore","observedValue":250,"observedUnit":"ms","status":"pass","time":"2026-12-07T09:59:59Z"},
                    {"componentId":"node-2","componentType":"datastore","observedValue":"slow","status":"warn","output":"over budget"}],
                "uptime":[{"componentType":"system","observedValue":1209600.245,"observedUnit":"s","status":"pass"}],
                "origin:responseTime":[{"status":"fail"}],
                "junk":[1,"x",null]}}"#,
        )
        .unwrap();
        assert_eq!(app.status, Some(Status::Warn));
        assert_eq!(
            statuses(&app),
            [("app:origin:responseTime", Status::Fail), ("cassandra:responseTime", Status::Pass), ("cassandra:responseTime", Status::Warn), ("uptime", Status::Pass)]
        );
        let node = app.dependencies.iter().find(|d| d.component_id.as_deref() == Some("node-1")).unwrap();
        assert_eq!((node.component_id.as_deref(), node.component_type.as_deref(), node.observed_unit.as_deref()), (Some("node-1"), Some("datastore"), Some("ms")));
        assert_eq!(node.observed_value, Some(Value::from(250)));
        assert!(app.dependencies.iter().any(|d| d.output.as_deref() == Some("over budget") && d.observed_value == Some(Value::from("slow"))));
    }

    #[test]
    fn unknown_words_warn_and_garbage_is_refused() {
        let app = parse(r#"{"status":"mostly fine","checks":{"db":"so-so"}}"#).unwrap();
        assert_eq!((app.status, app.status_word.as_deref()), (None, Some("mostly fine")));
        assert_eq!(app.dependencies[0].status, Status::Warn);
        assert_eq!(app.dependencies[0].output.as_deref(), Some("unrecognized status `so-so`"));
        for (body, err) in [
            ("OK", BodyError::NotJson),
            ("<html><body>Bad gateway</body></html>", BodyError::NotJson),
            ("", BodyError::NotJson),
            ("{\"status\":\"ok\"", BodyError::NotJson),
            ("[\"ok\"]", BodyError::NotAnObject),
            ("\"healthy\"", BodyError::NotAnObject),
            ("null", BodyError::NotAnObject),
        ] {
            assert_eq!(parse(body), Err(err), "{body}");
        }
        // Nesting deeper than serde_json's limit is an error, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse(&deep), Err(BodyError::NotJson));
    }

    #[test]
    fn bounded() {
        let huge = format!("{{\"status\":\"ok\",\"pad\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        assert_eq!(parse(&huge), Err(BodyError::TooLarge));
        let many: Vec<String> = (0..100).map(|i| format!("\"dep{i:03}\":\"ok\"")).collect();
        let app = parse(&format!("{{\"checks\":{{{}}}}}", many.join(","))).unwrap();
        assert_eq!((app.dependencies.len(), app.dropped), (MAX_DEPENDENCIES, 100 - MAX_DEPENDENCIES));
        let long = "é".repeat(1000);
        let app = parse(&format!("{{\"checks\":{{\"{long}\":{{\"status\":\"fail\",\"output\":\"{long}\"}}}}}}")).unwrap();
        assert_eq!(app.dependencies[0].name.chars().count(), MAX_NAME_CHARS + 1);
        assert_eq!(app.dependencies[0].output.as_ref().map(|o| o.chars().count()), Some(MAX_OUTPUT_CHARS + 1));
    }

    #[test]
    fn judging_a_probe() {
        let ok = r#"{"status":"healthy","checks":{"database":"healthy","stripe":"unhealthy"}}"#;
        let j = judge(&probe(Some(200), 12, Some(ok)), 100);
        assert_eq!((j.status, j.output.as_deref(), j.dependencies.len()), (Status::Pass, None, 2));
        let j = judge(&probe(Some(200), 150, Some(ok)), 100);
        assert_eq!((j.status, j.output.as_deref()), (Status::Warn, Some("answered in 150 ms, over the 100 ms threshold")));
        assert_eq!(judge(&probe(Some(200), 100, Some(ok)), 100).status, Status::Pass, "at the threshold is not over it");
        let j = judge(&probe(Some(200), 5, Some("OK")), 100);
        assert_eq!((j.status, j.output.as_deref()), (Status::Fail, Some("health answer is not JSON")));
        let mut cut = probe(Some(200), 5, Some("{"));
        cut.truncated = true;
        assert_eq!(judge(&cut, 100).output.as_deref(), Some("health answer larger than 64 KiB"));
        // A 503 with the app's reasons: fail, and the reasons are still reported.
        let j = judge(&probe(Some(503), 5, Some(r#"{"status":"unhealthy","checks":{"database":"unhealthy"}}"#)), 100);
        assert_eq!((j.status, j.output.as_deref(), j.dependencies.len()), (Status::Fail, Some("probe answered 503"), 1));
        let j = judge(&probe(Some(502), 5, Some("<html>bad gateway</html>")), 100);
        assert_eq!(j.output.as_deref(), Some("probe answered 502"));
        let j = judge(&probe(Some(200), 5, Some(r#"{"status":"degraded"}"#)), 100);
        assert_eq!((j.status, j.output.as_deref()), (Status::Warn, Some("the app reports `degraded`")));
        let j = judge(&probe(Some(200), 5, Some(r#"{"status":42}"#)), 100);
        assert_eq!((j.status, j.output.as_deref()), (Status::Warn, Some("the app reports an unrecognized status `42`")));
        // Not read, or a redirect: status and latency only.
        assert_eq!(judge(&probe(Some(200), 5, None), 100).status, Status::Pass);
        assert_eq!(judge(&probe(Some(308), 5, Some("")), 100).status, Status::Pass);
        let mut gone = probe(None, 500, None);
        gone.error = Some("no answer within 500 ms".into());
        let j = judge(&gone, 100);
        assert_eq!((j.status, j.output.as_deref()), (Status::Fail, Some("no answer within 500 ms")));
    }

    #[test]
    fn timing_turns_only_answered_origins_to_warn() {
        let mut p = probe(Some(503), 900, Some("{}"));
        let j = judge(&p, 100);
        assert_eq!((j.status, j.output.as_deref()), (Status::Fail, Some("probe answered 503; answered in 900 ms, over the 100 ms threshold")));
        p.status = None;
        assert_eq!(judge(&p, 100).status, Status::Fail);
    }

    // proptest needs threads, failure files and OS randomness: native runs only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        /// Any text, JSON-looking or not, is parsed or refused without a panic, and every
        /// probe built on it is judged.
        #[test]
        fn parse_never_panics(body in "[\\[\\]{}\":,a-z0-9 \\\\truefalsn\\x00-\\x1fé𝄞-]{0,400}") {
            let _ = parse(&body);
            let _ = judge(&probe(Some(200), 1, Some(&body)), 100);
        }

        /// Structurally valid JSON of any shape (nested maps and arrays, status words or not
        /// in any place) never panics either, and what it reports stays within the bounds.
        #[test]
        fn any_json_value(value in json_value()) {
            let text = value.to_string();
            if let Ok(app) = parse(&text) {
                prop_assert!(app.dependencies.len() <= MAX_DEPENDENCIES);
                for d in &app.dependencies {
                    prop_assert!(d.name.chars().count() <= MAX_NAME_CHARS + 1);
                }
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn json_value() -> impl Strategy<Value = Value> {
        let word = prop_oneof![
            Just("healthy"), Just("unhealthy"), Just("degraded"), Just("pass"), Just("warn"), Just("fail"), Just("status"), Just("checks"), Just("output"), Just("componentId"), Just("observedValue"), Just("x")
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            word.clone().prop_map(Value::from),
            ".{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((prop_oneof![word.clone().prop_map(str::to_owned), ".{0,8}"], inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }
}
