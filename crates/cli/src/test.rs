//! `edgeguard test`: policy test cases (TOML) run through the engine.
//!
//! A case file lists requests and what the edge must answer (docs/testing.md). Each case is
//! evaluated by [`explain::evaluate`], the function `edgeguard explain` itself calls, on an engine
//! compiled once per environment: `test` and `explain` cannot disagree. Each case gets a fresh
//! limiter; its `before` requests (sent first, in order, their decisions unchecked) and its
//! `repeat` requests share it.
//!
//! Unlike `explain`, `test` does not draw randomness: the request id, the limiter's hash seed and
//! the canary draw are fixed (the draw by the case's `lane`), so a case gives the same answer on
//! every run.
//!
//! Exit codes: 0 every case passed, 1 a case failed (or the policy has errors), 2 usage errors,
//! unreadable files and malformed case files (every problem reported with file:line:col).

use core::net::IpAddr;
use core::ops::Range;
use std::collections::{BTreeMap, HashMap};
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use edgeguard_compiler::diagnostics::{self, Diagnostic};
use edgeguard_core::explain::Explanation;
use edgeguard_core::request::CfInput;
use edgeguard_core::{Action, Draw, Engine};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::explain::{self, Request, RequestError};
use crate::render::{self, Stream};
use crate::sarif::{self, Finding, Level};
use crate::{CmdResult, Failure, Status, output};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A diff per failing case (expected vs actual, per field), then `N passed, M failed`.
    Text,
    /// JUnit XML for CI test reports (one testsuite per case file); the summary goes to stderr.
    Junit,
    /// The text report plus a GitHub Actions `::error` annotation on each failing case's line.
    Github,
    /// SARIF 2.1.0, one `test-failed` result per failing case; the summary goes to stderr.
    Sarif,
}

/// Run policy test cases: requests and the answers the edge must give.
#[derive(Debug, clap::Args)]
#[command(after_help = "Every case runs through the engine `edgeguard explain` uses, compiled once per \
    environment, with a fresh rate limiter per case (shared by the case's `before` requests, sent \
    first). The last line of the text report is `N passed, M failed` (on stderr with --format \
    junit or sarif).\n\n\
    Exit codes: 0 every case passed, 1 a case failed or the policy has errors, 2 usage error \
    (an unreadable file, a malformed case file: each problem is shown with file:line:col).\n\n\
    The case file format is documented in docs/testing.md.\n\n\
    Examples:\n  \
    edgeguard test policy.toml policy.cases.toml\n  \
    edgeguard test policy.toml tests/*.cases.toml --filter admin --verbose\n  \
    edgeguard test policy.toml policy.cases.toml --format junit > junit.xml\n  \
    edgeguard test policy.toml policy.cases.toml --format github   # annotations in a GitHub Actions step")]
pub struct Args {
    /// The policy file (TOML).
    pub policy: PathBuf,
    /// One or more case files (TOML).
    #[arg(required = true, value_name = "CASES")]
    pub cases: Vec<PathBuf>,
    /// Compile for this environment when a case (or the file's [defaults]) names none.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Run only the cases whose name contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also list the cases that pass (text and github formats).
    #[arg(short, long)]
    pub verbose: bool,
}

// ---------------------------------------------------------------- case files

/// The code of every case-file diagnostic (shown as `error[case-file]`).
const CODE: &str = "case-file";

const TOP_KEYS: &[&str] = &["defaults", "case"];
const DEFAULTS_KEYS: &[&str] = &["headers", "client_ip", "env", "at", "lane", "country", "continent", "asn", "verified_bot", "verified_bot_category"];
const CASE_KEYS: &[&str] = &[
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
const BEFORE_KEYS: &[&str] = &["request", "headers", "client_ip", "session", "repeat", "at", "lane", "country", "continent", "asn", "verified_bot", "verified_bot_category"];
/// `bot`: the explanation's `client.bot.category`, or "none" when no category was worked out.
const BOT_CATEGORIES: &[&str] = &["browser", "search_engine", "monitor", "ai_crawler", "script", "unknown", "none"];
/// `shield_match`: the family of the signature the request matched, or "none".
const SHIELD_FAMILIES: &[&str] = &[
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
const BEFORE_EXPECT_HELP: &str = "a before request has no expect: make it a case of its own, or put the expectation on the case";
const EXPECT_KEYS: &[&str] = &[
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
const RATE_LIMIT_KEYS: &[&str] = &["name", "limit", "remaining", "reset", "key"];
/// `session`: the explanation's `session.state`, or "none" when no session was read.
const SESSION_STATES: &[&str] = &["verified", "absent", "invalid", "expired", "unavailable", "none"];
/// The keys of a case's `session`.
const SESSION_KEYS: &[&str] = &["claims", "expires_in", "expired", "forged", "source", "cookie_chunks"];
/// `csp_nonce`: the explanation's `csp_nonce.mode`, or "off" when it is `null`.
const CSP_NONCE_MODES: &[&str] = &["enforce", "report-only", "off"];
/// `cache`: the explanation's `cache.mode`, or "off" when it is `null` (docs/caching.md).
const CACHE_MODES: &[&str] = &["lookup", "bypass", "off"];
/// The `reason` codes of the explain contract.
const REASONS: &[&str] = &[
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
const MAX_REPEAT: u64 = 1_000_000;

/// The fixed request id of every case (`x-request-id: 000…001` unless the policy trusts a
/// request-id header the case sends).
const REQUEST_ID: u128 = 1;
/// The limiter's fixed hash seed.
const LIMITER_SEED: u64 = 0x6564_6765_6775_6172;

/// Which lane a new client is drawn into when a canary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// The active origin, unless the canary takes 100 %.
    Active,
    /// The canary origin, unless the canary takes 0 %.
    Canary,
}

impl Lane {
    /// The engine's uniform draw: canary when `draw % 10 000 < share in basis points`.
    fn draw(self) -> u32 {
        match self {
            Lane::Active => 9_999,
            Lane::Canary => 0,
        }
    }
}

/// A regular expression an expected header value must match (unanchored, as `Regex::is_match`).
#[derive(Debug, Clone)]
struct Pattern {
    source: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// A pattern without metacharacters: a substring search finds the same matches, much faster
    /// than regex-lite's backtracking-free but literal-blind PikeVM.
    Literal,
    Regex(regex_lite::Regex),
}

impl Pattern {
    fn is_match(&self, value: &str) -> bool {
        match &self.matcher {
            Matcher::Literal => value.contains(self.source.as_str()),
            Matcher::Regex(re) => re.is_match(value),
        }
    }
}

/// `rate_limit = "none"` or a table of the fields to compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RateLimitExpect {
    name: Option<String>,
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<u64>,
    /// What the request was counted by (`"session:sub"`, `"ip"`…).
    key: Option<String>,
}

/// A case's expectations. `None`: not checked; `Some(None)`: expected `null` (`"none"`).
#[derive(Debug, Clone, Default)]
struct Expect {
    status: Option<Option<u16>>,
    reason: Option<String>,
    action: Option<String>,
    route: Option<Option<String>>,
    origin: Option<Option<String>>,
    location: Option<Option<String>>,
    path: Option<String>,
    detail_contains: Option<String>,
    shadow_refused: Option<bool>,
    /// `[csp] strict`: "enforce", "report-only" or "off" (no nonce-based policy here).
    csp_nonce: Option<String>,
    cache: Option<String>,
    headers: Vec<(String, String)>,
    headers_match: Vec<(String, Pattern)>,
    headers_absent: Vec<String>,
    headers_present: Vec<String>,
    removes: Vec<String>,
    /// Request headers the edge does not forward (`strip_request_headers`).
    strips: Vec<String>,
    forward_headers: Vec<(String, String)>,
    forward_headers_match: Vec<(String, Pattern)>,
    rate_limit: Option<Option<RateLimitExpect>>,
    session: Option<String>,
    /// `client.bot.category`, or "none".
    bot: Option<String>,
    bot_verified: Option<bool>,
    /// `client.suspicion.score`.
    suspicion: Option<u64>,
    /// `client.suspicion.matched.kind`, or "none".
    shield_match: Option<String>,
}

impl Expect {
    fn is_empty(&self) -> bool {
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
struct Step {
    /// The request line as written.
    request_line: String,
    /// The headers as written (defaults merged), for the `explain` command in reports.
    given_headers: Vec<(String, String)>,
    request: Request,
    client_ip: Option<IpAddr>,
    /// A test session to sign and send (docs/testing.md, `session`).
    session: Option<SessionSpec>,
    repeat: u32,
    at: u64,
    now: u64,
    lane: Lane,
}

/// A case's `session`: a token with these claims, signed with the source's `test_secret` when
/// the case runs (the policy is compiled by then).
#[derive(Debug, Clone)]
struct SessionSpec {
    claims: serde_json::Value,
    /// Seconds from the request's `at`; negative with `expired = true`.
    expires_in: i64,
    forged: bool,
    source: Option<String>,
    /// Send it in the source's cookie, in this many chunks, rather than as a Bearer token.
    cookie_chunks: Option<usize>,
}

/// One case, ready to run.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    /// The `[[case]]` header (or the inline table): where reports point.
    span: Range<usize>,
    /// 1-based line and column of the span's start and end (characters).
    at_line: usize,
    at_column: usize,
    end_line: usize,
    end_column: usize,
    env: Option<String>,
    /// The requests sent first, in order, on the case's limiter; their decisions are not checked.
    before: Vec<Step>,
    /// The case's own request: its last decision is compared with `expect`.
    step: Step,
    expect: Expect,
}

impl Case {
    /// How many requests the `before` steps send in all (each step's `repeat` counted).
    fn earlier(&self) -> u64 {
        self.before.iter().map(|s| u64::from(s.repeat)).sum()
    }

    /// `N earlier requests`, for the reports of a case with `before`; `None` without.
    fn earlier_requests(&self) -> Option<String> {
        match self.earlier() {
            0 => None,
            1 => Some("1 earlier request".to_owned()),
            n => Some(format!("{n} earlier requests")),
        }
    }
}

/// A parsed case file.
struct CaseFile {
    /// The path as the user wrote it.
    file: String,
    source: String,
    cases: Vec<Case>,
}

/// `[defaults]`: applied to every case of the file.
#[derive(Debug, Clone, Default)]
struct Defaults {
    headers: Vec<(String, String)>,
    client_ip: Option<IpAddr>,
    /// `country`, `continent`, `asn`, `verified_bot(_category)`: what stands in for `request.cf`.
    cf: CfInput,
    env: Option<String>,
    at: Option<u64>,
    lane: Option<Lane>,
}

/// The keys a case and each of its `before` requests share (what is sent, from where, when,
/// how often), starting from `[defaults]`.
struct StepKeys {
    line: Option<(String, Range<usize>)>,
    headers: Vec<(String, String)>,
    client_ip: Option<IpAddr>,
    session: Option<SessionSpec>,
    cf: CfInput,
    repeat: u64,
    /// `None` after an invalid `at` (reported).
    at: Option<u64>,
    /// Where `at` was written; `None` when it comes from `[defaults]` (or is 0).
    at_span: Option<Range<usize>>,
    lane: Lane,
}

impl StepKeys {
    fn new(defaults: &Defaults) -> StepKeys {
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

type Key<'i> = Spanned<std::borrow::Cow<'i, str>>;
type Value<'i> = Spanned<DeValue<'i>>;

/// Parse a case file: every problem is collected as a diagnostic.
fn parse(source: &str) -> Result<Vec<Case>, Vec<Diagnostic>> {
    let mut p = Parser { errors: Vec::new(), patterns: HashMap::new() };
    let (doc, syntax) = DeTable::parse_recoverable(source);
    if !syntax.is_empty() {
        let errors = syntax
            .iter()
            .map(|e| {
                Diagnostic::error(CODE, e.span().unwrap_or(0..0), format!("TOML syntax: {}", e.message().trim()))
                    .help("see https://toml.io for the syntax")
            })
            .collect();
        return Err(errors);
    }
    let mut defaults = Defaults::default();
    let mut case_values: Vec<&Value<'_>> = Vec::new();
    let mut saw_case = false;
    for (key, value) in doc.get_ref() {
        match key.get_ref().as_ref() {
            "defaults" => {
                if let Some(table) = p.table("defaults", value) {
                    defaults = p.defaults(table);
                }
            }
            "case" => {
                saw_case = true;
                match value.get_ref() {
                    DeValue::Array(items) => case_values.extend(items.iter()),
                    DeValue::Table(_) => p.error_help(
                        value.span(),
                        "`case` is a single table; cases are an array of tables",
                        "write each case as [[case]] (two brackets)",
                    ),
                    other => p.type_error("case", value.span(), "an array of tables ([[case]])", other),
                }
            }
            _ => p.unknown(key, "the case file", TOP_KEYS, &[]),
        }
    }
    if !saw_case && p.errors.is_empty() {
        p.error_help(0..0, "the file has no cases", "add one: [[case]] with `request` and [case.expect]");
    }
    let mut cases = Vec::with_capacity(case_values.len());
    let lines = LineIndex::new(source);
    for value in case_values {
        let Some(table) = p.table("case", value) else { continue };
        if let Some(mut case) = p.case(table, value.span(), &defaults) {
            (case.at_line, case.at_column) = lines.line_col(source, case.span.start);
            (case.end_line, case.end_column) = lines.line_col(source, case.span.end);
            cases.push(case);
        }
    }
    if p.errors.is_empty() {
        Ok(cases)
    } else {
        p.errors.sort_by_key(|d| (d.span.start, d.span.end));
        Err(p.errors)
    }
}

struct Parser {
    errors: Vec<Diagnostic>,
    /// Patterns compiled so far: large generated files repeat the same few.
    patterns: HashMap<String, Matcher>,
}

impl Parser {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push(Diagnostic::error(CODE, span, message));
    }

    fn error_help(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        self.errors.push(Diagnostic::error(CODE, span, message).help(help));
    }

    /// `unknown key` with a did-you-mean; `elsewhere` are keys that belong in another table,
    /// given with where they go.
    fn unknown(&mut self, key: &Key<'_>, context: &str, known: &[&str], elsewhere: &[(&[&str], &str)]) {
        let name = key.get_ref().as_ref();
        let moved = elsewhere.iter().find(|(keys, _)| keys.contains(&name));
        let close_elsewhere = || {
            elsewhere.iter().find_map(|(keys, place)| Some((diagnostics::suggest(name, keys.iter().copied())?, *place)))
        };
        let help = if let Some((_, place)) = moved {
            format!("`{name}` goes in {place}")
        } else if let Some(best) = diagnostics::suggest(name, known.iter().copied()) {
            format!("did you mean `{best}`?")
        } else if let Some((best, place)) = close_elsewhere() {
            format!("did you mean `{best}`? it goes in {place}")
        } else {
            format!("the keys of {context} are: {}", known.join(", "))
        };
        self.error_help(key.span(), format!("unknown key `{name}` in {context}"), help);
    }

    fn type_error(&mut self, key: &str, span: Range<usize>, want: &str, got: &DeValue<'_>) {
        self.error(span, format!("`{key}` must be {want}, not {}", with_article(got.type_str())));
    }

    fn table<'t, 'i>(&mut self, key: &str, value: &'t Value<'i>) -> Option<&'t DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.type_error(key, value.span(), "a table", other);
                None
            }
        }
    }

    fn string(&mut self, key: &str, value: &Value<'_>) -> Option<String> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.type_error(key, value.span(), "a string", other);
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, value: &Value<'_>) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.type_error(key, value.span(), "true or false", other);
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    fn number(&mut self, key: &str, value: &Value<'_>, min: u64, max: u64) -> Option<u64> {
        let DeValue::Integer(i) = value.get_ref() else {
            self.type_error(key, value.span(), "a whole number", value.get_ref());
            return None;
        };
        match u64::from_str_radix(i.as_str(), i.radix()).ok().filter(|n| (min..=max).contains(n)) {
            Some(n) => Some(n),
            None => {
                self.error(value.span(), format!("`{key}` must be between {min} and {max}; got {}", i.as_str()));
                None
            }
        }
    }

    /// One of `choices`, with a did-you-mean.
    fn choice(&mut self, key: &str, value: &Value<'_>, choices: &[&str]) -> Option<String> {
        let s = self.string(key, value)?;
        if choices.contains(&s.as_str()) {
            return Some(s);
        }
        let help = match diagnostics::suggest(&s, choices.iter().copied()) {
            Some(best) => format!("did you mean \"{best}\"?"),
            None => format!("one of: {}", choices.join(", ")),
        };
        self.error_help(value.span(), format!("`{key}` cannot be \"{s}\""), help);
        None
    }

    /// A string, or `"none"` for an expected `null`.
    fn nullable_string(&mut self, key: &str, value: &Value<'_>) -> Option<Option<String>> {
        let s = self.string(key, value)?;
        Some(if s == "none" { None } else { Some(s) })
    }

    fn header_name(&mut self, key: &Key<'_>) -> Option<String> {
        let name = key.get_ref().as_ref();
        if name.is_empty() || !name.bytes().all(explain::is_tchar) {
            self.error(key.span(), format!("`{name}` is not a valid header name"));
            return None;
        }
        Some(name.to_owned())
    }

    /// `{ name = "value" }`: header names (kept as written) and values (strings or numbers).
    fn header_table(&mut self, key: &str, value: &Value<'_>) -> Vec<(String, String)> {
        let Some(table) = self.table(key, value) else { return Vec::new() };
        let mut out = Vec::with_capacity(table.len());
        for (name, v) in table {
            let Some(name) = self.header_name(name) else { continue };
            let text = match v.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Integer(i) => i.as_str().to_owned(),
                other => {
                    self.type_error(&format!("{key}.{name}"), v.span(), "a string", other);
                    continue;
                }
            };
            out.push((name, text));
        }
        out
    }

    /// `{ name = "regex" }`, names lowercased.
    fn pattern_table(&mut self, key: &str, value: &Value<'_>) -> Vec<(String, Pattern)> {
        let Some(table) = self.table(key, value) else { return Vec::new() };
        let mut out = Vec::with_capacity(table.len());
        for (name, v) in table {
            let Some(name) = self.header_name(name) else { continue };
            let Some(source) = self.string(&format!("{key}.{name}"), v) else { continue };
            if let Some(matcher) = self.patterns.get(&source) {
                out.push((name.to_ascii_lowercase(), Pattern { matcher: matcher.clone(), source }));
                continue;
            }
            // Outside a class, only these are special (`#` needs the `x` flag, which needs `(`).
            let compiled = if !source.contains(['\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$']) {
                Ok(Matcher::Literal)
            } else {
                regex_lite::Regex::new(&source).map(Matcher::Regex)
            };
            match compiled {
                Ok(matcher) => {
                    self.patterns.insert(source.clone(), matcher.clone());
                    out.push((name.to_ascii_lowercase(), Pattern { source, matcher }));
                }
                Err(e) => self.error_help(
                    v.span(),
                    format!("`{key}.{name}` is not a valid regular expression: {e}"),
                    "the syntax is regex-lite's (https://docs.rs/regex-lite); to match `.`, `(`, `*`, `?`, `+` or `|` literally, escape it: '\\.' in a '...' string, \"\\\\.\" in a \"...\" string",
                ),
            }
        }
        out
    }

    /// `["name", …]`, lowercased.
    fn name_list(&mut self, key: &str, value: &Value<'_>) -> Vec<String> {
        let DeValue::Array(items) = value.get_ref() else {
            self.type_error(key, value.span(), "an array of header names", value.get_ref());
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            let Some(name) = self.string(key, item) else { continue };
            if name.is_empty() || !name.bytes().all(explain::is_tchar) {
                self.error(item.span(), format!("`{name}` is not a valid header name"));
                continue;
            }
            out.push(name.to_ascii_lowercase());
        }
        out
    }

    fn client_ip(&mut self, value: &Value<'_>) -> Option<IpAddr> {
        let s = self.string("client_ip", value)?;
        match s.trim().parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.error_help(value.span(), format!("`client_ip` \"{s}\" is not an IP address"), "write an IPv4 or IPv6 address, e.g. \"203.0.113.7\" or \"2001:db8::7\"");
                None
            }
        }
    }

    fn env(&mut self, value: &Value<'_>) -> Option<String> {
        let s = self.string("env", value)?;
        if s.trim().is_empty() {
            self.error(value.span(), "`env` cannot be empty");
            return None;
        }
        Some(s)
    }

    fn at(&mut self, value: &Value<'_>) -> Option<u64> {
        self.number("at", value, 0, u64::MAX / 1_000_000_000)
    }

    fn lane(&mut self, value: &Value<'_>) -> Option<Lane> {
        match self.choice("lane", value, &["active", "canary"])?.as_str() {
            "canary" => Some(Lane::Canary),
            _ => Some(Lane::Active),
        }
    }

    /// A `request.cf` stand-in key (`country`, `continent`, `asn`, `verified_bot`,
    /// `verified_bot_category`) into `cf`; `false` for any other key.
    fn cf_key(&mut self, key: &str, value: &Value<'_>, cf: &mut CfInput) -> bool {
        match key {
            "country" => {
                if let Some(c) = self.string("country", value) {
                    let upper = c.trim().to_ascii_uppercase();
                    if upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        cf.country = Some(upper);
                    } else {
                        self.error_help(value.span(), format!("`country` \"{c}\" is not a two-letter code"), "write the ISO 3166-1 alpha-2 code Cloudflare reports, e.g. \"DE\"");
                    }
                }
            }
            "continent" => {
                if let Some(c) = self.choice("continent", value, &["AF", "AN", "AS", "EU", "NA", "OC", "SA"]) {
                    cf.continent = Some(c);
                }
            }
            "asn" => cf.asn = self.number("asn", value, 1, u64::from(u32::MAX)).and_then(|n| u32::try_from(n).ok()),
            "verified_bot" => cf.verified_bot = self.boolean("verified_bot", value).unwrap_or(false),
            "verified_bot_category" => cf.verified_bot_category = self.string("verified_bot_category", value),
            _ => return false,
        }
        true
    }

    fn defaults(&mut self, table: &DeTable<'_>) -> Defaults {
        let mut d = Defaults::default();
        for (key, value) in table {
            if self.cf_key(key.get_ref().as_ref(), value, &mut d.cf) {
                continue;
            }
            match key.get_ref().as_ref() {
                "headers" => d.headers = self.header_table("headers", value),
                "client_ip" => d.client_ip = self.client_ip(value),
                "env" => d.env = self.env(value),
                "at" => d.at = self.at(value),
                "lane" => d.lane = self.lane(value),
                _ => self.unknown(key, "[defaults]", DEFAULTS_KEYS, &[(CASE_KEYS, "each [[case]]"), (EXPECT_KEYS, "each [case.expect]")]),
            }
        }
        d
    }

    /// A key a case shares with its `before` requests, parsed into `keys`; `false` for any
    /// other key.
    fn step_key(&mut self, key: &str, value: &Value<'_>, keys: &mut StepKeys) -> bool {
        if self.cf_key(key, value, &mut keys.cf) {
            return true;
        }
        match key {
            "request" => keys.line = self.string("request", value).map(|s| (s, value.span())),
            "headers" => keys.headers = self.header_table("headers", value),
            "client_ip" => keys.client_ip = self.client_ip(value).or(keys.client_ip),
            "session" => keys.session = self.session(value),
            "repeat" => keys.repeat = self.number("repeat", value, 1, MAX_REPEAT).unwrap_or(1),
            "at" => {
                keys.at = self.at(value);
                keys.at_span = Some(value.span());
            }
            "lane" => keys.lane = self.lane(value).unwrap_or(keys.lane),
            _ => return false,
        }
        true
    }

    /// The request `keys` describe, its headers merged over the defaults'; `None` when the
    /// request line is missing (reported by `missing`, unless an error was reported since
    /// `errors_before`: a `request` of the wrong type, say) or refused, or `at` is invalid.
    fn step(&mut self, keys: StepKeys, defaults: &Defaults, errors_before: usize, missing: impl FnOnce(&mut Self)) -> Option<Step> {
        let Some((line, line_span)) = keys.line else {
            if self.errors.len() == errors_before {
                missing(self);
            }
            return None;
        };
        // Headers replace the defaults' of the same name (case-insensitively).
        let mut merged: Vec<(String, String)> =
            defaults.headers.iter().filter(|(n, _)| !keys.headers.iter().any(|(m, _)| m.eq_ignore_ascii_case(n))).cloned().collect();
        merged.extend(keys.headers);
        let request = match Request::new(&line, merged.clone()) {
            Ok(r) => Request { cf: keys.cf, ..r },
            Err(e) => {
                let (message, help) = request_error(e, &line);
                self.error_help(line_span, message, help);
                return None;
            }
        };
        let at = keys.at?;
        let now = explain::nanos(at)?;
        Some(Step {
            request_line: line,
            given_headers: merged,
            request,
            client_ip: keys.client_ip,
            session: keys.session,
            repeat: u32::try_from(keys.repeat).unwrap_or(1),
            at,
            now,
            lane: keys.lane,
        })
    }

    fn case(&mut self, table: &DeTable<'_>, span: Range<usize>, defaults: &Defaults) -> Option<Case> {
        let errors_before = self.errors.len();
        let mut name = None;
        let mut keys = StepKeys::new(defaults);
        let mut env = defaults.env.clone();
        let mut before = None;
        let mut expect = None;
        for (key, value) in table {
            let k = key.get_ref().as_ref();
            if self.step_key(k, value, &mut keys) {
                continue;
            }
            match k {
                "name" => name = self.string("name", value),
                "env" => env = self.env(value).or(env),
                "before" => before = Some(self.before(value, defaults)),
                "expect" => {
                    if let Some(t) = self.table("expect", value) {
                        let before = self.errors.len();
                        let e = self.expect(t);
                        if e.is_empty() && self.errors.len() == before {
                            self.error_help(value.span(), "`expect` is empty: the case would check nothing", "add an expectation, e.g. status = 404 or action = \"forward\"");
                        }
                        expect = Some(e);
                    }
                }
                _ => self.unknown(key, "[[case]]", CASE_KEYS, &[(EXPECT_KEYS, "[case.expect]")]),
            }
        }
        let label = name.as_deref().map_or_else(String::new, |n| format!(" `{n}`"));
        let has_line = keys.line.is_some();
        let step = self.step(keys, defaults, errors_before, |p| {
            p.error_help(span.clone(), format!("case{label} has no `request`"), "add request = \"GET https://example.com/path\"");
        });
        let before = before.unwrap_or_default();
        if let Some(step) = &step {
            self.before_times(&before, step.at);
        }
        if !has_line {
            return None;
        }
        let Some(expect) = expect else {
            self.error_help(span, format!("case{label} has no expectations"), "add [case.expect] below the case with e.g. status = 404, or `expect = { action = \"forward\" }`");
            return None;
        };
        let step = step?;
        if self.errors.len() != errors_before {
            return None;
        }
        let name = name.unwrap_or_else(|| step.request_line.split_whitespace().collect::<Vec<_>>().join(" "));
        Some(Case {
            name,
            span,
            at_line: 0,
            at_column: 0,
            end_line: 0,
            end_column: 0,
            env,
            before: before.into_iter().map(|(s, _)| s).collect(),
            step,
            expect,
        })
    }

    /// `before = [{ request = "…", … }, …]` (or `[[case.before]]`): each entry as a step, with
    /// the span to blame for its `at` (where it was written, else the entry).
    fn before(&mut self, value: &Value<'_>, defaults: &Defaults) -> Vec<(Step, Range<usize>)> {
        let items = match value.get_ref() {
            DeValue::Array(items) => items,
            DeValue::Table(_) => {
                self.error_help(
                    value.span(),
                    "`before` is a single table; it is a list of requests",
                    "write before = [{ request = \"GET https://example.com/\" }] or [[case.before]] (two brackets)",
                );
                return Vec::new();
            }
            other => {
                self.type_error("before", value.span(), "an array of tables ([{ request = \"…\" }, …])", other);
                return Vec::new();
            }
        };
        let mut steps = Vec::with_capacity(items.len());
        for item in items.iter() {
            let DeValue::Table(table) = item.get_ref() else {
                self.error_help(
                    item.span(),
                    format!("a `before` request must be a table, not {}", with_article(item.get_ref().type_str())),
                    "write each one as { request = \"GET https://example.com/\" }",
                );
                continue;
            };
            let errors_before = self.errors.len();
            let mut keys = StepKeys::new(defaults);
            for (key, v) in table {
                let k = key.get_ref().as_ref();
                if self.step_key(k, v, &mut keys) {
                    continue;
                }
                if k == "expect" {
                    self.error_help(key.span(), "`expect` in a `before` request", BEFORE_EXPECT_HELP);
                } else if EXPECT_KEYS.contains(&k) {
                    self.error_help(key.span(), format!("unknown key `{k}` in a `before` request"), BEFORE_EXPECT_HELP);
                } else if k == "env" {
                    self.error_help(key.span(), "`env` in a `before` request", "a before request runs in its case's environment: set `env` on the case");
                } else {
                    self.unknown(key, "a `before` request", BEFORE_KEYS, &[]);
                }
            }
            let blame = keys.at_span.clone().unwrap_or_else(|| item.span());
            let step = self.step(keys, defaults, errors_before, |p| {
                p.error_help(item.span(), "a `before` request has no `request`", "add request = \"GET https://example.com/path\"");
            });
            if let Some(step) = step
                && self.errors.len() == errors_before
            {
                steps.push((step, blame));
            }
        }
        steps
    }

    /// Time does not go backwards: each `before` request is at or after the one above it, and
    /// at or before its case (`case_at`). A request reported is not compared with the next.
    fn before_times(&mut self, before: &[(Step, Range<usize>)], case_at: u64) {
        let mut previous: Option<u64> = None;
        for (step, blame) in before {
            if step.at > case_at {
                self.error_help(
                    blame.clone(),
                    format!("this `before` request is at {} s, after its case (at {case_at} s)", step.at),
                    "before requests are sent first, and time does not go backwards: give it an `at` no later than the case's",
                );
            } else if let Some(previous) = previous
                && step.at < previous
            {
                self.error_help(
                    blame.clone(),
                    format!("this `before` request is at {} s, before the one above it (at {previous} s)", step.at),
                    "before requests are sent in order, and time does not go backwards: order them by `at`",
                );
            } else {
                previous = Some(step.at);
            }
        }
    }

    fn expect(&mut self, table: &DeTable<'_>) -> Expect {
        let mut e = Expect::default();
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "status" => e.status = self.status(value),
                "reason" => e.reason = self.choice("reason", value, REASONS),
                "action" => e.action = self.choice("action", value, &Action::ALL.map(Action::code)),
                "route" => {
                    e.route = self.nullable_string("route", value);
                    if let Some(Some(r)) = &e.route
                        && !r.starts_with('/')
                    {
                        self.error_help(value.span(), format!("`route` \"{r}\" is not a route pattern"), "write the matched route's `path` as in the policy (e.g. \"/api/**\"), or \"none\" for no route");
                    }
                }
                "origin" => e.origin = self.nullable_string("origin", value),
                "location" => e.location = self.nullable_string("location", value),
                "path" => e.path = self.string("path", value),
                "detail_contains" => e.detail_contains = self.string("detail_contains", value),
                "shadow_refused" => e.shadow_refused = self.boolean("shadow_refused", value),
                "csp_nonce" => e.csp_nonce = self.choice("csp_nonce", value, CSP_NONCE_MODES),
                "cache" => e.cache = self.choice("cache", value, CACHE_MODES),
                "headers" => {
                    e.headers = self.header_table("headers", value).into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect();
                }
                "headers_match" => e.headers_match = self.pattern_table("headers_match", value),
                "headers_absent" => e.headers_absent = self.name_list("headers_absent", value),
                "headers_present" => e.headers_present = self.name_list("headers_present", value),
                "removes" => e.removes = self.name_list("removes", value),
                "strips" => e.strips = self.name_list("strips", value),
                "forward_headers" => {
                    e.forward_headers =
                        self.header_table("forward_headers", value).into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect();
                }
                "forward_headers_match" => e.forward_headers_match = self.pattern_table("forward_headers_match", value),
                "rate_limit" => e.rate_limit = self.rate_limit(value),
                "session" => e.session = self.choice("session", value, SESSION_STATES),
                "bot" => e.bot = self.choice("bot", value, BOT_CATEGORIES),
                "bot_verified" => e.bot_verified = self.boolean("bot_verified", value),
                "suspicion" => e.suspicion = self.number("suspicion", value, 0, u64::from(u32::MAX)),
                "shield_match" => e.shield_match = self.choice("shield_match", value, SHIELD_FAMILIES),
                _ => self.unknown(key, "[case.expect]", EXPECT_KEYS, &[(CASE_KEYS, "the [[case]] itself, above [case.expect]")]),
            }
        }
        e
    }

    fn status(&mut self, value: &Value<'_>) -> Option<Option<u16>> {
        match value.get_ref() {
            DeValue::String(s) if s == "none" => Some(None),
            DeValue::Integer(_) => self.number("status", value, 100, 599).and_then(|n| u16::try_from(n).ok()).map(Some),
            other => {
                self.type_error("status", value.span(), "a status code (100-599) or \"none\" (forwarded: no status)", other);
                None
            }
        }
    }

    /// A case's `session = { claims = { … }, expires_in = "1h", expired, forged, source }`.
    fn session(&mut self, value: &Value<'_>) -> Option<SessionSpec> {
        let table = self.table("session", value)?;
        let mut spec = SessionSpec { claims: serde_json::Value::Object(serde_json::Map::new()), expires_in: 3600, forged: false, source: None, cookie_chunks: None };
        let mut expired = false;
        for (key, v) in table {
            match key.get_ref().as_ref() {
                "claims" => match v.get_ref() {
                    DeValue::Table(_) => spec.claims = json_of(v.get_ref()),
                    other => self.type_error("session.claims", v.span(), "a table of claims, e.g. { sub = \"u-1\", app_metadata = { role = \"admin\" } }", other),
                },
                "expires_in" => {
                    if let Some(text) = self.string("session.expires_in", v) {
                        match edgeguard_compiler::units::duration_ms(&text) {
                            Ok(ms) => spec.expires_in = i64::try_from(ms / 1000).unwrap_or(i64::MAX),
                            Err(e) => self.error_help(v.span(), e, "e.g. \"1h\", \"5m\""),
                        }
                    }
                }
                "expired" => expired = self.boolean("session.expired", v).unwrap_or(false),
                "forged" => spec.forged = self.boolean("session.forged", v).unwrap_or(false),
                "source" => spec.source = self.string("session.source", v),
                "cookie_chunks" => spec.cookie_chunks = self.number("session.cookie_chunks", v, 1, 9).and_then(|n| usize::try_from(n).ok()),
                _ => self.unknown(key, "`session`", SESSION_KEYS, &[]),
            }
        }
        if expired {
            // Expired an hour ago: past any leeway.
            spec.expires_in = -3600;
        }
        Some(spec)
    }

    fn rate_limit(&mut self, value: &Value<'_>) -> Option<Option<RateLimitExpect>> {
        match value.get_ref() {
            DeValue::String(s) if s == "none" => Some(None),
            DeValue::Table(table) => {
                let before = self.errors.len();
                let mut r = RateLimitExpect::default();
                for (key, v) in table {
                    match key.get_ref().as_ref() {
                        "name" => r.name = self.string("rate_limit.name", v),
                        "limit" => r.limit = self.number("rate_limit.limit", v, 0, u64::MAX),
                        "remaining" => r.remaining = self.number("rate_limit.remaining", v, 0, u64::MAX),
                        "reset" => r.reset = self.number("rate_limit.reset", v, 0, u64::MAX),
                        "key" => r.key = self.string("rate_limit.key", v),
                        _ => self.unknown(key, "`rate_limit`", RATE_LIMIT_KEYS, &[]),
                    }
                }
                if r == RateLimitExpect::default() && self.errors.len() == before {
                    self.error_help(value.span(), "`rate_limit` is empty", "give name, limit, remaining or reset, or \"none\" for no limit");
                }
                Some(Some(r))
            }
            other => {
                self.type_error("rate_limit", value.span(), "a table { name, limit, remaining, reset } or \"none\"", other);
                None
            }
        }
    }
}

/// The message and help for a request line the shared builder refused.
fn request_error(e: RequestError, line: &str) -> (String, String) {
    match e {
        RequestError::Shape => (
            format!("`request` must be \"METHOD URL\"; got \"{line}\""),
            "e.g. request = \"GET https://example.com/path?q=1\"".to_owned(),
        ),
        RequestError::Method(m) => (
            format!("`{m}` is not an HTTP method"),
            "a method is a token such as GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS".to_owned(),
        ),
        RequestError::HeaderName(_) => ("a header name is not valid".to_owned(), "header names are HTTP tokens".to_owned()),
        RequestError::NoHost(url) => (
            format!("`{url}` has no host"),
            format!("give an absolute URL (https://example.com{url}) or a `host` header, in the case or in [defaults]"),
        ),
        RequestError::NotATarget(url) => (
            format!("`{url}` is not a request target"),
            "give an absolute URL (https://host/path) or a path (/path) with a `host` header".to_owned(),
        ),
    }
}

/// The start of every line, for line:column lookups in large case files (a scan from the
/// start of the file per case would be quadratic).
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(source: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(source.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i.saturating_add(1)));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters), as [`line_col`] counts them.
    fn line_col(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(source.len());
        let line = self.starts.partition_point(|s| *s <= offset).max(1);
        let start = self.starts.get(line.saturating_sub(1)).copied().unwrap_or(0);
        let column = source.get(start..offset).map_or(0, |s| s.chars().count()).saturating_add(1);
        (line, column)
    }
}

fn with_article(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {kind}")
}

// ---------------------------------------------------------------- running

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mismatch {
    field: String,
    expected: String,
    actual: String,
}

/// A case's result.
struct Outcome {
    file: usize,
    case: usize,
    mismatches: Vec<Mismatch>,
    /// The decision of a failed case; `None` for a pass, or when the policy did not compile for
    /// the case's environment.
    explanation: Option<Explanation>,
    time: Duration,
    /// The route pattern the case's request matched (`None`: `[defaults]`, or not routed).
    route: Option<String>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// The case files parsed and every case run: what `run` reports and `ready` tallies.
struct Ran {
    files: Vec<CaseFile>,
    outcomes: Vec<Outcome>,
    elapsed: Duration,
}

/// Parse the case files and run every case; `Err(status)` when a case file is malformed (its
/// diagnostics printed on stderr) or `--filter` selects nothing.
fn execute(args: &Args) -> Result<Result<Ran, Status>, Failure> {
    let mut files = Vec::with_capacity(args.cases.len());
    let mut malformed = 0usize;
    for path in &args.cases {
        let bytes = std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read `{}`: {e}", path.display())))?;
        let file = path.display().to_string();
        let Ok(source) = String::from_utf8(bytes) else {
            return Err(Failure::usage(format!("`{file}` is not UTF-8 text, so it is not a case file")));
        };
        match parse(&source) {
            Ok(cases) => files.push(CaseFile { file, source, cases }),
            Err(diags) => {
                malformed = malformed.saturating_add(1);
                render::text(Stream::Stderr, &file, &source, &diags)?;
                if args.format == Format::Github {
                    output::print(&render::github(&file, &source, &diags))?;
                }
                let n = diags.len();
                output::eprint(&format!("{file}: {n} error{} in the case file\n", if n == 1 { "" } else { "s" }));
            }
        }
    }
    if malformed > 0 {
        return Ok(Err(Status::Usage));
    }
    if let Some(filter) = &args.filter {
        let total: usize = files.iter().map(|f| f.cases.len()).sum();
        for f in &mut files {
            f.cases.retain(|c| c.name.contains(filter.as_str()));
        }
        if files.iter().all(|f| f.cases.is_empty()) {
            return Err(Failure::usage(format!("--filter {filter:?} matches none of the {total} cases")));
        }
    }

    // One engine per environment, compiled in the order cases first name them.
    let mut engines: HashMap<Option<String>, Option<Engine>> = HashMap::new();
    let env_of = |case: &Case| case.env.clone().or_else(|| args.env.clone());
    for case in files.iter().flat_map(|f| &f.cases) {
        if let Entry::Vacant(slot) = engines.entry(env_of(case)) {
            let engine = explain::load_engine(&args.policy, slot.key().as_deref())?;
            slot.insert(engine);
        }
    }

    let started = Instant::now();
    let mut outcomes = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        for (ci, case) in f.cases.iter().enumerate() {
            let env = env_of(case);
            let t0 = Instant::now();
            let mut route = None;
            let (explanation, mismatches) = match engines.get(&env).and_then(Option::as_ref) {
                Some(engine) => {
                    let draw = |step: &Step| {
                        let draw = Draw { request_id: REQUEST_ID, lane: step.lane.draw() };
                        move || Ok(draw)
                    };
                    // One fresh limiter per case: the `before` requests spend from it first.
                    let mut limiter = engine.new_limiter(LIMITER_SEED);
                    for b in &case.before {
                        explain::decide(engine, with_session(engine, b)?, b.client_ip, b.repeat, b.now, &mut limiter, draw(b))?;
                    }
                    let s = &case.step;
                    let evaluated = explain::evaluate(engine, with_session(engine, s)?, s.client_ip, s.repeat, s.now, &mut limiter, draw(s))?;
                    let mismatches = compare(&case.expect, &evaluated.explanation);
                    route = evaluated.explanation.route.clone();
                    // Kept for the report of a failure only: 10 000 passing explanations are
                    // tens of megabytes of header values nobody reads.
                    let explanation = (!mismatches.is_empty()).then_some(evaluated.explanation);
                    (explanation, mismatches)
                }
                None => {
                    let which = env.as_deref().map_or_else(String::new, |e| format!(" for env `{e}`"));
                    let m = Mismatch {
                        field: "policy".to_owned(),
                        expected: format!("compiles{which}"),
                        actual: "errors (shown above)".to_owned(),
                    };
                    (None, vec![m])
                }
            };
            outcomes.push(Outcome { file: fi, case: ci, mismatches, explanation, time: t0.elapsed(), route });
        }
    }
    Ok(Ok(Ran { elapsed: started.elapsed(), files, outcomes }))
}

/// The step's request, with its test session signed and added.
fn with_session(engine: &Engine, step: &Step) -> Result<Request, Failure> {
    let mut request = step.request.clone();
    if let Some(spec) = &step.session {
        let session = explain::TestSession { source: spec.source.as_deref(), claims: &spec.claims, expires_in: spec.expires_in, forged: spec.forged, cookie_chunks: spec.cookie_chunks };
        explain::add_session(engine, &mut request, step.at, &session)?;
    }
    Ok(request)
}

/// A TOML value as JSON (a case's session claims).
fn json_of(value: &DeValue<'_>) -> serde_json::Value {
    match value {
        DeValue::String(s) => serde_json::Value::from(s.as_ref()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).map_or(serde_json::Value::Null, serde_json::Value::from),
        DeValue::Float(f) => f.as_str().parse::<f64>().map_or(serde_json::Value::Null, serde_json::Value::from),
        DeValue::Boolean(b) => serde_json::Value::from(*b),
        DeValue::Datetime(d) => serde_json::Value::from(d.to_string()),
        DeValue::Array(items) => serde_json::Value::Array(items.iter().map(|v| json_of(v.get_ref())).collect()),
        DeValue::Table(t) => serde_json::Value::Object(t.iter().map(|(k, v)| (k.get_ref().to_string(), json_of(v.get_ref()))).collect()),
    }
}

pub fn run(args: &Args) -> CmdResult {
    let Ran { files, outcomes, elapsed } = match execute(args)? {
        Ok(ran) => ran,
        Err(status) => return Ok(status),
    };
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    let passed = outcomes.len().saturating_sub(failed);
    let summary = format!("{passed} passed, {failed} failed\n");

    let report = Report { args, files: &files, outcomes: &outcomes };
    match args.format {
        Format::Text => {
            output::print(&report.text())?;
            output::print(&summary)?;
        }
        Format::Github => {
            output::print(&report.text())?;
            output::print(&report.github())?;
            output::print(&summary)?;
        }
        Format::Junit => {
            output::print(&report.junit(elapsed))?;
            output::eprint(&summary);
        }
        Format::Sarif => {
            output::print(&format!("{}\n", report.sarif()))?;
            output::eprint(&summary);
        }
    }
    Ok(if failed > 0 { Status::Failed } else { Status::Success })
}

/// What `ready` reports of a policy's test cases.
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    /// `file:line name` of each failing case.
    pub failures: Vec<String>,
    /// The route patterns the cases' requests matched.
    pub routes: std::collections::BTreeSet<String>,
}

/// Run the case files against the policy for `ready`; `Err(status)` as for [`execute`].
pub fn tally(policy: &std::path::Path, cases: &[PathBuf], env: Option<&str>) -> Result<Result<Tally, Status>, Failure> {
    let args = Args { policy: policy.to_path_buf(), cases: cases.to_vec(), env: env.map(str::to_owned), filter: None, format: Format::Text, verbose: false };
    let ran = match execute(&args)? {
        Ok(ran) => ran,
        Err(status) => return Ok(Err(status)),
    };
    let mut t = Tally { passed: 0, failed: 0, failures: Vec::new(), routes: std::collections::BTreeSet::new() };
    for o in &ran.outcomes {
        t.routes.extend(o.route.clone());
        if o.passed() {
            t.passed = t.passed.saturating_add(1);
        } else {
            t.failed = t.failed.saturating_add(1);
            if let Some(case) = ran.files.get(o.file).and_then(|f| f.cases.get(o.case).map(|c| (f, c))) {
                t.failures.push(format!("{}:{} {}", case.0.file, case.1.at_line, case.1.name));
            }
        }
    }
    Ok(Ok(t))
}

/// A JSON rendering of a value in a diff (strings quoted and escaped).
fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_owned(), json_str)
}

/// `<field>` (exact values) and `<field>_match` (patterns) against one header map of the
/// explanation (`response_headers` or `forward_headers`).
fn compare_header_map(
    field: &str,
    exact: &[(String, String)],
    patterns: &[(String, Pattern)],
    got: &BTreeMap<String, String>,
    differ: &mut impl FnMut(String, String, String),
) {
    let shown = |g: Option<&String>| g.map_or_else(|| "(absent)".to_owned(), |g| json_str(g));
    for (name, want) in exact {
        let value = got.get(name);
        if value != Some(want) {
            differ(format!("{field}.{name}"), json_str(want), shown(value));
        }
    }
    for (name, p) in patterns {
        let value = got.get(name);
        if !value.is_some_and(|g| p.is_match(g)) {
            differ(format!("{field}_match.{name}"), format!("a value matching /{}/", p.source), shown(value));
        }
    }
}

/// Every expectation the explanation does not meet, in the order of the contract's fields.
fn compare(x: &Expect, e: &Explanation) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut differ = |field: String, expected: String, actual: String| out.push(Mismatch { field, expected, actual });
    let status = |s: Option<u16>| s.map_or_else(|| "null".to_owned(), |s| s.to_string());
    let action = e.action.code();
    if let Some(want) = &x.action
        && want != action
    {
        differ("action".into(), json_str(want), json_str(action));
    }
    if let Some(want) = x.status
        && want != e.status
    {
        differ("status".into(), status(want), status(e.status));
    }
    if let Some(want) = &x.reason
        && want != e.reason.code()
    {
        differ("reason".into(), json_str(want), json_str(e.reason.code()));
    }
    for (field, want, got) in [("route", &x.route, &e.route), ("origin", &x.origin, &e.origin), ("location", &x.location, &e.location)] {
        if let Some(want) = want
            && want != got
        {
            differ(field.into(), json_opt(want.as_deref()), json_opt(got.as_deref()));
        }
    }
    if let Some(want) = &x.path
        && *want != e.path
    {
        differ("path".into(), json_str(want), json_str(&e.path));
    }
    if let Some(want) = &x.detail_contains
        && !e.detail.contains(want.as_str())
    {
        differ("detail_contains".into(), format!("a detail containing {}", json_str(want)), json_str(&e.detail));
    }
    if let Some(want) = x.shadow_refused
        && want != e.shadow_refused
    {
        differ("shadow_refused".into(), want.to_string(), e.shadow_refused.to_string());
    }
    let csp_nonce = e.csp_nonce.as_ref().map_or("off", |n| n.mode);
    if let Some(want) = &x.csp_nonce
        && want != csp_nonce
    {
        differ("csp_nonce".into(), json_str(want), json_str(csp_nonce));
    }
    let cache = e.cache.as_ref().map_or("off", |c| c.mode);
    if let Some(want) = &x.cache
        && want != cache
    {
        differ("cache".into(), json_str(want), json_str(cache));
    }

    let bot = e.client.bot.map_or("none", |b| b.category.code());
    if let Some(want) = &x.bot
        && want != bot
    {
        differ("client.bot.category".into(), json_str(want), json_str(bot));
    }
    if let Some(want) = x.bot_verified {
        let got = e.client.bot.is_some_and(|b| b.verified);
        if want != got {
            differ("client.bot.verified".into(), want.to_string(), got.to_string());
        }
    }
    if let Some(want) = x.suspicion {
        let got = e.client.suspicion.as_ref().map(|s| u64::from(s.score));
        if Some(want) != got {
            differ("client.suspicion.score".into(), want.to_string(), got.map_or_else(|| "null (no [shield])".to_owned(), |g| g.to_string()));
        }
    }
    let matched = e.client.suspicion.as_ref().and_then(|s| s.matched).map_or("none", |m| m.kind.code());
    if let Some(want) = &x.shield_match
        && want != matched
    {
        differ("client.suspicion.matched.kind".into(), json_str(want), json_str(matched));
    }

    let absent = || "(absent)".to_owned();
    let headers = &e.response_headers;
    compare_header_map("headers", &x.headers, &x.headers_match, headers, &mut differ);
    for name in &x.headers_absent {
        if let Some(got) = headers.get(name) {
            differ(format!("headers_absent.{name}"), absent(), json_str(got));
        }
    }
    for name in &x.headers_present {
        if !headers.contains_key(name) {
            differ(format!("headers_present.{name}"), "(present)".to_owned(), absent());
        }
    }
    for name in &x.removes {
        if !e.remove_headers.contains(name) {
            let list = serde_json::Value::from(e.remove_headers.clone()).to_string();
            differ("removes".into(), format!("a list containing {}", json_str(name)), list);
        }
    }
    for name in &x.strips {
        if !e.strip_request_headers.contains(name) {
            let list = serde_json::Value::from(e.strip_request_headers.clone()).to_string();
            differ("strips".into(), format!("a list containing {}", json_str(name)), list);
        }
    }
    compare_header_map("forward_headers", &x.forward_headers, &x.forward_headers_match, &e.forward_headers, &mut differ);

    match (&x.rate_limit, &e.rate_limit) {
        (None, _) | (Some(None), None) => {}
        (Some(None), Some(got)) => differ("rate_limit".into(), "null".into(), rate_limit_json(got)),
        (Some(Some(want)), None) => differ("rate_limit".into(), rate_limit_expect_json(want), "null".into()),
        (Some(Some(want)), Some(got)) => {
            if let Some(name) = &want.name
                && *name != got.name
            {
                differ("rate_limit.name".into(), json_str(name), json_str(&got.name));
            }
            if let Some(key) = &want.key
                && *key != got.key
            {
                differ("rate_limit.key".into(), json_str(key), json_str(&got.key));
            }
            for (field, want, got) in [
                ("rate_limit.limit", want.limit, got.limit),
                ("rate_limit.remaining", want.remaining, got.remaining),
                ("rate_limit.reset", want.reset, got.reset),
            ] {
                if let Some(want) = want
                    && want != got
                {
                    differ(field.into(), want.to_string(), got.to_string());
                }
            }
        }
    }
    let session = e.session.as_ref().map_or("none", |s| s.state);
    if let Some(want) = &x.session
        && want != session
    {
        differ("session".into(), json_str(want), json_str(session));
    }
    out
}

fn rate_limit_json(r: &edgeguard_core::explain::RateLimitReport) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

fn rate_limit_expect_json(r: &RateLimitExpect) -> String {
    let mut map = serde_json::Map::new();
    if let Some(n) = &r.name {
        map.insert("name".into(), n.as_str().into());
    }
    if let Some(k) = &r.key {
        map.insert("key".into(), k.as_str().into());
    }
    for (k, v) in [("limit", r.limit), ("remaining", r.remaining), ("reset", r.reset)] {
        if let Some(v) = v {
            map.insert(k.into(), v.into());
        }
    }
    serde_json::Value::Object(map).to_string()
}

// ---------------------------------------------------------------- reports

/// The `test-failed` rule's help.
const SARIF_HELP: &str = "the edge's decision for the case's request differs from its [case.expect]: fix the policy or the \
    expectation; the `edgeguard explain` command in the message shows the whole decision";

struct Report<'a> {
    args: &'a Args,
    files: &'a [CaseFile],
    outcomes: &'a [Outcome],
}

impl Report<'_> {
    fn case(&self, o: &Outcome) -> Option<(&CaseFile, &Case)> {
        let f = self.files.get(o.file)?;
        Some((f, f.cases.get(o.case)?))
    }

    /// Each failure as a readable diff (and, with --verbose, each pass as one line).
    fn text(&self) -> String {
        let mut out = String::new();
        for o in self.outcomes {
            let Some((f, c)) = self.case(o) else { continue };
            let line = c.at_line;
            if o.passed() {
                if self.args.verbose {
                    let _ = writeln!(out, "ok   {}:{line}: {}", f.file, c.name);
                }
                continue;
            }
            let _ = writeln!(out, "FAIL {}:{line}: {}", f.file, c.name);
            for m in &o.mismatches {
                let _ = writeln!(out, "  {}\n    expected: {}\n    actual:   {}", m.field, m.expected, m.actual);
            }
            if let Some(earlier) = c.earlier_requests() {
                let _ = writeln!(out, "  after:    {earlier} (`before`), on the same rate limiter");
            }
            if let Some(e) = &o.explanation {
                let status = e.status.map_or_else(String::new, |s| format!(" {s}"));
                let _ = writeln!(
                    out,
                    "  decision: {}{status} {}, route {}, origin {}: {}",
                    e.action.code(),
                    e.reason.code(),
                    json_opt(e.route.as_deref()),
                    json_opt(e.origin.as_deref()),
                    e.detail
                );
            }
            let _ = writeln!(out, "  explain:  {}", self.explain_command(c));
            out.push('\n');
        }
        out
    }

    /// The `edgeguard explain` command that shows the case's whole decision. `explain` sends
    /// one request (repeated) on a fresh limiter, so for a case with `before` requests a shell
    /// comment says that it shows the case's own request without them.
    fn explain_command(&self, c: &Case) -> String {
        let s = &c.step;
        let mut cmd = format!("edgeguard explain {} --request {}", shell_quote(&self.args.policy.display().to_string()), shell_quote(&s.request_line));
        for (n, v) in &s.given_headers {
            let _ = write!(cmd, " -H {}", shell_quote(&format!("{n}: {v}")));
        }
        if let Some(ip) = s.client_ip {
            let _ = write!(cmd, " --client-ip {ip}");
        }
        // `explain --session` sends a valid Bearer session; an expired, forged or cookie one
        // is the case's own.
        if let Some(session) = s.session.as_ref().filter(|x| !x.forged && x.expires_in > 0 && x.cookie_chunks.is_none()) {
            let _ = write!(cmd, " --session {}", shell_quote(&session.claims.to_string()));
            if let Some(source) = &session.source {
                let _ = write!(cmd, " --session-source {}", shell_quote(source));
            }
        }
        let cf = &s.request.cf;
        if let Some(country) = &cf.country {
            let _ = write!(cmd, " --country {}", shell_quote(country));
        }
        if let Some(continent) = &cf.continent {
            let _ = write!(cmd, " --continent {}", shell_quote(continent));
        }
        if let Some(asn) = cf.asn {
            let _ = write!(cmd, " --asn {asn}");
        }
        if cf.verified_bot {
            cmd.push_str(" --verified-bot");
        }
        if let Some(category) = &cf.verified_bot_category {
            let _ = write!(cmd, " --verified-bot-category {}", shell_quote(category));
        }
        if let Some(env) = c.env.as_ref().or(self.args.env.as_ref()) {
            let _ = write!(cmd, " --env {}", shell_quote(env));
        }
        if s.repeat > 1 {
            let _ = write!(cmd, " --repeat {}", s.repeat);
        }
        if s.at > 0 {
            let _ = write!(cmd, " --at {}", s.at);
        }
        if let Some(earlier) = c.earlier_requests() {
            let _ = write!(cmd, "   # this request alone, without the {earlier}");
        }
        cmd
    }

    /// One-line (per field) summary of a failure, for annotations and SARIF.
    fn message(o: &Outcome, c: &Case) -> String {
        let fields: Vec<String> =
            o.mismatches.iter().map(|m| format!("{}: expected {}, actual {}", m.field, m.expected, m.actual)).collect();
        let after = c.earlier_requests().map_or_else(String::new, |e| format!(" after {e}"));
        format!("case `{}` failed{after}\n{}", c.name, fields.join("\n"))
    }

    /// GitHub Actions `::error` annotations on each failing case's `[[case]]` line.
    fn github(&self) -> String {
        let mut out = String::new();
        for (fi, f) in self.files.iter().enumerate() {
            let diags: Vec<Diagnostic> = self
                .outcomes
                .iter()
                .filter(|o| o.file == fi && !o.passed())
                .filter_map(|o| {
                    let c = f.cases.get(o.case)?;
                    Some(Diagnostic::error("test-failed", c.span.clone(), Self::message(o, c)))
                })
                .collect();
            out.push_str(&render::github(&f.file, &f.source, &diags));
        }
        out
    }

    /// SARIF 2.1.0: one `test-failed` result per failing case.
    fn sarif(&self) -> String {
        let findings: Vec<Finding> = self
            .outcomes
            .iter()
            .filter(|o| !o.passed())
            .filter_map(|o| {
                let (f, c) = self.case(o)?;
                let (line, column, end_line, end_column) = (c.at_line, c.at_column, c.end_line, c.end_column);
                Some(Finding {
                    rule_id: "test-failed".to_owned(),
                    rule_name: "A policy test case failed: the edge's decision differs from the case's expectations".to_owned(),
                    level: Level::Error,
                    message: format!("{}\nexplain: {}", Self::message(o, c), self.explain_command(c)),
                    file: f.file.clone(),
                    line,
                    column,
                    end_line,
                    end_column,
                    help: Some(SARIF_HELP.to_owned()),
                })
            })
            .collect();
        sarif::render(&findings)
    }

    /// JUnit XML: one testsuite per case file.
    fn junit(&self, elapsed: Duration) -> String {
        let failures = self.outcomes.iter().filter(|o| !o.passed()).count();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"edgeguard test\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{}\">",
            self.outcomes.len(),
            secs(elapsed)
        );
        for (fi, f) in self.files.iter().enumerate() {
            let mine: Vec<&Outcome> = self.outcomes.iter().filter(|o| o.file == fi).collect();
            let failed = mine.iter().filter(|o| !o.passed()).count();
            let time: Duration = mine.iter().map(|o| o.time).sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{}\">",
                xml_attr(&f.file),
                mine.len(),
                secs(time)
            );
            for o in mine {
                let Some(c) = f.cases.get(o.case) else { continue };
                let line = c.at_line;
                let _ = write!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{line}\" time=\"{}\"",
                    xml_attr(&c.name),
                    xml_attr(&f.file),
                    xml_attr(&f.file),
                    secs(o.time)
                );
                if o.passed() {
                    out.push_str("/>\n");
                    continue;
                }
                let first = o.mismatches.first().map(|m| format!("{}: expected {}, actual {}", m.field, m.expected, m.actual));
                let mut body = String::new();
                for m in &o.mismatches {
                    let _ = writeln!(body, "{}\n  expected: {}\n  actual:   {}", m.field, m.expected, m.actual);
                }
                if let Some(earlier) = c.earlier_requests() {
                    let _ = writeln!(body, "after: {earlier} (`before`), on the same rate limiter");
                }
                let _ = writeln!(body, "explain: {}", self.explain_command(c));
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"test-failed\" message=\"{}\">{}</failure>\n    </testcase>",
                    xml_attr(&first.unwrap_or_default()),
                    xml_text(&body)
                );
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// Seconds with millisecond precision, as JUnit's `time` attributes.
fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// A character XML 1.0 allows; others become U+FFFD.
fn xml_char(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' => c,
        c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
        c => c,
    }
}

fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(xml_char(c)),
        }
    }
    out
}

fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(xml_char(c)),
        }
    }
    out
}

/// POSIX shell single-quoting, only when needed.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b)) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use edgeguard_core::Reason;

    use super::*;

    fn errors(src: &str) -> Vec<String> {
        match parse(src) {
            Ok(cases) => panic!("parsed {} cases", cases.len()),
            Err(d) => d.iter().map(|d| format!("{} | {}", d.message, d.help.clone().unwrap_or_default())).collect(),
        }
    }

    const GOOD: &str = r#"
[defaults]
headers = { host = "example.com", "X-A" = "1" }
client_ip = "198.51.100.7"
env = "staging"

[[case]]
name = "one"
request = "GET /x"
headers = { "x-a" = "2", "content-length" = 10 }
repeat = 3
[case.expect]
status = "none"
route = "none"
rate_limit = { name = "api", remaining = 1 }
headers = { "X-Frame-Options" = "DENY" }
headers_match = { "content-security-policy" = "object-src 'none'" }
removes = ["X-Powered-By"]

[[case]]
request = "POST https://b.example/y"
env = "production"
lane = "canary"
at = 60
expect = { status = 404, reason = "blocked", action = "reject" }
"#;

    #[test]
    fn parses_cases_with_defaults() {
        let cases = parse(GOOD).unwrap();
        assert_eq!(cases.len(), 2);
        let a = &cases[0];
        assert_eq!(a.name, "one");
        assert_eq!(a.step.request.headers, vec![
            ("host".to_owned(), "example.com".to_owned()),
            ("content-length".to_owned(), "10".to_owned()),
            ("x-a".to_owned(), "2".to_owned()),
        ], "defaults first; a case's header replaces the default of the same name");
        assert_eq!((a.step.repeat, a.env.as_deref(), a.step.lane), (3, Some("staging"), Lane::Active));
        assert_eq!(a.step.client_ip, "198.51.100.7".parse().ok());
        assert_eq!(a.expect.status, Some(None));
        assert_eq!(a.expect.route, Some(None));
        assert_eq!(a.expect.headers, vec![("x-frame-options".to_owned(), "DENY".to_owned())]);
        assert_eq!(a.expect.removes, vec!["x-powered-by".to_owned()]);
        assert_eq!(a.expect.rate_limit, Some(Some(RateLimitExpect { name: Some("api".into()), remaining: Some(1), ..Default::default() })));
        assert_eq!(&GOOD[a.span.clone()], "[[case]]");
        let b = &cases[1];
        assert_eq!(b.name, "POST https://b.example/y", "the request line names an unnamed case");
        assert_eq!((b.env.as_deref(), b.step.lane, b.step.now), (Some("production"), Lane::Canary, 60_000_000_000));
        assert!(b.step.request.headers.iter().any(|(n, v)| n == "host" && v == "example.com"), "a default host wins over the URL's, as -H does");
    }

    #[test]
    fn unknown_keys_suggest() {
        let e = errors("[[case]]\nrequest = \"GET https://a/\"\nstaus = 1\n[case.expect]\nstaus = 200\nheader = {}\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!(e[0], "unknown key `staus` in [[case]] | did you mean `status`? it goes in [case.expect]");
        assert_eq!(e[1], "unknown key `staus` in [case.expect] | did you mean `status`?");
        assert_eq!(e[2], "unknown key `header` in [case.expect] | did you mean `headers`?");
        let e = errors("[[cases]]\nrequest = \"GET https://a/\"\n");
        assert_eq!(e, vec!["unknown key `cases` in the case file | did you mean `case`?".to_owned()]);
        let e = errors("[[case]]\nrequest = \"GET https://a/\"\nstatus = 1\nexpect = { action = \"reject\" }\n");
        assert_eq!(e, vec!["unknown key `status` in [[case]] | `status` goes in [case.expect]".to_owned()]);
    }

    #[test]
    fn bad_values_are_reported() {
        let e = errors(concat!(
            "[[case]]\nrequest = \"G(T https://a/\"\nexpect = { status = 200 }\n",
            "[[case]]\nrequest = \"GET /no-host\"\nexpect = { status = 200 }\n",
            "[[case]]\nrequest = \"GET https://a/\"\nclient_ip = \"nope\"\nrepeat = 0\nexpect = { status = 999, reason = \"blockd\", route = \"api\", headers_match = { a = \"(\" } }\n",
            "[[case]]\nname = \"x\"\nexpect = { status = 200 }\n",
            "[[case]]\nrequest = \"GET https://a/\"\n",
            "[[case]]\nrequest = \"GET https://a/\"\nexpect = {}\n",
        ));
        let all = e.join("\n");
        for needle in [
            "`G(T` is not an HTTP method",
            "`/no-host` has no host",
            "`client_ip` \"nope\" is not an IP address",
            "`repeat` must be between 1 and 1000000; got 0",
            "`status` must be between 100 and 599; got 999",
            "`reason` cannot be \"blockd\" | did you mean \"blocked\"?",
            "`route` \"api\" is not a route pattern",
            "`headers_match.a` is not a valid regular expression",
            "case `x` has no `request`",
            "has no expectations",
            "`expect` is empty",
        ] {
            assert!(all.contains(needle), "`{needle}` in:\n{all}");
        }
    }

    const BEFORE: &str = r#"
[defaults]
headers = { host = "example.com", "x-a" = "1" }
client_ip = "198.51.100.7"
at = 10
lane = "canary"

[[case]]
request = "POST /send"
client_ip = "203.0.113.9"
at = 70
before = [
  { request = "POST /send", repeat = 4 },
  { request = "GET https://b.example/", headers = { "X-A" = "2" }, client_ip = "2001:db8::1", at = 60, lane = "active" },
]
expect = { status = 429 }

[[case]]
request = "GET /x"
expect = { status = 200 }
[[case.before]]
request = "GET /y"
[[case.before]]
request = "GET /z"
repeat = 2
"#;

    #[test]
    fn before_requests_take_the_defaults_not_the_case() {
        let cases = parse(BEFORE).unwrap();
        let [a, b] = &cases[..] else { panic!("{} cases", cases.len()) };
        assert_eq!(a.before.len(), 2);
        let (first, second) = (&a.before[0], &a.before[1]);
        assert_eq!(first.request_line, "POST /send");
        assert_eq!((first.repeat, first.at, first.now, first.lane), (4, 10, 10_000_000_000, Lane::Canary), "[defaults] at and lane");
        assert_eq!(first.client_ip, "198.51.100.7".parse().ok(), "[defaults] client_ip, not the case's");
        assert_eq!(first.request.headers, vec![("host".to_owned(), "example.com".to_owned()), ("x-a".to_owned(), "1".to_owned())]);
        assert_eq!((second.repeat, second.at, second.lane), (1, 60, Lane::Active));
        assert_eq!(second.client_ip, "2001:db8::1".parse().ok());
        assert_eq!(second.request.headers, vec![("host".to_owned(), "example.com".to_owned()), ("X-A".to_owned(), "2".to_owned())]);
        assert_eq!((a.step.at, a.step.client_ip, a.earlier()), (70, "203.0.113.9".parse().ok(), 5));
        assert_eq!(a.earlier_requests().as_deref(), Some("5 earlier requests"));
        let lines: Vec<&str> = b.before.iter().map(|s| s.request_line.as_str()).collect();
        assert_eq!(lines, ["GET /y", "GET /z"], "[[case.before]] tables, in order");
        assert_eq!((b.earlier(), &BEFORE[b.span.clone()]), (3, "[[case]]"));
        let plain = parse(GOOD).unwrap();
        assert!(plain.iter().all(|c| c.before.is_empty() && c.earlier_requests().is_none()));
    }

    #[test]
    fn before_errors() {
        let e = errors(concat!(
            "[[case]]\nrequest = \"GET https://a/\"\nexpect = { status = 200 }\n",
            "before = [{ request = \"GET https://a/\", expect = { status = 200 } }, { request = \"GET https://a/\", reqest = \"x\", status = 1, env = \"x\" }]\n",
            "[[case]]\nrequest = \"GET https://a/\"\nat = 5\nexpect = { status = 200 }\n",
            "before = [{ request = \"GET https://a/\", at = 3 }, { request = \"GET https://a/\", at = 2 }, { request = \"GET https://a/\", at = 6 }]\n",
            "[[case]]\nrequest = \"GET https://a/\"\nexpect = { status = 200 }\nbefore = [{ repeat = 0 }, { headers = {} }, \"GET /\", { request = \"G(T /\" }]\n",
            "[[case]]\nrequest = \"GET https://a/\"\nexpect = { status = 200 }\nbefore = { request = \"GET https://a/\" }\n",
            "[defaults]\nbefore = []\n",
        ));
        let want = [
            "`expect` in a `before` request | a before request has no expect: make it a case of its own, or put the expectation on the case",
            "unknown key `reqest` in a `before` request | did you mean `request`?",
            "unknown key `status` in a `before` request | a before request has no expect: make it a case of its own, or put the expectation on the case",
            "`env` in a `before` request | a before request runs in its case's environment: set `env` on the case",
            "this `before` request is at 2 s, before the one above it (at 3 s) | before requests are sent in order, and time does not go backwards: order them by `at`",
            "this `before` request is at 6 s, after its case (at 5 s) | before requests are sent first, and time does not go backwards: give it an `at` no later than the case's",
            "`repeat` must be between 1 and 1000000; got 0 | ",
            "a `before` request has no `request` | add request = \"GET https://example.com/path\"",
            "a `before` request must be a table, not a string | write each one as { request = \"GET https://example.com/\" }",
            "`G(T` is not an HTTP method | a method is a token such as GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS",
            "`before` is a single table; it is a list of requests | write before = [{ request = \"GET https://example.com/\" }] or [[case.before]] (two brackets)",
            "unknown key `before` in [defaults] | `before` goes in each [[case]]",
        ];
        assert_eq!(e, want.map(str::to_owned), "every problem, in the order of the file");
    }

    #[test]
    fn a_before_error_points_at_its_line_and_column() {
        let src = "[[case]]\nrequest = \"GET https://a/\"\nat = 1\nexpect = { status = 200 }\n[[case.before]]\nrequest = \"GET https://a/\"\nat = 2\n";
        let Err(d) = parse(src) else { panic!("parsed") };
        assert_eq!(d.len(), 1);
        assert_eq!(diagnostics::line_col(src, d[0].span.start), (7, 6), "the entry's `at` value");
        let src = "[[case]]\nrequest = \"GET https://a/\"\nexpect = { status = 200 }\n[[case.before]]\nreqest = \"GET https://a/\"\n";
        let Err(d) = parse(src) else { panic!("parsed") };
        assert_eq!(d.len(), 1, "a misspelt key, and no second error for the missing request");
        assert_eq!(diagnostics::line_col(src, d[0].span.start), (5, 1));
    }

    #[test]
    fn syntax_errors_and_empty_files() {
        assert!(errors("[[case]\n")[0].starts_with("TOML syntax:"));
        assert_eq!(errors("# nothing\n"), vec!["the file has no cases | add one: [[case]] with `request` and [case.expect]".to_owned()]);
        assert!(errors("[case]\nrequest = \"GET https://a/\"\n")[0].contains("[[case]]"));
    }

    #[test]
    fn reasons_are_the_contracts() {
        let all = [
            Reason::Ok,
            Reason::HttpsRedirect,
            Reason::CanonicalHost,
            Reason::HostNotAllowed,
            Reason::BadRequest,
            Reason::UriTooLong,
            Reason::HeadersTooLarge,
            Reason::Health,
            Reason::Blocked,
            Reason::MethodNotAllowed,
            Reason::NotFound,
            Reason::Forbidden,
            Reason::MissingHeader,
            Reason::Unauthorized,
            Reason::LengthRequired,
            Reason::PayloadTooLarge,
            Reason::RateLimited,
            Reason::CspReport,
            Reason::Metrics,
            Reason::UnsupportedMediaType,
            Reason::Maintenance,
            Reason::SessionMissing,
            Reason::SessionInvalid,
            Reason::SessionExpired,
            Reason::SessionClaims,
            Reason::SessionUnavailable,
            Reason::Dashboard,
            Reason::BotDenied,
            Reason::GeoDenied,
            Reason::ShieldBlocked,
        ];
        assert_eq!(all.map(Reason::code).to_vec(), REASONS.to_vec());
    }

    #[test]
    fn line_index_agrees_with_line_col() {
        let src = "a = 1\nbé = 2\n\n[[case]]\nx";
        let index = LineIndex::new(src);
        for offset in 0..=src.len() + 2 {
            if src.is_char_boundary(offset.min(src.len())) {
                assert_eq!(index.line_col(src, offset), diagnostics::line_col(src, offset), "offset {offset}");
            }
        }
    }

    #[test]
    fn literal_patterns_match_as_the_regex_would() {
        let pattern = |source: &str| {
            let src = format!("[[case]]\nrequest = \"GET https://a/\"\nexpect = {{ headers_match = {{ x = \"{source}\" }} }}\n");
            parse(&src).unwrap().remove(0).expect.headers_match.remove(0).1
        };
        let literal = pattern("object-src 'none'");
        assert!(matches!(literal.matcher, Matcher::Literal));
        assert!(literal.is_match("default-src 'self'; object-src 'none'; base-uri 'self'"));
        assert!(!literal.is_match("object-src 'self'"));
        let regex = pattern("^max-age=\\\\d+");
        assert!(matches!(regex.matcher, Matcher::Regex(_)));
        assert!(regex.is_match("max-age=31536000; includeSubDomains"));
        assert!(!regex.is_match("x max-age=1"));
    }

    #[test]
    fn escaping() {
        assert_eq!(xml_attr("a<b>&\"c'\n\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;&#10;\u{FFFD}");
        assert_eq!(xml_text("<x>\n&"), "&lt;x&gt;\n&amp;");
        assert_eq!(shell_quote("GET https://a/b?c=1"), "'GET https://a/b?c=1'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("p.toml"), "p.toml");
    }

    #[test]
    fn lanes_pick_the_expected_side_of_any_share() {
        for share in [1u32, 500, 9_999] {
            assert!(Lane::Canary.draw() % 10_000 < share);
            assert!(Lane::Active.draw() % 10_000 >= share);
        }
        assert!(Lane::Active.draw() % 10_000 < 10_000, "at 100 % every new client is a canary client");
    }
}
