//! The worker's Rust half: the engine, exported to the JS shell (`js/shell.mjs`) through
//! wasm-bindgen. The engine is the same bytes whatever the policy: the shell hands it the policy
//! bundle (a `Data` module wrangler uploads next to it, `policy.egb`) once per isolate, and a
//! bundle it cannot read makes the shell refuse every request (503 `edge-misconfigured`).
//!
//! The shell makes one call per request into wasm — request facts in, the decision out as one
//! compact JSON string — and keeps the Request/Response objects on the JS side, so the origin's
//! response streams through untouched. The route's static header set is fetched once per set
//! and cached by the shell. No policy logic lives in the shell: it performs what `decide` says.
//!
//! Observability (`[observe]`) follows each request from `decide` to `finish`: the decision is
//! kept here as a flight under the wire's token `k`, the shell reports what it saw (status,
//! durations, origin failure), and `finish` hands back the log line, the PostHog events and the
//! Analytics Engine data point for the shell to write — the shell decides none of them.

use std::borrow::Cow;

use std::collections::HashMap;

use edgeguard_core::decision::{Action, Decision, GlobalVerdict, OriginFailure};
use edgeguard_core::health::{Probe, report};
use edgeguard_core::limits::Outcome;
use edgeguard_core::observe::{Draws, Flight, Observed, Observer, short_revision};
use edgeguard_core::response::{self, Op};
use edgeguard_core::shadow::Shadow;
use edgeguard_core::{Draw, Engine, Limiter, Overrides, RequestFacts, csp};
use wasm_bindgen::prelude::*;

mod wire;
use wire::{
    Step, WireFinished, WireGlobal, WireInfo, WireNonce, WireObserve, WireOrigin, WireOutcome,
    WireProbe, WireSessionSource, session_ask_json,
};

/// What this engine is, in a custom section of its wasm (`edgeguard-engine`): the bundle format
/// it reads (u32 LE) and the edgeguard version, so `edgeguard doctor` can tell from the files
/// of a built worker whether its bundle will load, without running it.
#[cfg(target_arch = "wasm32")]
#[unsafe(link_section = "edgeguard-engine")]
#[used]
static ENGINE_SECTION: [u8; ENGINE_SECTION_LEN] = engine_section();

const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
const ENGINE_SECTION_LEN: usize = 4 + ENGINE_VERSION.len();

/// Evaluated by the compiler: an index out of range is a build error, never a runtime panic.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn engine_section() -> [u8; ENGINE_SECTION_LEN] {
    let mut out = [0u8; ENGINE_SECTION_LEN];
    let format = edgeguard_core::FORMAT_VERSION.to_le_bytes();
    let version = ENGINE_VERSION.as_bytes();
    let mut i = 0;
    while i < ENGINE_SECTION_LEN {
        out[i] = if i < 4 { format[i] } else { version[i - 4] };
        i += 1;
    }
    out
}

/// Runs once when the module is instantiated (`initSync`): a panic then writes its message to
/// the log before the isolate traps.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

#[wasm_bindgen]
pub struct Edge {
    engine: Engine,
    limiter: Limiter,
    /// Decisions waiting for a global limiter's answer, by flight token, with their random
    /// draw, the request and the shadow policy's decision to compare with once settled.
    pending: Tokens<Parked>,
    /// Requests between their decision and `finish`, by token (the wire's `k`: one token space
    /// for a request's whole life, `settle` included).
    flights: Tokens<Flight>,
    next_flight: u32,
    observer: Observer,
    /// The candidate policy of a shadow deployment (`edgeguard build --shadow`).
    shadow: Option<Shadow>,
    /// Request ids and draws (canary lane, log sampling, pageview sampling): wyrand seeded
    /// from the runtime's CSPRNG when the isolate starts. Unique and unbiased is all they need;
    /// drawing here saves a `crypto.getRandomValues` call per request.
    rng: fastrand::Rng,
    /// `finish` reads whether a forwarded response is HTML (PostHog pageviews are sent).
    wants_html: bool,
}

/// A decision waiting for the global limiter.
struct Parked {
    decision: Decision,
    draw: Draw,
    candidate: Option<Decision>,
    /// The request as `decide` got it: settling reads it again (a shadow policy's lane cookie).
    request: String,
}

/// Maps by flight token. Tokens are consecutive numbers: a multiply spreads them over the
/// table (std's SipHash, built against hash flooding, costs more than the lookup here, and no
/// client chooses a token).
type Tokens<V> = HashMap<u32, V, core::hash::BuildHasherDefault<TokenHasher>>;

#[derive(Default)]
struct TokenHasher(u64);

impl core::hash::Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Most requests followed at once. Beyond it, flights older than [`FLIGHT_MAX_AGE_NANOS`] are
/// forgotten (requests the shell never finished: unlogged, uncounted), and only if that is not
/// enough the oldest half, so memory stays bounded. A forgotten flight's response goes out
/// with the header set's operations only (`finish` answers "" for its token).
const MAX_FLIGHTS: usize = 10_000;

/// Longer than any request takes from `decide` to `finish`.
const FLIGHT_MAX_AGE_NANOS: u64 = 10 * 60 * 1_000_000_000;

/// Most decisions kept waiting for a global limiter; beyond it new requests settle at once as
/// "limiter unavailable" (their limit's `on_error` decides) instead of waiting.
const MAX_PENDING: usize = 10_000;

fn js_error(message: impl core::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

#[wasm_bindgen]
impl Edge {
    /// Load a policy bundle (`edgeguard compile`/`build` output). `seed` keys the limiter's hash
    /// (pass a random number). A bundle this engine cannot read is an error naming why.
    #[wasm_bindgen(constructor)]
    pub fn new(seed: f64, bundle: &[u8]) -> Result<Edge, JsError> {
        let engine = Engine::load(bundle).map_err(js_error)?;
        let limiter = engine.new_limiter(seed.to_bits());
        let observer = Observer::new(engine.bundle(), seed.to_bits().rotate_left(17), 0);
        let rng = fastrand::Rng::with_seed(seed.to_bits().rotate_left(31) ^ 0x9e37_79b9_7f4a_7c15);
        Ok(Edge {
            engine,
            limiter,
            pending: Tokens::default(),
            flights: Tokens::default(),
            next_flight: 0,
            observer,
            shadow: None,
            rng,
            wants_html: false,
        })
    }

    /// Load the candidate policy of a shadow deployment: it decides every request next to the
    /// active one and enforces nothing (edgeguard_core::shadow). Returns its short revision.
    pub fn load_shadow(&mut self, bundle: &[u8]) -> Result<String, JsError> {
        let mut shadow = Shadow::load(bundle, self.rng.u64(..)).map_err(js_error)?;
        shadow.follow_overrides(&self.engine);
        shadow.follow_health(&self.engine, self.engine.unhealthy());
        let revision = short_revision(shadow.engine().bundle()).to_owned();
        self.observer.set_shadow(&revision);
        self.shadow = Some(shadow);
        Ok(revision)
    }

    /// Apply the operational levers from worker vars. Empty strings mean "not set".
    /// `maintenance` (`EDGE_MAINTENANCE`) answers everyone outside `[maintenance]`'s allow-list
    /// 503; `maintenance_secret` (`EDGE_MAINTENANCE_SECRET`) is the bypass header's value.
    pub fn configure(
        &mut self,
        active: &str,
        canary_percent: &str,
        shadow: bool,
        maintenance: bool,
        maintenance_secret: &str,
    ) -> Result<(), JsError> {
        self.engine
            .set_maintenance_secret(Some(maintenance_secret.to_owned()));
        let active = match active.trim() {
            "" => None,
            name => Some(self.engine.origin_index(name).ok_or_else(|| {
                js_error(format!("EDGE_ACTIVE_ORIGIN: no origin named `{name}`"))
            })?),
        };
        let canary_basis_points = match canary_percent.trim() {
            "" => None,
            text => match text.parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Some((p * 100.0).round() as u32),
                _ => {
                    return Err(js_error(format!(
                        "EDGE_CANARY_PERCENT: `{text}` is not a number from 0 to 100"
                    )));
                }
            },
        };
        self.engine.set_overrides(Overrides {
            active,
            canary_basis_points,
            shadow,
            maintenance,
        });
        if let Some(candidate) = self.shadow.as_mut() {
            candidate.follow_overrides(&self.engine);
        }
        Ok(())
    }

    /// Static facts the shell needs once: origins, health settings, headers to strip.
    pub fn info(&self) -> String {
        let b = self.engine.bundle();
        let info = WireInfo {
            revision: &b.revision,
            app: &b.app.name,
            environment: &b.app.environment,
            origins: b
                .origins
                .iter()
                .map(|o| WireOrigin {
                    name: &o.name,
                    url: &o.url,
                    timeout_ms: o.timeout_ms,
                })
                .collect(),
            active: self.engine.overrides().active.unwrap_or(b.deploy.active),
            probe_path: b.health.as_ref().map(|h| h.probe_path.as_str()),
            probe_timeout_ms: b.health.as_ref().map_or(2_000, |h| h.timeout_ms),
            health_cache_ms: b.health.as_ref().map_or(10_000, |h| h.cache_ms),
            probe_max_bytes: edgeguard_core::health::MAX_BODY_BYTES,
            observe: WireObserve {
                log: b.observe.log.as_str(),
                posthog_host: b.observe.posthog.as_ref().map(|p| p.host.as_str()),
                csp_max_bytes: b
                    .observe
                    .csp
                    .as_ref()
                    .map_or(edgeguard_core::observe::DEFAULT_MAX_REPORT_BYTES, |c| {
                        c.max_bytes
                    }),
            },
            nonce: WireNonce {
                placeholder: csp::NONCE_PLACEHOLDER,
                attribute: csp::NONCE_ATTRIBUTE,
                selectors: &csp::NONCE_SELECTORS,
            },
            sessions: b
                .sessions
                .iter()
                .map(|s| WireSessionSource {
                    name: &s.name,
                    secret: s.secret.as_deref(),
                })
                .collect(),
            fallback: b.fallback.is_some(),
        };
        serde_json::to_string(&info).unwrap_or_default()
    }

    /// The operations of header set `index` (a step's `h`), flat `[code, name, value, …]`:
    /// the same for every response on its routes, so the shell asks once per set and keeps it.
    pub fn header_ops(&self, index: u16) -> String {
        let ops = response::static_ops(self.engine.bundle(), index);
        serde_json::to_string(&wire::flat(&ops).collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
    }

    /// Decide one request. `request` is `method\nurl\nname\nvalue\n…` — one string, so one
    /// copy into wasm (a method, a URL and header values cannot contain newlines); `cf` the
    /// facts of `request.cf`, `country\ncontinent\nasn\nverifiedBotCategory\nverified` ("" when
    /// the runtime gives none, as `wrangler dev` may); `now_ms` the clock.
    pub fn decide(&mut self, request: &str, cf: &str, now_ms: f64) -> String {
        let (method, url, pairs) = split_request(request);
        let facts = RequestFacts {
            method,
            url,
            headers: &pairs,
            peer_ip: None,
            cf: edgeguard_core::CfFacts::from_wire(cf),
        };
        let now = nanos(now_ms);
        let draw = Draw {
            request_id: self.rng.u128(..),
            lane: self.rng.u32(..),
        };
        let d = self.engine.decide(&facts, &mut self.limiter, now, draw);
        if let Some(ask) = d.session_ask() {
            return session_ask_json(ask);
        }
        let candidate = self.shadow.as_mut().map(|s| s.decide(&facts, now, draw));
        let stripped = self.stripped(&pairs);
        match d.global {
            Some(_) if self.pending.len() >= MAX_PENDING => {
                let d = self.engine.settle_global(
                    &mut self.limiter,
                    &facts,
                    d,
                    GlobalVerdict::Unavailable,
                    now,
                    draw,
                );
                let token = self.new_token(now);
                self.take_off(token, d, candidate, method, now, &stripped)
            }
            Some(g) => {
                let (token, global) = self.park(d.clone(), draw, candidate, g, request, now);
                self.step(&d, Some(global), token, None, &[])
            }
            None => {
                let token = self.new_token(now);
                self.take_off(token, d, candidate, method, now, &stripped)
            }
        }
    }

    /// The step after a global limit's count (a step with `a: "limit"`, token `token`).
    /// `answer` is the limiter's JSON (`{allowed, remaining, reset, retry_after}`) or empty
    /// when it failed or timed out. Returns "" for an unknown token (a shell bug: each token
    /// settles once).
    pub fn settle(&mut self, token: u32, answer: &str, now_ms: f64) -> String {
        let Some(Parked {
            decision: d,
            draw,
            candidate,
            request,
        }) = self.pending.remove(&token)
        else {
            return String::new();
        };
        let (method, url, pairs) = split_request(&request);
        // `request.cf` is not needed here: the geo and bot rules were applied in `decide`.
        let facts = RequestFacts {
            method,
            url,
            headers: &pairs,
            peer_ip: None,
            cf: edgeguard_core::CfFacts::NONE,
        };
        let verdict = match serde_json::from_str::<WireOutcome>(answer) {
            Ok(o) => GlobalVerdict::Answer(Outcome {
                allowed: o.allowed,
                remaining: o.remaining,
                reset_secs: o.reset,
                retry_after_secs: o.retry_after,
            }),
            Err(_) => GlobalVerdict::Unavailable,
        };
        let d =
            self.engine
                .settle_global(&mut self.limiter, &facts, d, verdict, nanos(now_ms), draw);
        let stripped = self.stripped(&pairs);
        self.take_off(token, d, candidate, method, nanos(now_ms), &stripped)
    }

    /// The HS256 key of session source `name`: the value of the worker secret its `secret`
    /// names (`info().sessions`). Unknown names are ignored.
    pub fn set_session_secret(&mut self, name: &str, secret: &str) {
        if let Some(index) = self.engine.session_source(name) {
            self.engine.sessions().set_secret(index, secret.as_bytes());
        }
    }

    /// The shell fetched a session source's JWKS (`decide`'s `j` ask): its text, or `None` when
    /// the fetch failed. Returns the number of usable keys.
    pub fn session_jwks(&mut self, source: u16, text: Option<String>, now_ms: f64) -> u32 {
        let n = self
            .engine
            .sessions()
            .set_jwks(source, text.as_deref(), secs(now_ms));
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The shell checked a signature (`decide`'s `v` ask) with WebCrypto.
    pub fn session_verified(&mut self, id: u32, valid: bool, now_ms: f64) {
        self.engine.session_verified(id, valid, nanos(now_ms));
    }

    /// Which outputs the shell has: a PostHog key (the `POSTHOG_KEY` secret) and the
    /// `EDGEGUARD_ANALYTICS` binding. `now_ms` starts the isolate's metrics clock.
    pub fn observe_setup(&mut self, posthog_key: bool, analytics_binding: bool, now_ms: f64) {
        let bundle = self.engine.bundle();
        self.observer
            .set_outputs(bundle, posthog_key, analytics_binding);
        self.wants_html = posthog_key
            && bundle
                .observe
                .posthog
                .as_ref()
                .is_some_and(|p| p.events & edgeguard_core::bundle::event::PAGEVIEW != 0);
        self.observer.set_started(nanos(now_ms));
    }

    /// A CSP report's body, read by the shell: `too_large` when it passed the intake's
    /// `csp_max_bytes` before its end. Returns the step to answer with (204, or a 400/413
    /// refusal); "" for an unknown token.
    pub fn csp_report(&mut self, token: u32, body: &[u8], too_large: bool, now_ms: f64) -> String {
        let Some(mut flight) = self.flights.remove(&token) else {
            return String::new();
        };
        let bundle = self.engine.bundle();
        self.observer.csp_body(
            bundle,
            &mut flight,
            (!too_large).then_some(body),
            nanos(now_ms),
        );
        let out = self.step(&flight.decision, None, token, None, &[]);
        self.flights.insert(token, flight);
        out
    }

    /// The body of flight `token`, sent without a length, passed its route's max_body while the
    /// shell streamed it (`sent`: part of it had gone to the origin): the step to answer with
    /// (413), and the flight logs it so. "" for an unknown token.
    pub fn body_too_large(&mut self, token: u32, sent: bool) -> String {
        let Some(mut flight) = self.flights.remove(&token) else {
            return String::new();
        };
        let max = self
            .engine
            .rule(&flight.decision)
            .and_then(|r| r.max_body)
            .unwrap_or(0);
        edgeguard_core::access::body_too_large(&mut flight.decision, max, sent);
        let out = self.step(&flight.decision, None, token, None, &[]);
        self.flights.insert(token, flight);
        out
    }

    /// This isolate's counters in Prometheus text format 0.0.4 (the metrics endpoint's body).
    pub fn metrics(&self) -> String {
        self.observer
            .render_metrics(self.engine.bundle(), self.limiter.len())
    }

    /// The request of flight `token` is being answered: `sent` describes the response
    /// (wire::Sent's line format: status, durations, origin failure, cache outcome, content
    /// type…). Returns the response phase for it — wire::Finished as JSON: the operations after
    /// the header set's, and when the origin failed the status and body the edge answers with
    /// instead — then a newline and what to write: nothing, the log line itself, or `+` and
    /// `{l, e, p}` (the log line, PostHog events without their key, the data point; each null
    /// when there is none). "" for an unknown token.
    pub fn finish(&mut self, token: u32, sent: &str, now_ms: f64) -> String {
        let Some(flight) = self.flights.remove(&token) else {
            return String::new();
        };
        let sent = wire::Sent::parse(sent);
        let bundle = self.engine.bundle();
        let d = &flight.decision;
        let failure = match sent.origin_error {
            "" => None,
            "timeout" => Some(OriginFailure::Timeout),
            _ => Some(OriginFailure::Unreachable),
        };
        // An origin failure with nothing sent in its place: the edge answers for the origin (a
        // stored copy that stands in is sent as the origin's, and logged with the failure).
        let (head, status) = match failure.filter(|_| !sent.from_origin) {
            Some(failure) => {
                // The origin asked last: the failover origin when the request failed over.
                let asked = if sent.failover.is_empty() {
                    d.origin
                } else {
                    d.failover.or(d.origin)
                };
                let origin = asked
                    .and_then(|o| bundle.origins.get(usize::from(o)))
                    .map_or("", |o| o.name.as_str());
                let down = response::origin_down(bundle, d, failure, origin);
                let mut head = wire::Finished::new(&down.ops);
                head.s = Some(down.status);
                head.fb = down.problem.is_none();
                head.b = down.problem.map(Cow::Owned);
                (head.to_json(), down.status)
            }
            None => {
                let facts = response::Sent {
                    status: sent.status,
                    from_origin: sent.from_origin,
                    content_type: sent.content_type,
                    content_encoding: sent.content_encoding,
                    head: sent.head,
                };
                let ops = response::ops(bundle, d, &facts);
                (wire::Finished::new(&ops).to_json(), sent.status)
            }
        };
        let essence = sent
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        let seen = Observed {
            cache: edgeguard_core::observe::cache_outcome(sent.cache),
            status,
            edge_ms: sent.edge_ms,
            origin_ms: sent.origin_ms,
            origin_error: failure,
            failover: Some(sent.failover).filter(|f| !f.is_empty()),
            html: d.action == Action::Forward && essence.eq_ignore_ascii_case("text/html"),
        };
        let draws = Draws {
            log: self.rng.u32(..),
            pageview: self.rng.u32(..),
        };
        let done = self
            .observer
            .finish(&self.engine, &flight, &seen, draws, nanos(now_ms));
        let mut out = head;
        out.push('\n');
        // The common case, a log line and nothing else, goes out as the line itself: no second
        // round of escaping here and no JSON.parse in the shell.
        if done.events.is_empty() && done.point.is_none() {
            out.push_str(done.log.as_deref().unwrap_or_default());
            return out;
        }
        let observed = WireFinished {
            l: done.log.as_deref(),
            e: (!done.events.is_empty()).then_some(done.events.as_slice()),
            p: done.point.as_ref(),
        };
        out.push('+');
        out.push_str(&serde_json::to_string(&observed).unwrap_or_default());
        out
    }

    /// A PostHog batch of `events` events settled: "ok", "status" (answered non-2xx),
    /// "timeout" or "error". Counted, never retried.
    pub fn posthog_result(&mut self, events: u32, result: &str) {
        self.observer.posthog_result(events, result);
    }

    /// A `writeDataPoint` call returned (`true`) or threw.
    pub fn analytics_result(&mut self, ok: bool) {
        self.observer.analytics_result(ok);
    }

    /// The Durable Object's side of a global limit: count one request for `key` (16 hex
    /// digits) under limit `limit` on this object's clock.
    pub fn global_check(&mut self, limit: u16, key: &str, now_ms: f64) -> String {
        let Ok(key) = u64::from_str_radix(key, 16) else {
            return String::new();
        };
        match self
            .engine
            .global_check(&mut self.limiter, limit, key, nanos(now_ms))
        {
            Some(o) => serde_json::to_string(&WireOutcome {
                allowed: o.allowed,
                remaining: o.remaining,
                reset: o.reset_secs,
                retry_after: o.retry_after_secs,
            })
            .unwrap_or_default(),
            None => String::new(),
        }
    }

    /// The state of a global limit's key (16 hex digits) after `global_check`, as decimal
    /// nanoseconds for the Durable Object to persist; "" when it holds none.
    pub fn global_state(&self, key: &str) -> String {
        u64::from_str_radix(key, 16)
            .ok()
            .and_then(|k| self.limiter.tat(k))
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// Put back the states a Durable Object persisted (`key\tstate\n…`, as `global_state` gave
    /// them), so its restart hands no client a fresh burst. States already over are skipped.
    /// Returns how many were restored.
    pub fn restore_global(&mut self, saved: &str, now_ms: f64) -> u32 {
        let now = nanos(now_ms);
        let mut restored = 0u32;
        for line in saved.lines() {
            let Some((key, tat)) = line.split_once('\t') else {
                continue;
            };
            let (Ok(key), Ok(tat)) = (u64::from_str_radix(key, 16), tat.parse::<u64>()) else {
                continue;
            };
            if tat > now {
                self.limiter.restore(key, tat, now);
                restored = restored.saturating_add(1);
            }
        }
        restored
    }

    /// Probe results feed routing: an origin whose last probe failed (no answer, or not
    /// 2xx/3xx) gets no canary traffic, and no active traffic while another origin is healthy.
    /// What its health answer says (dependencies, latency) is reported, not routed on.
    pub fn set_health(&mut self, probes_json: &str) {
        let probes: Vec<WireProbe> = serde_json::from_str(probes_json).unwrap_or_default();
        let mut mask = 0u64;
        for p in probes.into_iter().map(Probe::from) {
            if !p.passed() {
                mask |= 1u64 << (u32::from(p.origin) % 64);
            }
        }
        self.engine.set_unhealthy(mask);
        if let Some(candidate) = self.shadow.as_mut() {
            candidate.follow_health(&self.engine, mask);
        }
    }

    /// The health answer from probe results (`[{origin, status, ms, time, error, body,
    /// truncated}]`): `{"status": 200|503, "body": "…"}`. The origins' health answers are
    /// read here (edgeguard_core::health), not in the shell.
    pub fn health(&self, probes_json: &str) -> String {
        let probes: Vec<WireProbe> = serde_json::from_str(probes_json).unwrap_or_default();
        let probes: Vec<Probe> = probes.into_iter().map(Probe::from).collect();
        let (status, body) = report(self.engine.bundle(), &probes);
        serde_json::json!({ "status": status, "body": body }).to_string()
    }

    /// Whether an origin answer may be stored in the edge cache (edgeguard_core::cache::storable):
    /// the request headers it varies on, comma-separated ("" for none), or `!` and why not.
    /// A `Set-Cookie` the route's header set `h` removes does not count: no client gets it, and
    /// the stored copy is kept without it.
    pub fn storable(
        &self,
        h: u16,
        status: u16,
        cache_control: &str,
        set_cookie: bool,
        vary: &str,
    ) -> String {
        let removed = self
            .engine
            .bundle()
            .header_sets
            .get(usize::from(h))
            .is_some_and(|set| set.remove.iter().any(|n| n == "set-cookie"));
        match edgeguard_core::cache::storable(status, cache_control, set_cookie && !removed, vary) {
            edgeguard_core::cache::Storable::Yes { vary } => vary.join(","),
            edgeguard_core::cache::Storable::No(why) => format!("!{why}"),
        }
    }

    /// The fallback page (`[fallback]`), "" when the policy has none.
    pub fn fallback_page(&self) -> String {
        self.engine
            .bundle()
            .fallback
            .as_ref()
            .map(|f| f.html.clone())
            .unwrap_or_default()
    }

    /// The fleet statistics to flush (bytes for `EdgeguardStats.merge`), when `[stats] flush`
    /// has passed since the last take and requests were counted; empty otherwise.
    pub fn stats_take(&mut self, now_ms: f64) -> Vec<u8> {
        self.observer
            .take_stats(self.engine.bundle(), nanos(now_ms))
            .unwrap_or_default()
    }

    /// The worker has no `EDGEGUARD_STATS` binding: keep no statistics (nothing would flush them).
    pub fn stats_unbound(&mut self) {
        self.observer.stats_unbound();
    }

    /// A flush the fleet object did not take: merged back, so the next flush carries it.
    pub fn stats_restore(&mut self, flush: &[u8]) {
        self.observer.restore_stats(self.engine.bundle(), flush);
    }

    /// The `[alerts]` and `[stats]` settings the shell needs: `{stats, flush_ms}`.
    pub fn stats_info(&self) -> String {
        let b = self.engine.bundle();
        serde_json::json!({ "stats": b.stats.enabled, "flush_ms": b.stats.flush_ms, "dashboard": b.stats.dashboard }).to_string()
    }

    /// Number of client keys the limiter holds (for metrics and soak tests).
    pub fn limiter_keys(&self) -> u32 {
        u32::try_from(self.limiter.len()).unwrap_or(u32::MAX)
    }
}

/// The fleet statistics object's state (`EdgeguardStats`, one Durable Object for the whole
/// fleet): the merged numbers, the SLO alerts, Prometheus text and the dashboard. The object's
/// JS only moves bytes between this and its storage, and sends the notifications it is handed.
#[wasm_bindgen]
pub struct Fleet {
    fleet: edgeguard_core::stats::Fleet,
    /// The entries the last `take_dirty` collected, for `value`.
    dirty: Vec<(String, Vec<u8>)>,
}

#[wasm_bindgen]
impl Fleet {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Fleet {
        Fleet {
            fleet: edgeguard_core::stats::Fleet::new(),
            dirty: Vec::new(),
        }
    }

    /// Merge one isolate's flush; false when it is not one.
    pub fn merge(&mut self, flush: &[u8]) -> bool {
        match edgeguard_core::stats::Flush::from_bytes(flush) {
            Some(f) => {
                self.fleet.merge(f);
                true
            }
            None => false,
        }
    }

    /// Put back one stored entry (`take_dirty` wrote it).
    pub fn restore(&mut self, key: &str, value: &[u8]) -> bool {
        self.fleet.restore(key, value)
    }

    /// Collect the storage entries changed since the last call; returns their keys, one a
    /// line; `value(i)` hands the i-th entry's bytes.
    pub fn take_dirty(&mut self) -> String {
        self.dirty = self.fleet.take_dirty().into_iter().collect();
        self.dirty
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The bytes of the i-th entry `take_dirty` collected.
    pub fn value(&self, i: u32) -> Vec<u8> {
        self.dirty
            .get(i as usize)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Rows past their retention: the storage keys to delete, as a JSON array.
    pub fn prune(&mut self, now_ms: f64) -> String {
        serde_json::to_string(&self.fleet.prune(nanos(now_ms) / 1_000_000))
            .unwrap_or_else(|_| "[]".into())
    }

    /// Evaluate the alerts: `[{notice, slack, webhook, posthog}]` for each that fired or
    /// resolved, with the three bodies ready to send (the shell adds URLs, token and key).
    pub fn evaluate(&mut self, now_ms: f64) -> String {
        let now = nanos(now_ms) / 1_000_000;
        let out: Vec<serde_json::Value> = self
            .fleet
            .evaluate(now)
            .into_iter()
            .map(|n| {
                let color = if n.status == "firing" { "#cf222e" } else { "#2da44e" };
                let slack = serde_json::json!({
                    "text": n.summary,
                    "attachments": [{ "color": color, "fields": [
                        { "title": "SLO", "value": format!("{} ({})", n.slo, n.objective), "short": true },
                        { "title": "Severity", "value": n.severity, "short": true },
                        { "title": "Burn rate", "value": format!("{}× over {}, {}× over {}", n.burn_rate_long, n.long_window, n.burn_rate_short, n.short_window), "short": false },
                    ]}],
                });
                let posthog = serde_json::json!({
                    "event": "edgeguard_alert",
                    "distinct_id": format!("edgeguard:{}:{}", n.app, n.environment),
                    "timestamp": n.at,
                    "properties": serde_json::to_value(&n).unwrap_or_default(),
                });
                let webhook = serde_json::to_value(&n).unwrap_or_default();
                serde_json::json!({ "id": n.id, "status": n.status, "slack": slack, "webhook": webhook, "posthog": posthog })
            })
            .collect();
        serde_json::to_string(&out).unwrap_or_else(|_| "[]".into())
    }

    /// A notification was sent (`ok`) or failed (`failed`), or given up (`dropped`).
    pub fn notified(&mut self, destination: &str, result: &str) {
        self.fleet.notified(destination, result);
    }

    /// Whether the alarm should keep running: recent data, or an alert still firing.
    pub fn active(&self, now_ms: f64) -> bool {
        self.fleet.active(nanos(now_ms) / 1_000_000)
    }

    /// The bucket length the newest policy set (the alarm runs once per bucket, at most once a minute).
    pub fn bucket_ms(&self) -> f64 {
        self.fleet
            .head
            .as_ref()
            .map_or(60_000.0, |h| h.bucket_ms as f64)
    }

    /// The fleet's numbers in Prometheus text.
    pub fn prometheus(&self, now_ms: f64) -> String {
        self.fleet.prometheus(nanos(now_ms) / 1_000_000)
    }

    /// The dashboard page.
    pub fn dashboard(&self, now_ms: f64) -> String {
        edgeguard_core::dashboard::render(&self.fleet, nanos(now_ms) / 1_000_000)
    }

    /// `[alerts]` of the newest policy: `{slack_env, webhook_env, webhook_token_env, posthog}`.
    pub fn alerts(&self) -> String {
        self.fleet
            .head
            .as_ref()
            .map(|h| serde_json::to_string(&h.alerts).unwrap_or_default())
            .unwrap_or_else(|| "{}".into())
    }
}

impl Default for Fleet {
    fn default() -> Fleet {
        Fleet::new()
    }
}

/// The problem+json body of the answer to every request while the edge has no readable
/// policy (503 `edge-misconfigured`).
#[wasm_bindgen]
pub fn misconfigured(request_id: &str, path: &str) -> String {
    edgeguard_core::decision::misconfigured_problem(request_id, path)
}

/// `method\nurl\nname\nvalue\n…` → method, URL and header pairs, without copying. The
/// pieces are short: a plain byte scan beats the general pattern searcher here.
fn split_request(request: &str) -> (&str, &str, Vec<(&str, &str)>) {
    let mut rest = request;
    let mut next = move || -> Option<&str> {
        if rest.is_empty() {
            return None;
        }
        let end = rest.bytes().position(|b| b == b'\n').unwrap_or(rest.len());
        let piece = rest.get(..end).unwrap_or_default();
        rest = rest.get(end.saturating_add(1)..).unwrap_or_default();
        Some(piece)
    };
    let method = next().unwrap_or_default();
    let url = next().unwrap_or_default();
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(24);
    while let (Some(name), Some(value)) = (next(), next()) {
        pairs.push((name, value));
    }
    (method, url, pairs)
}

fn nanos(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        (ms * 1_000_000.0) as u64
    } else {
        0
    }
}

/// Whole seconds of a millisecond clock.
fn secs(ms: f64) -> u64 {
    nanos(ms) / 1_000_000_000
}

impl Edge {
    /// The names of the request's headers that are removed before forwarding (the engine's
    /// list and the policy's `strip_headers`), each once.
    fn stripped<'r>(&self, pairs: &[(&'r str, &'r str)]) -> Vec<&'r str> {
        let mut out: Vec<&'r str> = Vec::new();
        for (name, _) in pairs {
            if self.engine.strips_request_header(name) && !out.contains(name) {
                out.push(name);
            }
        }
        out
    }

    /// Keep a decision waiting for its global limit under a new flight token.
    fn park(
        &mut self,
        decision: Decision,
        draw: Draw,
        candidate: Option<Decision>,
        g: edgeguard_core::decision::GlobalCheck,
        request: &str,
        now: u64,
    ) -> (u32, WireGlobal) {
        let token = self.new_token(now);
        self.pending.insert(
            token,
            Parked {
                decision,
                draw,
                candidate,
                request: request.to_owned(),
            },
        );
        let limit = self.engine.bundle().limits.get(usize::from(g.limit));
        let global = WireGlobal {
            limit: g.limit,
            name: limit.map(|l| l.name.clone()).unwrap_or_default(),
            key: format!("{:016x}", g.key),
            shard: g.shard,
            cloudflare: g.cloudflare,
            window_secs: limit.map_or(60, |l| l.window_secs),
        };
        (token, global)
    }

    fn new_token(&mut self, now: u64) -> u32 {
        if self.flights.len() >= MAX_FLIGHTS {
            // Flights the shell never finished (a client gone mid-request) go first: no request
            // lives this long, so no answer still on its way loses its response phase.
            let cutoff = now.saturating_sub(FLIGHT_MAX_AGE_NANOS);
            self.flights.retain(|_, f| f.arrived >= cutoff);
        }
        if self.flights.len() >= MAX_FLIGHTS {
            let half = (MAX_FLIGHTS / 2) as u32;
            let keep_from = self.next_flight.wrapping_sub(half);
            self.flights.retain(|t, _| t.wrapping_sub(keep_from) < half);
        }
        let token = self.next_flight;
        self.next_flight = self.next_flight.wrapping_add(1);
        token
    }

    /// Follow a final decision as flight `token` until `finish`, and give its step with,
    /// when the shadow policy decided otherwise, the line that says so.
    fn take_off(
        &mut self,
        token: u32,
        d: Decision,
        candidate: Option<Decision>,
        method: &str,
        now: u64,
        stripped: &[&str],
    ) -> String {
        let disagreement = match (&self.shadow, candidate) {
            (Some(shadow), Some(c)) => {
                let found = shadow.compare(&self.engine, &d, &c, method, now);
                self.observer
                    .shadow_decided(found.as_ref().map(|x| (x.active_reason, x.shadow_reason)));
                found.map(|x| x.line)
            }
            _ => None,
        };
        let out = self.step(&d, None, token, disagreement, stripped);
        self.flights.insert(token, Flight::new(d, method, now));
        out
    }

    /// The step for decision `d`: `g` when it waits for a global limit.
    fn step(
        &self,
        d: &Decision,
        g: Option<WireGlobal>,
        k: u32,
        x: Option<String>,
        stripped: &[&str],
    ) -> String {
        let bundle = self.engine.bundle();
        let forward = d.action == Action::Forward;
        let set = bundle.header_sets.get(usize::from(d.headers));
        let step = Step {
            a: if g.is_some() {
                "limit"
            } else {
                d.action.code()
            },
            s: d.status,
            h: d.headers,
            o: d.origin,
            p: &d.path_and_query,
            r: &d.request_id,
            f: if forward && g.is_none() {
                self.forward_ops(d, stripped)
            } else {
                Vec::new()
            },
            b: d.problem_json(),
            fo: d.failover,
            mb: forward
                .then(|| self.engine.rule(d).and_then(|r| r.max_body))
                .flatten(),
            g,
            k,
            why: d.reason.code(),
            shadowed: d.shadowed.map(|r| r.code()),
            route: d
                .shadowed
                .and_then(|_| self.engine.rule(d))
                .and_then(|r| r.pattern.as_deref()),
            detail: d.shadowed.map(|_| d.detail.as_ref()),
            x,
            ck: match (&d.cache, d.action) {
                (Some(edgeguard_core::cache::Plan::Use { key, .. }), Action::Forward) => {
                    Some(key.as_str())
                }
                _ => None,
            },
            cl: d.cache.as_ref().filter(|_| forward).map(|p| {
                let r = p.rule();
                [r.edge_secs, r.swr_secs, r.sie_secs]
            }),
            cb: forward && matches!(d.cache, Some(edgeguard_core::cache::Plan::Bypass { .. })),
            fb: d.page && (forward || d.is_fallback_page()),
            ct: forward && (set.is_some_and(|s| s.strict.is_some()) || self.wants_html),
        };
        step.to_json()
    }

    /// The request headers' operations before forwarding: the client's forwarding and internal
    /// headers removed (those the request carries), then the edge's own set.
    fn forward_ops<'a>(&'a self, d: &'a Decision, stripped: &[&'a str]) -> Vec<Op<'a>> {
        let mut ops: Vec<Op<'a>> = stripped
            .iter()
            .map(|n| Op::Remove(Cow::Borrowed(*n)))
            .collect();
        ops.extend(
            self.engine
                .forward_headers(d)
                .into_iter()
                .map(|(n, v)| Op::Set(Cow::Borrowed(n), Cow::Owned(v))),
        );
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: f64 = 60_000.0;

    fn edge() -> Edge {
        let policy = "version = 1\n[app]\nname = \"t\"\n[origins.app]\nurl = \"https://t.fly.dev\"\n";
        let bundle = edgeguard_compiler::compile(policy, &Default::default()).bundle.expect("the policy compiles");
        let bytes = bundle.to_bytes().expect("the bundle encodes");
        match Edge::new(7.0, &bytes) {
            Ok(edge) => edge,
            Err(_) => panic!("the engine loads the bundle"),
        }
    }

    fn token(step: &str) -> u32 {
        let v: serde_json::Value = serde_json::from_str(step).expect("a step");
        v["k"].as_u64().and_then(|k| u32::try_from(k).ok()).expect("a token")
    }

    /// Flights the shell never finished make room for new ones by age: a request still on its
    /// way keeps its response phase however many were left behind after it.
    #[test]
    fn abandoned_flights_go_first() {
        let mut e = edge();
        let request = |ip: usize| format!("GET\nhttps://t.example/\nhost\nt.example\ncf-connecting-ip\n10.0.{}.{}\n", ip / 256 % 256, ip % 256);
        let waiting = token(&e.decide(&request(0), "", 9.0 * MINUTE_MS));
        for i in 1..MAX_FLIGHTS {
            e.decide(&request(i), "", 0.0);
        }
        let next = token(&e.decide(&request(1), "", 11.0 * MINUTE_MS));
        let sent = "200\n1\n2\n\n\n\n1\n\n";
        assert!(e.finish(waiting, sent, 11.0 * MINUTE_MS).starts_with("{\"o\":["), "the waiting request kept its flight");
        assert!(e.finish(next, sent, 11.0 * MINUTE_MS).starts_with("{\"o\":["));
        assert_eq!(e.flights.len(), 0, "the abandoned flights are gone");
    }
}
