//! `edgeguard explain`: what the edge does with one request, through the same engine the worker
//! runs, printed as the `explain` JSON contract (docs/explain.md) or as text.
//!
//! Randomness: the engine is pure, so the shell draws for it. Each evaluated request gets a
//! fresh random request id (u128) and canary lane (u32), and the limiter gets a random hash seed,
//! all from the operating system's generator (`getrandom`). A policy with a canary can therefore
//! pick a different origin from one run to the next, exactly as two new clients would at the edge.

use core::net::IpAddr;
use std::path::PathBuf;

use edgeguard_core::explain::Explanation;
use edgeguard_core::limits::Nanos;
use edgeguard_core::request::{CfInput, TextRequest, TextRequestError, decide_repeated_on};
use edgeguard_core::{Action, Decision, Draw, Engine, Limiter};

use crate::render::{self, Counts, Stream};
use crate::{CmdResult, Failure, Status, check, output, policy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The `explain` contract: one JSON object.
    Json,
    /// A readable summary of the same facts.
    Text,
}

/// Show what the edge would do with one request.
#[derive(Debug, clap::Args)]
#[command(after_help = "The decision is the output: exit 0 whatever it is (exit 1 only when the \
    policy has errors). Compiler warnings are counted on stderr; `check` shows them.\n\n\
    An absolute URL gets a matching Host header unless -H gives one; an origin-form target \
    (/path) needs -H 'Host: ...'.\n\n\
    Examples:\n  \
    edgeguard explain policy.toml --request 'GET http://example.com/'\n  \
    edgeguard explain policy.toml --request 'POST /api/webhooks/stripe' -H 'Host: example.com' \
    -H 'Content-Length: 10'\n  \
    edgeguard explain policy.toml --request 'GET https://example.com/api/x' --client-ip 203.0.113.7 \
    --repeat 30 --format text")]
pub struct Args {
    /// The policy file (TOML).
    pub policy: PathBuf,
    /// The request line: method and URL, e.g. "GET https://example.com/path?q=1" or "GET /path".
    #[arg(long, value_name = "METHOD URL")]
    pub request: String,
    /// A request header "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The client's address, sent in the policy's trusted `client_ip.from` header
    /// (cf-connecting-ip by default; replacing any -H of that name), as the worker reads it.
    #[arg(long, value_name = "IP")]
    pub client_ip: Option<IpAddr>,
    /// Compile for this environment (overrides `app.environment`, picks `[env.NAME]`).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Evaluate N identical requests at the same instant against one fresh limiter; report the last.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub repeat: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// The instant of the requests, in seconds on the limiter's clock.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub at: u64,
    /// Decide as the edge does with maintenance mode on (the worker var `EDGE_MAINTENANCE=1`).
    #[arg(long)]
    pub maintenance: bool,
    /// Send a test session with these claims (a JSON object, e.g. '{"sub":"u-1","app_metadata":{"role":"admin"}}'),
    /// signed with the session source's `test_secret`, valid for an hour.
    #[arg(long, value_name = "CLAIMS")]
    pub session: Option<String>,
    /// The `[sessions.<name>]` source `--session` signs for (needed when the policy has several).
    #[arg(long, value_name = "NAME", requires = "session")]
    pub session_source: Option<String>,
    /// The client's country as Cloudflare reports it in `request.cf.country` (ISO 3166-1
    /// alpha-2, e.g. DE). Without it the request has no location, as under `wrangler dev`.
    #[arg(long, value_name = "CC")]
    pub country: Option<String>,
    /// `request.cf.continent`: AF, AN, AS, EU, NA, OC or SA.
    #[arg(long, value_name = "CODE")]
    pub continent: Option<String>,
    /// `request.cf.asn`: the client's network, e.g. 13335.
    #[arg(long, value_name = "NUMBER")]
    pub asn: Option<u32>,
    /// Cloudflare verified the client as a bot (`request.cf.botManagement.verifiedBot`).
    #[arg(long)]
    pub verified_bot: bool,
    /// `request.cf.verifiedBotCategory`, e.g. "Search Engine Crawler" (implies a verified bot).
    #[arg(long, value_name = "CATEGORY")]
    pub verified_bot_category: Option<String>,
}

/// A request as `explain` and `test` hand it to the engine: a method token, a request target
/// and headers, checked before the policy is read (see [`Request::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    /// What stands in for `request.cf` (`--country`, a case's `country = …`).
    pub(crate) cf: CfInput,
}

/// Why a request line and headers are not a request. Each command words it for its own input
/// (`--request`/`-H` flags, or a case file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestError {
    /// Not `METHOD URL` (two words).
    Shape,
    /// The method is not an HTTP token.
    Method(String),
    /// The header at this index has an empty name or one that is not an HTTP token.
    HeaderName(usize),
    /// An origin-form target (`/path`) without a Host header.
    NoHost(String),
    /// Neither an absolute `http(s)://` URL nor a path.
    NotATarget(String),
}

impl Request {
    /// Check `METHOD URL` and the headers (names as given, values trimmed by the caller). An
    /// absolute URL gets a matching `Host` header unless one is given, as a real client sends
    /// (the rules are edgeguard-core's [`TextRequest::new`], shared with the playground).
    pub(crate) fn new(line: &str, headers: Vec<(String, String)>) -> Result<Request, RequestError> {
        let mut parts = line.split_whitespace();
        let (Some(method), Some(url), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(RequestError::Shape);
        };
        let r = TextRequest::new(method, url, headers).map_err(|e| match e {
            TextRequestError::Method(m) => RequestError::Method(m),
            TextRequestError::HeaderName(i) => RequestError::HeaderName(i),
            TextRequestError::NoHost(u) => RequestError::NoHost(u),
            TextRequestError::NotATarget(u) => RequestError::NotATarget(u),
        })?;
        Ok(Request { method: r.method, url: r.url, headers: r.headers, cf: CfInput::default() })
    }
}

/// One evaluation's answer, and whether the request got as far as route matching (so a `null`
/// route means `[defaults]`).
pub(crate) struct Evaluated {
    pub(crate) explanation: Explanation,
    pub(crate) routed: bool,
}

/// `--at SECONDS` as the engine's nanoseconds; `None` when it does not fit.
pub(crate) fn nanos(at_secs: u64) -> Option<u64> {
    at_secs.checked_mul(1_000_000_000)
}

/// Compile the policy for `env` and load its engine. Errors are printed on stderr (with the
/// summary line) and give `Ok(None)`: the policy failed. Warnings are `check`'s business, so
/// they are only counted on stderr.
pub(crate) fn load_engine(path: &std::path::Path, env: Option<&str>) -> Result<Option<Engine>, Failure> {
    let compiled = policy::load(path, env)?;
    let diags = &compiled.output.diagnostics;
    let counts = Counts::of(diags);
    if counts.errors > 0 {
        let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).cloned().collect();
        render::text(Stream::Stderr, &compiled.file, &compiled.source, &errors)?;
        output::eprint(&render::summary(&compiled.file, counts, false));
        return Ok(None);
    }
    if counts.warnings > 0 {
        output::eprint(&format!("{}: {} warning(s); run `edgeguard check {}` to see them\n", compiled.file, counts.warnings, compiled.file));
    }
    let Some(bundle) = compiled.output.bundle else {
        return Err(Failure::failed(format!(
            "`{}` compiled without errors but no bundle was produced (a bug in edgeguard)",
            compiled.file
        )));
    };
    let mut engine = Engine::new(bundle).map_err(|e| Failure::failed(format!("cannot load the compiled policy: {e}")))?;
    // Test tokens (`--session`, a case's `session`) are signed with the source's test_secret;
    // `exp` counts from now, as a token the app issued would.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    engine.sessions().accept_test_tokens(now);
    engine.set_report_client(true);
    Ok(Some(engine))
}

/// A test session (`explain --session`, a case's `session`): a token with `claims` for
/// `source` (the policy's only `[sessions]` source when `None`), valid for `expires_in` seconds
/// from the request's `at` (negative: expired), signed with the source's `test_secret` (another
/// key when `forged`), in the header the source reads (its cookie, in `cookie_chunks` chunks,
/// when given).
pub(crate) struct TestSession<'a> {
    pub source: Option<&'a str>,
    pub claims: &'a serde_json::Value,
    pub expires_in: i64,
    pub forged: bool,
    pub cookie_chunks: Option<usize>,
}

/// Sign `session` and add it to `request`.
pub(crate) fn add_session(engine: &Engine, request: &mut Request, at: u64, session: &TestSession) -> Result<(), Failure> {
    let TestSession { source, claims, expires_in, forged, cookie_chunks } = *session;
    let now = engine.session_clock_base().saturating_add(at);
    let sources = &engine.bundle().sessions;
    let chosen = match source {
        Some(name) => sources.iter().find(|s| s.name == name).ok_or_else(|| Failure::usage(format!("the policy has no session source `{name}`")))?,
        None => match sources.as_slice() {
            [only] => only,
            [] => return Err(Failure::usage("the policy has no [sessions.<name>] source to sign a test session for")),
            _ => return Err(Failure::usage("the policy has several session sources: name one with --session-source (`source` in a case)")),
        },
    };
    let (name, value) = edgeguard_core::sessions::test_header(chosen, claims, now, expires_in, forged, cookie_chunks).map_err(Failure::usage)?;
    if name == "authorization" {
        request.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
    }
    request.headers.push((name, value));
    Ok(())
}

/// What `explain` does with one request, shared with `test` so the two can never disagree: the
/// client's address goes into the policy's trusted client-IP header (replacing any sent), as
/// the worker reads it; `repeat` identical requests are decided at `now` against `limiter`,
/// each with its own `draw`; the last decision is returned. `explain` hands it a fresh limiter;
/// `test` one a case's earlier requests have used.
pub(crate) fn decide(
    engine: &Engine,
    request: Request,
    client_ip: Option<IpAddr>,
    repeat: u32,
    now: Nanos,
    limiter: &mut Limiter,
    draw: impl FnMut() -> Result<Draw, Failure>,
) -> Result<Decision, Failure> {
    let mut request = TextRequest { method: request.method, url: request.url, headers: request.headers, peer_ip: None, cf: request.cf };
    if let Some(ip) = client_ip {
        request.set_client_ip(engine.bundle().client_ip.from.as_deref(), ip);
    }
    decide_repeated_on(engine, &request, repeat, now, limiter, draw)
}

/// [`decide`], explained.
pub(crate) fn evaluate(
    engine: &Engine,
    request: Request,
    client_ip: Option<IpAddr>,
    repeat: u32,
    now: Nanos,
    limiter: &mut Limiter,
    draw: impl FnMut() -> Result<Draw, Failure>,
) -> Result<Evaluated, Failure> {
    let names: Vec<String> = request.headers.iter().map(|(n, _)| n.clone()).collect();
    let decision = decide(engine, request, client_ip, repeat, now, limiter, draw)?;
    let routed = engine.rule(&decision).is_some();
    let explanation = edgeguard_core::explain::with_request(engine, &decision, names.iter().map(String::as_str));
    Ok(Evaluated { explanation, routed })
}

pub fn run(args: &Args) -> CmdResult {
    let mut request = parse_request(&args.request, &args.headers)?;
    request.cf = CfInput {
        country: args.country.as_ref().map(|c| c.trim().to_ascii_uppercase()),
        continent: args.continent.as_ref().map(|c| c.trim().to_ascii_uppercase()),
        asn: args.asn,
        verified_bot_category: args.verified_bot_category.clone(),
        verified_bot: args.verified_bot,
    };
    let now = nanos(args.at)
        .ok_or_else(|| Failure::usage(format!("--at {} is too large (at most {} seconds)", args.at, u64::MAX / 1_000_000_000)))?;
    let Some(mut engine) = load_engine(&args.policy, args.env.as_deref())? else {
        return Ok(Status::Failed);
    };
    if args.maintenance {
        engine.set_overrides(edgeguard_core::Overrides { maintenance: true, ..engine.overrides() });
    }
    if let Some(claims) = &args.session {
        let claims: serde_json::Value = serde_json::from_str(claims).map_err(|e| Failure::usage(format!("--session must be a JSON object of claims: {e}")))?;
        let session = TestSession { source: args.session_source.as_deref(), claims: &claims, expires_in: 3600, forged: false, cookie_chunks: None };
        add_session(&engine, &mut request, args.at, &session)?;
    }
    let mut limiter = engine.new_limiter(random_u64()?);
    let evaluated = evaluate(&engine, request, args.client_ip, args.repeat, now, &mut limiter, draw)?;
    let explanation = evaluated.explanation;
    let text = match args.format {
        Format::Json => {
            // Serialized from the struct, not a `Value`, so keys keep the contract's order.
            let json = serde_json::to_string_pretty(&explanation)
                .map_err(|e| Failure::failed(format!("cannot serialize the explanation: {e}")))?;
            format!("{json}\n")
        }
        Format::Text => text(&explanation, evaluated.routed),
    };
    output::print(&text)?;
    Ok(Status::Success)
}

/// Split `METHOD URL` and the `-H` values; anything malformed is a usage error.
fn parse_request(line: &str, raw_headers: &[String]) -> Result<Request, Failure> {
    let mut headers = Vec::with_capacity(raw_headers.len().saturating_add(1));
    for raw in raw_headers {
        let Some((name, value)) = raw.split_once(':') else {
            return Err(Failure::usage(format!("-H must be \"Name: value\"; got {raw:?}")));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Request::new(line, headers).map_err(|e| {
        Failure::usage(match e {
            RequestError::Shape => {
                format!("--request must be \"METHOD URL\", e.g. \"GET https://example.com/\"; got {line:?}")
            }
            RequestError::Method(method) => format!("`{method}` is not an HTTP method"),
            RequestError::HeaderName(i) => {
                let raw = raw_headers.get(i).map(String::as_str).unwrap_or_default();
                let name = raw.split_once(':').map_or(raw, |(n, _)| n).trim();
                format!("`{name}` is not a valid header name (in -H {raw:?})")
            }
            RequestError::NoHost(url) => format!(
                "`{url}` has no host: add -H \"Host: example.com\" or give an absolute URL (https://example.com{url})"
            ),
            RequestError::NotATarget(url) => format!(
                "`{url}` is not a request target: give an absolute URL (https://host/path) or a path (/path) with -H \"Host: ...\""
            ),
        })
    })
}

/// RFC 9110 `tchar`: the characters of methods and header names.
#[allow(unused_imports, reason = "`test` checks case-file header names with it")]
pub(crate) use edgeguard_core::request::is_tchar;

fn random_u64() -> Result<u64, Failure> {
    getrandom::u64().map_err(|e| Failure::failed(format!("the operating system's random generator failed: {e}")))
}

/// One request's random draw: a request id and a canary lane.
fn draw() -> Result<Draw, Failure> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| Failure::failed(format!("the operating system's random generator failed: {e}")))?;
    let mut id = [0u8; 16];
    let mut lane = [0u8; 4];
    let (a, b) = bytes.split_at(16);
    id.copy_from_slice(a);
    lane.copy_from_slice(b);
    Ok(Draw { request_id: u128::from_le_bytes(id), lane: u32::from_le_bytes(lane) })
}

/// The text rendering: the decision's fields, then headers and the problem body. `routed`:
/// the request got as far as route matching (so a `null` route means `[defaults]`).
fn text(e: &Explanation, routed: bool) -> String {
    let none = || "-".to_owned();
    let mut out = String::new();
    let mut field = |name: &str, value: String| out.push_str(&format!("{name:<12}{value}\n"));
    field("action", e.action.code().to_owned());
    field("status", e.status.map_or_else(|| "- (forwarded to the origin)".to_owned(), |s| s.to_string()));
    field("reason", e.reason.code().to_owned());
    let no_route = if routed { "- (no route matched: [defaults])" } else { "- (decided before routing)" };
    field("route", e.route.clone().unwrap_or_else(|| no_route.to_owned()));
    field("origin", e.origin.clone().unwrap_or_else(none));
    field("location", e.location.clone().unwrap_or_else(none));
    field("path", e.path.clone());
    field(
        "rate limit",
        e.rate_limit.as_ref().map_or_else(none, |r| {
            format!("`{}`: {} of {} remaining, resets in {} s, counted by {}", r.name, r.remaining, r.limit, r.reset, r.key)
        }),
    );
    if let Some(s) = &e.session {
        let claims: Vec<String> = s.claims.iter().map(|(k, v)| format!("{k} = {}", v.join("|"))).collect();
        let text = match (s.state, s.detail) {
            ("verified", _) => format!("`{}` verified ({})", s.source, claims.join(", ")),
            (state, Some(why)) => format!("`{}` {state}: {why}", s.source),
            (state, None) => format!("`{}` {state}", s.source),
        };
        field("session", text);
    }
    if e.shadow_refused {
        field("shadow", "a shadow-mode limit would have refused this request".to_owned());
    }
    if let Some(c) = &e.cache {
        let text = match &c.bypass {
            Some(why) => format!("bypassed: {why}"),
            None => format!(
                "edge {} s, stale-while-revalidate {} s, stale-if-error {} s; key {}",
                c.edge,
                c.stale_while_revalidate,
                c.stale_if_error,
                c.key.as_deref().unwrap_or("")
            ),
        };
        field("cache", text);
    }
    if let Some(failure) = e.on_origin_failure {
        field("origin down", failure.to_owned());
    }
    let c = &e.client;
    if let Some(bot) = &c.bot {
        let mut text = bot.category.code().to_owned();
        if let Some(name) = bot.name {
            text.push_str(&format!(" ({name})"));
        }
        text.push_str(if bot.verified { ", verified by Cloudflare" } else { ", not verified" });
        if let Some(claimed) = bot.claimed {
            text.push_str(&format!("; claims {} without Cloudflare's verification", claimed.code()));
        }
        field("bot", text);
    }
    if c.country.is_some() || c.continent.is_some() || c.asn.is_some() {
        let dash = || "-".to_owned();
        field("location", format!("country {}, continent {}, ASN {}", c.country.clone().unwrap_or_else(dash), c.continent.clone().unwrap_or_else(dash), c.asn.map_or_else(dash, |a| a.to_string())));
    }
    if let Some(s) = &c.suspicion {
        let mut text = format!("{} of {} ({})", s.score, s.threshold, s.mode);
        if let Some(m) = &s.matched {
            text.push_str(&format!("; this request matched {} `{}` in the {}", m.kind.code(), m.signature, m.part));
        }
        if s.suspended_for > 0 {
            text.push_str(&format!("; suspended for {} s", s.suspended_for));
        }
        field("suspicion", text);
    }
    field("detail", e.detail.clone());

    let section = |out: &mut String, title: &str, lines: Vec<String>| {
        out.push_str(&format!("\n{title}:\n"));
        if lines.is_empty() {
            out.push_str("  (none)\n");
        }
        for line in lines {
            out.push_str(&format!("  {line}\n"));
        }
    };
    section(&mut out, "response headers", e.response_headers.iter().map(|(n, v)| format!("{n}: {v}")).collect());
    if let Some(n) = &e.csp_nonce {
        let otherwise = n.otherwise.as_deref().map_or_else(|| "(no content-security-policy)".to_owned(), |v| format!("content-security-policy: {v}"));
        section(
            &mut out,
            &format!("strict CSP ({}: a fresh nonce per response on {}; shown above as an HTML page gets it)", n.mode, n.applies_to),
            vec![format!("{}: {}", n.header, n.value), format!("other responses: {otherwise}")],
        );
    }
    section(&mut out, "removed headers", e.remove_headers.clone());
    if e.action == Action::Forward {
        section(&mut out, "forwarded headers", e.forward_headers.iter().map(|(n, v)| format!("{n}: {v}")).collect());
        if !e.strip_request_headers.is_empty() {
            section(&mut out, "request headers not forwarded", e.strip_request_headers.clone());
        }
    }
    if let Some(problem) = &e.problem {
        section(&mut out, "problem body (application/problem+json)", check::pretty(problem).lines().map(str::to_owned).collect());
    }
    out
}


#[cfg(test)]
mod tests {
    use super::*;

    fn h(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn absolute_url_gets_a_host() {
        let r = parse_request("GET http://example.com:8080/a?b", &[]).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.url, "http://example.com:8080/a?b");
        assert_eq!(r.headers, vec![("Host".to_owned(), "example.com:8080".to_owned())]);
        let r = parse_request("GET https://example.com", &h(&["host: other.example"])).unwrap();
        assert_eq!(r.headers, vec![("host".to_owned(), "other.example".to_owned())]);
    }

    #[test]
    fn origin_form_needs_a_host() {
        assert!(parse_request("GET /x", &[]).is_err());
        let r = parse_request("  POST   /x  ", &h(&["Host: example.com", "X-A:  b: c "])).unwrap();
        assert_eq!(r.headers[1], ("X-A".to_owned(), "b: c".to_owned()));
    }

    #[test]
    fn malformed_input_is_a_usage_error() {
        for (line, headers) in [
            ("GET", h(&[])),
            ("GET http://a/ extra", h(&[])),
            ("G(T http://a/", h(&[])),
            ("GET example.com/", h(&[])),
            ("GET http://a/", h(&["no colon"])),
            ("GET http://a/", h(&[": empty name"])),
            ("GET http://a/", h(&["bad name: v"])),
        ] {
            let err = parse_request(line, &headers).unwrap_err();
            assert_eq!(err.status, Status::Usage, "{line} {headers:?}");
        }
    }

    #[test]
    fn draws_differ() {
        assert_ne!(draw().unwrap(), draw().unwrap());
    }
}
