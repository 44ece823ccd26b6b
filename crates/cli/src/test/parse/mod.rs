//! Reading a case file: every problem is collected as a `case-file` diagnostic with its span.

use core::ops::Range;
use std::collections::HashMap;

use edgeguard_compiler::diagnostics::{self, Diagnostic};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::explain::{self, Request, RequestError};

use super::cases::{BEFORE_EXPECT_HELP, BEFORE_KEYS, BOT_CATEGORIES, CACHE_MODES, CASE_KEYS, CODE, CSP_NONCE_MODES, Case, DEFAULTS_KEYS, Defaults, EXPECT_KEYS, Expect, MAX_REPEAT, Matcher, RATE_LIMIT_KEYS, REASONS, RateLimitExpect, SESSION_KEYS, SESSION_STATES, SHIELD_FAMILIES, SessionSpec, Step, StepKeys, TOP_KEYS};
use super::json_of;

type Key<'i> = Spanned<std::borrow::Cow<'i, str>>;
type Value<'i> = Spanned<DeValue<'i>>;

/// Parse a case file: every problem is collected as a diagnostic.
pub(super) fn parse(source: &str) -> Result<Vec<Case>, Vec<Diagnostic>> {
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

mod values;

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
                "action" => e.action = self.choice("action", value, &edgeguard_core::Action::ALL.map(edgeguard_core::Action::code)),
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
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(source: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(source.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i.saturating_add(1)));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters), as [`line_col`] counts them.
    pub(super) fn line_col(&self, source: &str, offset: usize) -> (usize, usize) {
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

