//! The worker's Rust half: the engine with the policy bundle embedded at build time, exported
//! to the JS shell (`js/shell.mjs`) through wasm-bindgen.
//!
//! The shell makes one call per request into wasm — request facts in, the decision out as one
//! compact JSON string — and keeps the Request/Response objects on the JS side, so the origin's
//! response streams through untouched. The route's static header set is fetched once per set
//! and cached by the shell. No policy logic lives in the shell: it performs what `decide` says.

use std::borrow::Cow;

use edgeguard_core::decision::{Action, OriginFailure};
use edgeguard_core::health::{Probe, report};
use edgeguard_core::{Draw, Engine, Limiter, Overrides, RequestFacts, headers};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

/// The bundle compiled from `EDGEGUARD_POLICY` by build.rs.
static BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/policy.egb"));

#[wasm_bindgen]
pub struct Edge {
    engine: Engine,
    limiter: Limiter,
}

/// The decision as the shell consumes it. Short keys: it crosses into JS on every request.
#[derive(Serialize)]
struct Wire<'a> {
    /// action
    a: &'static str,
    /// status of an edge answer
    s: Option<u16>,
    /// header set index
    h: u16,
    /// origin index
    o: Option<u16>,
    /// normalized path and query for the origin
    p: &'a str,
    /// client connection is https
    t: bool,
    /// request id
    r: &'a str,
    /// forwarded request headers
    f: Vec<(&'static str, String)>,
    /// per-request response headers (set)
    d: Vec<(&'static str, Cow<'a, str>)>,
    /// response headers to append (Set-Cookie)
    c: Vec<(&'static str, String)>,
    /// problem+json body of a refusal
    b: Option<String>,
    /// reason code, route and detail, for logs
    why: &'static str,
    route: Option<&'a str>,
    detail: &'a str,
}

#[derive(Serialize)]
struct WireHeaderSet<'a> {
    set: &'a [(String, String)],
    default: &'a [(String, String)],
    remove: &'a [String],
    hsts: Option<&'a str>,
    cache: Option<&'a str>,
}

#[derive(Serialize)]
struct WireOrigin<'a> {
    name: &'a str,
    url: &'a str,
    timeout_ms: u64,
}

#[derive(Serialize)]
struct WireInfo<'a> {
    revision: &'a str,
    app: &'a str,
    environment: &'a str,
    origins: Vec<WireOrigin<'a>>,
    active: u16,
    probe_path: Option<&'a str>,
    probe_timeout_ms: u64,
    health_cache_ms: u64,
    /// Request headers the shell removes before forwarding (plus any `x-forwarded-*`).
    strip: &'static [&'static str],
}

#[derive(Deserialize)]
struct WireProbe {
    origin: u16,
    status: Option<u16>,
    ms: u64,
    time: String,
    error: Option<String>,
}

fn js_error(message: impl core::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

#[wasm_bindgen]
impl Edge {
    /// Load the embedded bundle. `seed` keys the limiter's hash (pass a random number).
    #[wasm_bindgen(constructor)]
    pub fn new(seed: f64) -> Result<Edge, JsError> {
        let engine = Engine::load(BUNDLE).map_err(js_error)?;
        let limiter = engine.new_limiter(seed.to_bits());
        Ok(Edge { engine, limiter })
    }

    /// Apply the operational levers from worker vars. Empty strings mean "not set".
    pub fn configure(&mut self, active: &str, canary_percent: &str, shadow: bool) -> Result<(), JsError> {
        let active = match active.trim() {
            "" => None,
            name => Some(self.engine.origin_index(name).ok_or_else(|| js_error(format!("EDGE_ACTIVE_ORIGIN: no origin named `{name}`")))?),
        };
        let canary_basis_points = match canary_percent.trim() {
            "" => None,
            text => match text.parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Some((p * 100.0).round() as u32),
                _ => return Err(js_error(format!("EDGE_CANARY_PERCENT: `{text}` is not a number from 0 to 100"))),
            },
        };
        self.engine.set_overrides(Overrides { active, canary_basis_points, shadow });
        Ok(())
    }

    /// Static facts the shell needs once: origins, health settings, headers to strip.
    pub fn info(&self) -> String {
        let b = self.engine.bundle();
        let info = WireInfo {
            revision: &b.revision,
            app: &b.app.name,
            environment: &b.app.environment,
            origins: b.origins.iter().map(|o| WireOrigin { name: &o.name, url: &o.url, timeout_ms: o.timeout_ms }).collect(),
            active: self.engine.overrides().active.unwrap_or(b.deploy.active),
            probe_path: b.health.as_ref().map(|h| h.probe_path.as_str()),
            probe_timeout_ms: b.health.as_ref().map_or(2_000, |h| h.timeout_ms),
            health_cache_ms: b.health.as_ref().map_or(10_000, |h| h.cache_ms),
            strip: &edgeguard_core::engine::STRIPPED_REQUEST_HEADERS,
        };
        serde_json::to_string(&info).unwrap_or_default()
    }

    /// One header set as JSON, for the shell's cache.
    pub fn header_set(&self, index: u16) -> String {
        let Some(set) = self.engine.bundle().header_sets.get(usize::from(index)) else { return "null".into() };
        let wire = WireHeaderSet { set: &set.set, default: &set.default, remove: &set.remove, hsts: set.hsts.as_deref(), cache: set.cache.as_deref() };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Decide one request. `headers` is `name\nvalue\n…` (values cannot contain newlines);
    /// `now_ms` the clock; `r0..r3` a random 128-bit request id and `lane` a random draw.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(&mut self, method: &str, url: &str, headers: &str, now_ms: f64, r0: u32, r1: u32, r2: u32, r3: u32, lane: u32) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(24);
        let mut lines = headers.split('\n');
        while let (Some(name), Some(value)) = (lines.next(), lines.next()) {
            pairs.push((name, value));
        }
        let facts = RequestFacts { method, url, headers: &pairs, peer_ip: None };
        let request_id = (u128::from(r0) << 96) | (u128::from(r1) << 64) | (u128::from(r2) << 32) | u128::from(r3);
        let now = if now_ms.is_finite() && now_ms > 0.0 { (now_ms * 1_000_000.0) as u64 } else { 0 };
        let d = self.engine.decide(&facts, &mut self.limiter, now, Draw { request_id, lane });
        let bundle = self.engine.bundle();
        let wire = Wire {
            a: match d.action {
                Action::Forward => "forward",
                Action::Redirect => "redirect",
                Action::Respond => "respond",
                Action::Reject => "reject",
            },
            s: d.status,
            h: d.headers,
            o: d.origin,
            p: &d.path_and_query,
            t: d.https,
            r: &d.request_id,
            f: if d.action == Action::Forward { self.engine.forward_headers(&d) } else { Vec::new() },
            d: headers::dynamic(bundle, &d),
            c: headers::append(bundle, &d),
            b: d.problem_json(),
            why: d.shadowed.unwrap_or(d.reason).code(),
            route: self.engine.rule(&d).and_then(|r| r.pattern.as_deref()),
            detail: &d.detail,
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// The health answer from probe results (`[{origin, status, ms, time, error}]`):
    /// `{"status": 200|503, "body": "…"}`.
    pub fn health(&self, probes_json: &str) -> String {
        let probes: Vec<WireProbe> = serde_json::from_str(probes_json).unwrap_or_default();
        let probes: Vec<Probe> = probes
            .into_iter()
            .map(|p| Probe { origin: p.origin, status: p.status, millis: p.ms, time: p.time, error: p.error })
            .collect();
        let (status, body) = report(self.engine.bundle(), &probes);
        serde_json::json!({ "status": status, "body": body }).to_string()
    }

    /// Problem body for an origin that timed out (`"timeout"`, 504) or could not be reached
    /// (anything else, 502).
    pub fn origin_failure(&self, kind: &str, origin: &str, request_id: &str, path: &str) -> String {
        let failure = if kind == "timeout" { OriginFailure::Timeout } else { OriginFailure::Unreachable };
        failure.problem_json(origin, request_id, path)
    }

    /// Number of client keys the limiter holds (for metrics and soak tests).
    pub fn limiter_keys(&self) -> u32 {
        u32::try_from(self.limiter.len()).unwrap_or(u32::MAX)
    }
}
