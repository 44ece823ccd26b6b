//! What a case file holds: its keys, and the cases, requests and expectations read from it.

use core::net::IpAddr;
use core::ops::Range;

use edgeguard_core::request::CfInput;

use crate::explain::Request;



/// The code of every case-file diagnostic (shown as `error[case-file]`).
pub(super) const CODE: &str = "case-file";

pub(super) const TOP_KEYS: &[&str] = &["defaults", "case"];
pub(super) const DEFAULTS_KEYS: &[&str] = &["headers", "client_ip", "env", "at", "lane", "country", "continent", "asn", "verified_bot", "verified_bot_category"];
pub(super) const CASE_KEYS: &[&str] = &[
    "name",
    "request",
    "headers",
    "client_ip",
    "session",
    "env",
    "repeat",
    "at",
    "lane",
    "before",
    "expect",
    "country",
    "continent",
    "asn",
    "verified_bot",
    "verified_bot_category",
];
/// The keys of a `before` request: those of [`StepKeys`].
pub(super) const BEFORE_KEYS: &[&str] = &["request", "headers", "client_ip", "session", "repeat", "at", "lane", "country", "continent", "asn", "verified_bot", "verified_bot_category"];
/// `bot`: the explanation's `client.bot.category`, or "none" when no category was worked out.
pub(super) const BOT_CATEGORIES: &[&str] = &["browser", "search_engine", "monitor", "ai_crawler", "script", "unknown", "none"];
/// `shield_match`: the family of the signature the request matched, or "none".
pub(super) const SHIELD_FAMILIES: &[&str] = &[
    "secrets",
    "admin_panels",
    "server_scripts",
    "backups",
    "traversal",
    "sql_injection",
    "xss",
    "code_injection",
    "scanner",
    "policy",
    "none",
];
/// The help for `expect` (or an expectation) in a `before` request.
pub(super) const BEFORE_EXPECT_HELP: &str = "a before request has no expect: make it a case of its own, or put the expectation on the case";
pub(super) const EXPECT_KEYS: &[&str] = &[
    "status",
    "reason",
    "action",
    "route",
    "origin",
    "location",
    "path",
    "detail_contains",
    "shadow_refused",
    "csp_nonce",
    "cache",
    "headers",
    "headers_match",
    "headers_absent",
    "headers_present",
    "removes",
    "strips",
    "forward_headers",
    "forward_headers_match",
    "rate_limit",
    "session",
    "bot",
    "bot_verified",
    "suspicion",
    "shield_match",
];
pub(super) const RATE_LIMIT_KEYS: &[&str] = &["name", "limit", "remaining", "reset", "key"];
/// `session`: the explanation's `session.state`, or "none" when no session was read.
pub(super) const SESSION_STATES: &[&str] = &["verified", "absent", "invalid", "expired", "unavailable", "none"];
/// The keys of a case's `session`.
pub(super) const SESSION_KEYS: &[&str] = &["claims", "expires_in", "expired", "forged", "source", "cookie_chunks"];
/// `csp_nonce`: the explanation's `csp_nonce.mode`, or "off" when it is `null`.
pub(super) const CSP_NONCE_MODES: &[&str] = &["enforce", "report-only", "off"];
/// `cache`: the explanation's `cache.mode`, or "off" when it is `null` (docs/caching.md).
pub(super) const CACHE_MODES: &[&str] = &["lookup", "bypass", "off"];
/// The `reason` codes of the explain contract.
pub(super) const REASONS: &[&str] = &[
    "ok",
    "https_redirect",
    "canonical_host",
    "host_not_allowed",
    "bad_request",
    "uri_too_long",
    "headers_too_large",
    "health",
    "blocked",
    "method_not_allowed",
    "not_found",
    "forbidden",
    "missing_header",
    "unauthorized",
    "length_required",
    "payload_too_large",
    "rate_limited",
    "csp_report",
    "metrics",
    "unsupported_media_type",
    "maintenance",
    "session_missing",
    "session_invalid",
    "session_expired",
    "session_claims",
    "session_unavailable",
    "dashboard",
    "bot_denied",
    "geo_denied",
    "shield_blocked",
];
/// The most `repeat` allows, as `explain --repeat`.
pub(super) const MAX_REPEAT: u64 = 1_000_000;

/// The fixed request id of every case (`x-request-id: 000…001` unless the policy trusts a
/// request-id header the case sends).
pub(super) const REQUEST_ID: u128 = 1;
/// The limiter's fixed hash seed.
pub(super) const LIMITER_SEED: u64 = 0x6564_6765_6775_6172;

/// Which lane a new client is drawn into when a canary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    /// The active origin, unless the canary takes 100 %.
    Active,
    /// The canary origin, unless the canary takes 0 %.
    Canary,
}

impl Lane {
    /// The engine's uniform draw: canary when `draw % 10 000 < share in basis points`.
    pub(super) fn draw(self) -> u32 {
        match self {
            Lane::Active => 9_999,
            Lane::Canary => 0,
        }
    }
}

/// A regular expression an expected header value must match (unanchored, as `Regex::is_match`).
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub(super) source: String,
    pub(super) matcher: Matcher,
}

#[derive(Debug, Clone)]
pub(super) enum Matcher {
    /// A pattern without metacharacters: a substring search finds the same matches, much faster
    /// than regex-lite's backtracking-free but literal-blind PikeVM.
    Literal,
    Regex(regex_lite::Regex),
}

impl Pattern {
    pub(super) fn is_match(&self, value: &str) -> bool {
        match &self.matcher {
            Matcher::Literal => value.contains(self.source.as_str()),
            Matcher::Regex(re) => re.is_match(value),
        }
    }
}

/// `rate_limit = "none"` or a table of the fields to compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RateLimitExpect {
    pub(super) name: Option<String>,
    pub(super) limit: Option<u64>,
    pub(super) remaining: Option<u64>,
    pub(super) reset: Option<u64>,
    /// What the request was counted by (`"session:sub"`, `"ip"`…).
    pub(super) key: Option<String>,
}

/// A case's expectations. `None`: not checked; `Some(None)`: expected `null` (`"none"`).
#[derive(Debug, Clone, Default)]
pub(super) struct Expect {
    pub(super) status: Option<Option<u16>>,
    pub(super) reason: Option<String>,
    pub(super) action: Option<String>,
    pub(super) route: Option<Option<String>>,
    pub(super) origin: Option<Option<String>>,
    pub(super) location: Option<Option<String>>,
    pub(super) path: Option<String>,
    pub(super) detail_contains: Option<String>,
    pub(super) shadow_refused: Option<bool>,
    /// `[csp] strict`: "enforce", "report-only" or "off" (no nonce-based policy here).
    pub(super) csp_nonce: Option<String>,
    pub(super) cache: Option<String>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) headers_match: Vec<(String, Pattern)>,
    pub(super) headers_absent: Vec<String>,
    pub(super) headers_present: Vec<String>,
    pub(super) removes: Vec<String>,
    /// Request headers the edge does not forward (`strip_request_headers`).
    pub(super) strips: Vec<String>,
    pub(super) forward_headers: Vec<(String, String)>,
    pub(super) forward_headers_match: Vec<(String, Pattern)>,
    pub(super) rate_limit: Option<Option<RateLimitExpect>>,
    pub(super) session: Option<String>,
    /// `client.bot.category`, or "none".
    pub(super) bot: Option<String>,
    pub(super) bot_verified: Option<bool>,
    /// `client.suspicion.score`.
    pub(super) suspicion: Option<u64>,
    /// `client.suspicion.matched.kind`, or "none".
    pub(super) shield_match: Option<String>,
}

impl Expect {
    pub(super) fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.reason.is_none()
            && self.action.is_none()
            && self.route.is_none()
            && self.origin.is_none()
            && self.location.is_none()
            && self.path.is_none()
            && self.detail_contains.is_none()
            && self.shadow_refused.is_none()
            && self.csp_nonce.is_none()
            && self.cache.is_none()
            && self.headers.is_empty()
            && self.headers_match.is_empty()
            && self.headers_absent.is_empty()
            && self.headers_present.is_empty()
            && self.removes.is_empty()
            && self.strips.is_empty()
            && self.forward_headers.is_empty()
            && self.forward_headers_match.is_empty()
            && self.rate_limit.is_none()
            && self.session.is_none()
            && self.bot.is_none()
            && self.bot_verified.is_none()
            && self.suspicion.is_none()
            && self.shield_match.is_none()
    }
}

/// One request a case sends, `repeat` times at `at`: the case's own, or one of its `before`.
#[derive(Debug, Clone)]
pub(super) struct Step {
    /// The request line as written.
    pub(super) request_line: String,
    /// The headers as written (defaults merged), for the `explain` command in reports.
    pub(super) given_headers: Vec<(String, String)>,
    pub(super) request: Request,
    pub(super) client_ip: Option<IpAddr>,
    /// A test session to sign and send (docs/testing.md, `session`).
    pub(super) session: Option<SessionSpec>,
    pub(super) repeat: u32,
    pub(super) at: u64,
    pub(super) now: u64,
    pub(super) lane: Lane,
}

/// A case's `session`: a token with these claims, signed with the source's `test_secret` when
/// the case runs (the policy is compiled by then).
#[derive(Debug, Clone)]
pub(super) struct SessionSpec {
    pub(super) claims: serde_json::Value,
    /// Seconds from the request's `at`; negative with `expired = true`.
    pub(super) expires_in: i64,
    pub(super) forged: bool,
    pub(super) source: Option<String>,
    /// Send it in the source's cookie, in this many chunks, rather than as a Bearer token.
    pub(super) cookie_chunks: Option<usize>,
}

/// One case, ready to run.
#[derive(Debug, Clone)]
pub(super) struct Case {
    pub(super) name: String,
    /// The `[[case]]` header (or the inline table): where reports point.
    pub(super) span: Range<usize>,
    /// 1-based line and column of the span's start and end (characters).
    pub(super) at_line: usize,
    pub(super) at_column: usize,
    pub(super) end_line: usize,
    pub(super) end_column: usize,
    pub(super) env: Option<String>,
    /// The requests sent first, in order, on the case's limiter; their decisions are not checked.
    pub(super) before: Vec<Step>,
    /// The case's own request: its last decision is compared with `expect`.
    pub(super) step: Step,
    pub(super) expect: Expect,
}

impl Case {
    /// How many requests the `before` steps send in all (each step's `repeat` counted).
    pub(super) fn earlier(&self) -> u64 {
        self.before.iter().map(|s| u64::from(s.repeat)).sum()
    }

    /// `N earlier requests`, for the reports of a case with `before`; `None` without.
    pub(super) fn earlier_requests(&self) -> Option<String> {
        match self.earlier() {
            0 => None,
            1 => Some("1 earlier request".to_owned()),
            n => Some(format!("{n} earlier requests")),
        }
    }
}

/// A parsed case file.
pub(super) struct CaseFile {
    /// The path as the user wrote it.
    pub(super) file: String,
    pub(super) source: String,
    pub(super) cases: Vec<Case>,
}

/// `[defaults]`: applied to every case of the file.
#[derive(Debug, Clone, Default)]
pub(super) struct Defaults {
    pub(super) headers: Vec<(String, String)>,
    pub(super) client_ip: Option<IpAddr>,
    /// `country`, `continent`, `asn`, `verified_bot(_category)`: what stands in for `request.cf`.
    pub(super) cf: CfInput,
    pub(super) env: Option<String>,
    pub(super) at: Option<u64>,
    pub(super) lane: Option<Lane>,
}

/// The keys a case and each of its `before` requests share (what is sent, from where, when,
/// how often), starting from `[defaults]`.
pub(super) struct StepKeys {
    pub(super) line: Option<(String, Range<usize>)>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) client_ip: Option<IpAddr>,
    pub(super) session: Option<SessionSpec>,
    pub(super) cf: CfInput,
    pub(super) repeat: u64,
    /// `None` after an invalid `at` (reported).
    pub(super) at: Option<u64>,
    /// Where `at` was written; `None` when it comes from `[defaults]` (or is 0).
    pub(super) at_span: Option<Range<usize>>,
    pub(super) lane: Lane,
}

impl StepKeys {
    pub(super) fn new(defaults: &Defaults) -> StepKeys {
        StepKeys {
            line: None,
            headers: Vec::new(),
            client_ip: defaults.client_ip,
            session: None,
            cf: defaults.cf.clone(),
            repeat: 1,
            at: Some(defaults.at.unwrap_or(0)),
            at_span: None,
            lane: defaults.lane.unwrap_or(Lane::Active),
        }
    }
}

