//! A live site's response headers — `curl -sI` output or a HAR file — and the policy that keeps
//! what they do right and fixes the rest (`edgeguard init --from-headers`, the playground's
//! header import).
//!
//! The proposal starts from `preset = "helmet"`. The site's own choices are kept where they
//! are deliberate and not weaker than helmet's (`[headers.set]`): a stricter `X-Frame-Options`,
//! a private `Referrer-Policy`, its cross-origin and permissions policies. Its CSP becomes
//! `[csp.directives]` (directive by directive, every source kept, so nothing the site loads
//! breaks), with `object-src 'none'`, `base-uri 'self'` and `frame-ancestors` added when
//! missing; a report-only CSP stays report-only. An HSTS `max-age` of six months or more is kept
//! (with its `includeSubDomains` and `preload`); a shorter one becomes a year.

use core::fmt::Write as _;

use serde_json::Value;

/// One response's headers, as pasted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteHeaders {
    /// `curl` or `har`.
    pub format: &'static str,
    /// The response's status, when the paste has a status line.
    pub status: Option<u16>,
    /// The request URL (HAR only; `curl -sI` output does not carry it).
    pub url: Option<String>,
    /// The host of `url`.
    pub host: Option<String>,
    /// Names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
}

impl SiteHeaders {
    /// The value of header `name` (lowercase); repeated headers joined with ", ".
    pub fn get(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// Read `curl -sI` / `curl -sIL` output (the last response counts: after the redirects) or a
/// HAR file (the first HTML document's response, else the first entry's).
pub fn parse(text: &str) -> Result<SiteHeaders, String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err("nothing to read: paste the output of `curl -sI https://your.site/` or a HAR file".to_owned());
    }
    if trimmed.starts_with('{') {
        return parse_har(trimmed);
    }
    parse_curl(trimmed)
}

fn parse_curl(text: &str) -> Result<SiteHeaders, String> {
    let mut status = None;
    let mut headers: Vec<(String, String)> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if line.starts_with("HTTP/") {
            // A new response (a redirect followed with -L, or a 100 Continue): keep the last.
            status = line.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
            headers.clear();
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('<') || line.starts_with('>') || line.starts_with('*') {
            // `curl -v` markers are tolerated: "< Name: value" lines count.
            if let Some(rest) = line.strip_prefix("< ") {
                if rest.starts_with("HTTP/") {
                    status = rest.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
                    headers.clear();
                } else if let Some((n, v)) = rest.split_once(':') {
                    headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if is_token(name.trim()) => headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned())),
            _ => return Err(format!("`{}` is not a header line (Name: value): paste the output of `curl -sI URL`", clip(line))),
        }
    }
    if headers.is_empty() {
        return Err("no response headers found: paste the output of `curl -sI https://your.site/` or a HAR file".to_owned());
    }
    Ok(SiteHeaders { format: "curl", status, url: None, host: None, headers })
}

fn parse_har(text: &str) -> Result<SiteHeaders, String> {
    let har: Value = serde_json::from_str(text).map_err(|e| format!("this starts like a HAR file but is not JSON: {e}"))?;
    let entries = har.pointer("/log/entries").and_then(Value::as_array).ok_or("a HAR file has log.entries; this JSON has none")?;
    let headers_of = |entry: &Value| -> Vec<(String, String)> {
        entry
            .pointer("/response/headers")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|h| Some((h.get("name")?.as_str()?.trim().to_ascii_lowercase(), h.get("value")?.as_str()?.trim().to_owned())))
                    .filter(|(n, _)| !n.starts_with(':'))
                    .collect()
            })
            .unwrap_or_default()
    };
    let is_html = |entry: &Value| headers_of(entry).iter().any(|(n, v)| n == "content-type" && v.to_ascii_lowercase().starts_with("text/html"));
    let entry = entries.iter().find(|e| is_html(e)).or_else(|| entries.first()).ok_or("the HAR file has no entries")?;
    let headers = headers_of(entry);
    if headers.is_empty() {
        return Err("the HAR entry has no response headers".to_owned());
    }
    let url = entry.pointer("/request/url").and_then(Value::as_str).map(str::to_owned);
    let host = url.as_deref().and_then(host_of);
    let status = entry.pointer("/response/status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()).filter(|s| *s > 0);
    Ok(SiteHeaders { format: "har", status, url, host, headers })
}

fn host_of(url: &str) -> Option<String> {
    let after = url.split_once("://")?.1;
    let authority = after.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = authority.split(':').next()?.to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len().saturating_add(2));
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The policy proposed for a site, and what it kept and changed, one line each.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Proposal {
    pub policy: String,
    pub kept: Vec<String>,
    pub changed: Vec<String>,
}

const HELMET_REFERRER: &str = "no-referrer";
const PRIVATE_REFERRERS: &[&str] = &["no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"];
/// Headers the site may set on purpose that the proposal keeps as they are (helmet's value, if
/// any, is replaced by the site's).
const KEPT_AS_IS: &[(&str, &str)] = &[
    ("cross-origin-opener-policy", "Cross-Origin-Opener-Policy"),
    ("cross-origin-resource-policy", "Cross-Origin-Resource-Policy"),
    ("cross-origin-embedder-policy", "Cross-Origin-Embedder-Policy"),
    ("permissions-policy", "Permissions-Policy"),
];
const SIX_MONTHS: u64 = 15_552_000;
/// helmet 8's default CSP, as `preset = "helmet"` sends it (csp/mod.rs): a site that sends exactly
/// this needs no `[csp]`.
const HELMET_CSP: &str = "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests";

/// A CSP's directives, each with its sources, whitespace and case of names normalized.
fn normalized_csp(csp: &str) -> Vec<String> {
    let mut out: Vec<String> = csp
        .split(';')
        .map(|d| {
            let mut tokens = d.split_whitespace();
            let name = tokens.next().unwrap_or("").to_ascii_lowercase();
            let sources: Vec<&str> = tokens.collect();
            format!("{name} {}", sources.join(" "))
        })
        .filter(|d| !d.trim().is_empty())
        .collect();
    out.sort();
    out
}

/// The policy that keeps what `site` does right and fixes the rest (see the module docs).
pub fn propose(site: &SiteHeaders) -> Proposal {
    let mut draft = Draft::default();
    let p = &mut draft.p;
    let from = site.url.as_deref().map_or_else(|| "pasted response headers".to_owned(), |u| format!("the response headers of {u}"));
    let _ = writeln!(p, "# Proposed from {from} (`edgeguard init --from-headers`).");
    p.push_str("# helmet's headers, with the site's deliberate differences kept; review, then `edgeguard check`.\nversion = 1\n");
    if let Some(host) = &site.host {
        let _ = write!(p, "\n[app]\nhosts = [{}]\n", quote(host));
    }
    propose_hsts(site, &mut draft);
    let set = propose_headers(site, &mut draft);
    propose_csp(site, &set, &mut draft);
    let Draft { mut p, kept, changed } = draft;
    p.push_str("\n[origins.app]\nurl = \"https://my-app.example.net\"           # placeholder: your app's real address\n\n[deploy]\nactive = \"app\"\n");
    Proposal { policy: p, kept, changed }
}

/// The policy text so far, with what it kept of the site and what it changed.
#[derive(Default)]
struct Draft {
    p: String,
    kept: Vec<String>,
    changed: Vec<String>,
}

/// HSTS: the site's when it is long enough; else a year.
fn propose_hsts(site: &SiteHeaders, draft: &mut Draft) {
    let Draft { p, kept, changed } = draft;
    p.push_str("\n[https]\nredirect = true                              # http → https on the same host\n");
    match site.get("strict-transport-security").as_deref().and_then(hsts) {
        Some((age, subdomains, preload)) if age >= SIX_MONTHS => {
            let _ = writeln!(p, "hsts = {{ max_age = {age}, include_subdomains = {subdomains}, preload = {preload} }}");
            kept.push(format!("Strict-Transport-Security: max-age={age}{}{}", if subdomains { "; includeSubDomains" } else { "" }, if preload { "; preload" } else { "" }));
        }
        Some((age, ..)) => {
            p.push_str("hsts = { max_age = \"1y\", include_subdomains = true }\n");
            changed.push(format!("HSTS max-age {age} s is under six months: a year"));
        }
        None => {
            p.push_str("hsts = { max_age = \"1y\", include_subdomains = true }\n");
            changed.push("no valid Strict-Transport-Security: a year, with subdomains".to_owned());
        }
    }
}

/// `[headers]`: helmet's, with the site's own X-Frame-Options, Referrer-Policy and the headers
/// kept as they are; returns the headers set.
fn propose_headers(site: &SiteHeaders, draft: &mut Draft) -> Vec<(&'static str, String)> {
    let Draft { p, kept, changed } = draft;
    p.push_str("\n[headers]\npreset = \"helmet\"\n");
    let mut set: Vec<(&str, String)> = Vec::new();
    match site.get("x-frame-options").map(|v| v.trim().to_ascii_uppercase()).as_deref() {
        Some("DENY") => {
            set.push(("X-Frame-Options", "DENY".to_owned()));
            kept.push("X-Frame-Options: DENY (helmet sends SAMEORIGIN)".to_owned());
        }
        Some("SAMEORIGIN") | None => {}
        Some(other) => changed.push(format!("X-Frame-Options {other} is not DENY or SAMEORIGIN: helmet's SAMEORIGIN")),
    }
    if let Some(referrer) = site.get("referrer-policy") {
        let last = referrer.rsplit(',').next().unwrap_or("").trim().to_ascii_lowercase();
        if PRIVATE_REFERRERS.contains(&last.as_str()) {
            if last != HELMET_REFERRER {
                set.push(("Referrer-Policy", last.clone()));
                kept.push(format!("Referrer-Policy: {last}"));
            }
        } else {
            changed.push(format!("Referrer-Policy {referrer} leaks URLs to other sites: helmet's no-referrer"));
        }
    }
    for (name, display) in KEPT_AS_IS {
        let helmet = crate::headers::HELMET.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        if let Some(value) = site.get(name).filter(|v| Some(v.as_str()) != helmet) {
            set.push((display, value.clone()));
            kept.push(format!("{display}: {value}"));
        }
    }
    if !set.is_empty() {
        p.push_str("\n[headers.set]                                # the site's own choices, kept\n");
        for (name, value) in &set {
            let _ = writeln!(p, "{} = {}", quote(name), quote(value));
        }
    }
    set
}

/// CSP: the site's, directive by directive, with the safe additions (`set`: the headers
/// `[headers]` sets, for frame-ancestors to say what X-Frame-Options says).
fn propose_csp(site: &SiteHeaders, set: &[(&str, String)], draft: &mut Draft) {
    let Draft { p, kept, changed } = draft;
    let enforced = site.get("content-security-policy");
    let report_only = site.get("content-security-policy-report-only");
    let helmets = enforced.as_deref().is_some_and(|c| normalized_csp(c) == normalized_csp(HELMET_CSP));
    if helmets {
        kept.push("Content-Security-Policy: helmet's, as the preset sends it".to_owned());
    } else if let Some((csp, mode)) = enforced.map(|c| (c, "enforce")).or_else(|| report_only.map(|c| (c, "report-only"))) {
        // The first policy of the header (a comma starts another one).
        let first = csp.split(',').next().unwrap_or("");
        let mut directives: Vec<(String, Vec<String>)> = Vec::new();
        let mut report_to = None;
        for part in first.split(';') {
            let mut tokens = part.split_whitespace();
            let Some(name) = tokens.next().map(str::to_ascii_lowercase) else { continue };
            if name == "report-to" {
                continue;
            }
            if name == "report-uri" {
                // The edge writes report-uri and report-to itself from [csp] report_to.
                report_to = tokens.next().filter(|u| u.starts_with('/') || u.starts_with("https://")).map(str::to_owned);
                if let Some(uri) = &report_to {
                    kept.push(format!("CSP reports to {uri} ([csp] report_to)"));
                }
                continue;
            }
            if directives.iter().any(|(n, _)| *n == name) {
                continue;
            }
            directives.push((name, tokens.map(str::to_owned).collect()));
        }
        let has = |d: &[(String, Vec<String>)], name: &str| d.iter().any(|(n, _)| n == name);
        let default_none = directives.iter().any(|(n, s)| n == "default-src" && s.len() == 1 && s.first().is_some_and(|x| x == "'none'"));
        if !has(&directives, "object-src") && !default_none {
            directives.push(("object-src".to_owned(), vec!["'none'".to_owned()]));
            changed.push("CSP: object-src 'none' added (no plugins)".to_owned());
        }
        if !has(&directives, "base-uri") {
            directives.push(("base-uri".to_owned(), vec!["'self'".to_owned()]));
            changed.push("CSP: base-uri 'self' added".to_owned());
        }
        if !has(&directives, "frame-ancestors") {
            let deny = set.iter().any(|(n, v)| *n == "X-Frame-Options" && v == "DENY");
            let source = if deny { "'none'" } else { "'self'" };
            directives.push(("frame-ancestors".to_owned(), vec![source.to_owned()]));
            changed.push(format!("CSP: frame-ancestors {source} added (what X-Frame-Options says, for browsers that read only CSP)"));
        }
        kept.push(format!("Content-Security-Policy{}: {} directives, every source", if mode == "report-only" { "-Report-Only" } else { "" }, directives.len()));
        let _ = write!(p, "\n[csp]\nmode = {}\n", quote(mode));
        if let Some(uri) = &report_to {
            let _ = writeln!(p, "report_to = {}", quote(uri));
        }
        p.push_str("\n[csp.directives]                             # the site's CSP; `edgeguard check` lints it\n");
        if mode == "report-only" {
            changed.push("the CSP stays report-only, as the site sends it: switch [csp] mode to \"enforce\" once its reports are clean".to_owned());
        }
        for (name, sources) in &directives {
            if sources.is_empty() {
                let _ = writeln!(p, "{name} = true");
            } else {
                let list: Vec<String> = sources.iter().map(|s| quote(s)).collect();
                let _ = writeln!(p, "{name} = [{}]", list.join(", "));
            }
        }
    } else {
        changed.push("no Content-Security-Policy: helmet's (default-src 'self' and the rest); loosen it where the site loads from elsewhere".to_owned());
    }
}

/// `(max-age, includeSubDomains, preload)` of an HSTS header with exactly one max-age.
fn hsts(value: &str) -> Option<(u64, bool, bool)> {
    if value.contains(',') {
        return None;
    }
    let mut age = None;
    let (mut subdomains, mut preload) = (false, false);
    for part in value.split(';').map(|p| p.trim().to_ascii_lowercase()) {
        if let Some(v) = part.strip_prefix("max-age=") {
            if age.is_some() {
                return None;
            }
            age = Some(v.trim_matches('"').parse::<u64>().ok()?);
        } else if part == "includesubdomains" {
            subdomains = true;
        } else if part == "preload" {
            preload = true;
        }
    }
    age.map(|a| (a, subdomains, preload))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::{Options, compile};
    use proptest::prelude::*;

    proptest! {
        /// Whatever is pasted — text, a broken HAR, header lines with odd names and values — the
        /// import answers (a proposal or why not) and never panics; a proposal always compiles.
        #[test]
        fn any_paste_is_answered(
            text in "\\PC{0,400}",
            lines in proptest::collection::vec(("[A-Za-z-]{1,24}", "[ -~]{0,60}"), 0..12),
            har in proptest::bool::ANY,
        ) {
            let _ = parse(&text);
            let headers: Vec<String> = lines.iter().map(|(n, v)| format!("{n}: {v}")).collect();
            let pasted = if har {
                let list: Vec<String> = lines.iter().map(|(n, v)| format!("{{\"name\":{},\"value\":{}}}", serde_json::json!(n), serde_json::json!(v))).collect();
                format!("{{\"log\":{{\"entries\":[{{\"request\":{{\"url\":\"https://a.example/\"}},\"response\":{{\"status\":200,\"headers\":[{}]}}}}]}}}}", list.join(","))
            } else {
                format!("HTTP/2 200\r\n{}\r\n", headers.join("\r\n"))
            };
            if let Ok(site) = parse(&pasted) {
                let proposal = propose(&site);
                prop_assert!(!compile(&proposal.policy, &Options::default()).has_errors(), "{}", proposal.policy);
            }
        }
    }

    #[test]
    fn curl_output_after_redirects() {
        let text = "HTTP/1.1 301 Moved Permanently\r\nLocation: https://a.example/\r\n\r\nHTTP/2 200 \r\ncontent-type: text/html\r\nstrict-transport-security: max-age=63072000; includeSubDomains; preload\r\nx-frame-options: DENY\r\n";
        let site = parse(text).unwrap();
        assert_eq!(site.status, Some(200));
        assert_eq!(site.get("x-frame-options").as_deref(), Some("DENY"));
        assert!(site.get("location").is_none(), "the redirect's headers are not the page's");
        let proposal = propose(&site);
        assert!(proposal.policy.contains("hsts = { max_age = 63072000, include_subdomains = true, preload = true }"), "{}", proposal.policy);
        assert!(proposal.policy.contains("\"X-Frame-Options\" = \"DENY\""));
        let out = compile(&proposal.policy, &Options::default());
        assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    }

    #[test]
    fn har_file_and_its_csp() {
        let har = serde_json::json!({"log": {"entries": [
            {"request": {"url": "https://cdn.example/app.js"}, "response": {"status": 200, "headers": [{"name": "content-type", "value": "text/javascript"}]}},
            {"request": {"url": "https://shop.example/cart"}, "response": {"status": 200, "headers": [
                {"name": "Content-Type", "value": "text/html; charset=utf-8"},
                {"name": "Content-Security-Policy", "value": "default-src 'self'; script-src 'self' 'unsafe-inline' https://js.stripe.com; upgrade-insecure-requests; report-uri /csp"},
                {"name": "Referrer-Policy", "value": "strict-origin-when-cross-origin"}
            ]}}
        ]}});
        let site = parse(&har.to_string()).unwrap();
        assert_eq!((site.format, site.host.as_deref()), ("har", Some("shop.example")));
        let proposal = propose(&site);
        let p = &proposal.policy;
        assert!(p.contains("hosts = [\"shop.example\"]"), "{p}");
        assert!(p.contains("script-src = [\"'self'\", \"'unsafe-inline'\", \"https://js.stripe.com\"]"), "{p}");
        assert!(p.contains("upgrade-insecure-requests = true"), "{p}");
        assert!(p.contains("object-src = [\"'none'\"]") && p.contains("frame-ancestors = [\"'self'\"]"), "{p}");
        assert!(!p.contains("report-uri") && p.contains("report_to = \"/csp\""), "{p}");
        assert!(p.contains("\"Referrer-Policy\" = \"strict-origin-when-cross-origin\""), "{p}");
        let out = compile(p, &Options::default());
        assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    }

    #[test]
    fn what_is_not_headers() {
        assert!(parse("").is_err());
        assert!(parse("<html><body>hi</body></html>").unwrap_err().contains("no response headers"));
        assert!(parse("{\"not\": \"a har\"}").unwrap_err().contains("log.entries"));
        assert!(parse("hello world").unwrap_err().contains("is not a header line"));
    }
}
