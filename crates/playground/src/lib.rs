//! The browser playground's wasm: the very compiler and engine the CLI and the worker run,
//! exported through wasm-bindgen to `www/`. No policy logic lives in JavaScript.
//!
//! Every export takes strings and returns one JSON string, so the page (or Node, for the parity
//! test) needs nothing but the wasm-bindgen glue:
//!
//! - [`check`]: the compiler's diagnostics, located (line, column, end) for the editor;
//! - [`explain`]: the `explain` contract (docs/explain.md) for one request — exactly what
//!   `edgeguard explain --format json` prints, through the same request building
//!   ([`edgeguard_core::request::TextRequest`]) and [`edgeguard_core::request::decide_repeated`];
//! - [`simulate`]: N requests at a chosen rate on a simulated clock, one step per request;
//! - [`report_card`]: the MDN HTTP Observatory's header tests over the edge's response headers,
//!   plus the compiler's CSP findings.
//!
//! Errors never panic across the boundary: bad input comes back as `{"error": ...}`.

mod input;
mod locate;
mod report;
mod response;
mod simulate;

use edgeguard_compiler::{Options, compile};
use edgeguard_core::{Decision, Engine};
use edgeguard_core::request::decide_repeated;
use serde::Serialize;
use wasm_bindgen::prelude::*;

pub use input::PlayRequest;

/// Most diagnostics returned by [`check`]: an editor shows a handful; a pasted megabyte of
/// garbage must not turn into megabytes of JSON.
pub const MAX_DIAGNOSTICS: usize = 200;

/// The file name diagnostics carry (the playground has one buffer).
const FILE: &str = "policy.toml";

#[derive(Serialize)]
struct Checked {
    diagnostics: Vec<edgeguard_compiler::diagnostics::Located>,
    errors: usize,
    warnings: usize,
    /// More diagnostics than [`MAX_DIAGNOSTICS`] were found; the first ones are listed.
    truncated: bool,
    /// The environments the policy knows: its own (`app.environment`, else "production") and
    /// every `[env.NAME]` overlay. Any other name compiles as the base policy.
    environments: Vec<String>,
}

/// The policy's own environment and its overlays' names (what the page checks `env` against).
fn environments(source: &str) -> Vec<String> {
    let (doc, _) = toml::de::DeTable::parse_recoverable(source);
    let mut names = vec![edgeguard_compiler::env::declared(doc.get_ref()).unwrap_or_else(|| "production".to_owned())];
    for name in edgeguard_compiler::env::overlay_names(doc.get_ref()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// A failure to answer: the policy does not compile, or the request is not a request.
#[derive(Serialize)]
struct Failed<'a> {
    error: String,
    /// The compiler's errors when the policy failed.
    diagnostics: &'a [edgeguard_compiler::diagnostics::Located],
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| error_json(&format!("cannot serialize the answer: {e}")))
}

fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message, "diagnostics": [] }).to_string()
}

fn options(env: &str) -> Options {
    let env = env.trim();
    #[allow(clippy::needless_update, reason = "Options may grow fields; they keep their defaults")]
    Options { env: (!env.is_empty()).then(|| env.to_owned()), ..Options::default() }
}

/// Runs once when the module is instantiated: a panic then shows its message in the browser's
/// console instead of a bare "unreachable".
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Compile `source` for `env` ("" = the policy's own) and check every diagnostic.
///
/// Returns `{"diagnostics": [{file, line, column, end_line, end_column, severity, code,
/// message, help, related}], "errors", "warnings", "truncated"}`; lines and columns are
/// 1-based, columns count characters.
#[wasm_bindgen]
pub fn check(source: &str, env: &str) -> String {
    let output = compile(source, &options(env));
    let errors = output.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = output.diagnostics.len().saturating_sub(errors);
    let locator = locate::Locator::new(source);
    let diagnostics = output.diagnostics.iter().take(MAX_DIAGNOSTICS).map(|d| locator.locate(d, FILE)).collect();
    to_json(&Checked {
        diagnostics,
        errors,
        warnings,
        truncated: output.diagnostics.len() > MAX_DIAGNOSTICS,
        environments: environments(source),
    })
}

/// The policy compiled into an engine, or the JSON answer saying why not.
pub(crate) fn engine(source: &str, env: &str) -> Result<(Engine, Vec<edgeguard_compiler::diagnostics::Diagnostic>), String> {
    let output = compile(source, &options(env));
    if output.has_errors() {
        let locator = locate::Locator::new(source);
        let errors: Vec<_> =
            output.diagnostics.iter().filter(|d| d.is_error()).take(MAX_DIAGNOSTICS).map(|d| locator.locate(d, FILE)).collect();
        let n = output.diagnostics.iter().filter(|d| d.is_error()).count();
        let first = errors.first().map(|d| format!(" (first: {} at line {}: {})", d.code, d.line, d.message)).unwrap_or_default();
        return Err(to_json(&Failed { error: format!("the policy has {n} error(s){first}"), diagnostics: &errors }));
    }
    let Some(bundle) = output.bundle else {
        return Err(error_json("the policy compiled without errors but no bundle was produced (a bug in edgeguard)"));
    };
    let mut engine = Engine::new(bundle).map_err(|e| error_json(&format!("cannot load the compiled policy: {e}")))?;
    engine.sessions().accept_test_tokens(input::PLAY_CLOCK);
    // The page shows the client facts (bot category, location, suspicion) of every request.
    engine.set_report_client(true);
    Ok((engine, output.diagnostics))
}

/// The request's test session as a header (`{header, value}`), to copy into curl or a test;
/// `{header: null}` without one, `{error}` when the policy cannot sign one.
#[wasm_bindgen]
pub fn test_session(source: &str, env: &str, request_json: &str) -> String {
    let answer = || -> Result<String, String> {
        let play = PlayRequest::parse(request_json).map_err(|e| error_json(&e))?;
        let (engine, _) = engine(source, env)?;
        let header = play.session_header(&engine).map_err(|e| error_json(&e))?;
        Ok(match header {
            Some((name, value)) => serde_json::json!({ "header": name, "value": value }).to_string(),
            None => serde_json::json!({ "header": null }).to_string(),
        })
    };
    answer().unwrap_or_else(|e| e)
}

/// What the edge does with one request: the `explain` contract, exactly as
/// `edgeguard explain --format json` prints it (keys in the contract's order).
///
/// `request_json`: `{method, url, headers: [[name, value], ...], cookies, client_ip, repeat,
/// at, seed}` (see [`PlayRequest`]).
#[wasm_bindgen]
pub fn explain(source: &str, env: &str, request_json: &str) -> String {
    explain_inner(source, env, request_json).unwrap_or_else(|e| e)
}

fn explain_inner(source: &str, env: &str, request_json: &str) -> Result<String, String> {
    let (_, _, explanation) = decide(source, env, request_json)?;
    Ok(to_json(&explanation))
}

/// Compile, build the request and decide it: the path `edgeguard explain` takes, explained.
fn decide(source: &str, env: &str, request_json: &str) -> Result<(Engine, Decision, edgeguard_core::Explanation), String> {
    let play = PlayRequest::parse(request_json).map_err(|e| error_json(&e))?;
    let (engine, _) = engine(source, env)?;
    let request = play.build(&engine).map_err(|e| error_json(&e))?;
    let now = play.now().map_err(|e| error_json(&e))?;
    let mut draws = play.draws();
    let limiter_seed = draws.limiter_seed();
    let Ok(decision) =
        decide_repeated(&engine, &request, play.repeat(), now, limiter_seed, || Ok::<_, core::convert::Infallible>(draws.next()));
    let explanation = edgeguard_core::explain::with_request(&engine, &decision, request.headers.iter().map(|(n, _)| n.as_str()));
    Ok((engine, decision, explanation))
}

/// [`explain`] for people: the same explanation, plus the response the client receives when
/// the origin answers with `origin_json` (`{status, headers: [[name, value], ...]}`, used for
/// `forward` only), each header marked `set`, `replaced`, `default` (added because the origin
/// sent none), `kept` (the origin's, untouched) or `appended`, and the origin's headers the
/// edge `removed`. Headers are applied in the worker's order: remove, defaults, set, cache on
/// success, per-request headers, appended cookies.
#[wasm_bindgen]
pub fn view(source: &str, env: &str, request_json: &str, origin_json: &str) -> String {
    view_inner(source, env, request_json, origin_json).unwrap_or_else(|e| e)
}

fn view_inner(source: &str, env: &str, request_json: &str, origin_json: &str) -> Result<String, String> {
    let origin = response::Origin::parse(origin_json).map_err(|e| error_json(&e))?;
    let (engine, decision, explanation) = decide(source, env, request_json)?;
    let head = PlayRequest::parse(request_json).is_ok_and(|p| p.method == "HEAD");
    let response = response::apply(&engine, &decision, &origin, head);
    Ok(to_json(&serde_json::json!({ "explanation": explanation, "response": response })))
}

/// `count` identical requests, `rate_per_sec` per second on a simulated clock starting at the
/// request's `at` (0 or less: all at the same instant, as `explain --repeat`), against one
/// limiter. See [`simulate::Simulation`] for the answer.
#[wasm_bindgen]
pub fn simulate(source: &str, env: &str, request_json: &str, count: u32, rate_per_sec: f64) -> String {
    simulate::run(source, env, request_json, count, rate_per_sec).unwrap_or_else(|e| e)
}

/// The MDN HTTP Observatory's header tests over the response the edge gives a GET of the
/// request's URL (and the redirects from its `http://` form), the grade, a one-line fix per
/// test, and the compiler's CSP findings. See [`report::Card`].
#[wasm_bindgen]
pub fn report_card(source: &str, env: &str, request_json: &str) -> String {
    report::run(source, env, request_json).unwrap_or_else(|e| e)
}

/// A live site's response headers (`curl -sI` output or a HAR file): their grade, the policy
/// that keeps what they do right and fixes the rest ([`edgeguard_compiler::site`]), that
/// policy's report card, and the grades test by test before and after.
///
/// Returns `{site: {format, status, url, host, headers}, before: {score, grade, tests},
/// proposal: {policy, kept, changed}, after: <report_card> | {error, diagnostics}, diff:
/// [{name, title, before: {result, modifier, pass}, after: {...}}]}`.
#[wasm_bindgen]
pub fn import_headers(text: &str) -> String {
    import_inner(text).unwrap_or_else(|e| e)
}

fn import_inner(text: &str) -> Result<String, String> {
    use serde_json::json;
    let site = edgeguard_compiler::site::parse(text).map_err(|e| error_json(&e))?;
    let mut headers = std::collections::BTreeMap::new();
    for (name, value) in &site.headers {
        headers.entry(name.clone()).and_modify(|v: &mut String| {
            v.push_str(", ");
            v.push_str(value);
        }).or_insert_with(|| value.clone());
    }
    let https = site.url.as_deref().is_none_or(|u| u.to_ascii_lowercase().starts_with("https://"));
    let (before, score, grade) = report::grade_headers(&headers, https);
    let proposal = edgeguard_compiler::site::propose(&site);
    let url = format!("https://{}/", site.host.as_deref().unwrap_or("example.com"));
    let request = json!({ "method": "GET", "url": url }).to_string();
    let (after, diff) = match report::card(&proposal.policy, "", &request) {
        Ok(card) => {
            let row = |t: &report::Test| json!({ "result": t.result, "modifier": t.modifier, "pass": t.pass });
            let diff: Vec<_> = card
                .tests
                .iter()
                .map(|a| {
                    let b = before.iter().find(|b| b.name == a.name);
                    json!({ "name": a.name, "title": a.title, "before": b.map(row), "after": row(a) })
                })
                .collect();
            (serde_json::to_value(&card).unwrap_or_default(), diff)
        }
        Err(e) => (serde_json::from_str(&e).unwrap_or_default(), Vec::new()),
    };
    Ok(to_json(&json!({
        "site": site,
        "before": { "score": score, "grade": grade, "tests": before },
        "proposal": proposal,
        "after": after,
        "diff": diff,
    })))
}

/// The compiled bundle, byte for byte what `edgeguard compile POLICY -o policy.egb` writes
/// and `edgeguard build` puts in its directory as `policy.egb`; empty when the policy has
/// errors (the page offers the download only when it has none).
#[wasm_bindgen]
pub fn bundle(source: &str, env: &str) -> Vec<u8> {
    match compile(source, &options(env)) {
        output if output.has_errors() => Vec::new(),
        output => output.bundle.and_then(|b| b.to_bytes().ok()).unwrap_or_default(),
    }
}

/// What `edgeguard build` records of the policy in `edgeguard.json` (`app`, `environment`,
/// `revision`), as JSON; "" when the policy has errors. The page writes the worker directory
/// around the bundle with it.
#[wasm_bindgen]
pub fn bundle_facts(source: &str, env: &str) -> String {
    match compile(source, &options(env)) {
        output if output.has_errors() => String::new(),
        output => output.bundle.map_or_else(String::new, |mut b| {
            if b.revision.is_empty() {
                b.revision = b.digest_hex().unwrap_or_default();
            }
            serde_json::json!({ "app": b.app.name, "environment": b.app.environment, "revision": b.revision }).to_string()
        }),
    }
}

/// The crate version, for the page's footer.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const QUOTEKIT: &str = include_str!("../../../fixtures/quotekit.toml");

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn check_locates_diagnostics() {
        let v = parse(&check("version = 1\n[https]\nhsts = { max_age = \"1 year\" }\n", ""));
        let d = v["diagnostics"].as_array().unwrap().iter().find(|d| d["severity"] == "error").unwrap();
        assert_eq!((d["line"].as_u64(), d["column"].as_u64(), d["code"].as_str()), (Some(3), Some(8), Some("E070")), "{v}");
        assert!(d["help"].is_string());
        let v = parse(&check(QUOTEKIT, ""));
        assert_eq!(v["errors"], 0);
        assert!(v["warnings"].as_u64().unwrap() > 0);
        assert_eq!(v["environments"], json!(["production", "staging"]));
        let v = parse(&check("\u{0}\u{1}binary", ""));
        assert!(v["errors"].as_u64().unwrap() > 0);
    }

    #[test]
    fn explain_is_the_contract() {
        let v = parse(&explain(QUOTEKIT, "", r#"{"method":"GET","url":"https://lawnquote.online/api/debug-oauth"}"#));
        assert_eq!((v["action"].as_str(), v["status"].as_u64(), v["reason"].as_str()), (Some("reject"), Some(404), Some("blocked")));
        assert_eq!(v["route"], "/api/debug-*");
        // The contract's keys, in order.
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.first().map(|k| k.as_str()), Some("action"));
        // Staging: the debug routes are not blocked.
        let v = parse(&explain(
            QUOTEKIT,
            "staging",
            r#"{"url":"https://quotekit-staging.fly.dev/api/debug-oauth","client_ip":"198.51.100.7"}"#,
        ));
        assert_eq!(v["action"], "forward", "{v}");
        assert_eq!(v["forward_headers"]["x-forwarded-for"], "198.51.100.7");
    }

    #[test]
    fn explain_takes_request_cf_and_reports_the_client() {
        let v = parse(&explain(QUOTEKIT, "", r#"{"url":"https://lawnquote.online/pricing","country":"ir","continent":"AS","asn":197207}"#));
        assert_eq!((v["status"].as_u64(), v["reason"].as_str()), (Some(403), Some("geo_denied")), "{v}");
        assert_eq!((v["client"]["country"].as_str(), v["client"]["asn"].as_u64()), (Some("IR"), Some(197207)));
        let ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let req = json!({"url":"https://lawnquote.online/pricing","headers":[["user-agent", ua]],"verified_bot_category":"Search Engine Crawler"}).to_string();
        let v = parse(&explain(QUOTEKIT, "", &req));
        assert_eq!((v["client"]["bot"]["category"].as_str(), v["client"]["bot"]["verified"].as_bool()), (Some("search_engine"), Some(true)), "{v}");
        let v = parse(&explain(QUOTEKIT, "", &json!({"url":"https://lawnquote.online/pricing","headers":[["user-agent", ua]]}).to_string()));
        assert_eq!((v["client"]["bot"]["category"].as_str(), v["client"]["bot"]["claimed"].as_str()), (Some("unknown"), Some("search_engine")));
    }

    #[test]
    fn explain_errors_are_json() {
        for (source, request) in [
            (QUOTEKIT, "not json"),
            (QUOTEKIT, r#"{"url":"/no-host"}"#),
            (QUOTEKIT, r#"{"url":"https://a/","client_ip":"nope"}"#),
            (QUOTEKIT, r#"{"url":"https://a/","repeat":0}"#),
            (QUOTEKIT, r#"{"method":"G T","url":"https://a/"}"#),
            ("version = ", r#"{"url":"https://a/"}"#),
        ] {
            let v = parse(&explain(source, "", request));
            assert!(v["error"].is_string(), "{request}: {v}");
        }
        let v = parse(&explain("version = ", "", r#"{"url":"https://a/"}"#));
        assert_eq!(v["diagnostics"][0]["code"], "E001");
    }

    #[test]
    fn repeat_matches_simulate_at_one_instant() {
        let req = json!({"method":"GET","url":"https://lawnquote.online/api/quotes","client_ip":"198.51.100.7"}).to_string();
        let sim = parse(&simulate(QUOTEKIT, "", &req, 150, 0.0));
        assert_eq!(sim["first_refused"], 21, "burst 20");
        assert_eq!(sim["limit"]["name"], "api");
        assert_eq!(sim["steps"][20]["status"], 429);
        assert_eq!(sim["steps"][19]["ratelimit"], "\"api\";r=0;t=180");
        let with_repeat = |n: u32| {
            let req = json!({"method":"GET","url":"https://lawnquote.online/api/quotes","client_ip":"198.51.100.7","repeat":n});
            parse(&explain(QUOTEKIT, "", &req.to_string()))["status"].clone()
        };
        assert_eq!(with_repeat(20), Value::Null);
        assert_eq!(with_repeat(21), 429);
        // One every 9 s sustained: at 1 request per second, the bucket refills by 1/9 per request.
        let sim = parse(&simulate(QUOTEKIT, "", &req, 150, 1.0));
        assert_eq!(sim["first_refused"], 23, "{}", sim["steps"][22]);
        assert!(parse(&simulate(QUOTEKIT, "", &req, 0, 1.0))["error"].is_string());
    }

    #[test]
    fn view_marks_header_changes() {
        let origin = json!({"status":200,"headers":[["X-Powered-By","Next.js"],["X-Frame-Options","SAMEORIGIN"],["Content-Type","text/html"],["Server","nginx"]]});
        let v = parse(&view(QUOTEKIT, "", r#"{"url":"https://lawnquote.online/"}"#, &origin.to_string()));
        let headers = v["response"]["headers"].as_array().unwrap();
        let change = |name: &str| headers.iter().find(|h| h["name"] == name).map(|h| h["change"].as_str().unwrap().to_owned());
        assert_eq!(change("x-powered-by").as_deref(), Some("removed"));
        assert_eq!(change("server").as_deref(), Some("removed"));
        assert_eq!(change("x-frame-options").as_deref(), Some("replaced"));
        assert_eq!(change("content-type").as_deref(), Some("kept"));
        assert_eq!(change("strict-transport-security").as_deref(), Some("set"));
        assert_eq!(v["explanation"]["action"], "forward");
        let v = parse(&view(QUOTEKIT, "", r#"{"url":"https://lawnquote.online/api/debug-x"}"#, &origin.to_string()));
        assert_eq!(v["response"]["status"], 404);
        assert_eq!(v["response"]["from_origin"], false);
    }

    /// The strict CSP choice reads the response's type as the route's header set leaves it, as
    /// the worker's shell does: a header set that makes the answer HTML gets the nonce policy.
    #[test]
    fn view_reads_the_type_the_header_set_leaves() {
        let policy = QUOTEKIT
            .replacen("[csp]\n", "[csp]\nstrict = \"nonce\"\n", 1)
            .replacen("[headers.set]\n", "[headers.set]\n\"Content-Type\" = \"text/html; charset=utf-8\"\n", 1);
        assert!(policy.contains("\"Content-Type\" = \"text/html"), "the policy gained the header");
        let origin = json!({"headers":[["Content-Type","application/octet-stream"]]});
        let v = parse(&view(&policy, "", r#"{"url":"https://lawnquote.online/"}"#, &origin.to_string()));
        let headers = v["response"]["headers"].as_array().unwrap();
        let value = |name: &str| headers.iter().find(|h| h["name"] == name && !h["value"].is_null()).map(|h| h["value"].as_str().unwrap().to_owned());
        assert_eq!(value("content-type").as_deref(), Some("text/html; charset=utf-8"));
        let csp = value("content-security-policy").unwrap();
        assert!(csp.contains("'nonce-{nonce}'"), "{csp}");
    }

    #[test]
    fn view_shows_the_strict_csp_of_html_pages() {
        let policy = QUOTEKIT.replacen("[csp]\n", "[csp]\nstrict = \"nonce\"\n", 1);
        let csp_of = |request: &str, origin: serde_json::Value| {
            let v = parse(&view(&policy, "", request, &origin.to_string()));
            let headers = v["response"]["headers"].as_array().unwrap().clone();
            let get = |name: &str| headers.iter().find(|h| h["name"] == name).map(|h| (h["value"].clone(), h["change"].as_str().unwrap().to_owned()));
            (get("content-security-policy"), get("content-security-policy-report-only"), v["explanation"]["csp_nonce"].clone())
        };
        let get = r#"{"url":"https://lawnquote.online/"}"#;
        let html = json!({"headers":[["Content-Type","text/html; charset=utf-8"],["Content-Security-Policy","default-src *"]]});
        let (csp, ro, nonce) = csp_of(get, html.clone());
        let (value, change) = csp.unwrap();
        assert!(value.as_str().unwrap().contains(";script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-eval' 'unsafe-inline' https:;"), "{value}");
        assert_eq!((change.as_str(), ro), ("replaced", None));
        assert_eq!(nonce["mode"], "enforce");
        assert_eq!(nonce["otherwise"], parse(&explain(QUOTEKIT, "", get))["response_headers"]["content-security-policy"]);
        // HEAD: the header without a body.
        let (csp, _, _) = csp_of(r#"{"method":"HEAD","url":"https://lawnquote.online/"}"#, html);
        assert!(csp.unwrap().0.as_str().unwrap().contains("'nonce-{nonce}'"));
        // JSON, a range and an encoding the edge cannot read keep the legacy policy.
        for origin in [
            json!({"headers":[["Content-Type","application/json"]]}),
            json!({"status":206,"headers":[["Content-Type","text/html"]]}),
            json!({"headers":[["Content-Type","text/html"],["Content-Encoding","deflate"]]}),
        ] {
            let (csp, _, _) = csp_of(get, origin.clone());
            assert!(csp.unwrap().0.as_str().unwrap().contains(";script-src 'self' 'unsafe-inline'"), "{origin}");
        }
        // 304: no CSP at all, the cached page keeps its own.
        let (csp, ro, _) = csp_of(get, json!({"status":304,"headers":[["Content-Security-Policy","x"]]}));
        assert_eq!((csp, ro), (Some((serde_json::Value::Null, "removed".to_owned())), None));
        let (csp, ro, _) = csp_of(get, json!({"status":304}));
        assert_eq!((csp, ro), (None, None));
    }

    #[test]
    fn report_cards() {
        let v = parse(&report_card(QUOTEKIT, "", r#"{"url":"https://lawnquote.online/"}"#));
        let result = |name: &str| v["tests"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()["result"].clone();
        assert_eq!(result("content-security-policy"), "csp-implemented-with-unsafe-inline");
        assert_eq!(result("strict-transport-security"), "hsts-implemented-max-age-at-least-six-months");
        assert_eq!(result("x-frame-options"), "x-frame-options-implemented-via-csp");
        assert_eq!(result("redirection"), "redirection-to-https");
        assert_eq!(result("referrer-policy"), "referrer-policy-private");
        assert_eq!(result("cross-origin-resource-policy"), "corp-implemented-with-same-origin");
        // 100 - 20 (unsafe-inline): below 90, so no bonus.
        assert_eq!((v["score"].as_i64(), v["grade"].as_str()), (Some(80), Some("B+")), "{v}");
        assert!(v["csp_findings"].as_array().unwrap().iter().any(|f| f["code"] == "W010"));
        // The fix names what is wrong, not what QuoteKit already has (object-src 'none').
        let fix = |v: &Value, name: &str| v["tests"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()["fix"].as_str().unwrap_or("").to_owned();
        let csp_fix = fix(&v, "content-security-policy");
        assert!(csp_fix.starts_with("remove 'unsafe-inline' from script-src"), "{csp_fix}");
        assert!(!csp_fix.contains("object-src"), "{csp_fix}");
        // A host the policy does not serve: the redirect is not what is missing.
        let other = parse(&report_card(QUOTEKIT, "", r#"{"url":"https://unknown.example/"}"#));
        assert_eq!(fix(&other, "redirection"), "the edge refuses http://unknown.example with 421 (host_not_allowed) before any redirect: add \"unknown.example\" to [app] hosts");
        assert_eq!(v["http_redirects"][1], "https://lawnquote.online/");
        let helmet = include_str!("../../../fixtures/helmet.toml");
        let v = parse(&report_card(helmet, "", r#"{"url":"https://example.com/"}"#));
        assert_eq!(v["grade"], "A+", "{v}");
        let v = parse(&report_card(QUOTEKIT, "", r#"{"url":"https://lawnquote.online/api/debug-oauth"}"#));
        assert!(v["scan_aborts"].is_string());
    }

    #[test]
    fn header_import_grades_three_real_header_sets() {
        let grades = |text: &str| {
            let v = parse(&import_headers(text));
            assert!(v["error"].is_null(), "{v}");
            let before = (v["before"]["score"].as_i64().unwrap(), v["before"]["grade"].as_str().unwrap().to_owned());
            let after = (v["after"]["score"].as_i64().unwrap(), v["after"]["grade"].as_str().unwrap().to_owned());
            eprintln!("{before:?} -> {after:?}\n{}", v["proposal"]["policy"].as_str().unwrap());
            (before, after, v)
        };
        // helmet's defaults, as the edge sends them: A+ before and after.
        let (before, after, _) = grades(include_str!("../../../fixtures/headers/helmet.txt"));
        assert_eq!((before, after), ((120, "A+".to_owned()), (120, "A+".to_owned())));
        // QuoteKit's: 'unsafe-inline' is kept (removing it would break the site): B+ stays B+,
        // with its CSP kept directive by directive and its DENY, referrer and cross-origin choices.
        let (before, after, v) = grades(include_str!("../../../fixtures/headers/quotekit.txt"));
        assert_eq!((before, after), ((80, "B+".to_owned()), (80, "B+".to_owned())));
        let policy = v["proposal"]["policy"].as_str().unwrap();
        assert!(policy.contains("\"X-Frame-Options\" = \"DENY\""), "{policy}");
        assert!(policy.contains("\"Referrer-Policy\" = \"strict-origin-when-cross-origin\""), "{policy}");
        assert!(policy.contains("script-src = [\"'self'\", \"'unsafe-inline'\""), "{policy}");
        // A site with no security headers: D before (30: no CSP, HSTS, framing or nosniff), A+ after.
        let (before, after, v) = grades(include_str!("../../../fixtures/headers/bare.txt"));
        assert_eq!((before, after), ((30, "D".to_owned()), (120, "A+".to_owned())));
        let csp = v["diff"].as_array().unwrap().iter().find(|d| d["name"] == "content-security-policy").unwrap().clone();
        assert_eq!((csp["before"]["result"].as_str(), csp["after"]["result"].as_str()), (Some("csp-not-implemented"), Some("csp-implemented-with-unsafe-inline-in-style-src-only")));
        assert!(parse(&import_headers("not headers at all"))["error"].is_string());
    }

    #[test]
    fn bundle_bytes_load_and_errors_give_none() {
        let bytes = bundle(QUOTEKIT, "");
        assert!(Engine::load(&bytes).is_ok());
        assert_eq!(bytes, bundle(QUOTEKIT, ""), "deterministic");
        assert_ne!(bytes, bundle(QUOTEKIT, "staging"));
        assert!(bundle("version = ", "").is_empty());
    }

    #[test]
    fn share_seed_reproduces_the_decision() {
        let req = r#"{"url":"https://lawnquote.online/","seed":42}"#;
        assert_eq!(explain(QUOTEKIT, "", req), explain(QUOTEKIT, "", req));
        let other = r#"{"url":"https://lawnquote.online/","seed":43}"#;
        assert_ne!(explain(QUOTEKIT, "", req), explain(QUOTEKIT, "", other));
    }
}
