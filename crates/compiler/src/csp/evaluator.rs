//! Google's CSP Evaluator (`csp_evaluator`), the `evaluate()` subset the module docs list: its
//! tables, its view of a policy, and its checks, in its order.

use super::sources::{is_scheme, strip_prefix_ci};
use crate::codes as code;

/// The evaluator's list of fetch directives (those that fall back to default-src).
const FETCH_DIRECTIVES: &[&str] = &[
    "child-src",
    "connect-src",
    "default-src",
    "font-src",
    "frame-src",
    "img-src",
    "manifest-src",
    "media-src",
    "object-src",
    "script-src",
    "script-src-attr",
    "script-src-elem",
    "style-src",
    "style-src-attr",
    "style-src-elem",
    "worker-src",
];

/// Every name the evaluator's `isDirective` knows (for MISSING_SEMICOLON).
const EVALUATOR_DIRECTIVES: &[&str] = &[
    "child-src",
    "connect-src",
    "default-src",
    "font-src",
    "frame-src",
    "img-src",
    "media-src",
    "object-src",
    "script-src",
    "script-src-attr",
    "script-src-elem",
    "style-src",
    "style-src-attr",
    "style-src-elem",
    "prefetch-src",
    "manifest-src",
    "worker-src",
    "base-uri",
    "plugin-types",
    "sandbox",
    "disown-opener",
    "form-action",
    "frame-ancestors",
    "navigate-to",
    "report-to",
    "report-uri",
    "block-all-mixed-content",
    "upgrade-insecure-requests",
    "reflected-xss",
    "referrer",
    "require-sri-for",
    "trusted-types",
    "require-trusted-types-for",
    "webrtc",
];

/// Subset of the evaluator's JSONP endpoint list (`allowlist_bypasses/jsonp.ts`), in its order
/// (the first match decides, as in the evaluator). Every entry must be on the evaluator's list:
/// tests/csp-parity checks both lists against the npm package.
const JSONP_URLS: &[(&str, &str)] = &[
    ("www.google-analytics.com", "/gtm/js"),
    ("www.googleadservices.com", "/pagead/conversion/1070110417/wcm"),
    ("www.google.com", "/tools/feedback/escalation-options"),
    ("translate.google.com", "/translate_a/l"),
    ("translate.googleapis.com", "/translate_a/l"),
    ("accounts.google.com", "/o/oauth2/revoke"),
    ("api.facebook.com", "/restserver.php"),
    ("syndication.twitter.com", "/widgets/timelines/765840589183213568"),
    ("www.youtube.com", "/profile_style"),
    ("googletagmanager.com", "/gtm/js"),
    ("www.googletagmanager.com", "/gtm/js"),
    ("vimeo.com", "/api/oembed.json/"),
    ("ajax.googleapis.com", "/ajax/services/search/news"),
    ("ssl.google-analytics.com", "/gtm/js"),
    ("maps.googleapis.com", "/maps/api/js/GeoPhotoService.GetMetadata"),
    ("cdn.syndication.twimg.com", "/widgets/timelines/599200054310604802"),
    ("graph.facebook.com", "/1/"),
    ("www.facebook.com", "/restserver.php"),
    ("www.googleapis.com", "/freebase/v1/topic/m/0344_"),
    ("publish.twitter.com", "/oembed"),
    ("clients1.google.com", "/complete/search"),
    ("api.mixpanel.com", "/track/"),
    ("cdn.syndication.twitter.com", "/moments/709229296800440320"),
    ("cdn.jsdelivr.net", "/"),
];

/// JSONP hosts whose bypass needs `'unsafe-eval'`.
const JSONP_NEEDS_EVAL: &[&str] = &[
    "googletagmanager.com",
    "www.googletagmanager.com",
    "www.googleadservices.com",
    "google-analytics.com",
    "ssl.google-analytics.com",
    "www.google-analytics.com",
];

/// Subset of the evaluator's AngularJS host list (`allowlist_bypasses/angular.ts`).
const ANGULAR_URLS: &[(&str, &str)] = &[
    ("gstatic.com", "/fsn/angular_js-bundle1.js"),
    ("www.gstatic.com", "/fsn/angular_js-bundle1.js"),
    ("www.googleadservices.com", "/pageadimg/imgad"),
    ("yastatic.net", "/angularjs/1.2.23/angular.min.js"),
    ("ajax.googleapis.com", "/ajax/libs/angularjs/1.2.0rc1/angular-route.min.js"),
    ("cdnjs.cloudflare.com", "/ajax/libs/angular.js/1.2.16/angular.min.js"),
    ("oss.maxcdn.com", "/angularjs/1.2.20/angular.min.js"),
    ("cdn.jsdelivr.net", "/angularjs/1.1.2/angular.min.js"),
    ("raw.githubusercontent.com", "/angular/code.angularjs.org/master/1.0.7/angular-resource.js"),
    ("cdn.bootcss.com", "/angular.js/1.2.0/angular.min.js"),
];

/// A parsed policy as the evaluator sees it: names with their values, in header order.
#[derive(Debug, Clone)]
pub(super) struct Policy {
    dirs: Vec<(String, Vec<String>)>,
}

impl Policy {
    /// Like the evaluator's parser: the first of repeated directives wins; values deduplicated.
    pub(super) fn parse(list: &[(&str, Vec<&str>)]) -> Policy {
        let mut dirs: Vec<(String, Vec<String>)> = Vec::new();
        for (name, values) in list {
            if dirs.iter().any(|(n, _)| n == name) {
                continue;
            }
            let mut vs: Vec<String> = Vec::new();
            for v in values {
                if !vs.iter().any(|x| x == v) {
                    vs.push((*v).to_owned());
                }
            }
            dirs.push(((*name).to_owned(), vs));
        }
        Policy { dirs }
    }

    fn has(&self, name: &str) -> bool {
        self.dirs.iter().any(|(n, _)| n == name)
    }

    fn values(&self, name: &str) -> &[String] {
        self.dirs.iter().find(|(n, _)| n == name).map_or(&[], |(_, v)| v.as_slice())
    }

    fn values_mut(&mut self, name: &str) -> Option<&mut Vec<String>> {
        self.dirs.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// `getEffectiveDirective`: -elem/-attr fall back to their parent, fetch directives to default-src.
    fn effective_directive(&self, name: &'static str) -> &'static str {
        if self.has(name) {
            return name;
        }
        if (name == "script-src-attr" || name == "script-src-elem") && self.has("script-src") {
            return "script-src";
        }
        if (name == "style-src-attr" || name == "style-src-elem") && self.has("style-src") {
            return "style-src";
        }
        if FETCH_DIRECTIVES.contains(&name) {
            return "default-src";
        }
        name
    }

    fn effective_directives(&self, names: &[&'static str]) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for n in names {
            let e = self.effective_directive(n);
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out
    }

    fn script_values(&self) -> &[String] {
        self.values(self.effective_directive("script-src"))
    }

    fn has_script_nonces(&self) -> bool {
        self.script_values().iter().any(|v| is_nonce(v))
    }

    fn has_script_hashes(&self) -> bool {
        self.script_values().iter().any(|v| is_hash(v))
    }

    fn has_strict_dynamic(&self) -> bool {
        self.script_values().iter().any(|v| v == "'strict-dynamic'")
    }

    /// `getEffectiveCsp(CSP3)`: what a CSP3 browser actually applies to scripts.
    pub(super) fn effective(&self) -> Policy {
        let mut eff = self.clone();
        for d in ["script-src", "script-src-attr", "script-src-elem"] {
            let name = eff.effective_directive(d);
            let nonce_or_hash = eff.values(name).iter().any(|v| is_nonce(v) || is_hash(v));
            let strict_dynamic = self.values(name).iter().any(|v| v == "'strict-dynamic'");
            if let Some(values) = eff.values_mut(name) {
                if nonce_or_hash {
                    values.retain(|v| v != "'unsafe-inline'");
                }
                if strict_dynamic {
                    values.retain(|v| v.starts_with('\'') && v != "'self'" && v != "'unsafe-inline'");
                }
            }
        }
        eff
    }
}

/// `^'nonce-(.+)'$`
fn nonce_value(v: &str) -> Option<&str> {
    v.strip_prefix("'nonce-").and_then(|r| r.strip_suffix('\'')).filter(|r| !r.is_empty())
}

pub(super) fn is_nonce(v: &str) -> bool {
    nonce_value(v).is_some()
}

/// `^'(sha256|sha384|sha512)-(.+)'$`
pub(super) fn is_hash(v: &str) -> bool {
    ["'sha256-", "'sha384-", "'sha512-"]
        .iter()
        .any(|p| v.strip_prefix(p).and_then(|r| r.strip_suffix('\'')).is_some_and(|r| !r.is_empty()))
}

/// `^[a-zA-Z][+a-zA-Z0-9.-]*:$`
fn is_url_scheme(v: &str) -> bool {
    v.strip_suffix(':').is_some_and(is_scheme)
}

/// `getSchemeFreeUrl`: drop `scheme://`, then a leading `//`.
fn scheme_free(v: &str) -> &str {
    let mut rest = v;
    if let Some(i) = v.find("://") {
        let scheme = v.get(..i).unwrap_or_default();
        let mut bytes = scheme.bytes();
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if bytes.next().is_some_and(word) && bytes.all(|b| word(b) || matches!(b, b'+' | b'.' | b'-')) {
            rest = v.get(i.saturating_add(3)..).unwrap_or_default();
        }
    }
    rest.strip_prefix("//").unwrap_or(rest)
}

/// The host of a source, as `getHostname` finds it.
fn hostname(v: &str) -> String {
    let free = scheme_free(v);
    let authority = free.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority.find(']').and_then(|i| authority.get(..=i)).unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.to_ascii_lowercase()
}

fn looks_like_ip(host: &str) -> bool {
    if host.starts_with('[') && host.ends_with(']') {
        return true;
    }
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `matchWildcardUrls`: the first listed host (with path) that `source` allows.
fn match_wildcard_urls(source: &str, list: &[(&'static str, &'static str)]) -> Option<&'static str> {
    let free = scheme_free(source).replacen(":*", "", 1);
    let (authority, path) = match free.find('/') {
        Some(i) => (free.get(..i).unwrap_or_default(), free.get(i..).unwrap_or("/")),
        None => (free.as_str(), "/"),
    };
    let host = authority.split(':').next().unwrap_or_default().to_ascii_lowercase();
    let has_wildcard = host.starts_with("*.");
    let wildcard_free = host.strip_prefix('*').unwrap_or(&host);
    let has_path = path != "/";
    list.iter()
        .find(|(domain, listed_path)| {
            if !domain.ends_with(wildcard_free) || (!has_wildcard && host != *domain) {
                return false;
            }
            if has_path {
                if path.ends_with('/') {
                    return listed_path.starts_with(path);
                }
                return *listed_path == path;
            }
            true
        })
        .map(|(domain, _)| *domain)
}

/// (code, directive to point at — None for a missing directive, message, help)
type Finding = (&'static str, Option<String>, String, String);

fn finding(code: &'static str, directive: Option<&str>, message: String, help: impl Into<String>) -> Finding {
    (code, directive.map(str::to_owned), message, help.into())
}

/// The evaluator's `DEFAULT_CHECKS`, in its order, on the effective policy.
pub(super) fn evaluate(eff: &Policy) -> Vec<Finding> {
    let mut out = Vec::new();
    for check in DEFAULT_CHECKS {
        check(eff, &mut out);
    }
    out
}

/// The directives the script checks look at (each falls back as the evaluator's do).
const SCRIPT_DIRECTIVES: &[&str] = &["script-src", "script-src-attr", "script-src-elem"];

/// The directives that can let a script run: the URL-scheme and wildcard checks look at these.
const XSS_DIRECTIVES: &[&str] = &["script-src", "script-src-attr", "script-src-elem", "object-src", "base-uri"];

/// One check of the evaluator: appends its findings.
type Check = fn(&Policy, &mut Vec<Finding>);

/// The checks of `evaluate()`, in the evaluator's order (the order of the warnings).
const DEFAULT_CHECKS: &[Check] = &[
    script_unsafe_inline,
    script_unsafe_eval,
    plain_url_schemes,
    wildcards,
    missing_directives,
    script_allowlist_bypass,
    object_allowlist_bypass,
    ip_source,
    nonce_length,
    src_http,
    deprecated_directive,
    missing_semicolon,
];

/// `checkScriptUnsafeInline` (+ unsafe-hashes).
fn script_unsafe_inline(eff: &Policy, out: &mut Vec<Finding>) {
    let script_dirs = eff.effective_directives(SCRIPT_DIRECTIVES);
    for d in &script_dirs {
        let values = eff.values(d);
        if values.iter().any(|v| v == "'unsafe-inline'") {
            out.push(finding(
                code::SCRIPT_UNSAFE_INLINE,
                Some(d),
                format!("{d} allows 'unsafe-inline' (CSP Evaluator: SCRIPT_UNSAFE_INLINE, high)"),
                format!("remove 'unsafe-inline' from {d}: move inline scripts and on* handlers into files, or use nonces/hashes"),
            ));
        }
        if values.iter().any(|v| v == "'unsafe-hashes'") {
            out.push(finding(
                code::SCRIPT_UNSAFE_HASHES,
                Some(d),
                format!("{d} allows 'unsafe-hashes' (CSP Evaluator: SCRIPT_UNSAFE_HASHES, medium_maybe)"),
                "move inline event handlers into script files and drop 'unsafe-hashes'",
            ));
        }
    }
}

/// `checkScriptUnsafeEval`.
fn script_unsafe_eval(eff: &Policy, out: &mut Vec<Finding>) {
    let script_dirs = eff.effective_directives(SCRIPT_DIRECTIVES);
    for d in &script_dirs {
        if eff.values(d).iter().any(|v| v == "'unsafe-eval'") {
            out.push(finding(
                code::SCRIPT_UNSAFE_EVAL,
                Some(d),
                format!("{d} allows 'unsafe-eval' (CSP Evaluator: SCRIPT_UNSAFE_EVAL, medium_maybe)"),
                format!("remove 'unsafe-eval' from {d} once no code uses eval(), new Function() or string timers"),
            ));
        }
    }

}

/// `checkPlainUrlSchemes`.
fn plain_url_schemes(eff: &Policy, out: &mut Vec<Finding>) {
    let xss_dirs = eff.effective_directives(XSS_DIRECTIVES);
    for d in &xss_dirs {
        for v in eff.values(d) {
            if matches!(v.as_str(), "data:" | "http:" | "https:") {
                out.push(finding(
                    code::PLAIN_URL_SCHEMES,
                    Some(d),
                    format!(
                        "`{v}` in {d} allows the execution of unsafe scripts (CSP Evaluator: PLAIN_URL_SCHEMES, high)"
                    ),
                    format!("replace `{v}` in {d} with the exact hosts you need, or use nonces with 'strict-dynamic'"),
                ));
            }
        }
    }
}

/// `checkWildcards`.
fn wildcards(eff: &Policy, out: &mut Vec<Finding>) {
    let xss_dirs = eff.effective_directives(XSS_DIRECTIVES);
    for d in &xss_dirs {
        for v in eff.values(d) {
            if scheme_free(v) == "*" {
                out.push(finding(
                    code::PLAIN_WILDCARD,
                    Some(d),
                    format!("{d} should not allow '*' as source (CSP Evaluator: PLAIN_WILDCARD, high)"),
                    format!("replace `{v}` in {d} with the exact hosts you need"),
                ));
            }
        }
    }
}

/// `checkMissingDirectives`: object-src, script-src, base-uri.
fn missing_directives(eff: &Policy, out: &mut Vec<Finding>) {
    let object_restrictions = if eff.has("object-src") { eff.values("object-src") } else { eff.values("default-src") };
    if object_restrictions.is_empty() {
        let at = eff.has("object-src").then_some("object-src");
        out.push(finding(
            code::MISSING_OBJECT_SRC,
            at,
            "object-src is missing, so plugins that can run script may load (CSP Evaluator: MISSING_DIRECTIVES, high)"
                .to_owned(),
            "add `object-src = [\"'none'\"]`",
        ));
    }
    if !eff.has("script-src") && !eff.has("default-src") {
        out.push(finding(
            code::MISSING_SCRIPT_SRC,
            None,
            "script-src is missing and there is no default-src (CSP Evaluator: MISSING_DIRECTIVES, high)".to_owned(),
            "add `script-src = [\"'self'\"]` (or a default-src)",
        ));
    }
    let needs_base_uri = eff.has_script_nonces() || (eff.has_script_hashes() && eff.has_strict_dynamic());
    if needs_base_uri && !eff.has("base-uri") {
        out.push(finding(
            code::MISSING_BASE_URI,
            None,
            "base-uri is missing in a nonce/hash-based policy (CSP Evaluator: MISSING_DIRECTIVES, high)".to_owned(),
            "an injected <base> tag can redirect relative script URLs: add `base-uri = [\"'none'\"]` (or \"'self'\")",
        ));
    }
}

/// `checkScriptAllowlistBypass` (high findings only).
fn script_allowlist_bypass(eff: &Policy, out: &mut Vec<Finding>) {
    for d in eff.effective_directives(&["script-src", "script-src-elem"]) {
        let values = eff.values(d);
        if values.iter().any(|v| v == "'none'") {
            continue;
        }
        let eval = values.iter().any(|v| v == "'unsafe-eval'");
        for v in values {
            if v.starts_with('\'') || is_url_scheme(v) || !v.contains('.') {
                continue;
            }
            let angular = match_wildcard_urls(v, ANGULAR_URLS);
            let jsonp = match_wildcard_urls(v, JSONP_URLS).filter(|h| eval || !JSONP_NEEDS_EVAL.contains(h));
            let what = match (jsonp, angular) {
                (_, Some(h)) if jsonp.is_some() => Some((h, "JSONP endpoints and Angular libraries")),
                (Some(h), None) => Some((h, "JSONP endpoints")),
                (None, Some(h)) => Some((h, "Angular libraries")),
                _ => None,
            };
            if let Some((host, kinds)) = what {
                out.push(finding(
                    code::SCRIPT_ALLOWLIST_BYPASS,
                    Some(d),
                    format!("`{v}` in {d}: {host} is known to host {kinds} which allow to bypass this CSP (CSP Evaluator: SCRIPT_ALLOWLIST_BYPASS, high)"),
                    format!("narrow `{v}` to the exact script path, or use nonces with 'strict-dynamic' instead of host allowlists"),
                ));
            }
        }
    }
}

/// `checkFlashObjectAllowlistBypass` (the non-Flash part).
fn object_allowlist_bypass(eff: &Policy, out: &mut Vec<Finding>) {
    let object_dir = eff.effective_directive("object-src");
    let object_values = eff.values(object_dir);
    if object_dir == "object-src" && !object_values.iter().any(|v| v == "'none'") {
        for v in object_values {
            out.push(finding(
                code::OBJECT_ALLOWLIST_BYPASS,
                Some("object-src"),
                format!("object-src allows `{v}` (CSP Evaluator: OBJECT_ALLOWLIST_BYPASS, medium_maybe)"),
                "can you restrict object-src to 'none' only? `object-src = [\"'none'\"]`",
            ));
        }
    }
}

/// `checkIpSource`.
fn ip_source(eff: &Policy, out: &mut Vec<Finding>) {
    for (d, values) in &eff.dirs {
        for v in values {
            let host = hostname(v);
            if !looks_like_ip(&host) {
                continue;
            }
            if host == "127.0.0.1" {
                out.push(finding(
                    code::IP_SOURCE,
                    Some(d),
                    format!("{d} allows localhost as source (CSP Evaluator: IP_SOURCE, info)"),
                    format!("remove `{v}` from {d} for production"),
                ));
            } else {
                out.push(finding(
                    code::IP_SOURCE,
                    Some(d),
                    format!("{d} has an IP address as source: {host}, which browsers ignore (CSP Evaluator: IP_SOURCE, info)"),
                    format!("use the host name instead of `{v}`"),
                ));
            }
        }
    }
}

/// `checkNonceLength`.
fn nonce_length(eff: &Policy, out: &mut Vec<Finding>) {
    for (d, values) in &eff.dirs {
        for v in values {
            if nonce_value(v).is_some_and(|n| n.len() < 8) {
                out.push(finding(
                    code::NONCE_LENGTH,
                    Some(d),
                    format!("nonce `{v}` in {d} is shorter than 8 characters (CSP Evaluator: NONCE_LENGTH, medium)"),
                    "use a fresh random nonce per response, at least 128 bits (22+ base64 characters)",
                ));
            }
        }
    }
}

/// `checkSrcHttp`.
fn src_http(eff: &Policy, out: &mut Vec<Finding>) {
    for (d, values) in &eff.dirs {
        for v in values {
            if strip_prefix_ci(v, "http://").is_none() {
                continue;
            }
            if d == "report-uri" {
                out.push(finding(
                    code::SRC_HTTP,
                    Some(d),
                    format!(
                        "report-uri `{v}` sends violation reports over plain http (CSP Evaluator: SRC_HTTP, medium)"
                    ),
                    "send reports to an https:// URL or a path on this site (`report_to`)",
                ));
            } else {
                out.push(finding(
                    code::SRC_HTTP,
                    Some(d),
                    format!("{d} allows `{v}` over plain http (CSP Evaluator: SRC_HTTP, medium)"),
                    format!("write `https://{}`", v.get(7..).unwrap_or_default()),
                ));
            }
        }
    }
}

/// `checkDeprecatedDirective` (the others are unknown directives, E030).
fn deprecated_directive(eff: &Policy, out: &mut Vec<Finding>) {
    if eff.has("prefetch-src") {
        out.push(finding(
            code::DEPRECATED_DIRECTIVE,
            Some("prefetch-src"),
            "prefetch-src is deprecated since CSP3 (CSP Evaluator: DEPRECATED_DIRECTIVE, info)".to_owned(),
            "remove prefetch-src; browsers may stop honouring it at any time",
        ));
    }
}

/// `checkMissingSemicolon`.
fn missing_semicolon(eff: &Policy, out: &mut Vec<Finding>) {
    for (d, values) in &eff.dirs {
        for v in values {
            if EVALUATOR_DIRECTIVES.contains(&v.as_str()) {
                out.push(finding(
                    code::MISSING_SEMICOLON,
                    Some(d),
                    format!(
                        "`{v}` in {d} seems to be a directive, not a value (CSP Evaluator: MISSING_SEMICOLON, syntax)"
                    ),
                    format!("give `{v}` its own key under [csp.directives]"),
                ));
            }
        }
    }
}

