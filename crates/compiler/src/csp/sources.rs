//! The syntax of one value in a source list: characters, quoting, keywords, nonces, hashes,
//! schemes, hosts, ports and paths (E031, E032).

use crate::codes as code;
use crate::diagnostics::suggest;

/// Keyword sources (without their quotes).
const SOURCE_KEYWORDS: &[&str] = &[
    "self",
    "none",
    "unsafe-inline",
    "unsafe-eval",
    "strict-dynamic",
    "unsafe-hashes",
    "report-sample",
    "wasm-unsafe-eval",
    "unsafe-allow-redirects",
    "inline-speculation-rules",
];

/// Old spellings of keywords → today's.
const RENAMED_KEYWORDS: &[(&str, &str)] = &[
    ("unsafe-hashed-attributes", "unsafe-hashes"),
    ("wasm-eval", "wasm-unsafe-eval"),
    ("unsafe-dynamic", "strict-dynamic"),
];

/// Scheme names users write without their colon.
const BARE_SCHEMES: &[&str] = &["http", "https", "data", "blob", "ws", "wss", "filesystem", "mediastream"];

const SOURCE_SHAPES: &str =
    "sources look like \"'self'\", \"https:\", \"data:\", \"*.example.com\", \"https://cdn.example.com:443/path/\"";

/// A problem with one value; reported at the directive value's span.
pub(super) struct Problem {
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) help: String,
    /// What the plan keeps instead (the quoted keyword for an unquoted one).
    pub(super) keep: Option<String>,
}

impl Problem {
    pub(super) fn bad(message: impl Into<String>, help: impl Into<String>) -> Problem {
        Problem { code: code::BAD_SOURCE, message: message.into(), help: help.into(), keep: None }
    }
}

/// Whitespace, separators, control and non-ASCII characters: invalid in every value.
pub(super) fn check_chars(name: &str, s: &str) -> Result<(), Problem> {
    if s.is_empty() {
        return Err(Problem::bad(format!("empty source in {name}"), "remove the empty string"));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(Problem::bad(
            format!("`{s}` in {name} contains whitespace"),
            "write each source as its own string: [\"'self'\", \"https://cdn.example.com\"]",
        ));
    }
    if s.contains([';', ',']) {
        return Err(Problem::bad(
            format!("`{s}` in {name} contains `;` or `,`, which end a directive or a policy in the header"),
            "write each source as its own string (percent-encode `;` and `,` in paths as %3B and %2C)",
        ));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(Problem::bad(
            format!("`{}` in {name} contains a control character", s.escape_debug()),
            "remove it",
        ));
    }
    if !s.is_ascii() {
        return Err(Problem::bad(
            format!("`{s}` in {name} contains non-ASCII characters"),
            "write hosts in their punycode form (xn--…) and percent-encode paths",
        ));
    }
    Ok(())
}

/// A `'quoted'` value checked against `keywords`; bare values go to `bare_ok`.
pub(super) fn check_keyword_value(
    name: &str,
    s: &str,
    keywords: &[&str],
    bare_ok: impl Fn(&str) -> bool,
) -> Result<String, Problem> {
    if let Some(decided) = check_quoting(name, s, keywords, false) {
        return decided;
    }
    if bare_ok(s) {
        return Ok(s.to_owned());
    }
    let list: Vec<String> = keywords.iter().map(|k| format!("\"'{k}'\"")).collect();
    Err(Problem::bad(format!("invalid value `{s}` in {name}"), format!("{name} takes {}", list.join(" or "))))
}

/// The quoting rules every keyword-bearing value shares: a quoted value is checked as a
/// keyword (or nonce/hash when `hashes`), a stray quote is an error, and a bare keyword must be
/// quoted. `None` when the value is bare and not a keyword: the caller's own rules decide.
fn check_quoting(name: &str, s: &str, keywords: &[&str], hashes: bool) -> Option<Result<String, Problem>> {
    if s.starts_with('\'') {
        return Some(check_quoted(name, s, keywords, hashes));
    }
    if s.contains(['\'', '"']) {
        return Some(Err(stray_quote(name, s)));
    }
    let lower = s.to_ascii_lowercase();
    keywords.contains(&lower.as_str()).then(|| Err(unquoted(name, s, &lower)))
}

fn unquoted(name: &str, s: &str, quoted_inner: &str) -> Problem {
    let fixed = format!("'{quoted_inner}'");
    Problem {
        code: code::UNQUOTED_KEYWORD,
        message: format!("`{s}` in {name} is a CSP keyword and must be quoted"),
        help: format!("write \"{fixed}\" — the single quotes are part of the value"),
        keep: Some(fixed),
    }
}

fn stray_quote(name: &str, s: &str) -> Problem {
    Problem::bad(
        format!("`{s}` in {name} contains a quote"),
        "only keywords, nonces and hashes are quoted, with single quotes around the whole value: \"'self'\"",
    )
}

/// A value starting with `'`: a keyword from `keywords`, or (when `hashes`) a nonce or hash.
fn check_quoted(name: &str, s: &str, keywords: &[&str], hashes: bool) -> Result<String, Problem> {
    let inner = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\''));
    let Some(inner) = inner.filter(|i| !i.contains('\'')) else {
        return Err(Problem::bad(
            format!("`{s}` in {name} has unbalanced quotes"),
            "wrap a keyword in single quotes on both sides: \"'self'\"",
        ));
    };
    let lower = inner.to_ascii_lowercase();
    if keywords.contains(&lower.as_str()) {
        return Ok(format!("'{lower}'"));
    }
    if hashes {
        if let Some(value) = strip_prefix_ci(inner, "nonce-") {
            if !edgeguard_core::csp::is_base64_value(value) {
                return Err(Problem::bad(
                    format!("nonce `{s}` in {name} is not base64"),
                    "a nonce is base64 (A–Z a–z 0–9 + / - _, up to two = at the end): \"'nonce-R4nd0mB4se64'\"",
                ));
            }
            return Ok(format!("'nonce-{value}'"));
        }
        for (alg, chars) in [("sha256", 43), ("sha384", 64), ("sha512", 86)] {
            let Some(value) = strip_prefix_ci(inner, alg).and_then(|v| v.strip_prefix('-')) else { continue };
            if !edgeguard_core::csp::is_base64_value(value) {
                return Err(Problem::bad(
                    format!("hash `{s}` in {name} is not base64"),
                    format!("write the base64 of the {alg} digest: \"'{alg}-…'\""),
                ));
            }
            if value.trim_end_matches('=').len() != chars {
                return Err(Problem::bad(
                    format!("hash `{s}` in {name} has the wrong length for {alg}"),
                    format!("a {alg} digest is {chars} base64 characters (plus padding); hex digests don't work"),
                ));
            }
            return Ok(format!("'{alg}-{value}'"));
        }
    }
    let renamed = RENAMED_KEYWORDS.iter().find(|(old, _)| *old == lower).map(|(_, new)| *new);
    let help = match renamed.or_else(|| suggest(&lower, keywords.iter().copied())) {
        Some(k) => format!("did you mean \"'{k}'\"?"),
        None => {
            let list: Vec<String> = keywords.iter().map(|k| format!("'{k}'")).collect();
            format!("keywords here are {}", list.join(", "))
        }
    };
    Err(Problem {
        code: code::UNQUOTED_KEYWORD,
        message: format!("`{s}` in {name} is not a CSP keyword"),
        help,
        keep: None,
    })
}

pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) { s.get(prefix.len()..) } else { None }
}

/// One element of a source list (already free of whitespace, separators, non-ASCII).
pub(super) fn check_source(name: &str, s: &str) -> Result<String, Problem> {
    if let Some(decided) = check_quoting(name, s, SOURCE_KEYWORDS, true) {
        return decided;
    }
    let lower = s.to_ascii_lowercase();
    for prefix in ["nonce-", "sha256-", "sha384-", "sha512-"] {
        if let Some(value) = strip_prefix_ci(s, prefix) {
            return Err(unquoted(name, s, &format!("{prefix}{value}")));
        }
    }
    if BARE_SCHEMES.contains(&lower.as_str()) {
        return Err(Problem::bad(
            format!("`{s}` in {name} is read as a host named `{s}`"),
            format!("a scheme source ends with a colon: \"{lower}:\""),
        ));
    }
    check_location(name, s)
}

/// `scheme-source` or `host-source` (CSP3 grammar).
fn check_location(name: &str, s: &str) -> Result<String, Problem> {
    let invalid = |why: &str| Problem::bad(format!("invalid source `{s}` in {name}: {why}"), SOURCE_SHAPES);
    let (rest, has_scheme) = match s.find("://") {
        Some(i) => {
            let scheme = s.get(..i).unwrap_or_default();
            if !is_scheme(scheme) {
                return Err(invalid("the scheme is not valid"));
            }
            (s.get(i.saturating_add(3)..).unwrap_or_default(), true)
        }
        None => {
            if let Some(scheme) = s.strip_suffix(':').filter(|sc| !sc.contains([':', '/'])) {
                return if is_scheme(scheme) {
                    Ok(s.to_ascii_lowercase())
                } else {
                    Err(invalid("the scheme is not valid"))
                };
            }
            (s, false)
        }
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i..).unwrap_or_default()),
        None => (rest, ""),
    };
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(invalid(if has_scheme {
            "the host is missing"
        } else {
            "it starts with neither a host nor a scheme"
        }));
    }
    if host.contains('@') {
        return Err(invalid("user names are not allowed in sources"));
    }
    if host != "*" {
        let labels = host.strip_prefix("*.").unwrap_or(host);
        let labels = labels.strip_suffix('.').unwrap_or(labels);
        if labels.contains('*') {
            return Err(invalid("a wildcard may only be the leftmost label, as in *.example.com"));
        }
        let ok = labels.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !ok {
            return Err(invalid("a host name has letters, digits and `-` between dots"));
        }
    }
    if let Some(port) = port {
        let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        let ok = port == "*" || (digits && port.parse::<u32>().is_ok_and(|p| p <= 65_535));
        if !ok {
            return Err(invalid("the port must be a number up to 65535 or `*`"));
        }
    }
    check_path(path).map_err(invalid)?;
    Ok(s.to_owned())
}

pub(super) fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn check_path(path: &str) -> Result<(), &'static str> {
    let bytes = path.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'?' | b'#' => return Err("sources can't have a query or fragment"),
            b'%' => {
                let hex = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i.saturating_add(1)) && hex(i.saturating_add(2))) {
                    return Err("`%` must start a percent-encoded byte such as %20");
                }
            }
            b if b.is_ascii_alphanumeric() || b"-._~!$&()*+=:@/".contains(&b) => {}
            _ => return Err("the path has a character that must be percent-encoded"),
        }
        i = i.saturating_add(1);
    }
    Ok(())
}
