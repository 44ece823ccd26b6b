//! `edgeguard verify`: a few requests to a deployed edge, each compared with what `explain`
//! says the policy does with the same request — the deploy pipeline's last gate
//! (docs/verify.md).
//!
//! The requests are chosen from the policy, at most one of each kind: the edge's health
//! endpoint, a page, the http → https hop, the canonical-host redirect, an unknown host, and
//! the first route the policy blocks, refuses without a session cookie or API key, refuses for
//! a missing header, a wrong method or a parameter of the wrong type, and the first page or API
//! route with a rate limit. A request the policy would forward is only ever a GET; a POST,
//! PATCH or DELETE is sent only when `explain` says the edge refuses it itself, so nothing
//! reaches the app that could change its data. The count is capped (`--max-requests`, at most
//! [`MAX_REQUESTS`]) and so is the rate (`--rate`, at most [`MAX_RATE`] per second): this is a
//! check, never a load test.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use edgeguard_core::explain::Explanation;
use edgeguard_core::{Action, Draw, Engine};
use serde::Serialize;

use crate::explain::{self, Request};
use crate::{CmdResult, Failure, Status, output};

/// Hard caps, whatever the flags say.
pub const MAX_REQUESTS: u32 = 30;
pub const MAX_RATE: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per request, then a summary.
    Text,
    /// One JSON object: { ok, url, host, requests, elapsed_ms, checks: [...] }.
    Json,
    /// A Markdown table, for a pull-request comment or the job summary.
    Markdown,
    /// GitHub Actions workflow commands, one `::error` per mismatch.
    Github,
}

/// Check a deployed edge against the policy: a few requests, each compared with `explain`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The requests are listed in docs/verify.md. Requests the policy forwards are GETs; \
    a POST, PATCH or DELETE is sent only when the policy refuses it at the edge. Exit 0 when every \
    answer matches, 1 on a mismatch (or an edge that cannot be reached), 2 for usage errors.\n\n\
    Examples:\n  \
    edgeguard verify policy.toml --url https://lawnquote.online\n  \
    edgeguard verify policy.toml --url https://127.0.0.1:8787 --host lawnquote.online --insecure   # wrangler dev\n  \
    edgeguard verify policy.toml --url https://quotekit-staging.fly.dev --env staging --format markdown")]
pub struct Args {
    /// The policy file (TOML).
    pub policy: PathBuf,
    /// Where the edge answers: https://host[:port]. Requests go here.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The Host header to send (default: the URL's host); for an edge reached by address.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Where the edge answers plain http, for the http → https check. Default: http:// on the
    /// URL's host when the URL has no port; otherwise the check is skipped.
    #[arg(long, value_name = "URL")]
    pub http_url: Option<String>,
    /// Compile for this environment (overrides `app.environment`).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Accept any TLS certificate (a local `wrangler dev` edge); never for a deployed one.
    #[arg(long)]
    pub insecure: bool,
    /// At most this many requests (1–30).
    #[arg(long, value_name = "N", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub max_requests: u32,
    /// At most this many requests per second (up to 10).
    #[arg(long, value_name = "PER_SECOND", default_value_t = 2.0)]
    pub rate: f64,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// One request to send, and what the policy says about it.
struct Probe {
    kind: &'static str,
    method: &'static str,
    /// `https` or `http`.
    scheme: &'static str,
    host: String,
    path: String,
    #[cfg_attr(target_os = "wasi", allow(dead_code, reason = "sent by the native client only"))]
    headers: Vec<(String, String)>,
    expect: Explanation,
}

/// What came back.
struct Observed {
    status: u16,
    headers: BTreeMap<String, Vec<String>>,
    body: String,
}

/// One field that differs.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    pub field: String,
    pub expected: String,
    pub actual: String,
}

/// One request's result.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub kind: &'static str,
    /// `GET https://host/path` as sent (the Host header's host).
    pub request: String,
    pub expected_status: Option<u16>,
    pub expected_reason: &'static str,
    pub status: Option<u16>,
    pub reason: Option<String>,
    /// Headers compared, by name.
    pub headers_checked: usize,
    pub mismatches: Vec<Mismatch>,
    /// The request could not be made (connection, TLS, timeout); the check fails.
    pub error: Option<String>,
}

impl Checked {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.mismatches.is_empty()
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub ok: bool,
    pub url: String,
    pub host: String,
    pub requests: usize,
    pub elapsed_ms: u128,
    /// Kinds the policy gives no request for (no `[health]`, no blocked route, …).
    pub not_applicable: Vec<&'static str>,
    pub checks: Vec<Checked>,
}

pub fn run(args: &Args) -> CmdResult {
    let Some(outcome) = check(args)? else { return Ok(Status::Failed) };
    match args.format {
        Format::Text => output::print(&text(&outcome))?,
        Format::Json => output::print(&format!("{}\n", serde_json::to_string_pretty(&outcome).map_err(|e| Failure::failed(format!("cannot serialize the report: {e}")))?))?,
        Format::Markdown => output::print(&markdown(&outcome))?,
        Format::Github => {
            output::print(&github(&outcome))?;
            output::eprint(&summary(&outcome));
        }
    }
    Ok(if outcome.ok { Status::Success } else { Status::Failed })
}

/// Plan, send and compare; `None` when the policy does not compile (its errors printed).
pub fn check(args: &Args) -> Result<Option<Outcome>, Failure> {
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= MAX_RATE) {
        return Err(Failure::usage(format!("--rate must be above 0 and at most {MAX_RATE} requests per second")));
    }
    let base = Base::parse(&args.url)?;
    let host = args.host.clone().unwrap_or_else(|| base.host.clone()).to_ascii_lowercase();
    let http_base = match &args.http_url {
        Some(u) => Some(Base::parse(u)?),
        None if base.port.is_none() => Some(Base { scheme: "http", host: base.host.clone(), port: None }),
        None => None,
    };
    let Some(engine) = explain::load_engine(&args.policy, args.env.as_deref())? else { return Ok(None) };
    let (mut probes, mut not_applicable) = plan(&engine, &host)?;
    if http_base.is_none() {
        probes.retain(|p| p.scheme != "http");
        not_applicable.push("https-redirect");
    }
    probes.truncate(usize::try_from(args.max_requests.min(MAX_REQUESTS)).unwrap_or(12));
    let agent = agent(args)?;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let started = Instant::now();
    let mut checks = Vec::new();
    for (i, probe) in probes.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(interval);
        }
        let target = if probe.scheme == "http" { http_base.as_ref().unwrap_or(&base) } else { &base };
        let request = format!("{} {}://{}{}", probe.method, probe.scheme, probe.host, probe.path);
        let mut checked = Checked {
            kind: probe.kind,
            request,
            expected_status: probe.expect.status,
            expected_reason: probe.expect.reason.code(),
            status: None,
            reason: None,
            headers_checked: 0,
            mismatches: Vec::new(),
            error: None,
        };
        match send(&agent, target, probe) {
            Ok(observed) => compare(probe, &observed, &mut checked),
            Err(e) => checked.error = Some(e),
        }
        checks.push(checked);
    }
    let ok = checks.iter().all(Checked::passed);
    Ok(Some(Outcome { ok, url: args.url.clone(), host, requests: checks.len(), elapsed_ms: started.elapsed().as_millis(), not_applicable, checks }))
}

// ----------------------------------------------------------------------------------- planning

/// A path for a route pattern: each `:param` and glob filled with `fill`.
fn sample_path(pattern: &str, fill: &str) -> String {
    let mut out = String::new();
    for seg in pattern.split('/').skip(1) {
        out.push('/');
        if seg.starts_with(':') || seg == "**" {
            out.push_str(fill);
        } else {
            out.push_str(&seg.replace('*', "x"));
        }
    }
    if out.is_empty() { "/".to_owned() } else { out }
}

const UUID: &str = "00000000-0000-4000-8000-000000000000";

fn explain_one(engine: &Engine, method: &str, scheme: &str, host: &str, path: &str, headers: &[(String, String)]) -> Result<Option<Explanation>, Failure> {
    let mut all = vec![("Host".to_owned(), host.to_owned())];
    all.extend(headers.iter().cloned());
    let Ok(request) = Request::new(&format!("{method} {scheme}://{host}{path}"), all) else { return Ok(None) };
    let mut limiter = engine.new_limiter(0);
    let draw = Draw { request_id: 1, lane: 0 };
    let evaluated = explain::evaluate(engine, request, None, 1, 0, &mut limiter, move || Ok(draw))?;
    Ok(Some(evaluated.explanation))
}

/// The requests for this policy, in order, and the kinds it has none for.
fn plan(engine: &Engine, host: &str) -> Result<(Vec<Probe>, Vec<&'static str>), Failure> {
    let bundle = engine.bundle();
    let mut probes: Vec<Probe> = Vec::new();
    let add = |probes: &mut Vec<Probe>, kind: &'static str, method: &'static str, scheme: &'static str, h: &str, path: String, headers: Vec<(String, String)>| -> Result<bool, Failure> {
        if probes.iter().any(|p| p.kind == kind) {
            return Ok(false);
        }
        let Some(expect) = explain_one(engine, method, scheme, h, &path, &headers)? else { return Ok(false) };
        // Only what the edge answers itself may be anything but a GET or HEAD.
        if expect.action == Action::Forward && !matches!(method, "GET" | "HEAD") {
            return Ok(false);
        }
        probes.push(Probe { kind, method, scheme, host: h.to_owned(), path, headers, expect });
        Ok(true)
    };
    if let Some(health) = &bundle.health {
        add(&mut probes, "health", "GET", "https", host, health.path.clone(), Vec::new())?;
    }
    add(&mut probes, "page", "GET", "https", host, "/".to_owned(), Vec::new())?;
    if bundle.https.redirect {
        add(&mut probes, "https-redirect", "GET", "http", host, "/".to_owned(), Vec::new())?;
    }
    if let Some(other) = bundle.app.hosts.iter().find(|h| Some(h.as_str()) != bundle.app.canonical_host.as_deref() && bundle.app.canonical_host.is_some()) {
        add(&mut probes, "canonical-host", "GET", "https", other, "/".to_owned(), Vec::new())?;
    }
    if !bundle.app.hosts.is_empty() {
        add(&mut probes, "unknown-host", "GET", "https", "edgeguard-verify.invalid", "/".to_owned(), Vec::new())?;
    }
    let no_body = vec![("Content-Length".to_owned(), "0".to_owned())];
    // The page's limit is checked with the page; the rate-limit check takes another limit.
    let page_limit = probes.iter().find(|p| p.kind == "page").and_then(|p| p.expect.rate_limit.as_ref()).map(|r| r.name.clone());
    for route in &bundle.routes {
        let Some(pattern) = route.pattern.as_deref() else { continue };
        let path = sample_path(pattern, UUID);
        let Some(get) = explain_one(engine, "GET", "https", host, &path, &[])? else { continue };
        let kind = match get.reason.code() {
            "blocked" => Some("blocked"),
            "unauthorized" if route.api_key.is_some() => Some("api-key"),
            "unauthorized" | "forbidden" | "session_missing" => Some("session"),
            "method_not_allowed" => Some("method"),
            "ok" if get.action == Action::Forward && get.rate_limit.as_ref().is_some_and(|r| Some(&r.name) != page_limit.as_ref()) => Some("rate-limit-headers"),
            _ => None,
        };
        if let Some(kind) = kind {
            add(&mut probes, kind, "GET", "https", host, path.clone(), Vec::new())?;
        }
        if !route.require_headers.is_empty() {
            add(&mut probes, "required-header", "POST", "https", host, path.clone(), no_body.clone())?;
        }
        if pattern.split('/').any(|s| s.starts_with(':')) {
            let wrong = sample_path(pattern, "edgeguard-verify");
            if explain_one(engine, "GET", "https", host, &wrong, &[])?.is_some_and(|e| e.reason.code() == "not_found") {
                add(&mut probes, "param-type", "GET", "https", host, wrong, Vec::new())?;
            }
        }
    }
    let kinds = ["health", "page", "https-redirect", "canonical-host", "unknown-host", "blocked", "session", "api-key", "required-header", "method", "param-type", "rate-limit-headers"];
    let missing = kinds.iter().copied().filter(|k| !probes.iter().any(|p| p.kind == *k)).collect();
    Ok((probes, missing))
}

// ------------------------------------------------------------------------------------ sending

/// Where requests go: scheme, host and port of `--url`.
#[cfg_attr(target_os = "wasi", allow(dead_code, reason = "sent by the native client only"))]
struct Base {
    scheme: &'static str,
    host: String,
    port: Option<u16>,
}

impl Base {
    fn parse(url: &str) -> Result<Base, Failure> {
        let bad = || Failure::usage(format!("`{url}` is not an http(s)://host[:port] URL"));
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => "https",
            "http" => "http",
            _ => return Err(bad()),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h.to_owned(), Some(p.parse::<u16>().map_err(|_| bad())?)),
            _ => (authority.to_owned(), None),
        };
        Ok(Base { scheme, host, port })
    }

    #[cfg_attr(target_os = "wasi", allow(dead_code, reason = "sent by the native client only"))]
    fn url(&self, path: &str) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}{path}", self.scheme, self.host),
            None => format!("{}://{}{path}", self.scheme, self.host),
        }
    }
}

#[cfg(not(target_os = "wasi"))]
type Agent = ureq::Agent;
#[cfg(target_os = "wasi")]
type Agent = ();

#[cfg(not(target_os = "wasi"))]
fn agent(args: &Args) -> Result<Agent, Failure> {
    let tls = ureq::tls::TlsConfig::builder().disable_verification(args.insecure).build();
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(Duration::from_secs(args.timeout.max(1))))
        .user_agent(format!("edgeguard-verify/{}", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

#[cfg(target_os = "wasi")]
fn agent(_args: &Args) -> Result<Agent, Failure> {
    Err(Failure::usage("verify needs network access, which the npm package's WebAssembly CLI does not have; run the native CLI (cargo install edgeguard-cli)"))
}

#[cfg(not(target_os = "wasi"))]
fn send(agent: &Agent, base: &Base, probe: &Probe) -> Result<Observed, String> {
    let url = base.url(&probe.path);
    let result = match probe.method {
        "GET" => with_headers(agent.get(&url), probe).call(),
        "HEAD" => with_headers(agent.head(&url), probe).call(),
        "DELETE" => with_headers(agent.delete(&url), probe).call(),
        "POST" => with_headers(agent.post(&url), probe).send_empty(),
        "PATCH" => with_headers(agent.patch(&url), probe).send_empty(),
        "PUT" => with_headers(agent.put(&url), probe).send_empty(),
        other => return Err(format!("{other} is not a method verify sends")),
    };
    let mut response = result.map_err(|e| format!("no answer from {url}: {e}"))?;
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in response.headers() {
        headers.entry(name.as_str().to_ascii_lowercase()).or_default().push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let status = response.status().as_u16();
    let body = response.body_mut().with_config().limit(64 * 1024).read_to_string().unwrap_or_default();
    Ok(Observed { status, headers, body })
}

#[cfg(not(target_os = "wasi"))]
fn with_headers<B>(mut req: ureq::RequestBuilder<B>, probe: &Probe) -> ureq::RequestBuilder<B> {
    req = req.header("host", &probe.host);
    for (n, v) in probe.headers.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("content-length")) {
        req = req.header(n.as_str(), v.as_str());
    }
    req
}

#[cfg(target_os = "wasi")]
fn send(_agent: &Agent, _base: &Base, _probe: &Probe) -> Result<Observed, String> {
    Err("no network under WASI".to_owned())
}

// ---------------------------------------------------------------------------------- comparing

/// Response headers whose values change from one response to the next.
const VOLATILE: [&str; 5] = ["x-request-id", "ratelimit", "date", "content-length", "retry-after"];

/// The reason an edgeguard refusal carries (its problem+json `type`), or `ok`.
fn live_reason(observed: &Observed, expect: &Explanation) -> String {
    let problem = observed.headers.get("content-type").and_then(|v| v.first()).is_some_and(|ct| ct.starts_with("application/problem+json"));
    if problem {
        let json: Option<serde_json::Value> = serde_json::from_str(&observed.body).ok();
        if let Some(kind) = json.as_ref().and_then(|j| j.get("type")).and_then(serde_json::Value::as_str)
            && let Some(slug) = kind.strip_prefix("https://edgeguard.dev/problems/")
        {
            return slug.replace('-', "_");
        }
    }
    match expect.action {
        Action::Redirect if (300..400).contains(&observed.status) => expect.reason.code().to_owned(),
        _ if expect.reason.code() == "health" && observed.headers.get("content-type").and_then(|v| v.first()).is_some_and(|c| c.starts_with("application/health+json")) => "health".to_owned(),
        _ => "ok".to_owned(),
    }
}

fn compare(probe: &Probe, observed: &Observed, checked: &mut Checked) {
    let e = &probe.expect;
    let mut miss = |field: &str, expected: String, actual: String| checked.mismatches.push(Mismatch { field: field.to_owned(), expected, actual });
    checked.status = Some(observed.status);
    let reason = live_reason(observed, e);
    // A forwarded request's status is the app's; the edge guarantees its headers only.
    if e.action != Action::Forward && e.status != Some(observed.status) {
        miss("status", e.status.map_or_else(|| "the app's".to_owned(), |s| s.to_string()), observed.status.to_string());
    }
    if reason != e.reason.code() {
        miss("reason", e.reason.code().to_owned(), reason.clone());
    }
    checked.reason = Some(reason);
    if let Some(location) = &e.location {
        let got = observed.headers.get("location").and_then(|v| v.first()).cloned().unwrap_or_else(|| "(none)".to_owned());
        if &got != location {
            miss("location", location.clone(), got);
        }
    }
    if e.reason.code() == "health" {
        let status = serde_json::from_str::<serde_json::Value>(&observed.body).ok().and_then(|j| j.get("status").and_then(serde_json::Value::as_str).map(str::to_owned));
        if status.as_deref() != Some("pass") {
            miss("health", "status \"pass\"".to_owned(), status.map_or_else(|| "no health+json body".to_owned(), |s| format!("status \"{s}\"")));
        }
    }
    let mut compared = 0usize;
    for (name, want) in &e.response_headers {
        if VOLATILE.contains(&name.as_str()) || (name == "content-security-policy" && e.csp_nonce.is_some()) {
            continue;
        }
        // The app's own content type on a forward; the edge's on its own answers.
        if name == "content-type" && e.action == Action::Forward {
            continue;
        }
        compared = compared.saturating_add(1);
        match observed.headers.get(name).map(Vec::as_slice) {
            Some([one]) if one == want => {}
            Some([one]) => miss(&format!("header {name}"), want.clone(), one.clone()),
            Some(many) => miss(&format!("header {name}"), format!("one: {want}"), format!("{} values", many.len())),
            None => miss(&format!("header {name}"), want.clone(), "(none)".to_owned()),
        }
    }
    if e.rate_limit.is_some() {
        compared = compared.saturating_add(1);
        if !observed.headers.contains_key("ratelimit") {
            miss("header ratelimit", "present".to_owned(), "(none)".to_owned());
        }
    }
    if e.action == Action::Forward {
        for gone in e.remove_headers.iter().filter(|h| h.as_str() != "server") {
            compared = compared.saturating_add(1);
            if observed.headers.contains_key(gone) {
                miss(&format!("header {gone}"), "removed".to_owned(), "present".to_owned());
            }
        }
    }
    checked.headers_checked = compared;
}

// ------------------------------------------------------------------------------------ reports

fn summary(o: &Outcome) -> String {
    let failed = o.checks.iter().filter(|c| !c.passed()).count();
    format!("verify: {} passed, {failed} failed — {} requests to {} in {:.1} s\n", o.checks.len().saturating_sub(failed), o.requests, o.url, o.elapsed_ms as f64 / 1000.0)
}

/// `status 200, expected 404; reason ok, expected blocked`.
pub fn mismatch_text(c: &Checked) -> String {
    if let Some(e) = &c.error {
        return e.clone();
    }
    c.mismatches.iter().map(|m| format!("{}: {}, expected {}", m.field, m.actual, m.expected)).collect::<Vec<_>>().join("; ")
}

fn verdict(c: &Checked) -> String {
    let status = c.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
    format!("{status} {}", c.reason.as_deref().unwrap_or("-"))
}

fn text(o: &Outcome) -> String {
    let mut out = format!("verify: {} as {}\n", o.url, o.host);
    for c in &o.checks {
        let word = if c.passed() { "pass" } else { "FAIL" };
        let _ = write!(out, "  {word}  {:<19} {:<55} {}", c.kind, c.request, verdict(c));
        if c.passed() {
            let _ = writeln!(out, " ({} headers)", c.headers_checked);
        } else {
            let _ = writeln!(out, "\n        {}", mismatch_text(c));
        }
    }
    if !o.not_applicable.is_empty() {
        let _ = writeln!(out, "  not sent (nothing in the policy for them): {}", o.not_applicable.join(", "));
    }
    out.push_str(&summary(o));
    out
}

fn markdown(o: &Outcome) -> String {
    let mut out = format!("### edgeguard verify: {}\n\n| | check | request | answer | |\n|---|---|---|---|---|\n", if o.ok { "all match" } else { "mismatches" });
    for c in &o.checks {
        let mark = if c.passed() { "✅" } else { "❌" };
        let note = if c.passed() { format!("{} headers match", c.headers_checked) } else { mismatch_text(c).replace('|', "\\|") };
        let _ = writeln!(out, "| {mark} | {} | `{}` | {} | {note} |", c.kind, c.request, verdict(c));
    }
    let _ = writeln!(out, "\n{}", summary(o).trim_end());
    out
}

fn github(o: &Outcome) -> String {
    let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let mut out = String::new();
    for c in o.checks.iter().filter(|c| !c.passed()) {
        let _ = writeln!(out, "::error title=verify {}::{}", c.kind, data(&format!("{}: {}", c.request, mismatch_text(c))));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn sample_paths() {
        assert_eq!(sample_path("/api/quotes/:id/pdf", UUID), format!("/api/quotes/{UUID}/pdf"));
        assert_eq!(sample_path("/api/debug-*", UUID), "/api/debug-x");
        assert_eq!(sample_path("/api/admin/**", UUID), format!("/api/admin/{UUID}"));
        assert_eq!(sample_path("/", UUID), "/");
    }

    #[test]
    fn bases() {
        let b = Base::parse("https://127.0.0.1:8787/x").unwrap();
        assert_eq!((b.scheme, b.host.as_str(), b.port), ("https", "127.0.0.1", Some(8787)));
        assert_eq!(Base::parse("https://lawnquote.online").unwrap().url("/a"), "https://lawnquote.online/a");
        assert!(Base::parse("ftp://x").is_err());
        assert!(Base::parse("https://u:p@x").is_err());
    }

    fn outcome() -> Outcome {
        let check = |kind, status, mismatches: Vec<Mismatch>| Checked {
            kind,
            request: format!("GET https://lawnquote.online/{kind}"),
            expected_status: Some(404),
            expected_reason: "blocked",
            status: Some(status),
            reason: Some(if status == 404 { "blocked".to_owned() } else { "ok".to_owned() }),
            headers_checked: 15,
            mismatches,
            error: None,
        };
        let m = Mismatch { field: "status".to_owned(), expected: "404".to_owned(), actual: "200".to_owned() };
        Outcome {
            ok: false,
            url: "https://lawnquote.online".to_owned(),
            host: "lawnquote.online".to_owned(),
            requests: 2,
            elapsed_ms: 1500,
            not_applicable: vec![],
            checks: vec![check("blocked", 200, vec![m]), check("param-type", 404, vec![])],
        }
    }

    #[test]
    fn markdown_and_annotations() {
        let o = outcome();
        assert_eq!(
            markdown(&o),
            "### edgeguard verify: mismatches\n\n| | check | request | answer | |\n|---|---|---|---|---|\n\
             | ❌ | blocked | `GET https://lawnquote.online/blocked` | 200 ok | status: 200, expected 404 |\n\
             | ✅ | param-type | `GET https://lawnquote.online/param-type` | 404 blocked | 15 headers match |\n\
             \nverify: 1 passed, 1 failed — 2 requests to https://lawnquote.online in 1.5 s\n"
        );
        assert_eq!(github(&o), "::error title=verify blocked::GET https://lawnquote.online/blocked: status: 200, expected 404\n");
    }

    #[test]
    fn quotekit_plan_is_bounded_and_safe() {
        let engine = explain::load_engine(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/quotekit.toml")), None).unwrap().unwrap();
        let (probes, missing) = plan(&engine, "lawnquote.online").unwrap();
        let kinds: Vec<&str> = probes.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, ["health", "page", "https-redirect", "canonical-host", "unknown-host", "rate-limit-headers", "method", "required-header", "session", "api-key", "param-type", "blocked"]);
        assert!(missing.is_empty(), "{missing:?}");
        for p in &probes {
            assert!(p.expect.action != Action::Forward || p.method == "GET", "{} {}", p.method, p.path);
        }
    }
}
