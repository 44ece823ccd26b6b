//! The header report card: the MDN HTTP Observatory's header tests (scoring algorithm of
//! npm `@mdn/mdn-http-observatory`, `src/analyzer/tests/*.js` and `src/grader/charts.js`) run
//! over the response headers the edge gives, plus the compiler's CSP findings.
//!
//! What is scored: a GET of the request's URL over https, following the edge's own redirects
//! (the Observatory's "auto" response; for `forward`, the headers the edge guarantees, assuming
//! the origin sent none of them and answered 200), and the redirect chain of the same URL over
//! plain http. The Observatory's cookie, CORS and SRI tests depend on what the origin sends and
//! are not scored here; neither is the HSTS preload list (no network).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use edgeguard_compiler::diagnostics::Located;
use edgeguard_core::explain::Explanation;
use edgeguard_core::request::decide_repeated;
use edgeguard_core::{Action, Engine, explain};
use serde::Serialize;

use crate::input::PlayRequest;
use crate::{FILE, engine, error_json, locate, to_json};

/// One Observatory test.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Test {
    /// The Observatory's test name (`content-security-policy`, ...).
    pub name: &'static str,
    pub title: &'static str,
    /// The Observatory's expectation id (`csp-implemented-with-unsafe-inline`, ...).
    pub result: &'static str,
    pub pass: bool,
    /// Score modifier (bonuses count only when the score without them is at least 90).
    pub modifier: i32,
    pub description: &'static str,
    /// The one-line change to the policy that fixes (or improves) the result; `null` when
    /// there is nothing to gain. Names only what the scored headers get wrong (never a
    /// directive or setting they already have right).
    pub fix: Option<Cow<'static, str>>,
    /// The header value the test looked at.
    pub value: Option<String>,
}

/// The response that was scored.
#[derive(Serialize)]
pub struct Scored {
    pub url: String,
    pub action: Action,
    pub status: Option<u16>,
    pub reason: &'static str,
    pub headers: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub struct Card {
    /// 0..=135; the Observatory's score.
    pub score: i32,
    pub grade: &'static str,
    /// The score without bonuses (bonuses apply only when this is at least 90).
    pub score_without_bonus: i32,
    pub tests: Vec<Test>,
    pub scored: Scored,
    /// The http:// URL and every redirect the edge answers it with.
    pub http_redirects: Vec<String>,
    /// Set when the Observatory would abort the scan (its final response must be 2xx).
    pub scan_aborts: Option<String>,
    /// The compiler's CSP lints (W01x, W02x, and the strict-CSP notes W101–W103), each with its
    /// help line.
    pub csp_findings: Vec<Located>,
}

/// Minimum score for bonuses (`MINIMUM_SCORE_FOR_EXTRA_CREDIT`).
const EXTRA_CREDIT_FROM: i32 = 90;
/// HSTS max-age the Observatory accepts (its "six months", 180 days).
pub const SIX_MONTHS: u64 = 15_552_000;
const MAX_REDIRECTS: usize = 10;

pub fn run(source: &str, env: &str, request_json: &str) -> Result<String, String> {
    card(source, env, request_json).map(|card| to_json(&card))
}

/// The header tests a single response can be scored on (all but redirection, which needs the
/// http:// URL's answers), its score and grade.
pub fn grade_headers(headers: &BTreeMap<String, String>, https: bool) -> (Vec<Test>, i32, &'static str) {
    let csp = csp_test(headers, https);
    let tests = vec![
        csp.test.clone(),
        hsts_test(headers.get("strict-transport-security"), https),
        xfo_test(headers.get("x-frame-options"), csp.has_frame_ancestors),
        xcto_test(headers.get("x-content-type-options")),
        referrer_test(headers.get("referrer-policy")),
        corp_test(headers.get("cross-origin-resource-policy")),
    ];
    let (score, _) = score(&tests);
    (tests, score, grade(score))
}

/// [`run`]'s card, unserialized.
pub fn card(source: &str, env: &str, request_json: &str) -> Result<Card, String> {
    let play = PlayRequest::parse(request_json).map_err(|e| error_json(&e))?;
    let (engine, diagnostics) = engine(source, env)?;
    let headers = play.header_list();
    let Some((authority, rest)) = split_url(play.url.trim(), &headers) else {
        return Err(error_json("the report card needs a URL with a host (https://host/path, or a path with a Host header)"));
    };
    let https_url = format!("https://{authority}{rest}");
    let http_url = format!("http://{authority}{rest}");
    let (auto, auto_url, _) = follow(&engine, &play, &https_url)?;
    let (http_answer, _, mut chain) = follow(&engine, &play, &http_url)?;
    chain.insert(0, http_url);

    let response_headers = &auto.response_headers;
    let https_final = auto_url.to_ascii_lowercase().starts_with("https://");
    let csp = csp_test(response_headers, https_final);
    let tests = vec![
        csp.test.clone(),
        hsts_test(response_headers.get("strict-transport-security"), https_final),
        xfo_test(response_headers.get("x-frame-options"), csp.has_frame_ancestors),
        xcto_test(response_headers.get("x-content-type-options")),
        referrer_test(response_headers.get("referrer-policy")),
        corp_test(response_headers.get("cross-origin-resource-policy")),
        redirection_test(&chain, http_answer.status.filter(|_| http_answer.action == Action::Reject).map(|s| (s, http_answer.reason.code())), &authority),
    ];
    let (score, score_without_bonus) = score(&tests);
    let scan_aborts = match auto.status {
        Some(s) if !(200..300).contains(&s) => Some(format!(
            "the edge answers {s} ({}) here; the Observatory aborts a scan whose final response is not 2xx — score a URL the edge forwards",
            auto.reason.code()
        )),
        _ => None,
    };
    let locator = locate::Locator::new(source);
    let csp_findings = diagnostics
        .iter()
        .filter(|d| {
            use edgeguard_compiler::codes::{STRICT_CSP_OFF, STRICT_REPORT_ONLY, STRICT_STYLE_UNSAFE_INLINE};
            d.code.starts_with("W01") || d.code.starts_with("W02") || [STRICT_CSP_OFF, STRICT_REPORT_ONLY, STRICT_STYLE_UNSAFE_INLINE].contains(&d.code)
        })
        .map(|d| locator.locate(d, FILE))
        .collect();
    let card = Card {
        score,
        grade: grade(score),
        score_without_bonus,
        tests,
        scored: Scored {
            url: auto_url,
            action: auto.action,
            status: auto.status,
            reason: auto.reason.code(),
            headers: auto.response_headers.clone(),
        },
        http_redirects: chain,
        scan_aborts,
        csp_findings,
    };
    Ok(card)
}

/// `(authority, path and query)` of an absolute URL, or of a path with a Host header.
fn split_url(url: &str, headers: &[(String, String)]) -> Option<(String, String)> {
    let lower = url.to_ascii_lowercase();
    let after = ["https://", "http://"].iter().find(|s| lower.starts_with(*s)).and_then(|s| url.get(s.len()..));
    let (authority, rest) = match after {
        Some(after) => {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            (after.get(..end)?.to_owned(), after.get(end..)?.to_owned())
        }
        None if url.starts_with('/') => {
            let host = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("host")).map(|(_, v)| v.trim().to_owned())?;
            (host, url.to_owned())
        }
        None => return None,
    };
    let rest = rest.split('#').next().unwrap_or("").to_owned();
    let rest = if rest.is_empty() || rest.starts_with('?') { format!("/{rest}") } else { rest };
    (!authority.is_empty()).then_some((authority, rest))
}

/// GET `url` and follow the edge's redirects: the last answer, its URL, and the redirects.
fn follow(engine: &Engine, play: &PlayRequest, url: &str) -> Result<(Explanation, String, Vec<String>), String> {
    // The URL decides the Host, as a browser following a redirect sends it.
    let headers: Vec<(String, String)> = play.header_list().into_iter().filter(|(n, _)| !n.eq_ignore_ascii_case("host")).collect();
    let mut draws = play.draws();
    let limiter_seed = draws.limiter_seed();
    let mut url = url.to_owned();
    let mut chain = Vec::new();
    loop {
        let request = play.build_for(engine, "GET", &url, headers.clone()).map_err(|e| error_json(&e))?;
        let now = play.now().map_err(|e| error_json(&e))?;
        let Ok(decision) = decide_repeated(engine, &request, 1, now, limiter_seed, || Ok::<_, core::convert::Infallible>(draws.next()));
        let e = explain(engine, &decision);
        match e.location.clone().filter(|_| e.action == Action::Redirect && chain.len() < MAX_REDIRECTS) {
            Some(next) => {
                chain.push(next.clone());
                url = next;
            }
            None => return Ok((e, url, chain)),
        }
    }
}

fn score(tests: &[Test]) -> (i32, i32) {
    let with_bonus = tests.iter().fold(100i32, |acc, t| acc.saturating_add(t.modifier));
    let without = tests.iter().filter(|t| t.modifier < 0).fold(100i32, |acc, t| acc.saturating_add(t.modifier));
    let score = if without >= EXTRA_CREDIT_FROM { with_bonus } else { without };
    (score.max(0), without.max(0))
}

/// The Observatory's grade chart: the score rounded down to a multiple of 5, capped at 100.
pub fn grade(score: i32) -> &'static str {
    let s = score.max(0);
    match s.saturating_sub(s % 5).min(100) {
        100 => "A+",
        90 | 95 => "A",
        85 => "A-",
        80 => "B+",
        70 | 75 => "B",
        65 => "B-",
        60 => "C+",
        50 | 55 => "C",
        45 => "C-",
        40 => "D+",
        30 | 35 => "D",
        25 => "D-",
        _ => "F",
    }
}

/// `(expectation, modifier, description, fix)`.
type Row = (&'static str, i32, &'static str, Option<&'static str>);

const FIX_CSP_UNSAFE_INLINE: &str = "remove 'unsafe-inline' and data: from script-src and broad sources (https:, *) from script-src/object-src in [csp.directives]; set object-src = [\"'none'\"] and move inline scripts to files, nonces or hashes";
const FIX_HSTS: &str = "[https] hsts = { max_age = \"1y\", include_subdomains = true }";
const FIX_XFO: &str = "[csp.directives] frame-ancestors = [\"'none'\"] (or [\"'self'\"]); or [headers.set] \"X-Frame-Options\" = \"DENY\"";
const FIX_XCTO: &str = "[headers.set] \"X-Content-Type-Options\" = \"nosniff\" (preset = \"helmet\" sends it)";
const FIX_REFERRER: &str = "[headers.set] \"Referrer-Policy\" = \"strict-origin-when-cross-origin\"";
const FIX_CORP: &str = "[headers.set] \"Cross-Origin-Resource-Policy\" = \"same-origin\" (or \"same-site\")";
const FIX_REDIRECT: &str = "[https] redirect = true (http → https on the same host first; the canonical-host hop comes after it)";

const CSP: &[Row] = &[
    ("csp-implemented-with-no-unsafe-default-src-none", 10, "CSP implemented with default-src 'none' and no 'unsafe'", None),
    (
        "csp-implemented-with-no-unsafe",
        5,
        "CSP implemented without 'unsafe-inline' or 'unsafe-eval'",
        Some("for +10: start [csp.directives] from default-src = [\"'none'\"] and allow each resource type explicitly"),
    ),
    (
        "csp-implemented-with-unsafe-inline-in-style-src-only",
        0,
        "CSP implemented with unsafe sources ('unsafe-inline', data: or broad sources) inside style-src only",
        Some("remove 'unsafe-inline', data: and broad sources from style-src in [csp.directives]"),
    ),
    (
        "csp-implemented-with-insecure-scheme-in-passive-content-only",
        -10,
        "CSP implemented, but the secure site allows images or media over http:",
        Some("replace http: sources in img-src/media-src with https: ones"),
    ),
    (
        "csp-implemented-with-unsafe-eval",
        -10,
        "CSP implemented, but allows 'unsafe-eval'",
        Some("remove 'unsafe-eval' from script-src (and style-src) in [csp.directives] once the code no longer calls eval()"),
    ),
    (
        "csp-implemented-with-unsafe-inline",
        -20,
        "CSP implemented unsafely: 'unsafe-inline' or data: in script-src, broad sources in script-src/object-src, or either left unrestricted",
        Some(FIX_CSP_UNSAFE_INLINE),
    ),
    (
        "csp-implemented-with-insecure-scheme",
        -20,
        "CSP implemented, but the secure site allows resources over http:",
        Some("remove http: (and ftp:) sources from [csp.directives]; load everything over https"),
    ),
    (
        "csp-implemented-but-duplicate-directives",
        0,
        "CSP implemented, but repeats report-uri or report-to",
        Some("list report-uri / report-to once"),
    ),
    (
        "csp-header-invalid",
        -25,
        "The Content-Security-Policy header cannot be parsed",
        Some("write the CSP as a [csp.directives] table and let `edgeguard check` validate it"),
    ),
    (
        "csp-not-implemented",
        -25,
        "No Content-Security-Policy header",
        Some("add a [csp.directives] table (or keep preset = \"helmet\", which sends a CSP)"),
    ),
    (
        "csp-not-implemented-but-reporting-enabled",
        -25,
        "Only Content-Security-Policy-Report-Only: nothing is enforced",
        Some("[csp] mode = \"enforce\" once the reports are clean"),
    ),
];

const HSTS: &[Row] = &[
    (
        "hsts-implemented-max-age-at-least-six-months",
        0,
        "Strict-Transport-Security with max-age of at least six months (15552000)",
        None,
    ),
    (
        "hsts-implemented-max-age-less-than-six-months",
        -10,
        "Strict-Transport-Security max-age is less than six months (15552000)",
        Some(FIX_HSTS),
    ),
    ("hsts-not-implemented", -20, "No Strict-Transport-Security header", Some(FIX_HSTS)),
    (
        "hsts-header-invalid",
        -20,
        "The Strict-Transport-Security header cannot be recognized (no max-age, or set twice)",
        Some(FIX_HSTS),
    ),
    (
        "hsts-not-implemented-no-https",
        -20,
        "HSTS cannot be set: the final response is not over https",
        Some(FIX_REDIRECT),
    ),
];

const XFO: &[Row] = &[
    ("x-frame-options-implemented-via-csp", 5, "Framing controlled by the CSP frame-ancestors directive", None),
    (
        "x-frame-options-sameorigin-or-deny",
        0,
        "X-Frame-Options is SAMEORIGIN or DENY",
        Some("for +5: [csp.directives] frame-ancestors = [\"'none'\"] (or [\"'self'\"])"),
    ),
    (
        "x-frame-options-allow-from-origin",
        0,
        "X-Frame-Options uses ALLOW-FROM",
        Some("for +5: [csp.directives] frame-ancestors = [\"'self'\", \"https://partner.example\"]"),
    ),
    ("x-frame-options-not-implemented", -20, "No X-Frame-Options header and no CSP frame-ancestors", Some(FIX_XFO)),
    ("x-frame-options-header-invalid", -20, "The X-Frame-Options header cannot be recognized", Some(FIX_XFO)),
];

const XCTO: &[Row] = &[
    ("x-content-type-options-nosniff", 0, "X-Content-Type-Options is nosniff", None),
    ("x-content-type-options-not-implemented", -5, "No X-Content-Type-Options header", Some(FIX_XCTO)),
    ("x-content-type-options-header-invalid", -5, "The X-Content-Type-Options header is not nosniff", Some(FIX_XCTO)),
];

const REFERRER: &[Row] = &[
    (
        "referrer-policy-private",
        5,
        "Referrer-Policy is no-referrer, same-origin, strict-origin or strict-origin-when-cross-origin",
        None,
    ),
    ("referrer-policy-not-implemented", 0, "No Referrer-Policy header", Some(FIX_REFERRER)),
    (
        "referrer-policy-unsafe",
        -5,
        "Referrer-Policy is origin, origin-when-cross-origin, unsafe-url or no-referrer-when-downgrade",
        Some(FIX_REFERRER),
    ),
    ("referrer-policy-header-invalid", -5, "The Referrer-Policy header cannot be recognized", Some(FIX_REFERRER)),
];

const CORP: &[Row] = &[
    ("corp-implemented-with-same-origin", 10, "Cross-Origin-Resource-Policy is same-origin", None),
    ("corp-implemented-with-same-site", 10, "Cross-Origin-Resource-Policy is same-site", None),
    (
        "corp-implemented-with-cross-origin",
        0,
        "Cross-Origin-Resource-Policy is cross-origin",
        Some("for +10, if nothing embeds these resources cross-site: [headers.set] \"Cross-Origin-Resource-Policy\" = \"same-origin\""),
    ),
    ("corp-not-implemented", 0, "No Cross-Origin-Resource-Policy header (defaults to cross-origin)", Some(FIX_CORP)),
    ("corp-header-invalid", -5, "The Cross-Origin-Resource-Policy header cannot be recognized", Some(FIX_CORP)),
];

const REDIRECTION: &[Row] = &[
    ("redirection-to-https", 0, "http redirects to https on the same host first, and ends on https", None),
    (
        "redirection-off-host-from-http",
        -5,
        "The first redirect from http goes to https on another host, so HSTS is never set for this one",
        Some(FIX_REDIRECT),
    ),
    (
        "redirection-not-to-https-on-initial-redirection",
        -10,
        "The first redirect from http goes to another http URL",
        Some(FIX_REDIRECT),
    ),
    ("redirection-not-to-https", -20, "Redirects, but the final destination is not https", Some(FIX_REDIRECT)),
    ("redirection-missing", -20, "http is answered without a redirect to https", Some(FIX_REDIRECT)),
];

fn test(name: &'static str, title: &'static str, rows: &[Row], result: &'static str, pass: bool, value: Option<String>) -> Test {
    let (modifier, description, fix) =
        rows.iter().find(|r| r.0 == result).map_or((0, "", None), |r| (r.1, r.2, r.3));
    Test { name, title, result, pass, modifier, description, fix: fix.map(Cow::Borrowed), value }
}

/// A parsed CSP: directive → sources (lowercase), as the Observatory's `parseCsp`.
type Csp = BTreeMap<String, BTreeSet<String>>;

const DANGEROUSLY_BROAD: &[&str] = &["ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"];
const UNSAFE_INLINE: &[&str] = &["'unsafe-inline'", "data:"];
const NONCES_HASHES: &[&str] = &["'sha256-", "'sha384-", "'sha512-", "'nonce-"];

fn broad(s: &str) -> bool {
    DANGEROUSLY_BROAD.contains(&s)
}

fn broad_or_unsafe_inline(s: &str) -> bool {
    broad(s) || UNSAFE_INLINE.contains(&s)
}

fn has_nonce_or_hash(sources: &BTreeSet<String>) -> bool {
    sources.iter().any(|s| NONCES_HASHES.iter().any(|p| s.starts_with(p)))
}

/// `parseCsp` for the policies of one header (comma-separated). `Err` = the header is
/// invalid. Returns the first policy's directives (the edge sends one) and whether a
/// report-uri/report-to was repeated.
fn parse_csp(header: &str) -> Result<(Csp, bool), ()> {
    let policies: Vec<String> = header.split(',').map(|p| p.replace(['\r', '\n'], "").trim().to_owned()).collect();
    if policies.iter().any(|p| p.chars().count() < 6) {
        return Err(());
    }
    let mut first = None;
    let mut duplicates = false;
    for policy in &policies {
        let mut csp = Csp::new();
        for entry in policy.split(';') {
            let mut tokens = entry.split_whitespace();
            let Some(directive) = tokens.next() else { continue };
            let directive = directive.to_lowercase();
            if csp.contains_key(&directive) {
                if directive == "report-uri" || directive == "report-to" {
                    duplicates = true;
                } else {
                    return Err(());
                }
            }
            let mut sources: Vec<String> = tokens.map(str::to_lowercase).collect();
            if sources.is_empty() && directive.ends_with("-src") {
                sources.push("'none'".to_owned());
            }
            sources.sort();
            // parseCsp drops a source that starts with the one sorted before it.
            let mut kept = BTreeSet::new();
            let mut prev: Option<&String> = None;
            for s in &sources {
                if !prev.is_some_and(|p| s.starts_with(p.as_str())) {
                    kept.insert(s.clone());
                }
                prev = Some(s);
            }
            if kept.is_empty() {
                kept.insert("'none'".to_owned());
            }
            csp.insert(directive, kept);
        }
        first.get_or_insert(csp);
    }
    Ok((first.unwrap_or_default(), duplicates))
}

struct CspResult {
    test: Test,
    /// The parsed policy has frame-ancestors (the X-Frame-Options test counts it).
    has_frame_ancestors: bool,
}

/// The Observatory's `contentSecurityPolicyTest` over response headers.
fn csp_test(headers: &BTreeMap<String, String>, https: bool) -> CspResult {
    let name = "content-security-policy";
    let title = "Content Security Policy (CSP)";
    let done = |result, pass, value: Option<&String>, fa| CspResult { test: test(name, title, CSP, result, pass, value.cloned()), has_frame_ancestors: fa };
    let header = headers.get("content-security-policy");
    let Some(value) = header else {
        let report_only = headers.get("content-security-policy-report-only");
        return match report_only {
            Some(v) => done("csp-not-implemented-but-reporting-enabled", false, Some(v), false),
            None => done("csp-not-implemented", false, None, false),
        };
    };
    let Ok((mut csp, duplicates)) = parse_csp(value) else {
        return done("csp-header-invalid", false, header, false);
    };
    if csp.is_empty() {
        return done("csp-not-implemented", false, header, false);
    }
    let mut result: Option<&'static str> = None;
    let star = || BTreeSet::from(["*".to_owned()]);
    // script-src and style-src fall back to default-src and, like the Observatory's Sets,
    // edits to them edit the directive they came from.
    let script_key = ["script-src", "default-src"].into_iter().find(|k| csp.contains_key(*k));
    let style_key = ["style-src", "default-src"].into_iter().find(|k| csp.contains_key(*k));
    for key in [script_key, style_key].into_iter().flatten() {
        if let Some(set) = csp.get_mut(key)
            && has_nonce_or_hash(set)
        {
            set.remove("'unsafe-inline'");
        }
    }
    let script_of = |csp: &Csp| script_key.and_then(|k| csp.get(k)).cloned().unwrap_or_else(star);
    let script = script_of(&csp);
    if has_nonce_or_hash(&script) && script.contains("'strict-dynamic'") {
        if let Some(set) = script_key.and_then(|k| csp.get_mut(k)) {
            set.retain(|s| !(DANGEROUSLY_BROAD.iter().any(|b| s.starts_with(b)) || s == "'self'" || s == "'unsafe-inline'"));
        }
    } else if script.contains("'strict-dynamic'") {
        result.get_or_insert("csp-header-invalid");
    }
    let script = script_of(&csp);
    let style = style_key.and_then(|k| csp.get(k)).cloned().unwrap_or_else(star);
    let object = ["object-src", "default-src"].into_iter().find_map(|k| csp.get(k)).cloned().unwrap_or_else(star);
    let passive = ["img-src", "media-src"];
    let mut active: Vec<&String> =
        csp.iter().filter(|(d, _)| !passive.contains(&d.as_str()) && d.as_str() != "script-src").flat_map(|(_, s)| s.iter()).collect();
    active.extend(script.iter());
    let passive_sources: Vec<&String> = passive
        .iter()
        .flat_map(|d| csp.get(*d).or_else(|| csp.get("default-src")).into_iter().flat_map(|s| s.iter()))
        .collect();
    let insecure = |s: &&String| s.starts_with("http:") || s.starts_with("ftp:");

    if script.iter().any(|s| broad_or_unsafe_inline(s)) || object.iter().any(|s| broad(s)) {
        result.get_or_insert("csp-implemented-with-unsafe-inline");
    }
    if https && active.iter().any(insecure) {
        result.get_or_insert("csp-implemented-with-insecure-scheme");
    }
    if script.contains("'unsafe-eval'") || style.contains("'unsafe-eval'") {
        result.get_or_insert("csp-implemented-with-unsafe-eval");
    }
    if https && passive_sources.iter().any(insecure) {
        result.get_or_insert("csp-implemented-with-insecure-scheme-in-passive-content-only");
    }
    if style.iter().any(|s| broad_or_unsafe_inline(s)) {
        result.get_or_insert("csp-implemented-with-unsafe-inline-in-style-src-only");
    }
    let default_none = csp.get("default-src").is_some_and(|s| s.len() == 1 && s.contains("'none'"));
    let mut result = result.unwrap_or(if default_none {
        "csp-implemented-with-no-unsafe-default-src-none"
    } else {
        "csp-implemented-with-no-unsafe"
    });
    let pass = [
        "csp-implemented-with-no-unsafe",
        "csp-implemented-with-no-unsafe-default-src-none",
        "csp-implemented-with-unsafe-inline-in-style-src-only",
        "csp-implemented-with-insecure-scheme-in-passive-content-only",
    ]
    .contains(&result);
    if pass && duplicates {
        result = "csp-implemented-but-duplicate-directives";
    }
    let mut answer = done(result, pass, header, csp.contains_key("frame-ancestors"));
    if result == "csp-implemented-with-unsafe-inline" {
        answer.test.fix = Some(Cow::Owned(unsafe_inline_fix(script_key, &script, &object)));
    }
    answer
}

/// What makes a CSP "unsafe-inline" for the Observatory, in policy terms: only the sources and
/// directives that are actually at fault.
fn unsafe_inline_fix(script_key: Option<&str>, script: &BTreeSet<String>, object: &BTreeSet<String>) -> String {
    let mut parts = Vec::new();
    match script_key {
        None => parts.push("add script-src (or default-src) to [csp.directives]: scripts are unrestricted".to_owned()),
        Some(key) => {
            let bad: Vec<&str> = script.iter().filter(|s| broad_or_unsafe_inline(s)).map(String::as_str).collect();
            if !bad.is_empty() {
                let inline = bad.iter().any(|s| UNSAFE_INLINE.contains(s));
                parts.push(format!(
                    "remove {} from {key} in [csp.directives]{}",
                    bad.join(" "),
                    if inline { " and move inline scripts to files, nonces or hashes" } else { "" }
                ));
            }
        }
    }
    if object.iter().any(|s| broad(s)) {
        parts.push("set object-src = [\"'none'\"]".to_owned());
    }
    parts.join("; ")
}

/// `strictTransportSecurityTest` (without the preload list).
fn hsts_test(value: Option<&String>, https: bool) -> Test {
    let t = |result, pass, v: Option<&String>| test("strict-transport-security", "Strict Transport Security (HSTS)", HSTS, result, pass, v.cloned());
    if !https {
        return t("hsts-not-implemented-no-https", false, value);
    }
    let Some(header) = value else {
        return t("hsts-not-implemented", false, None);
    };
    let data: String = header.chars().take(1024).collect();
    if data.contains(',') {
        return t("hsts-header-invalid", false, value);
    }
    let mut max_age: Option<Option<u64>> = None;
    for parameter in data.split(';').map(|p| p.trim().to_lowercase()) {
        if let Some(v) = parameter.strip_prefix("max-age=") {
            max_age = Some(parse_int(v));
        }
    }
    match max_age {
        None => t("hsts-header-invalid", false, value),
        // parseInt of a non-number is NaN, and `NaN < SIX_MONTHS` is false: the Observatory
        // then counts it as long enough (the compiler never writes such a header).
        Some(Some(age)) if age < SIX_MONTHS => t("hsts-implemented-max-age-less-than-six-months", false, value),
        Some(_) => t("hsts-implemented-max-age-at-least-six-months", true, value),
    }
}

/// JavaScript's `parseInt(s, 10)` for non-negative numbers: leading digits after whitespace;
/// `None` for NaN. A negative number is below any threshold, so it reads as 0.
fn parse_int(s: &str) -> Option<u64> {
    let s = s.chars().take(120).collect::<String>();
    let s = s.trim_start();
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let digits: String = digits.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    if negative {
        return Some(0);
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// `xFrameOptionsTest`.
fn xfo_test(value: Option<&String>, csp_frame_ancestors: bool) -> Test {
    let result = match value {
        _ if csp_frame_ancestors => "x-frame-options-implemented-via-csp",
        None => "x-frame-options-not-implemented",
        Some(v) => {
            let xfo = v.chars().take(1024).collect::<String>().trim().to_lowercase();
            if xfo == "deny" || xfo == "sameorigin" {
                "x-frame-options-sameorigin-or-deny"
            } else if xfo.starts_with("allow-from") {
                "x-frame-options-allow-from-origin"
            } else {
                "x-frame-options-header-invalid"
            }
        }
    };
    let pass = !matches!(result, "x-frame-options-not-implemented" | "x-frame-options-header-invalid");
    test("x-frame-options", "X-Frame-Options", XFO, result, pass, value.cloned())
}

/// `xContentTypeOptionsTest`.
fn xcto_test(value: Option<&String>) -> Test {
    let result = match value {
        None => "x-content-type-options-not-implemented",
        Some(v) if v.chars().take(256).collect::<String>().trim().eq_ignore_ascii_case("nosniff") => "x-content-type-options-nosniff",
        Some(_) => "x-content-type-options-header-invalid",
    };
    test("x-content-type-options", "X-Content-Type-Options", XCTO, result, result == "x-content-type-options-nosniff", value.cloned())
}

/// `referrerPolicyTest`: the last recognized policy in the header wins.
fn referrer_test(value: Option<&String>) -> Test {
    const GOOD: &[&str] = &["no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"];
    const BAD: &[&str] = &["origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade"];
    let result = match value {
        None => "referrer-policy-not-implemented",
        Some(v) => {
            let policy = v.split(',').map(|p| p.trim().to_lowercase()).rfind(|p| GOOD.contains(&p.as_str()) || BAD.contains(&p.as_str()));
            match policy.as_deref() {
                Some(p) if GOOD.contains(&p) => "referrer-policy-private",
                Some(_) => "referrer-policy-unsafe",
                None => "referrer-policy-header-invalid",
            }
        }
    };
    let pass = matches!(result, "referrer-policy-private" | "referrer-policy-not-implemented");
    test("referrer-policy", "Referrer Policy", REFERRER, result, pass, value.cloned())
}

/// `crossOriginResourcePolicyTest`.
fn corp_test(value: Option<&String>) -> Test {
    let result = match value.map(|v| v.chars().take(256).collect::<String>().trim().to_lowercase()).as_deref() {
        None | Some("") => "corp-not-implemented",
        Some("same-site") => "corp-implemented-with-same-site",
        Some("same-origin") => "corp-implemented-with-same-origin",
        Some("cross-origin") => "corp-implemented-with-cross-origin",
        Some(_) => "corp-header-invalid",
    };
    test("cross-origin-resource-policy", "Cross Origin Resource Policy", CORP, result, result != "corp-header-invalid", value.cloned())
}

/// `redirectionTest` over the chain [http URL, redirect 1, redirect 2, ...].
/// `refused`: the status and reason the edge answers the http:// URL with, when it refuses it.
fn redirection_test(route: &[String], refused: Option<(u16, &str)>, authority: &str) -> Test {
    let scheme = |u: &String| if u.to_ascii_lowercase().starts_with("https://") { "https" } else { "http" };
    let host = |u: &String| {
        let after = u.split_once("://").map_or(u.as_str(), |(_, a)| a);
        let authority = after.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // Hostname without the port, as URL.hostname.
        let hostname = if authority.starts_with('[') {
            authority.split_inclusive(']').next().unwrap_or(authority)
        } else {
            authority.split(':').next().unwrap_or(authority)
        };
        hostname.to_ascii_lowercase()
    };
    let result = match (route.first(), route.get(1), route.last()) {
        (_, None, _) => "redirection-missing",
        (_, _, Some(last)) if scheme(last) != "https" => "redirection-not-to-https",
        (_, Some(second), _) if scheme(second) == "http" => "redirection-not-to-https-on-initial-redirection",
        (Some(first), Some(second), _) if scheme(first) == "http" && host(first) != host(second) => "redirection-off-host-from-http",
        _ => "redirection-to-https",
    };
    let mut t = test("redirection", "Redirection", REDIRECTION, result, result == "redirection-to-https", route.get(1).cloned());
    // http refused before any redirect: `[https] redirect = true` is not the fix (it may be set
    // already); what refuses it is.
    if result == "redirection-missing"
        && let Some((status, reason)) = refused
    {
        let host = authority.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(authority, |(h, _)| h);
        t.fix = Some(Cow::Owned(match reason {
            "host_not_allowed" => format!("the edge refuses http://{authority} with {status} ({reason}) before any redirect: add \"{host}\" to [app] hosts"),
            _ => format!("the edge refuses http://{authority} with {status} ({reason}) before any redirect: score a URL the edge serves"),
        }));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn csp_fixes_name_only_what_is_wrong() {
        let fix = |csp: &str| csp_test(&h(&[("content-security-policy", csp)]), true).test.fix.map(Cow::into_owned);
        assert_eq!(
            fix("default-src 'self'; script-src 'self' 'unsafe-inline' https://js.example; object-src 'none'").as_deref(),
            Some("remove 'unsafe-inline' from script-src in [csp.directives] and move inline scripts to files, nonces or hashes")
        );
        assert_eq!(fix("default-src 'self' https:").as_deref(), Some("remove https: from default-src in [csp.directives]; set object-src = [\"'none'\"]"));
        assert_eq!(
            fix("img-src 'self'").as_deref(),
            Some("add script-src (or default-src) to [csp.directives]: scripts are unrestricted; set object-src = [\"'none'\"]")
        );
    }

    #[test]
    fn csp_results() {
        let r = |csp: &str| csp_test(&h(&[("content-security-policy", csp)]), true).test.result;
        assert_eq!(r("default-src 'none'; form-action 'self'"), "csp-implemented-with-no-unsafe-default-src-none");
        assert_eq!(r("default-src 'self'; object-src 'none'"), "csp-implemented-with-no-unsafe");
        assert_eq!(r("default-src 'self'; script-src 'self' 'unsafe-inline'"), "csp-implemented-with-unsafe-inline");
        assert_eq!(r("default-src 'self'; script-src 'self' 'nonce-abcdefgh' 'unsafe-inline'"), "csp-implemented-with-no-unsafe");
        assert_eq!(r("default-src 'self'; script-src 'self' 'unsafe-eval'"), "csp-implemented-with-unsafe-eval");
        assert_eq!(r("default-src 'self'; style-src 'self' 'unsafe-inline'"), "csp-implemented-with-unsafe-inline-in-style-src-only");
        assert_eq!(r("default-src 'self'; img-src http://a.example"), "csp-implemented-with-insecure-scheme-in-passive-content-only");
        assert_eq!(r("default-src 'self' http://a.example"), "csp-implemented-with-insecure-scheme");
        assert_eq!(r("script-src 'self'"), "csp-implemented-with-unsafe-inline", "object-src unrestricted");
        assert_eq!(r("default-src 'self'; default-src 'none'"), "csp-header-invalid");
        assert_eq!(r("x"), "csp-header-invalid");
        assert_eq!(r("default-src 'self'; script-src 'strict-dynamic'"), "csp-header-invalid");
        assert_eq!(
            r("default-src 'self'; script-src 'strict-dynamic' 'nonce-abcdefgh' https: 'unsafe-inline'"),
            "csp-implemented-with-no-unsafe"
        );
        assert_eq!(r("default-src 'self'; report-uri /a; report-uri /b"), "csp-implemented-but-duplicate-directives");
        let t = csp_test(&h(&[("content-security-policy-report-only", "default-src 'self'")]), true).test;
        assert_eq!((t.result, t.modifier), ("csp-not-implemented-but-reporting-enabled", -25));
        assert_eq!(csp_test(&h(&[]), true).test.modifier, -25);
        assert!(csp_test(&h(&[("content-security-policy", "default-src 'self'; frame-ancestors 'none'")]), true).has_frame_ancestors);
    }

    #[test]
    fn header_results() {
        let v = |s: &str| Some(s.to_owned());
        assert_eq!(hsts_test(v("max-age=15552000").as_ref(), true).result, "hsts-implemented-max-age-at-least-six-months");
        assert_eq!(hsts_test(v("max-age=15551999; includeSubDomains").as_ref(), true).modifier, -10);
        assert_eq!(hsts_test(v("max-age=1, max-age=2").as_ref(), true).result, "hsts-header-invalid");
        assert_eq!(hsts_test(v("includeSubDomains").as_ref(), true).result, "hsts-header-invalid");
        assert_eq!(hsts_test(None, true).modifier, -20);
        assert_eq!(xfo_test(v("DENY").as_ref(), false).modifier, 0);
        assert_eq!(xfo_test(None, true).modifier, 5);
        assert_eq!(xfo_test(None, false).modifier, -20);
        assert_eq!(xfo_test(v("nope").as_ref(), false).result, "x-frame-options-header-invalid");
        assert_eq!(xcto_test(v(" NoSniff ").as_ref()).modifier, 0);
        assert_eq!(xcto_test(None).modifier, -5);
        assert_eq!(referrer_test(v("unsafe-url, strict-origin").as_ref()).modifier, 5);
        assert_eq!(referrer_test(v("strict-origin, unsafe-url").as_ref()).modifier, -5);
        assert_eq!(referrer_test(v("bogus").as_ref()).result, "referrer-policy-header-invalid");
        assert_eq!(referrer_test(None).modifier, 0);
        assert_eq!(corp_test(v("same-origin").as_ref()).modifier, 10);
        assert_eq!(corp_test(v("weird").as_ref()).modifier, -5);
        assert_eq!(corp_test(None).modifier, 0);
    }

    #[test]
    fn redirections() {
        let chain = |urls: &[&str]| urls.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
        assert_eq!(redirection_test(&chain(&["http://a.example/"]), None, "a.example").result, "redirection-missing");
        assert_eq!(redirection_test(&chain(&["http://a.example/"]), None, "a.example").fix.as_deref(), Some(FIX_REDIRECT));
        let refused = redirection_test(&chain(&["http://a.example:8080/"]), Some((421, "host_not_allowed")), "a.example:8080");
        assert_eq!(
            refused.fix.as_deref(),
            Some("the edge refuses http://a.example:8080 with 421 (host_not_allowed) before any redirect: add \"a.example\" to [app] hosts")
        );
        assert_eq!(redirection_test(&chain(&["http://a.example/", "https://a.example/"]), None, "a.example").result, "redirection-to-https");
        assert_eq!(
            redirection_test(&chain(&["http://www.a.example/", "https://www.a.example/", "https://a.example/"]), None, "a.example").result,
            "redirection-to-https"
        );
        assert_eq!(redirection_test(&chain(&["http://www.a.example/", "https://a.example/"]), None, "a.example").modifier, -5);
        assert_eq!(redirection_test(&chain(&["http://a.example/", "http://b.example/", "https://b.example/"]), None, "a.example").modifier, -10);
        assert_eq!(redirection_test(&chain(&["http://a.example/", "http://b.example/"]), None, "a.example").modifier, -20);
    }

    #[test]
    fn grades() {
        assert_eq!(grade(135), "A+");
        assert_eq!(grade(100), "A+");
        assert_eq!(grade(99), "A");
        assert_eq!(grade(85), "A-");
        assert_eq!(grade(64), "C+");
        assert_eq!(grade(-20), "F");
        let t = |m| Test { name: "", title: "", result: "", pass: true, modifier: m, description: "", fix: None, value: None };
        assert_eq!(score(&[t(-5), t(10)]), (105, 95));
        assert_eq!(score(&[t(-20), t(10)]), (80, 80), "no bonus below 90");
    }
}
