//! `decide`: the request pipeline of the design, in order, as one pure function of
//! (bundle, request facts, limiter state, now, random draw).

use core::net::IpAddr;
use std::borrow::Cow;

use crate::bundle::{ApiKey, Bundle, LimitKey, LoadError, Route, Scope, method};
use crate::decision::{Action, Client, Decision, Endpoint, GlobalCheck, GlobalVerdict, RateLimitState, Reason, RuleRef, reject};
use crate::limits::{Limiter, Nanos};
use crate::request::RequestFacts;
use crate::routes::{Match, ParamCheck};
use crate::sanitize::{self, Refusal};
use crate::{access, https, origins};
pub use crate::vocab::Overrides;

mod endpoints;

/// Randomness the shell draws once per request and passes in, keeping the engine pure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Draw {
    /// Used as the request id when no trusted one came with the request.
    pub request_id: u128,
    /// Uniform draw for the canary lane of a client without a lane cookie.
    pub lane: u32,
}


/// A loaded bundle with its regexes compiled: everything `decide` needs besides the request.
pub struct Engine {
    bundle: Bundle,
    regexes: Vec<regex_lite::Regex>,
    overrides: Overrides,
    /// Origins whose last health probe failed (bit per origin index).
    unhealthy: u64,
    /// Hashes global-limit keys identically in every isolate (seeded by the bundle revision).
    global_hasher: foldhash::quality::FixedState,
    /// `EDGE_MAINTENANCE_SECRET`: the value of `[maintenance] bypass_header` that lets a request
    /// through maintenance mode.
    maintenance_secret: Option<String>,
    /// Verified sessions: keys, remembered tokens, signature asks in flight.
    sessions: crate::sessions::Shared,
    /// Work out every request's bot category, not only where a `bots` rule needs it (`explain`,
    /// `test` and the playground report it; the worker leaves it off).
    report_client: bool,
}

impl ParamCheck for Vec<regex_lite::Regex> {
    fn regex_matches(&self, index: u16, value: &str) -> bool {
        self.get(usize::from(index)).is_some_and(|re| re.is_match(value))
    }
}

impl Engine {
    /// Decode bundle bytes and prepare them for matching.
    pub fn load(bytes: &[u8]) -> Result<Engine, LoadError> {
        Engine::new(Bundle::from_bytes(bytes)?)
    }

    pub fn new(bundle: Bundle) -> Result<Engine, LoadError> {
        let regexes = bundle
            .matcher
            .regexes
            .iter()
            .map(|src| regex_lite::Regex::new(src).map_err(|e| LoadError::BadRegex(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let seed = bundle.revision.bytes().take(16).fold(0u64, |acc, b| acc.rotate_left(5) ^ u64::from(b));
        let global_hasher = foldhash::quality::FixedState::with_seed(seed);
        let sessions = std::sync::Mutex::new(crate::sessions::Sessions::new(bundle.sessions.len(), crate::sessions::seed(seed)));
        Ok(Engine { bundle, regexes, overrides: Overrides::default(), unhealthy: 0, global_hasher, maintenance_secret: None, sessions, report_client: false })
    }

    /// The session state, for the host's answers (`set_secret`, `set_jwks`, `verified`).
    pub fn sessions(&mut self) -> &mut crate::sessions::Sessions {
        self.sessions.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The test clock's Unix time at engine time 0 (`Sessions::accept_test_tokens`).
    pub fn session_clock_base(&self) -> u64 {
        self.sessions.lock().map_or(0, |s| s.clock_base())
    }

    /// The index of a `[sessions.<name>]` source.
    pub fn session_source(&self, name: &str) -> Option<u16> {
        self.bundle.sessions.iter().position(|s| s.name == name).and_then(|i| u16::try_from(i).ok())
    }

    /// Hand the host's answer to a signature ask to the session state.
    pub fn session_verified(&mut self, id: u32, valid: bool, now: Nanos) {
        let secs = now / 1_000_000_000;
        self.sessions.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).verified(id, valid, &self.bundle.sessions, secs);
    }

    /// The session a route (or its limit) reads, resolved against the request.
    fn session(&self, route: &Route, req: &RequestFacts, now: Nanos) -> Option<crate::decision::SessionFact> {
        let b = &self.bundle;
        let source = route.require_session.as_ref().map(|r| r.source).or_else(|| {
            route.limit.and_then(|i| b.limits.get(usize::from(i))).and_then(|l| l.session).map(|k| k.source)
        })?;
        let mut state = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let resolved = state.resolve(&b.sessions, source, req, now / 1_000_000_000);
        Some(crate::decision::SessionFact { source, resolved })
    }

    /// The secret that lets a request through maintenance mode in `[maintenance] bypass_header`
    /// (the worker secret `EDGE_MAINTENANCE_SECRET`); empty or `None`: no bypass by header.
    pub fn set_maintenance_secret(&mut self, secret: Option<String>) {
        self.maintenance_secret = secret.filter(|s| !s.is_empty());
    }

    pub fn maintenance_secret(&self) -> Option<&str> {
        self.maintenance_secret.as_deref()
    }

    /// Classify every request's client for the report (`explain`, `test`, the playground),
    /// including on routes without a `bots` rule. Decisions are the same either way.
    pub fn set_report_client(&mut self, on: bool) {
        self.report_client = on;
    }

    /// Apply operational overrides (see [`Overrides`]).
    pub fn set_overrides(&mut self, overrides: Overrides) {
        self.overrides = overrides;
    }

    pub fn overrides(&self) -> Overrides {
        self.overrides
    }

    /// Record probe results: routing skips an origin whose last probe failed while another is
    /// healthy.
    pub fn set_unhealthy(&mut self, mask: u64) {
        self.unhealthy = mask;
    }

    pub fn unhealthy(&self) -> u64 {
        self.unhealthy
    }

    /// Index of an origin by name.
    pub fn origin_index(&self, name: &str) -> Option<u16> {
        self.bundle.origins.iter().position(|o| o.name == name).and_then(|i| u16::try_from(i).ok())
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// A limiter sized by the bundle's `[limiter] max_keys`.
    pub fn new_limiter(&self, seed: u64) -> Limiter {
        Limiter::new(self.bundle.limiter.max_keys, seed)
    }

    /// The rule a decision was made under (`None` when refused before routing).
    pub fn rule(&self, d: &Decision) -> Option<&Route> {
        match d.rule {
            RuleRef::None => None,
            RuleRef::Defaults => Some(&self.bundle.defaults),
            RuleRef::Route(i) => self.bundle.routes.get(i as usize),
        }
    }


    /// Whether a client-sent request header must not reach the origin: the engine's list and the
    /// policy's `[sanitize] strip_headers`.
    pub fn strips_request_header(&self, name: &str) -> bool {
        is_stripped_request_header(name) || self.bundle.sanitize.strip_headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Headers set on the request forwarded to the origin (the client's own `X-Forwarded-*`,
    /// `X-Real-IP`, `Forwarded` and `X-Request-Id` are removed first, see
    /// [`STRIPPED_REQUEST_HEADERS`]).
    pub fn forward_headers(&self, d: &Decision) -> Vec<(&'static str, String)> {
        let proto = if d.https { "https" } else { "http" };
        let mut out = Vec::with_capacity(6);
        // `Forwarded: for=…;host="…";proto=…` (RFC 7239; an IPv6 address quoted in brackets).
        let mut forwarded = String::with_capacity(d.host.len().saturating_add(48));
        if let Some(ip) = d.client_ip {
            let text = ip_text(ip);
            forwarded.push_str(if ip.is_ipv6() { "for=\"[" } else { "for=" });
            forwarded.push_str(&text);
            forwarded.push_str(if ip.is_ipv6() { "]\";" } else { ";" });
            out.push(("x-forwarded-for", text.clone()));
            out.push(("x-real-ip", text));
        }
        forwarded.push_str("host=\"");
        forwarded.push_str(&d.host);
        forwarded.push_str("\";proto=");
        forwarded.push_str(proto);
        out.push(("x-forwarded-proto", proto.to_owned()));
        out.push(("x-forwarded-host", d.host.clone()));
        out.push(("forwarded", forwarded));
        out.push(("x-request-id", d.request_id.clone()));
        out
    }

    /// Run the request pipeline.
    pub fn decide(&self, req: &RequestFacts, limiter: &mut Limiter, now: Nanos, draw: Draw) -> Decision {
        let b = &self.bundle;
        let d = Decision {
            action: Action::Forward,
            status: None,
            reason: Reason::Ok,
            rule: RuleRef::None,
            origin: None,
            location: None,
            https: false,
            host: String::new(),
            path_and_query: String::from("/"),
            client_ip: self.client_ip(req),
            request_id: self.request_id(req, draw),
            rate_limit: None,
            allow: None,
            set_lane_cookie: false,
            headers: b.defaults.headers,
            shadowed: None,
            global: None,
            failover: None,
            lane: None,
            endpoint: None,
            cache: None,
            page: b.fallback.is_some() && crate::cache::wants_page(req),
            detail: Cow::Borrowed(FORWARDED),
            session: None,
            client: Client { country: geo_code(req.cf.country), continent: geo_code(req.cf.continent), asn: req.cf.asn, ..Client::default() },
        };
        let d = self.pipeline(req, limiter, now, draw, d);
        if self.overrides.shadow && d.action == Action::Reject && is_policy_refusal(d.reason) && d.endpoint.is_none() {
            return self.shadow_forward(req, draw, d);
        }
        d
    }

    /// Global shadow mode: forward what the policy's rules would have refused, saying why.
    fn shadow_forward(&self, req: &RequestFacts, draw: Draw, mut d: Decision) -> Decision {
        let route = self.rule(&d).unwrap_or(&self.bundle.defaults);
        let (origin, set_cookie, lane) = origins::choose(&self.bundle, &self.overrides, self.unhealthy, route, req, draw.lane);
        d.lane = Some(lane);
        d.failover = self.failover_target(route, req.method, origin);
        d.shadowed = Some(d.reason);
        d.detail = Cow::Owned(format!("shadow mode: forwarded, but the policy would have refused it ({}: {})", d.reason.code(), d.detail));
        d.action = Action::Forward;
        d.status = None;
        d.reason = Reason::Ok;
        d.allow = None;
        d.origin = origin;
        d.set_lane_cookie = set_cookie;
        d
    }

    /// The stages in their order (numbered as docs/explain.md numbers them). Longer than a
    /// function should be, on purpose: each stage is a few lines handing off to its module, and
    /// the order — which refusal wins, what the shield counts first — reads top to bottom here
    /// and nowhere else.
    fn pipeline(&self, req: &RequestFacts, limiter: &mut Limiter, now: Nanos, draw: Draw, mut d: Decision) -> Decision {
        let b = &self.bundle;

        // 1. sanitize
        let checked = sanitize::check_request(req, &b.sanitize).and_then(|()| sanitize::normalize_target(req.url));
        let target = match checked {
            Ok(t) => t,
            Err(refusal) => {
                if let Some(path) = req.url.split(['?', '#']).next().filter(|p| p.starts_with('/')) {
                    d.path_and_query = path.chars().take(256).collect();
                }
                // A malformed target is often a probe (`/..%2f..`): the shield counts it first.
                if self.shield_step(req, limiter, now, &mut d) {
                    return self.shield_refusal(d);
                }
                return match refusal {
                    Refusal::BadRequest(why) => reject(d, Reason::BadRequest, 400, Cow::Borrowed(why)),
                    Refusal::UriTooLong => reject(d, Reason::UriTooLong, 414, Cow::Borrowed("the request target is too long")),
                    Refusal::HeadersTooLarge => {
                        reject(d, Reason::HeadersTooLarge, 431, Cow::Borrowed("the request headers are too large or too many"))
                    }
                };
            }
        };
        d.https = target.https.unwrap_or(false);
        d.path_and_query = target.path_and_query();

        // 2. host
        let Some(host) = target.authority.or_else(|| req.header("host")).and_then(sanitize::normalize_host) else {
            return reject(d, Reason::BadRequest, 400, Cow::Borrowed("the request has no valid Host"));
        };
        d.host = host;
        if !b.app.hosts.is_empty() && !b.app.hosts.contains(&d.host) {
            let detail = format!("`{}` is not a host this edge serves", d.host);
            return reject(d, Reason::HostNotAllowed, 421, Cow::Owned(detail));
        }

        // 2b. shield: a suspended client is refused whatever it asks for
        if self.shield_step(req, limiter, now, &mut d) {
            return self.shield_refusal(d);
        }

        // 3. health
        if let Some(health) = b.health.as_ref().filter(|h| h.path == target.path) {
            d.headers = health.headers;
            d.endpoint = Some(Endpoint::Health);
            if !matches!(req.method, "GET" | "HEAD") {
                d.allow = Some(method::GET | method::HEAD);
                return reject(d, Reason::MethodNotAllowed, 405, Cow::Borrowed("the health endpoint answers GET and HEAD"));
            }
            d.action = Action::Respond;
            d.status = Some(200);
            d.reason = Reason::Health;
            d.detail = Cow::Borrowed("answered by the edge's health endpoint");
            return d;
        }

        // 3b. the CSP report intake and the metrics endpoint (observe); never forwarded
        if let Some(intake) = b.observe.csp.as_ref().filter(|c| c.paths.contains(&target.path)) {
            return self.csp_report_step(req, limiter, now, intake, d);
        }
        if let Some(metrics) = b.observe.metrics.as_ref().filter(|m| m.path == target.path) {
            return self.metrics_step(req, limiter, now, metrics, d, false);
        }
        if let Some(metrics) = b.observe.metrics.as_ref().filter(|_| b.stats.dashboard.as_deref() == Some(target.path.as_str())) {
            return self.metrics_step(req, limiter, now, metrics, d, true);
        }

        // 3c. maintenance mode: after the edge's own endpoints (monitors still see its health)
        if self.overrides.maintenance && !crate::cache::maintenance_allows(&b.maintenance, req, d.client_ip, self.maintenance_secret.as_deref()) {
            return reject(d, Reason::Maintenance, 503, Cow::Borrowed("the site is down for planned maintenance; retry later"));
        }

        // 4. https, then canonical host
        if let Some((reason, status, location)) = https::redirect(b, d.https, &d.host, req.method, &d.path_and_query) {
            d.action = Action::Redirect;
            d.status = Some(status);
            d.reason = reason;
            d.detail = Cow::Owned(match reason {
                Reason::HttpsRedirect => "plain http is redirected to https on the same host".to_owned(),
                _ => format!("`{}` redirects to the canonical host", d.host),
            });
            d.location = Some(location);
            return d;
        }

        // 5. route
        let segments = target.segments();
        let (rule, route) = match b.matcher.find(&segments, &self.regexes) {
            Match::Route(i) => (RuleRef::Route(i), b.routes.get(i as usize)),
            Match::ParamMismatch(i) => {
                d.rule = RuleRef::Route(i);
                if let Some(r) = b.routes.get(i as usize) {
                    d.headers = r.headers;
                }
                return reject(d, Reason::NotFound, 404, Cow::Borrowed("a path parameter does not have this route's type"));
            }
            Match::None => (RuleRef::Defaults, Some(&b.defaults)),
        };
        let route = route.unwrap_or(&b.defaults);
        d.rule = rule;
        d.headers = route.headers;
        if let Some(status) = route.block {
            return reject(d, Reason::Blocked, status, Cow::Borrowed("this route is blocked at the edge in this environment"));
        }
        if method::bit(req.method) & route.methods == 0 {
            d.allow = Some(route.methods);
            let detail = format!("{} is not allowed here", req.method);
            return reject(d, Reason::MethodNotAllowed, 405, Cow::Owned(detail));
        }

        // 6a. bots, 6b. geo
        let mut bot_limit = None;
        if !route.bots.is_open() || self.report_client {
            let ua = req.header("user-agent");
            let browser = match d.client.browser {
                Some(known) => known,
                None => ua.is_some_and(|u| crate::bots::looks_like_browser(u.trim().as_bytes())),
            };
            let bot = crate::bots::classify_known(ua, browser, &req.cf);
            d.client.bot = Some(bot);
            match route.bots.action(bot.category) {
                crate::bots::BotAction::Allow => {}
                crate::bots::BotAction::Deny => {
                    let detail = match (bot.claimed, bot.category) {
                        (Some(claimed), _) => format!(
                            "this route does not serve unknown automated clients; the user agent claims {} but Cloudflare did not verify it",
                            claimed.code()
                        ),
                        (None, category) => format!("this route does not serve clients of the bot category `{}`", category.code()),
                    };
                    return reject(d, Reason::BotDenied, 403, Cow::Owned(detail));
                }
                crate::bots::BotAction::Limit(i) => bot_limit = Some(i),
            }
        }
        if (route.geo_allow.is_some() || route.geo_deny.is_some())
            && let Err(detail) = crate::geo::check(route.geo_allow.as_ref(), route.geo_deny.as_ref(), &req.cf)
        {
            return reject(d, Reason::GeoDenied, 403, Cow::Owned(detail));
        }


        // 6. access. The session first: an ask for the host (a key set, a signature) must come
        // before anything is counted, as the request is decided again with the answer.
        d.session = self.session(route, req, now);
        if d.session_ask().is_some() {
            return reject(d, Reason::SessionUnavailable, 503, Cow::Borrowed("the session is being verified (the host answers the engine's ask, then the request is decided again)"));
        }
        let client_ip = d.client_ip;
        let mut failures = None;
        let session = d.session.as_ref().map(|f| &f.resolved);
        if let Err((reason, status, detail)) = access::check(b, route, req, client_ip, session, |_, key| self.key_gate(key, req, client_ip, limiter, now, &mut failures)) {
            d.rate_limit = failures;
            return reject(d, reason, status, Cow::Owned(detail));
        }
        let session = match &d.session {
            Some(crate::decision::SessionFact { resolved: crate::sessions::Resolved::Verified(s), .. }) => Some(std::sync::Arc::clone(s)),
            _ => None,
        };

        // 7. limits (a bot category's own limit stands in for the route's)
        let limit_index = bot_limit.or(route.limit);
        if let Some((index, limit)) = limit_index
            .and_then(|i| b.limits.get(usize::from(i)).map(|l| (i, l)))
            .filter(|(_, l)| crate::geo::limit_applies(l.geo.as_ref(), &req.cf))
        {
            if limit.scope == Scope::Local {
                let hash = self.limit_key_hash(|parts| limiter.key_hash_parts(index, parts), limit.key, limit.key_name.as_deref(), req, d.client_ip, rule, session_claim(limit, session.as_deref()));
                let outcome = limiter.check(limit, hash, now);
                if let Some(refused) = self.apply_outcome(&mut d, index, outcome) {
                    return refused;
                }
            } else {
                let hash = self.limit_key_hash(|parts| self.global_hash(index, parts), limit.key, limit.key_name.as_deref(), req, d.client_ip, rule, session_claim(limit, session.as_deref()));
                match limiter.known_refusal(hash, now) {
                    // Refused by the global limiter moments ago: answer here, no round trip.
                    Some(wait) if !limit.shadow => {
                        let secs = crate::limits::ceil_secs(wait).max(1);
                        let outcome = crate::limits::Outcome { allowed: false, remaining: 0, reset_secs: secs, retry_after_secs: secs };
                        if let Some(refused) = self.apply_outcome(&mut d, index, outcome) {
                            return refused;
                        }
                    }
                    _ => {
                        let shards = u64::from(b.limiter.global_shards.max(1));
                        d.global = Some(GlobalCheck {
                            limit: index,
                            key: hash,
                            shard: u32::try_from(hash.checked_rem(shards).unwrap_or(0)).unwrap_or(0),
                            cloudflare: limit.scope == Scope::Cloudflare,
                        });
                    }
                }
            }
        }

        // 8. forward
        let (origin, set_cookie, lane) = origins::choose(b, &self.overrides, self.unhealthy, route, req, draw.lane);
        d.origin = origin;
        d.lane = Some(lane);
        d.failover = self.failover_target(route, req.method, origin);
        d.set_lane_cookie = set_cookie;
        d.cache = crate::cache::plan(b, route, req, &d.host, &d.path_and_query);
        if d.rate_limit.is_some_and(|r| r.shadow_refused) {
            d.detail = Cow::Borrowed("forwarded; a shadow-mode limit would have refused it");
        }
        if d.client.shield_shadowed {
            d.detail = Cow::Borrowed("forwarded; the shield (shadow mode) would have suspended this client");
        }
        d
    }

    /// Stage 2b: count this request against the client's suspicion budget. `true` when the
    /// client is suspended and the shield enforces (shadow mode only marks the decision).
    fn shield_step(&self, req: &RequestFacts, limiter: &mut Limiter, now: Nanos, d: &mut Decision) -> bool {
        let Some(shield) = self.bundle.shield.as_ref() else { return false };
        let ua = req.header("user-agent");
        let scan = ua.map(|u| crate::bots::scan_user_agent(u.trim().as_bytes()));
        let browser = scan.is_some_and(|s| s.browser);
        d.client.browser = Some(browser);
        let hit = crate::shield::inspect_parts(shield, req.url, ua.zip(scan.map(|s| s.suspect)), req.header("referer"), browser);
        let client = d.client_ip.map(|ip| client_key(ip, self.bundle.client_ip.ipv6_prefix));
        let key = limiter.shield_hash(client.as_ref().map_or(b"unknown", ClientKey::as_bytes));
        let standing = limiter.shield.observe(key, hit.is_some(), shield, now);
        d.client.suspicion = Some(standing);
        d.client.signature = hit;
        if standing.suspended_for == 0 {
            return false;
        }
        if !shield.enforce {
            d.client.shield_shadowed = true;
            d.shadowed = Some(Reason::ShieldBlocked);
            return false;
        }
        true
    }

    fn shield_refusal(&self, d: Decision) -> Decision {
        let (threshold, window, wait) = match (&self.bundle.shield, d.client.suspicion) {
            (Some(s), Some(st)) => (s.threshold, s.window_secs, st.suspended_for),
            _ => (0, 0, 0),
        };
        let status = self.bundle.shield.as_ref().map_or(403, |s| s.status);
        let detail = format!(
            "this client sent {threshold} requests for paths or payloads no application serves within {window} s and is refused for {wait} s"
        );
        reject(d, Reason::ShieldBlocked, status, Cow::Owned(detail))
    }

    /// An API key presented for `key`: 401 when it is not one of the accepted ones, and each such
    /// failure counted against the key's failure limit per client; past that limit, 429 until the
    /// client recovers — checked before the key, so a locked-out client learns nothing from a
    /// right guess either. `failures` gets the limit's state for the RateLimit headers of a 429.
    pub(crate) fn key_gate(
        &self,
        key: &ApiKey,
        req: &RequestFacts,
        client_ip: Option<IpAddr>,
        limiter: &mut Limiter,
        now: Nanos,
        failures: &mut Option<RateLimitState>,
    ) -> Result<(), access::Refusal> {
        let failure_limit = key.failures.and_then(|i| self.bundle.limits.get(usize::from(i)).map(|l| (i, l)));
        let counted = failure_limit.map(|(i, l)| (i, l, self.limit_key_hash(|parts| limiter.key_hash_parts(i, parts), LimitKey::Ip, None, req, client_ip, RuleRef::None, None)));
        if let Some((i, limit, hash)) = counted
            && let Some(o) = limiter.would_refuse(limit, hash, now)
        {
            *failures = Some(RateLimitState { limit: i, remaining: 0, reset_secs: o.reset_secs, retry_after_secs: o.retry_after_secs, shadow_refused: false });
            let detail = format!("too many failed attempts at the `{}` API key from this client; retry in {} s", key.name, o.retry_after_secs);
            return Err((Reason::RateLimited, 429, detail));
        }
        if access::api_key_valid(key, req) {
            return Ok(());
        }
        if let Some((_, limit, hash)) = counted {
            let _ = limiter.check(limit, hash, now);
        }
        Err((Reason::Unauthorized, 401, format!("a valid API key is required in `{}`", key.header)))
    }

    /// Keyed hash of a global limit's key, identical in every isolate of this bundle.
    fn global_hash(&self, limit: u16, parts: &[&[u8]]) -> u64 {
        use core::hash::{BuildHasher, Hasher};
        let mut h = self.global_hasher.build_hasher();
        h.write_u16(limit);
        for part in parts {
            h.write(part);
        }
        h.finish()
    }

    /// Record a limit's answer in the decision; `Some(refusal)` when it refuses.
    pub(crate) fn apply_outcome(&self, d: &mut Decision, index: u16, outcome: crate::limits::Outcome) -> Option<Decision> {
        let limit = self.bundle.limits.get(usize::from(index))?;
        let refused = !outcome.allowed;
        d.rate_limit = Some(RateLimitState {
            limit: index,
            remaining: outcome.remaining,
            reset_secs: outcome.reset_secs,
            retry_after_secs: outcome.retry_after_secs,
            shadow_refused: refused && limit.shadow,
        });
        if refused && !limit.shadow {
            let detail = format!(
                "limit `{}` allows {} requests per {} s; retry in {} s",
                limit.name, limit.count, limit.window_secs, outcome.retry_after_secs
            );
            return Some(reject(d.clone(), Reason::RateLimited, 429, Cow::Owned(detail)));
        }
        None
    }

    /// Finish a decision that waited for a global limit ([`Decision::global`]).
    /// The global shadow switch applies here as it does in `decide`.
    pub fn settle_global(&self, limiter: &mut Limiter, req: &RequestFacts, d: Decision, verdict: GlobalVerdict, now: Nanos, draw: Draw) -> Decision {
        let d = self.settle_global_inner(limiter, d, verdict, now);
        if self.overrides.shadow && d.action == Action::Reject && is_policy_refusal(d.reason) && d.endpoint.is_none() {
            return self.shadow_forward(req, draw, d);
        }
        d
    }

    fn settle_global_inner(&self, limiter: &mut Limiter, mut d: Decision, verdict: GlobalVerdict, now: Nanos) -> Decision {
        let Some(check) = d.global.take() else { return d };
        let Some(limit) = self.bundle.limits.get(usize::from(check.limit)) else { return d };
        match verdict {
            GlobalVerdict::Answer(outcome) => {
                if !outcome.allowed {
                    let wait = outcome.retry_after_secs.max(1).saturating_mul(1_000_000_000);
                    limiter.remember_refusal(check.key, now.saturating_add(wait), now);
                }
                let forwarded_detail = d.detail.clone();
                match self.apply_outcome(&mut d, check.limit, outcome) {
                    Some(refused) => refused,
                    None => {
                        d.detail = forwarded_detail;
                        d
                    }
                }
            }
            GlobalVerdict::Unavailable if limit.on_error_deny && !limit.shadow => {
                d.rate_limit = Some(RateLimitState { limit: check.limit, remaining: 0, reset_secs: 1, retry_after_secs: 1, shadow_refused: false });
                let detail = format!("the limiter for `{}` could not be reached and its on_error is deny", limit.name);
                reject(d, Reason::RateLimited, 429, Cow::Owned(detail))
            }
            GlobalVerdict::Unavailable => {
                d.detail = Cow::Owned(format!("forwarded; the limiter for `{}` could not be reached (on_error = allow)", limit.name));
                d
            }
        }
    }

    /// The limiter work a global limit does, for the Durable Object that owns the key.
    pub fn global_check(&self, limiter: &mut Limiter, limit: u16, key: u64, now: Nanos) -> Option<crate::limits::Outcome> {
        let limit = self.bundle.limits.get(usize::from(limit))?;
        Some(limiter.check(limit, key, now))
    }

    /// Decide and settle any global limit against `limiter` as if it were the only Durable
    /// Object: what `explain`, `test` and the playground show for one edge.
    /// A session ask is answered here as a host without a network would: no key set can be
    /// fetched (a JWKS source's tokens are `unavailable`); HS256 needs no ask.
    pub fn decide_standalone(&self, req: &RequestFacts, limiter: &mut Limiter, now: Nanos, draw: Draw) -> Decision {
        let mut d = self.decide(req, limiter, now, draw);
        for _ in 0..2 {
            let Some(ask) = d.session_ask() else { break };
            let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match ask {
                crate::sessions::Ask::Jwks { source, .. } => {
                    sessions.set_jwks(*source, None, now / 1_000_000_000);
                }
                crate::sessions::Ask::Signature(a) => sessions.verified(a.id, false, &self.bundle.sessions, now / 1_000_000_000),
            }
            drop(sessions);
            d = self.decide(req, limiter, now, draw);
        }
        match d.global {
            Some(check) => {
                let verdict = self
                    .global_check(limiter, check.limit, check.key, now)
                    .map_or(GlobalVerdict::Unavailable, GlobalVerdict::Answer);
                self.settle_global(limiter, req, d, verdict, now, draw)
            }
            None => d,
        }
    }

    /// The other origin for a failed idempotent request, when failover allows it: never for a
    /// pinned route, never to an origin whose probe failed.
    fn failover_target(&self, route: &Route, method: &str, origin: Option<u16>) -> Option<u16> {
        let deploy = &self.bundle.deploy;
        if route.origin.is_some() || method::bit(method) & deploy.failover_methods == 0 {
            return None;
        }
        let origin = origin?;
        let candidates = [self.overrides.active.unwrap_or(deploy.active)].into_iter().chain(deploy.canary.as_ref().map(|c| c.origin));
        candidates
            .chain(0..u16::try_from(self.bundle.origins.len()).unwrap_or(0))
            .find(|o| *o != origin && self.unhealthy & (1u64 << (u32::from(*o) % 64)) == 0 && usize::from(*o) < self.bundle.origins.len())
    }

    /// The address from the one trusted header, else the peer. The trusted value is the
    /// rightmost entry of the header's last line: what the nearest proxy added, and the same
    /// entry whether a runtime hands repeated lines over separately or joined with `, `.
    fn client_ip(&self, req: &RequestFacts) -> Option<IpAddr> {
        let from_header = self
            .bundle
            .client_ip
            .from
            .as_deref()
            .and_then(|h| req.headers.iter().rev().find(|(n, _)| n.eq_ignore_ascii_case(h)).map(|(_, v)| *v))
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        from_header.or(req.peer_ip)
    }

    fn request_id(&self, req: &RequestFacts, draw: Draw) -> String {
        let trusted = self.bundle.client_ip.request_id_from.as_deref().and_then(|h| req.header(h)).filter(|v| {
            !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic())
        });
        match trusted {
            Some(v) => v.to_owned(),
            None => crate::bundle::hex(&draw.request_id.to_be_bytes()),
        }
    }

    /// Hash identifying the client for a limit, without building a key string. A missing
    /// header or cookie falls back to the client address, so leaving it out never escapes
    /// the limit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn limit_key_hash(
        &self,
        hash: impl Fn(&[&[u8]]) -> u64,
        kind: LimitKey,
        name: Option<&str>,
        req: &RequestFacts,
        ip: Option<IpAddr>,
        rule: RuleRef,
        session_claim: Option<&str>,
    ) -> u64 {
        let client = ip.map(|ip| client_key(ip, self.bundle.client_ip.ipv6_prefix));
        let ip_key: &[u8] = client.as_ref().map_or(b"unknown", ClientKey::as_bytes);
        match kind {
            // The claim's first value; a request without a verified session counts by address.
            LimitKey::Session => match session_claim {
                Some(v) => hash(&[b"s:", v.as_bytes()]),
                None => hash(&[ip_key]),
            },
            LimitKey::Ip => hash(&[ip_key]),
            LimitKey::IpRoute => {
                let route = match rule {
                    RuleRef::Route(i) => i.to_le_bytes(),
                    _ => u32::MAX.to_le_bytes(),
                };
                hash(&[ip_key, b"|", &route])
            }
            // Trimmed, as `api_key` compares it: padding the value with spaces must not buy a
            // fresh bucket. An empty value counts as no header.
            LimitKey::Header => match name.and_then(|n| req.header(n)).map(str::trim).filter(|v| !v.is_empty()) {
                Some(v) => hash(&[b"h:", v.as_bytes()]),
                None => hash(&[ip_key]),
            },
            LimitKey::Cookie => match name.and_then(|n| req.cookie(n)) {
                Some(v) => hash(&[b"c:", v.as_bytes()]),
                None => hash(&[ip_key]),
            },
        }
    }
}

/// A client address as limit keys count it: IPv4 as its 4 bytes (an IPv4-mapped IPv6 address
/// too), IPv6 cut to its first `prefix` bits — a home, mobile or VPS client owns a whole /64, so
/// keying on all 128 bits would give it 2^64 fresh buckets.
pub struct ClientKey {
    bytes: [u8; 17],
    len: usize,
}

impl ClientKey {
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    fn v4(octets: [u8; 4], mut bytes: [u8; 17]) -> ClientKey {
        for (b, o) in bytes.iter_mut().zip(octets) {
            *b = o;
        }
        ClientKey { bytes, len: 4 }
    }
}

pub fn client_key(ip: IpAddr, ipv6_prefix: u8) -> ClientKey {
    let mut bytes = [0u8; 17];
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let prefix = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128u32.saturating_sub(prefix)).unwrap_or(0);
            let masked = (u128::from(v6) & mask).to_be_bytes();
            for (b, m) in bytes.iter_mut().zip(masked) {
                *b = m;
            }
            // The prefix length is part of the key: a /48 and a /64 of the same bits differ.
            if let Some(last) = bytes.get_mut(16) {
                *last = ipv6_prefix;
            }
            ClientKey { bytes, len: 17 }
        }
        IpAddr::V6(v6) => ClientKey::v4(v6.to_ipv4_mapped().map_or([0; 4], |v4| v4.octets()), bytes),
        IpAddr::V4(v4) => ClientKey::v4(v4.octets(), bytes),
    }
}

/// The detail of a plain forwarded request.
pub const FORWARDED: &str = "forwarded to the origin";

/// Names of request headers a shell removes before forwarding, besides any a policy adds
/// (`[sanitize] strip_headers`) and any starting with one of [`STRIPPED_REQUEST_PREFIXES`]:
///
/// - the forwarding headers: the engine's own values replace them ([`Engine::forward_headers`]);
/// - the method-override headers (`X-HTTP-Method-Override`, `X-HTTP-Method`,
///   `X-Method-Override`): the edge checks `methods` against the request's own method, so a
///   framework that honoured an override would run a method the route does not allow;
/// - Next.js's internal headers, which its server trusts from its own middleware and router and
///   never from a client: `x-middleware-subrequest` skips middleware on an unpatched Next.js
///   (CVE-2025-29927), the others rewrite, redirect or re-route a request inside the app
///   (docs/security.md).
pub const STRIPPED_REQUEST_HEADERS: [&str; 18] = [
    "forwarded",
    "x-real-ip",
    "x-request-id",
    "x-forwarded-for",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-middleware-subrequest",
    "x-middleware-subrequest-id",
    "x-middleware-invoke",
    "x-middleware-next",
    "x-middleware-rewrite",
    "x-middleware-redirect",
    "x-middleware-set-cookie",
    "x-middleware-skip",
    "x-middleware-override-headers",
    "x-matched-path",
    "x-now-route-matches",
];

/// Prefixes of request headers a shell removes before forwarding: any `x-forwarded-*`, and
/// Next.js's `x-invoke-*` (path, query, status, error, output of its router's internal calls).
pub const STRIPPED_REQUEST_PREFIXES: [&str; 2] = ["x-forwarded-", "x-invoke-"];

/// Whether the engine's own list removes a client-sent request header before forwarding.
pub fn is_stripped_request_header(name: &str) -> bool {
    // Checked for every header of every request: compared without a lowercase copy.
    let starts = |p: &str| name.get(..p.len()).is_some_and(|head| head.eq_ignore_ascii_case(p));
    STRIPPED_REQUEST_PREFIXES.iter().any(|p| starts(p)) || STRIPPED_REQUEST_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Refusals of the routing, access and limit stages: the ones global shadow mode lets through.
/// Malformed requests (sanitize, host) are refused even in shadow mode: forwarding them
/// would hand the origin a request it may read differently from the edge.
fn is_policy_refusal(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Blocked
            | Reason::MethodNotAllowed
            | Reason::NotFound
            | Reason::Forbidden
            | Reason::MissingHeader
            | Reason::Unauthorized
            | Reason::LengthRequired
            | Reason::PayloadTooLarge
            | Reason::RateLimited
            | Reason::SessionMissing
            | Reason::SessionInvalid
            | Reason::SessionExpired
            | Reason::SessionClaims
            | Reason::BotDenied
            | Reason::GeoDenied
            | Reason::ShieldBlocked
    )
}

/// The value a `session:<claim>` limit counts a verified session by.
fn session_claim<'s>(limit: &crate::bundle::Limit, session: Option<&'s crate::sessions::Session>) -> Option<&'s str> {
    let key = limit.session.filter(|_| limit.key == LimitKey::Session)?;
    session?.claim(key.claim).first().map(String::as_str)
}

/// A two-letter `request.cf` code, upper case; anything else is no code.
fn geo_code(text: Option<&str>) -> Option<[u8; 2]> {
    match text?.as_bytes() {
        [a, b] if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() => Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
        _ => None,
    }
}

/// An address as text, as `Display` writes it. IPv4 — nearly every client — without the
/// formatting machinery: this runs for every forwarded request and every log line.
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(digits.format(octet));
            }
            out
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}
