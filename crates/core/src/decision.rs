//! What the engine decided for one request, and the RFC 9457 body of a refusal.

use core::net::IpAddr;
use std::borrow::Cow;

use serde::Serialize;

/// What the shell must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Forward,
    Redirect,
    /// The edge answers itself (health, CSP reports, metrics).
    Respond,
    Reject,
}

impl Action {
    /// Every action, in the contract's order.
    pub const ALL: [Action; 4] = [Action::Forward, Action::Redirect, Action::Respond, Action::Reject];

    /// The contract's name (as serialized): for writers that skip serde. The one place an
    /// action is named; the CLI's `expect.action` choices are [`Action::ALL`] through it.
    ///
    /// ```
    /// use edgeguard_core::Action;
    /// assert_eq!(Action::ALL.map(Action::code), ["forward", "redirect", "respond", "reject"]);
    /// ```
    pub fn code(self) -> &'static str {
        match self {
            Action::Forward => "forward",
            Action::Redirect => "redirect",
            Action::Respond => "respond",
            Action::Reject => "reject",
        }
    }
}

/// Stable reason codes of the `explain` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Ok,
    HttpsRedirect,
    CanonicalHost,
    HostNotAllowed,
    BadRequest,
    UriTooLong,
    HeadersTooLarge,
    Health,
    Blocked,
    MethodNotAllowed,
    NotFound,
    Forbidden,
    MissingHeader,
    Unauthorized,
    LengthRequired,
    PayloadTooLarge,
    RateLimited,
    /// A CSP violation report accepted by the edge's intake (`csp.report_to`).
    CspReport,
    /// Answered by the edge's metrics endpoint (`observe.metrics`).
    Metrics,
    /// A body in a media type the endpoint does not take (the CSP report intake).
    UnsupportedMediaType,
    /// Maintenance mode (`EDGE_MAINTENANCE`) is on and the client is not on its allow-list.
    Maintenance,
    /// `require_session`: no session token in the request (401).
    SessionMissing,
    /// `require_session`: a token that is forged, malformed or for another issuer/audience (401).
    SessionInvalid,
    /// `require_session`: a verified token past its `exp` (401).
    SessionExpired,
    /// `require_session`: a verified session without the claims the route asks for (403).
    SessionClaims,
    /// `require_session`: the session cannot be verified now — the key set could not be
    /// fetched or the HS256 secret is not set (503).
    SessionUnavailable,
    /// Answered by the fleet dashboard (`[stats] dashboard`).
    Dashboard,
    /// The route's `bots` rule denies the client's category.
    BotDenied,
    /// The route's `geo_allow` / `geo_deny` refuses where the client is.
    GeoDenied,
    /// The shield suspended the client after too many probes.
    ShieldBlocked,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::HttpsRedirect => "https_redirect",
            Reason::CanonicalHost => "canonical_host",
            Reason::HostNotAllowed => "host_not_allowed",
            Reason::BadRequest => "bad_request",
            Reason::UriTooLong => "uri_too_long",
            Reason::HeadersTooLarge => "headers_too_large",
            Reason::Health => "health",
            Reason::Blocked => "blocked",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::NotFound => "not_found",
            Reason::Forbidden => "forbidden",
            Reason::MissingHeader => "missing_header",
            Reason::Unauthorized => "unauthorized",
            Reason::LengthRequired => "length_required",
            Reason::PayloadTooLarge => "payload_too_large",
            Reason::RateLimited => "rate_limited",
            Reason::CspReport => "csp_report",
            Reason::Metrics => "metrics",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::Maintenance => "maintenance",
            Reason::SessionMissing => "session_missing",
            Reason::SessionInvalid => "session_invalid",
            Reason::SessionExpired => "session_expired",
            Reason::SessionClaims => "session_claims",
            Reason::SessionUnavailable => "session_unavailable",
            Reason::Dashboard => "dashboard",
            Reason::BotDenied => "bot_denied",
            Reason::GeoDenied => "geo_denied",
            Reason::ShieldBlocked => "shield_blocked",
        }
    }

    /// RFC 9457 `type`. Rate limiting uses the registered `quota-exceeded` type.
    pub fn problem_type(self) -> Cow<'static, str> {
        match self {
            Reason::RateLimited => Cow::Borrowed("https://iana.org/assignments/http-problem-types#quota-exceeded"),
            other => Cow::Owned(format!("https://edgeguard.dev/problems/{}", other.code().replace('_', "-"))),
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Reason::Ok => "OK",
            Reason::HttpsRedirect => "HTTPS required",
            Reason::CanonicalHost => "Canonical host",
            Reason::HostNotAllowed => "Misdirected request",
            Reason::BadRequest => "Bad request",
            Reason::UriTooLong => "URI too long",
            Reason::HeadersTooLarge => "Request headers too large",
            Reason::Health => "Health",
            Reason::Blocked => "Blocked",
            Reason::MethodNotAllowed => "Method not allowed",
            Reason::NotFound => "Not found",
            Reason::Forbidden => "Forbidden",
            Reason::MissingHeader => "Required header missing",
            Reason::Unauthorized => "Unauthorized",
            Reason::LengthRequired => "Length required",
            Reason::PayloadTooLarge => "Payload too large",
            Reason::RateLimited => "Quota exceeded",
            Reason::CspReport => "CSP report",
            Reason::Metrics => "Metrics",
            Reason::UnsupportedMediaType => "Unsupported media type",
            Reason::Maintenance => "Maintenance",
            Reason::SessionMissing => "Session required",
            Reason::SessionInvalid => "Invalid session",
            Reason::SessionExpired => "Session expired",
            Reason::SessionClaims => "Session not permitted",
            Reason::SessionUnavailable => "Session cannot be verified",
            Reason::Dashboard => "Dashboard",
            Reason::BotDenied => "Automated client refused",
            Reason::GeoDenied => "Location refused",
            Reason::ShieldBlocked => "Client suspended",
        }
    }
}

/// Which rule decided: a route, the defaults, or none (refused before routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleRef {
    None,
    Defaults,
    Route(u32),
}

/// An endpoint the edge answers itself, before the https redirect and routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    /// The CSP report intake; the body's format once the content type was accepted.
    CspReport(Option<crate::vocab::ReportFormat>),
    Metrics,
    /// The fleet dashboard (`[stats] dashboard`): HTML with a Content-Security-Policy of its own.
    Dashboard,
}

/// A limit's verdict, carried to the response phase for the `RateLimit` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitState {
    pub limit: u16,
    pub remaining: u64,
    pub reset_secs: u64,
    pub retry_after_secs: u64,
    /// A shadow-mode limit that would have refused this request.
    pub shadow_refused: bool,
}

/// The engine's whole answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// `None` for `Forward`.
    pub status: Option<u16>,
    pub reason: Reason,
    pub rule: RuleRef,
    pub origin: Option<u16>,
    pub location: Option<String>,
    /// Whether the client connection is https.
    pub https: bool,
    /// Normalized host (empty when the request was refused before it was read).
    pub host: String,
    /// Normalized path and raw query, as forwarded to the origin.
    pub path_and_query: String,
    pub client_ip: Option<IpAddr>,
    pub request_id: String,
    pub rate_limit: Option<RateLimitState>,
    /// Method mask for the `Allow` header of a 405.
    pub allow: Option<u16>,
    /// A new canary/active lane was drawn: set the sticky cookie on the response.
    pub set_lane_cookie: bool,
    /// Index of the response header set to apply.
    pub headers: u16,
    /// Global shadow switch on: the policy would have refused this request for this reason,
    /// but it was forwarded.
    pub shadowed: Option<Reason>,
    /// A global or cloudflare limit the shell must ask before forwarding
    /// ([`crate::Engine::settle_global`] finishes the decision with the answer).
    pub global: Option<GlobalCheck>,
    /// The origin to retry on once if the chosen one fails to connect or answers 5xx.
    pub failover: Option<u16>,
    /// Why the origin was chosen.
    pub lane: Option<crate::vocab::Lane>,
    /// The edge's own endpoint this request was for, if any (never forwarded, even in shadow
    /// mode).
    pub endpoint: Option<Endpoint>,
    /// For `forward` on a route with an edge cache: look up and store, or bypass and why.
    pub cache: Option<crate::cache::Plan>,
    /// A page request (a browser navigation) and the policy has a fallback page: it gets the
    /// page, not problem+json, when the edge answers 503 for the origin or for maintenance.
    pub page: bool,
    pub detail: Cow<'static, str>,
    /// The session the route or its limit read (`require_session`, `key = "session:…"`), and
    /// what the engine found; [`Decision::session_ask`] when the host must act first.
    pub session: Option<SessionFact>,
    /// What the edge learned about the client that decided this request: bot category,
    /// location, suspicion (explain's `client`).
    pub client: Client,
}

/// A request's session for one source ([`crate::sessions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFact {
    pub source: u16,
    pub resolved: crate::sessions::Resolved,
}

/// The client facts a decision used (docs/explain.md, `client`). Never the raw user agent or
/// address: the category and list entry only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Client {
    /// Worked out when a `bots` rule needed it (or explain asked): `None` otherwise.
    pub bot: Option<crate::bots::Bot>,
    /// `request.cf.country` / `continent` (upper case) and `asn`, when Cloudflare sent them.
    pub country: Option<[u8; 2]>,
    pub continent: Option<[u8; 2]>,
    pub asn: Option<u32>,
    /// With a `[shield]`: the client's standing after this request and the signature this
    /// request matched, if any.
    pub suspicion: Option<crate::shield::Standing>,
    pub signature: Option<crate::shield::Hit>,
    /// The shield would have suspended the client but runs in shadow mode.
    pub shield_shadowed: bool,
    /// Whether the user agent looks like a browser's, once the shield worked it out (so the bot
    /// stage does not scan it again).
    pub browser: Option<bool>,
}

impl Decision {
    /// Make this decision a refusal in place: the one definition of what refusing sets (the
    /// engine's steps use [`reject`], the observer refuses a CSP report body after the fact).
    pub(crate) fn refuse(&mut self, reason: Reason, status: u16, detail: Cow<'static, str>) {
        self.action = Action::Reject;
        self.status = Some(status);
        self.reason = reason;
        self.detail = detail;
        self.origin = None;
    }

    /// Seconds a client the shield refused must wait.
    pub fn shield_retry_after(&self) -> Option<u64> {
        (self.reason == Reason::ShieldBlocked).then(|| self.client.suspicion.map(|s| s.suspended_for)).flatten().filter(|s| *s > 0)
    }

    /// What the host must do before this request can be decided (fetch a key set, check a
    /// signature); the decision itself is then a placeholder 503 that fails closed.
    pub fn session_ask(&self) -> Option<&crate::sessions::Ask> {
        match &self.session {
            Some(SessionFact { resolved: crate::sessions::Resolved::Ask(ask), .. }) => Some(ask),
            _ => None,
        }
    }

    /// The verified session, if the request has one.
    pub fn verified_session(&self) -> Option<&crate::sessions::Session> {
        match &self.session {
            Some(SessionFact { resolved: crate::sessions::Resolved::Verified(s), .. }) => Some(s),
            _ => None,
        }
    }

    /// A refusal answered with the policy's fallback page rather than problem+json: a page
    /// request during maintenance.
    pub fn is_fallback_page(&self) -> bool {
        self.page && self.action == Action::Reject && self.reason == Reason::Maintenance
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    instance: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

/// `d` made a refusal ([`Decision::refuse`]), for the pipeline's steps that return it.
pub(crate) fn reject(mut d: Decision, reason: Reason, status: u16, detail: Cow<'static, str>) -> Decision {
    d.refuse(reason, status, detail);
    d
}

impl Decision {
    /// The `application/problem+json` body for a refusal; `None` for anything else.
    pub fn problem_json(&self) -> Option<String> {
        if self.action != Action::Reject || self.is_fallback_page() {
            return None;
        }
        let status = self.status.unwrap_or(400);
        let kind = self.reason.problem_type();
        let path = self.path_and_query.split('?').next().unwrap_or("/");
        let problem = Problem {
            kind: &kind,
            title: self.reason.title(),
            status,
            detail: &self.detail,
            instance: path,
            request_id: &self.request_id,
            retry_after: self.rate_limit.filter(|r| !r.shadow_refused && r.retry_after_secs > 0).map(|r| r.retry_after_secs).or_else(|| self.shield_retry_after()),
        };

        serde_json::to_string(&problem).ok()
    }
}

/// A limit counted outside the isolate: in a Durable Object shard or the Cloudflare binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalCheck {
    pub limit: u16,
    /// Key hash, stable across isolates (keyed by the bundle revision).
    pub key: u64,
    /// Durable Object shard that owns this key.
    pub shard: u32,
    /// Counted by the Cloudflare binding rather than a Durable Object.
    pub cloudflare: bool,
}

/// What the global limiter answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalVerdict {
    Answer(crate::limits::Outcome),
    /// The limiter failed or timed out: the limit's `on_error` decides.
    Unavailable,
}

/// Why the origin could not answer a forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginFailure {
    /// No answer within the origin's `timeout` → 504.
    Timeout,
    /// Connection refused, reset or DNS failure → 502.
    Unreachable,
}

impl OriginFailure {
    pub fn status(self) -> u16 {
        match self {
            OriginFailure::Timeout => 504,
            OriginFailure::Unreachable => 502,
        }
    }

    /// The problem+json body the edge answers with.
    pub fn problem_json(self, origin: &str, request_id: &str, path: &str) -> String {
        let (kind, title, detail) = match self {
            OriginFailure::Timeout => (
                "https://edgeguard.dev/problems/origin-timeout",
                "Origin timeout",
                format!("the origin `{origin}` did not answer in time"),
            ),
            OriginFailure::Unreachable => (
                "https://edgeguard.dev/problems/origin-unreachable",
                "Origin unreachable",
                format!("the origin `{origin}` could not be reached"),
            ),
        };
        let problem = Problem {
            kind,
            title,
            status: self.status(),
            detail: &detail,
            instance: path.split('?').next().unwrap_or("/"),
            request_id,
            retry_after: None,
        };
        serde_json::to_string(&problem).unwrap_or_default()
    }
}

/// The answer to every request while the edge has no policy it can read (a bundle from another
/// edgeguard version, damaged or cut short): 503, never "forward unprotected". The detail stays
/// generic; the one error line the shell logs per isolate says what was wrong with the bundle.
pub fn misconfigured_problem(request_id: &str, path: &str) -> String {
    let problem = Problem {
        kind: "https://edgeguard.dev/problems/edge-misconfigured",
        title: "Edge misconfigured",
        status: 503,
        detail: "the edge cannot read its policy bundle and refuses every request until a readable one is deployed",
        instance: path.split('?').next().unwrap_or("/"),
        request_id,
        retry_after: None,
    };
    serde_json::to_string(&problem).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn action_codes_are_the_serialized_names() {
        for a in [Action::Forward, Action::Redirect, Action::Respond, Action::Reject] {
            assert_eq!(serde_json::to_value(a).ok(), Some(serde_json::Value::from(a.code())));
        }
    }
}
